"""Synthetic compositions whose eight ACAN attributes are known by construction.

ACAN's hand-labelled WikiArt images are not public, so styleforge ships a generator: flat-coloured
pictures of shapes (circles, squares, stars, ...) with flat or patterned fills, whose attributes are
measured from what was drawn. Training, scoring and attribute-guided transfer can then be shown and
tested end to end with no outside data. It is not a substitute for real paintings: the network learns
these rules, not taste.

How each label is set (all numeric labels are floats on 1..10, rounded to one decimal):

- ``pri_color``: drawn first. Each colour class has a hue (:data:`HUES`; ``black`` is a near-black
  colour) and that colour is given to the largest area of the picture; the other colours of the
  primary hue take the next largest areas, so the primary hue also covers the most pixels.
- ``harmony``: the palette's hues follow the rule (:data:`HARMONY_OFFSETS`): analogous ±30°,
  complementary +180°, monochromatic one hue at several lightnesses / saturations, split
  complementary +150°/+210°, triadic +120°/+240°, tetradic +90°/+180°/+270°. Every hue of the rule
  is used. For ``black`` the rule applies to the other colours, around a random hue.
- ``variety_color``: the number of distinct colours that cover a visible area (background included),
  2 -> 1 ... 8 -> 10.
- ``contrast``: the luma range (ITU-R 601, as Pillow's ``convert("L")``) between the lightest and the
  darkest of those colours, 0.03 -> 1 ... 0.85 -> 10.
- ``variety_shape``: the number of distinct shape kinds visible, 1 -> 1 ... 8 -> 10 (shapes with a
  radius under 3 pixels are too small to tell and do not count).
- ``variety_texture``: the number of distinct fills visible (flat, stripes, dots, noise, hatch,
  checker), 1 -> 1 ... 6 -> 10; a pattern counts where at least two periods squared of it show.
- ``variety_size``: ``log2(largest / smallest)`` shape radius among visible shapes, 0 -> 1 ...
  ``log2(5)`` -> 10.
- ``repetition``: how much of the composition is repeated motifs (identical copies of one shape,
  size, colour and fill on a grid or a row). Each motif scores the mean of its share of the visible
  shapes' area and of their number, times ``min(1, (copies - 1) / 7)``; the sum, 0 -> 1 ...
  0.85 -> 10. No motif rates 1.

A shape counts as visible when at least 30 % of it (and at least 3 pixels) is not covered by later
shapes; a colour counts when it covers at least 0.3 % of the picture (and at least 4 pixels).
Colours are drawn exactly (no anti-aliasing), so these counts can be checked on the pixels.
"""

from __future__ import annotations

import colorsys
import csv
import io
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, PngImagePlugin

from ..config import DatasetConfig
from ..errors import InvalidParameter, StyleforgeError
from ..files import IMAGE_EXTENSIONS, write_atomic
from ..machine import check_fits, cpu_memory_available
from ..signals import Interrupt, keeping, watch
from .schema import ACAN_SCHEMA

__all__ = [
    "HUES",
    "HARMONY_OFFSETS",
    "SHAPES",
    "TEXTURES",
    "LUMA",
    "make_image",
    "make_dataset",
    "write_dataset",
    "DatasetResult",
]

#: Hue angle in degrees of each ``pri_color`` class; ``None`` for black (a near-black colour).
HUES: dict[str, float | None] = {
    "black": None,
    "blue": 240.0,
    "blue-cyan": 210.0,
    "blue-magenta": 270.0,
    "cyan": 180.0,
    "green": 120.0,
    "green-cyan": 150.0,
    "green-yellow": 90.0,
    "magenta": 300.0,
    "orange": 30.0,
    "red": 0.0,
    "red-magenta": 330.0,
    "yellow": 60.0,
}

#: Hue offsets in degrees from the primary hue, for each ``harmony`` class.
HARMONY_OFFSETS: dict[str, tuple[float, ...]] = {
    "analogous": (0.0, -30.0, 30.0),
    "complementary": (0.0, 180.0),
    "monochromatic": (0.0,),
    "split complementary": (0.0, 150.0, 210.0),
    "tetradic": (0.0, 90.0, 180.0, 270.0),
    "triadic": (0.0, 120.0, 240.0),
}

#: The shape kinds drawn (``variety_shape`` counts distinct ones).
SHAPES: tuple[str, ...] = ("circle", "ellipse", "square", "triangle", "diamond", "hexagon", "star", "cross")

#: The fills drawn (``variety_texture`` counts distinct ones); patterns alternate two palette colours.
TEXTURES: tuple[str, ...] = ("flat", "stripes", "dots", "noise", "hatch", "checker")

#: ITU-R 601 luma weights of R, G, B (what Pillow's ``convert("L")`` uses), for values in [0, 1].
LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)

_MAX_COLORS = 8
_CONTRAST_RANGE = (0.03, 0.85)  # luma range mapped onto 1..10
_RADIUS_RANGE = (0.065, 0.325)  # shape radius as a fraction of the picture side
_SIZE_SPREAD_MAX = math.log2(_RADIUS_RANGE[1] / _RADIUS_RANGE[0])  # log2(5)
_MAX_SHAPES = 12  # free (non-motif) shapes
_REPETITION_FULL = 0.85  # repeated share that rates 10
_MIN_COLOR_DISTANCE = 30.0  # Euclidean, 0..255 RGB, between palette colours


def _rating(value: float, lo: float, hi: float) -> float:
    """Maps ``[lo, hi]`` linearly onto 1..10 (clipped), rounded to one decimal."""
    unit = min(1.0, max(0.0, (value - lo) / (hi - lo)))
    return round(1.0 + 9.0 * unit, 1)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of RGB values in [0, 1]; shape ``(..., 3)`` -> ``(...)``."""
    return rgb @ np.asarray(LUMA)


# --------------------------------------------------------------------------------------------------
# Palette


def _color(hue: float, saturation: float, luma: float) -> np.ndarray:
    """An RGB colour in [0, 1] of the given hue (degrees) and saturation with the given luma.

    The fully bright colour of that hue and saturation is darkened to reach a lower luma, or mixed
    with white to reach a higher one (which lowers its saturation), so any luma in [0, 1] is reachable.
    """
    full = np.asarray(colorsys.hsv_to_rgb((hue % 360.0) / 360.0, saturation, 1.0))
    full_luma = float(_luma(full))
    if luma <= full_luma:
        return full * (luma / full_luma)
    t = (luma - full_luma) / (1.0 - full_luma) if full_luma < 1.0 else 0.0
    return full + (1.0 - full) * t


def _to_bytes(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


@dataclass
class _Palette:
    """``colors``: (k, 3) uint8; ``priority``: colour indices, the one for the largest area first."""

    colors: np.ndarray
    priority: list[int]


def _palette(rng: np.random.Generator, pri_color: str, harmony: str, k: int, luma_range: float) -> _Palette:
    """Builds ``k`` distinct colours by the harmony rule around the primary colour.

    Colour 0 is the primary colour. The lumas span ``luma_range``: the primary colour sits inside
    that window and two other colours at its ends (one, when the primary colour is at an end).
    """
    offsets = HARMONY_OFFSETS[harmony]
    black = HUES[pri_color] is None
    base = rng.uniform(0.0, 360.0) if black else float(HUES[pri_color]) + rng.uniform(-6.0, 6.0)  # type: ignore[arg-type]
    groups = _hue_groups(rng, black, len(offsets), k)
    # Primary colour and the luma window [low, low + luma_range].
    if black:
        primary = (base, rng.uniform(0.0, 0.35), rng.uniform(0.012, 0.045))
    else:
        saturation = rng.uniform(0.6, 1.0)
        natural = float(_luma(np.asarray(colorsys.hsv_to_rgb((base % 360.0) / 360.0, saturation, 1.0))))
        primary = (base, saturation, max(0.15, natural * rng.uniform(0.6, 1.0)))
    low, high = _luma_window(rng, primary[2], luma_range, black, k)
    lumas: list[float | None] = [None] * k
    others = [int(i) for i in rng.permutation(np.arange(1, k))]
    need = [end for end in (low, high) if abs(end - primary[2]) > 1e-9]
    for i, end in zip(others, need):
        lumas[i] = end
    colors = [_to_bytes(_color(*primary))]
    for i in range(1, k):
        colors.append(
            _distinct_color(rng, base + offsets[groups[i]], groups[i] == 0, lumas[i], low, high, colors)
        )
    return _Palette(np.stack(colors), _area_order(rng, groups, len(offsets)))


def _hue_groups(rng: np.random.Generator, black: bool, n_hues: int, k: int) -> list[int]:
    """Which hue of the harmony rule each of the ``k`` colours has (-1: the black primary colour);
    every hue has at least one colour, and the primary hue (0) at least as many as any other."""
    if black:
        return [-1, *range(n_hues), *rng.integers(0, n_hues, size=k - 1 - n_hues).tolist()]
    groups = [0, *range(1, n_hues), *rng.integers(0, n_hues, size=k - n_hues).tolist()]
    # The primary hue has at least as many colours as any other hue, so that giving its colours
    # the largest areas makes it the hue that covers the most pixels.
    while True:
        counts = np.bincount(groups, minlength=n_hues)
        other = int(np.argmax(counts[1:])) + 1 if n_hues > 1 else 0
        if n_hues == 1 or counts[other] <= counts[0]:
            return groups
        groups[len(groups) - 1 - groups[::-1].index(other)] = 0


def _luma_window(
    rng: np.random.Generator, y_p: float, luma_range: float, black: bool, k: int
) -> tuple[float, float]:
    """The palette's luma window ``(low, high)``, ``luma_range`` wide where it fits in [0, 1],
    around the primary colour's luma ``y_p`` (starting at it for black; with 2 colours, ending at
    it on one side)."""
    luma_range = min(luma_range, 1.0)
    if black:
        low = y_p
        luma_range = min(luma_range, 1.0 - y_p)
    elif k == 2:
        ends = [lo for lo in (y_p - luma_range, y_p) if lo >= 0.0 and lo + luma_range <= 1.0]
        if not ends:  # the range does not fit on either side: use the wider side
            luma_range = max(y_p, 1.0 - y_p)
            ends = [0.0 if y_p > 0.5 else y_p]
        low = float(ends[int(rng.integers(0, len(ends)))])
    else:
        low = rng.uniform(max(0.0, y_p - luma_range), min(y_p, 1.0 - luma_range))
    return low, low + luma_range


def _distinct_color(
    rng: np.random.Generator,
    hue: float,
    primary_hue: bool,
    luma: float | None,
    low: float,
    high: float,
    colors: list[np.ndarray],
) -> np.ndarray:
    """A colour of ``hue`` (± 4°) at ``luma`` (``None``: anywhere in the window), the farthest from
    ``colors`` of up to 25 tries (the first at least :data:`_MIN_COLOR_DISTANCE` away)."""
    best, best_distance = None, -1.0
    for _ in range(25):
        saturation = rng.uniform(0.45 if primary_hue else 0.3, 1.0)
        target = luma if luma is not None else rng.uniform(low, high)
        candidate = _to_bytes(_color(hue + rng.uniform(-4.0, 4.0), saturation, target))
        distance = min(float(np.linalg.norm(candidate.astype(float) - c)) for c in colors)
        if distance > best_distance:
            best, best_distance = candidate, distance
        if distance >= _MIN_COLOR_DISTANCE:
            break
    return best  # type: ignore[return-value]


def _area_order(rng: np.random.Generator, groups: list[int], n_hues: int) -> list[int]:
    """The colours from the largest area down: the primary colour, the rest of its hue, one colour
    of each other hue (so every hue of the rule is seen), then the others."""
    k = len(groups)
    same = [i for i in range(1, k) if groups[i] == groups[0]]
    rng.shuffle(same)
    first_of_hue: list[int] = []
    for hue_index in rng.permutation(n_hues).tolist():
        members = [i for i in range(1, k) if groups[i] == hue_index and i not in same]
        if members:
            first_of_hue.append(members[int(rng.integers(0, len(members)))])
    rest = [i for i in range(1, k) if i not in same and i not in first_of_hue]
    rng.shuffle(rest)
    return [0, *same, *first_of_hue, *rest]


# --------------------------------------------------------------------------------------------------
# Shapes and fills


@dataclass
class _Shape:
    kind: str
    radius: float  # pixels
    texture: str
    group: int = -1  # index of its motif, -1 for a free shape
    slot_a: int = 1  # palette slot of the fill (and of the pattern's first colour)
    slot_b: int = 0  # palette slot of the pattern's second colour (unused when flat)
    flip: bool = False  # triangle upside down / ellipse upright
    angle: int = 0  # stripe direction, degrees
    noise: np.ndarray | None = field(default=None, repr=False)
    x: int = 0
    y: int = 0


def _outline(kind: str, r: float, c: float, flip: bool) -> list[tuple[float, float]] | tuple[float, ...]:
    """The polygon (or, for circles and ellipses, the bounding box) of a shape centred at ``(c, c)``."""
    if kind == "circle":
        return (c - r, c - r, c + r, c + r)
    if kind == "ellipse":
        rx, ry = (0.5 * r, r) if flip else (r, 0.5 * r)
        return (c - rx, c - ry, c + rx, c + ry)
    if kind == "square":
        h = 0.85 * r
        return [(c - h, c - h), (c + h, c - h), (c + h, c + h), (c - h, c + h)]
    if kind == "cross":
        w = 0.34 * r
        pts = [
            (w, -r),
            (w, -w),
            (r, -w),
            (r, w),
            (w, w),
            (w, r),
            (-w, r),
            (-w, w),
            (-r, w),
            (-r, -w),
            (-w, -w),
            (-w, -r),
        ]
        return [(c + x, c + y) for x, y in pts]
    if kind == "triangle":
        start, n, radii = (90.0 if flip else -90.0), 3, (1.1 * r,)
    elif kind == "diamond":
        start, n, radii = -90.0, 4, (r,)
    elif kind == "hexagon":
        start, n, radii = 0.0, 6, (r,)
    else:  # star
        start, n, radii = -90.0, 10, (1.15 * r, 0.48 * r)
    return [
        (
            c + radii[i % len(radii)] * math.cos(math.radians(start + 360.0 * i / n)),
            c + radii[i % len(radii)] * math.sin(math.radians(start + 360.0 * i / n)),
        )
        for i in range(n)
    ]


def _sprite(shape: _Shape, period: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The shape's mask and fill pattern on a small square canvas centred on the shape.

    Returns:
        ``(mask, pattern, c)``: two bool arrays ``(2c+1, 2c+1)``, ``pattern`` True where the fill's
        first colour goes, and ``c``, the index of the centre pixel.
    """
    c = int(math.ceil(1.2 * shape.radius)) + 1
    side = 2 * c + 1
    image = Image.new("1", (side, side), 0)
    draw = ImageDraw.Draw(image)
    outline = _outline(shape.kind, shape.radius, float(c), shape.flip)
    if shape.kind in ("circle", "ellipse"):
        draw.ellipse(outline, fill=1)  # type: ignore[arg-type]
    else:
        draw.polygon(outline, fill=1)  # type: ignore[arg-type]
    mask = np.array(image, dtype=bool)

    dy, dx = np.mgrid[-c : c + 1, -c : c + 1]
    p = period
    if shape.texture == "flat":
        pattern = np.ones_like(mask)
    elif shape.texture == "stripes":
        direction = math.radians(shape.angle)
        pattern = np.floor((dx * math.cos(direction) + dy * math.sin(direction)) / (p / 2.0)) % 2 == 0
    elif shape.texture == "dots":
        u, v = (dx % p) - (p - 1) / 2.0, (dy % p) - (p - 1) / 2.0
        pattern = u * u + v * v > (0.32 * p) ** 2
    elif shape.texture == "noise":
        assert shape.noise is not None
        block = max(1, p // 3)
        tile = shape.noise
        pattern = tile[(dy // block) % tile.shape[0], (dx // block) % tile.shape[1]]
    elif shape.texture == "hatch":
        pattern = ~(((dx + dy) % p == 0) | ((dx - dy) % p == 0))
    else:  # checker
        q = max(2, p // 2)
        pattern = ((dx // q) + (dy // q)) % 2 == 0
    return mask, pattern, c


def _place_free(
    rng: np.random.Generator, shape: _Shape, placed: list[tuple[float, float, float]], size: int
) -> None:
    """Puts a free shape where it overlaps the shapes already placed least (best of 24 tries)."""
    r = shape.radius
    lo, hi = min(0.7 * r, size / 2.0), max(size - 0.7 * r, size / 2.0)
    candidates = rng.uniform(lo, hi, size=(24, 2))
    if placed:
        others = np.asarray(placed)
        d = np.hypot(candidates[:, None, 0] - others[None, :, 0], candidates[:, None, 1] - others[None, :, 1])
        overlap = np.clip(0.95 * (r + others[None, :, 2]) - d, 0.0, None) / np.minimum(r, others[None, :, 2])
        cost = overlap.sum(axis=1)
    else:
        cost = np.zeros(len(candidates))
    best = candidates[int(np.argmin(cost))]
    shape.x, shape.y = int(round(best[0])), int(round(best[1]))
    placed.append((shape.x, shape.y, r))


# --------------------------------------------------------------------------------------------------
# One composition


def _checked(**options: object) -> DatasetConfig:
    """``make-dataset``'s options (NumPy's whole numbers too) as its configuration, each checked as
    declared; those not given are the defaults.

    Raises:
        InvalidParameter: The first invalid option, named as on the command line.
    """
    whole = {
        k: int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else v
        for k, v in options.items()
    }
    config = DatasetConfig(**whole)  # type: ignore[arg-type]
    config.check()
    return config


def make_image(rng: np.random.Generator, size: int) -> tuple[Image.Image, dict[str, float | str]]:
    """Draws one composition and measures its eight ACAN attributes.

    Args:
        rng: The source of randomness; the same generator state gives the same picture.
        size: The side of the square picture in pixels (>= 16).

    Returns:
        ``(image, labels)``: an RGB image ``size`` x ``size``, and the labels keyed by the ACAN
        attribute names in :data:`~styleforge.attributes.schema.ACAN_SCHEMA` order; numeric labels are
        floats on 1..10 with one decimal, categorical labels are class names of that schema.

    Raises:
        InvalidParameter: If ``size`` is not a whole number >= 16 (``--size``).
    """
    size = _checked(size=size).size
    plan = _plan(rng, size)
    # Sizes: radii between r_low and r_high = r_low * 2**spread.
    r_low = rng.uniform(_RADIUS_RANGE[0], _RADIUS_RANGE[1] / 2.0**plan.spread) * size
    r_high = r_low * 2.0**plan.spread
    motifs, grid = _motif_grid(rng, plan, size, r_low, r_high) if plan.repetition >= 0.12 else ([], [])
    free, n_colors = _free_shapes(rng, plan, motifs)
    _free_radii(rng, free, motifs, r_low, r_high)
    _assign_slots(rng, [*motifs, *free], n_colors)
    instances = _arrange(rng, motifs, grid, free, size)
    canvas = _rasterise(instances, size, plan.period)
    # Colours: the primary colour on the largest slot, and so on down (see _palette).
    palette = _palette(rng, plan.pri_color, plan.harmony, n_colors, plan.luma_range)
    area = np.bincount(canvas.slots.ravel(), minlength=n_colors)
    by_area = sorted(range(n_colors), key=lambda s: (-area[s], s))
    lut = np.zeros((n_colors, 3), dtype=np.uint8)
    for slot, color in zip(by_area, palette.priority):
        lut[slot] = palette.colors[color]
    image = Image.fromarray(lut[canvas.slots], "RGB")
    return image, _measure(plan, instances, len(motifs), canvas, lut, area, size)


@dataclass
class _Plan:
    """The random choices a composition starts from (see the module docstring for each label)."""

    pri_color: str
    harmony: str
    kinds: list[str]  # the shape kinds to draw
    textures: list[str]  # the fills to draw
    spread: float  # log2 of the largest over the smallest radius
    luma_range: float  # the palette's luma range
    repetition: float  # in [0, 1): how much of the picture is repeated motifs
    n_colors: int  # palette colours asked for (the picture may show fewer)
    period: int  # the fills' pattern period in pixels


def _plan(rng: np.random.Generator, size: int) -> _Plan:
    """Draws the composition's targets: the two categorical labels, how many shape kinds and fills,
    the size spread, the luma range, the repetition, the number of colours and the pattern period."""
    pri_color = str(rng.choice(ACAN_SCHEMA["pri_color"].classes))  # type: ignore[union-attr]
    harmony = str(rng.choice(ACAN_SCHEMA["harmony"].classes))  # type: ignore[union-attr]
    n_kinds = int(rng.integers(1, len(SHAPES) + 1))
    n_textures = int(rng.integers(1, len(TEXTURES) + 1))
    spread = rng.uniform(0.0, _SIZE_SPREAD_MAX)
    luma_range = rng.uniform(*_CONTRAST_RANGE)
    repetition = rng.uniform(0.0, 1.0)
    min_colors = len(HARMONY_OFFSETS[harmony]) + (1 if HUES[pri_color] is None else 0)
    n_colors = int(rng.integers(max(2, min_colors), _MAX_COLORS + 1))
    period = max(4, int(round(size / 12.0 * rng.uniform(0.8, 1.25))))
    kinds = [str(s) for s in rng.choice(SHAPES, size=n_kinds, replace=False)]
    textures = [str(t) for t in rng.choice(TEXTURES, size=n_textures, replace=False)]
    return _Plan(pri_color, harmony, kinds, textures, spread, luma_range, repetition, n_colors, period)


def _new_shape(rng: np.random.Generator, kind: str, texture: str, radius: float, group: int = -1) -> _Shape:
    """A shape with a random orientation and stripe direction (and noise tile, for ``noise``)."""
    return _Shape(
        kind,
        radius,
        texture,
        group,
        flip=bool(rng.integers(0, 2)),
        angle=int(rng.choice([0, 45, 90, 135])),
        noise=rng.random((16, 16)) < 0.5 if texture == "noise" else None,
    )


def _motif_grid(
    rng: np.random.Generator, plan: _Plan, size: int, r_low: float, r_high: float
) -> tuple[list[_Shape], list[tuple[int, int, int]]]:
    """Repeated motifs: a grid (or a row) of identical copies of one or two motifs, more copies the
    higher ``plan.repetition``.

    Returns:
        ``(motifs, grid)``: the motifs (``group`` = their index) and the copies as
        ``(motif, x, y)``, centres in pixels.
    """
    n_kinds, n_textures = len(plan.kinds), len(plan.textures)
    n_motifs = 2 if rng.random() < 0.3 else 1
    copies = max(2 * n_motifs, int(round(2 + (plan.repetition - 0.12) / 0.88 * 14)))
    if copies <= 5 and rng.random() < 0.5:
        rows, cols = 1, copies
    else:
        cols = int(math.ceil(math.sqrt(copies)))
        rows = int(math.ceil(copies / cols))
    if rng.random() < 0.5:
        rows, cols = cols, rows
    fit = 0.94 * size / (2.3 * max(rows, cols))
    radius = float(
        np.clip(rng.uniform(r_low, r_high), _RADIUS_RANGE[0] * size, max(fit, _RADIUS_RANGE[0] * size))
    )
    motifs = [
        _new_shape(rng, plan.kinds[m % n_kinds], plan.textures[m % n_textures], radius, group=m)
        for m in range(n_motifs)
    ]
    pitch = max(int(math.ceil(2.0 * radius)) + 1, int(round(2.0 * radius * rng.uniform(1.15, 1.6))))
    pitch = min(pitch, max(int(math.ceil(2.0 * radius)) + 1, int((0.96 * size) // max(rows, cols))))
    width, height = (cols - 1) * pitch, (rows - 1) * pitch
    margin = int(math.ceil(radius))
    x0 = int(rng.integers(margin, max(margin, size - margin - width) + 1))
    y0 = int(rng.integers(margin, max(margin, size - margin - height) + 1))
    checker = n_motifs == 2 and rng.random() < 0.5
    grid: list[tuple[int, int, int]] = []
    for i in range(copies):
        row, col = divmod(i, cols)
        motif = (row + col) % n_motifs if checker else i % n_motifs
        grid.append((motif, x0 + col * pitch, y0 + row * pitch))
    return motifs, grid


def _free_shapes(rng: np.random.Generator, plan: _Plan, motifs: list[_Shape]) -> tuple[list[_Shape], int]:
    """Free shapes (radius still 0): cover the kinds and fills the motifs do not, plus a few more
    (fewer the more repetition), plus what it takes for the fills to use the colours asked for.

    Returns:
        ``(free, n_colors)``: the shapes, and the number of palette colours the picture can show.
    """
    kinds, textures = plan.kinds, plan.textures
    n_kinds, n_textures, n_motifs = len(kinds), len(textures), len(motifs)
    n_free = max(n_kinds - n_motifs, n_textures - n_motifs, 0 if motifs else 1)
    n_free += int(rng.integers(0, 1 + int(round(3 * (1.0 - plan.repetition)))))
    n_free = min(n_free, _MAX_SHAPES)
    free: list[_Shape] = []
    for i in range(n_free):
        kind = kinds[n_motifs + i] if n_motifs + i < n_kinds else kinds[int(rng.integers(0, n_kinds))]
        texture = (
            textures[n_motifs + i]
            if n_motifs + i < n_textures
            else textures[int(rng.integers(0, n_textures))]
        )
        free.append(_new_shape(rng, kind, texture, 0.0))

    def uses() -> int:  # palette slots the picture can show: background + each fill's colour(s)
        return 1 + sum(1 + (s.texture != "flat") for s in [*motifs, *free])

    while uses() < plan.n_colors and len(free) < _MAX_SHAPES:
        kind, texture = kinds[int(rng.integers(0, n_kinds))], textures[int(rng.integers(0, n_textures))]
        free.append(_new_shape(rng, kind, texture, 0.0))
    return free, max(min(plan.n_colors, uses()), 2)


def _free_radii(
    rng: np.random.Generator, free: list[_Shape], motifs: list[_Shape], r_low: float, r_high: float
) -> None:
    """Gives the free shapes log-uniform radii in ``[r_low, r_high]``, the extremes first so the
    spread is realised (the end the motifs do not hold first)."""
    radii = np.exp(rng.uniform(math.log(r_low), math.log(r_high), size=len(free)))
    ends = [r_high, r_low]
    if motifs:  # the motif holds one size; give the free shapes the other end first
        ends = (
            [r_low, r_high]
            if abs(motifs[0].radius - r_high) < abs(motifs[0].radius - r_low)
            else [r_high, r_low]
        )
    for i, r in enumerate(ends[: len(free)]):
        radii[i] = r
    for shape, r in zip(free, rng.permutation(radii)):
        shape.radius = float(r)


def _assign_slots(rng: np.random.Generator, fills: list[_Shape], n_colors: int) -> None:
    """Sets each shape's palette slots (``slot_a``, and ``slot_b`` for a pattern).

    Slot 0 is the background; every slot is used by some fill. Fills' first colours take the slots
    first, so a first colour always has a slot left to choose.
    """
    positions = [(fills[j], "a") for j in rng.permutation(len(fills)).tolist()]
    textured = [s for s in fills if s.texture != "flat"]
    positions += [(textured[j], "b") for j in rng.permutation(len(textured)).tolist()]
    required = rng.permutation(np.arange(1, n_colors)).tolist()
    assigned: set[tuple[int, str]] = set()
    for (shape, which), slot in zip(positions, required):
        setattr(shape, "slot_" + which, int(slot))
        assigned.add((id(shape), which))
    for shape, which in positions:
        if (id(shape), which) in assigned:
            continue
        if which == "a":
            choices = [
                s for s in range(1, n_colors) if not ((id(shape), "b") in assigned and s == shape.slot_b)
            ]
        else:
            choices = [s for s in range(n_colors) if s != shape.slot_a]
        setattr(shape, "slot_" + which, int(choices[int(rng.integers(0, len(choices)))]))
        assigned.add((id(shape), which))


def _arrange(
    rng: np.random.Generator,
    motifs: list[_Shape],
    grid: list[tuple[int, int, int]],
    free: list[_Shape],
    size: int,
) -> list[_Shape]:
    """Places the shapes and returns them in drawing order.

    Placement: the motif grid first, then the free shapes (largest first) where they overlap least.
    Drawing: the free shapes bigger than the motif, the motif grid (one copy per cell), then the
    smaller free shapes on top.
    """
    placed = [(float(x), float(y), motifs[m].radius) for m, x, y in grid]
    for shape in sorted(free, key=lambda s: -s.radius):
        _place_free(rng, shape, placed, size)
    motif_radius = motifs[0].radius if motifs else 0.0
    instances = sorted([s for s in free if s.radius > motif_radius], key=lambda s: -s.radius)
    for m, x, y in grid:
        copy = _Shape(**{**motifs[m].__dict__})
        copy.x, copy.y = x, y
        instances.append(copy)
    instances.extend(sorted([s for s in free if s.radius <= motif_radius], key=lambda s: -s.radius))
    return instances


@dataclass
class _Canvas:
    """The drawn picture before it has colours.

    Attributes:
        slots: ``(size, size)`` uint8, the palette slot of each pixel (0: background).
        owner: ``(size, size)`` int32, the index of the shape each pixel shows (-1: background).
        drawn: Pixels each shape covered when drawn (before later shapes covered some).
    """

    slots: np.ndarray
    owner: np.ndarray
    drawn: np.ndarray


def _rasterise(instances: list[_Shape], size: int, period: int) -> _Canvas:
    """Draws the shapes in order, each over the ones before (the copies of a motif share a sprite)."""
    slots = np.zeros((size, size), dtype=np.uint8)
    owner = np.full((size, size), -1, dtype=np.int32)
    drawn = np.zeros(len(instances), dtype=np.int64)
    sprites: dict[int, tuple[np.ndarray, np.ndarray, int]] = {}
    for n, shape in enumerate(instances):
        key = shape.group if shape.group >= 0 else 1000 + n
        if key not in sprites:
            sprites[key] = _sprite(shape, period)
        mask, pattern, c = sprites[key]
        top, left = shape.y - c, shape.x - c
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + mask.shape[0], size), min(left + mask.shape[1], size)
        if y1 <= y0 or x1 <= x0:
            continue
        m = mask[y0 - top : y1 - top, x0 - left : x1 - left]
        pat = pattern[y0 - top : y1 - top, x0 - left : x1 - left]
        fill = np.where(pat, shape.slot_a, shape.slot_b).astype(np.uint8)
        slots[y0:y1, x0:x1][m] = fill[m]
        owner[y0:y1, x0:x1][m] = n
        drawn[n] = int(m.sum())
    return _Canvas(slots, owner, drawn)


def _measure(
    plan: _Plan,
    instances: list[_Shape],
    n_motifs: int,
    canvas: _Canvas,
    lut: np.ndarray,
    area: np.ndarray,
    size: int,
) -> dict[str, float | str]:
    """The eight labels, measured from what was drawn (the rules of the module docstring).

    Args:
        plan: The composition's plan (its categorical labels and pattern period).
        instances: The shapes in drawing order.
        n_motifs: How many motifs the grid repeats (their shapes' ``group``).
        canvas: The drawing.
        lut: ``(n_colors, 3)`` uint8, each palette slot's colour.
        area: Pixels of each palette slot.
        size: The picture's side.
    """
    owner, drawn, period = canvas.owner, canvas.drawn, plan.period
    shown = np.bincount(owner.ravel() + 1, minlength=len(instances) + 1)[1:]
    visible = [i for i, s in enumerate(instances) if drawn[i] > 0 and shown[i] >= max(3, 0.3 * drawn[i])]
    min_area = max(4, int(math.ceil(0.003 * size * size)))
    used = {tuple(int(v) for v in lut[s]) for s in range(len(lut)) if area[s] >= min_area}
    lumas = _luma(np.asarray(sorted(used), dtype=float) / 255.0)
    # A kind counts when the shape is big enough to tell (radius >= 3 px), a fill when enough of it
    # shows to see the pattern (2 periods squared); a smaller shape still counts for size and colour.
    kinds_seen = {instances[i].kind for i in visible if instances[i].radius >= 3.0}
    textures_seen = {
        instances[i].texture
        for i in visible
        if instances[i].texture == "flat" or shown[i] >= 2 * period * period
    }
    radii_seen = [instances[i].radius for i in visible]
    spread_seen = math.log2(max(radii_seen) / min(radii_seen)) if radii_seen else 0.0
    shape_area = float(sum(shown[i] for i in visible))
    repeated = 0.0
    for m in range(n_motifs):
        members = [i for i in visible if instances[i].group == m]
        if len(members) >= 2:
            share = 0.5 * sum(float(shown[i]) for i in members) / shape_area + 0.5 * len(members) / len(
                visible
            )
            repeated += share * min(1.0, (len(members) - 1) / 7.0)
    return {
        "variety_texture": _rating(len(textures_seen), 1, len(TEXTURES)),
        "variety_shape": _rating(len(kinds_seen), 1, len(SHAPES)),
        "variety_size": _rating(spread_seen, 0.0, _SIZE_SPREAD_MAX),
        "variety_color": _rating(len(used), 2, _MAX_COLORS),
        "contrast": _rating(float(lumas.max() - lumas.min()) if len(lumas) else 0.0, *_CONTRAST_RANGE),
        "repetition": _rating(repeated, 0.0, _REPETITION_FULL),
        "pri_color": plan.pri_color,
        "harmony": plan.harmony,
    }


# --------------------------------------------------------------------------------------------------
# A data set on disk


#: Peak bytes per pixel of drawing one composition and encoding it (measured: 32 for the arrays
#: Python allocates, plus Pillow's image and the PNG encoder's buffers).
_BYTES_PER_PIXEL = 48
#: What drawing needs whatever the size (the sprites of small pictures, the interpreter's working set).
_FIXED_BYTES = 16 * 2**20
#: An image file styleforge's layout names ``images/0000.png`` ...
_IMAGE_NAME = re.compile(r"\d{4,}\.png")


@dataclass(frozen=True)
class DatasetResult:
    """What :func:`write_dataset` wrote.

    Attributes:
        labels: The labels CSV (listing exactly the images written).
        written: Images written (and listed).
        count: Images asked for.
        stop_signal: The signal that stopped the run early (Ctrl-C, SIGTERM), else ``None``.
    """

    labels: Path
    written: int
    count: int
    stop_signal: int | None = None


def _check_folder(out_dir: Path, overwrite: bool) -> list[Path]:
    """Refuses a folder that holds a data set (a labels CSV, or images) unless ``overwrite``; returns
    the images of an earlier data set of this layout there, which ``overwrite`` removes."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidParameter("OUT", str(out_dir), "a folder to write the data set to (this is a file)")
    images_dir = out_dir / "images"
    ours = (
        sorted(p for p in images_dir.glob("*.png") if _IMAGE_NAME.fullmatch(p.name))
        if images_dir.is_dir()
        else []
    )
    if overwrite:
        return ours
    found = sorted(
        p for p in out_dir.glob("*") if p.is_file() and p.suffix.lower() in (".csv", *IMAGE_EXTENSIONS)
    )
    if images_dir.is_dir() and any(p.is_file() for p in images_dir.iterdir()):
        found.insert(0, images_dir)
    if found:
        names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in found[:3]) + (
            ", ..." if len(found) > 3 else ""
        )
        raise InvalidParameter(
            "OUT",
            str(out_dir),
            "a new or empty folder",
            f"it holds {names}: choose another folder, or pass --overwrite to replace that data set",
        )
    return []


def write_dataset(
    out_dir: str | Path,
    count: int,
    seed: int = 0,
    size: int = 64,
    *,
    overwrite: bool = False,
    interrupt: Interrupt | None = None,
) -> DatasetResult:
    """Writes ``count`` synthetic compositions and their labels in styleforge's own CSV layout.

    Layout: ``out_dir/images/0000.png`` ... and ``out_dir/labels.csv`` with the header
    ``image,variety_texture,variety_shape,variety_size,variety_color,contrast,repetition,pri_color,harmony``
    (``image`` relative to ``out_dir``). Image ``i`` depends only on ``seed`` and ``i`` (not on
    ``count``), and the same arguments give byte-identical files. Each PNG carries its generator
    parameters and labels in a ``styleforge`` text chunk. Every file is written to a temporary name
    and renamed; the CSV is written last and lists exactly the images written, so a data set with a
    CSV is complete. A run stopped early (Ctrl-C, SIGTERM) writes the CSV of the images it finished.

    Args:
        out_dir: The folder to write to (created if missing).
        count: How many images (>= 1).
        seed: The random seed (>= 0).
        size: The side of each square image in pixels (>= 16).
        overwrite: Replace a data set already in ``out_dir`` (its ``labels.csv`` and the
            ``images/NNNN.png`` files of this layout); without it such a folder is refused.
        interrupt: The caller's stop flag (:func:`~styleforge.signals.stop_signals`); ``None``: this
            call installs its own.

    Returns:
        A :class:`DatasetResult`.

    Raises:
        InvalidParameter: ``--count``, ``--seed`` or ``--size`` out of range, ``out_dir`` is a file,
            or it holds a data set (a labels CSV or images) and ``overwrite`` is not set.
        ResourceError: One image at ``size`` would not fit in the memory available.
        StyleforgeError: An image could not be written (disk full); the CSV then lists the ones
            before it, and the message says so.
    """
    config = _checked(count=count, seed=seed, size=size)
    count, seed, size = config.count, config.seed, config.size
    out_dir = Path(out_dir)
    stale = _check_folder(out_dir, overwrite)
    check_fits(
        _BYTES_PER_PIXEL * size * size + _FIXED_BYTES,
        cpu_memory_available(),
        f"--size {size}",
        "a smaller --size",
    )
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "labels.csv"
    if overwrite:
        csv_path.unlink(missing_ok=True)  # the old list goes first: it would name images being replaced
        for path in stale:
            path.unlink(missing_ok=True)
    with watch(interrupt) as flag:
        rows, failure = _write_images(out_dir, count, seed, size, flag)
        listed = _write_labels_csv(csv_path, rows, failure, flag)
    if failure is not None:
        raise StyleforgeError(
            f"OUT: could not write image {len(rows) + 1} ({failure.strerror or failure}); the "
            f"{len(rows)} images before it are in {images_dir}, {listed}"
        )
    return DatasetResult(csv_path, len(rows), count, flag.signum if flag.requested else None)


def _png(image: Image.Image, labels: dict[str, float | str], seed: int, index: int, size: int) -> bytes:
    """The PNG file of one composition, its generator parameters and labels in a ``styleforge``
    text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "styleforge",
        json.dumps(
            {
                "generator": "styleforge.attributes.synthetic",
                "seed": seed,
                "index": index,
                "size": size,
                "labels": labels,
            }
        ),
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _write_images(
    out_dir: Path, count: int, seed: int, size: int, flag: Interrupt
) -> tuple[list[list[str]], OSError | None]:
    """Writes ``images/NNNN.png`` until ``count`` are written, a stop is asked for, or a write fails.

    Returns:
        ``(rows, failure)``: the CSV rows of the images written, and the error that stopped the
        run (``None``: none did).
    """
    names = ACAN_SCHEMA.names
    digits = max(4, len(str(count - 1)))
    rows: list[list[str]] = []
    for index, child in enumerate(np.random.SeedSequence(seed).spawn(count)):
        if flag.requested:
            break
        image, labels = make_image(np.random.default_rng(child), size)
        relative = f"images/{index:0{digits}d}.png"
        try:
            with keeping(flag):  # a signal now waits for the image to be written
                write_atomic(out_dir / relative, _png(image, labels, seed, index, size))
        except OSError as exc:  # disk full: keep what was written, listed
            return rows, exc
        rows.append(
            [relative]
            + [f"{labels[n]:.1f}" if isinstance(labels[n], float) else str(labels[n]) for n in names]
        )
    return rows, None


def _write_labels_csv(csv_path: Path, rows: list[list[str]], failure: OSError | None, flag: Interrupt) -> str:
    """Writes the labels CSV of the images written, whatever signal comes; returns the words that
    say where they are listed (for the message of an image that could not be written).

    Raises:
        StyleforgeError: The CSV could not be written either, and no image write failed before.
    """
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["image", *ACAN_SCHEMA.names])
    writer.writerows(rows)
    try:
        with keeping(flag):  # the list of what was written is written whatever comes
            write_atomic(csv_path, text.getvalue().encode("utf-8"))
    except OSError as exc:
        if failure is None:
            raise StyleforgeError(
                f"OUT: could not write {str(csv_path)!r} ({exc.strerror or exc}); the "
                f"{len(rows)} images are in {csv_path.parent / 'images'}"
            ) from None
        return f"and {csv_path.name} could not be written either ({exc.strerror or exc})"
    return f"{csv_path} lists them"


def make_dataset(
    out_dir: str | Path, count: int, seed: int = 0, size: int = 64, *, overwrite: bool = False
) -> Path:
    """:func:`write_dataset`, returning the path of ``labels.csv``."""
    return write_dataset(out_dir, count, seed, size, overwrite=overwrite).labels
