"""``--backend ray`` of ``transfer`` and ``video``: the option, and their runs on a Ray cluster
(:mod:`styleforge.cluster`).

Imports only click at import time, as every command module does: the cluster's code (torch, Ray)
is imported when a run asks for it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from ..config import TransferConfig
from ..errors import InvalidParameter
from .base import Outputs, stop_flag, stopped, stopped_words

__all__ = [
    "BACKENDS",
    "backend_option",
    "model_on_cluster",
    "transfer_on_cluster",
    "video_runner",
    "write_pictures",
]

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
    from .display import format_duration
    from .transfer import _no_progress, input_files, many_outputs

    if len(content) > 1 or content[0].is_dir():
        paths, outs = many_outputs(content, styles, output, config)
    else:
        paths, outs = [str(content[0])], [output]
        check_output_path(output)
        check_not_input(output, input_files(content, styles, config))

    def describe(run: Any) -> str:
        result = run.result
        return (
            f"{result.stop_reason} after {len(result.history)} iterations in {format_duration(run.seconds)}, "
            f"loss {result.summary.format()}"
        )

    write_pictures(
        paths,
        outs,
        finished_pictures(paths, outs, styles, config),
        lambda todo, callbacks, flag: transfer_pictures(
            [path for path, _ in todo],
            [out for _, out in todo],
            list(styles),
            config,
            callbacks=callbacks,
            interrupt=flag,
        ),
        problem=lambda run: _no_progress(run.result, config, run.output),
        describe=describe,
        quiet=quiet,
    )


def model_on_cluster(
    paths: Sequence[Path],
    outs: Sequence[Path],
    model: Any,
    *,
    size: int | None,
    preserve_colors: bool,
    tile: str,
    model_size: str | int,
    device: str,
    quiet: bool,
) -> None:
    """``styleforge transfer ... --model MODEL --backend ray``: every picture through the model on the
    cluster's workers (each reads the model once), written as it comes back; the pictures an earlier
    run finished with the same model and options are skipped.

    Args:
        paths: The content images (checked).
        outs: Where each goes (checked).
        model: The :class:`~styleforge.feedforward.model.StylizerModel` (read from its folder).
        size, preserve_colors, tile, model_size, device: The command's options.
        quiet: No progress bar.
    """
    from ..cluster.pictures import finished_model_pictures, stylize_pictures_with_model
    from .display import format_duration

    done = finished_model_pictures(
        paths, outs, model, size=size, preserve_colors=preserve_colors, model_size=model_size
    )
    write_pictures(
        [str(p) for p in paths],
        list(outs),
        done,
        lambda todo, callbacks, flag: stylize_pictures_with_model(
            [path for path, _ in todo],
            [out for _, out in todo],
            model,
            size=size,
            preserve_colors=preserve_colors,
            tile=tile,
            model_size=model_size,
            device=device,
            callbacks=callbacks,
            interrupt=flag,
        ),
        problem=lambda run: "",
        describe=lambda run: f"through {model.path} in {format_duration(run.seconds)}",
        quiet=quiet,
    )


def write_pictures(
    paths: Sequence[str],
    outs: Sequence[Path],
    done: Sequence[bool],
    start: Callable[[list[tuple[str, Path]], list[Any], Any], Iterator[Any]],
    *,
    problem: Callable[[Any], str],
    describe: Callable[[Any], str],
    quiet: bool,
) -> None:
    """The driver's side of a cluster run of many pictures: skips the finished ones (said on stdout),
    writes each picture as it comes back with a line and an ETA under one progress display, names
    those that failed (exit code 1) and, on Ctrl-C or SIGTERM, writes the pictures in progress and
    says how to go on.

    Args:
        paths, outs: Each picture's content image and output.
        done: Which an earlier run finished (skipped).
        start: ``start(todo, callbacks, flag)``: the run of the pictures ``todo`` ((content, output)
            pairs), yielding each :class:`~styleforge.cluster.pictures.PictureRun` as it comes back.
        problem: Why a picture that came back is not written, or "".
        describe: The end of a written picture's line (how it was made).
        quiet: No progress bar.
    """
    from .display import PicturesDisplay, format_duration

    todo = [(path, out) for path, out, finished in zip(paths, outs, done) if not finished]
    if any(done):
        click.echo(f"skipped {sum(done)} finished picture(s): their outputs were made with these options")
    display = PicturesDisplay(len(todo), quiet=quiet)
    flag = stop_flag()
    outputs, failed, kept, count, started = Outputs(), [], [], 0, time.perf_counter()
    try:
        for run in start(todo, [display], flag):
            count += 1
            display.done(run.number)
            why = run.error or problem(run)
            if why:
                display.echo(f"error: {run.content}: {why}; skipped")
                failed.append(str(run.content))
                continue
            result = run.result
            with flag.keeping():  # a signal now waits for the picture to be written
                written = outputs.write(lambda: result.save(run.output, fallback=True))
            left = len(todo) - count
            eta = f" · ETA {format_duration((time.perf_counter() - started) / count * left)}" if left else ""
            display.echo(f"done {count}/{len(todo)}: {run.content} -> {written}: {describe(run)}{eta}")
            if getattr(result, "stop_reason", None) == "interrupted":
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
