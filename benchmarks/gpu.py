"""The GPU table of benchmarks/README.md in one command: seconds per iteration against a bare pass,
peak memory, per precision and size, and the largest size that fits.

For each mode (``fp32``: float32 with TF32 off; ``tf32``; ``bf16``: autocast; ``bf16+compile``:
``--compile`` too) and each size, a transfer of the bundled samples runs with every other option at
styleforge's defaults (HED's VGG-16, one scale, ``--iterations`` timed after ``--warmup``), on one
network built per mode. Beside it, the bare pass: the same network forward to the objective's layers
and backward to the pixels, no loss. Each figure is a median over iterations, the device synchronised
around each. Peak memory is ``torch.cuda.max_memory_allocated`` of the transfer (on the CPU, the
process's peak resident memory). Then, for ``bf16``, the largest size whose memory estimate fits the
card is tried with two iterations (stepping down by 256 px until one runs).

    python benchmarks/gpu.py             # CUDA: 512, 1024, 2048 px, every mode (< 8 min on an H100)
    python benchmarks/gpu.py --dry-run   # the same code on the CPU at 32 and 48 px (< 1 min; a test runs it)

Prints a Markdown table and writes ``results.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTENT, STYLES = (
    ROOT / "samples/content.jpg",
    [ROOT / "samples/style_swirl.jpg", ROOT / "samples/style_shapes.jpg"],
)
#: mode → (--precision, --compile)
MODES: dict[str, tuple[str, bool]] = {
    "fp32": ("fp32", False),
    "tf32": ("tf32", False),
    "bf16": ("bf16", False),
    "bf16+compile": ("bf16", True),
}


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: Any) -> float:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(
    mode: str, sizes: list[int], device_name: str, iterations: int, warmup: int, weights: str
) -> list[dict[str, Any]]:
    """One mode's rows: per size, seconds per iteration of a transfer and of the bare pass, peak memory."""
    import torch

    from styleforge.stylize.run import Stylizer

    precision, compiled = MODES[mode]
    rows = []
    stylizer = Stylizer(
        [str(s) for s in STYLES],
        device=device_name,
        precision=precision,
        compile=compiled,
        weights=weights,
        scales=1,
        size=sizes[0],
        iterations=warmup + iterations,
        divergence_factor=float("inf"),
        memory_check=False,
        tile="off",
    )
    device = stylizer.device
    for size in sizes:
        stylizer.config = dataclasses.replace(stylizer.config, size=size)
        stylizer.sizes = [size]
        stylizer._forward = None  # compiled again for this size
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        per_iter, whole = _timed_transfer(stylizer, device, warmup)
        peak = _peak_mb(device)
        shape, bare_s = _bare_pass(stylizer, device, precision, iterations, warmup)
        rows.append(
            {
                "mode": mode,
                "size": size,
                "shape": shape,
                "s_per_iter": per_iter,
                "bare_s": bare_s,
                "iter_per_bare": per_iter / bare_s,
                "whole_run_s": whole,
                "peak_mb": peak,
            }
        )
        print(
            f"  {mode} {size} px: {per_iter:.4f} s/iter, bare {bare_s:.4f} s, {per_iter / bare_s:.2f}x, "
            f"peak {peak:.0f} MB",
            file=sys.stderr,
            flush=True,
        )
    return rows


def _timed_transfer(stylizer: Any, device: Any, warmup: int) -> tuple[float, float]:
    """Runs a transfer of the samples; returns the median seconds per iteration after ``warmup``
    (the device synchronised at each iteration's event) and the whole run's seconds."""
    from styleforge.engine import Progress

    stamps: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress):
            _sync(device)
            stamps.append(time.perf_counter())

    start = time.perf_counter()
    stylizer.run(str(CONTENT), callbacks=[on_event])
    whole = time.perf_counter() - start
    return statistics.median(b - a for a, b in zip(stamps[warmup:], stamps[warmup + 1 :])), whole


def _bare_pass(
    stylizer: Any, device: Any, precision: str, iterations: int, warmup: int
) -> tuple[list[int], float]:
    """The bare pass at the transfer's size: the network forward to the objective's layers and
    backward to the pixels, no loss. Returns the image's (H, W) and the median seconds of
    ``iterations`` passes after ``warmup``."""
    from styleforge.device import tf32_mode

    plan = stylizer.prepare(str(CONTENT)).scales[-1]
    x0 = plan.target[None].to(device)
    forward = stylizer._forward
    layers = stylizer.layers
    bare = []
    with tf32_mode(device, precision == "tf32"):
        for i in range(warmup + iterations):
            x = x0.clone().requires_grad_(True)
            _sync(device)
            t = time.perf_counter()
            sum(f.sum() for f in forward(x, layers).values()).backward()
            _sync(device)
            if i >= warmup:
                bare.append(time.perf_counter() - t)
    return list(plan.target.shape[-2:]), statistics.median(bare)


def largest(device_name: str, start: int, weights: str) -> dict[str, Any]:
    """The largest size (steps of 256 px) whose estimate fits the device and that runs (bf16, 2
    iterations)."""
    import torch

    from styleforge.errors import ResourceError
    from styleforge.stylize.run import Stylizer

    size = start
    while True:  # grow while the memory check accepts the size
        try:
            Stylizer(
                [str(s) for s in STYLES],
                content=str(CONTENT),
                device=device_name,
                precision="bf16",
                weights=weights,
                scales=1,
                size=size + 256,
                tile="off",
            )
        except ResourceError:
            break
        size += 256
        if size >= 16384:
            break
    while size > 0:
        try:
            stylizer = Stylizer(
                [str(s) for s in STYLES],
                device=device_name,
                precision="bf16",
                weights=weights,
                scales=1,
                size=size,
                iterations=2,
                tile="off",
                memory_check=False,
            )
            if stylizer.device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(stylizer.device)
            start_t = time.perf_counter()
            stylizer.run(str(CONTENT))
            return {
                "size": size,
                "seconds_2_iterations": time.perf_counter() - start_t,
                "peak_mb": _peak_mb(stylizer.device),
            }
        except torch.OutOfMemoryError:
            size -= 256
    return {"size": 0}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per size")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--weights", default="hed")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="the same code on the CPU at 32 and 48 px, fp32 and bf16, 2 iterations (a test)",
    )
    parser.add_argument("--out", type=Path, default=Path("out/gpu"))
    args = parser.parse_args()
    if args.dry_run:
        args.device, args.sizes, args.modes, args.iterations, args.warmup = (
            "cpu",
            [32, 48],
            ["fp32", "bf16"],
            2,
            1,
        )
    import torch

    started = time.perf_counter()
    rows = [
        row
        for mode in args.modes
        for row in measure(mode, args.sizes, args.device, args.iterations, args.warmup, args.weights)
    ]
    fits = largest(args.device, max(args.sizes), args.weights) if not args.dry_run else {"size": None}
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(
        f"# {name}, torch {torch.__version__}, --weights {args.weights}, {args.iterations} timed iterations\n"
    )
    print("| mode | size | s / iteration | bare fwd+bwd s | iteration / bare | whole run s | peak MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['size']} ({r['shape'][1]}×{r['shape'][0]}) | {r['s_per_iter']:.4f} | "
            f"{r['bare_s']:.4f} | "
            f"{r['iter_per_bare']:.2f} | {r['whole_run_s']:.1f} | {r['peak_mb']:.0f} |"
        )
    if fits["size"] is not None:
        print(
            f"\nlargest size that fits (bf16, one scale, untiled): {fits['size']} px "
            f"(peak {fits.get('peak_mb', 0):.0f} MB)"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {"device": name, "rows": rows, "largest": fits, "seconds": time.perf_counter() - started},
            indent=2,
        )
    )
    print(f"\n{time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
