"""Texture where the content is flat: what puts a crumpled, embossed texture over skies, and what takes it
off.

A transfer should paint the style's strokes over the picture, but a clear sky or a plain wall should
stay calm; a texture of fine ridges over everything reads as noise. This script measures it: the
**flat areas** of a content image are where its own fine structure is weakest (the local mean of
|Laplacian of Gaussian, σ = 1 px| below the 25th percentile, eroded), and the **ripple** of a picture
is the mean |LoG| over those areas, divided by the same measure over the whole style image (1: as
busy as the style's own brushwork; the content's flat areas score about 0). Each variant is a
transfer with styleforge's current defaults and one knob changed, with HED's VGG-16, at ``--size``,
on the bundled ``samples/content.jpg`` (a sky over mountains) and skimage's astronaut (a plain grey
wall), against two styles. It prints a table (ripple, and SSIM with the content over the flat
areas) and writes crops of the flat areas side by side to ``--out``.

    python benchmarks/flat_areas.py                          # 256 px, the variants below
    python benchmarks/flat_areas.py --variant avg='{"pooling": "avg"}'

Needs ``pip install -e '.[bench]'`` (scikit-image).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality

ROOT = Path(__file__).resolve().parents[1]
#: The old defaults (before the pyramid from 128 px, the Laplacian and tone terms, the new layers and
#: weights).
OLD = {
    "laplacian_weight": 0.0,
    "tone_weight": 0.0,
    "style_weight": 3.0,
    "content_layers": ["relu4_2"],
    "style_scale": 1.0,
    "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
    "style_layer_weight_exp": 1.0,
    "scales": 1,
    "iterations": 200,
    "precision": "fp32",
}
#: Each variant: styleforge options over the current defaults (and BASE_OPTIONS); after the first two,
#: each changes one thing of the defaults without the Laplacian term, to see what the texture comes from.
VARIANTS: dict[str, dict[str, Any]] = {
    "old defaults": OLD,
    "defaults": {},
    "no laplacian term": {"laplacian_weight": 0.0},
    "  no relu1_1": {"laplacian_weight": 0.0, "style_layers": ["relu2_1", "relu3_1", "relu4_1"]},
    "  relu1_1 alone": {"laplacian_weight": 0.0, "style_layers": ["relu1_1"]},
    "  gram": {"laplacian_weight": 0.0, "style_loss": "gram"},
    "  adam": {"laplacian_weight": 0.0, "optimizer": ["adam"]},
    "  avg pooling": {"laplacian_weight": 0.0, "pooling": "avg"},
    "  tv 10": {"laplacian_weight": 0.0, "tv_weight": 10.0},
    "  random weights": {"laplacian_weight": 0.0, "weights": "random", "network": "vgg16"},
}


def log_magnitude(gray: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """|Laplacian of Gaussian| of a (H, W) image in [0, 1]."""
    from scipy.ndimage import gaussian_laplace

    return np.abs(gaussian_laplace(gray.astype(np.float64), sigma))


def flat_mask(gray: np.ndarray) -> np.ndarray:
    """Where the content's local fine structure is in its weakest quarter, eroded by 4 px (no edge
    of the mask touches an edge of the picture)."""
    from scipy.ndimage import binary_erosion, uniform_filter

    local = uniform_filter(log_magnitude(gray), size=9)
    return binary_erosion(local < np.quantile(local, 0.25), iterations=4)


def ripple(image: Image.Image, mask: np.ndarray, style_level: float) -> float:
    """Mean |LoG| of ``image`` over ``mask``, relative to the style's own level."""
    from skimage.color import rgb2gray

    return float(log_magnitude(rgb2gray(quality.to_float(image)))[mask].mean() / style_level)


def masked_ssim(image: Image.Image, content: Image.Image, mask: np.ndarray) -> float:
    """Luminance SSIM with the content, averaged over ``mask`` only."""
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity

    _, full = structural_similarity(
        rgb2gray(quality.to_float(image)),
        rgb2gray(quality.to_float(content)),
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    return float(full[mask].mean())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="replace the built-in variants by these (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/flat_areas"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from skimage.color import rgb2gray

    variants = dict(VARIANTS)
    if args.variant:
        variants = {name: json.loads(text) for name, text in (v.split("=", 1) for v in args.variant)}
    styles = {"swirl": ROOT / "samples/style_swirl.jpg", "shapes": ROOT / "samples/style_shapes.jpg"}
    rows, crops = [], []
    for content_name, content_path in _contents(args.out / "inputs", args.size).items():
        content = Image.open(content_path).convert("RGB")
        mask = flat_mask(rgb2gray(quality.to_float(content)))
        for style_name, style_path in styles.items():
            reference = quality.style_reference(Image.open(style_path).convert("RGB"), content)
            level = float(log_magnitude(rgb2gray(quality.to_float(reference))).mean())
            where = {"content": content_name, "style": style_name}
            row_crops = [content]
            for name, options in variants.items():
                config = quality.variant_config(options, args.size)
                row, image = _measure(content_path, style_path, config, content, mask, level)
                rows.append({**where, "variant": name, **row})
                row_crops.append(image)
                print(
                    f"  {content_name} × {style_name}: {name} ripple {rows[-1]['ripple']:.3f}",
                    file=sys.stderr,
                    flush=True,
                )
            reference_row = {"ripple": ripple(content, mask, level), "flat ssim": 1.0, "seconds": 0.0}
            rows.append({**where, "variant": "(content)", **reference_row})
            crops.append((mask, row_crops))
    _print_table(rows, [*variants, "(content)"])
    sheet = sheet_of_crops(crops, ["content", *variants])
    quality.save_png(args.out / "flat_areas.png", sheet)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    print(f"\nwrote {args.out}/flat_areas.png and results.json")


def _contents(inputs: Path, size: int) -> dict[str, Path]:
    """The two contents at ``size`` px, saved under ``inputs``: the bundled sample and a photograph."""
    return {
        "sample": quality.save_png(
            inputs / "content_sample.png",
            quality.fit_long_side(Image.open(ROOT / "samples/content.jpg").convert("RGB"), size),
        ),
        "astronaut": quality.save_png(
            inputs / "content_astronaut.png",
            quality.fit_long_side(quality.to_pil(quality.skimage_photo("astronaut")), size),
        ),
    }


def _measure(
    content_path: Path, style_path: Path, config: Any, content: Image.Image, mask: np.ndarray, level: float
) -> tuple[dict[str, float], Image.Image]:
    """One transfer, and its ripple, SSIM over the flat areas and seconds."""
    import styleforge

    start = time.perf_counter()
    result = styleforge.transfer(str(content_path), [str(style_path)], config)
    image = quality.to_pil(result.image.permute(1, 2, 0).float().numpy())
    row = {
        "ripple": ripple(image, mask, level),
        "flat ssim": masked_ssim(image, content, mask),
        "seconds": time.perf_counter() - start,
    }
    return row, image


def _print_table(rows: list[dict[str, Any]], names: list[str]) -> None:
    print("| variant | ripple ↓ (1 = the style's own) | SSIM over the flat areas ↑ |\n|---|---|---|")
    for name in names:
        mine = [r for r in rows if r["variant"] == name]
        ripples, ssims = np.mean([r["ripple"] for r in mine]), np.mean([r["flat ssim"] for r in mine])
        print(f"| {name} | {ripples:.3f} | {ssims:.3f} |")


def sheet_of_crops(
    crops: list[tuple[np.ndarray, list[Image.Image]]], labels: list[str], side: int = 96
) -> Image.Image:
    """Per content × style, a ``side`` px square crop at the centre of the largest flat area, one column
    per variant (the content first), enlarged 2× so that the texture shows."""
    from PIL import ImageDraw
    from scipy.ndimage import distance_transform_edt

    big = side * 2
    sheet = Image.new("RGB", (len(labels) * (big + 4), len(crops) * (big + 4) + 16), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(labels):
        draw.text((c * (big + 4) + 2, 2), label, fill="black")
    for r, (mask, images) in enumerate(crops):
        y, x = np.unravel_index(np.argmax(distance_transform_edt(mask)), mask.shape)
        top = int(np.clip(y - side // 2, 0, mask.shape[0] - side))
        left = int(np.clip(x - side // 2, 0, mask.shape[1] - side))
        for c, image in enumerate(images):
            crop = image.crop((left, top, left + side, top + side)).resize((big, big), Image.NEAREST)
            sheet.paste(crop, (c * (big + 4), 16 + r * (big + 4)))
    return sheet


if __name__ == "__main__":
    main()
