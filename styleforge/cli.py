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
from .engine import Event, Notice, Progress, StageEnded, StageStarted
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


@cli.command()
@click.argument("content", type=click.Path(path_type=Path, dir_okay=True, exists=False))
@click.option("--style", "styles", multiple=True, required=True, metavar="PATH[:WEIGHT]",
              help="Style image, repeatable; weights are normalised to sum 1 (omitted: equal shares).")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Output image (format from the extension).")
@click.option("--content-weight", type=float, default=_T.content_weight, show_default=True, help="Weight of the content term.")
@click.option("--style-weight", type=float, default=_T.style_weight, show_default=True, help="Total weight of the style terms.")
@click.option("--tv-weight", type=float, default=_T.tv_weight, show_default=True, help="Weight of the total-variation term.")
@click.option("--iterations", type=int, default=_T.iterations, show_default=True, help="Iterations (L-BFGS: function evaluations).")
@click.option("--size", type=int, default=_T.size, show_default=True, help="Output long side in pixels.")
@click.option("--optimizer", "optimizer", multiple=True, default=_T.optimizer, show_default=True, metavar="NAME[:STEPS][@LR]",
              help="Optimiser, repeatable to form a chain (adam:200 then lbfgs:300).")
@click.option("--lr", type=float, default=None, help="Learning rate for stages that give none [default: per optimiser].")
@click.option("--seed", type=int, default=_T.seed, show_default=True, help="Seed of random weights and noise.")
@click.option("--device", default=_T.device, show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--weights", default=_T.weights, show_default=True, metavar="imagenet|random|auto|PATH",
              help="VGG weights: torchvision's ImageNet file (cached), seeded random, imagenet-else-random, or a local file.")
@click.option("--network", default=_T.network, show_default=True, help="vgg19 or vgg16.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def transfer(content: Path, styles: Sequence[str], output: Path, quiet: bool, **options: Any) -> None:
    """Restyle CONTENT with one or more --style images and write -o OUTPUT."""
    from .transfer.run import transfer as run_transfer

    check_output_path(output)
    options["optimizer"] = tuple(options["optimizer"])
    display = ProgressDisplay(quiet=quiet)
    try:
        result = run_transfer(content, list(styles), TransferConfig(**options), callbacks=[display])
    finally:
        display.close()
    path = result.save(output)
    if result.summary is not None:
        click.echo(f"done: {result.stop_reason} at iteration {len(result.history)}; best loss {result.summary.format()} "
                   f"(iteration {result.metadata['iteration']})", err=True)
    click.echo(str(path))
    if result.stop_reason == "interrupted":
        click.echo(f"interrupted: the best image so far is in {path}", err=True)
        sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="styleforge")
