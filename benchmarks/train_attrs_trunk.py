"""Validation metrics of ``styleforge train-attrs`` per attribute: the shared trunk (``--trunk`` /
``--trunk-width``) against independent heads, on random and on HED's pretrained VGG-16 features,
against the trivial baseline.

On one synthetic set (``make-dataset``, seed 0) and one split, for each ``--weights`` (a VGG-16
backbone, frozen) it computes the features once, then trains every trunk setting on them (the run
folders share the feature cache) with the defaults otherwise (Adam at 0.01, batch 32, early
stopping on the validation total). It reports, per attribute, the validation MAE (numeric, on the
1..10 label scale) or accuracy (categorical) at the best epoch, the trivial baseline (training mean /
majority class), and two summaries: the mean over the numeric attributes of MAE / baseline MAE (lower
is better, 1 is the baseline) and the mean accuracy of the categorical ones.

With ``--seeds`` > 1 each setting is also trained from other head / trunk initialisations and
shuffles (same split and features: ``--seed`` also seeds the split, so the other seeds keep seed 0's
split through a fixed ``split`` column in a copy of the labels) and the summaries are averaged.

With ``--finetune-epochs N`` (default 0: skipped) each weights' best trunk setting is also trained
end to end for N epochs (``--finetune``, augmentation on), slow on a CPU.

    python benchmarks/train_attrs_trunk.py --threads 1      # 400 images at 96 px, ~5 min on 2 cores
    python benchmarks/train_attrs_trunk.py --weights hed --trunks 0 1x256 --finetune-epochs 5
"""

from __future__ import annotations

import argparse
import csv
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from train_attrs_speed import run_and_report  # the scripts run from benchmarks/, which is on sys.path

from styleforge.config import FEATURE_NORMS, TrainConfig


def _trunk(text: str) -> tuple[int, int]:
    """``0`` → (0, 256); ``1x256`` → (1, 256); ``2x64`` → (2, 64)."""
    layers, _, width = text.partition("x")
    return int(layers), int(width or 256)


def _with_split(data: Path, val_split: float) -> str:
    """A copy of the labels with a ``split`` column (seed 0's split), so every seed trains on the same
    images; returns its file name."""
    from styleforge.attributes.labels import assign_splits, read_labels
    from styleforge.attributes.schema import ACAN_SCHEMA

    table = read_labels(data, ACAN_SCHEMA)
    splits = assign_splits(table, val_split, 0.0, 0, keep=list(range(len(table.items))))
    which = {i: name for name, items in splits.items() for i in items}
    with open(data / "labels.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    with open(data / "split.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow([*rows[0], "split"])
        for i, row in enumerate(rows[1:]):
            writer.writerow([*row, which[i]])
    return "split.csv"


def _summary(val: dict[str, float], baseline: dict[str, float]) -> dict[str, float]:
    ratios = [val[k] / baseline[k] for k in val if k.startswith("mae.") and k in baseline]
    accs = [val[k] for k in val if k.startswith("acc.")]
    return {"mae_ratio": statistics.mean(ratios), "acc": statistics.mean(accs)}


def _row(result: Any, weights: str, trunk: str, seed: int, finetune: bool, started: float) -> dict[str, Any]:
    """One run's figures: best validation metrics, the baseline on the same images, the summaries."""
    val, baseline = result.metrics["val"], result.metrics["baseline"]["val"]
    return {
        "weights": weights,
        "trunk": trunk,
        "seed": seed,
        "finetune": finetune,
        "best_epoch": result.best_epoch,
        "epochs_run": result.metrics["epochs_run"],
        "seconds": time.perf_counter() - started,
        "val": val,
        "baseline": baseline,
        "images": result.metrics["images"],
        "summary": _summary(val, baseline),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    from styleforge import make_dataset, train_attrs
    from styleforge.attributes.saved_run import FEATURES_FILE

    work = Path(args.work or tempfile.mkdtemp(prefix="sf-trunk-"))
    data = work / f"synth{args.count}_{args.size}"
    if not (data / "labels.csv").is_file():
        make_dataset(data, count=args.count, seed=0, size=args.size)
    labels = _with_split(data, args.val_split)
    common = dict(
        backbone="vgg16",
        size=args.size,
        device=args.device,
        epochs=args.epochs,
        labels=labels,
        workers=0,
        feature_norm=args.feature_norm,
    )
    results: dict[str, Any] = {
        "count": args.count,
        "size": args.size,
        "epochs": args.epochs,
        "seeds": args.seeds,
        "feature_norm": args.feature_norm,
        "runs": [],
    }
    for weights in args.weights:
        for seed in range(args.seeds):
            cache: Path | None = None
            for text in args.trunks:
                layers, width = _trunk(text)
                out = work / f"{weights}-trunk{layers}x{width}-seed{seed}"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir(parents=True)
                if cache is not None:  # same backbone, weights, size and seed: the same features
                    shutil.copy(cache, out / FEATURES_FILE)
                t0 = time.perf_counter()
                result = train_attrs(
                    data, out, weights=weights, trunk=layers, trunk_width=width, seed=seed, **common
                )
                cache = out / FEATURES_FILE
                row = _row(result, weights, text, seed, False, t0)
                results["runs"].append(row)
                print(
                    f"{weights} trunk {text} seed {seed}: best epoch {row['best_epoch']}, "
                    f"MAE/baseline {row['summary']['mae_ratio']:.3f}, accuracy {row['summary']['acc']:.3f} "
                    f"({row['seconds']:.0f} s)",
                    flush=True,
                )
        if args.finetune_epochs:
            results["runs"].append(_finetune_best(args, data, work, weights, results, common))
    return results


def _finetune_best(
    args: argparse.Namespace, data: Path, work: Path, weights: str, results: dict[str, Any], common: dict
) -> dict[str, Any]:
    """Fine-tunes the trunk with the lowest mean MAE/baseline of the frozen runs with ``weights``."""
    from styleforge import train_attrs

    best = min(args.trunks, key=lambda t: _mean(results, weights, t, "mae_ratio"))
    layers, width = _trunk(best)
    out = work / f"{weights}-trunk{layers}x{width}-finetune"
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = train_attrs(
        data,
        out,
        weights=weights,
        trunk=layers,
        trunk_width=width,
        finetune=True,
        **{**common, "epochs": args.finetune_epochs, "batch_size": 16},
    )
    row = _row(result, weights, best, 0, True, t0)
    print(
        f"{weights} trunk {best} fine-tuned {args.finetune_epochs} epochs: MAE/baseline "
        f"{row['summary']['mae_ratio']:.3f}, accuracy {row['summary']['acc']:.3f} "
        f"({row['seconds']:.0f} s)",
        flush=True,
    )
    return row


def _mean(results: dict[str, Any], weights: str, trunk: str, key: str, finetune: bool = False) -> float:
    return statistics.mean(
        r["summary"][key]
        for r in results["runs"]
        if r["weights"] == weights and r["trunk"] == trunk and r["finetune"] == finetune
    )


def markdown(results: dict[str, Any]) -> str:
    runs = results["runs"]
    first = runs[0]
    columns = [(r["weights"], r["trunk"], r["finetune"]) for r in runs if r["seed"] == 0]
    lines = [
        f"{results['count']} synthetic images at {results['size']} px, VGG-16, "
        f"{first['images']['train']} training / "
        f"{first['images']['val']} validation images, --feature-norm {results.get('feature_norm', 'l2')}, "
        f"at most {results['epochs']} epochs (early stopping), "
        f"seed 0 (per-attribute table); summaries averaged over {results['seeds']} seed(s):",
        "",
        "| attribute | metric | "
        + " | ".join(f"{w} trunk {t}{' fine-tuned' if f else ''}" for w, t, f in columns)
        + " | trivial baseline |",
        "|---|---|" + "---|" * (len(columns) + 1),
    ]
    seed0 = [r for r in runs if r["seed"] == 0]
    for key in first["val"]:
        if not key.startswith(("mae.", "acc.")) or key not in first["baseline"]:
            continue
        metric, name = key.split(".", 1)
        cells = []
        for r in seed0:
            value, base = r["val"][key], r["baseline"][key]
            better = value < base if metric == "mae" else value > base
            cells.append(f"{value:.3f}{' ✓' if better else ''}")
        lines.append(
            f"| {name} | {'MAE' if metric == 'mae' else 'accuracy'} | "
            + " | ".join(cells)
            + f" | {first['baseline'][key]:.3f} |"
        )
    ratio = [f"{_mean(results, w, t, 'mae_ratio', f):.3f}" for w, t, f in columns]
    acc = [f"{_mean(results, w, t, 'acc', f):.3f}" for w, t, f in columns]
    epochs = [
        str(
            statistics.median(r["best_epoch"] for r in runs if (r["weights"], r["trunk"], r["finetune"]) == c)
        )
        for c in columns
    ]
    lines += [
        "| **mean MAE / baseline** (numeric) | | " + " | ".join(ratio) + " | 1.000 |",
        "| **mean accuracy** (categorical) | | "
        + " | ".join(acc)
        + " | "
        + f"{statistics.mean(v for k, v in first['baseline'].items() if k.startswith('acc.')):.3f} |",
        "| best epoch (median) | | " + " | ".join(epochs) + " | |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--weights", nargs="+", default=["random", "hed"])
    parser.add_argument(
        "--trunks",
        nargs="+",
        default=["0", "1x64", "1x256", "1x1024", "2x256"],
        help="LAYERSxWIDTH settings (0: independent heads)",
    )
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--val-split", type=float, default=0.25)
    parser.add_argument("--finetune-epochs", type=int, default=0)
    parser.add_argument("--feature-norm", default=TrainConfig().feature_norm, choices=FEATURE_NORMS)
    run_and_report(parser, run, markdown)


if __name__ == "__main__":
    main()
