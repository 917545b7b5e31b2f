"""Tests of styleforge.attributes.preprocess.load_images: missing and unreadable images are errors
that name the row, or are skipped with --skip-bad."""

from __future__ import annotations

from pathlib import Path

import pytest
from _attr_helpers import GOOD
from _attr_helpers import label_folder as _own

from styleforge.attributes.labels import LabelError, read_labels
from styleforge.attributes.preprocess import load_images
from styleforge.attributes.schema import ACAN_SCHEMA


def test_missing_and_unreadable_images_are_errors_or_skipped(tmp_path: Path) -> None:
    folder = _own(tmp_path, [["a.png", *GOOD], ["gone.png", *GOOD], ["bad.png", *GOOD], ["b.png", *GOOD]])
    (folder / "bad.png").write_bytes(b"not an image at all")
    table = read_labels(folder, ACAN_SCHEMA)  # images are located, not opened, here
    with pytest.raises(LabelError) as info:
        load_images(table.items, 32, csv_path=table.csv_path)
    message = str(info.value)
    assert "row 2 (line 3), column 'image': 'gone.png' does not exist" in message and "--skip-bad" in message
    images, kept, skipped = load_images(table.items, 32, skip_bad=True, csv_path=table.csv_path)
    assert kept == [0, 3] and images.shape[0] == 2
    assert [(s.row, s.path) for s in skipped] == [(2, "gone.png"), (3, "bad.png")]
    assert "not an image" in skipped[1].reason
    bad_only = [table.items[1], table.items[2]]
    with pytest.raises(LabelError, match="none of its 2 images could be read"):
        load_images(bad_only, 32, skip_bad=True, csv_path=table.csv_path)
