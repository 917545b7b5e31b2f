"""``styleforge make-dataset`` and ``styleforge train-attrs``: data and training of the attribute network."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import BACKBONES, FEATURE_NORMS, DatasetConfig, TrainConfig
from ..files import check_writable
from .base import explicit, stop_flag, stopped, stopped_words, training_errors

__all__ = ["make_dataset_command", "train_attrs_command"]

_A = TrainConfig()
_D = DatasetConfig()


@click.command("make-dataset")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--count", type=int, default=_D.count, show_default=True, help="Number of images.")
@click.option(
    "--seed",
    type=int,
    default=_D.seed,
    show_default=True,
    help="Random seed; the same seed gives the same files.",
)
@click.option("--size", type=int, default=_D.size, show_default=True, help="Side of each square image in px.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the data set already in OUT (labels.csv and images/NNNN.png); without it a folder that "
    "holds a labels file or images is refused.",
)
def make_dataset_command(out: Path, count: int, seed: int, size: int, overwrite: bool) -> None:
    """Write a synthetic labelled data set to OUT: images/ and labels.csv.

    Compositions of shapes, fills and palettes whose 8 ACAN attributes are known by construction
    (see docs/attributes.md). Ctrl-C or SIGTERM keeps the images finished, listed in labels.csv
    (exit code 130 or 143).

    \b
    Example:
      styleforge make-dataset data/synth --count 400 --seed 0 --size 128
    """
    from ..attributes.synthetic import write_dataset

    check_writable(out / "labels.csv", param="OUT")
    flag = stop_flag()
    result = write_dataset(out, count=count, seed=seed, size=size, overwrite=overwrite, interrupt=flag)
    click.echo(str(result.labels))
    if result.stop_signal is not None:
        click.echo(
            f"{stopped_words(result.stop_signal)}: {result.written} of {count} images were written; "
            f"{result.labels} lists them",
            err=True,
        )
        stopped(flag)


@click.command("train-attrs")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with the images and the labels CSV (both layouts: see docs/attributes.md).",
)
@click.option(
    "--labels", default=_A.labels, help="The labels CSV [default: DATA/labels.csv, else DATA's only .csv]."
)
@click.option(
    "--schema", default=_A.schema, help="TOML/JSON file of attributes [default: the 8 ACAN attributes]."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Run folder (model, history, curves, metrics).",
)
@click.option("--backbone", type=click.Choice(list(BACKBONES)), default=_A.backbone, show_default=True)
@click.option(
    "--weights",
    default=_A.weights,
    show_default=True,
    metavar="imagenet|hed|random|auto|PATH",
    help="Backbone weights, as in transfer (hed: with --backbone vgg16; auto may switch vgg19 to vgg16+hed).",
)
@click.option(
    "--size", type=int, default=_A.size, show_default=True, help="Images are resized to SIZE x SIZE px."
)
@click.option(
    "--finetune",
    is_flag=True,
    default=_A.finetune,
    help="Train the backbone too (end to end, with augmentation).",
)
@click.option(
    "--backbone-lr-scale",
    type=float,
    default=_A.backbone_lr_scale,
    show_default=True,
    help="--finetune: the backbone's learning rate is --lr times this.",
)
@click.option(
    "--trunk",
    type=int,
    default=_A.trunk,
    show_default=True,
    help="Shared trainable layers between the features and the heads (0: independent heads); "
    "through them the loss weights trade attributes off.",
)
@click.option(
    "--trunk-width", type=int, default=_A.trunk_width, show_default=True, help="Width of each trunk layer."
)
@click.option(
    "--feature-norm",
    type=click.Choice(list(FEATURE_NORMS)),
    default=_A.feature_norm,
    show_default=True,
    help="standard: each feature scaled by the training images' statistics; l2: each image's vector to "
    "unit length, as the original (it divides out most of the contrast).",
)
@click.option(
    "--augment",
    type=click.Choice(["auto", "none", "standard"]),
    default=_A.augment,
    show_default=True,
    help="standard: pad+crop, small rotation, flip (never colour); auto: standard with --finetune.",
)
@click.option(
    "--numeric-loss",
    type=click.Choice(["mse", "smooth_l1", "l1", "huber"]),
    default=_A.numeric_loss,
    show_default=True,
)
@click.option(
    "--huber-delta",
    type=float,
    default=_A.huber_delta,
    show_default=True,
    help="huber's delta, smooth_l1's beta.",
)
@click.option(
    "--label-smoothing",
    type=float,
    default=_A.label_smoothing,
    show_default=True,
    help="Of the categorical heads.",
)
@click.option(
    "--loss-weight",
    "loss_weight",
    multiple=True,
    metavar="KEY=W",
    help="Weight of numeric, categorical or one attribute's term; repeatable (seed 000: categorical=0.7).",
)
@click.option(
    "--balance",
    type=click.Choice(["none", "initial", "uncertainty"]),
    default=_A.balance,
    show_default=True,
    help="initial: divide each term by its starting value; "
    "uncertainty: learned log-variances (Kendall 2018).",
)
@click.option(
    "--optimizer",
    default=_A.optimizer,
    show_default=True,
    metavar="NAME[@LR]",
    help="adam adamw sgd momentum nesterov rmsprop adagrad adadelta lbfgs.",
)
@click.option(
    "--lr",
    type=float,
    default=_A.lr,
    help="Learning rate [default: per optimiser; adam 0.01, see docs/attributes.md].",
)
@click.option("--weight-decay", type=float, default=_A.weight_decay, show_default=True)
@click.option(
    "--lr-schedule",
    type=click.Choice(["none", "cosine", "plateau"]),
    default=_A.lr_schedule,
    show_default=True,
)
@click.option("--plateau-factor", type=float, default=_A.plateau_factor, show_default=True)
@click.option("--plateau-patience", type=int, default=_A.plateau_patience, show_default=True)
@click.option("--batch-size", type=int, default=_A.batch_size, show_default=True)
@click.option("--epochs", type=int, default=_A.epochs, show_default=True)
@click.option(
    "--seed",
    type=int,
    default=_A.seed,
    show_default=True,
    help="Split, heads' init, shuffling, augmentation.",
)
@click.option(
    "--val-split",
    type=float,
    default=_A.val_split,
    show_default=True,
    help="Share held out for validation (unless the CSV has split/in_train).",
)
@click.option(
    "--test-split",
    type=float,
    default=_A.test_split,
    show_default=True,
    help="Share held out for a final test.",
)
@click.option(
    "--patience",
    type=int,
    default=_A.patience,
    show_default=True,
    help="Stop after this many epochs without a better validation total (0: never).",
)
@click.option(
    "--min-delta",
    type=float,
    default=_A.min_delta,
    show_default=True,
    help="Relative improvement that counts.",
)
@click.option(
    "--divergence-factor",
    type=float,
    default=_A.divergence_factor,
    show_default=True,
    help="A validation total above this x the best stops the run.",
)
@click.option(
    "--skip-bad",
    is_flag=True,
    default=_A.skip_bad,
    help="Skip missing or unreadable images (and count them).",
)
@click.option(
    "--feature-cache/--no-feature-cache",
    default=_A.feature_cache,
    show_default=True,
    help="Keep the frozen backbone's features in RUN/features.safetensors.",
)
@click.option(
    "--device",
    default=_A.device,
    show_default=True,
    help="auto, cpu, cuda, cuda:N or mps (under torchrun: auto, cpu or cuda, one GPU per process).",
)
@click.option(
    "--workers",
    type=int,
    default=_A.workers,
    help="Processes that decode (and with --finetune augment) images; 0: none "
    "[default: min(4, CPU cores per process - 1)]. Results do not depend on it.",
)
@click.option("--resume", is_flag=True, help="Continue the run in -o exactly where it stopped.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def train_attrs_command(
    ctx: click.Context,
    data: Path | None,
    output: Path,
    loss_weight: Sequence[str],
    resume: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Train the art-composition attribute network on --data and write the run to -o.

    \b
    Examples:
      styleforge make-dataset data/synth --count 400 --size 128
      styleforge train-attrs --data data/synth -o runs/base --backbone resnet18 --size 128
      styleforge train-attrs --data data/synth -o runs/cat07 --loss-weight categorical=0.7
      styleforge train-attrs --data data/synth -o runs/heads --trunk 0      # independent heads
      styleforge train-attrs -o runs/cat07 --resume --epochs 400
      torchrun --nproc_per_node 2 -m styleforge train-attrs --data data/synth -o runs/ddp --device cpu
    """
    from ..attributes.losses import parse_loss_weights
    from ..attributes.train import train_attrs
    from ..engine.distributed import process_rank
    from .display import TrainDisplay

    if data is None and not resume:
        raise click.UsageError("Missing option '--data' (a folder with images and a labels CSV).")
    check_writable(output / "model.json", param="-o")
    options["loss_weights"] = parse_loss_weights(loss_weight)
    rank = process_rank()  # under torchrun only rank 0 prints (the core gives the others no events)
    display = TrainDisplay(quiet=quiet or rank != 0)
    with training_errors(ctx, rank, display):
        if resume:
            given = explicit(ctx, [*options, "loss_weight"])
            overrides = {k: options[k] for k in given if k in options}
            if "loss_weight" in given:
                overrides["loss_weights"] = options["loss_weights"]
            result = train_attrs(data, output, resume=True, callbacks=[display], **overrides)
        else:
            config = TrainConfig(**options)
            result = train_attrs(data, output, config, callbacks=[display])
    flag = stop_flag()
    if rank != 0:
        if result.stop_reason == "interrupted":
            stopped(flag)
        return
    best = result.metrics.get("val") or result.metrics.get("train") or {}
    if result.best_epoch:
        click.echo(
            f"done: {result.stop_reason} after {len(result.history)} epochs; best epoch {result.best_epoch}"
            + (f", loss {best['loss']:.4g}" if "loss" in best else ""),
            err=True,
        )
    if "test" in result.metrics:
        test = result.metrics["test"]
        from ..attributes.metrics import EPOCH_LINE_GROUPS

        shown = " ".join(
            f"{k} {v:.3g}" for k, v in test.items() if k.startswith(tuple(f"{g}." for g in EPOCH_LINE_GROUPS))
        )
        click.echo(f"test: loss {test['loss']:.4g} · {shown}", err=True)
    click.echo("\n".join(str(p) for p in result.files))
    if result.stop_reason == "interrupted":
        hint = (
            f"continue with styleforge train-attrs -o {output} --resume"
            if result.history
            else "no epoch finished"
        )
        click.echo(f"{stopped_words(flag.signum)}: {hint}", err=True)
        stopped(flag)
