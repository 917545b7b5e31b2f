"""The photos a feed-forward network trains on: any folder of pictures, read once, cropped at random.

Every image under a folder (recursively; the formats of :data:`~styleforge.files.IMAGE_EXTENSIONS`:
JPEG, PNG, WebP, ...) is decoded once with :func:`~styleforge.images.load_image` and kept in memory
as 8-bit RGB with its short side brought to twice the crop (photos larger than that are shrunk, so a
crop covers a useful part of the picture; smaller ones are enlarged to the crop at least). An
unreadable file is skipped and listed; a folder with too few readable images is refused in one line.

Training crops (Johnson et al. 2016 trained on 256 px crops of COCO): each crop of a batch picks a
photo, a square side between the crop size and the photo's short side, a position and a horizontal
flip, all drawn from the run's seeded generator, and is resized to the crop size. So a resumed run,
which restores the generator, draws the same crops. Validation photos are centre squares at the
crop size, the same at every report.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine.events import Callback, TaskProgress, emit
from ..errors import InputFileError
from ..images import find_images, load_image, long_side_shape, probe_image
from ..machine import check_fits, cpu_memory_available

__all__ = ["Photos", "read_photos", "random_crops", "centre_squares", "split_photos", "MAX_SHOWN"]

#: Skipped files a message names one by one (the rest are counted).
MAX_SHOWN = 5


@dataclass
class Photos:
    """Decoded photos.

    Attributes:
        images: (3, h, w) uint8 each, short side :func:`kept_side` of the crop.
        paths: Where each came from.
        skipped: ``(path, why)`` of each file that could not be read.
    """

    images: list[Tensor]
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: Sequence[int]) -> Photos:
        """The photos at ``indices`` (nothing skipped)."""
        return Photos([self.images[i] for i in indices], [self.paths[i] for i in indices])


def kept_side(size: int) -> int:
    """The short side a photo is kept at for crops of ``size`` px."""
    return 2 * size


def _kept_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """(height, width) of a photo of ``shape`` once its short side is :func:`kept_side`'s (or, for a
    small photo, the crop size)."""
    h, w = shape
    short = min(h, w)
    target = min(max(short, size), kept_side(size))
    if target == short:
        return h, w
    return long_side_shape((h, w), round(max(h, w) * target / short))


def skipped_words(skipped: Sequence[tuple[Path, str]]) -> str:
    """``a.jpg (why), b.png (why) and 3 more``: the skipped files for a one-line message."""
    named = ", ".join(f"{path} ({why})" for path, why in skipped[:MAX_SHOWN])
    more = len(skipped) - MAX_SHOWN
    return named + (f" and {more} more" if more > 0 else "")


def read_photos(
    folder: str | os.PathLike[str],
    size: int,
    *,
    param: str = "--data",
    minimum: int = 1,
    callbacks: Sequence[Callback] = (),
) -> Photos:
    """Reads every image under ``folder`` for crops of ``size`` px.

    The headers are read first (the memory the decoded photos will take is checked before any is
    decoded), then each image, skipping those that cannot be decoded.

    Args:
        folder: A folder (walked recursively) or one image file.
        size: The crop side.
        param: The option the folder was given as, named in errors.
        minimum: The fewest readable images the caller can work with.
        callbacks: Receive :class:`~styleforge.engine.events.TaskProgress` (``photos``).

    Raises:
        InputFileError: ``folder`` does not exist or holds no images, or fewer than ``minimum`` can
            be read (the message lists the unreadable ones).
        ResourceError: The decoded photos would not fit in memory.
    """
    found = find_images([folder])
    for path, problem in found:
        if problem is not None:
            raise InputFileError(param, path, problem)
    paths = [Path(p) for p, _ in found]
    skipped: list[tuple[Path, str]] = []
    shapes: dict[Path, tuple[int, int]] = {}
    for path in paths:
        try:
            width, height = probe_image(path, param=param)
            shapes[path] = _kept_shape((height, width), size)
        except InputFileError as exc:
            skipped.append((path, exc.problem))
    need = sum(3 * h * w for h, w in shapes.values())
    check_fits(need, cpu_memory_available(), f"{param} {folder}", "fewer photos or a smaller --size")
    images, kept = [], []
    for done, path in enumerate(paths, start=1):
        if path in shapes:
            try:
                rgb = load_image(path, param=param).rgb
            except InputFileError as exc:
                skipped.append((path, exc.problem))
            else:
                images.append(_resized(rgb, shapes[path]))
                kept.append(path)
        emit(callbacks, TaskProgress("photos", done, len(paths)))
    skipped.sort(key=lambda item: paths.index(item[0]))
    if len(images) < minimum:
        unread = f"; unreadable: {skipped_words(skipped)}" if skipped else ""
        raise InputFileError(
            param,
            folder,
            f"has {len(images)} readable image(s) of {len(paths)}; expected at least {minimum}{unread}",
        )
    return Photos(images, kept, skipped)


def _resized(rgb: Tensor, shape: tuple[int, int]) -> Tensor:
    """(3, H, W) float in [0, 1] → (3, h, w) uint8 at ``shape`` (antialiased bicubic)."""
    if tuple(rgb.shape[-2:]) != shape:
        rgb = F.interpolate(rgb[None], size=shape, mode="bicubic", antialias=True, align_corners=False)[0]
    return rgb.clamp(0, 1).mul(255).round().to(torch.uint8)


def split_photos(photos: Photos, count: int, generator: torch.Generator) -> tuple[Photos, Photos]:
    """Training and validation photos from one set: ``min(count, len // 10)`` of them (at least
    one) drawn at random for validation, the rest for training, each in the folder's order."""
    held = max(1, min(count, len(photos) // 10))
    order = torch.randperm(len(photos), generator=generator).tolist()
    val = sorted(order[:held])
    return photos.subset([i for i in range(len(photos)) if i not in set(val)]), photos.subset(val)


def _draw(generator: torch.Generator, low: int, high: int) -> int:
    """A whole number in ``low..high`` (both included) from ``generator``."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def random_crops(
    photos: Photos, count: int, size: int, generator: torch.Generator, keep: slice | None = None
) -> Tensor:
    """``count`` random crops (count, 3, size, size) float in [0, 1].

    Each crop's photo, side, position and flip are drawn from ``generator``, in that order, for
    every crop, so the draws do not depend on ``keep``.

    Args:
        photos: Where the crops come from.
        count: Crops drawn.
        size: Their side.
        generator: The run's random numbers.
        keep: Only these crops are made (a rank's part of a global batch); all are drawn.
    """
    plans = []
    for _ in range(count):
        image = photos.images[_draw(generator, 0, len(photos) - 1)]
        h, w = image.shape[-2:]
        side = _draw(generator, min(size, h, w), min(h, w))
        top, left = _draw(generator, 0, h - side), _draw(generator, 0, w - side)
        flip = _draw(generator, 0, 1) == 1
        plans.append((image, side, top, left, flip))
    crops = [
        _square(image[:, top : top + side, left : left + side], size, flip)
        for image, side, top, left, flip in plans[keep if keep is not None else slice(None)]
    ]
    return torch.stack(crops) if crops else torch.empty((0, 3, size, size))


def _square(crop: Tensor, size: int, flip: bool = False) -> Tensor:
    """A (3, s, s) uint8 square → (3, size, size) float in [0, 1], flipped left-right if asked."""
    x = crop.float().div(255)[None]
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    x = x.clamp(0, 1)[0]
    return x.flip(-1) if flip else x


def centre_squares(photos: Photos, size: int) -> Tensor:
    """Each photo's centred square at ``size`` px, (N, 3, size, size) float in [0, 1]."""
    out = []
    for image in photos.images:
        h, w = image.shape[-2:]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        out.append(_square(image[:, top : top + side, left : left + side], size))
    return torch.stack(out)


#: A function that makes one pass's batches: training crops from the run's generator.
BatchMaker = Callable[[torch.Generator], list[Tensor]]
