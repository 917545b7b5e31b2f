"""Stylising a video frame by frame, each frame held to the one before it.

The network and the style statistics are built once (:class:`~styleforge.stylize.run.Stylizer`).
The first frame is an ordinary transfer (its scales and iterations); every later frame starts from
the previous output warped by the input's optical flow (and, where the frame shows what was outside
the previous one, from its own content: :func:`~styleforge.video.flow.start_image`) and runs
``frame_iterations`` at the output size with one more term, ``temporal`` (:mod:`.temporal`), as
Ruder et al. (2016) do. Each finished frame is written at once, as a PNG with its parameters, into
the frames folder: that is what ``resume`` continues from and what a Ctrl-C leaves.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from ..config import TransferConfig, VideoConfig, recorded_transfer_config
from ..engine import Callback, LossSummary
from ..engine.events import FrameProgress, emit
from ..engine.interrupt import keeping, watch
from ..engine.outcome import COMPLETED, INTERRUPTED
from ..errors import InvalidParameter, OutputWriteError, shown
from ..images import load_image, read_metadata, resize_long_side, save_image
from ..option import declared
from ..parsing import StyleSpec
from ..stylize.run import Stylizer
from .flow import motion, start_image, warp, warping_error
from .frames import FrameSource, open_frames
from .temporal import Temporal

__all__ = [
    "FRAME_NAME",
    "FrameRecord",
    "VideoResult",
    "frame_done",
    "frame_path",
    "run_differences",
    "run_signature",
    "save_frame",
    "stylize_video",
    "upgraded_run",
]

#: A stylised frame's file name in the frames folder (1-based number).
FRAME_NAME = "frame_{:05d}.png"


def frame_path(folder: str | os.PathLike[str], number: int) -> Path:
    """Where frame ``number`` (1-based) is kept in ``folder``."""
    return Path(folder) / FRAME_NAME.format(number)


@dataclass
class FrameRecord:
    """One output frame.

    Attributes:
        frame: 1-based number.
        path: Its PNG in the frames folder.
        seconds: Time it took (0 when skipped).
        iterations: Evaluations it ran.
        summary: Its loss values (``None`` when skipped).
        flicker: The warping error from the previous output frame by the input's motion
            (:func:`~styleforge.video.flow.warping_error`); ``None`` for the first frame.
        skipped: Found done by a resumed run.
        stop_reason: The frame's optimisation's (``completed``, ``stopped``, ``diverged``).
    """

    frame: int
    path: Path
    seconds: float = 0.0
    iterations: int = 0
    summary: LossSummary | None = None
    flicker: float | None = None
    skipped: bool = False
    stop_reason: str = COMPLETED

    def as_row(self) -> dict[str, Any]:
        """A history row: ``frame, seconds, iterations, flicker, skipped, total, <term>...``."""
        row: dict[str, Any] = {
            "frame": self.frame,
            "seconds": round(self.seconds, 3),
            "iterations": self.iterations,
            "flicker": self.flicker,
            "skipped": self.skipped,
            "stop_reason": self.stop_reason,
        }
        if self.summary is not None:
            row.update(self.summary.as_row())
        return row


@dataclass
class VideoResult:
    """The outcome of :func:`stylize_video`.

    Attributes:
        frames: Every finished frame, in order (after a Ctrl-C, or a frame that could not be written,
            those done before it).
        count: Frames in the input.
        stop_reason: ``completed`` or ``interrupted``.
        folder: The frames folder.
        fps: The input's frame rate (``None`` for a folder of frames).
        metadata: What the run was (its options) and how far it got.
        write_error: Why the frame after :attr:`frames` could not be written in ``folder`` (disk full,
            the folder removed) and where it was saved instead; the run stopped there. ``None``: every
            finished frame is in ``folder``.
    """

    frames: list[FrameRecord]
    count: int
    stop_reason: str
    folder: Path
    fps: float | None
    metadata: dict[str, Any] = field(default_factory=dict)
    write_error: OutputWriteError | None = None

    @property
    def paths(self) -> list[Path]:
        return [record.path for record in self.frames]

    def mean_flicker(self) -> float | None:
        """The mean warping error between consecutive output frames (``None`` for one frame)."""
        values = [r.flicker for r in self.frames if r.flicker is not None]
        return sum(values) / len(values) if values else None


def _signature(
    source: FrameSource, styles: Sequence[StyleSpec], config: TransferConfig, video: VideoConfig
) -> dict[str, Any]:
    """What makes a frame's pixels: a resumed run continues only frames made with the same."""
    run = {
        "input": str(source.path),
        "frames": source.count,
        "styles": [str(s) for s in styles],
        "config": config.to_dict(),
        "temporal_weight": video.temporal_weight,
        "frame_iterations": video.frame_iterations,
    }
    return json.loads(json.dumps(run, sort_keys=True, default=str))


#: The options a frames folder's run record keeps, as the command line names them.
_RUN_OPTIONS = {
    "input": "INPUT",
    "frames": "INPUT's frame count",
    "styles": "--style",
    **{field.name: option.flag for field, option in declared(VideoConfig)},
    # a ``video --model`` run's record (styleforge.video.model)
    "model": "--model",
    "model_best": "--model's best checkpoint",
    "size": "--size",
    "preserve_colors": "--preserve-colors",
    "frame_blend": "--frame-blend",
    "tile": "--tile",
    "model_size": "--model-size",
}
#: The flag of each transfer option, as declared.
_FLAGS = {field.name: option.flag for field, option in declared(TransferConfig)}


def _differences(made: dict[str, Any], signature: dict[str, Any]) -> list[str]:
    """Each option whose value differs between the run that made a frame and this one, with both
    values: ``--size 64 (the frames have 48)``."""
    out = []
    for key in sorted(set(signature) | set(made)):
        ours, theirs = signature.get(key), made.get(key)
        if ours == theirs:
            continue
        if key == "config" and isinstance(ours, dict) and isinstance(theirs, dict):
            out += [
                f"{_FLAGS.get(k, '--' + k.replace('_', '-'))} {shown(ours.get(k))} (the frames have "
                f"{shown(theirs.get(k))})"
                for k in sorted(set(ours) | set(theirs))
                if ours.get(k) != theirs.get(k)
            ]
        else:
            out.append(f"{_RUN_OPTIONS.get(key, key)} {shown(ours)} (the frames have {shown(theirs)})")
    return out


def _upgraded(made: Any) -> Any:
    """A frame's run record in this version's terms: the transfer options an older version lacked
    filled in and the guidance's left out (:func:`~styleforge.config.recorded_transfer_config`; a
    version whose transfer options held the guidance's: always unset in a video)."""
    if not isinstance(made, dict) or not isinstance(made.get("config"), dict):
        return made
    return {**made, "config": recorded_transfer_config(made["config"])}


def _done(path: Path, signature: dict[str, Any]) -> bool:
    """Whether ``path`` is a frame this run made; a frame of another run is an error naming every
    option that differs, with both values."""
    if not path.is_file():
        return False
    meta = read_metadata(path, param="--resume") or {}
    made = _upgraded(meta.get("video", {}).get("run"))
    if made != signature:
        changed = _differences(made, signature) if isinstance(made, dict) else []
        why = (
            f"{path.name} was made with other options: {'; '.join(changed)}"
            if changed
            else f"{path.name} was not made by styleforge video"
        )
        raise InvalidParameter(
            "--resume",
            str(path.parent),
            "a frames folder made with the same input and options",
            f"{why}; give the same options, or another -o",
        )
    return True


def save_frame(
    path: Path,
    image: Tensor,
    metadata: dict[str, Any],
    command: str,
    place: tuple[int, int],
    signature: dict[str, Any],
    interrupt: Any,
) -> OutputWriteError | None:
    """Writes a finished frame into the frames folder with its run's record (a stop signal waits for
    it); returns the error when it could not be written there (it was saved elsewhere if possible).

    Args:
        path: :func:`frame_path`.
        image: (3, H, W) in [0, 1].
        metadata: The frame's own (its transfer's).
        command: The command the PNG names.
        place: (frame number, frames in the video).
        signature: The run's options, which ``--resume`` compares.
        interrupt: The run's stop flag.
    """
    record = {
        **metadata,
        "command": command,
        "video": {"frame": place[0], "frames": place[1], "run": signature},
    }
    try:
        with keeping(interrupt):  # a signal now waits for the frame to be written
            save_image(path, image, metadata=record, param="-o", fallback=True)
    except OutputWriteError as exc:
        return exc
    return None


def stylize_video(
    source: FrameSource | str | os.PathLike[str],
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    video: VideoConfig | None = None,
    *,
    folder: str | os.PathLike[str],
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    interrupt: Any = None,
) -> VideoResult:
    """Stylises every frame of ``source`` into ``folder`` (``frame_00001.png``, ...).

    Args:
        source: A video file, a folder of frames, or what :func:`~styleforge.video.frames.open_frames`
            returned.
        styles: As :func:`~styleforge.stylize.run.transfer`'s.
        config: The transfer's options (the first frame runs them as a transfer would).
        video: The temporal weight and the later frames' iterations.
        folder: Where the frames go (created).
        resume: Keep the frames already in ``folder`` (made with the same input and options) and
            do the rest.
        callbacks: Receive each frame's engine events and a
            :class:`~styleforge.engine.events.FrameProgress` per frame.
        interrupt: The caller's flag (:func:`~styleforge.signals.stop_signals`); ``None``: this call
            installs its own (Ctrl-C and SIGTERM).

    Returns:
        A :class:`VideoResult`; after a Ctrl-C (or SIGTERM) it holds the frames finished before it,
        and after a frame that could not be written (disk full) the frames before that one, with
        :attr:`VideoResult.write_error` saying where that frame was saved instead.

    Raises:
        StyleforgeError: Invalid options or inputs, frames of another run in ``folder`` (with
            ``resume``), a frame size that would be tiled while the temporal term is on.
    """
    config = config or TransferConfig()
    video = video or VideoConfig()
    video.validate()
    source = source if isinstance(source, FrameSource) else open_frames(source)
    frames = iter(source)
    first = next(frames)
    stylizer = Stylizer(styles, config, callbacks=callbacks, content=first)
    config = stylizer.config
    assert stylizer.first is not None
    if video.temporal_weight and stylizer.first.scales[-1].tile is not None:
        raise InvalidParameter(
            "--tile",
            config.tile,
            "off with --temporal-weight above 0 (the temporal term sees the "
            "whole frame, a tiled scale one tile at a time); choose a smaller --size",
        )
    signature = _signature(source, stylizer.specs, config, video)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with watch(interrupt) as flag:
        return _frames(stylizer, source, [first], frames, video, folder, resume, signature, callbacks, flag)


def _frames(
    stylizer: Stylizer,
    source: FrameSource,
    head: list[Any],
    rest: Any,
    video: VideoConfig,
    folder: Path,
    resume: bool,
    signature: dict[str, Any],
    callbacks: Sequence[Callback],
    interrupt: Any,
) -> VideoResult:
    """Stylises the frames in order (a resumed run reads back the ones it finished), writes each
    as soon as it is done, and stops at a stop signal or at the first frame that cannot be written."""
    config = stylizer.config
    records: list[FrameRecord] = []
    previous_in: Tensor | None = None
    previous_out: Tensor | None = None
    timed: list[float] = []  # seconds of each frame that started from the previous one
    stop = COMPLETED
    failed: OutputWriteError | None = None
    for number, frame in enumerate(itertools.chain(head, rest), start=1):
        if interrupt.requested:
            stop = INTERRUPTED
            break
        path = frame_path(folder, number)
        current_in = resize_long_side(frame.rgb, config.size)
        move = motion(previous_in, current_in) if previous_in is not None else None
        if resume and _done(path, signature):
            out = load_image(path, param="--resume").rgb
            records.append(FrameRecord(number, path, flicker=_flicker(previous_out, out, move), skipped=True))
            emit(callbacks, FrameProgress(number, source.count, 0.0, None, skipped=True))
            previous_in, previous_out = current_in, out
            continue
        started = time.perf_counter()
        result = _stylize_frame(
            stylizer, frame, number, current_in, move, previous_out, video, callbacks, interrupt
        )
        if result.stop_reason == INTERRUPTED:
            stop = INTERRUPTED  # this frame is not finished: a resumed run does it again
            break
        out = result.image
        failed = save_frame(path, out, result.metadata, "video", (number, source.count), signature, interrupt)
        if failed is not None:  # the frames before it are kept; the later ones would fail too
            break
        seconds = time.perf_counter() - started
        if move is not None:
            timed.append(seconds)
        flicker = _flicker(previous_out, out, move)
        records.append(
            FrameRecord(
                number,
                path,
                seconds,
                len(result.history),
                result.summary,
                flicker,
                stop_reason=result.stop_reason,
            )
        )
        left = _per_frame(timed, seconds, video, config) * (source.count - number)
        emit(callbacks, FrameProgress(number, source.count, seconds, left, summary=result.summary))
        previous_in, previous_out = current_in, out
    return VideoResult(
        records,
        source.count,
        stop,
        folder,
        source.fps,
        metadata={"video": {"run": signature, "frames_done": len(records)}},
        write_error=failed,
    )


def _flicker(previous_out: Tensor | None, out: Tensor, move: Any) -> float | None:
    """The warping error from the previous output frame by the input's motion; ``None`` for the first."""
    return warping_error(previous_out, out, move) if move is not None and previous_out is not None else None


def _stylize_frame(
    stylizer: Stylizer,
    frame: Any,
    number: int,
    current_in: Tensor,
    move: Any,
    previous_out: Tensor | None,
    video: VideoConfig,
    callbacks: Sequence[Callback],
    interrupt: Any,
) -> Any:
    """One frame's transfer: the first as an ordinary transfer (prepared when the stylizer was
    built), every later one at the output size only, from the previous output warped by the motion,
    for ``frame_iterations``, with the ``temporal`` term when its weight is above 0."""
    if move is None or previous_out is None:  # the first frame was prepared when the stylizer was built
        return stylizer.run(None if number == 1 else frame, callbacks=callbacks, interrupt=interrupt)
    warped = warp(previous_out, move.to_previous)
    extensions = [Temporal(warped, move.mask, video.temporal_weight)] if video.temporal_weight else []
    return stylizer.run(
        frame,
        callbacks=callbacks,
        interrupt=interrupt,
        finest_only=True,
        init_image=start_image(warped, current_in, move),
        iterations=video.frame_iterations,
        extensions=extensions,
    )


def _per_frame(timed: list[float], seconds: float, video: VideoConfig, config: TransferConfig) -> float:
    """The seconds a frame still to run is expected to take: the mean of the frames that started
    from the previous one, or, before one has, the first frame's ``seconds`` scaled from its
    iterations to ``frame_iterations``."""
    if timed:
        return sum(timed) / len(timed)
    return seconds * (video.frame_iterations or config.iterations) / config.iterations


# What a run split into chunks (styleforge.cluster) shares with this one: the record of what makes a
# frame, the check of a frame found in the folder, and the options that differ between two records.
run_signature = _signature
upgraded_run = _upgraded
frame_done = _done
run_differences = _differences
