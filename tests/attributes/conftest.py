"""Fixtures of the attribute tests: small synthetic data sets (written once per session), and one tiny
run on HED's pretrained VGG-16 features (the real converted file from the torch cache, fetched if
missing). The fast training options are in _attr_helpers.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from _attr_helpers import HED
from _helpers import one_thread  # noqa: F401  (autouse: one intra-op thread for these tests)

from styleforge.attributes.synthetic import make_dataset


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


@pytest.fixture(scope="session")
def synth8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic compositions at 64 px with their 8 labels."""
    folder = tmp_path_factory.mktemp("synth8")
    make_dataset(folder, count=8, seed=2, size=64)
    return folder


@pytest.fixture(scope="session")
def hed_run(synth8: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run folder of :data:`_attr_helpers.HED` on :func:`synth8` (trained once per session; do not
    edit it)."""
    from styleforge.attributes.train import train_attrs

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # session fixtures run before the autouse one
    try:
        return train_attrs(synth8, tmp_path_factory.mktemp("hed") / "run", **HED).run_dir
    finally:
        torch.set_num_threads(before)
