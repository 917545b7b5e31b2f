"""The three style losses (``--style-loss gram|w2|sw``) with HED's pretrained VGG-16: cost, blends,
regions.

1. **Cost**: seconds per evaluation (forward, the style and content terms, backward) of each loss at
   each of ``--sizes`` and ``--precisions``, beside the bare network's forward + backward (the sum of
   the same layers' activations), interleaved, median of ``--repeats`` after one warm-up round.
2. **Blends**: ``samples/content.jpg`` with ``style_swirl.jpg`` and ``style_shapes.jpg`` at 0.5/0.5
   and 0.8/0.2, every other option at styleforge's defaults. Each output is judged with
   ``benchmarks/quality.py``'s measure: the peer's style vector distance to each style (1 = as far
   as the content, 0 = the style itself). A blend that works moves towards *both* styles at 0.5/0.5
   and nearer the heavier one as the weights shift.
3. **Regions** (``--figures``): the swirl on the sky and the shapes on the ground by
   ``--style-mask``, per loss, and the loss row of one style; written to ``docs/images/``.

Prints Markdown tables and writes ``results.json`` and the outputs into ``--out``.

    python benchmarks/style_losses.py                      # cost + blends, 256 px
    python benchmarks/style_losses.py --only cost --sizes 64 256 512 1024 --precisions fp32 bf16
    python benchmarks/style_losses.py --figures docs/images

Needs ``pip install -e '.[bench]'`` (the peer's encoder and scikit-image).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
LOSSES = ("gram", "w2", "sw")
OPTIONS: dict[str, Any] = {"weights": "hed", "network": "vgg16", "device": "cpu"}


def cost(sizes: list[int], precisions: list[str], repeats: int) -> list[dict[str, Any]]:
    """Seconds per evaluation of each loss and of the bare network, per size and precision.

    The bare pass is the same truncated network (HED's VGG-16 to relu5_1, the default layers) forward
    and backward to the pixels from the sum of the layers the objective reads; each loss adds the
    default content term and one style (``samples/style_swirl.jpg``) with the default layers. The
    measurements are interleaved (bare, gram, w2, sw, bare, ...) ``repeats`` times after a warm-up
    round, and each cost is the median: the machine's speed drifts by several per cent over minutes.
    """
    from styleforge.config import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
    from styleforge.device import resolve_precision
    from styleforge.engine import WeightedLoss
    from styleforge.images import load_image, resize_long_side
    from styleforge.nets.vgg import VGGFeatures
    from styleforge.nets.weights import resolve_weights
    from styleforge.stylize.features import FeatureContext
    from styleforge.stylize.losses import layer_targets, style_terms
    from styleforge.stylize.objective import ContentTerm, TVTerm, layer_weights

    weights = resolve_weights("hed", "vgg16")
    layers = list(dict.fromkeys([*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS]))
    style_lw = layer_weights(list(DEFAULT_STYLE_LAYERS))
    rows = []
    for precision in precisions:
        net = VGGFeatures(
            "vgg16",
            layers,
            state_dict=weights.state_dict,
            compute_dtype=resolve_precision(precision, torch.device("cpu")),
        )
        for size in sizes:
            content = resize_long_side(load_image(SAMPLES / "content.jpg").rgb, size)[None]
            style = resize_long_side(load_image(SAMPLES / "style_swirl.jpg").rgb, size)[None]
            with torch.no_grad():
                style_f = {k: v.clone() for k, v in net(style, style_lw).items()}
                content_t = {k: v.clone() for k, v in net(content, DEFAULT_CONTENT_LAYERS).items()}
            steps = {"bare": lambda x: sum(f.sum() for f in net(x, layers).values()).backward()}
            for kind in LOSSES:
                terms = {
                    "content": ContentTerm(content_t, {DEFAULT_CONTENT_LAYERS[0]: 1.0}),
                    "tv": TVTerm(),
                    **style_terms(kind, ["style.a"], [1.0], [layer_targets(kind, style_f)], style_lw, [None]),
                }
                loss = WeightedLoss(terms, {"content": 1.0, "style.a": 3.0, "tv": 0.0})
                steps[kind] = lambda x, loss=loss: loss(FeatureContext(x, net(x, layers))).total.backward()
            times = _interleaved(steps, content, repeats)
            bare = statistics.median(times["bare"])
            for name, values in times.items():
                seconds = statistics.median(values)
                rows.append(
                    {
                        "size": size,
                        "precision": precision,
                        "loss": name,
                        "seconds": seconds,
                        "× bare": seconds / bare,
                    }
                )
            print(
                f"  cost {precision} {size} px: "
                + ", ".join(f"{r['loss']} {r['× bare']:.2f}x" for r in rows[-4:]),
                file=sys.stderr,
                flush=True,
            )
    return rows


def _interleaved(steps: dict[str, Any], content: torch.Tensor, repeats: int) -> dict[str, list[float]]:
    """Seconds of each step (one evaluation from ``content``), the steps run in turn ``repeats`` times
    after an untimed warm-up round."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(repeats + 1):
        for name, step in steps.items():
            x = content.clone().requires_grad_(True)
            start = time.perf_counter()
            step(x)
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def blends(peer: quality.Peer, size: int, out: Path) -> list[dict[str, Any]]:
    """Two-style blends per loss, judged by the peer's style vector distance to each style."""
    import styleforge

    content = quality.fit_long_side(Image.open(SAMPLES / "content.jpg").convert("RGB"), size)
    styles = {name: Image.open(SAMPLES / f"style_{name}.jpg").convert("RGB") for name in ("swirl", "shapes")}
    judges = {
        name: quality.Judge(peer, content, quality.style_reference(image, content))
        for name, image in styles.items()
    }
    rows = []
    for kind in LOSSES:
        for share in (0.5, 0.8):
            start = time.perf_counter()
            result = styleforge.transfer(
                SAMPLES / "content.jpg",
                [f"{SAMPLES / 'style_swirl.jpg'}:{share}", f"{SAMPLES / 'style_shapes.jpg'}:{1 - share:g}"],
                size=size,
                style_loss=kind,
                **OPTIONS,
            )
            seconds = time.perf_counter() - start
            image = quality.to_pil(result.image.permute(1, 2, 0).numpy())
            quality.save_png(out / f"blend_{kind}_{share:g}.png", image)
            row = {"loss": kind, "swirl:shapes": f"{share:g}:{1 - share:g}", "seconds": seconds}
            for name, judge in judges.items():
                row[f"d({name})"] = judge.measure(image)["style_distance"]
            row["ssim"] = judges["swirl"].measure(image)["ssim"]
            rows.append(row)
            print(f"  blend {kind} {share:g}: {seconds:.0f} s", file=sys.stderr, flush=True)
    return rows


def sky_mask(size: int) -> Image.Image:
    """A soft mask of ``samples/content.jpg``'s sky: white above the mountains' feet (the rows where
    the picture's blue channel falls), blurred over a few pixels."""
    from PIL import ImageFilter

    content = quality.fit_long_side(Image.open(SAMPLES / "content.jpg").convert("RGB"), size)
    rgb = np.asarray(content, np.float32) / 255
    sky = (rgb[..., 2] > rgb[..., 1] + 0.12) & (np.arange(rgb.shape[0])[:, None] < rgb.shape[0] * 0.55)
    return Image.fromarray((sky * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))


def figures(size: int, folder: Path) -> list[Path]:
    """docs/images/style_losses.png (one style, a column per loss) and style_regions.png (swirl on
    the sky, shapes on the ground, a column per loss; the mask first)."""
    import styleforge

    folder.mkdir(parents=True, exist_ok=True)
    mask = sky_mask(size)
    mask_path = folder / "style_regions_mask.png"
    mask.save(mask_path)
    content = quality.fit_long_side(Image.open(SAMPLES / "content.jpg").convert("RGB"), size)
    swirl, shapes = SAMPLES / "style_swirl.jpg", SAMPLES / "style_shapes.jpg"
    single, regional = [], []
    for kind in LOSSES:
        r = styleforge.transfer(SAMPLES / "content.jpg", [swirl], size=size, style_loss=kind, **OPTIONS)
        single.append((kind, quality.to_pil(r.image.permute(1, 2, 0).numpy())))
        r = styleforge.transfer(
            SAMPLES / "content.jpg",
            [swirl, shapes],
            size=size,
            style_loss=kind,
            style_masks=(f"style_swirl={mask_path}",),
            **OPTIONS,
        )
        regional.append((kind, quality.to_pil(r.image.permute(1, 2, 0).numpy())))
        print(f"  figures {kind}", file=sys.stderr, flush=True)
    style = quality.style_reference(Image.open(swirl).convert("RGB"), content)
    written = [
        _row(folder / "style_losses.png", [("content", content), ("style", style), *single]),
        _row(folder / "style_regions.png", [("mask (swirl)", mask.convert("RGB")), *regional]),
    ]
    mask_path.unlink()
    return written


def _row(path: Path, tiles: list[tuple[str, Image.Image]]) -> Path:
    """Tiles side by side with a caption strip above each."""
    w, h = tiles[0][1].size
    sheet = Image.new("RGB", (w * len(tiles), h + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, image) in enumerate(tiles):
        sheet.paste(image.resize((w, h)), (i * w, 18))
        draw.text((i * w + 4, 3), label, fill="black")
    sheet.save(path, optimize=True)
    return path


def table(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    return "\n".join(
        [
            "| " + " | ".join(keys) + " |",
            "|" + "---|" * len(keys),
            *["| " + " | ".join(fmt(r[k]) for k in keys) + " |" for r in rows],
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="size of the blends and figures")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[64, 256, 512, 1024], help="sizes of the cost table"
    )
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32", "bf16"], help="precisions of the cost table"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed evaluations per loss (cost)")
    parser.add_argument("--only", choices=("cost", "blends"), default=None)
    parser.add_argument(
        "--figures", type=Path, default=None, help="write the docs figures into this folder instead"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("out/style_losses"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.figures is not None:
        print("\n".join(map(str, figures(args.size, args.figures))))
        return
    results: dict[str, Any] = {"size": args.size, "torch": torch.__version__, "threads": args.threads}
    if args.only in (None, "cost"):
        results["cost"] = cost(args.sizes, args.precisions, args.repeats)
        print(f"## seconds per evaluation\n\n{table(results['cost'])}\n", flush=True)
    if args.only in (None, "blends"):
        results["blends"] = blends(quality.Peer(args.threads), args.size, args.out)
        print(f"## two-style blends at {args.size} px\n\n{table(results['blends'])}\n", flush=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
