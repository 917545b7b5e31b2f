"""``styleforge score``: rate images with a trained attribute network."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import ScoreConfig
from ..files import check_not_input, check_writable
from .base import Outputs, stop_flag, stopped, stopped_words
from .flags import click_options, from_flags, with_options

__all__ = ["score_command"]


@click.command("score")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the scores to this file (atomically) instead of stdout.",
)
@with_options(click_options(ScoreConfig))
def score_command(model_dir: Path, images: Sequence[Path], output: Path | None, **options: Any) -> None:
    """Rate IMAGES (files, or folders walked for image files) with the attribute network in MODEL_DIR.

    Numeric attributes on their label scale; for each categorical one the predicted class, its
    probability and the top 3. An unreadable image is reported and skipped; the exit code is then 1.

    \b
    Examples:
      styleforge score runs/base out/guided.png
      styleforge score runs/base photos/ --format csv -o scores.csv
    """
    config = from_flags(ScoreConfig, options)  # the options' checks need no torch: they come first
    from ..attributes.score import open_model, score_images
    from ..attributes.score_format import format_scores
    from ..device import resolve_device
    from ..files import write_with_fallback
    from .display import TrainDisplay

    if output is not None and output.is_dir():
        raise click.BadParameter(f"{str(output)!r} is a folder; expected a file path", param_hint="'-o'")
    if output is not None:
        from ..images import find_images

        check_writable(output, param="-o")
        check_not_input(output, [("image", path) for path, _ in find_images(images)])
    display = TrainDisplay()
    flag = stop_flag()
    model = open_model(model_dir, device=resolve_device(config.device), callbacks=[display])
    try:
        scores = score_images(model, images, batch_size=config.batch_size, callbacks=[display])
    finally:
        display.close()
    text = format_scores(scores, config.resolved_format(output), model.net.schema, model=model_dir)
    outputs = Outputs()
    with flag.keeping():  # a signal now waits for the scores to be written
        if output is not None:
            outputs.write(lambda: write_with_fallback(output, text.encode("utf-8"), param="-o"))
        else:
            click.echo(text, nl=False)
    failed = [s for s in scores if not s.ok]
    for s in failed:
        click.echo(f"failed: {s.path}: {s.error}", err=True)
    click.echo(
        f"scored {len(scores) - len(failed)} image(s)" + (f", {len(failed)} failed" if failed else ""),
        err=True,
    )
    if flag.requested:
        click.echo(
            f"{stopped_words(flag.signum)}: the scores of the first {len(scores)} image(s) were kept",
            err=True,
        )
    outputs.finish()
    if flag.requested:
        stopped(flag)
    if failed:
        sys.exit(1)
