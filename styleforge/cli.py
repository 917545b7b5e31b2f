"""The ``styleforge`` command line: a thin click layer over the Python API.

The CLI owns what the core never does: progress bars, files and exit codes. A
:class:`~styleforge.errors.StyleforgeError` becomes one ``error: …`` line and its exit code (2 for
a usage error, 1 for a runtime failure); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import TransferConfig
from .engine import Event, Notice, Progress, StageEnded, StageStarted, parse_optimizer
from .errors import StyleforgeError
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


class ProgressDisplay:
    """Shows engine events: a tqdm bar on a terminal, a line every ~10% otherwise.

    Each line shows the iteration, the total and every weighted term, formatted so that the printed
    parts add up exactly to the printed total.
    """

    def __init__(self, *, quiet: bool = False, stream: Any = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar: Any = None

    def _echo(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            click.echo(text, err=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            self._echo(f"note: {event.message}")
        if self.quiet:
            return
        if isinstance(event, StageStarted):
            self._echo(f"stage {event.index + 1}: {event.name} for {event.steps} iterations (lr {event.lr:g})")
            if self.interactive and self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=event.total_iterations, file=self.stream, dynamic_ncols=True, leave=False)
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

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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
    import tomllib

    try:
        data = tomllib.loads(Path(value).read_text())
    except FileNotFoundError:
        raise click.BadParameter(f"{str(value)!r} does not exist", ctx, param) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
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
    data = {**meta["config"], "content": meta["content"], "styles": meta["styles"]}
    ctx.default_map = {**(ctx.default_map or {}), **_as_default_map(ctx, data, f"--from-image {value}")}
    return value


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
@click.option("--style-weight", type=float, default=_T.style_weight, show_default=True, help="Total weight of the style terms.")
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
@click.option("--weights", default=_T.weights, show_default=True, metavar="imagenet|random|auto|PATH",
              help="VGG weights: torchvision's ImageNet file (cached), seeded random, imagenet-else-random, or a local file.")
@click.option("--network", default=_T.network, show_default=True, help="vgg19 or vgg16.")
@click.option("--content-layers", default=",".join(_T.content_layers), show_default=True, metavar="LAYER[:W],...",
              help="Content layers with optional weights.")
@click.option("--style-layers", default=",".join(_T.style_layers), show_default=True, metavar="LAYER[:W],...",
              help="Style layers with optional weights.")
@click.option("--style-layer-weight-exp", type=float, default=_T.style_layer_weight_exp, show_default=True,
              help="Layer n+1 weighs EXP x layer n (<1: fine texture, >1: coarse).")
@click.option("--pooling", type=click.Choice(["max", "avg"]), default=_T.pooling, show_default=True, help="Pooling of the frozen VGG.")
@click.option("--init", default=_T.init, show_default=True, metavar="content|noise|style|PATH", help="Starting image.")
@click.option("--init-noise-blend", type=float, default=_T.init_noise_blend, show_default=True,
              help="Share of seeded noise mixed into the starting image (0..1).")
@click.option("--style-scale", type=float, default=_T.style_scale, show_default=True,
              help="Style images are sized to --size x this before their statistics are taken.")
@click.option("--color-transfer", type=click.Choice(["none", "histogram"]), default=_T.color_transfer, show_default=True,
              help="histogram: recolour the style images to the content's colour histogram first.")
@click.option("--preserve-colors", is_flag=True, default=_T.preserve_colors, help="Keep the content's colours (luminance-only transfer).")
@click.option("--keep-last", is_flag=True, default=_T.keep_last, help="Write the last iterate, not the lowest-loss one.")
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
    options["optimizer"] = tuple(options["optimizer"])
    for key in ("content_layers", "style_layers"):
        options[key] = tuple(part.strip() for part in options[key].split(",") if part.strip())
    config = TransferConfig(**options)
    config.validate()
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
    path = result.save(output)
    written = [str(path)]
    rows = [entry.as_row() for entry in result.history]
    if history is not None:
        written.append(str(write_history(history, rows)))
    if plot is not None and rows:
        series = {name: [r[name] for r in rows] for name in ["total", *result.history[0].summary.weighted]}
        stages = [e.iteration for a, e in zip(result.history, result.history[1:]) if e.stage != a.stage]
        written.append(str(plot_curves(plot, [r["iteration"] for r in rows], series, markers=stages, title="styleforge transfer")))
    if gif is not None and (gif_path := gif.write()) is not None:
        written.append(str(gif_path))
    if result.summary is not None:
        click.echo(f"done: {result.stop_reason} after {len(result.history)} iterations; "
                   f"image from iteration {result.metadata['iteration']}, loss {result.summary.format()}", err=True)
    click.echo("\n".join(written))
    if result.stop_reason == "interrupted":
        click.echo(f"interrupted: the best image so far is in {path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="styleforge")
