"""Validation metrics of ``train-attrs`` on real pictures: photographs that scikit-image and
matplotlib ship, labelled by rule, random against HED's VGG-16 features, against the trivial baseline.

No labelled paintings reach this machine, so the set is assembled here (``make_real_set``): the
real photographs in ``skimage.data`` (astronaut, cat, coffee, rocket, Hubble field, retina, ...,
grey ones too) and matplotlib's ``grace_hopper.jpg``; each gives ``--variants`` pictures, a random
crop (40–100 % of the side), a random contrast scaling about the mean (× 0.15–1.3, clipped) and, for
colour pictures, a random hue rotation. Two attributes are labelled by a rule on the pixels, the
others are left empty (``train-attrs`` trains only labelled heads):

- ``contrast``: the luma range (ITU-R 601) between the 5th and the 95th percentile, mapped as
  ``make-dataset`` maps its colours' luma range (0.03 → 1 … 0.85 → 10);
- ``pri_color``: the class covering most pixels: a pixel is ``black`` when its luma is under 0.12,
  else the nearest hue class (``make-dataset``'s hues) when its HSV saturation is at least 0.2, else
  nothing (grey or white); no label when fewer than 5 % of the pixels count.

Validation is every variant of 3 held-out photographs (coffee, rocket, grace_hopper: none of their
crops is seen in training), so the figures measure pictures the network has not seen.

    python benchmarks/real_pictures.py --threads 1              # ~200 pictures at 96 px, a few minutes
"""

from __future__ import annotations

import argparse
import colorsys
import csv
import itertools
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from train_attrs_speed import run_and_report  # the scripts run from benchmarks/, which is on sys.path

from styleforge.config import FEATURE_NORMS

#: Pictures whose variants form the validation split.
HELD_OUT = ("coffee", "rocket", "grace_hopper")


def sources() -> dict[str, Path]:
    """The real photographs the installed packages ship: name → file."""
    import matplotlib
    import skimage

    data = Path(skimage.__file__).parent / "data"
    names = (
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "hubble_deep_field.jpg",
        "ihc.png",
        "motorcycle_left.png",
        "retina.jpg",
        "rocket.jpg",
        "brick.png",
        "camera.png",
        "coins.png",
        "grass.png",
        "gravel.png",
        "moon.png",
    )
    found = {Path(n).stem: data / n for n in names if (data / n).is_file()}
    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        found["grace_hopper"] = hopper
    return found


def _hues() -> tuple[list[str], np.ndarray]:
    from styleforge.attributes.synthetic import HUES

    names = [n for n, h in HUES.items() if h is not None]
    return names, np.array([HUES[n] for n in names])


def label(rgb: np.ndarray) -> dict[str, str]:
    """``contrast`` and ``pri_color`` of an RGB picture in [0, 1] ``(H, W, 3)`` by the rules above."""
    from styleforge.attributes.synthetic import LUMA

    luma = rgb @ np.array(LUMA)
    lo, hi = np.percentile(luma, [5, 95])
    contrast = 1 + 9 * min(1.0, max(0.0, (hi - lo - 0.03) / (0.85 - 0.03)))
    flat = rgb.reshape(-1, 3)
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in flat[:: max(1, len(flat) // 4000)]])
    sub_luma = luma.reshape(-1)[:: max(1, len(flat) // 4000)]
    names, angles = _hues()
    counts = dict.fromkeys(["black", *names], 0)
    chromatic = (sub_luma >= 0.12) & (hsv[:, 1] >= 0.2)
    counts["black"] = int((sub_luma < 0.12).sum())
    if chromatic.any():
        degrees = hsv[chromatic, 0] * 360.0
        distance = np.abs((degrees[:, None] - angles[None, :] + 180.0) % 360.0 - 180.0)
        for k in np.bincount(distance.argmin(1), minlength=len(names)).nonzero()[0]:
            counts[names[k]] = int((distance.argmin(1) == k).sum())
    best = max(counts, key=counts.__getitem__)
    return {"contrast": f"{contrast:.2f}", "pri_color": best if counts[best] >= 0.05 * len(sub_luma) else ""}


def _variant(image: Image.Image, rng: np.random.Generator, size: int) -> np.ndarray:
    width, height = image.size
    side = int(min(width, height) * rng.uniform(0.4, 1.0))
    x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
    crop = image.crop((x, y, x + side, y + side)).resize((size, size), Image.Resampling.BICUBIC)
    rgb = np.asarray(crop.convert("RGB"), dtype=np.float64) / 255.0
    if image.mode != "L":  # rotate the hue: HSV, shift, back
        hsv = np.asarray(crop.convert("RGB").convert("HSV"), dtype=np.float64)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(0, 256)) % 256
        rgb = (
            np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"), dtype=np.float64) / 255.0
        )
    mean = rgb.mean(axis=(0, 1), keepdims=True)
    return np.clip(mean + rng.uniform(0.15, 1.3) * (rgb - mean), 0.0, 1.0)


def make_real_set(folder: Path, variants: int = 12, size: int = 96, seed: int = 0) -> Path:
    """Writes ``folder/images/*.png`` and ``folder/labels.csv`` (styleforge's layout, with a split
    column: the variants of :data:`HELD_OUT` validate). Returns the CSV's path."""
    from styleforge.attributes.schema import ACAN_SCHEMA

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, path in sources().items():
        with Image.open(path) as opened:
            image = opened.convert("L") if opened.mode in ("L", "I;16") else opened.convert("RGB")
            image.load()
        for k in range(variants):
            rgb = _variant(image, rng, size)
            file = f"images/{name}_{k:02d}.png"
            Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB").save(folder / file)
            labels = label(rgb)
            rows.append(
                [
                    file,
                    *(labels.get(n, "") for n in ACAN_SCHEMA.names),
                    "val" if name in HELD_OUT else "train",
                ]
            )
    csv_path = folder / "labels.csv"
    with open(csv_path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["image", *ACAN_SCHEMA.names, "split"])
        writer.writerows(rows)
    return csv_path


def run(args: argparse.Namespace) -> dict[str, Any]:
    from styleforge import train_attrs

    work = Path(args.work or tempfile.mkdtemp(prefix="sf-real-"))
    data = work / f"real{args.variants}_{args.size}"
    if not (data / "labels.csv").is_file():
        make_real_set(data, args.variants, args.size)
    results: dict[str, Any] = {"size": args.size, "variants": args.variants, "runs": []}
    for weights, trunk, norm in itertools.product(args.weights, args.trunks, args.feature_norms):
        out = work / f"{weights}-trunk{trunk}-{norm}"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        result = train_attrs(
            data,
            out,
            backbone="vgg16",
            weights=weights,
            size=args.size,
            trunk=trunk,
            feature_norm=norm,
            device=args.device,
            epochs=args.epochs,
            workers=0,
            batch_size=16,
        )
        val, baseline = result.metrics["val"], result.metrics["baseline"]["val"]
        row = {
            "weights": weights,
            "trunk": trunk,
            "feature_norm": norm,
            "best_epoch": result.best_epoch,
            "images": result.metrics["images"],
            "seconds": time.perf_counter() - t0,
            **{k: val[k] for k in ("mae.contrast", "acc.pri_color")},
            **{f"baseline.{k}": baseline[k] for k in ("mae.contrast", "acc.pri_color")},
        }
        results["runs"].append(row)
        print(row, flush=True)
    return results


def markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    images = runs[0]["images"]
    lines = [
        f"Real photographs, {images['train']} training / {images['val']} validation pictures at "
        f"{results['size']} px "
        f"(validation: the variants of {', '.join(HELD_OUT)}), VGG-16 frozen:",
        "",
        "| weights | trunk | --feature-norm | contrast MAE | baseline (training mean) | pri_color accuracy | "
        "baseline (majority) | best epoch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['weights']} | {r['trunk']} | {r.get('feature_norm', 'l2')} | {r['mae.contrast']:.3f} | "
            f"{r['baseline.mae.contrast']:.3f} | "
            f"{r['acc.pri_color']:.3f} | {r['baseline.acc.pri_color']:.3f} | {r['best_epoch']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=12, help="pictures made from each photograph")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--weights", nargs="+", default=["random", "hed"])
    parser.add_argument("--trunks", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--feature-norms", nargs="+", default=list(FEATURE_NORMS), choices=FEATURE_NORMS)
    parser.add_argument("--epochs", type=int, default=200)
    run_and_report(parser, run, markdown)


if __name__ == "__main__":
    main()
