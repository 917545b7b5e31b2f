"""A video stylised in chunks on a cluster's workers (``styleforge video ... --backend ray``).

The clip is cut into chunks (:mod:`.chunks`: at scene cuts, else at fixed lengths that share
:data:`~.chunks.OVERLAP` frames); each chunk is a video run of its own on a worker
(:func:`~styleforge.video.run.stylize_video`, which writes each finished frame into the chunk's
folder, ``FOLDER/.chunks/0001/`` ...), and the driver joins them in order into the frames folder as
they come back: a frame of one chunk as it is, a frame two chunks share faded from the earlier
chunk's to the later one's. The plan is kept in ``.chunks/plan.json``, so ``resume`` goes on with
the same chunks, each from its last finished frame; once every frame is joined the chunks' folder is
removed.

The first chunk's frames are the frames a local run makes, pixel for pixel (same seed, same
threads); a later chunk starts with a whole transfer of its first frame, as a local run starts.

A ``--model`` video (:func:`stylize_video_with_model_on_cluster`) is chunked and joined the same way:
each chunk is :func:`~styleforge.video.model.stylize_video_with_model` on a worker that reads the model
once; a later chunk's first frame is the model's alone, as a local run's first frame is, and the
shared frames fade from one chunk's blend along the flow into the next's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..config import TransferConfig, VideoConfig
from ..engine.events import Callback, FrameProgress, emit
from ..engine.interrupt import keeping, watch
from ..engine.outcome import COMPLETED, INTERRUPTED
from ..errors import InvalidParameter, OutputWriteError, ResourceError, StyleforgeError
from ..feedforward.model import StylizerModel, load_stylizer
from ..files import write_atomic
from ..images import LoadedImage, load_image, read_metadata, resize_long_side, save_image
from ..parsing import StyleSpec, parse_style
from ..video.flow import motion, warping_error
from ..video.frames import FrameSource, open_frames
from ..video.model import DEFAULT_FRAME_BLEND, check_frame_blend, model_signature, stylize_video_with_model
from ..video.run import (
    FrameRecord,
    VideoResult,
    frame_done,
    frame_path,
    run_differences,
    run_signature,
    stylize_video,
    upgraded_run,
)
from .chunks import OVERLAP, Chunk, chunk_length, covering, plan_chunks, scene_cuts
from .workers import (
    Failure,
    JobEvent,
    Pool,
    WorkerContext,
    WorkerPlan,
    notices_once,
    plan_workers,
    ray_session,
    run_jobs,
)

__all__ = [
    "WORK",
    "FrameRange",
    "chunk_source",
    "stylize_video_on_cluster",
    "stylize_video_with_model_on_cluster",
]

#: The folder, inside the frames folder, of a chunked run's plan and its chunks' own frames.
WORK = ".chunks"


@dataclass(frozen=True)
class FrameRange(FrameSource):
    """``count`` frames of a video file from the 0-based frame ``start`` on (ffmpeg seeks to it)."""

    start: int = 0

    def __iter__(self) -> Iterator[LoadedImage]:
        import imageio.v2 as iio

        with iio.get_reader(self.path, "ffmpeg") as reader:
            for index in range(self.start, self.start + self.count):
                array = np.ascontiguousarray(reader.get_data(index)[..., :3])
                yield LoadedImage(torch.from_numpy(array).permute(2, 0, 1).float() / 255, None, self.path)


def chunk_source(source: FrameSource, chunk: Chunk) -> FrameSource:
    """The frames of ``chunk``, as a source of their own."""
    if source.files:
        return FrameSource(
            source.path, chunk.count, source.size, source.fps, source.files[chunk.first - 1 : chunk.last]
        )
    return FrameRange(source.path, chunk.count, source.size, source.fps, start=chunk.first - 1)


@dataclass(frozen=True)
class _Optimise:
    """Each chunk an optimised video run into its own folder, going on from its finished frames."""

    styles: list[str]
    config: TransferConfig
    video: VideoConfig
    command: ClassVar[str] = "video"

    @property
    def device(self) -> str:
        return self.config.device

    @property
    def size(self) -> int | None:
        return self.config.size

    def __call__(
        self, context: WorkerContext, number: int, source: FrameSource, folder: str
    ) -> VideoResult | Failure | None:
        if context.flag.requested:
            return None
        try:
            return stylize_video(
                source,
                self.styles,
                self.config,
                self.video,
                folder=folder,
                resume=True,
                callbacks=[context.callback(number, (FrameProgress,))],
                interrupt=context.flag,
            )
        except StyleforgeError as error:
            return Failure.of(error)


@dataclass(frozen=True)
class _ThroughModel:
    """Each chunk's frames through a trained stylizer (read from its folder once per worker), blended
    along the flow, into the chunk's own folder, going on from its finished frames."""

    model: str
    device: str
    size: int | None
    preserve_colors: bool
    frame_blend: float
    tile: str | int | None
    model_size: str | int | None
    command: ClassVar[str] = "video --model"

    def __call__(
        self, context: WorkerContext, number: int, source: FrameSource, folder: str
    ) -> VideoResult | Failure | None:
        if context.flag.requested:
            return None
        try:
            model = context.cache.get("model")
            if model is None:
                model = context.cache["model"] = load_stylizer(self.model, device=self.device)
            return stylize_video_with_model(
                source,
                model,
                folder=folder,
                size=self.size,
                preserve_colors=self.preserve_colors,
                frame_blend=self.frame_blend,
                tile=self.tile,
                model_size=self.model_size,
                resume=True,
                callbacks=[context.callback(number, (FrameProgress,))],
                interrupt=context.flag,
            )
        except StyleforgeError as error:
            return Failure.of(error)


#: What a chunk runs.
_Job = _Optimise | _ThroughModel


def _resumed_chunks(folder: Path, base: dict[str, Any]) -> list[Chunk] | None:
    """The chunks of the run ``folder`` holds (from its plan, else from its first joined frame), checked
    against this run's options; ``None`` when it holds none."""
    plan = folder / WORK / "plan.json"
    if plan.is_file():
        made = json.loads(plan.read_text()).get("run", {})
    else:
        first = frame_path(folder, 1)
        made = (
            ((read_metadata(first, param="--resume") or {}) if first.is_file() else {})
            .get("video", {})
            .get("run")
        )
        if not isinstance(made, dict):
            return None
        if "chunks" not in made:
            raise InvalidParameter(
                "--resume",
                str(folder),
                "a frames folder made by a run with the same --backend",
                f"{first.name} was made by --backend local; resume it with --backend local, or give "
                "another -o",
            )
    made = upgraded_run(made)
    chunks = [Chunk(*item) for item in made.get("chunks", [])]
    signature = {**base, "chunks": [c.to_list() for c in chunks]}
    if made != signature:
        raise InvalidParameter(
            "--resume",
            str(folder),
            "a frames folder made with the same input and options",
            f"its run was made with other options: {'; '.join(run_differences(made, signature))}; "
            "give the same options, or another -o",
        )
    return chunks


class _Join:
    """The joined frames: which are in the frames folder, and writing those whose chunks have them."""

    def __init__(
        self, folder: Path, chunks: list[Chunk], signature: dict[str, Any], count: int, command: str
    ) -> None:
        self.folder, self.chunks, self.signature, self.count = folder, chunks, signature, count
        self.command = command
        self.done: set[int] = set()

    def chunk_folder(self, index: int) -> Path:
        return self.folder / WORK / f"{index + 1:04d}"

    def chunk_frame(self, index: int, frame: int) -> Path:
        return frame_path(self.chunk_folder(index), frame - self.chunks[index].first + 1)

    def complete(self, index: int) -> bool:
        """Whether chunk ``index`` has all its frames (they are written in order)."""
        return frame_path(self.chunk_folder(index), self.chunks[index].count).is_file()

    def write(self, frames: Iterable[int], flag: Any) -> OutputWriteError | None:
        """Writes each of ``frames`` not joined yet whose chunks have it; stops at a frame that cannot
        be written (returned)."""
        for frame in frames:
            parts = covering(self.chunks, frame)
            paths = [self.chunk_frame(index, frame) for index, _ in parts]
            if frame in self.done or not all(path.is_file() for path in paths):
                continue
            rgb = sum(weight * load_image(path, param="-o").rgb for (_, weight), path in zip(parts, paths))
            heavier = max(range(len(parts)), key=lambda k: parts[k][1])
            metadata = read_metadata(paths[heavier]) or {}
            record: dict[str, Any] = {"frame": frame, "frames": self.count, "run": self.signature}
            record["chunk"] = parts[heavier][0] + 1
            if len(parts) == 2:  # a blend of two runs: the losses of neither are its own
                metadata.pop("losses", None)
                record["joined"] = {
                    "chunks": [i + 1 for i, _ in parts],
                    "weights": [round(w, 4) for _, w in parts],
                }
            metadata.update(command=self.command, video=record)
            try:
                with keeping(flag):  # a signal now waits for the frame to be written
                    save_image(
                        frame_path(self.folder, frame), rgb, metadata=metadata, param="-o", fallback=True
                    )
            except OutputWriteError as error:
                return error
            self.done.add(frame)
        return None


def _records(
    join: _Join, ran: dict[tuple[int, int], FrameRecord], source: FrameSource, size: int | None
) -> list[FrameRecord]:
    """A record per joined frame from the first on, up to the first frame not joined. A frame's figures
    are its chunk's (summed over both for a shared frame, whose losses are neither's; none for a frame
    an earlier run made, which is ``skipped``); its flicker is its chunk's where the frame before it
    comes from the same run, else measured again on the joined frames (at a join, at a scene cut, after
    a frame an earlier run made)."""
    chunks, made, measure = join.chunks, {}, []
    for frame in range(1, join.count + 1):
        if frame not in join.done:
            break
        parts = covering(chunks, frame)
        made[frame] = [ran.get((index, frame - chunks[index].first + 1)) for index, _ in parts]
        owner = max(parts, key=lambda part: part[1])[0]
        alone = len(parts) == 1 and frame > chunks[owner].first and len(covering(chunks, frame - 1)) == 1
        if frame > 1 and (None in made[frame] or None in made.get(frame - 1, [None]) or not alone):
            measure.append(frame)
    flicker = _flickers(join.folder, source, measure, size)
    records = []
    for frame, runs in made.items():
        path = frame_path(join.folder, frame)
        if None in runs:
            records.append(FrameRecord(frame, path, flicker=flicker.get(frame), skipped=True))
            continue
        records.append(
            FrameRecord(
                frame,
                path,
                sum(r.seconds for r in runs),
                sum(r.iterations for r in runs),
                runs[0].summary if len(runs) == 1 else None,
                flicker[frame] if frame in flicker else runs[0].flicker,
                skipped=all(r.skipped for r in runs),
                stop_reason=runs[0].stop_reason,
            )
        )
    return records


def _flickers(folder: Path, source: FrameSource, frames: Sequence[int], size: int | None) -> dict[int, float]:
    """The warping error of each of the joined ``frames`` (numbers above 1, in order) from the one
    before, reading the input once over each stretch of consecutive frames."""
    out: dict[int, float] = {}
    stretches: list[list[int]] = []
    for frame in frames:
        if stretches and frame == stretches[-1][-1] + 1:
            stretches[-1].append(frame)
        else:
            stretches.append([frame])
    for stretch in stretches:
        previous: tuple[Any, Any] | None = None
        inputs = chunk_source(source, Chunk(stretch[0] - 1, stretch[-1]))
        for number, frame in enumerate(inputs, start=stretch[0] - 1):
            rgb = resize_long_side(frame.rgb, size) if size is not None else frame.rgb
            current = (rgb, load_image(frame_path(folder, number)).rgb)
            if previous is not None:
                out[number] = warping_error(previous[1], current[1], motion(previous[0], current[0]))
            previous = current
    return out


def stylize_video_on_cluster(
    source: FrameSource | str | os.PathLike[str],
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    video: VideoConfig | None = None,
    *,
    folder: str | os.PathLike[str],
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    interrupt: Any = None,
    workers: int | None = None,
    cpus_per_worker: int = 1,
    chunk_frames: int | None = None,
    overlap: int = OVERLAP,
) -> VideoResult:
    """Stylises every frame of ``source`` into ``folder`` as :func:`~styleforge.video.run.stylize_video`
    does, in chunks on the workers of a Ray cluster (``RAY_ADDRESS``, else a local instance).

    Args:
        source, styles, config, video, folder, callbacks: As :func:`~styleforge.video.run.stylize_video`'s
            (``callbacks`` receive each frame's :class:`~styleforge.engine.events.FrameProgress`, numbered
            in the whole video, as its chunk finishes it, and the workers' notices).
        resume: Keep the frames ``folder`` holds from a run with the same input and options (its joined
            frames and its chunks' frames) and do the rest, with that run's chunks.
        interrupt: As :func:`~styleforge.video.run.stylize_video`'s: a stop ends every chunk in progress
            after its current frame; the frames finished are kept and joined where they can be.
        workers: How many workers (default: one per GPU of the cluster, else one per
            ``cpus_per_worker`` CPU cores).
        cpus_per_worker: CPU cores, and torch threads, of each worker.
        chunk_frames: The longest chunk (default: about one per worker within a scene, between
            ``3 × overlap`` and :data:`~.chunks.MAX_CHUNK` frames).
        overlap: Frames two chunks of one scene share (faded from one to the other).

    Returns:
        A :class:`~styleforge.video.run.VideoResult` whose frames are the joined frames from the first on
        (up to the first not joined after a stop); a frame joined by an earlier run is ``skipped``.

    Raises:
        ResourceError: Ray is not installed; a chunk failed (its worker died); the finished frames are
            kept for ``resume``.
        StyleforgeError: Invalid options or inputs (also an error a worker met in setting up), frames
            of another run in ``folder`` (with ``resume``), the chunks of an unfinished run in
            ``folder`` (without it).
    """
    config = config or TransferConfig()
    config.validate()
    video = video or VideoConfig()
    video.validate()
    source = source if isinstance(source, FrameSource) else open_frames(source)
    specs = [s if isinstance(s, StyleSpec) else parse_style(os.fspath(s)) for s in styles]
    job = _Optimise([str(s) for s in specs], config, video)
    return _chunked(
        source,
        job,
        run_signature(source, specs, config, video),
        Path(folder),
        resume=resume,
        callbacks=callbacks,
        interrupt=interrupt,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        chunk_frames=chunk_frames,
        overlap=overlap,
    )


def stylize_video_with_model_on_cluster(
    source: FrameSource | str | os.PathLike[str],
    model: str | os.PathLike[str] | StylizerModel,
    *,
    folder: str | os.PathLike[str],
    size: int | None = None,
    preserve_colors: bool = False,
    frame_blend: float = DEFAULT_FRAME_BLEND,
    tile: str | int | None = "auto",
    model_size: str | int | None = "auto",
    device: str = "auto",
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    interrupt: Any = None,
    workers: int | None = None,
    cpus_per_worker: int = 1,
    chunk_frames: int | None = None,
    overlap: int = OVERLAP,
) -> VideoResult:
    """:func:`~styleforge.video.model.stylize_video_with_model` in chunks on the workers of a Ray
    cluster, joined as :func:`stylize_video_on_cluster` joins them.

    Args:
        source, folder, size, preserve_colors, frame_blend, tile, model_size, resume, callbacks,
            interrupt: As :func:`~styleforge.video.model.stylize_video_with_model`'s.
        model: A ``train-stylizer`` folder, or a model read from one: the workers read it by path.
        device: Where each worker runs the model: ``auto`` takes a worker's GPU where the cluster has
            GPUs (one worker per GPU), else its CPU.
        workers, cpus_per_worker, chunk_frames, overlap: As :func:`stylize_video_on_cluster`'s.

    Returns:
        A :class:`~styleforge.video.run.VideoResult`; its ``metadata["video"]["model_flicker"]`` is the
        chunks' mean warping error of the model's frames alone, weighted by their frames.

    Raises:
        ResourceError: As :func:`stylize_video_on_cluster`.
        InputFileError: ``model`` is no model folder.
        StyleforgeError: As :func:`stylize_video_on_cluster`.
    """
    check_frame_blend(frame_blend)
    if not isinstance(model, StylizerModel):
        model = load_stylizer(model, device="cpu")  # its one-line error here, not once per worker
    if model.path is None:
        raise InvalidParameter("model", "a model built in memory", "a model read from its folder")
    model.check_options(tile=tile, model_size=model_size)  # before the plan is written
    source = source if isinstance(source, FrameSource) else open_frames(source)
    job = _ThroughModel(str(model.path), device, size, preserve_colors, frame_blend, tile, model_size)
    return _chunked(
        source,
        job,
        model_signature(source, model, size, preserve_colors, frame_blend, tile, model_size),
        Path(folder),
        resume=resume,
        callbacks=callbacks,
        interrupt=interrupt,
        workers=workers,
        cpus_per_worker=cpus_per_worker,
        chunk_frames=chunk_frames,
        overlap=overlap,
    )


def _chunked(
    source: FrameSource,
    job: _Job,
    base: dict[str, Any],
    folder: Path,
    *,
    resume: bool,
    callbacks: Sequence[Callback],
    interrupt: Any,
    workers: int | None,
    cpus_per_worker: int,
    chunk_frames: int | None,
    overlap: int,
) -> VideoResult:
    """Plans (or, with ``resume``, reads back) the chunks of ``source``, runs ``job`` on each not
    finished on the cluster's workers, and joins their frames into ``folder``; ``base`` is the run's
    record without its chunks."""
    if not resume and (folder / WORK).exists():
        raise InvalidParameter(
            "-o",
            str(folder),
            "a folder without an unfinished --backend ray run",
            f"{folder / WORK} holds its chunks: give --resume to go on with it, or remove that folder",
        )
    with ray_session() as ray, watch(interrupt) as flag:
        chunks = _resumed_chunks(folder, base) if resume else None
        if chunks is None:
            count = plan_workers(ray, job.device, source.count, workers, cpus_per_worker).count
            length = chunk_frames or chunk_length(source.count, count, overlap)
            chunks = plan_chunks(source.count, scene_cuts(frame.rgb for frame in source), length, overlap)
        signature = {**base, "chunks": [c.to_list() for c in chunks]}
        (folder / WORK).mkdir(parents=True, exist_ok=True)
        write_atomic(folder / WORK / "plan.json", json.dumps({"run": signature}, indent=1).encode())
        join = _Join(folder, chunks, signature, source.count, job.command)
        if resume:
            join.done = {
                n for n in range(1, source.count + 1) if frame_done(frame_path(folder, n), signature)
            }
            for number in sorted(join.done):
                emit(callbacks, FrameProgress(number, source.count, 0.0, None, skipped=True))
        todo = [
            (index, chunk)
            for index, chunk in enumerate(chunks)
            if not join.complete(index)
            and not all(n in join.done for n in range(chunk.first, chunk.last + 1))
        ]
        failed = join.write(range(1, source.count + 1), flag)  # what earlier runs' chunks finished
        plan = plan_workers(ray, job.device, max(1, len(todo)), workers, cpus_per_worker)
        ran, problems = _run_chunks(ray, join, todo, source, job, plan, callbacks, flag, failed)
    if problems.fatal is not None:
        raise problems.fatal.error()
    records = _records(join, ran, source, job.size)
    stop = INTERRUPTED if flag.requested else COMPLETED
    if problems.chunk is not None and problems.write_error is None and stop == COMPLETED:
        raise ResourceError(
            f"--backend ray: {problems.chunk}; the {len(join.done)} finished frame(s) are in {folder}; "
            "run again with --resume to go on"
        )
    if len(join.done) == source.count:
        shutil.rmtree(folder / WORK, ignore_errors=True)
    about: dict[str, Any] = {"run": signature, "frames_done": len(records)}
    if isinstance(job, _ThroughModel):
        weighted = [(f, n) for f, n in problems.model_flicker if f is not None]
        total = sum(n for _, n in weighted)
        about["model_flicker"] = sum(f * n for f, n in weighted) / total if total else None
    return VideoResult(
        records,
        source.count,
        stop,
        folder,
        source.fps,
        metadata={"video": about},
        write_error=problems.write_error,
    )


@dataclass
class _Problems:
    """What went wrong in a chunked run: an error every chunk would meet, a chunk whose worker failed,
    a frame that could not be written."""

    fatal: Failure | None = None
    chunk: str | None = None
    write_error: OutputWriteError | None = None
    #: Each chunk's mean flicker of the model's frames alone and its frames (``--model`` runs).
    model_flicker: list[tuple[float | None, int]] = dataclasses.field(default_factory=list)


def _run_chunks(
    ray: Any,
    join: _Join,
    todo: list[tuple[int, Chunk]],
    source: FrameSource,
    job: _Job,
    plan: WorkerPlan,
    callbacks: Sequence[Callback],
    flag: Any,
    failed: OutputWriteError | None,
) -> tuple[dict[tuple[int, int], FrameRecord], _Problems]:
    """Runs the chunks ``todo`` and joins their frames as each comes back; returns each frame's record
    by (chunk index, frame of the chunk) and what went wrong."""
    problems = _Problems(write_error=failed)
    ran: dict[tuple[int, int], FrameRecord] = {}
    if not todo or failed is not None:
        return ran, problems
    started, frames_done = time.perf_counter(), [0]
    to_do = sum(chunk.count for _, chunk in todo)
    relay = notices_once(callbacks)

    def on_event(event: JobEvent) -> None:
        progress = event.event
        if not isinstance(progress, FrameProgress):
            relay(progress)
            return
        chunk = join.chunks[event.job - 1]
        frames_done[0] += 1
        rate = (time.perf_counter() - started) / frames_done[0]
        emit(
            callbacks,
            dataclasses.replace(
                progress,
                frame=chunk.first + progress.frame - 1,
                frames=join.count,
                remaining=rate * (to_do - frames_done[0]),
            ),
        )

    pool = Pool(ray, plan)
    try:
        for finished in run_jobs(
            pool,
            todo,
            lambda chunk: (
                job,
                chunk[0] + 1,
                chunk_source(source, chunk[1]),
                str(join.chunk_folder(chunk[0])),
            ),
            stop=lambda: flag.requested or problems.fatal is not None or problems.write_error is not None,
            on_event=on_event,
        ):
            index, chunk = finished.job
            value = finished.value
            if finished.error is not None:
                problems.chunk = (
                    problems.chunk
                    or f"chunk {index + 1} (frames {chunk.first}-{chunk.last}) failed: {finished.error}"
                )
            elif isinstance(value, Failure):
                problems.fatal = problems.fatal or value
            elif isinstance(value, VideoResult):
                ran.update({(index, record.frame): record for record in value.frames})
                problems.write_error = problems.write_error or value.write_error
                flicker = value.metadata.get("video", {}).get("model_flicker")
                problems.model_flicker.append((flicker, len(value.frames)))
            if problems.write_error is None:
                problems.write_error = join.write(range(chunk.first, chunk.last + 1), flag)
    finally:
        pool.close()
    return ran, problems
