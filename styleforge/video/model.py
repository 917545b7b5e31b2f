"""A video through a feed-forward stylizer (``styleforge video --model``), held together by the flow.

Each frame goes through the model (:class:`~styleforge.feedforward.model.StylizerModel`) in one pass.
A network trained on still pictures answers small changes of its input with small but visible
changes of its texture, so frames stylised one by one shimmer. Where the optical flow between the
input frames is reliable (:func:`~styleforge.video.flow.motion`: forward-backward consistent, off
motion boundaries, not new at an edge), the output is blended with the previous output frame
warped by that flow::

    out_t = (1 − b·m) · model(frame_t) + b·m · warp(out_{t−1})

(``b`` = ``frame_blend``, ``m`` the reliability mask), a run-time form of the short-term
consistency Ruder et al. (2016) optimise for and that feed-forward video networks (Huang et al. 2017,
Chen et al. 2017) learn: static and smoothly moving parts keep their strokes, occluded and new parts
take the model's output at once. Each frame's flicker is measured with the optimisation's measure
(:func:`~styleforge.video.flow.warping_error`) for the blended frames and for the model's frames
alone, so a run says how much the blend removed. Frames are written as the transfer's are (PNGs with
their parameters in the frames folder), and ``resume`` keeps those a run with the same options made.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor

from ..engine import Callback
from ..engine.events import FrameProgress, emit
from ..engine.interrupt import watch
from ..engine.outcome import COMPLETED, INTERRUPTED
from ..errors import InvalidParameter
from ..feedforward.model import StylizerModel, model_size_word
from ..images import LoadedImage, load_image, resize_long_side
from .flow import motion, warp, warping_error
from .frames import FrameSource
from .run import FrameRecord, VideoResult, _done, frame_path, save_frame

__all__ = ["DEFAULT_FRAME_BLEND", "check_frame_blend", "model_signature", "stylize_video_with_model"]

#: Share of the warped previous output frame where the flow is reliable (``--frame-blend``);
#: benchmarks/README.md gives the flicker measured for it.
DEFAULT_FRAME_BLEND = 0.5


def check_frame_blend(frame_blend: Any) -> None:
    """Raises :class:`InvalidParameter` unless ``frame_blend`` is a number from 0 to 1."""
    if (
        isinstance(frame_blend, bool)
        or not isinstance(frame_blend, (int, float))
        or not 0 <= frame_blend <= 1
    ):
        raise InvalidParameter("--frame-blend", frame_blend, "a number from 0 to 1")


def model_signature(
    source: FrameSource,
    model: StylizerModel,
    size: int | None,
    preserve: bool,
    blend: float,
    tile: Any,
    model_size: Any = "auto",
) -> dict[str, Any]:
    """What makes a frame's pixels: a resumed run continues only frames made with the same."""
    run = {
        "input": str(source.path),
        "frames": source.count,
        "model": str(model.path) if model.path else None,
        "model_best": (model.meta.get("best") or {}).get("iteration"),
        "size": size,
        "preserve_colors": preserve,
        "frame_blend": blend,
        "tile": str(tile),
    }
    if model_size_word(model_size) != "off":  # frames of a run from before --model-size: the whole frame
        run["model_size"] = model_size_word(model_size)
    return json.loads(json.dumps(run, sort_keys=True, default=str))


def stylize_video_with_model(
    source: FrameSource,
    model: StylizerModel,
    *,
    folder: str | Path,
    size: int | None = None,
    preserve_colors: bool = False,
    frame_blend: float = DEFAULT_FRAME_BLEND,
    tile: str | int | None = "auto",
    model_size: str | int | None = "auto",
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    interrupt: Any = None,
) -> VideoResult:
    """Stylises every frame of ``source`` with ``model`` into ``folder`` (``frame_00001.png``, ...).

    Args:
        source: The opened frames (:func:`~styleforge.video.frames.open_frames`).
        model: The stylizer.
        folder: Where the frames go (created).
        size: Long side of the frames in px (``None``: the input's).
        preserve_colors: Keep each frame's colours (luminance-only transfer).
        frame_blend: ``b`` above, 0..1 (0: every frame the model's alone).
        tile: As :meth:`~styleforge.feedforward.model.StylizerModel.tile_side`.
        model_size: As :meth:`~styleforge.feedforward.model.StylizerModel.working_side`.
        resume: Keep the frames already in ``folder`` that a run with the same options made.
        callbacks: Receive a :class:`~styleforge.engine.events.FrameProgress` per frame.
        interrupt: The caller's stop flag; ``None``: this call installs its own.

    Returns:
        A :class:`~styleforge.video.run.VideoResult`; its ``metadata["video"]`` holds
        ``model_flicker``, the mean warping error of the model's frames alone, beside the blended
        frames' (:meth:`~styleforge.video.run.VideoResult.mean_flicker`).

    Raises:
        InvalidParameter: ``frame_blend`` outside 0..1; frames of another run in ``folder``.
    """
    check_frame_blend(frame_blend)
    model.check_options(tile=tile, model_size=model_size)
    signature = model_signature(source, model, size, preserve_colors, frame_blend, tile, model_size)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records: list[FrameRecord] = []
    raw_flicker: list[float] = []
    previous: tuple[Tensor, Tensor, Tensor] | None = None  # input, model output, blended output
    stop, failed = COMPLETED, None
    with watch(interrupt) as flag:
        for number, frame in enumerate(source, start=1):
            if flag.requested:
                stop = INTERRUPTED
                break
            started = time.perf_counter()
            path = frame_path(folder, number)
            rgb = resize_long_side(frame.rgb, size) if size is not None else frame.rgb
            raw = model.stylize_image(
                LoadedImage(rgb), preserve_colors=preserve_colors, tile=tile, model_size=model_size
            )
            move = motion(previous[0], rgb) if previous is not None else None
            skipped = resume and _done(path, signature)
            if skipped:
                out = load_image(path, param="--resume").rgb
            elif move is not None and previous is not None:
                held = frame_blend * move.mask
                out = (1 - held) * raw.image + held * warp(previous[2], move.to_previous)
            else:
                out = raw.image
            if not skipped:
                place = (number, source.count)
                failed = save_frame(path, out, raw.metadata, "video --model", place, signature, flag)
                if failed is not None:  # the frames before it are kept
                    break
            flicker = None
            if move is not None and previous is not None:
                flicker = warping_error(previous[2], out, move)
                raw_flicker.append(warping_error(previous[1], raw.image, move))
            seconds = 0.0 if skipped else time.perf_counter() - started
            records.append(FrameRecord(number, path, seconds, 0, None, flicker, skipped=bool(skipped)))
            done = [r.seconds for r in records if not r.skipped]
            remaining = sum(done) / len(done) * (source.count - number) if done else None
            emit(callbacks, FrameProgress(number, source.count, seconds, remaining, skipped=bool(skipped)))
            previous = (rgb, raw.image, out)
    model_flicker = sum(raw_flicker) / len(raw_flicker) if raw_flicker else None
    return VideoResult(
        records,
        source.count,
        stop,
        folder,
        source.fps,
        metadata={"video": {"run": signature, "frames_done": len(records), "model_flicker": model_flicker}},
        write_error=failed,
    )
