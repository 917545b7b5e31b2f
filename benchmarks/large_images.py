"""Large images: peak memory and time against size, whole and tiled, and a seam check.

Part 1 (``--sizes``): for each size, in a fresh subprocess (so the peak is that run's alone), one
scale (``--scales 1``) of a few Adam iterations on the bundled samples with HED's VGG-16, whole
(``--tile off``) and tiled (``--tile SIZE/2``), and with ``--tile auto`` at the largest size; prints
a Markdown table: size, tiling, tile (overlap) and tiles optimised, iterations, seconds (the whole
``transfer()`` call: the network, the style pass and the iterations), seconds per iteration (the
same over the iterations), the peak RSS above the process after its imports, and the estimate
the run was checked against (the optimisation's or the style pass's, whichever is larger; for
tiles one tile's plus what a tiled scale holds whole).

Part 2 (``--seam``): a 512 px coarse-to-fine transfer whose last scale is tiled (256 px tiles, two
passes) against the same untiled, with real weights: the mean gradient magnitude across the first
pass's tile borders against the mean elsewhere (1.0 = no seam), both runs' whole-image objective,
and ``docs/images/tiles_crop.png``: a 100 % crop around a tile corner, untiled | tiled.

    python benchmarks/large_images.py                       # 512 1024 2048 px, and the seam check
    python benchmarks/large_images.py --sizes 4096 --only-auto --iterations 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
STYLES = [str(SAMPLES / "style_swirl.jpg")]


def _rss_bytes() -> int:
    """This process's resident memory now."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _estimate(size: int, shape: tuple[int, int], tiles: dict | None) -> int:
    """What the memory check counts for this run (``Stylizer.prepare``): the larger of the style
    image's pass and the optimisation (whole, or one tile beside the whole images a tiled scale holds)."""
    from styleforge.parsing import parse_optimizer
    from styleforge.stylize.memory import estimate_bytes
    from styleforge.stylize.tiles import held_whole, style_pass

    layers = ["relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    chain = [parse_optimizer("adam")]
    h, w = shape
    styles = style_pass("vgg16", layers, [(size, size)])  # the swirl sample is square
    if not tiles:
        return max(estimate_bytes("vgg16", layers, h, w, chain), styles)
    side = tiles["tile"]
    return max(estimate_bytes("vgg16", layers, min(side, h), min(side, w), chain), styles) + held_whole(
        (h, w)
    )


def measure(size: int, tile: str, iterations: int) -> dict[str, object]:
    """One run in this process: seconds, peak RSS and the estimate, as JSON-able figures."""
    import torch

    from styleforge import transfer
    from styleforge.stylize.tiles import default_overlap

    torch.set_num_threads(
        torch.get_num_threads()
    )  # torch is imported (and its memory counted) before the baseline

    baseline = _rss_bytes()
    start = time.perf_counter()
    result = transfer(
        SAMPLES / "content.jpg",
        STYLES,
        size=size,
        scales=1,
        iterations=iterations,
        optimizer=("adam",),
        weights="hed",
        tile=tile,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    h, w = result.image.shape[-2:]
    estimate = _estimate(size, (h, w), result.metadata.get("tiles"))
    per = seconds / max(1, len(result.history))  # the history has a row per iteration of the scale
    tiles = result.metadata.get("tiles")
    return {
        "size": size,
        "tile": tile,
        "shape": [h, w],
        "tiles": tiles,
        "seconds": seconds,
        "per_iteration": per,
        "iterations": len(result.history),
        "peak_gib": (peak - baseline) / 2**30,
        "estimate_gib": estimate / 2**30,
        "overlap": tiles["overlap"] if tiles else (default_overlap(int(tile)) if tile.isdigit() else None),
    }


def seam(out: Path, iterations: int) -> None:
    """The seam check and the 100 % crop (see the module docstring)."""
    import numpy as np
    import torch
    from PIL import Image

    from styleforge import transfer
    from styleforge.images import load_image, resize_long_side
    from styleforge.stylize.run import Stylizer
    from styleforge.stylize.tiles import tile_grid

    common = dict(size=512, iterations=iterations, optimizer=("adam",), weights="hed")
    content = SAMPLES / "content.jpg"
    timings = {}
    results = {}
    for name, tile in (("untiled", "off"), ("tiled", "256")):
        start = time.perf_counter()
        results[name] = transfer(content, STYLES, tile=tile, tile_overlap=64, **common)
        timings[name] = time.perf_counter() - start
    tiled, untiled = results["tiled"].image, results["untiled"].image
    h, w = tiled.shape[-2:]
    grid = tile_grid((h, w), 256, 64)
    ys = sorted({t.y + t.h - 1 for t in grid} - {h - 1})
    xs = sorted({t.x + t.w - 1 for t in grid} - {w - 1})

    def ratio(image: torch.Tensor) -> float:
        dx = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(dim=(0, 1))  # between columns x, x + 1
        dy = (image[:, 1:, :] - image[:, :-1, :]).abs().mean(dim=(0, 2))
        at = torch.cat([dx[xs], dy[ys]]).mean()
        return float(at / torch.cat([dx, dy]).mean())

    judge = Stylizer(STYLES, tile="off", **{**common, "iterations": 1})
    start_image = resize_long_side(load_image(content).rgb, 512)
    totals = {
        k: judge.evaluate(content, v).total
        for k, v in (("content", start_image), ("untiled", untiled), ("tiled", tiled))
    }
    print(
        f"\nseam check at 512 px ({h}x{w}), tiles 256 px, overlap 64, 2 passes, "
        f"{iterations} iterations (3 scales):"
    )
    print("| run | seconds | whole-image objective | gradient at tile borders / elsewhere |")
    print("|---|---|---|---|")
    print(f"| content image | | {totals['content']:.4g} | {ratio(start_image):.3f} |")
    print(f"| untiled | {timings['untiled']:.0f} | {totals['untiled']:.4g} | {ratio(untiled):.3f} |")
    print(f"| tiled | {timings['tiled']:.0f} | {totals['tiled']:.4g} | {ratio(tiled):.3f} |")
    y, x = ys[0], xs[0]  # the first tile corner
    crop = [v[:, max(0, y - 96) : y + 96, max(0, x - 96) : x + 96] for v in (untiled, tiled)]
    pictures = [
        Image.fromarray((c.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)) for c in crop
    ]
    sheet = Image.new("RGB", (pictures[0].width * 2 + 8, pictures[0].height), "white")
    sheet.paste(pictures[0], (0, 0))
    sheet.paste(pictures[1], (pictures[0].width + 8, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"crop at 100 % around the tile corner ({y}, {x}): {out} (left untiled, right tiled)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--only-auto", action="store_true", help="Only --tile auto at each size.")
    parser.add_argument("--seam", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--seam-iterations", type=int, default=90)
    parser.add_argument("--crop", type=Path, default=ROOT / "docs" / "images" / "tiles_crop.png")
    parser.add_argument("--one", nargs=3, metavar=("SIZE", "TILE", "ITERATIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(int(args.one[0]), args.one[1], int(args.one[2]))))
        return
    print(
        "| size | tiling | tile (overlap), tiles optimised | iterations | seconds | s / iteration "
        "| peak GiB above imports | estimate GiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        runs = [("auto", "auto")] if args.only_auto else [("whole", "off"), ("tiled", str(size // 2))]
        if not args.only_auto and size == max(args.sizes):
            runs.append(("auto", "auto"))
        for label, tile in runs:
            cmd = [sys.executable, __file__, "--one", str(size), tile, str(args.iterations)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                why = (done.stderr.strip().splitlines() or ["?"])[-1]
                print(f"| {size} | {label} | | | failed: {why} | | | |", flush=True)
                continue
            r = json.loads(done.stdout.strip().splitlines()[-1])
            t = r["tiles"]
            tile_text = f"{t['tile']} ({t['overlap']}), {t['optimised']} tiles" if t else "whole"
            print(
                f"| {size} ({r['shape'][0]}x{r['shape'][1]}) | {label} | {tile_text} | {r['iterations']} | "
                f"{r['seconds']:.0f} | {r['per_iteration']:.2f} | {r['peak_gib']:.2f} | "
                f"{r['estimate_gib']:.2f} |",
                flush=True,
            )
    if args.seam:
        seam(args.crop, args.seam_iterations)


if __name__ == "__main__":
    main()
