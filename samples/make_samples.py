"""Generate the bundled sample pictures for styleforge.

This script draws three small images that the examples, docs and tests use:

* ``content.jpg`` (512x384): a landscape with a gradient sky, a sun and soft
  clouds, three layered mountain ridges and a lake that reflects them.
* ``style_swirl.jpg`` (512x512): many short curved brush strokes in blues,
  yellows and whites following a swirling vector field, in the spirit of
  Starry Night.
* ``style_shapes.jpg`` (512x512): large flat facets, circles and cut-out
  leaves in saturated colours with hard black outlines, in the spirit of a
  cubist painting or a Matisse cut-out.

The pictures are generated procedurally rather than downloaded so that the
repository carries no third-party artwork, needs no network access, and the
files can always be rebuilt. Everything is driven by a fixed seed, so running
the script again reproduces the same bytes (with the same numpy and Pillow
builds). Only numpy and Pillow are needed.

Usage::

    python samples/make_samples.py [--out DIR]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SEED = 20240531
JPEG_QUALITY = 90

CONTENT_SIZE = (512, 384)  # (width, height)
STYLE_SIZE = (512, 512)

Color = tuple[int, int, int]


def _rng(stream: int) -> np.random.Generator:
    """Return an independent, reproducible random generator.

    Args:
        stream: Index that separates the random streams of different images,
            so changing one image never changes the others.

    Returns:
        A numpy generator seeded from ``SEED`` and ``stream``.
    """
    return np.random.default_rng([SEED, stream])


def _to_image(pixels: np.ndarray) -> Image.Image:
    """Convert a float RGB array in [0, 255] to a Pillow image.

    Args:
        pixels: Array of shape (height, width, 3).

    Returns:
        An 8-bit RGB image.
    """
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------
# Content: sky, mountains, water
# ---------------------------------------------------------------------------


def _smooth(values: np.ndarray, radius: int) -> np.ndarray:
    """Box-blur a 1-D array, holding the end values beyond the edges.

    Args:
        values: The array to smooth.
        radius: Half-width of the box in samples.

    Returns:
        The smoothed array, same length as ``values``.
    """
    padded = np.pad(values, radius, mode="edge")
    kernel = np.full(2 * radius + 1, 1.0 / (2 * radius + 1))
    return np.convolve(padded, kernel, mode="valid")


def _midpoint_displacement(rng: np.random.Generator, width: int, roughness: float = 0.55) -> np.ndarray:
    """Make a jagged 1-D profile by midpoint displacement.

    Args:
        rng: Random generator.
        width: Number of samples to return.
        roughness: Factor by which the displacement shrinks at each level;
            larger values give a more jagged line.

    Returns:
        Array of ``width`` values scaled to the range [0, 1].
    """
    levels = int(np.ceil(np.log2(max(width - 1, 1))))
    n = 2**levels + 1
    line = np.zeros(n)
    line[0], line[-1] = rng.uniform(-0.5, 0.5, size=2)
    step, scale = n - 1, 1.0
    while step > 1:
        half = step // 2
        mids = np.arange(half, n, step)
        line[mids] = 0.5 * (line[mids - half] + line[mids + half])
        line[mids] += rng.uniform(-scale, scale, size=mids.size)
        step, scale = half, scale * roughness
    line = line[:width]
    return (line - line.min()) / (np.ptp(line) + 1e-9)


def make_content(rng: np.random.Generator) -> Image.Image:
    """Draw the landscape content picture.

    Args:
        rng: Random generator.

    Returns:
        A 512x384 RGB image of sky, mountains and water.
    """
    width, height = CONTENT_SIZE
    horizon = height * 2 // 3  # water fills the lower third
    ys, xs = np.mgrid[0:horizon, 0:width].astype(np.float64)
    haze = np.array([246.0, 206.0, 170.0])
    scene = _add_clouds(rng, _sky(xs, ys, haze), xs, ys)
    scene = _add_ridges(rng, scene, xs, ys, haze)
    return _to_image(_add_water(rng, scene, height))


def _sky(xs: np.ndarray, ys: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Paint the sky above the horizon, with the sun.

    Args:
        xs: Column of each pixel above the horizon, shape (horizon, width).
        ys: Row of each pixel, same shape.
        low: The colour at the horizon.

    Returns:
        Float RGB array of shape (horizon, width, 3) in [0, 255].
    """
    horizon = ys.shape[0]
    # Sky: deep blue at the top fading to a warm haze at the horizon.
    top = np.array([38.0, 78.0, 158.0])
    t = (ys / (horizon - 1)) ** 1.4
    sky = top * (1 - t[..., None]) + low * t[..., None]

    # Sun with a soft glow.
    sun_x, sun_y, sun_r = 388.0, 96.0, 24.0
    dist = np.hypot(xs - sun_x, ys - sun_y)
    glow = 0.55 * np.exp(-np.maximum(dist - sun_r, 0) / 45.0)
    sky += (np.array([255.0, 236.0, 190.0]) - sky) * glow[..., None]
    disc = np.clip(sun_r + 1.0 - dist, 0.0, 1.0)  # anti-aliased edge
    sky += (np.array([255.0, 250.0, 225.0]) - sky) * disc[..., None]
    return sky


def _add_clouds(rng: np.random.Generator, sky: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Lay soft clouds over the sky: clusters of Gaussian puffs with a flat base and a slightly
    greyer underside.

    Args:
        rng: Random generator.
        sky: The sky, shape (horizon, width, 3).
        xs: Column of each pixel, shape (horizon, width).
        ys: Row of each pixel, same shape.

    Returns:
        The sky with clouds, same shape.
    """
    cover = np.zeros_like(xs)
    under = np.zeros_like(xs)
    clouds = ((110.0, 58.0, 120.0), (236.0, 100.0, 80.0), (470.0, 36.0, 70.0))
    for cx, cy, span in clouds:
        puffs = np.zeros_like(xs)
        for _ in range(11):
            px = cx + rng.uniform(-span / 2, span / 2)
            rx = rng.uniform(10.0, 24.0) * (1.0 - 0.5 * abs(px - cx) / span)
            ry = rx * rng.uniform(0.7, 0.95)
            py = cy - ry * rng.uniform(0.3, 0.9)
            puffs += np.exp(-(((xs - px) / rx) ** 2 + ((ys - py) / ry) ** 2) * 3.0)
        base = np.clip((cy + 3.0 - ys) / 4.0, 0.0, 1.0)
        cloud_cover = np.clip(puffs * 1.6, 0.0, 1.0) * base
        cover = np.maximum(cover, cloud_cover)
        under = np.maximum(under, cloud_cover * np.clip(1.0 - (cy - ys) / 14.0, 0.0, 1.0))
    cover *= 0.88
    cloud_top, cloud_under = np.array([252.0, 246.0, 240.0]), np.array([196.0, 190.0, 204.0])
    cloud = cloud_top + (cloud_under - cloud_top) * under[..., None]
    return sky + (cloud - sky) * cover[..., None]


def _add_ridges(
    rng: np.random.Generator, scene: np.ndarray, xs: np.ndarray, ys: np.ndarray, haze: np.ndarray
) -> np.ndarray:
    """Paint three mountain ridges over the scene, far to near.

    Args:
        rng: Random generator.
        scene: The sky, shape (horizon, width, 3).
        xs: Column of each pixel, shape (horizon, width).
        ys: Row of each pixel, same shape.
        haze: The colour the valleys fade to near the horizon.

    Returns:
        The scene with the ridges, same shape.
    """
    horizon, width = xs.shape
    # (peak row, trough row, colour, roughness, snow).
    ridges = (
        (88, 180, (150.0, 156.0, 188.0), 0.6, True),
        (146, 212, (86.0, 94.0, 136.0), 0.58, False),
        (200, 244, (38.0, 62.0, 52.0), 0.62, False),
    )
    for peak, trough, color, rough, snow in ridges:
        profile = _smooth(_midpoint_displacement(rng, width, rough), 1)
        profile = (profile - profile.min()) / np.ptp(profile)
        ridge = trough - (trough - peak) * profile  # row of the ridge line per column
        below = ys - ridge[None, :]  # pixels below the ridge line
        shade = _ridge_shade(ridge, below, xs)
        base = np.array(color)[None, None, :] * shade[..., None]
        # Valley mist: blend towards the haze colour near the horizon.
        depth = np.clip(below / (horizon - ridge[None, :] + 1e-9), 0.0, 1.0)
        fill = base + (haze - base) * (0.35 * depth**2)[..., None]
        if snow:
            snow_line = peak + 0.45 * (trough - peak)
            jitter = _smooth(rng.uniform(0.3, 1.0, width), 3)
            cap = np.clip(snow_line - ridge, 0.0, None) * 0.7 * jitter
            snowy = below < cap[None, :]
            white = np.array([245.0, 246.0, 252.0]) * np.minimum(shade, 1.0)[..., None]
            fill = np.where(snowy[..., None], white, fill)
        # Opaque below the ridge line, with one pixel of soft edge above it.
        alpha = np.clip(below + 1.0, 0.0, 1.0)
        scene = scene + (fill - scene) * alpha[..., None]
    return scene


def _ridge_shade(ridge: np.ndarray, below: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Light a ridge from the sun on the right: slopes facing it are lighter.

    The slope is taken over a window that widens with depth below the crest, so lit and shaded
    faces spread out downwards like spurs.

    Args:
        ridge: Row of the ridge line per column, shape (width,).
        below: Pixels below the ridge line, shape (horizon, width).
        xs: Column of each pixel, same shape.

    Returns:
        Brightness factor per pixel, same shape as ``below``.
    """
    raw_slope = np.gradient(ridge)
    slopes = np.stack([_smooth(raw_slope, 2**k) for k in range(7)])
    level = np.clip(np.log2(np.clip(below, 0, None) / 3.0 + 1.0), 0, 5.999)
    lo, frac = level.astype(int), level % 1.0
    col_idx = xs.astype(int)
    slope = slopes[lo, col_idx] * (1 - frac) + slopes[lo + 1, col_idx] * frac
    facing = np.clip(slope * 0.35, -0.2, 0.2)
    return 1.0 + facing * np.exp(-np.clip(below, 0, None) / 60.0)


def _add_water(rng: np.random.Generator, scene: np.ndarray, height: int) -> np.ndarray:
    """Put a lake below the scene: mirror it, ripple it sideways, darken and tint it.

    Args:
        rng: Random generator.
        scene: Everything above the horizon, shape (horizon, width, 3).
        height: The picture's height.

    Returns:
        The whole picture, shape (height, width, 3).
    """
    horizon, width = scene.shape[:2]
    out = np.empty((height, width, 3))
    out[:horizon] = scene
    cols = np.arange(width, dtype=np.float64)
    water_tint = np.array([22.0, 48.0, 78.0])
    for row in range(horizon, height):
        d = row - horizon
        src = max(horizon - 1 - d, 0)
        amp = 0.8 + 0.06 * d
        shift = amp * (np.sin(0.9 * d + 0.045 * cols) + 0.5 * np.sin(0.37 * d + 0.11 * cols))
        idx = np.clip(np.rint(cols + shift).astype(int), 0, width - 1)
        mirrored = scene[src, idx]
        k = 0.45 + 0.35 * d / (height - horizon)
        out[row] = mirrored * (1 - k) + water_tint * k
    # Sparse horizontal glints on the water surface.
    glint = np.array([226.0, 222.0, 214.0])
    for _ in range(40):
        row = int(rng.integers(horizon + 4, height))
        x0 = int(rng.integers(0, width - 30))
        length = int(rng.integers(8, 30))
        fade = np.sin(np.linspace(0.0, np.pi, length))[:, None] * 0.3
        out[row, x0 : x0 + length] += (glint - out[row, x0 : x0 + length]) * fade
    # A dark shoreline separating land from water.
    out[horizon : horizon + 2] *= 0.55
    return out


# ---------------------------------------------------------------------------
# Style 1: swirling brush strokes
# ---------------------------------------------------------------------------

_BLUES: tuple[Color, ...] = (
    (28, 52, 130),
    (44, 86, 176),
    (82, 132, 206),
    (20, 36, 96),
    (60, 110, 160),
)
_YELLOWS: tuple[Color, ...] = ((242, 202, 58), (250, 226, 116), (222, 168, 40))
_WHITES: tuple[Color, ...] = ((236, 240, 228), (196, 218, 240))


def _swirl_field(
    px: np.ndarray, py: np.ndarray, vortices: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate the unit direction of the swirling flow at given points.

    The flow is a gentle horizontal wave plus a few vortices whose influence
    falls off with distance.

    Args:
        px: X coordinates.
        py: Y coordinates.
        vortices: Array of rows ``(cx, cy, strength, radius)``.
        size: Canvas size, used to scale the background wave.

    Returns:
        The x and y components of the unit flow direction.
    """
    vx = np.full_like(px, 0.6)
    vy = 0.5 * np.sin(3 * np.pi * px / size + py / 40.0)
    for cx, cy, strength, radius in vortices:
        dx, dy = px - cx, py - cy
        r2 = dx * dx + dy * dy
        # Rotation around the centre, fading out a couple of radii away.
        fall = strength * np.exp(-r2 / (2 * (2.2 * radius) ** 2)) / np.sqrt(r2 + 16.0)
        vx -= dy * fall
        vy += dx * fall
    norm = np.hypot(vx, vy) + 1e-9
    return vx / norm, vy / norm


def make_style_swirl(rng: np.random.Generator) -> Image.Image:
    """Draw the swirling brush-stroke style picture.

    Strokes are drawn at twice the size and reduced, which keeps the thin bristle lines smooth
    instead of jagged.

    Args:
        rng: Random generator.

    Returns:
        A 512x512 RGB image of curved strokes around a few vortices.
    """
    size, oversample = STYLE_SIZE[0], 2
    vortices = np.array(
        [
            (150.0, 150.0, 1.6, 60.0),
            (372.0, 110.0, -1.3, 48.0),
            (300.0, 330.0, 1.8, 78.0),
            (90.0, 420.0, -1.2, 44.0),
            (455.0, 445.0, 1.1, 40.0),
        ]
    )
    canvas = _underpainting(rng, size * oversample)
    draw = ImageDraw.Draw(canvas)
    paths, lengths = _trace_strokes(rng, vortices, size)
    n_strokes = paths.shape[1]

    # Colour by position: yellow rings around each vortex, blues elsewhere,
    # with the odd white stroke.
    sx, sy = paths[0, :, 0], paths[0, :, 1]
    heat = np.zeros(n_strokes)
    for cx, cy, _, radius in vortices:
        d = np.hypot(sx - cx, sy - cy)
        heat = np.maximum(heat, np.exp(-(((d - 0.55 * radius) / (0.35 * radius)) ** 2)))
    pick = rng.uniform(0, 1, n_strokes)
    shade_pick = rng.integers(0, 1000, n_strokes)
    widths = rng.integers(4, 8, n_strokes)
    # Per-bristle brightness and ragged ends give each stroke a visible texture.
    bristle = rng.uniform(0.72, 1.18, (n_strokes, 8, 1))
    trim = rng.integers(0, 2, (n_strokes, 8, 2))
    paths *= oversample

    # Draw darker strokes first so bright ones sit on top.
    order = np.argsort(heat + 0.3 * pick, kind="stable")
    for s in order:
        if pick[s] < 0.85 * heat[s]:
            palette = _YELLOWS
        elif pick[s] > 0.93:
            palette = _WHITES
        else:
            palette = _BLUES
        base = np.array(palette[shade_pick[s] % len(palette)], dtype=np.float64)
        pts = paths[: lengths[s] + 1, s]
        _draw_stroke(draw, pts, base, int(widths[s]), bristle[s], trim[s], oversample)

    return canvas.resize(STYLE_SIZE, Image.Resampling.LANCZOS)


def _underpainting(rng: np.random.Generator, side: int) -> Image.Image:
    """Paint the dark blue ground with a little blotchy variation.

    Args:
        rng: Random generator.
        side: The canvas's side in pixels.

    Returns:
        A ``side`` x ``side`` RGB image.
    """
    noise = rng.normal(0.0, 1.0, (16, 16))
    coarse = Image.fromarray(((noise - noise.min()) / np.ptp(noise) * 255).astype(np.uint8))
    smooth = coarse.resize((side, side), Image.Resampling.BICUBIC)
    blotch = np.asarray(smooth, dtype=np.float64)[..., None] / 255.0
    under = np.array([18.0, 34.0, 84.0]) * (1 - blotch) + np.array([40.0, 70.0, 140.0]) * blotch
    return _to_image(under)


def _trace_strokes(
    rng: np.random.Generator, vortices: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Trace all strokes at once along the flow field from random starting points.

    Args:
        rng: Random generator.
        vortices: Array of rows ``(cx, cy, strength, radius)``.
        size: The picture's side.

    Returns:
        The paths, shape (steps + 1, strokes, 2) in picture pixels, and each stroke's length
        in steps.
    """
    n_strokes, n_steps, step = 5200, 14, 2.2
    px = rng.uniform(-10, size + 10, n_strokes)
    py = rng.uniform(-10, size + 10, n_strokes)
    lengths = rng.integers(6, n_steps + 1, n_strokes)
    paths = np.empty((n_steps + 1, n_strokes, 2))
    paths[0, :, 0], paths[0, :, 1] = px, py
    for i in range(n_steps):
        ux, uy = _swirl_field(px, py, vortices, size)
        px, py = px + step * ux, py + step * uy
        paths[i + 1, :, 0], paths[i + 1, :, 1] = px, py
    return paths, lengths


def _draw_stroke(
    draw: ImageDraw.ImageDraw,
    pts: np.ndarray,
    base: np.ndarray,
    width: int,
    bristle: np.ndarray,
    trim: np.ndarray,
    oversample: int,
) -> None:
    """Draw one stroke: a darker body, then parallel "bristle" lines offset along its normal.

    Args:
        draw: The canvas's drawing context.
        pts: The stroke's path on the canvas, shape (n, 2).
        base: Its colour, RGB in [0, 255].
        width: Its number of bristles.
        bristle: Each bristle's brightness factor, shape (8, 1).
        trim: Points left off each bristle's start and end, shape (8, 2).
        oversample: How many canvas pixels one picture pixel is.
    """
    tangent = pts[-1] - pts[0]
    normal = np.array([-tangent[1], tangent[0]]) / (np.hypot(*tangent) + 1e-9)
    body = tuple(int(c) for c in base * 0.6)
    draw.line([tuple(p) for p in pts], fill=body, width=(width + 1) * oversample, joint="curve")
    for b, off in enumerate(np.linspace(-width / 2 + 0.5, width / 2 - 0.5, width) * oversample):
        col = tuple(int(c) for c in np.clip(base * bristle[b], 0, 255))
        start, stop = trim[b, 0], len(pts) - trim[b, 1]
        moved = pts[start:stop] + normal * off
        draw.line([tuple(p) for p in moved], fill=col, width=oversample * (1 + b % 2))


# ---------------------------------------------------------------------------
# Style 2: bold flat shapes
# ---------------------------------------------------------------------------

_FLAT: tuple[Color, ...] = (
    (214, 40, 40),  # red
    (28, 62, 168),  # cobalt
    (246, 198, 22),  # yellow
    (22, 140, 84),  # green
    (242, 122, 24),  # orange
    (238, 228, 204),  # cream
    (232, 118, 150),  # pink
    (30, 150, 190),  # turquoise
)
_BLACK: Color = (18, 18, 18)


def _leaf(cx: float, cy: float, radius: float, lobes: int, angle: float) -> list[tuple[float, float]]:
    """Outline a lobed, cut-out-like leaf shape.

    Args:
        cx: Centre x.
        cy: Centre y.
        radius: Mean radius.
        lobes: Number of lobes around the outline.
        angle: Rotation in radians.

    Returns:
        Polygon vertices.
    """
    theta = np.linspace(0.0, 2 * np.pi, 240, endpoint=False)
    r = radius * (1.0 + 0.38 * np.abs(np.sin(lobes * theta / 2)) ** 0.6 - 0.2)
    xs = cx + r * np.cos(theta + angle)
    ys = cy + r * np.sin(theta + angle)
    return [(float(x), float(y)) for x, y in zip(xs, ys)]


def _outlined_polygon(
    draw: ImageDraw.ImageDraw, points: list[tuple[float, float]], fill: Color, width: int
) -> None:
    """Fill a polygon and trace it with a thick black outline with round joins.

    Pillow's own wide polygon outline leaves spikes at sharp concave corners
    and its line joins leave specks on dense curves, so the outline is drawn
    as straight segments with a round dot on every vertex.

    Args:
        draw: Drawing context.
        points: Polygon vertices.
        fill: Fill colour.
        width: Outline width in pixels.
    """
    draw.polygon(points, fill=fill)
    draw.line([*points, points[0]], fill=_BLACK, width=width)
    r = width / 2
    for x, y in points:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=_BLACK)


def make_style_shapes(rng: np.random.Generator) -> Image.Image:
    """Draw the flat-shape style picture.

    The background is split into large Voronoi facets of flat colour with
    black seams; polygons, leaf cut-outs and circles are layered on top, all
    with thick black outlines. The image is drawn at twice the size and
    reduced so the hard edges are clean.

    Args:
        rng: Random generator.

    Returns:
        A 512x512 RGB image of flat colour shapes.
    """
    scale = 2
    size = STYLE_SIZE[0] * scale
    line = 7 * scale

    # Voronoi facets for a cubist-style background.
    n_seeds = 10
    seeds = rng.uniform(0, size, (n_seeds, 2)).astype(np.float32)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dist = (xs[None] - seeds[:, 0, None, None]) ** 2 + (ys[None] - seeds[:, 1, None, None]) ** 2
    labels = np.argmin(dist, axis=0)
    colors = np.array([_FLAT[i % len(_FLAT)] for i in rng.permutation(n_seeds)], dtype=np.uint8)
    pixels = colors[labels]
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    seam = Image.fromarray(edge.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(line | 1))
    pixels[np.asarray(seam) > 0] = _BLACK
    canvas = Image.fromarray(pixels, "RGB")
    draw = ImageDraw.Draw(canvas)

    def color() -> Color:
        return _FLAT[int(rng.integers(len(_FLAT)))]

    # Big polygons (triangles and quadrilaterals).
    for _ in range(4):
        cx, cy = rng.uniform(0.15, 0.85, 2) * size
        n = int(rng.integers(3, 5))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radii = rng.uniform(0.14, 0.26, n) * size
        pts = [(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for r, a in zip(radii, angles)]
        _outlined_polygon(draw, pts, color(), line)

    # Matisse-like lobed cut-outs.
    for _ in range(2):
        cx, cy = rng.uniform(0.2, 0.8, 2) * size
        radius = float(rng.uniform(0.09, 0.14) * size)
        lobes = int(rng.integers(5, 8))
        angle = float(rng.uniform(0, np.pi))
        pts = _leaf(cx, cy, radius, lobes, angle)
        _outlined_polygon(draw, pts, color(), line)

    # Circles, one with a concentric disc.
    for i in range(3):
        cx, cy = rng.uniform(0.15, 0.85, 2) * size
        r = rng.uniform(0.08, 0.15) * size
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color(), outline=_BLACK, width=line)
        if i == 0:
            r2 = r * 0.5
            box = (cx - r2, cy - r2, cx + r2, cy + r2)
            draw.ellipse(box, fill=color(), outline=_BLACK, width=line)

    # Thick black frame.
    draw.rectangle((0, 0, size - 1, size - 1), outline=_BLACK, width=line * 2)
    return canvas.resize(STYLE_SIZE, Image.Resampling.LANCZOS)


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------


def write_samples(out_dir: Path) -> list[Path]:
    """Generate all sample pictures and save them as JPEG files.

    Args:
        out_dir: Folder to write into; created if missing.

    Returns:
        The paths written, in a fixed order.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    makers = (
        ("content.jpg", make_content),
        ("style_swirl.jpg", make_style_swirl),
        ("style_shapes.jpg", make_style_shapes),
    )
    written = []
    for stream, (name, maker) in enumerate(makers):
        path = out_dir / name
        maker(_rng(stream)).save(path, "JPEG", quality=JPEG_QUALITY, optimize=True)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, write the samples and print their paths.

    Args:
        argv: Command-line arguments; ``None`` means ``sys.argv[1:]``.

    Returns:
        Process exit status.
    """
    parser = argparse.ArgumentParser(description="Generate styleforge's bundled sample pictures.")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="output folder (default: the folder this script is in)",
    )
    args = parser.parse_args(argv)
    for path in write_samples(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
