"""fp32 against bf16 autocast (and ``--compile``): speed and the loss each reaches; the largest size.

For each mode it runs styleforge's transfer of the bundled samples (two styles, seeded random
weights) for ``--iterations`` iterations and prints the whole run's seconds, the median seconds per
iteration, the best total and its difference from fp32's (the ``--precision`` default on CUDA is
bf16 only because this difference stays within 1 %).

    python benchmarks/precision.py --device cpu --size 256 --iterations 100
    python benchmarks/precision.py --device cuda --size 512 --iterations 500 --modes fp32 bf16 bf16+compile
    python benchmarks/precision.py --device cuda --largest          # largest --size that runs, per mode

``--largest`` doubles the size from 512 until a run of three iterations fails with CUDA's
out-of-memory error, then bisects to 64 px; the memory check is off so the card itself decides.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(size: int, device: str, optimizer: str, iterations: int, mode: str) -> dict[str, float]:
    """One transfer in ``mode`` (``fp32``, ``bf16``, optionally ``+compile``)."""
    from styleforge import transfer
    from styleforge.engine import Progress

    precision, _, extra = mode.partition("+")
    stamps: list[float] = []

    def on_event(event: object) -> None:
        if isinstance(event, Progress):
            if device.startswith("cuda"):
                import torch

                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    start = time.perf_counter()
    result = transfer(
        ROOT / "samples/content.jpg",
        [ROOT / "samples/style_swirl.jpg", ROOT / "samples/style_shapes.jpg"],
        size=size,
        iterations=iterations,
        weights="random",
        optimizer=(optimizer,),
        device=device,
        precision=precision,
        compile=extra == "compile",
        scales=1,
        divergence_factor=float("inf"),
        memory_check=False,
        callbacks=[on_event],
    )
    seconds = time.perf_counter() - start
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "seconds": seconds,
        "per_iter": statistics.median(steps[len(steps) // 2 :]) if steps else float("nan"),
        "best": result.summary.total if result.summary else float("nan"),
    }


def fits(size: int, device: str, optimizer: str, mode: str) -> bool:
    import torch

    try:
        run(size, device, optimizer, 3, mode)
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        torch.cuda.empty_cache()


def largest(device: str, optimizer: str, mode: str) -> int:
    """The largest ``--size`` (to 64 px) whose run fits on the device."""
    low, high = 0, 512
    while fits(high, device, optimizer, mode):
        low, high = high, high * 2
    while high - low > 64:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle, device, optimizer, mode) else (low, middle)
    return low


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument(
        "--modes", nargs="+", default=["fp32", "bf16"], help="fp32, bf16, fp32+compile, bf16+compile"
    )
    parser.add_argument(
        "--largest", action="store_true", help="find the largest size per mode instead (CUDA only)"
    )
    args = parser.parse_args()
    import torch

    if args.largest:
        if not args.device.startswith("cuda"):
            parser.error("--largest needs --device cuda (on the CPU, transfer's memory check says what fits)")
        print(f"# largest size on {torch.cuda.get_device_name(args.device)}: {args.optimizer}")
        print("| mode | largest --size (long side, 4:3 image) |")
        print("|---|---|")
        for mode in args.modes:
            print(f"| {mode} | {largest(args.device, args.optimizer, mode)} |", flush=True)
        return
    print(
        f"# precision: {args.optimizer}, {args.size} px, {args.iterations} iterations, {args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(f"| mode | whole run s | s/iter | best total | vs {args.modes[0]} |")
    print("|---|---|---|---|---|")
    reference = None
    for mode in args.modes:
        out = run(args.size, args.device, args.optimizer, args.iterations, mode)
        reference = reference if reference is not None else out["best"]
        print(
            f"| {mode} | {out['seconds']:.1f} | {out['per_iter']:.4f} | {out['best']:.6g} | "
            f"{100 * (out['best'] - reference) / reference:+.2f} % |",
            flush=True,
        )


if __name__ == "__main__":
    main()
