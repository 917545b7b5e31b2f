"""Seconds per transfer iteration against one bare forward+backward of the same truncated VGG.

For each size it runs, in a fresh subprocess (so peak memory is that size's alone):
- the bare cost: the transfer's own truncated network (HED's VGG-16 by default) forward to the
  layers its terms read plus a backward to the input pixels, measured before and after the transfer
  (the median of both sets: the machine's speed drifts);
- styleforge's transfer on the bundled samples (two styles, every option at its default but the
  optimiser, one scale), timing the gap between consecutive iterations after a warm-up (for L-BFGS,
  by default, after its 100-pair history is full: its cost grows with the history);
- the objective alone: that transfer's own objective (its style loss and terms) forward and backward,
  without the optimiser, events or history;
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _peak_mb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(
    size: int, device: str, optimizer: str, iterations: int, warmup: int, precision: str, weights: str
) -> dict[str, float]:
    """Runs one size in this process and returns its figures."""
    import torch

    from styleforge.engine import Progress
    from styleforge.stylize.run import Stylizer

    stylizer = Stylizer(
        [ROOT / "samples/style_swirl.jpg", ROOT / "samples/style_shapes.jpg"],
        size=size,
        iterations=warmup + iterations,
        weights=weights,
        optimizer=(optimizer,),
        device=device,
        precision=precision,
        scales=1,
        divergence_factor=float("inf"),
        memory_check=False,
        tile="off",
    )
    target = stylizer.prepare(ROOT / "samples/content.jpg").scales[-1]

    def sync() -> None:
        if stylizer.device.type == "cuda":
            torch.cuda.synchronize()

    x0 = target.target[None].to(stylizer.device)

    def bare() -> None:
        x = x0.clone().requires_grad_(True)
        sum(f.sum() for f in stylizer.net(x, stylizer.layers).values()).backward()

    bare_times = _timed(bare, iterations, sync)
    stamps: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress):
            sync()
            stamps.append(time.perf_counter())

    stylizer.run(ROOT / "samples/content.jpg", callbacks=[on_event])
    per_iter = statistics.median(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :]))
    transfer_peak = _peak_mb(device)
    objective_s = statistics.median(_objective_times(stylizer, target, x0, iterations, sync))
    bare_s = statistics.median(bare_times + _timed(bare, iterations, sync))
    return {
        "size": size,
        "per_iter": per_iter,
        "objective": objective_s,
        "bare": bare_s,
        "ratio": per_iter / bare_s,
        "objective_ratio": objective_s / bare_s,
        "overhead": per_iter / objective_s,
        "peak_mb": transfer_peak,
    }


def _timed(step: Callable[[], None], count: int, sync: Callable[[], None]) -> list[float]:
    """Seconds of each of ``count`` calls of ``step`` after 3 untimed ones, the device synchronised
    around each."""
    times = []
    for i in range(3 + count):
        sync()
        start = time.perf_counter()
        step()
        sync()
        if i >= 3:
            times.append(time.perf_counter() - start)
    return times


def _objective_times(
    stylizer: Any, target: Any, x0: Any, iterations: int, sync: Callable[[], None]
) -> list[float]:
    """Seconds of the run's own objective (the configured style loss and terms) forward and backward,
    without optimiser, events or history."""
    objective, _ = stylizer._objective(target, ())
    probe = (x0 * 0.9 + 0.05).clone()

    def evaluation() -> None:
        x = probe.clone().requires_grad_(True)
        objective(x).total.backward()

    return _timed(evaluation, iterations, sync)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per size")
    parser.add_argument(
        "--warmup", type=int, help="iterations before timing (default: 103 for lbfgs, 3 otherwise)"
    )
    parser.add_argument(
        "--precision", default="fp32", help="fp32, bf16, tf32 or auto (as transfer --precision)"
    )
    parser.add_argument(
        "--weights", default="hed", help="as transfer --weights (the cost does not depend on them)"
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    return parser


def main() -> None:
    args = _parser().parse_args()
    warmup = args.warmup if args.warmup is not None else (103 if args.optimizer.startswith("lbfgs") else 3)
    if args.one is not None:
        print(
            json.dumps(
                measure(
                    args.one,
                    args.device,
                    args.optimizer,
                    args.iterations,
                    warmup,
                    args.precision,
                    args.weights,
                )
            )
        )
        return
    import torch

    print(
        f"# transfer speed: {args.optimizer}, {args.device}, {args.precision}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, timed after {warmup} iterations"
    )
    print(
        "| size | s/iter | objective s | bare fwd+bwd s | iter/bare | objective/bare | iter/objective "
        "| peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            str(size),
            "--device",
            args.device,
            "--optimizer",
            args.optimizer,
            "--iterations",
            str(args.iterations),
            "--warmup",
            str(warmup),
            "--precision",
            args.precision,
            "--weights",
            args.weights,
        ]
        out = json.loads(
            subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        )
        print(
            f"| {size} | {out['per_iter']:.3f} | {out['objective']:.3f} | {out['bare']:.3f} | "
            f"{out['ratio']:.3f} | "
            f"{out['objective_ratio']:.3f} | {out['overhead']:.3f} | {out['peak_mb']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
