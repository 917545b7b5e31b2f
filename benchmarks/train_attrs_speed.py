"""Speed and accuracy of ``styleforge train-attrs``: frozen+cached features against fine-tuning, and
validation metrics against the trivial baseline, on a synthetic data set.

For each backbone it measures, on the same synthetic set (``make-dataset``, seed 0):

- frozen + cached (the default): the one-time feature extraction (images/s through the backbone,
  no gradients), then training images/s of the heads alone (median per-batch time, and whole
  epochs including the validation pass);
- fine-tuning (``--finetune``: augmentation, forward and backward through the backbone): training
  images/s, median per-batch time, on a ``--finetune-images`` subset for one epoch;
- after the frozen run (``--epochs``, default early stopping), the validation MAE of every numeric
  attribute and the accuracy of every categorical one, next to the trivial baseline (the training
  mean / the majority class).

Weights are seeded random (no ImageNet download here): the accuracy figures show what a frozen
*random* backbone's hypercolumn supports, a floor for what ImageNet weights give.

    python benchmarks/train_attrs_speed.py                       # 128 px, resnet18 + resnet50, CPU
    python benchmarks/train_attrs_speed.py --archs resnet18 --epochs 50 --device cuda
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _timer(device: str):
    """A callback recording when features, batches and epochs finish."""
    import torch

    from styleforge.engine import BatchProgress, EpochEnded, EpochStarted, TaskProgress

    marks: dict[str, list[float]] = {"features": [], "batches": [], "epochs": [], "batch_index": []}
    started: list[float] = []

    def now() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    def callback(event: object) -> None:
        if isinstance(event, TaskProgress) and event.task == "features":
            marks["features"].append(now())
        elif isinstance(event, EpochStarted):
            started.append(now())
            marks["batches"].append(started[-1])
            marks["batch_index"].append(0)
        elif isinstance(event, BatchProgress):
            marks["batches"].append(now())
            marks["batch_index"].append(event.batch)
        elif isinstance(event, EpochEnded):
            marks["epochs"].append(now() - started[-1])

    return callback, marks, now


def _per_batch(marks: dict[str, list[float]]) -> float:
    """Median seconds per training batch (from the epoch's start, or the previous batch, to its end)."""
    gaps = [
        b - a for a, b, i in zip(marks["batches"], marks["batches"][1:], marks["batch_index"][1:]) if i >= 1
    ]
    return statistics.median(gaps)


def run(args: argparse.Namespace) -> dict:
    from styleforge import make_dataset

    work = Path(args.work or tempfile.mkdtemp(prefix="sf-bench-"))
    data = work / f"synth{args.count}_{args.size}"
    if not (data / "labels.csv").is_file():
        t0 = time.perf_counter()
        make_dataset(data, count=args.count, seed=0, size=args.size)
        print(f"made {args.count} images at {args.size} px in {time.perf_counter() - t0:.1f} s")
    with open(data / "labels.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    with open(data / "subset.csv", "w", newline="") as stream:
        csv.writer(stream).writerows(rows[: args.finetune_images + 1])

    common = dict(weights="random", size=args.size, device=args.device, batch_size=args.batch_size, seed=0)
    results: dict = {"size": args.size, "count": args.count, "device": args.device, "archs": {}}
    for arch in args.archs:
        entry = _frozen(args, data, work, arch, common)
        entry["finetune"] = _finetune(args, data, work, arch, common)
        results["archs"][arch] = entry
        print(json.dumps({arch: {k: entry[k] for k in ("frozen", "finetune")}}, indent=1))
    return results


def _timed_training(
    args: argparse.Namespace, data: Path, out: Path, **options: Any
) -> tuple[Any, dict, float]:
    """Trains into a fresh ``out`` with the batch and epoch timer; returns the result, the timer's marks
    and the run's wall seconds."""
    from styleforge import train_attrs

    callback, marks, _ = _timer(args.device)
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = train_attrs(data, out, callbacks=[callback], **options)
    return result, marks, time.perf_counter() - t0


def _frozen(args: argparse.Namespace, data: Path, work: Path, arch: str, common: dict) -> dict:
    """Frozen + cached: the default; this run also gives the accuracy figures."""
    result, marks, total = _timed_training(
        args,
        data,
        work / f"{arch}-frozen",
        backbone=arch,
        epochs=args.epochs,
        val_split=args.val_split,
        feature_cache=False,
        **common,
    )
    n_train = result.metrics["images"]["train"]
    feature_seconds = (
        marks["features"][-1] - marks["features"][0] if len(marks["features"]) > 1 else float("nan")
    )
    per_feature_batch = feature_seconds / max(1, len(marks["features"]) - 1)
    return {
        "frozen": {
            "feature_images_per_s": 16 / per_feature_batch,  # compute_features runs 16 images a batch
            "train_images_per_s_heads": args.batch_size / _per_batch(marks),
            "epoch_images_per_s": n_train / statistics.median(marks["epochs"]),
            "epochs_run": result.metrics["epochs_run"],
            "best_epoch": result.best_epoch,
            "stop_reason": result.stop_reason,
            "wall_s": total,
        },
        "val": result.metrics.get("val", {}),
        "baseline": result.metrics["baseline"].get("val", {}),
        "images": result.metrics["images"],
    }


def _finetune(args: argparse.Namespace, data: Path, work: Path, arch: str, common: dict) -> dict:
    """Fine-tuning: one epoch on a subset, end to end with augmentation."""
    result, marks, total = _timed_training(
        args,
        data,
        work / f"{arch}-finetune",
        backbone=arch,
        epochs=1,
        finetune=True,
        labels="subset.csv",
        val_split=0.1,
        **{**common, "batch_size": args.finetune_batch_size},
    )
    return {
        "train_images_per_s": args.finetune_batch_size / _per_batch(marks),
        "epoch_images_per_s": result.metrics["images"]["train"] / marks["epochs"][0],
        "images": result.metrics["images"]["train"],
        "wall_s": total,
    }


def markdown(results: dict) -> str:
    lines = [
        f"Speed at {results['size']} px on {results['device']} (images per second; seeded random weights):",
        "",
        "| backbone | feature extraction (once) | frozen+cached: train heads "
        "| frozen+cached: whole epoch | finetune: train | speed-up |",
        "|---|---|---|---|---|---|",
    ]
    for arch, e in results["archs"].items():
        f, t = e["frozen"], e["finetune"]
        lines.append(
            f"| {arch} | {f['feature_images_per_s']:.1f} | {f['train_images_per_s_heads']:,.0f} | "
            f"{f['epoch_images_per_s']:,.0f} | {t['train_images_per_s']:.1f} | "
            f"{f['epoch_images_per_s'] / t['train_images_per_s']:,.0f}x |"
        )
    lines.append("")
    for arch, e in results["archs"].items():  # issue 6: a frozen+cached epoch at least 20x cheaper
        ratio = e["frozen"]["epoch_images_per_s"] / e["finetune"]["train_images_per_s"]
        lines.append(
            f"{arch}: a frozen+cached epoch is {ratio:,.0f}x cheaper per image than a fine-tuning epoch "
            f"(target >= 20x: {'met' if ratio >= 20 else 'NOT met'})"
        )
    for arch, e in results["archs"].items():
        f = e["frozen"]
        lines += [
            "",
            f"Validation metrics, {arch} frozen, {e['images']['train']} training / "
            f"{e['images']['val']} validation "
            f"images, stopped at epoch {f['epochs_run']} ({f['stop_reason']}), best epoch {f['best_epoch']}:",
            "",
            "| attribute | metric | styleforge | trivial baseline |",
            "|---|---|---|---|",
        ]
        for key, value in e["val"].items():
            if key.startswith(("mae.", "acc.")) and key in e["baseline"]:
                metric, name = key.split(".", 1)
                better = value < e["baseline"][key] if metric == "mae" else value > e["baseline"][key]
                lines.append(
                    f"| {name} | {'MAE' if metric == 'mae' else 'accuracy'} | "
                    f"{value:.3f}{' ✓' if better else ''} | "
                    f"{e['baseline'][key]:.3f} |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--archs", nargs="+", default=["resnet18", "resnet50"])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument(
        "--epochs", type=int, default=100, help="most epochs of the frozen run (early stopping on)"
    )
    parser.add_argument("--val-split", type=float, default=0.2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--finetune-images", type=int, default=64)
    parser.add_argument("--finetune-batch-size", type=int, default=16)
    run_and_report(parser, run, markdown)


def run_and_report(
    parser: argparse.ArgumentParser,
    run: Callable[[argparse.Namespace], dict],
    markdown: Callable[[dict], str],
) -> None:
    """Adds the options every train-attrs benchmark has (``--device``, ``--threads``, ``--work``,
    ``--json``), parses the command line, runs, writes the JSON and prints the Markdown."""
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice; 1 on a shared, busy machine)",
    )
    parser.add_argument(
        "--work", default=None, help="folder for the data set and runs (default: a temp folder)"
    )
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    results = run(args)
    results["threads"] = args.threads
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
