"""``styleforge video``: stylise a video, or a folder of frames, without flicker."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import DEFAULT_FPS, TransferConfig, VideoConfig
from ..errors import InvalidParameter
from .base import Outputs, stop_flag, stopped, stopped_words
from .cluster import backend_option, video_runner
from .flags import click_options, from_flags, with_options
from .model import VIDEO_MODEL_OPTIONS, pop_model, video_with_model
from .transfer import CONFIG_OPTIONS, check_inputs, check_styles, config_option, style_option

__all__ = ["video"]


def _folders(output: Path) -> tuple[Path, Path | None]:
    """Where the frames go, and the video file (``None``: the output is the folder of frames)."""
    from ..video.frames import is_video_path

    if is_video_path(output):
        return output.with_name(output.name + ".frames"), output
    if output.suffix and not output.is_dir():
        raise InvalidParameter(
            "-o", str(output), "a video file (.mp4, .mov, .mkv, .avi, .webm, .m4v) or a folder for the frames"
        )
    return output, None


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@style_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output video (.mp4 ...), or a folder for the frames (PNG).",
)
@config_option
@with_options(CONFIG_OPTIONS)
@with_options(click_options(VideoConfig))
@click.option(
    "--resume",
    is_flag=True,
    help="Keep the frames an interrupted run of the same options finished; do the rest.",
)
@click.option(
    "--keep-frames", is_flag=True, help="Keep the folder of stylised frames (OUT.frames/) beside the video."
)
@click.option(
    "--history",
    type=click.Path(path_type=Path),
    default=None,
    help="One row per frame (seconds, flicker, every term), .csv or .json.",
)
@backend_option(
    "ray: the clip in chunks on a Ray cluster's workers (RAY_ADDRESS, else a local instance), cut at scene "
    "cuts or overlapping, joined in order. Needs styleforge[ray]."
)
@with_options(VIDEO_MODEL_OPTIONS)
@click.option("--quiet", is_flag=True, help="No progress output.")
def video(
    input_path: Path,
    styles: Sequence[str],
    output: Path,
    resume: bool,
    keep_frames: bool,
    history: Path | None,
    backend: str,
    quiet: bool,
    **options: Any,
) -> None:
    """Stylise every frame of INPUT (a video file or a folder of frames) and write -o OUTPUT.

    Each frame after the first starts from the previous output warped by the optical flow and is
    held to it where the flow is reliable, so the result does not flicker. Finished frames are kept
    in OUTPUT.frames/ (or in OUTPUT when it is a folder): Ctrl-C or SIGTERM (exit code 130 or 143)
    writes the video of those, as does a frame that cannot be written (exit code 1), and --resume
    continues.

    \b
    Example:
      styleforge video clip.mp4 --style starry.jpg:0.7 --style dora.jpg:0.3 --size 384 -o out/clip.mp4
      styleforge video clip.mp4 --model models/starry -o out/clip.mp4    # a train-stylizer network
    """
    if (chosen := pop_model(options)) is not None:  # one pass of a trained network: styleforge.cli.model
        kept = dict(fps=options.get("fps"), resume=resume, keep_frames=keep_frames, history=history)
        return video_with_model(input_path, output, chosen, options, quiet=quiet, backend=backend, **kept)
    check_styles(styles, "Missing option '--style' (or give a --config with 'style').")
    config = from_flags(TransferConfig, options)  # the options' checks need no torch: they come first
    settings = from_flags(VideoConfig, options)
    check_inputs(None, styles, config)
    folder, movie = _folders(output)

    from ..video.frames import open_frames
    from .display import VideoDisplay

    source = open_frames(input_path)
    _check_outputs(input_path, output, folder, movie, history, resume)
    display = VideoDisplay(quiet=quiet)
    flag = stop_flag()
    try:
        result = video_runner(backend)(
            source, list(styles), config, settings, folder=folder, resume=resume, callbacks=[display]
        )
    finally:
        display.close()
    outputs = _write_outputs(result, folder, movie, history, settings.fps or source.fps or DEFAULT_FPS)
    _report(result, outputs, folder, movie)  # a frame that could not be written is among the failures
    interrupted = result.stop_reason == "interrupted"
    if movie is not None and not keep_frames and not outputs.failed and not interrupted:
        shutil.rmtree(folder, ignore_errors=True)
    outputs.finish()
    if interrupted:
        stopped(flag)


def _check_outputs(
    input_path: Path, output: Path, folder: Path, movie: Path | None, history: Path | None, resume: bool
) -> None:
    """Every output probed before the work: the video (never the input), the frames folder (empty,
    or ``--resume``; our own side folder beside a video is emptied), ``--history``."""
    from ..files import check_not_input, check_writable
    from ..report import check_history_path
    from ..video.frames import check_video_output
    from ..video.run import FRAME_NAME

    check_not_input(movie if movie is not None else folder, [("INPUT", input_path)])
    if movie is not None:
        check_video_output(movie)
    check_writable(folder / FRAME_NAME.format(1))
    if history is not None:
        check_history_path(history)
    if not resume and any(folder.glob("frame_*.png")):
        if movie is None:
            raise InvalidParameter(
                "-o",
                str(output),
                "an empty folder, or --resume to continue the run that left "
                f"frames in it ({FRAME_NAME.format(1)} ...)",
            )
        for stale in folder.glob("frame_*.png"):  # our own side folder, from an earlier run
            stale.unlink()


def _write_outputs(
    result: Any, folder: Path, movie: Path | None, history: Path | None, rate: float
) -> Outputs:
    """The video of the finished frames (or the frames folder itself) and ``--history``."""
    from ..report import write_history
    from ..video.frames import write_video

    outputs = Outputs()
    done = len(result.frames)
    with stop_flag().keeping():  # a signal now waits for the video of the finished frames
        if movie is not None and done:
            from ..images import load_image

            outputs.write(
                lambda: write_video(
                    movie, lambda: (load_image(path).rgb for path in result.paths), rate, fallback=True
                )
            )
        elif movie is None:
            outputs.written.append(folder)
        if history is not None and done:
            outputs.write(lambda: write_history(history, [record.as_row() for record in result.frames]))
    return outputs


def _report(result: Any, outputs: Outputs, folder: Path, movie: Path | None) -> None:
    """How many frames were done and their flicker; where the frames are when the run stopped early
    (a frame that could not be written, which also fails the command, or a signal)."""
    done = len(result.frames)
    flicker = result.mean_flicker()
    click.echo(
        f"done: {done}/{result.count} frames"
        + (f"; flicker (mean warping error) {flicker:.5f}" if flicker is not None else ""),
        err=True,
    )
    kept = f"{movie} has the first {done}; " if movie is not None and done and not outputs.failed else ""
    if result.write_error is not None:
        outputs.failed.insert(0, result.write_error)
        click.echo(
            f"stopped: frame {done + 1} could not be written; {kept}the {done} finished frame(s) are in "
            f"{folder}; run again with --resume to go on once it can be",
            err=True,
        )
    elif result.stop_reason == "interrupted":
        click.echo(
            f"{stopped_words(stop_flag().signum)}: {kept}the finished frames are in {folder}; run again "
            "with --resume to go on",
            err=True,
        )
