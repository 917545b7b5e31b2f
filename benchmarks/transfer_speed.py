"""Seconds per transfer iteration against one bare forward+backward of the same truncated VGG.

For each size it runs, in a fresh subprocess (so peak memory is that size's alone):
- the bare cost: the truncated VGG-19 forward to relu5_1 plus a backward to the input pixels,
  measured before and after the transfer (the median of both sets: the machine's speed drifts);
- styleforge's transfer on the bundled samples (two styles, default layers, the chosen optimiser),
  timing the gap between consecutive iterations after a warm-up (for L-BFGS, by default, after its
  100-pair history is full: its cost grows with the history);
- the objective alone: the same network and loss terms (content, two Gram styles, tv) forward and
  backward, without the optimiser, events or history;
and prints a Markdown table row: size, s/iter, objective s, bare s, the ratios, peak memory.
``objective / bare`` is the maths of the loss (the Gram products); ``iteration / objective`` is
what styleforge adds around it.

    python benchmarks/transfer_speed.py                     # 256 and 512 px, CPU, L-BFGS
    python benchmarks/transfer_speed.py --sizes 512 1024 --device cuda --optimizer adam --precision bf16
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


def measure(size: int, device: str, optimizer: str, iterations: int, warmup: int, precision: str) -> dict[str, float]:
    """Runs one size in this process and returns its figures."""
    import torch

    from styleforge import transfer
    from styleforge.config import DEFAULT_STYLE_LAYERS
    from styleforge.device import resolve_precision
    from styleforge.engine import Progress, WeightedLoss
    from styleforge.images import load_image, resize_long_side
    from styleforge.nets.vgg import VGGFeatures
    from styleforge.stylize.objective import ContentTerm, FeatureContext, StyleTerm, TVTerm, gram_targets

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def timed(step, count: int) -> list[float]:
        times = []
        for i in range(3 + count):
            sync()
            start = time.perf_counter()
            step()
            sync()
            if i >= 3:
                times.append(time.perf_counter() - start)
        return times

    layers = ["relu4_2", *DEFAULT_STYLE_LAYERS]
    dtype = resolve_precision(precision, torch.device(device))
    x0 = resize_long_side(load_image(ROOT / "samples/content.jpg").rgb, size)[None].to(device)
    nets = [VGGFeatures("vgg19", layers, compute_dtype=dtype).to(device)]

    def bare() -> None:
        x = x0.clone().requires_grad_(True)
        nets[0](x, ["relu5_1"])["relu5_1"].sum().backward()

    bare_times = timed(bare, iterations)
    nets.clear()  # the transfer's peak memory is measured with its own network only

    stamps: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress):
            sync()
            stamps.append(time.perf_counter())

    transfer(
        ROOT / "samples/content.jpg",
        [ROOT / "samples/style_swirl.jpg", ROOT / "samples/style_shapes.jpg"],
        size=size, iterations=warmup + iterations, weights="random", optimizer=(optimizer,), device=device,
        precision=precision, scales=1, divergence_factor=float("inf"), memory_check=False, callbacks=[on_event],
    )
    per_iter = statistics.median(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :]))
    transfer_peak = _peak_mb(device)

    net = VGGFeatures("vgg19", layers, compute_dtype=dtype).to(device)
    nets.append(net)
    with torch.inference_mode():
        feats = net(x0, layers)
        content = {"relu4_2": feats["relu4_2"].clone()}
        grams = [{k: v.clone() for k, v in gram_targets({l: feats[l] for l in DEFAULT_STYLE_LAYERS}).items()}] * 2
    style_w = {l: 1 / len(DEFAULT_STYLE_LAYERS) for l in DEFAULT_STYLE_LAYERS}
    loss = WeightedLoss({"content": ContentTerm(content, {"relu4_2": 1.0}), "style.a": StyleTerm(grams[0], style_w),
                         "style.b": StyleTerm(grams[1], style_w), "tv": TVTerm()})
    probe = (x0 * 0.9 + 0.05).clone()

    def objective() -> None:
        x = probe.clone().requires_grad_(True)
        loss(FeatureContext(x, net(x, layers))).total.backward()

    objective_times = timed(objective, iterations)
    bare_times += timed(bare, iterations)
    bare_s, objective_s = statistics.median(bare_times), statistics.median(objective_times)
    return {"size": size, "per_iter": per_iter, "objective": objective_s, "bare": bare_s, "ratio": per_iter / bare_s,
            "objective_ratio": objective_s / bare_s, "overhead": per_iter / objective_s, "peak_mb": transfer_peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per size")
    parser.add_argument("--warmup", type=int, help="iterations before timing (default: 103 for lbfgs, 3 otherwise)")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or auto (as transfer --precision)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else (103 if args.optimizer.startswith("lbfgs") else 3)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.device, args.optimizer, args.iterations, warmup, args.precision)))
        return
    import torch

    print(f"# transfer speed: {args.optimizer}, {args.device}, {args.precision}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, timed after {warmup} iterations")
    print("| size | s/iter | objective s | bare fwd+bwd s | iter/bare | objective/bare | iter/objective | peak MB |")
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--device", args.device, "--optimizer", args.optimizer,
               "--iterations", str(args.iterations), "--warmup", str(warmup), "--precision", args.precision]
        out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"| {size} | {out['per_iter']:.3f} | {out['objective']:.3f} | {out['bare']:.3f} | {out['ratio']:.3f} | "
              f"{out['objective_ratio']:.3f} | {out['overhead']:.3f} | {out['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
