"""``styleforge train-stylizer``: train a feed-forward network for one style or a blend.

Every option is declared once, in :class:`~styleforge.feedforward.config.StylizerConfig` (its term
options as the transfer declares them, with the stylizer's defaults); the click options come from
those declarations. ``transfer --model`` and ``video --model`` use the result (:mod:`.model`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..feedforward.config import StylizerConfig
from ..parsing import parse_style
from .base import explicit, finish_training, stop_flag, stopped, training_errors
from .flags import click_options, flag_values, with_options
from .transfer import config_option, style_option

__all__ = ["train_stylizer_command"]


class _Display:
    """Lazily built :class:`~styleforge.cli.display.TrainDisplay` whose epoch line counts iterations."""

    @staticmethod
    def make(quiet: bool, iterations: int) -> Any:
        from ..engine import EpochEnded
        from ..engine.fit import format_epoch_line
        from .display import TrainDisplay, format_duration

        class StylizerDisplay(TrainDisplay):
            """One line per report: ``iter 300/2000 · loss … = … · val_loss … · best · 41 s``."""

            def show(self, event: Any) -> None:
                if isinstance(event, EpochEnded):
                    self.close()
                    rest = format_epoch_line(event).split(" · ", 1)[1]
                    step = int(event.metrics.get("iteration", 0))
                    self._echo(f"iter {step}/{iterations} · {rest} · {format_duration(event.seconds)}")
                else:
                    super().show(event)

        return StylizerDisplay(quiet=quiet)


@click.command("train-stylizer")
@style_option
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of photos to train on (recursive; jpg, png, webp, ...).",
)
@click.option(
    "--val",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of validation photos, which pick the best checkpoint "
    "[default: --val-count photos of --data].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Run folder: the model (model.safetensors + model.json), history, curves, contact sheets.",
)
@config_option
@with_options(click_options(StylizerConfig))
@click.option("--resume", is_flag=True, help="Continue the run in -o exactly where it stopped.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.pass_context
def train_stylizer_command(
    ctx: click.Context,
    styles: Sequence[str],
    data: Path | None,
    val: Path | None,
    output: Path,
    resume: bool,
    quiet: bool,
    **options: Any,
) -> None:
    """Train a feed-forward network for --style (one or a blend) on the photos in --data.

    The objective is the transfer's (content, style with gram / w2 / sw, tv, laplacian, tone, blends) on
    random crops, trained with Adam through the engine's training loop; the run folder -o is the
    model, for transfer --model and video --model. Ctrl-C or SIGTERM keeps the best checkpoint (exit
    code 130 or 143); --resume continues exactly.

    \b
    Examples:
      styleforge train-stylizer --style starry.jpg --data photos/ -o models/starry --weights hed
      styleforge train-stylizer --style a.jpg:0.7 --style b.jpg:0.3 --data photos/ -o models/blend
      styleforge train-stylizer -o models/blend --resume --iterations 4000
      styleforge transfer holiday/ --model models/blend -o out/holiday/
    """
    from ..files import check_writable

    for style in styles:  # the options' checks need no torch: they come first
        parse_style(style)
    if not resume:
        if data is None:
            raise click.UsageError("Missing option '--data' (a folder of photos).")
        if not styles:
            raise click.UsageError("Missing option '--style'.")
        config: StylizerConfig | None = StylizerConfig(**flag_values(StylizerConfig, options))
        overrides: dict[str, Any] = {}
    else:
        config = None
        overrides = flag_values(StylizerConfig, options, explicit(ctx, list(options)))
    (config or StylizerConfig(**flag_values(StylizerConfig, options))).validate()
    if not resume:
        from ..images import probe_image

        for style in styles:
            probe_image(parse_style(style).path, param="--style")
    check_writable(output / "model.json", param="-o")

    from ..engine.distributed import process_rank
    from ..feedforward.train import resolve_run_config, train_stylizer

    planned = resolve_run_config(output, config, resume, overrides)[0].iterations  # a resumed run's own
    rank = process_rank()  # under torchrun only rank 0 prints (the core gives the others no events)
    display = _Display.make(quiet or rank != 0, planned)
    flag = stop_flag()
    with training_errors(ctx, rank, display):
        result = train_stylizer(
            data, output, list(styles), config, val=val, resume=resume, callbacks=[display], **overrides
        )
    if rank != 0:
        if result.stop_reason == "interrupted":
            stopped(flag)
        return
    if result.best_iteration:
        best = next(r for r in result.history if int(r["iteration"]) == result.best_iteration)
        steps = int(result.history[-1]["iteration"])
        click.echo(
            f"done: {result.stop_reason} after {steps} iterations; best iteration {result.best_iteration}, "
            f"validation loss {best['val_loss']:.4g}",
            err=True,
        )
    finish_training(result, flag, "train-stylizer", output, "no report finished; nothing was written")
