"""``--backend ray`` of ``transfer`` and ``video``: the option, and their runs on a Ray cluster
(:mod:`styleforge.cluster`).

Imports only click at import time, as every command module does: the cluster's code (torch, Ray)
is imported when a run asks for it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from ..config import TransferConfig
from ..errors import InvalidParameter
from .base import Outputs, stop_flag, stopped, stopped_words

__all__ = ["BACKENDS", "backend_option", "transfer_on_cluster", "video_runner"]

#: Where a command's work runs: this process, or a Ray cluster's workers.
BACKENDS = ("local", "ray")


def backend_option(help: str) -> Callable[[Any], Any]:
    """``--backend local|ray``, with the command's own ``help``."""
    return click.option(
        "--backend", type=click.Choice(BACKENDS), default="local", show_default=True, help=help
    )


def video_runner(backend: str) -> Callable[..., Any]:
    """The function that stylises a video on ``backend``: :func:`~styleforge.video.run.stylize_video`
    or :func:`~styleforge.cluster.video.stylize_video_on_cluster` (the same arguments and result)."""
    if backend == "ray":
        from ..cluster.video import stylize_video_on_cluster

        return stylize_video_on_cluster
    from ..video.run import stylize_video

    return stylize_video


def transfer_on_cluster(
    content: Sequence[Path],
    styles: Sequence[str],
    output: Path,
    config: TransferConfig,
    *,
    quiet: bool,
    refused: dict[str, Any],
) -> None:
    """``styleforge transfer ... --backend ray``: every picture on the cluster's workers, each written
    as it comes back; the pictures an earlier run finished are skipped (and said so on stdout).

    Args:
        content: CONTENT (files and folders, checked).
        styles: The ``--style`` arguments.
        output: ``-o``: a folder, or with one content image, an image file.
        config: The checked options.
        quiet: No progress bar.
        refused: Options given that a cluster run does not take (``--history`` ...), by name.
    """
    for name, value in refused.items():
        if value is not None:
            raise InvalidParameter(
                name, value, "nothing with --backend ray (each picture's losses are in its PNG's metadata)"
            )
    from ..cluster.pictures import finished_pictures, transfer_pictures
    from ..files import check_not_input
    from ..images import check_output_path
    from .display import PicturesDisplay, format_duration
    from .transfer import _no_progress, input_files, many_outputs

    if len(content) > 1 or content[0].is_dir():
        paths, outs = many_outputs(content, styles, output, config)
    else:
        paths, outs = [str(content[0])], [output]
        check_output_path(output)
        check_not_input(output, input_files(content, styles, config))
    done = finished_pictures(paths, outs, styles, config)
    todo = [(path, out) for path, out, finished in zip(paths, outs, done) if not finished]
    if any(done):
        click.echo(f"skipped {sum(done)} finished picture(s): their outputs were made with these options")
    display = PicturesDisplay(len(todo), quiet=quiet)
    flag = stop_flag()
    outputs, failed, kept, count, started = Outputs(), [], [], 0, time.perf_counter()
    try:
        for run in transfer_pictures(
            [path for path, _ in todo],
            [out for _, out in todo],
            list(styles),
            config,
            callbacks=[display],
            interrupt=flag,
        ):
            count += 1
            display.done(run.number)
            problem = run.error or _no_progress(run.result, config, run.output)
            if problem:
                display.echo(f"error: {run.content}: {problem}; skipped")
                failed.append(str(run.content))
                continue
            result = run.result
            assert result is not None and result.summary is not None
            with flag.keeping():  # a signal now waits for the picture to be written
                written = outputs.write(lambda: result.save(run.output, fallback=True))
            left = len(todo) - count
            eta = f" · ETA {format_duration((time.perf_counter() - started) / count * left)}" if left else ""
            display.echo(
                f"done {count}/{len(todo)}: {run.content} -> {written}: {result.stop_reason} after "
                f"{len(result.history)} iterations in {format_duration(run.seconds)}, loss "
                f"{result.summary.format()}{eta}"
            )
            if result.stop_reason == "interrupted":
                kept.append(str(written))
    finally:
        display.close()
    if flag.requested:
        best = f"; the best so far of those in progress are in {', '.join(kept)}" if kept else ""
        click.echo(
            f"{stopped_words(flag.signum)}: {count - len(kept) - len(failed)} of {len(todo)} picture(s) were "
            f"finished{best}; run the same command again to do the rest (finished pictures are skipped)",
            err=True,
        )
    outputs.finish()
    if flag.requested:
        stopped(flag)
    if failed:
        click.echo(
            f"error: {len(failed)} of {len(paths)} image(s) were not written: {', '.join(failed)}", err=True
        )
        sys.exit(1)
