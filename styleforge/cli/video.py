"""``styleforge video``: stylise a video, or a folder of frames, without flicker."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import DEFAULT_FPS, VideoConfig
from ..errors import InvalidParameter
from ..parsing import parse_style
from .base import Outputs, stop_flag, stopped, stopped_words
from .model import VIDEO_MODEL_OPTIONS, pop_model, video_with_model
from .transfer import CONFIG_OPTIONS, check_inputs, config_option, style_option, transfer_config, with_options

__all__ = ["video"]

_V = VideoConfig()


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
@with_options(VIDEO_MODEL_OPTIONS)
@click.option(
    "--temporal-weight",
    type=float,
    default=_V.temporal_weight,
    show_default=True,
    help="Weight of the temporal term: change from the previous output frame warped by the optical flow, "
    "where the flow is reliable (0: the warped start only).",
)
@click.option(
    "--frame-iterations",
    type=int,
    default=_V.frame_iterations,
    show_default=True,
    help="Iterations of every frame after the first (which runs --iterations and the --scales).",
)
@click.option(
    "--fps",
    type=float,
    default=None,
    help=f"Output frame rate [default: the input video's; {DEFAULT_FPS:g} for a folder of frames].",
)
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
@click.option("--quiet", is_flag=True, help="No progress output.")
def video(
    input_path: Path,
    styles: Sequence[str],
    output: Path,
    temporal_weight: float,
    frame_iterations: int,
    fps: float | None,
    resume: bool,
    keep_frames: bool,
    history: Path | None,
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
        kept = dict(fps=fps, resume=resume, keep_frames=keep_frames, history=history, quiet=quiet)
        return video_with_model(input_path, output, chosen, options, **kept)
    if not styles:
        raise click.UsageError("Missing option '--style' (or give a --config with 'style').")
    for style in styles:  # the options' checks need no torch: they come first
        parse_style(style)
    config = transfer_config(options)
    settings = VideoConfig(temporal_weight, frame_iterations, fps)
    settings.validate()
    check_inputs(None, styles, config)
    folder, movie = _folders(output)

    from ..files import check_not_input, check_writable
    from ..report import check_history_path, write_history
    from ..video.frames import check_video_output, open_frames, write_video
    from ..video.run import FRAME_NAME, stylize_video
    from .display import VideoDisplay

    source = open_frames(input_path)
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
    display = VideoDisplay(quiet=quiet)
    flag = stop_flag()
    try:
        result = stylize_video(
            source, list(styles), config, settings, folder=folder, resume=resume, callbacks=[display]
        )
    finally:
        display.close()

    outputs = Outputs()
    rate = settings.fps or source.fps or DEFAULT_FPS
    done = len(result.frames)
    with flag.keeping():  # a signal now waits for the video of the finished frames
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
    flicker = result.mean_flicker()
    click.echo(
        f"done: {done}/{result.count} frames"
        + (f"; flicker (mean warping error) {flicker:.5f}" if flicker is not None else ""),
        err=True,
    )
    interrupted = result.stop_reason == "interrupted"
    kept = f"{movie} has the first {done}; " if movie is not None and done and not outputs.failed else ""
    if result.write_error is not None:
        outputs.failed.insert(0, result.write_error)
        click.echo(
            f"stopped: frame {done + 1} could not be written; {kept}the {done} finished frame(s) are in "
            f"{folder}; run again with --resume to go on once it can be",
            err=True,
        )
    elif interrupted:
        click.echo(
            f"{stopped_words(flag.signum)}: {kept}the finished frames are in {folder}; run again with "
            "--resume to go on",
            err=True,
        )
    elif movie is not None and not keep_frames and not outputs.failed:
        shutil.rmtree(folder, ignore_errors=True)
    outputs.finish()
    if interrupted:
        stopped(flag)
