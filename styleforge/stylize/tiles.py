"""Tiles: optimising a scale too large for the memory one piece at a time, with no seam.

A tiled scale is optimised in ``passes`` sweeps over a grid of overlapping square tiles. Each tile
is a small transfer of its own: the content term from that tile of the content, the style terms
against the statistics of the *whole* style image (taken once per scale), the starting image the
tile of the current canvas. Its result goes back into the canvas through a feathered window (a
linear ramp over the overlap on every side that borders another tile), so each tile meets its
neighbours' pixels continuously; tiles later in a pass start from what earlier ones wrote in the
overlap. Every pass after the first shifts the grid by a seeded random offset, so that no tile
border falls twice in the same place (the idea of the legacy tools' randomised tiling), and the
style statistics are those of the whole style image everywhere, so the style does not drift
between tiles.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..engine import LossSummary
from ..errors import ResourceError
from .memory import estimate_bytes, held_whole, style_pass  # the last two also read from here by benchmarks

__all__ = [
    "Tile",
    "tile_grid",
    "pass_offsets",
    "pass_steps",
    "mean_summary",
    "feather",
    "choose_tile",
    "default_overlap",
    "held_whole",
    "style_pass",
]


@dataclass(frozen=True)
class Tile:
    """One tile: rows ``y:y+h`` and columns ``x:x+w`` of the scale's image."""

    y: int
    x: int
    h: int
    w: int

    def crop(self, image: Tensor) -> Tensor:
        """The tile of a (..., H, W) tensor."""
        return image[..., self.y : self.y + self.h, self.x : self.x + self.w]


def default_overlap(tile: int) -> int:
    """A quarter of the tile: enough for the ramp to hide the border at every style layer's resolution."""
    return tile // 4


def _starts(length: int, tile: int, stride: int, offset: int) -> list[int]:
    """Tile starts along one axis covering ``0..length``: every ``stride`` from ``-offset``, clipped
    into the image (the clipped ones overlap their neighbour more)."""
    if tile >= length:
        return [0]
    starts = []
    position = -offset
    while True:
        start = min(max(position, 0), length - tile)
        if not starts or start > starts[-1]:
            starts.append(start)
        if start + tile >= length:
            return starts
        position += stride


def tile_grid(
    shape: tuple[int, int], tile: int, overlap: int, offset: tuple[int, int] = (0, 0)
) -> list[Tile]:
    """The tiles of one pass over an image of ``shape`` (height, width), row by row.

    Args:
        shape: The image's (height, width).
        tile: The tile side in px (a side of the image shorter than it is one tile).
        overlap: How much neighbouring tiles share, in px (< tile / 2).
        offset: The grid's shift (dy, dx), each in ``0..tile - overlap``.
    """
    height, width = shape
    stride = tile - overlap
    ys = _starts(height, tile, stride, offset[0])
    xs = _starts(width, tile, stride, offset[1])
    return [Tile(y, x, min(tile, height), min(tile, width)) for y in ys for x in xs]


def pass_steps(steps: Sequence[int], passes: int) -> list[list[int]]:
    """Each pass's steps of each stage of the chain, for every tile of that pass.

    The stages' steps are shared out exactly (``[5]`` over 2 passes is 3 then 2), so a tiled scale
    counts no more iterations than its budget. A pass needs two evaluations at least to find an
    image better than its start, so a small budget runs fewer passes (``[3]`` over 2 passes is one
    pass of 3). A stage with fewer steps than passes has none in the later ones.

    Returns:
        One list per pass, one number of steps per stage (0: the stage does not run in that pass).
    """
    total = sum(steps)
    passes = max(1, min(passes, total // 2))
    return [[n // passes + (1 if p < n % passes else 0) for n in steps] for p in range(passes)]


def mean_summary(summaries: Sequence[LossSummary]) -> LossSummary:
    """The tiles' mean loss, term by term (each weighted part stays ``weight × raw``, and the total
    the sum of the parts): a tiled scale's loss comparable with one untiled image's."""
    n = len(summaries)
    names = list(dict.fromkeys(name for s in summaries for name in s.weighted))
    return LossSummary(
        {k: math.fsum(s.raw.get(k, 0.0) for s in summaries) / n for k in names},
        {k: math.fsum(s.weighted.get(k, 0.0) for s in summaries) / n for k in names},
    )


def pass_offsets(passes: int, stride: int, seed: int) -> list[tuple[int, int]]:
    """The grid offset of each pass: (0, 0) first, then seeded random shifts in ``0..stride``."""
    rng = random.Random(seed)
    return [(0, 0)] + [(rng.randrange(stride), rng.randrange(stride)) for _ in range(passes - 1)]


def feather(tile: Tile, shape: tuple[int, int], overlap: int) -> Tensor:
    """The tile's blending window (1, 1, h, w) in [0, 1]: 1 inside, a linear ramp from 0 over the
    ``overlap`` px of every side that is not the image's border (where no neighbour blends in)."""
    height, width = shape

    def ramp(n: int, at_start: bool, at_end: bool) -> Tensor:
        w = torch.ones(n)
        k = min(overlap, n // 2)
        if k > 0:
            edge = (torch.arange(k, dtype=torch.float32) + 0.5) / k
            if not at_start:
                w[:k] = edge
            if not at_end:
                w[n - k :] = edge.flip(0)
        return w

    rows = ramp(tile.h, tile.y == 0, tile.y + tile.h >= height)
    cols = ramp(tile.w, tile.x == 0, tile.x + tile.w >= width)
    return (rows[:, None] * cols[None, :])[None, None]


def choose_tile(
    arch: str,
    layers: Iterable[str],
    shape: tuple[int, int],
    style_shapes: Sequence[tuple[int, int]],
    chain: Sequence,
    free: int | None,
    *,
    requested: int | None,
    auto: bool,
    size: int,
    scale_size: int | None = None,
) -> int | None:
    """The tile side for one scale, or ``None`` to optimise it whole.

    With ``requested`` (``--tile PX``) a scale larger than it is tiled. With ``auto`` a scale is
    tiled only when its estimate (:func:`~styleforge.stylize.memory.estimate_bytes`) does not fit
    in ``free`` bytes; the tile is then the largest multiple of 64 px whose estimate, plus what a
    tiled scale holds whole (:func:`~styleforge.stylize.memory.held_whole`), fits — and the style
    images' pass (:func:`~styleforge.stylize.memory.style_pass`), which tiles do not shrink, must
    fit too.

    ``size`` is the run's ``--size``, named in errors, and ``scale_size`` the long side of the scale
    ``shape`` belongs to (``None``: ``size``).

    Raises:
        ResourceError: Not even a 64 px tile fits, or the style images' pass alone does not.
    """
    layers = list(layers)
    height, width = shape
    if requested is not None:
        return requested if requested < max(height, width) else None
    if not auto or free is None or estimate_bytes(arch, layers, height, width, chain) <= free:
        return None
    where = (
        f"--size {size}"
        if scale_size is None or scale_size == size
        else f"--size {size} (its {scale_size} px scale)"
    )
    held, styles = held_whole(shape), style_pass(arch, layers, style_shapes)
    if held + styles > free:
        raise ResourceError(
            f"{where}: the style images' statistics at this size alone need about "
            f"{(held + styles) / 2**30:.1f} GiB and {free / 2**30:.1f} GiB is available; "
            "try a smaller --size or --style-scale"
        )
    for side in range(min(max(height, width), 8192) // 64 * 64, 63, -64):
        if estimate_bytes(arch, layers, min(side, height), min(side, width), chain) + held <= free:
            return side
    raise ResourceError(
        f"{where}: even 64 px tiles need more than the {free / 2**30:.1f} GiB available; try a smaller --size"
    )
