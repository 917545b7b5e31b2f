"""Fixtures of the feed-forward tests: a tiny folder of seeded photos (nested, three formats) and style
images. The fast training options are in _ff_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from _ff_helpers import write_photos
from _helpers import one_thread, write_image  # noqa: F401  (one_thread: autouse)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return write_photos(tmp_path / "photos")


@pytest.fixture
def style(tmp_path: Path) -> Path:
    return write_image(tmp_path / "style.png", (40, 40), seed=3)


@pytest.fixture
def style_b(tmp_path: Path) -> Path:
    return write_image(tmp_path / "b.png", (36, 44), seed=4)
