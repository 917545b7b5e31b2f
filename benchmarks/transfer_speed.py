"""Seconds per transfer iteration against one bare forward+backward of the same truncated VGG.

For each size it runs, in a fresh subprocess (so peak memory is that size's alone):
- styleforge's transfer on the bundled samples (two styles, default layers, the chosen optimiser),
  timing the gap between consecutive iterations after a warm-up;
- the bare cost: the truncated VGG-19 forward to relu5_1 plus a backward to the input pixels;
and prints a Markdown table row: size, s/iter, bare s, ratio, peak memory.

    python benchmarks/transfer_speed.py                     # 256 and 512 px, CPU, L-BFGS
    python benchmarks/transfer_speed.py --sizes 512 1024 --device cuda --optimizer adam
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(size: int, device: str, optimizer: str, iterations: int, warmup: int) -> dict[str, float]:
    """Runs one size in this process and returns its figures."""
    import torch

    from styleforge import transfer
    from styleforge.config import DEFAULT_STYLE_LAYERS
    from styleforge.engine import Progress
    from styleforge.images import load_image, resize_long_side
    from styleforge.nets.vgg import VGGFeatures

    stamps: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    transfer(
        ROOT / "samples/content.jpg",
        [ROOT / "samples/style_swirl.jpg", ROOT / "samples/style_shapes.jpg"],
        size=size, iterations=warmup + iterations, weights="random", optimizer=(optimizer,), device=device,
        divergence_factor=float("inf"), callbacks=[on_event],
    )
    per_iter = statistics.median(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :]))
    transfer_peak = _peak_mb(device)

    layers = ["relu4_2", *DEFAULT_STYLE_LAYERS]
    net = VGGFeatures("vgg19", layers).to(device)
    x0 = resize_long_side(load_image(ROOT / "samples/content.jpg").rgb, size)[None].to(device)
    times = []
    for i in range(warmup + iterations):
        x = x0.clone().requires_grad_(True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        net(x, ["relu5_1"])["relu5_1"].sum().backward()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    bare = statistics.median(times)
    return {"size": size, "per_iter": per_iter, "bare": bare, "ratio": per_iter / bare, "peak_mb": transfer_peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure(args.one, args.device, args.optimizer, args.iterations, args.warmup)))
        return
    import torch

    print(f"# transfer speed: {args.optimizer}, {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| size | s/iter | bare fwd+bwd s | ratio | peak MB |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--device", args.device, "--optimizer", args.optimizer,
               "--iterations", str(args.iterations), "--warmup", str(args.warmup)]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"| {size} | {out['per_iter']:.3f} | {out['bare']:.3f} | {out['ratio']:.3f} | {out['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
