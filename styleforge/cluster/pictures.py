"""Many pictures over a cluster's workers (``styleforge transfer CONTENT... -o FOLDER --backend ray``).

Each worker builds the network and the style statistics once (a
:class:`~styleforge.stylize.run.Stylizer` (attribute guidance is not offered on a cluster), as
:func:`styleforge.guidance.run.transfer_each` builds it) and keeps them for every picture it is given;
the driver gives the next picture to the first worker free and yields each result as it comes back,
for the caller to write at once. A picture's result does not depend on the worker, on the pictures
it did before, or on their order: it is the one a local run gives it, pixel for pixel, with the same
seed and the same number of threads.

An output that already holds its picture, made with the same options by a run that was not
interrupted, is finished (:func:`finished_pictures`): a run that stopped can be started again and
do only the rest.
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

from ..config import TransferConfig
from ..engine.events import Callback, Event, Progress, emit
from ..engine.interrupt import watch
from ..engine.outcome import INTERRUPTED
from ..errors import InvalidParameter, StyleforgeError
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

__all__ = ["PictureProgress", "PictureRun", "finished_pictures", "transfer_pictures"]


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
            is its best so far), or ``None`` when it failed.
        error: Why it failed, in one line (an unreadable picture, one too large for the memory, its
            worker dying), else ``None``.
        seconds: The time it took on its worker.
    """

    number: int
    content: Path
    output: Path
    result: TransferResult | None = None
    error: str | None = None
    seconds: float = 0.0


def _styles(styles: Sequence[str | os.PathLike[str] | StyleSpec]) -> list[str]:
    return [str(s if isinstance(s, StyleSpec) else parse_style(os.fspath(s))) for s in styles]


def _plain(value: Any) -> Any:
    """``value`` as it reads back from a PNG's metadata (JSON)."""
    return json.loads(json.dumps(value, default=str))


def finished_pictures(
    contents: Sequence[str | os.PathLike[str]],
    outputs: Sequence[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig,
) -> list[bool]:
    """Whether each output already holds its picture: a styleforge PNG that records the same content
    image, styles and options, from a run that was not interrupted. (Another file there, or one
    made with other options, is not finished: a run writes over it, as a local run does.)"""
    specs, options = _plain(_styles(styles)), _plain(config.to_dict())
    done = []
    for content, output in zip(contents, outputs):
        try:
            meta = read_metadata(output) if Path(output).is_file() else None
        except StyleforgeError:  # damaged metadata: not a finished picture
            meta = None
        done.append(
            meta is not None
            and meta.get("command") == "transfer"
            and meta.get("content") == str(Path(content))
            and meta.get("styles") == specs
            and meta.get("config") == options
            and meta.get("stop_reason") != INTERRUPTED
        )
    return done


@dataclass
class _Outcome:
    """What a worker sends back for a picture: its result, or the error it met (``fatal``: one that
    every picture would meet, in building the network), or neither (it was not started)."""

    result: TransferResult | None = None
    failure: Failure | None = None
    fatal: bool = False
    seconds: float = 0.0


def _picture(
    context: WorkerContext, number: int, content: str, styles: list[str], config: TransferConfig
) -> _Outcome:
    """One picture on a worker (its first builds the worker's :class:`Stylizer`). Attribute guidance
    is not offered on a cluster (the command refuses its options)."""
    if context.flag.requested:
        return _Outcome()
    started = time.perf_counter()
    callbacks = [context.callback(number, (Progress,))]
    stylizer = context.cache.get("stylizer")
    if stylizer is None:
        try:
            stylizer = Stylizer(styles, config, callbacks=callbacks)
        except StyleforgeError as error:
            return _Outcome(failure=Failure.of(error), fatal=True)
        context.cache["stylizer"] = stylizer
    try:
        result = stylizer.run(content, callbacks=callbacks, interrupt=context.flag)
    except StyleforgeError as error:  # about this picture: the network was built
        return _Outcome(failure=Failure.of(error))
    return _Outcome(result, seconds=time.perf_counter() - started)


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
    pictures = [(n, Path(c), Path(o)) for n, (c, o) in enumerate(zip(contents, outputs), start=1)]
    if len(contents) != len(outputs):
        raise InvalidParameter("outputs", len(outputs), f"one output per content image ({len(contents)})")
    if not pictures:
        return
    specs = _styles(styles)
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

        pool = Pool(ray, plan_workers(ray, config.device, len(pictures), workers, cpus_per_worker))
        try:
            for finished in run_jobs(
                pool,
                pictures,
                lambda picture: (_picture, picture[0], str(picture[1]), specs, config),
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
                    if result.stop_reason == INTERRUPTED and not result.history:
                        continue  # stopped before its first iteration: nothing to keep
                    yield PictureRun(number, content, output, result, seconds=outcome.seconds)
        finally:
            pool.close()
    if fatal:
        raise fatal[0].error()
