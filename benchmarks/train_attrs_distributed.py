"""``train-attrs`` in 1 process against ``torchrun --nproc_per_node N`` (CPU, gloo), and fine-tuning
with ``--workers 0`` against ``--workers W``: wall time, median epoch time, and whether the results
agree (they must, up to floating-point noise).

Every configuration runs as its own command (``python -m styleforge train-attrs`` or ``python -m
torch.distributed.run ... -m styleforge train-attrs``), so each pays the same start-up cost (imports,
reading and decoding the images); each process gets ``--threads`` intra-op threads.

    python benchmarks/train_attrs_distributed.py                    # 400 images at 128 px, 1 vs 2 processes
    python benchmarks/train_attrs_distributed.py --nproc 4 --threads 4 --device cpu
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: argparse.Namespace, data: Path, out: Path, nproc: int, extra: list[str]) -> dict:
    """One train-attrs command; its wall time, median epoch seconds and final validation loss."""
    command = [sys.executable, "-m", "styleforge", "train-attrs"]
    if nproc > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            "-m",
            "styleforge",
            "train-attrs",
        ]
    command += [
        "--data",
        str(data),
        "-o",
        str(out),
        "--backbone",
        args.arch,
        "--weights",
        "random",
        "--size",
        str(args.size),
        "--device",
        args.device,
        "--val-split",
        "0.2",
        "--no-feature-cache",
        "--quiet",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    with open(out / "history.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    return {
        "wall_s": wall,
        "epoch_s": statistics.median(float(r["seconds"]) for r in rows),
        "val_loss": float(rows[-1]["val_loss"]),
        "epochs": len(rows),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--epochs", type=int, default=50, help="frozen runs")
    parser.add_argument("--finetune-images", type=int, default=64)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="fine-tuning with this many workers against 0")
    parser.add_argument(
        "--threads", type=int, default=1, help="intra-op threads per process (OMP_NUM_THREADS)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", default=None)
    parser.add_argument("--json", default=None)
    return parser


def main() -> None:
    args = _parser().parse_args()

    from styleforge import make_dataset

    work = Path(args.work or tempfile.mkdtemp(prefix="sf-ddp-"))
    data = work / f"synth{args.count}_{args.size}"
    if not (data / "labels.csv").is_file():
        make_dataset(data, count=args.count, seed=0, size=args.size)
    with open(data / "labels.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    with open(data / "subset.csv", "w", newline="") as stream:
        csv.writer(stream).writerows(rows[: args.finetune_images + 1])

    frozen = ["--epochs", str(args.epochs), "--patience", "0", "--workers", "0"]
    finetune = [
        "--finetune",
        "--labels",
        "subset.csv",
        "--epochs",
        str(args.finetune_epochs),
        "--batch-size",
        "16",
    ]
    runs = {
        "frozen, 1 process": (1, frozen),
        f"frozen, {args.nproc} processes": (args.nproc, frozen),
        "finetune, 1 process, --workers 0": (1, [*finetune, "--workers", "0"]),
        f"finetune, 1 process, --workers {args.workers}": (1, [*finetune, "--workers", str(args.workers)]),
        f"finetune, {args.nproc} processes, --workers 0": (args.nproc, [*finetune, "--workers", "0"]),
    }
    results = {}
    for name, (nproc, extra) in runs.items():
        results[name] = _run(args, data, work / name.replace(", ", "_").replace(" ", "-"), nproc, extra)
        print(f"{name}: {json.dumps(results[name])}", flush=True)

    _print_results(args, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))


def _print_results(args: argparse.Namespace, results: dict) -> None:
    """The table of the runs, then each comparison's speed-up and how far its val_loss moved."""
    print(
        f"\n{args.count} images at {args.size} px, {args.arch}, {args.device}, "
        f"{args.threads} thread(s) per process:\n"
    )
    print("| run | wall (s) | median epoch (s) | final val_loss |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['wall_s']:.1f} | {r['epoch_s']:.3f} | {r['val_loss']:.6f} |")
    pairs = [
        ("frozen, 1 process", f"frozen, {args.nproc} processes"),
        ("finetune, 1 process, --workers 0", f"finetune, 1 process, --workers {args.workers}"),
        ("finetune, 1 process, --workers 0", f"finetune, {args.nproc} processes, --workers 0"),
    ]
    print()
    for a, b in pairs:
        ra, rb = results[a], results[b]
        print(
            f"{b} vs {a}: wall {ra['wall_s'] / rb['wall_s']:.2f}x, "
            f"epoch {ra['epoch_s'] / rb['epoch_s']:.2f}x faster; "
            f"val_loss relative difference {abs(ra['val_loss'] - rb['val_loss']) / abs(ra['val_loss']):.1e}"
        )


if __name__ == "__main__":
    main()
