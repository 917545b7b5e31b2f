"""``transfer --model`` and ``video --model``: pictures and frames through a trained stylizer.

``transfer`` and ``video`` declare ``--model`` and ``--model-size`` (and ``video`` ``--frame-blend``)
from here (:data:`MODEL_OPTIONS`, :data:`VIDEO_MODEL_OPTIONS`) and, when ``--model`` is given, hand
over to :func:`transfer_with_model` or :func:`video_with_model` before any of their own work. A model
run takes the options that make sense for one pass of a network (``--size``, ``--model-size``,
``--preserve-colors``, ``--tile``, ``--device``, ``--backend``, and the video's outputs); any other
option given is refused in one line.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import InvalidParameter
from .base import Outputs, stop_flag, stopped, stopped_words

__all__ = ["MODEL_OPTIONS", "VIDEO_MODEL_OPTIONS", "pop_model", "transfer_with_model", "video_with_model"]

#: ``transfer --model``: run the pictures through a trained stylizer.
MODEL_OPTIONS = [
    click.option(
        "--model",
        type=click.Path(path_type=Path),
        default=None,
        help="A train-stylizer folder: one pass of its network per image instead of an optimisation "
        "(with --size, --model-size, --preserve-colors, --tile, --device, --backend; no --style).",
    ),
    click.option(
        "--model-size",
        default=None,
        metavar="auto|off|PX",
        help="With --model: pictures larger than this long side go through the network at it and are "
        "resized back, so the strokes keep their size against the picture; auto: 2.5 x the model's "
        "training crop; off: each picture's own size  [default: auto].",
    ),
]
#: ``video --model``: the frames through a trained stylizer, blended along the optical flow.
VIDEO_MODEL_OPTIONS = [
    *MODEL_OPTIONS,
    click.option(
        "--frame-blend",
        type=float,
        default=None,
        help="With --model: share of the previous output frame, warped by the flow, where the flow is "
        "reliable (0: every frame on its own) [default: 0.5].",
    ),
]


def pop_model(options: dict[str, Any]) -> dict[str, Any] | None:
    """Takes ``--model`` (and ``--model-size``, ``--frame-blend``) out of a command's options: ``None``
    without ``--model``, else ``{"model": ..., "model_size": ..., "frame_blend": ...}``.

    Raises:
        InvalidParameter: ``--model-size`` or ``--frame-blend`` without ``--model``.
    """
    model, blend = options.pop("model", None), options.pop("frame_blend", None)
    model_size = options.pop("model_size", None)
    if model is None:
        for flag, value in (("--frame-blend", blend), ("--model-size", model_size)):
            if value is not None:
                raise InvalidParameter(flag, value, f"no {flag} without --model")
        return None
    return {"model": model, "frame_blend": blend, "model_size": "auto" if model_size is None else model_size}


def _given(name: str) -> bool:
    """Whether the running command's option ``name`` was given: on the command line, in the
    environment, or in a ``--config`` file (not its default)."""
    from click.core import ParameterSource

    source = click.get_current_context().get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT, ParameterSource.DEFAULT_MAP)


def _refuse_others(allowed: Sequence[str], why: str) -> None:
    """One line for the first option given that a model run does not take."""
    ctx = click.get_current_context()
    for param in ctx.command.params:
        name = param.name or ""
        if name in allowed or not getattr(param, "expose_value", True) or not _given(name):
            continue
        value = ctx.params.get(name)
        if value not in (None, (), False):
            flag = next((o for o in getattr(param, "opts", []) if o.startswith("--")), name)
            raise InvalidParameter(flag, value, f"no {flag} with --model ({why})")


def _size(options: dict[str, Any]) -> int | None:
    """``--size`` when given, else ``None``: each picture's own size."""
    if not _given("size"):
        return None
    size = options["size"]
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidParameter("--size", size, "a whole number >= 1")
    return size


#: What ``transfer --model`` takes besides CONTENT and -o.
_MODEL_TRANSFER = (
    "content",
    "output",
    "model",
    "model_size",
    "size",
    "preserve_colors",
    "tile",
    "device",
    "quiet",
    "backend",
)


def transfer_with_model(
    content: Sequence[Path],
    output: Path,
    chosen: dict[str, Any],
    options: dict[str, Any],
    quiet: bool,
    backend: str = "local",
) -> None:
    """``styleforge transfer CONTENT... --model MODEL -o OUT``: one forward pass per picture.

    One CONTENT image is written to ``OUT``; several (or a folder) into the folder ``OUT`` under their
    own names (.png), consecutive pictures of the same size in batches. With ``--backend ray`` the
    pictures are spread over a Ray cluster's workers (:func:`.cluster.model_on_cluster`).
    """
    _refuse_others(_MODEL_TRANSFER, "the model's styles and terms were fixed by train-stylizer")
    if not content:
        raise click.UsageError("Missing argument 'CONTENT'.")
    size = _size(options)
    from ..feedforward.model import load_stylizer
    from ..files import check_not_input
    from ..images import check_output_path
    from .transfer import content_outputs

    many = len(content) > 1 or content[0].is_dir()
    if many:
        names, outs = content_outputs(content, output)
        paths = [Path(p) for p in names]
    else:
        from ..images import probe_image

        probe_image(content[0], param="CONTENT")
        paths, outs = [content[0]], [output]
        check_output_path(output)
    inputs = [("CONTENT", p) for p in paths]
    for out in outs:
        check_not_input(out, inputs)
    model, model_size = chosen["model"], chosen["model_size"]
    stylizer = load_stylizer(model, device="cpu" if backend == "ray" else options["device"])
    stylizer.check_options(tile=options["tile"], model_size=model_size)  # before any picture
    if backend == "ray":
        from .cluster import model_on_cluster

        model_on_cluster(
            paths,
            outs,
            stylizer,
            size=size,
            preserve_colors=options["preserve_colors"],
            tile=options["tile"],
            model_size=model_size,
            device=options["device"],
            quiet=quiet,
        )
        return
    outputs, flag, began = Outputs(), stop_flag(), time.perf_counter()
    done = 0
    with flag.listening():  # a signal stops the run between two pictures
        runs = stylizer.stylize_files(
            paths,
            size=size,
            preserve_colors=options["preserve_colors"],
            tile=options["tile"],
            model_size=model_size,
        )
        for out, result in zip(outs, runs):
            with flag.keeping():
                outputs.write(lambda: result.save(out, fallback=True))
            done += 1
            if flag.requested:
                break
    seconds = time.perf_counter() - began
    if not quiet:
        click.echo(
            f"done: {done} image(s) through {model} in {seconds:.2f} s "
            f"({seconds / max(1, done):.2f} s per image)",
            err=True,
        )
    if flag.requested and done < len(paths):
        click.echo(f"{stopped_words(flag.signum)}: {done} of {len(paths)} image(s) were written", err=True)
    outputs.finish()
    if flag.requested:
        stopped(flag)


#: What ``video --model`` takes besides INPUT and -o.
_MODEL_VIDEO = (
    "input_path",
    "output",
    "model",
    "model_size",
    "frame_blend",
    "size",
    "preserve_colors",
    "tile",
    "device",
    "fps",
    "resume",
    "keep_frames",
    "history",
    "quiet",
    "backend",
)


def video_with_model(
    input_path: Path,
    output: Path,
    chosen: dict[str, Any],
    options: dict[str, Any],
    *,
    fps: float | None,
    resume: bool,
    keep_frames: bool,
    history: Path | None,
    quiet: bool,
    backend: str = "local",
) -> None:
    """``styleforge video INPUT --model MODEL -o OUT``: every frame through the model, blended along the
    optical flow where it is reliable (:mod:`styleforge.video.model`); the outputs, Ctrl-C and
    ``--resume`` as for an optimised video. With ``--backend ray`` the clip runs in chunks on a Ray
    cluster's workers (:func:`~styleforge.cluster.video.stylize_video_with_model_on_cluster`)."""
    _refuse_others(_MODEL_VIDEO, "the model's styles and terms were fixed by train-stylizer")
    size = _size(options)
    model, blend = chosen["model"], chosen["frame_blend"]
    if blend is not None and not 0 <= blend <= 1:
        raise InvalidParameter("--frame-blend", blend, "a number from 0 to 1")
    import shutil

    from ..config import DEFAULT_FPS
    from ..feedforward.model import load_stylizer
    from ..video.frames import open_frames
    from ..video.model import DEFAULT_FRAME_BLEND, stylize_video_with_model
    from .display import VideoDisplay
    from .video import _check_outputs, _folders, _write_outputs

    folder, movie = _folders(output)
    source = open_frames(input_path)
    _check_outputs(input_path, output, folder, movie, history, resume)
    stylizer = load_stylizer(model, device="cpu" if backend == "ray" else options["device"])
    stylizer.check_options(tile=options["tile"], model_size=chosen["model_size"])  # before any frame
    display, flag = VideoDisplay(quiet=quiet), stop_flag()
    run: dict[str, Any] = dict(
        folder=folder,
        size=size,
        preserve_colors=options["preserve_colors"],
        frame_blend=DEFAULT_FRAME_BLEND if blend is None else blend,
        tile=options["tile"],
        model_size=chosen["model_size"],
        resume=resume,
        callbacks=[display],
    )
    try:
        if backend == "ray":
            from ..cluster.video import stylize_video_with_model_on_cluster

            result = stylize_video_with_model_on_cluster(source, stylizer, device=options["device"], **run)
        else:
            result = stylize_video_with_model(source, stylizer, **run)
    finally:
        display.close()
    rate = fps or source.fps or DEFAULT_FPS
    outputs, done = _write_outputs(result, folder, movie, history, rate), len(result.frames)
    flicker, alone = result.mean_flicker(), result.metadata["video"]["model_flicker"]
    click.echo(
        f"done: {done}/{result.count} frames through {model}"
        + (
            f"; flicker (mean warping error) {flicker:.5f}, the model's frames alone {alone:.5f}"
            if alone
            else ""
        ),
        err=True,
    )
    if result.write_error is not None:
        outputs.failed.insert(0, result.write_error)
    if result.stop_reason == "interrupted" or result.write_error is not None:
        click.echo(
            f"stopped: the {done} finished frame(s) are in {folder}; run again with --resume to go on",
            err=True,
        )
    elif movie is not None and not keep_frames and not outputs.failed:
        shutil.rmtree(folder, ignore_errors=True)
    outputs.finish()
    if result.stop_reason == "interrupted":
        stopped(flag)
