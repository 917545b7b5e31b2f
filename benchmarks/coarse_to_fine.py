"""Coarse-to-fine (``--scales``) against a single-scale run: time to reach the same loss.

Runs styleforge's transfer of the bundled samples (content + one style, seeded random weights) once at
full size for ``--iterations`` iterations (the reference), then once per ``--variant`` with
``--scales``. Every run is timed from the call (targets, network and every scale included) to each
iteration. Only iterations at the full size count for the comparison: losses at coarser sizes are of
a different image. For each variant it prints the time to reach the reference's best total, the
ratio of the reference's time to that, and each run's best total and whole duration; ``--json``
keeps the curves and ``--plot`` draws them.

    python benchmarks/coarse_to_fine.py                                   # 512 px, L-BFGS, 300 iterations
    python benchmarks/coarse_to_fine.py --size 256 --optimizer adam --variant 3x100
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(size: int, optimizer: str, iterations: int, scales: int, threads: int | None) -> dict[str, object]:
    """One transfer with ``iterations`` per scale; returns its full-size curve as (seconds, best
    total so far) points."""
    import torch

    from styleforge import transfer
    from styleforge.engine import Progress

    if threads:
        torch.set_num_threads(threads)
    points: list[tuple[float, float]] = []
    best = float("inf")
    start = time.perf_counter()

    def on_event(event: object) -> None:
        nonlocal best
        if isinstance(event, Progress) and max(event.image.shape[-2:]) == size:
            best = min(best, event.summary.total)
            points.append((time.perf_counter() - start, best))

    # --iterations is the budget of the whole run, shared by the scales.
    transfer(
        ROOT / "samples/content.jpg",
        [ROOT / "samples/style_swirl.jpg"],
        size=size,
        iterations=iterations * scales,
        scales=scales,
        weights="random",
        optimizer=(optimizer,),
        divergence_factor=float("inf"),
        memory_check=False,
        callbacks=[on_event],
    )
    return {
        "scales": scales,
        "iterations": iterations,
        "seconds": time.perf_counter() - start,
        "curve": points,
    }


def reach(curve: list[tuple[float, float]], target: float) -> float | None:
    """Seconds until the best total first reached ``target`` (``None``: never)."""
    return next((t for t, value in curve if value <= target), None)


def plot(runs: list[dict[str, object]], target: float, size: int, optimizer: str, path: Path) -> None:
    """Best total at full size against seconds, one line per run (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in runs:
        label = "single scale" if r["scales"] == 1 else f"--scales {r['scales']} ({r['iterations']} it/scale)"
        ax.plot([p[0] for p in r["curve"]], [p[1] for p in r["curve"]], label=label)
    ax.axhline(target, color="grey", linestyle=":", linewidth=1)
    ax.set(
        xlabel="seconds since the start",
        ylabel=f"best total at {size} px",
        yscale="log",
        title=f"coarse-to-fine vs single scale ({optimizer})",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument(
        "--iterations", type=int, default=300, help="iterations of the single-scale reference"
    )
    parser.add_argument(
        "--variant",
        action="append",
        metavar="SCALESxITERATIONS",
        help="a coarse-to-fine run, e.g. 3x100 (3 scales, 100 iterations each); repeatable "
        "(default: 3x100, the default at 512 px, and 2x150)",
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="write every run's curve here")
    parser.add_argument("--plot", type=Path, help="draw best total against seconds at full size (PNG)")
    args = parser.parse_args()
    variants = [tuple(int(n) for n in v.lower().split("x")) for v in (args.variant or ["3x100", "2x150"])]

    reference = run(args.size, args.optimizer, args.iterations, 1, args.threads)
    target = reference["curve"][-1][1]
    t_ref = reach(reference["curve"], target)
    runs = [reference] + [
        run(args.size, args.optimizer, its, scales, args.threads) for scales, its in variants
    ]

    print(
        f"# coarse-to-fine: {args.optimizer}, {args.size} px, "
        f"reference {args.iterations} iterations at one scale"
    )
    print("| run | whole run s | best total | s to reach the reference's best | speed-up |")
    print("|---|---|---|---|---|")
    for r in runs:
        t = reach(r["curve"], target)
        label = "single scale" if r["scales"] == 1 else f"--scales {r['scales']}, {r['iterations']} it/scale"
        speed = f"{t_ref / t:.2f}x" if t else "never reached"
        print(
            f"| {label} | {r['seconds']:.1f} | {r['curve'][-1][1]:.6g} | {t:.1f} | {speed} |"
            if t
            else f"| {label} | {r['seconds']:.1f} | {r['curve'][-1][1]:.6g} | — | {speed} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"size": args.size, "optimizer": args.optimizer, "runs": runs}))
    if args.plot:
        plot(runs, target, args.size, args.optimizer, args.plot)


if __name__ == "__main__":
    main()
