"""Fixtures of the video tests: a tiny generated clip (a textured square moving over a gradient) and a
style image."""

from __future__ import annotations

from pathlib import Path

import pytest
from _helpers import clip_frames, one_thread, write_frames, write_image  # noqa: F401  (one_thread: autouse)


@pytest.fixture
def clip_dir(tmp_path: Path) -> Path:
    """A folder of 8 frames, 64x48 px."""
    folder = tmp_path / "clip"
    write_frames(folder, clip_frames(8))
    return folder


@pytest.fixture
def style(tmp_path: Path) -> Path:
    return write_image(tmp_path / "style.png", (40, 40), seed=3)
