"""Shared fixtures: tiny images written by the tests, and the slow/GPU markers' switches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    parser.addoption("--run-gpu", action="store_true", help="also run tests marked gpu (needs CUDA)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "slow" in item.keywords and not config.getoption("--run-slow"):
            item.add_marker(pytest.mark.skip(reason="slow: run with --run-slow"))
        if "gpu" in item.keywords and not config.getoption("--run-gpu"):
            item.add_marker(pytest.mark.skip(reason="gpu: run with --run-gpu on a CUDA machine"))


def write_image(path: Path, size: tuple[int, int] = (48, 32), seed: int = 0, mode: str = "RGB") -> Path:
    """Writes a seeded random image (width, height) in ``mode`` and returns its path."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    data = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(data[..., 0] if channels == 1 else data, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """A content image and two style images, 48×32 / 40×40 PNGs."""
    return {
        "content": write_image(tmp_path / "content.png", (48, 32), seed=1),
        "a": write_image(tmp_path / "a.png", (40, 40), seed=2),
        "b": write_image(tmp_path / "b.png", (40, 40), seed=3),
    }
