"""``styleforge make-dataset`` and ``styleforge train-attrs``: data and training of the attribute network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..config import DatasetConfig, TrainConfig
from ..files import check_writable
from .base import explicit, finish_training, stop_flag, stopped, stopped_words, training_errors
from .flags import click_options, flag_values, from_flags, with_options

__all__ = ["make_dataset_command", "train_attrs_command"]


@click.command("make-dataset")
@click.argument("out", type=click.Path(path_type=Path))
@with_options(click_options(DatasetConfig))
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the data set already in OUT (labels.csv and images/NNNN.png); without it a folder that "
    "holds a labels file or images is refused.",
)
def make_dataset_command(out: Path, overwrite: bool, **options: Any) -> None:
    """Write a synthetic labelled data set to OUT: images/ and labels.csv.

    Compositions of shapes, fills and palettes whose 8 ACAN attributes are known by construction
    (see docs/attributes.md). Ctrl-C or SIGTERM keeps the images finished, listed in labels.csv
    (exit code 130 or 143).

    \b
    Example:
      styleforge make-dataset data/synth --count 400 --seed 0 --size 128
    """
    config = from_flags(DatasetConfig, options)
    from ..attributes.synthetic import write_dataset

    check_writable(out / "labels.csv", param="OUT")
    flag = stop_flag()
    result = write_dataset(
        out, count=config.count, seed=config.seed, size=config.size, overwrite=overwrite, interrupt=flag
    )
    click.echo(str(result.labels))
    if result.stop_signal is not None:
        click.echo(
            f"{stopped_words(result.stop_signal)}: {result.written} of {config.count} images were written; "
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
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Run folder (model, history, curves, metrics).",
)
@with_options(click_options(TrainConfig))
@click.option("--resume", is_flag=True, help="Continue the run in -o exactly where it stopped.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def train_attrs_command(
    ctx: click.Context,
    data: Path | None,
    output: Path,
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
    # The options' checks need no torch: they come first. On --resume only the options given
    # override the saved run's, and the rules between options wait for its values.
    if resume:
        overrides = flag_values(TrainConfig, options, explicit(ctx, list(options)))
        TrainConfig(**overrides).check()
    else:
        config = from_flags(TrainConfig, options)
        if data is None:
            raise click.UsageError("Missing option '--data' (a folder with images and a labels CSV).")
    from ..attributes.train import train_attrs
    from ..engine.distributed import process_rank
    from .display import TrainDisplay

    check_writable(output / "model.json", param="-o")
    rank = process_rank()  # under torchrun only rank 0 prints (the core gives the others no events)
    display = TrainDisplay(quiet=quiet or rank != 0)
    with training_errors(ctx, rank, display):
        if resume:
            result = train_attrs(data, output, resume=True, callbacks=[display], **overrides)
        else:
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
    finish_training(result, flag, "train-attrs", output, "no epoch finished")
