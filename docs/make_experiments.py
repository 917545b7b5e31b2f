"""Runs every experiment of docs/experiments.md as one styleforge command and keeps its figures.

    python docs/make_experiments.py                  # all experiments, small and fast (random weights)
    python docs/make_experiments.py --only pooling optimizers
    python docs/make_experiments.py --weights imagenet --size 384 --iterations 300   # the real thing

Each experiment is a ``styleforge sweep ...`` command (printed before it runs); its sweep folder goes
under --work (default out/experiments/) and its sheet.png / curves.png are copied to
docs/images/experiments/<name>_sheet.png / <name>_curves.png. Finished cells are reused when the
script runs again.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def experiments(args: argparse.Namespace) -> dict[str, list[str]]:
    """Experiment name → the styleforge arguments that run it."""
    return {**_transfer_experiments(args), **_training_experiments(args)}


def _transfer_experiments(args: argparse.Namespace) -> dict[str, list[str]]:
    """The style-transfer experiments: a sweep of ``transfer`` over the samples for each knob."""
    content = str(SAMPLES / "content.jpg")
    swirl, shapes = str(SAMPLES / "style_swirl.jpg"), str(SAMPLES / "style_shapes.jpg")
    base = ["sweep", "transfer", content, "--size", str(args.size), "--weights", args.weights, "--seed", "0"]
    fixed = ["--iterations", str(args.iterations), "--optimizer", "adam"]
    blends = f"{swirl}:0.5+{shapes}:0.5,{swirl}:0.75+{shapes}:0.25,{swirl}:0.25+{shapes}:0.75"
    strip = ",".join(str(args.iterations * k // 8) for k in (1, 2, 4, 8))
    optimizers = "sgd,momentum,adagrad,adadelta,adam,rmsprop,lbfgs"
    return {
        "content_weight": [*base, "--style", swirl, *fixed, "--grid", "content-weight=0.3,1,3"],
        "blend": [*base, *fixed, "--grid", f"style={blends}"],
        "pooling": [*base, "--style", swirl, *fixed, "--grid", "pooling=max,avg"],
        "layer_exp": [*base, "--style", swirl, *fixed, "--grid", "style-layer-weight-exp=0.2,1,2"],
        "iterations": [
            *[*base, "--style", swirl, "--optimizer", "adam", "--init", "noise"],
            *["--grid", f"iterations={strip}"],
        ],
        "stopping": [
            *[*base, "--style", swirl, "--optimizer", "adam", "--iterations", str(4 * args.iterations)],
            *["--patience", "10", "--grid", "stop-delta=0,0.001,0.01"],
        ],
        "optimizers": [
            *[*base, "--style", swirl, "--iterations", str(args.iterations)],
            *["--divergence-factor", "inf", "--grid", f"optimizer={optimizers}"],
        ],
    }


def _training_experiments(args: argparse.Namespace) -> dict[str, list[str]]:
    """The attribute-training experiments: a sweep of ``train-attrs`` on the synthetic data set."""
    data = str(args.work / "data")
    train = ["sweep", "train-attrs", "--data", data, "--backbone", "resnet18", "--weights", args.weights]
    train += ["--size", "64", "--epochs", str(args.epochs), "--seed", "0"]
    categorical = ["--grid", "loss-weight.categorical=1,0.85,0.7,0.5"]
    return {
        # Loss weights only trade heads off where they share parameters: the default shared trunk
        # (see docs/experiments.md for why independent heads under Adam ignore them).
        "categorical_weights": [*train, *categorical],
        # The same sweep without the trunk: four identical sets of curves.
        "categorical_weights_trunk0": [*train, "--trunk", "0", *categorical],
        "numeric_loss": [*train, "--grid", "numeric-loss=mse,smooth_l1"],
        "decay_augment": [
            *[*train, "--finetune", "--epochs", str(max(2, args.epochs // 10))],
            *["--grid", "weight-decay=0,0.0001", "--grid", "augment=none,standard"],
        ],
        "early_stopping": [*train, "--epochs", str(4 * args.epochs), "--grid", "patience=3,10,1000"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", help="experiment names to run (default: all)")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument(
        "--count", type=int, default=160, help="synthetic images for the training experiments"
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "experiments")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "images" / "experiments")
    args = parser.parse_args()
    table = experiments(args)
    unknown = set(args.only or ()) - set(table)
    if unknown:
        parser.error(f"unknown experiments {sorted(unknown)}; choose from {sorted(table)}")
    styleforge = [sys.executable, "-m", "styleforge"]
    if not (args.work / "data" / "labels.csv").is_file():
        subprocess.run(
            [
                *styleforge,
                "make-dataset",
                str(args.work / "data"),
                "--count",
                str(args.count),
                "--size",
                "64",
            ],
            check=True,
        )
    args.images.mkdir(parents=True, exist_ok=True)
    for name, command in table.items():
        if args.only and name not in args.only:
            continue
        folder = args.work / name
        full = [*command, "-o", str(folder), "--jobs", str(args.jobs)]
        print("$ styleforge " + shlex.join(str(a).replace(str(ROOT) + "/", "") for a in full), flush=True)
        subprocess.run([*styleforge, *full], check=True)
        for figure in ("sheet", "curves"):
            if (folder / f"{figure}.png").is_file():
                shutil.copyfile(folder / f"{figure}.png", args.images / f"{name}_{figure}.png")


if __name__ == "__main__":
    main()
