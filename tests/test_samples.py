"""Tests for ``samples/make_samples.py``, the sample-picture generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from _helpers import child_env
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[1] / "samples" / "make_samples.py"
EXPECTED_SIZES = {
    "content.jpg": (512, 384),
    "style_swirl.jpg": (512, 512),
    "style_shapes.jpg": (512, 512),
}
MAX_BYTES = 300_000


def _run(out_dir: Path) -> list[str]:
    """Run the generator into ``out_dir`` and return the paths it printed."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out_dir)],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    return result.stdout.split()


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder holding the output of one run of the generator."""
    out = tmp_path_factory.mktemp("samples_a")
    printed = _run(out)
    assert sorted(Path(p).name for p in printed) == sorted(EXPECTED_SIZES)
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED_SIZES))
def test_sample_exists_small_and_sized(first_run: Path, name: str) -> None:
    path = first_run / name
    assert path.is_file()
    assert path.stat().st_size < MAX_BYTES
    with Image.open(path) as img:
        assert img.format == "JPEG"
        assert img.mode == "RGB"
        assert img.size == EXPECTED_SIZES[name]


def test_rerun_gives_identical_bytes(first_run: Path, tmp_path: Path) -> None:
    _run(tmp_path)
    for name in EXPECTED_SIZES:
        assert (tmp_path / name).read_bytes() == (first_run / name).read_bytes(), name
