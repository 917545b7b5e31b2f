"""The photos train-stylizer reads: any folder, recursive, three formats; unreadable files listed;
too few refused in one line; seeded crops that do not depend on which of them are made."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _helpers import write_image

from styleforge.engine.events import TaskProgress
from styleforge.errors import InputFileError
from styleforge.feedforward.data import (
    centre_squares,
    kept_side,
    random_crops,
    read_photos,
    skipped_words,
    split_photos,
)


def test_every_image_under_the_folder_is_read_and_kept_at_twice_the_crop(photos: Path) -> None:
    events: list[TaskProgress] = []
    read = read_photos(photos, 16, callbacks=[events.append])
    assert sorted(p.suffix for p in read.paths) == [".jpg"] * 3 + [".png"] * 3 + [".webp"] * 2
    assert not read.skipped and len(read) == 8
    for image in read.images:
        assert image.dtype == torch.uint8 and min(image.shape[-2:]) == kept_side(16) == 32
    assert events[-1] == TaskProgress("photos", 8, 8)


def test_small_photos_are_enlarged_to_the_crop(photos: Path) -> None:
    read = read_photos(photos, 48)  # short sides 36-50 px: those under 48 are enlarged, none shrunk
    assert sorted(min(image.shape[-2:]) for image in read.images) == [48] * 7 + [50]


def test_unreadable_files_are_skipped_and_listed(photos: Path) -> None:
    (photos / "broken.png").write_bytes(b"not a picture")
    (photos / "more" / "cut.jpg").write_bytes((photos / "p0.png").read_bytes()[:60])
    read = read_photos(photos, 16)
    assert len(read) == 8
    assert [p.name for p, _ in read.skipped] == ["broken.png", "cut.jpg"]
    words = skipped_words(read.skipped)
    assert "broken.png (is not an image Pillow can read" in words and "cut.jpg" in words


def test_too_few_readable_photos_is_one_line_naming_the_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "few"
    write_image(folder / "one.png", (40, 40))
    (folder / "bad.png").write_text("nope")
    with pytest.raises(InputFileError) as caught:
        read_photos(folder, 16, minimum=2)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"--data: {str(folder)!r} has 1 readable image(s) of 2; expected at least 2")
    assert "unreadable: " in message and "bad.png (is not an image Pillow can read" in message


def test_a_folder_without_images_or_a_missing_one_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="is a folder with no images"):
        read_photos(tmp_path / "empty", 16)
    with pytest.raises(InputFileError, match="--val: .* does not exist"):
        read_photos(tmp_path / "nowhere", 16, param="--val")


def test_crops_are_seeded_and_a_ranks_part_is_the_same_crops(photos: Path) -> None:
    read = read_photos(photos, 16)
    a = random_crops(read, 5, 16, torch.Generator().manual_seed(7))
    b = random_crops(read, 5, 16, torch.Generator().manual_seed(7))
    generator = torch.Generator().manual_seed(7)
    part = random_crops(read, 5, 16, generator, keep=slice(3, 5))
    assert a.shape == (5, 3, 16, 16) and torch.equal(a, b) and torch.equal(part, a[3:5])
    # every crop's draws are made, whatever the part kept: the next batch is the same too
    follow = random_crops(read, 2, 16, generator)
    reference = torch.Generator().manual_seed(7)
    random_crops(read, 5, 16, reference)
    assert torch.equal(follow, random_crops(read, 2, 16, reference))
    assert float(a.min()) >= 0 and float(a.max()) <= 1 and not torch.equal(a[0], a[1])


def test_validation_squares_and_the_held_out_split(photos: Path) -> None:
    read = read_photos(photos, 16)
    squares = centre_squares(read, 16)
    assert squares.shape == (8, 3, 16, 16)
    train, val = split_photos(read, 4, torch.Generator().manual_seed(0))
    assert len(val) == 1 and len(train) == 7  # at most a tenth, at least one
    assert set(train.paths) | set(val.paths) == set(read.paths)
    again = split_photos(read, 4, torch.Generator().manual_seed(0))[1]
    assert again.paths == val.paths
