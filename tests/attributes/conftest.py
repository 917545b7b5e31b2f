"""Fixtures of the attribute tests: small synthetic data sets (written once per session) and a tiny,
fast training configuration (ResNet-18, seeded random weights, 32 px, CPU)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from styleforge.attributes.synthetic import make_dataset

from _helpers import one_thread  # noqa: F401  (autouse: one intra-op thread for these tests)

#: Options of a fast training run: everything small, seeded and on the CPU.
FAST = dict(backbone="resnet18", weights="random", size=32, batch_size=8, lr=0.01, device="cpu", epochs=3)


@pytest.fixture(scope="session")
def synth24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 synthetic compositions at 32 px with their 8 labels (styleforge's CSV layout)."""
    folder = tmp_path_factory.mktemp("synth24")
    make_dataset(folder, count=24, seed=1, size=32)
    return folder


@pytest.fixture
def data24(synth24: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`synth24` that a test may edit."""
    return Path(shutil.copytree(synth24, tmp_path / "data"))
