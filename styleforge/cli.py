"""The ``styleforge`` command line: a thin click layer over the Python API.

The CLI owns what the core never does: progress bars, files and exit codes. A
:class:`~styleforge.errors.StyleforgeError` becomes one ``error: …`` line and its exit code (2 for
a usage error, 1 for a runtime failure); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import BACKBONES, COLOR_TRANSFERS, NETWORKS, PRECISIONS, STYLE_LOSSES, STYLE_WEIGHTS, TransferConfig
from .engine import Download, Event, Notice, Progress, StageEnded, StageStarted, parse_optimizer
from .errors import InvalidParameter, InvalidUsage, NoProgressError, StyleforgeError
from .images import check_output_path

__all__ = ["main", "cli"]

_T = TransferConfig()
EXIT_INTERRUPTED = 130


class _Group(click.Group):
    """Turns user errors into one line and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StyleforgeError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # click's own checks (a missing argument, a bad choice): one line too
            option = f" (see styleforge {exc.ctx.info_name} --help)" if exc.ctx is not None and exc.ctx.info_name else ""
            click.echo(f"error: {exc.format_message()}{option}", err=True)
            ctx.exit(exc.exit_code)


class _Display:
    """What every progress display shares: notices, a tqdm bar on a terminal, lines written around it."""

    def __init__(self, *, quiet: bool = False, stream: Any = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar: Any = None
        self.downloading: str | None = None  # the download shown last

    def _echo(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            click.echo(text, file=self.stream)

    def _bar(self, total: int, desc: str | None = None) -> None:
        """Replaces the current bar (if any) by a new one of ``total`` steps."""
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=desc, file=self.stream, dynamic_ncols=True, leave=False)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            self._echo(f"note: {event.message}")
        elif isinstance(event, Download):
            self._download(event)
        if not self.quiet:
            self.show(event)

    def _download(self, event: Download) -> None:
        """A byte-counting bar on a terminal, one line otherwise, when a download starts (shown even
        with ``--quiet``: minutes of silence would look like a hang)."""
        if event.what != self.downloading:
            self.close()
            self.downloading = event.what
            if not self.interactive:
                size = f" ({event.total / 1e6:.0f} MB)" if event.total else ""
                self._echo(f"downloading {event.what}{size} ...")
                return
            from tqdm import tqdm

            self.bar = tqdm(total=event.total, desc=event.what, file=self.stream, unit="B", unit_scale=True,
                            dynamic_ncols=True, leave=False)
        if self.bar is not None:
            if event.total is not None:
                self.bar.total = event.total
            self.bar.n = event.done
            self.bar.refresh()
            if event.total is not None and event.done >= event.total:
                self.close()

    def show(self, event: Event) -> None:
        """Displays one event (not called with ``quiet``)."""

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ProgressDisplay(_Display):
    """Shows transfer events: a tqdm bar on a terminal, a line every ~10% otherwise.

    Each line shows the iteration, the total and every weighted term, formatted so that the printed
    parts add up exactly to the printed total.
    """

    def show(self, event: Event) -> None:
        if isinstance(event, StageStarted):
            self._echo(f"stage {event.index + 1}: {event.name} for {event.steps} iterations (lr {event.lr:g})")
            if self.interactive and self.bar is None:
                self._bar(event.total_iterations)
        elif isinstance(event, Progress):
            line = f"loss {event.summary.format()}"
            if self.bar is not None:
                self.bar.n = event.iteration
                self.bar.set_postfix_str(line, refresh=True)
            else:
                every = max(1, event.total_iterations // 10)
                if event.iteration % every == 0 or event.iteration in (1, event.total_iterations):
                    self._echo(f"iter {event.iteration}/{event.total_iterations} · {line}")
        elif isinstance(event, StageEnded) and event.reason != "completed":
            self._echo(f"stage {event.index + 1} stopped: {event.detail}")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="styleforge")
def cli() -> None:
    """styleforge: tunable neural style transfer and art-composition attribute networks."""


def _as_default_map(ctx: click.Context, data: dict[str, Any], source: str) -> dict[str, Any]:
    """Validates option values read from a file and shapes them as click defaults."""
    names = {p.name: p for p in ctx.command.params if p.name}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "styles" or name == "style":
            name = "styles"
        if name in ("attr", "style_mask", "style_image_mask"):
            name += "s"
        if name not in names or name in ("config", "from_image"):
            valid = sorted("style" if n == "styles" else n.replace("_", "-") for n in names if n not in ("config", "from_image"))
            raise StyleforgeError(f"{source}: unknown option {key!r}; valid keys: {', '.join(valid)}")
        if value is None:
            continue
        param = names[name]
        if param.multiple and isinstance(value, str):
            value = [value]
        elif not param.multiple and isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        out[name] = value
    return out


def _read_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--config run.toml``: every option may come from a TOML file; flags on the command line win."""
    if value is None:
        return None
    from .files import TOMLDecodeError, loads_toml

    try:
        data = loads_toml(Path(value).read_text())
    except FileNotFoundError:
        raise click.BadParameter(f"{str(value)!r} does not exist", ctx, param) from None
    except (OSError, UnicodeDecodeError, TOMLDecodeError) as exc:
        raise click.BadParameter(f"{str(value)!r} is not a readable TOML file ({exc})", ctx, param) from None
    data = data.get("transfer", data)
    try:
        ctx.default_map = {**(ctx.default_map or {}), **_as_default_map(ctx, data, f"--config {value}")}
    except StyleforgeError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1], ctx, param) from None
    return value


def _read_image_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--from-image out.png``: re-run exactly what made an earlier output (from its metadata)."""
    if value is None:
        return None
    from .images import read_metadata

    meta = read_metadata(value) if Path(value).is_file() else None
    if not meta or meta.get("command") != "transfer":
        raise click.BadParameter(f"{str(value)!r} is not a PNG written by styleforge transfer", ctx, param)
    # An image from before --style-loss existed was made with Gram matrices, the default then.
    data = {"style_loss": "gram", **meta["config"], "content": meta["content"], "styles": meta["styles"]}
    ctx.default_map = {**(ctx.default_map or {}), **_as_default_map(ctx, data, f"--from-image {value}")}
    return value


def _scales(value: Any) -> int | None:
    """``--scales``: ``auto`` (``None``) or a whole number >= 1."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise InvalidParameter("--scales", value, "auto or a whole number >= 1")


def _transfer_config(options: dict[str, Any]) -> TransferConfig:
    """The validated :class:`TransferConfig` for the transfer command's config options."""
    options = dict(options)
    options["optimizer"] = tuple(options["optimizer"])
    for key in ("content_layers", "style_layers"):
        options[key] = tuple(part.strip() for part in options[key].split(",") if part.strip())
    options["scales"] = _scales(options["scales"])
    config = TransferConfig(**options)
    config.validate()
    return config


@cli.command()
@click.argument("content", required=False, type=click.Path(path_type=Path))
@click.option("--style", "styles", multiple=True, metavar="PATH[:WEIGHT][@SCALE]",
              help="Style image, repeatable; weights are normalised to sum 1 (omitted: equal shares); "
                   "@SCALE sets this style's scale.")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output image (format from the extension).")
@click.option("--config", type=click.Path(path_type=Path, dir_okay=False), is_eager=True, expose_value=False,
              callback=_read_config, help="TOML file of options (keys as the long flags); flags override it.")
@click.option("--from-image", type=click.Path(path_type=Path, dir_okay=False), is_eager=True, expose_value=False,
              callback=_read_image_config, help="Re-run what made an earlier styleforge PNG; flags override it.")
@click.option("--content-weight", type=float, default=_T.content_weight, show_default=True, help="Weight of the content term.")
@click.option("--style-weight", type=float, default=_T.style_weight,
              help="Total weight of the style terms [default: by --style-loss: "
                   + ", ".join(f"{k} {v:g}" for k, v in STYLE_WEIGHTS.items()) + "].")
@click.option("--tv-weight", type=float, default=_T.tv_weight, show_default=True, help="Weight of the total-variation term.")
@click.option("--iterations", type=int, default=_T.iterations, show_default=True,
              help="Iterations of a stage without :STEPS (L-BFGS: function evaluations).")
@click.option("--size", type=int, default=_T.size, show_default=True, help="Output long side in pixels.")
@click.option("--optimizer", "optimizer", multiple=True, default=_T.optimizer, show_default=True, metavar="NAME[:STEPS][@LR]",
              help="lbfgs adam adamw sgd momentum nesterov rmsprop adagrad adadelta; repeat for a chain (adam:200 then lbfgs:300).")
@click.option("--lr", type=float, default=None, help="Learning rate for stages without @LR [default: per optimiser].")
@click.option("--stop-delta", type=float, default=None,
              help="Stop when the total's relative change stays below this for --patience iterations.")
@click.option("--patience", type=int, default=_T.patience, show_default=True, help="Iterations for --stop-delta.")
@click.option("--divergence-factor", type=float, default=_T.divergence_factor, show_default=True,
              help="A total above this x the best is divergence: stop and keep the best (inf: NaN/inf only).")
@click.option("--seed", type=int, default=_T.seed, show_default=True, help="Seed of random weights and noise.")
@click.option("--device", default=_T.device, show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--weights", default=_T.weights, show_default=True, metavar="auto|imagenet|hed|random|PATH",
              help="VGG weights: auto (ImageNet if cached or downloadable, else HED's VGG-16, else random), "
                   "torchvision's ImageNet file, HED's pretrained VGG-16 (from the package registry), seeded random, or a file.")
@click.option("--network", default=_T.network, show_default=True, metavar="|".join(NETWORKS),
              help="vgg19 or vgg16; auto: the weights' network (vgg16 for hed, else vgg19).")
@click.option("--content-layers", default=",".join(_T.content_layers), show_default=True, metavar="LAYER[:W],...",
              help="Content layers with optional weights.")
@click.option("--style-layers", default=",".join(_T.style_layers), show_default=True, metavar="LAYER[:W],...",
              help="Style layers with optional weights.")
@click.option("--style-layer-weight-exp", type=float, default=_T.style_layer_weight_exp, show_default=True,
              help="Layer n+1 weighs EXP x layer n (<1: fine texture, >1: coarse).")
@click.option("--style-loss", default=_T.style_loss, show_default=True, metavar="|".join(STYLE_LOSSES),
              help="gram: Gram matrices; w2: Wasserstein-2 between Gaussians of the features; "
                   "sw: sliced Wasserstein (sorted random projections).")
@click.option("--style-mask", "style_masks", multiple=True, metavar="NAME=MASK",
              help="Style NAME (a for a.jpg, or its position) only where the grey MASK is white in the output; "
                   "repeatable; styles without one share the rest.")
@click.option("--style-image-mask", "style_image_masks", multiple=True, metavar="NAME=MASK",
              help="Take style NAME's statistics only from where MASK is white in its own image; repeatable.")
@click.option("--pooling", default=_T.pooling, show_default=True, metavar="max|avg", help="Pooling of the frozen VGG.")
@click.option("--init", default=_T.init, show_default=True, metavar="content|noise|style|PATH", help="Starting image.")
@click.option("--init-noise-blend", type=float, default=_T.init_noise_blend, show_default=True,
              help="Share of seeded noise mixed into the starting image (0..1).")
@click.option("--style-scale", type=float, default=_T.style_scale, show_default=True,
              help="Style images are sized to --size x this before their statistics are taken.")
@click.option("--color-transfer", default=_T.color_transfer, show_default=True, metavar="|".join(COLOR_TRANSFERS),
              help="histogram: recolour the style images to the content's colour histogram first.")
@click.option("--preserve-colors", is_flag=True, default=_T.preserve_colors, help="Keep the content's colours (luminance-only transfer).")
@click.option("--keep-last", is_flag=True, default=_T.keep_last, help="Write the last iterate, not the lowest-loss one.")
@click.option("--scales", default="auto", show_default=True, metavar="N|auto",
              help="Coarse-to-fine: optimise at N sizes growing to --size, each from the last one upsampled, "
                   "sharing the iterations; auto: sqrt(2) steps from 256 px (one size up to 256).")
@click.option("--min-size", type=int, default=None, metavar="PX", help="First scale's long side [default: sqrt(2) steps].")
@click.option("--memory-check/--no-memory-check", default=_T.memory_check, show_default=True,
              help="Refuse a run whose estimated memory exceeds what is available (and suggest a --size).")
@click.option("--precision", default=_T.precision, show_default=True, metavar="|".join(PRECISIONS),
              help="Convolutions in bf16 (autocast; losses stay fp32) or fp32; auto: bf16 on CUDA, fp32 elsewhere.")
@click.option("--compile/--no-compile", default=_T.compile, show_default=True,
              help="torch.compile the network (pays a compilation first; for GPUs).")
@click.option("--attrs-model", default=_T.attrs_model, metavar="MODEL_DIR",
              help="A train-attrs run folder whose network steers the transfer towards the --attr targets.")
@click.option("--attr", "attrs", multiple=True, metavar="NAME=VALUE[:WEIGHT]",
              help="Attribute target, repeatable: one attr.NAME term each (contrast=9, pri_color=blue, harmony=triadic:2).")
@click.option("--attr-weight", type=float, default=_T.attr_weight, show_default=True,
              help="Weight of an --attr without :WEIGHT.")
@click.option("--score-with", default=_T.score_with, metavar="MODEL_DIR",
              help="Score the result with this train-attrs network: printed, and stored in the PNG and the history.")
@click.option("--checkpoint-every", type=int, default=None, metavar="N", help="Write OUT_0100.png ... every N iterations.")
@click.option("--progress-gif", type=click.Path(path_type=Path), default=None, help="Animated GIF of the optimisation.")
@click.option("--gif-every", type=int, default=None, metavar="N", help="GIF frame interval [default: ~50 frames].")
@click.option("--history", type=click.Path(path_type=Path), default=None, help="Every term at every iteration, .csv or .json.")
@click.option("--plot", type=click.Path(path_type=Path), default=None, help="Loss curves per term (log scale), .png.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def transfer(
    content: Path | None,
    styles: Sequence[str],
    output: Path,
    checkpoint_every: int | None,
    progress_gif: Path | None,
    gif_every: int | None,
    history: Path | None,
    plot: Path | None,
    quiet: bool,
    **options: Any,
) -> None:
    """Restyle CONTENT with one or more --style images and write -o OUTPUT.

    \b
    Example:
      styleforge transfer photo.jpg --style starry.jpg:0.75 --style dora.jpg:0.25 -o out/blend.png
    """
    from .report import CheckpointWriter, GifRecorder, check_history_path, plot_curves, write_history
    from .transfer.run import transfer as run_transfer

    if content is None:
        raise click.UsageError("Missing argument 'CONTENT' (or give --from-image / a --config with 'content').")
    if not styles:
        raise click.UsageError("Missing option '--style' (or give --from-image / a --config with 'style').")
    check_output_path(output)
    if history is not None:
        check_history_path(history)
    if plot is not None:
        check_output_path(plot, param="--plot")
    config = _transfer_config(options)
    callbacks: list[Any] = [ProgressDisplay(quiet=quiet)]
    if checkpoint_every is not None:
        callbacks.append(CheckpointWriter(output, checkpoint_every, {"command": "transfer", "config": config.to_dict()}))
    gif = None
    if progress_gif is not None:
        planned = sum(parse_optimizer(s).steps or config.iterations for s in config.optimizer)
        gif = GifRecorder(progress_gif, gif_every or max(1, planned // 50))
        callbacks.append(gif)
    try:
        result = run_transfer(content, list(styles), config, callbacks=callbacks)
    finally:
        callbacks[0].close()
    if not result.improved and not config.keep_last and result.stop_reason != "interrupted":
        why = f" ({result.stop_detail})" if result.stop_detail and result.stop_reason != "completed" else ""
        raise NoProgressError(f"the transfer made no progress: no iteration lowered the loss below the starting "
                              f"image's{why}, so {output} was not written; try another --optimizer or --lr")
    path = result.save(output)
    written = [str(path)]
    rows = [entry.as_row() for entry in result.history]
    if history is not None:
        written.append(str(write_history(history, result.history_rows())))
    if plot is not None and rows:
        series = {name: [r[name] for r in rows] for name in ["total", *result.history[0].summary.weighted]}
        stages = [e.iteration for a, e in zip(result.history, result.history[1:]) if e.stage != a.stage]
        written.append(str(plot_curves(plot, [r["iteration"] for r in rows], series, markers=stages, title="styleforge transfer")))
    if gif is not None and (gif_path := gif.write()) is not None:
        written.append(str(gif_path))
    if result.summary is not None:
        click.echo(f"done: {result.stop_reason} after {len(result.history)} iterations; "
                   f"image from iteration {result.metadata['iteration']}, loss {result.summary.format()}", err=True)
    if result.scores is not None:
        from .attributes.score_format import format_score_line

        click.echo(f"scores ({result.config.score_with}): {format_score_line(result.scores)}", err=True)
    click.echo("\n".join(written))
    if result.stop_reason == "interrupted":
        click.echo(f"interrupted: the best image so far is in {path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


# --------------------------------------------------------------------------------------------------
# make-dataset and train-attrs (issue 4)

from .config import DatasetConfig, TrainConfig  # noqa: E402

_A = TrainConfig()
_D = DatasetConfig()


class TrainDisplay(_Display):
    """Shows training events: one Keras-style line per epoch, and on a terminal a tqdm bar within
    each epoch (and while images are read and features computed)."""

    task = ""

    def show(self, event: Event) -> None:
        from .engine import BatchProgress, EpochEnded, EpochStarted, FitEnded, TaskProgress
        from .attributes.metrics import format_epoch_line

        if isinstance(event, TaskProgress):
            if self.interactive:
                if self.bar is None or self.task != event.task:
                    self._bar(event.total, event.task)
                    self.task = event.task
                self.bar.n = event.done
                self.bar.refresh()
                if event.done >= event.total:
                    self.close()
            elif event.done >= event.total:
                self._echo(f"{event.task}: {event.done}/{event.total}")
        elif isinstance(event, EpochStarted) and self.interactive:
            self._bar(event.batches, f"epoch {event.epoch}/{event.epochs}")
            self.task = "epoch"
        elif isinstance(event, BatchProgress) and self.bar is not None:
            self.bar.n = event.batch
            self.bar.set_postfix_str(f"loss {event.summary.total:.4g}", refresh=True)
        elif isinstance(event, EpochEnded):
            self.close()
            self._echo(format_epoch_line(event))
        elif isinstance(event, FitEnded) and event.reason != "completed":
            self._echo(f"{event.reason}: {event.detail}")


@cli.command("make-dataset")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--count", type=int, default=_D.count, show_default=True, help="Number of images.")
@click.option("--seed", type=int, default=_D.seed, show_default=True, help="Random seed; the same seed gives the same files.")
@click.option("--size", type=int, default=_D.size, show_default=True, help="Side of each square image in px.")
def make_dataset_command(out: Path, count: int, seed: int, size: int) -> None:
    """Write a synthetic labelled data set to OUT: images/ and labels.csv.

    Compositions of shapes, fills and palettes whose 8 ACAN attributes are known by construction
    (see docs/attributes.md).

    \b
    Example:
      styleforge make-dataset data/synth --count 400 --seed 0 --size 128
    """
    from . import make_dataset

    path = make_dataset(out, count=count, seed=seed, size=size)
    click.echo(str(path))


def _explicit(ctx: click.Context, names: Sequence[str]) -> list[str]:
    """The options given on the command line (not defaults)."""
    from click.core import ParameterSource

    return [n for n in names if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]


@cli.command("train-attrs")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Folder with the images and the labels CSV (both layouts: see docs/attributes.md).")
@click.option("--labels", default=_A.labels, help="The labels CSV [default: DATA/labels.csv, else DATA's only .csv].")
@click.option("--schema", default=_A.schema, help="TOML/JSON file of attributes [default: the 8 ACAN attributes].")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Run folder (model, history, curves, metrics).")
@click.option("--backbone", type=click.Choice(list(BACKBONES)), default=_A.backbone, show_default=True)
@click.option("--weights", default=_A.weights, show_default=True, metavar="imagenet|hed|random|auto|PATH",
              help="Backbone weights, as in transfer (hed: with --backbone vgg16; auto may switch vgg19 to vgg16+hed).")
@click.option("--size", type=int, default=_A.size, show_default=True, help="Images are resized to SIZE x SIZE px.")
@click.option("--finetune", is_flag=True, default=_A.finetune, help="Train the backbone too (end to end, with augmentation).")
@click.option("--backbone-lr-scale", type=float, default=_A.backbone_lr_scale, show_default=True,
              help="--finetune: the backbone's learning rate is --lr times this.")
@click.option("--augment", type=click.Choice(["auto", "none", "standard"]), default=_A.augment, show_default=True,
              help="standard: pad+crop, small rotation, flip (never colour); auto: standard with --finetune.")
@click.option("--numeric-loss", type=click.Choice(["mse", "smooth_l1", "l1", "huber"]), default=_A.numeric_loss, show_default=True)
@click.option("--huber-delta", type=float, default=_A.huber_delta, show_default=True, help="huber's delta, smooth_l1's beta.")
@click.option("--label-smoothing", type=float, default=_A.label_smoothing, show_default=True, help="Of the categorical heads.")
@click.option("--loss-weight", "loss_weight", multiple=True, metavar="KEY=W",
              help="Weight of numeric, categorical or one attribute's term; repeatable (seed 000: categorical=0.7).")
@click.option("--balance", type=click.Choice(["none", "initial", "uncertainty"]), default=_A.balance, show_default=True,
              help="initial: divide each term by its starting value; uncertainty: learned log-variances (Kendall 2018).")
@click.option("--optimizer", default=_A.optimizer, show_default=True, metavar="NAME[@LR]",
              help="adam adamw sgd momentum nesterov rmsprop adagrad adadelta lbfgs.")
@click.option("--lr", type=float, default=_A.lr, help="Learning rate [default: per optimiser; adam 0.01, see docs/attributes.md].")
@click.option("--weight-decay", type=float, default=_A.weight_decay, show_default=True)
@click.option("--lr-schedule", type=click.Choice(["none", "cosine", "plateau"]), default=_A.lr_schedule, show_default=True)
@click.option("--plateau-factor", type=float, default=_A.plateau_factor, show_default=True)
@click.option("--plateau-patience", type=int, default=_A.plateau_patience, show_default=True)
@click.option("--batch-size", type=int, default=_A.batch_size, show_default=True)
@click.option("--epochs", type=int, default=_A.epochs, show_default=True)
@click.option("--seed", type=int, default=_A.seed, show_default=True, help="Split, heads' init, shuffling, augmentation.")
@click.option("--val-split", type=float, default=_A.val_split, show_default=True,
              help="Share held out for validation (unless the CSV has split/in_train).")
@click.option("--test-split", type=float, default=_A.test_split, show_default=True, help="Share held out for a final test.")
@click.option("--patience", type=int, default=_A.patience, show_default=True,
              help="Stop after this many epochs without a better validation total (0: never).")
@click.option("--min-delta", type=float, default=_A.min_delta, show_default=True, help="Relative improvement that counts.")
@click.option("--divergence-factor", type=float, default=_A.divergence_factor, show_default=True,
              help="A validation total above this x the best stops the run.")
@click.option("--skip-bad", is_flag=True, default=_A.skip_bad, help="Skip missing or unreadable images (and count them).")
@click.option("--feature-cache/--no-feature-cache", default=_A.feature_cache, show_default=True,
              help="Keep the frozen backbone's features in RUN/features.safetensors.")
@click.option("--device", default=_A.device, show_default=True,
              help="auto, cpu, cuda, cuda:N or mps (under torchrun: auto, cpu or cuda, one GPU per process).")
@click.option("--workers", type=int, default=_A.workers,
              help="Processes that decode (and with --finetune augment) images; 0: none "
                   "[default: min(4, CPU cores per process - 1)]. Results do not depend on it.")
@click.option("--resume", is_flag=True, help="Continue the run in -o exactly where it stopped.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def train_attrs_command(ctx: click.Context, data: Path | None, output: Path, loss_weight: Sequence[str], resume: bool,
                        quiet: bool, **options: Any) -> None:
    """Train the art-composition attribute network on --data and write the run to -o.

    \b
    Examples:
      styleforge make-dataset data/synth --count 400 --size 128
      styleforge train-attrs --data data/synth -o runs/base --backbone resnet18 --size 128
      styleforge train-attrs --data data/synth -o runs/cat07 --loss-weight categorical=0.7
      styleforge train-attrs -o runs/cat07 --resume --epochs 400
      torchrun --nproc_per_node 2 -m styleforge train-attrs --data data/synth -o runs/ddp --device cpu
    """
    from . import train_attrs
    from .attributes.losses import parse_loss_weights
    from .engine.distributed import process_rank

    if data is None and not resume:
        raise click.UsageError("Missing option '--data' (a folder with images and a labels CSV).")
    options["loss_weights"] = parse_loss_weights(loss_weight)
    rank = process_rank()  # under torchrun only rank 0 prints (the core gives the others no events)
    display = TrainDisplay(quiet=quiet or rank != 0)
    try:
        if resume:
            given = _explicit(ctx, [*options, "loss_weight"])
            overrides = {k: options[k] for k in given if k in options}
            if "loss_weight" in given:
                overrides["loss_weights"] = options["loss_weights"]
            result = train_attrs(data, output, resume=True, callbacks=[display], **overrides)
        else:
            config = TrainConfig(**options)
            result = train_attrs(data, output, config, callbacks=[display])
    except KeyboardInterrupt:  # before the first epoch (reading images, computing features)
        display.close()
        if rank == 0:
            click.echo("interrupted before training started; nothing was trained", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except StyleforgeError as exc:
        if rank == 0:
            raise
        # Another rank: a usage error is the same on every rank (rank 0 says it); anything else may
        # be this rank's alone (a file missing on its node), so it says which rank it is.
        if exc.exit_code != 2:
            click.echo(f"error (rank {rank}): {exc}", err=True)
        ctx.exit(exc.exit_code)
    finally:
        display.close()
    if rank != 0:
        if result.stop_reason == "interrupted":
            sys.exit(EXIT_INTERRUPTED)
        return
    best = result.metrics.get("val") or result.metrics.get("train") or {}
    if result.best_epoch:
        click.echo(f"done: {result.stop_reason} after {len(result.history)} epochs; best epoch {result.best_epoch}"
                   + (f", loss {best['loss']:.4g}" if "loss" in best else ""), err=True)
    if "test" in result.metrics:
        test = result.metrics["test"]
        shown = " ".join(f"{k} {v:.3g}" for k, v in test.items() if k.startswith(("mae.", "acc.")))
        click.echo(f"test: loss {test['loss']:.4g} · {shown}", err=True)
    click.echo("\n".join(str(p) for p in result.files))
    if result.stop_reason == "interrupted":
        hint = f"continue with styleforge train-attrs -o {output} --resume" if result.history else "no epoch finished"
        click.echo(f"interrupted: {hint}", err=True)
        sys.exit(EXIT_INTERRUPTED)


# --------------------------------------------------------------------------------------------------
# sweep (issue 7)


@cli.group()
def sweep() -> None:
    """Run every combination of a grid of options and compare the results side by side."""


_SWEEP_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}


def _grid_options(command: click.Command, exclude: set[str]) -> dict[str, str]:
    """The command's long option names (without dashes) → ``single``, ``multiple`` or ``keyed``."""
    out = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.expose_value:
            names = [o[2:] for o in param.opts if o.startswith("--")]
            if names and names[0] not in exclude:
                keyed = param.multiple and "=" in (param.metavar or "")
                out[names[0]] = "keyed" if keyed else "multiple" if param.multiple else "single"
    return out


def _run_sweep(
    ctx: click.Context,
    command: click.Command,
    grid: Sequence[str],
    out_dir: Path,
    jobs: int,
    backend: str,
    *,
    outputs: Any,
    collect: Any,
    check: Any,
) -> list[Any]:
    """Plans, validates and runs a sweep of ``command``; returns the cell results."""
    from .sweep import parse_grid, plan_cells, run_cells, write_results

    options = _grid_options(command, {"output", "config", "from-image", "quiet", "history"})
    axes = parse_grid(grid, options)
    base = list(ctx.args)
    cells = plan_cells(axes, base, options, out_dir, outputs)
    for cell in cells:  # every cell's arguments are checked before any cell runs
        try:
            sub = command.make_context(command.name or "", list(cell.args), parent=ctx.parent)
        except click.ClickException as exc:
            settings = " ".join(f"{k}={v}" for k, v in cell.settings.items())
            raise InvalidUsage(f"--grid cell {settings}: {exc.format_message()}") from None
        check(sub.params)
    done = [0]

    def on_result(result: Any) -> None:
        done[0] += 1
        word = {"ok": "done", "skipped": "skipped (finished earlier)", "failed": f"FAILED: {result.error}"}[result.status]
        click.echo(f"cell {done[0]}/{len(cells)} {result.cell.name}: {word} ({result.seconds:.1f}s)", err=True)

    results = run_cells(command.name or "", cells, out_dir, collect, jobs=jobs, backend=backend, on_result=on_result)
    write_results(out_dir / "results.csv", axes, results)
    return [axes, results]


def _collect_transfer(folder: Path) -> dict[str, Any]:
    """A transfer cell's final loss terms, from its output's metadata."""
    from .images import read_metadata

    meta = read_metadata(folder / "out.png") or {}
    losses = meta.get("losses") or {}
    return {"total": losses.get("total"), **losses, "iteration": meta.get("iteration"), "stop_reason": meta.get("stop_reason")}


def _transfer_outputs(folder: Path) -> list[str]:
    return ["-o", str(folder / "out.png"), "--history", str(folder / "history.csv")]


def _sweep_command(name: str, metavar: str, grid_help: str, outputs: str) -> Any:
    """Declares a ``sweep NAME`` command with the options every sweep has."""

    def decorate(function: Any) -> Any:
        for option in reversed([
            click.option("--grid", multiple=True, required=True, metavar=metavar, help=grid_help),
            click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
                         help=f"Sweep folder: {outputs}."),
            click.option("--jobs", type=int, default=1, show_default=True, help="Cells run at once (local processes)."),
            click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                         help="ray: cells as Ray tasks (RAY_ADDRESS or a local instance); needs styleforge[ray]."),
        ]):
            function = option(function)
        return sweep.command(name, context_settings=_SWEEP_SETTINGS)(click.pass_context(function))

    return decorate


@_sweep_command("transfer", "OPTION=V1,V2,...",
                "An axis: any transfer option and its values (';' separates values that contain commas; "
                "'+' joins repeats, e.g. style=a.jpg:0.75+b.jpg:0.25). Repeatable.",
                "cells/, results.csv, sheet.png, curves.png")
def sweep_transfer(ctx: click.Context, grid: Sequence[str], out_dir: Path, jobs: int, backend: str) -> None:
    """Run `styleforge transfer` for every combination of --grid values.

    Every argument that is not a sweep option is passed to each cell's transfer.

    \b
    Example:
      styleforge sweep transfer photo.jpg --style starry.jpg --size 256 \\
          --grid content-weight=1,5,20 --grid pooling=max,avg -o out/sweep
    """
    import csv as _csv

    from .files import write_atomic
    from .images import load_image
    from .report import contact_sheet, plot_curves

    def check(params: dict[str, Any]) -> None:
        keep = {k: v for k, v in params.items() if k in {f.name for f in dataclasses.fields(TransferConfig)}}
        _transfer_config(keep)

    axes, results = _run_sweep(ctx, transfer, grid, out_dir, jobs, backend,
                               outputs=_transfer_outputs, collect=_collect_transfer, check=check)
    last = axes[-1]
    rest = axes[:-1]
    n_cols = len(last.values)
    cells, captions, row_labels = [], [], []
    for start in range(0, len(results), n_cols):
        row, caps = [], []
        for r in results[start : start + n_cols]:
            image = None
            if r.status != "failed":
                image = load_image(out_dir / "cells" / r.cell.name / "out.png").rgb
            row.append(image)
            caps.append(f"loss {r.metrics['total']:.4g}" if image is not None and "total" in r.metrics else "failed")
        cells.append(row)
        captions.append(caps)
        first = results[start].cell.settings
        row_labels.append(", ".join(f"{a.name}={first[a.name]}" for a in rest))
    title = "sweep: " + " x ".join(f"{a.name}" for a in axes)
    sheet = contact_sheet(cells, row_labels=row_labels if rest else [], col_labels=[f"{last.name}={v}" for v in last.values],
                          captions=captions, title=title)
    write_atomic(out_dir / "sheet.png", lambda h: sheet.save(h, format="PNG"))
    curves, xs = {}, []
    for r in results:
        history = out_dir / "cells" / r.cell.name / "history.csv"
        if r.status != "failed" and history.is_file():
            rows = list(_csv.DictReader(history.open()))
            xs = xs if len(xs) >= len(rows) else [int(row["iteration"]) for row in rows]
            curves[", ".join(f"{k}={v}" for k, v in r.cell.settings.items())] = [float(row["total"]) for row in rows]
    if curves:
        length = max(len(v) for v in curves.values())
        padded = {k: v + [float("nan")] * (length - len(v)) for k, v in curves.items()}
        plot_curves(out_dir / "curves.png", list(range(1, length + 1)), padded, title="total loss per cell")
    failed = sum(r.status == "failed" for r in results)
    click.echo(f"{len(results)} cells, {failed} failed: {out_dir / 'results.csv'}, {out_dir / 'sheet.png'}, {out_dir / 'curves.png'}", err=True)
    click.echo(str(out_dir))


# --------------------------------------------------------------------------------------------------
# score (issue 5)

from .config import ScoreConfig  # noqa: E402

_S = ScoreConfig()


@cli.command("score")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default=None,
              help=f"Output format [default: from -o's extension (.json, .csv), else {_S.format}].")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the scores to this file (atomically) instead of stdout.")
@click.option("--batch-size", type=int, default=_S.batch_size, show_default=True, help="Images per forward pass.")
@click.option("--device", default=_S.device, show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
def score_command(model_dir: Path, images: Sequence[Path], fmt: str | None, output: Path | None, batch_size: int,
                  device: str) -> None:
    """Rate IMAGES (files, or folders walked for image files) with the attribute network in MODEL_DIR.

    Numeric attributes on their label scale; for each categorical one the predicted class, its
    probability and the top 3. An unreadable image is reported and skipped; the exit code is then 1.

    \b
    Examples:
      styleforge score runs/base out/guided.png
      styleforge score runs/base photos/ --format csv -o scores.csv
    """
    from .attributes.score import open_model, score_images
    from .attributes.score_format import format_scores
    from .device import resolve_device
    from .files import write_atomic

    if fmt is None:
        fmt = {".json": "json", ".csv": "csv"}.get(output.suffix.lower(), _S.format) if output is not None else _S.format
    if output is not None and output.is_dir():
        raise click.BadParameter(f"{str(output)!r} is a folder; expected a file path", param_hint="'-o'")
    display = TrainDisplay()
    model = open_model(model_dir, device=resolve_device(device), callbacks=[display])
    try:
        scores = score_images(model, images, batch_size=batch_size, callbacks=[display])
    finally:
        display.close()
    text = format_scores(scores, fmt, model.net.schema, model=model_dir)
    if output is not None:
        write_atomic(output, text.encode("utf-8"))
        click.echo(str(output))
    else:
        click.echo(text, nl=False)
    failed = [s for s in scores if not s.ok]
    for s in failed:
        click.echo(f"failed: {s.path}: {s.error}", err=True)
    click.echo(f"scored {len(scores) - len(failed)} image(s)" + (f", {len(failed)} failed" if failed else ""), err=True)
    if failed:
        sys.exit(1)


def _collect_training(folder: Path) -> dict[str, Any]:
    """A train-attrs cell's best validation (else training) metrics, from its metrics.json."""
    import json

    data = json.loads((folder / "run" / "metrics.json").read_text())
    split = "val" if data.get("val") else "train"
    best = {f"{split}.{k}": v for k, v in (data.get(split) or {}).items() if not k.startswith("loss.")}
    return {"best_epoch": data.get("best_epoch"), "epochs_run": data.get("epochs_run"), "stop_reason": data.get("stop_reason"), **best}


def _training_outputs(folder: Path) -> list[str]:
    return ["-o", str(folder / "run")]


@_sweep_command("train-attrs", "OPTION[.KEY]=V1,V2,...",
                "An axis: any train-attrs option and its values; KEY=VALUE options per key "
                "(loss-weight.categorical=1,0.85,0.7,0.5). Repeatable.",
                "cells/, results.csv, curves.png")
def sweep_train_attrs(ctx: click.Context, grid: Sequence[str], out_dir: Path, jobs: int, backend: str) -> None:
    """Run `styleforge train-attrs` for every combination of --grid values.

    Writes results.csv (each setting's best validation metrics) and curves.png (one panel per
    attribute, one validation-loss curve per setting: seed 000's charts).

    \b
    Example:
      styleforge sweep train-attrs --data data/synth --epochs 200 \\
          --grid loss-weight.categorical=1,0.85,0.7,0.5 -o out/catweights
    """
    import csv as _csv

    from .attributes.losses import parse_loss_weights
    from .report import plot_panels

    def check(params: dict[str, Any]) -> None:
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        options = {k: v for k, v in params.items() if k in fields}
        options["loss_weights"] = parse_loss_weights(params.get("loss_weight") or ())
        TrainConfig(**options).validate()

    axes, results = _run_sweep(ctx, train_attrs_command, grid, out_dir, jobs, backend,
                               outputs=_training_outputs, collect=_collect_training, check=check)
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for r in results:
        history = out_dir / "cells" / r.cell.name / "run" / "history.csv"
        if r.status == "failed" or not history.is_file():
            continue
        rows = list(_csv.DictReader(history.open()))
        label = ", ".join(f"{k}={v}" for k, v in r.cell.settings.items())
        for column in rows[0] if rows else []:
            if column.startswith("val_head_loss."):
                epochs = [float(row["epoch"]) for row in rows]
                values = [float(row[column]) if row[column] not in ("", "nan") else None for row in rows]
                panels.setdefault(column.split(".", 1)[1], {})[label] = (epochs, values)
    if panels:
        plot_panels(out_dir / "curves.png", panels, xlabel="epoch", ylabel="validation loss")
    failed = sum(r.status == "failed" for r in results)
    click.echo(f"{len(results)} cells, {failed} failed: {out_dir / 'results.csv'}, {out_dir / 'curves.png'}", err=True)
    click.echo(str(out_dir))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="styleforge")
