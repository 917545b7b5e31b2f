"""How an image becomes the network's input, in training and in scoring alike: the squash resize,
8-bit quantisation (:func:`preprocess_image`), and decoding a data set's images (:func:`load_images`),
in worker processes and, in a data-parallel run, a share per rank.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine.events import Callback, TaskProgress, emit
from ..errors import InputFileError
from ..images import load_image
from .labels import LabelError, LabelledImage

__all__ = ["Ranks", "Skipped", "squash_resize", "preprocess_image", "load_images"]


class Ranks(Protocol):
    """What :func:`load_images` needs of a data-parallel run (the engine's
    :class:`~styleforge.engine.distributed.Distributed` is one; the caller passes it in)."""

    def shard_bounds(self, n: int) -> tuple[int, int]:
        """This rank's contiguous part ``[start, stop)`` of ``n`` items (shares in rank order)."""

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order."""

    def all_gather_rows(self, x: Tensor) -> Tensor:
        """Every rank's rows ``(nᵣ, ...)`` concatenated in rank order."""


@dataclass(frozen=True)
class Skipped:
    """An image left out with ``--skip-bad``: its row, path and why."""

    row: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.path} {self.reason}"


def squash_resize(images: Tensor, size: int) -> Tensor:
    """The model's resize: squash to ``size × size`` (bicubic, antialiased), clamped to [0, 1].

    Differentiable, so attribute-guided transfer can use it on the image being optimised.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        size: Side in px (``model.json``'s ``preprocessing.size``).

    Returns:
        ``(B, 3, size, size)`` float in [0, 1].
    """
    resized = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return resized.clamp(0, 1)


def preprocess_image(rgb: Tensor, size: int) -> Tensor:
    """One decoded image as the network sees it in training and scoring (``model.json``'s
    ``preprocessing``): :func:`squash_resize`, then quantised to 8 bits.

    Args:
        rgb: ``(3, H, W)`` float in [0, 1] (:attr:`styleforge.images.LoadedImage.rgb`).
        size: Side in px.

    Returns:
        uint8 ``(3, size, size)``; the network's input is this ``/ 255``.
    """
    return squash_resize(rgb[None], size)[0].mul(255).round().to(torch.uint8)


class _DecodeSet(torch.utils.data.Dataset):
    """Item ``i`` → ``(i, uint8 (3, size, size) or None, problem or None)``; never raises for a bad
    image (an exception inside a worker process would lose its message)."""

    def __init__(self, items: Sequence[LabelledImage], size: int) -> None:
        self.items, self.size = list(items), int(size)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, Tensor | None, str | None]:
        try:
            rgb = load_image(self.items[i].path, param="image").rgb
        except InputFileError as exc:
            return i, None, exc.problem
        return i, preprocess_image(rgb, self.size), None


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


def _decode(
    items: Sequence[LabelledImage], size: int, workers: int, report: Callable[[int], None]
) -> list[tuple[int, Tensor | None, str | None]]:
    """Decodes ``items`` in order, in ``workers`` processes (0: in this one)."""
    dataset = _DecodeSet(items, size)
    if workers <= 0 or len(items) <= 1:
        out = []
        for i in range(len(dataset)):
            out.append(dataset[i])
            report(i + 1)
        return out
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=8,
        collate_fn=_as_list,
        num_workers=min(workers, len(items)),
        generator=torch.Generator(),
    )  # never draws from the global generator
    out = []
    for chunk in loader:  # in order, whatever the worker scheduling
        out.extend(chunk)
        report(len(out))
    return out


def load_images(
    items: Sequence[LabelledImage],
    size: int,
    *,
    skip_bad: bool = False,
    csv_path: Path | None = None,
    callbacks: Sequence[Callback] = (),
    workers: int = 0,
    pin_memory: bool = False,
    dist: Ranks | None = None,
) -> tuple[Tensor, list[int], list[Skipped]]:
    """Decodes and resizes every image to ``size × size`` (squashed, as the original's loader).

    The result does not depend on ``workers`` or on the number of processes: each image is decoded
    and resized on its own, and the results are put back in row order.

    Args:
        items: The rows.
        size: Side in px.
        skip_bad: Skip missing or unreadable images (and report them) instead of raising.
        csv_path: The CSV, named in errors.
        callbacks: Receive :class:`~styleforge.engine.events.TaskProgress` (task ``images``).
        workers: Decode in this many worker processes (``torch.utils.data.DataLoader``); 0: in
            this process.
        pin_memory: Return the images in page-locked memory (fast, asynchronous copies to CUDA).
        dist: A distributed run: each rank decodes a contiguous share of the rows and every rank
            gets all of them (and raises the same error, if any).

    Returns:
        ``(images, kept, skipped)``: uint8 ``(len(kept), 3, size, size)``; the indices of ``items``
        that loaded; the skipped rows.

    Raises:
        LabelError: A missing or unreadable image (without ``skip_bad``), or every image bad.
    """
    total = len(items)
    lo, hi = dist.shard_bounds(total) if dist is not None else (0, total)
    step = max(1, (hi - lo) // 8)

    def report(done: int) -> None:  # progress of this rank's share, scaled to all rows
        if done % step == 0 and done < hi - lo:
            emit(callbacks, TaskProgress("images", min(total, done * total // max(1, hi - lo)), total))

    decoded = _decode(items[lo:hi], size, workers, report)
    ok = [x for _, x, _ in decoded if x is not None]
    problems = [(lo + i, problem) for i, x, problem in decoded if x is None]
    local = torch.stack(ok) if ok else torch.empty((0, 3, size, size), dtype=torch.uint8)
    if dist is not None:  # every rank: all rows, in row order (shares are contiguous, in rank order)
        problems = [entry for part in dist.all_gather_object(problems) for entry in part]
        local = dist.all_gather_rows(local)
    emit(callbacks, TaskProgress("images", total, total))
    where_file = csv_path or Path("labels.csv")
    bad = dict(problems)
    skipped: list[Skipped] = []
    for i in sorted(bad):
        item = items[i]
        if not skip_bad:
            reason = bad[i] + ("" if item.image_text == str(item.path) else f" ({item.path})")
            raise LabelError(
                where_file,
                f"{item.image_text!r} {reason}; fix it or pass --skip-bad",
                item.row,
                item.line,
                "image",
            )
        skipped.append(Skipped(item.row, item.image_text, bad[i]))
    kept = [i for i in range(total) if i not in bad]
    if not kept:
        raise LabelError(where_file, f"none of its {total} images could be read (first: {skipped[0]})")
    return (local.pin_memory() if pin_memory else local), kept, skipped
