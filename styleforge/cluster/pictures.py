"""Many pictures over a cluster's workers (``styleforge transfer CONTENT... -o FOLDER --backend ray``,
with or without ``--model``).

Each worker builds what its pictures share once and keeps it for every picture it is given: for an
optimisation the network and the style statistics (a :class:`~styleforge.stylize.run.Stylizer`;
attribute guidance is not offered on a cluster), for ``--model`` the trained network
(:func:`~styleforge.feedforward.model.load_stylizer`). The driver gives the next picture to the first
worker free and yields each result as it comes back, for the caller to write at once. A picture's
result does not depend on the worker, on the pictures it did before, or on their order: it is the
one a local run gives it, pixel for pixel, with the same seed and the same number of threads.

An output that already holds its picture, made with the same options by a run that was not
interrupted, is finished (:func:`finished_pictures`, :func:`finished_model_pictures`): a run that
stopped can be started again and do only the rest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..config import TransferConfig, recorded_transfer_config
from ..engine.events import Callback, Event, Progress, emit
from ..engine.interrupt import watch
from ..engine.outcome import INTERRUPTED
from ..errors import InvalidParameter, ResourceError, StyleforgeError
from ..feedforward.model import Stylized, StylizerModel, load_stylizer, model_size_word
from ..images import read_metadata
from ..parsing import StyleSpec, parse_style
from ..stylize.run import Stylizer, TransferResult
from .workers import (
    Failure,
    Iteration,
    JobEvent,
    Pool,
    WorkerContext,
    notices_once,
    plan_workers,
    ray_session,
    run_jobs,
)

__all__ = [
    "PictureProgress",
    "PictureRun",
    "finished_model_pictures",
    "finished_pictures",
    "stylize_pictures_with_model",
    "transfer_pictures",
]


@dataclass(frozen=True)
class PictureProgress(Event):
    """A picture's optimisation advanced on its worker (passed on a few times a second at most).

    Attributes:
        number: The picture's 1-based position in the run.
        content: Its content image.
        iteration: Iterations done.
        total_iterations: Iterations planned.
    """

    number: int
    content: Path
    iteration: int
    total_iterations: int


@dataclass
class PictureRun:
    """One picture of :func:`transfer_pictures`, as it came back.

    Attributes:
        number: Its 1-based position in the run.
        content: The content image.
        output: Where it is to be written.
        result: Its transfer (``stop_reason == "interrupted"``: a Ctrl-C or SIGTERM stopped it, and this
            is its best so far), its pass through the model (``--model``), or ``None`` when it failed.
        error: Why it failed, in one line (an unreadable picture, one too large for the memory, its
            worker dying), else ``None``.
        seconds: The time it took on its worker.
    """

    number: int
    content: Path
    output: Path
    result: TransferResult | Stylized | None = None
    error: str | None = None
    seconds: float = 0.0


def _styles(styles: Sequence[str | os.PathLike[str] | StyleSpec]) -> list[str]:
    return [str(s if isinstance(s, StyleSpec) else parse_style(os.fspath(s))) for s in styles]


def _plain(value: Any) -> Any:
    """``value`` as it reads back from a PNG's metadata (JSON)."""
    return json.loads(json.dumps(value, default=str))


def _finished(
    contents: Sequence[str | os.PathLike[str]],
    outputs: Sequence[str | os.PathLike[str]],
    expected: dict[str, Any],
) -> list[bool]:
    """Whether each output is a styleforge PNG of its content image whose metadata holds ``expected``
    (as it reads back from JSON), from a run that was not interrupted."""
    expected = _plain(expected)
    done = []
    for content, output in zip(contents, outputs):
        try:
            meta = read_metadata(output) if Path(output).is_file() else None
        except StyleforgeError:  # damaged metadata: not a finished picture
            meta = None
        if meta is not None and isinstance(meta.get("config"), dict):  # a picture of an older version
            meta = {**meta, "config": recorded_transfer_config(meta["config"])}
        done.append(
            meta is not None
            and meta.get("content") == str(Path(content))
            and all(meta.get(key) == value for key, value in expected.items())
            and meta.get("stop_reason") != INTERRUPTED
        )
    return done


def finished_pictures(
    contents: Sequence[str | os.PathLike[str]],
    outputs: Sequence[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig,
) -> list[bool]:
    """Whether each output already holds its picture: a styleforge PNG that records the same content
    image, styles and options, from a run that was not interrupted. (Another file there, or one
    made with other options, is not finished: a run writes over it, as a local run does.)"""
    expected = {"command": "transfer", "styles": _styles(styles), "config": config.to_dict()}
    return _finished(contents, outputs, expected)


def finished_model_pictures(
    contents: Sequence[str | os.PathLike[str]],
    outputs: Sequence[str | os.PathLike[str]],
    model: StylizerModel,
    *,
    size: int | None = None,
    preserve_colors: bool = False,
    model_size: str | int | None = "auto",
) -> list[bool]:
    """:func:`finished_pictures` of a ``--model`` run: the outputs that record the same content image,
    model (folder and checkpoint), ``size``, ``preserve_colors`` and ``model_size``."""
    expected = {
        "command": "transfer --model",
        "model": model.record(),
        "size": size,
        "preserve_colors": preserve_colors,
        "model_size": model_size_word(model_size),
    }
    return _finished(contents, outputs, expected)


@dataclass
class _Outcome:
    """What a worker sends back for a picture: its result, or the error it met (``fatal``: one that
    every picture would meet, in building the network), or neither (it was not started)."""

    result: TransferResult | Stylized | None = None
    failure: Failure | None = None
    fatal: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class _Optimise:
    """A picture's job: an optimisation on the worker's :class:`Stylizer` (its first picture builds it).
    Attribute guidance is not offered on a cluster (the command refuses its options)."""

    styles: list[str]
    config: TransferConfig

    @property
    def device(self) -> str:
        return self.config.device

    def __call__(self, context: WorkerContext, number: int, content: str) -> _Outcome:
        if context.flag.requested:
            return _Outcome()
        started = time.perf_counter()
        callbacks = [context.callback(number, (Progress,))]
        stylizer = context.cache.get("stylizer")
        if stylizer is None:
            try:
                stylizer = Stylizer(self.styles, self.config, callbacks=callbacks)
            except StyleforgeError as error:
                return _Outcome(failure=Failure.of(error), fatal=True)
            context.cache["stylizer"] = stylizer
        try:
            result = stylizer.run(content, callbacks=callbacks, interrupt=context.flag)
        except StyleforgeError as error:  # about this picture: the network was built
            return _Outcome(failure=Failure.of(error))
        return _Outcome(result, seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class _ThroughModel:
    """A picture's job: one pass of a trained stylizer, read from its folder by the worker's first
    picture (on the worker's device: its GPU where it has one and ``device`` allows it)."""

    model: str
    device: str
    size: int | None
    preserve_colors: bool
    tile: str | int | None
    model_size: str | int | None

    def __call__(self, context: WorkerContext, number: int, content: str) -> _Outcome:
        if context.flag.requested:
            return _Outcome()
        started = time.perf_counter()
        model = context.cache.get("model")
        if model is None:
            try:
                model = load_stylizer(self.model, device=self.device)
            except StyleforgeError as error:
                return _Outcome(failure=Failure.of(error), fatal=True)
            context.cache["model"] = model
        try:
            result = model.stylize_image(
                content,
                size=self.size,
                preserve_colors=self.preserve_colors,
                tile=self.tile,
                model_size=self.model_size,
            )
        except StyleforgeError as error:
            return _Outcome(failure=Failure.of(error))
        except torch.OutOfMemoryError:  # a GPU's: this picture, not a bug (--tile or --size help)
            error = ResourceError(f"out of memory on {model.device}; try --tile PX or a smaller --size")
            return _Outcome(failure=Failure.of(error))
        return _Outcome(result, seconds=time.perf_counter() - started)


def _pictures(
    contents: Sequence[str | os.PathLike[str]], outputs: Sequence[str | os.PathLike[str]]
) -> list[tuple[int, Path, Path]]:
    """(number, content, output) of each picture, numbered from 1."""
    if len(contents) != len(outputs):
        raise InvalidParameter("outputs", len(outputs), f"one output per content image ({len(contents)})")
    return [(n, Path(c), Path(o)) for n, (c, o) in enumerate(zip(contents, outputs), start=1)]


def transfer_pictures(
    contents: Sequence[str | os.PathLike[str]],
    outputs: Sequence[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    *,
    workers: int | None = None,
    cpus_per_worker: int = 1,
    callbacks: Sequence[Callback] = (),
    interrupt: Any = None,
    **options: Any,
) -> Iterator[PictureRun]:
    """Transfers every content image on the workers of a Ray cluster (``RAY_ADDRESS``, else a local
    instance) and yields each picture as it comes back, in the order they finish.

    Args:
        contents: The content images, checked by the caller (:func:`finished_pictures` tells which
            an earlier run finished).
        outputs: Where each is to be written (the caller writes it: ``run.result.save(run.output)``).
        styles: As :func:`styleforge.transfer`'s.
        config: Options; ``None`` for the defaults. ``device="auto"`` takes a worker's GPU where the
            cluster has GPUs (one worker per GPU), else its CPU (one worker per core).
        workers: How many workers (default: one per GPU, else one per ``cpus_per_worker`` CPU cores
            of the cluster; never more than the pictures).
        cpus_per_worker: CPU cores, and torch threads, of each worker. A picture's pixels depend on the
            threads its sums were split over: a worker with the threads of a local run (and the same
            precision) gives that run's pixels.
        callbacks: Receive :class:`PictureProgress` and the workers' notices and downloads.
        interrupt: The caller's flag (:func:`~styleforge.signals.stop_signals`); ``None``: this call
            installs its own. A stop asks every busy worker to stop: each picture in progress comes
            back with its best result so far (``stop_reason == "interrupted"``), and no other starts.
        **options: Overrides of ``config``'s fields.

    Yields:
        A :class:`PictureRun` per picture that ran (not those a stop kept from starting, nor one
        stopped before its first iteration).

    Raises:
        ResourceError: Ray is not installed.
        StyleforgeError: An error every picture would meet (weights, device, style images, options),
            raised once the pictures in progress have come back.
    """
    config = dataclasses.replace(config or TransferConfig(), **options)
    config.validate()
    job = _Optimise(_styles(styles), config)
    yield from _spread(_pictures(contents, outputs), job, workers, cpus_per_worker, callbacks, interrupt)


def stylize_pictures_with_model(
    contents: Sequence[str | os.PathLike[str]],
    outputs: Sequence[str | os.PathLike[str]],
    model: str | os.PathLike[str] | StylizerModel,
    *,
    size: int | None = None,
    preserve_colors: bool = False,
    tile: str | int | None = "auto",
    model_size: str | int | None = "auto",
    device: str = "auto",
    workers: int | None = None,
    cpus_per_worker: int = 1,
    callbacks: Sequence[Callback] = (),
    interrupt: Any = None,
) -> Iterator[PictureRun]:
    """:func:`transfer_pictures` for a trained stylizer (``transfer --model --backend ray``): every
    content image through ``model`` on the workers of a Ray cluster, each worker reading the model
    once; yields each picture as it comes back (``run.result``: a
    :class:`~styleforge.feedforward.model.Stylized`).

    Args:
        contents, outputs, workers, cpus_per_worker, callbacks, interrupt: As
            :func:`transfer_pictures`' (:func:`finished_model_pictures` tells which an earlier run
            finished; a stop lets each picture in progress finish, and no other starts).
        model: A ``train-stylizer`` folder, or a model read from one: the workers read it by path.
        size, preserve_colors, tile, model_size: As
            :meth:`~styleforge.feedforward.model.StylizerModel.stylize_image`'s.
        device: Where each worker runs the model: ``auto`` takes a worker's GPU where the cluster has
            GPUs (one worker per GPU), else its CPU.

    Raises:
        ResourceError: Ray is not installed.
        InputFileError: ``model`` is no model folder (read here first, before any worker starts).
        StyleforgeError: An error every picture would meet (the device), raised once the pictures in
            progress have come back.
    """
    if not isinstance(model, StylizerModel):
        model = load_stylizer(model, device="cpu")  # its one-line error here, not once per worker
    if model.path is None:
        raise InvalidParameter("model", "a model built in memory", "a model read from its folder")
    model.check_options(tile=tile, model_size=model_size)
    job = _ThroughModel(str(model.path), device, size, preserve_colors, tile, model_size)
    yield from _spread(_pictures(contents, outputs), job, workers, cpus_per_worker, callbacks, interrupt)


def _spread(
    pictures: list[tuple[int, Path, Path]],
    job: _Optimise | _ThroughModel,
    workers: int | None,
    cpus_per_worker: int,
    callbacks: Sequence[Callback],
    interrupt: Any,
) -> Iterator[PictureRun]:
    """Runs ``job`` for each picture on a cluster's workers and yields each as it comes back (see
    :func:`transfer_pictures`)."""
    if not pictures:
        return
    fatal: list[Failure] = []
    with ray_session() as ray, watch(interrupt) as flag:
        relay = notices_once(callbacks)
        names = {number: content for number, content, _ in pictures}

        def on_event(event: JobEvent) -> None:
            if isinstance(event.event, Iteration):
                iteration = event.event
                progress = PictureProgress(
                    event.job, names[event.job], iteration.iteration, iteration.total_iterations
                )
                emit(callbacks, progress)
            else:
                relay(event.event)

        pool = Pool(ray, plan_workers(ray, job.device, len(pictures), workers, cpus_per_worker))
        try:
            for finished in run_jobs(
                pool,
                pictures,
                lambda picture: (job, picture[0], str(picture[1])),
                stop=lambda: flag.requested or bool(fatal),
                on_event=on_event,
            ):
                number, content, output = finished.job
                outcome: _Outcome | None = finished.value
                if finished.error is not None or (
                    outcome is not None and outcome.failure and not outcome.fatal
                ):
                    error = finished.error or outcome.failure.message  # type: ignore[union-attr]
                    yield PictureRun(number, content, output, error=error)
                elif outcome is not None and outcome.fatal:
                    fatal.append(outcome.failure)  # type: ignore[arg-type]
                elif outcome is not None and outcome.result is not None:
                    result = outcome.result
                    unstarted = isinstance(result, TransferResult) and not result.history
                    if unstarted and result.stop_reason == INTERRUPTED:  # nothing to keep
                        continue
                    yield PictureRun(number, content, output, result, seconds=outcome.seconds)
        finally:
            pool.close()
    if fatal:
        raise fatal[0].error()
