"""Ray workers: how many a run gets and with what, the actor each one is, and the loop that keeps
them busy.

A cluster run's work is a list of jobs (a picture, a chunk of a video). Each worker is a Ray actor
that lives for the whole run and keeps what its jobs share in :attr:`WorkerContext.cache` (a picture
run's :class:`~styleforge.stylize.run.Stylizer`: the network and the style statistics, built by its
first picture). The driver (:func:`run_jobs`) gives each idle worker the next job, hears the
workers' progress through a relay actor, and when it is asked to stop (Ctrl-C, SIGTERM) asks every
busy worker to stop: the job in progress ends as a local run's would, with its best result so far,
and no further job starts.

Workers read their inputs by path, from the driver's working folder: on a cluster of several
machines the inputs (and for a video, the frames folder) must be on storage every node sees, as
for ``styleforge sweep --backend ray``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..engine.events import Callback, Download, Event, Notice, Progress, emit
from ..errors import InvalidParameter, StyleforgeError
from ..machine import PROCESSES_ENV
from ..sweep import connect_ray

__all__ = [
    "Failure",
    "Finished",
    "Iteration",
    "JobEvent",
    "Pool",
    "StopFlag",
    "WorkerContext",
    "WorkerPlan",
    "notices_once",
    "ray_session",
    "plan_workers",
    "run_jobs",
]

#: Seconds between two progress events of one job passed on to the driver (the last one always is).
RELAY_EVERY = 0.5
#: Seconds the driver waits for a result before it looks at the relayed events and the stop flag.
POLL = 0.25


@dataclass(frozen=True)
class Iteration(Event):
    """An iteration of a job's optimisation (a :class:`~styleforge.engine.events.Progress` without its
    image), as a worker passes it on.

    Attributes:
        iteration: 1-based, numbered as the run numbers them.
        total_iterations: Planned iterations of the run.
    """

    iteration: int
    total_iterations: int


@dataclass(frozen=True)
class JobEvent(Event):
    """An event of job ``job`` (its 1-based number) on a worker, passed on to the driver."""

    job: int
    event: Event


@dataclass(frozen=True)
class Failure:
    """A :class:`~styleforge.errors.StyleforgeError` a worker met, carried back to the driver (the
    error classes take their own arguments, which a pickled exception does not keep).

    Attributes:
        kind: The error's class name (``InputFileError``).
        message: Its one-line message.
        exit_code: Its exit code.
        param: The parameter it names, where it names one (``CONTENT``).
    """

    kind: str
    message: str
    exit_code: int
    param: str | None = None

    @classmethod
    def of(cls, error: StyleforgeError) -> Failure:
        return cls(type(error).__name__, str(error), error.exit_code, getattr(error, "param", None))

    def error(self) -> StyleforgeError:
        """The error again, to raise on the driver: its message and exit code."""
        error = StyleforgeError(self.message)
        error.exit_code = self.exit_code
        return error


class StopFlag:
    """A worker's stop flag: the loops of its job check :attr:`requested` between their steps (as they
    check a command's Ctrl-C flag); :meth:`Worker.stop` sets it."""

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None


class _Relay:
    """The actor the workers pass their events to and the driver takes them from."""

    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    def put(self, event: JobEvent) -> None:
        self.events.append(event)

    def take(self) -> list[JobEvent]:
        events, self.events = self.events, []
        return events


class WorkerContext:
    """What a worker's jobs share: its stop flag, a cache that lives as long as the worker, and the
    relay of events to the driver."""

    def __init__(self, relay: Any) -> None:
        self.flag = StopFlag()
        self.cache: dict[str, Any] = {}
        self._relay = relay

    def callback(self, job: int, kinds: tuple[type[Event], ...]) -> Callback:
        """A callback for job ``job``'s engine events that passes on those of ``kinds`` (and notices
        and downloads) to the driver: a :class:`~styleforge.engine.events.Progress` as an
        :class:`Iteration`, at most every :data:`RELAY_EVERY` seconds but always the last, a
        download at most as often."""
        last: dict[type, float] = {}

        def send(event: Event) -> None:
            if not isinstance(event, (*kinds, Notice, Download)):
                return
            now = time.monotonic()
            if isinstance(event, Progress):
                final = event.iteration >= event.total_iterations
                if not final and now - last.get(Progress, -RELAY_EVERY) < RELAY_EVERY:
                    return
                last[Progress] = now
                event = Iteration(event.iteration, event.total_iterations)
            elif isinstance(event, Download):
                final = event.total is not None and event.done >= event.total
                if not final and now - last.get(Download, -RELAY_EVERY) < RELAY_EVERY:
                    return
                last[Download] = now
            self._relay.put.remote(JobEvent(job, event))  # not waited for

        return send


class Worker:
    """One worker of a cluster run (a Ray actor: ``max_concurrency=2``, so that :meth:`stop` is heard
    while a job runs).

    Args:
        cwd: The driver's working folder: the worker reads relative paths from there (where the node
            has it).
        relay: The relay actor.
        resources: What one worker takes (``{"CPU": 1}``, ``{"CPU": 1, "GPU": 1}``): its torch threads
            (one per CPU), and the share of the node's memory its jobs' memory checks count on (as a
            sweep's cells do).
    """

    def __init__(self, cwd: str, relay: Any, resources: dict[str, float]) -> None:
        import torch

        if os.path.isdir(cwd):
            os.chdir(cwd)
        os.environ[PROCESSES_ENV] = str(_workers_on_this_node(resources))
        # One torch thread per CPU the worker holds (Ray's OMP_NUM_THREADS may be a pre-started
        # process's 1): a picture's pixels depend on how its sums are split over threads.
        torch.set_num_threads(max(1, int(resources.get("CPU", 1))))
        self.context = WorkerContext(relay)

    def stop(self) -> None:
        """Asks the job in progress to stop after its current step (and the next ones not to start)."""
        self.context.flag.requested = True

    def run(self, job: Callable[..., Any], *args: Any) -> Any:
        """Runs ``job(context, *args)``."""
        return job(self.context, *args)


def _workers_on_this_node(resources: dict[str, float]) -> int:
    """How many workers taking ``resources`` fit on the node this worker runs on (1 when unknown)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    for info in ray.nodes():
        if info.get("NodeID") == node:
            have = info.get("Resources", {})
            fits = [int(have.get(name, 0) // need) for name, need in resources.items() if need]
            return max(1, min(fits)) if fits else 1
    return 1


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers a run gets and what each takes.

    Attributes:
        count: Workers.
        cpus: CPU cores per worker (its torch threads: Ray sets ``OMP_NUM_THREADS`` to it).
        gpus: GPUs per worker (0 or 1).
    """

    count: int
    cpus: float = 1
    gpus: float = 0

    @property
    def resources(self) -> dict[str, float]:
        return {"CPU": self.cpus, "GPU": self.gpus} if self.gpus else {"CPU": self.cpus}

    def describe(self) -> str:
        """``2 workers, 1 CPU each`` / ``4 workers, 1 GPU each``."""
        each = f"{self.gpus:g} GPU" if self.gpus else f"{self.cpus:g} CPU"
        return f"{self.count} worker{'s' if self.count != 1 else ''}, {each} each"


def plan_workers(
    ray: Any, device: str, jobs: int, workers: int | None = None, cpus_per_worker: int = 1
) -> WorkerPlan:
    """One worker per GPU of the cluster when it has GPUs (and ``device`` allows them: not ``cpu`` or
    ``mps``), else one per ``cpus_per_worker`` CPU cores (its torch threads); ``workers`` sets a lower
    count; never more than ``jobs``.

    Raises:
        InvalidParameter: ``workers`` or ``cpus_per_worker`` is not a whole number >= 1.
    """
    for name, value in (("workers", workers), ("cpus_per_worker", cpus_per_worker)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidParameter(name, value, "a whole number >= 1")
    have = ray.cluster_resources()
    gpus = int(have.get("GPU", 0)) if device not in ("cpu", "mps") else 0
    count = gpus if gpus else max(1, int(have.get("CPU", 1)) // cpus_per_worker)
    # More workers than the cluster has room for would wait for it, and their jobs with them.
    return WorkerPlan(max(1, min(workers or count, count, jobs)), cpus_per_worker, 1 if gpus else 0)


@contextlib.contextmanager
def ray_session() -> Iterator[Any]:
    """Ray, connected (:func:`~styleforge.sweep.connect_ray`: ``RAY_ADDRESS``'s cluster, else a local
    instance); a local instance started here is shut down at the end."""
    ray, started = connect_ray()
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


class Pool:
    """The workers of one run and their relay; :meth:`close` ends them."""

    def __init__(self, ray: Any, plan: WorkerPlan) -> None:
        self.ray, self.plan = ray, plan
        self.relay = ray.remote(num_cpus=0)(_Relay).remote()
        self._actor = ray.remote(num_cpus=plan.cpus, num_gpus=plan.gpus, max_concurrency=2)(Worker)
        self.workers = [self.spawn() for _ in range(plan.count)]

    def spawn(self) -> Any:
        """A new worker (also to replace one that died)."""
        return self._actor.remote(os.getcwd(), self.relay, self.plan.resources)

    def events(self) -> list[JobEvent]:
        """The events relayed since the last call."""
        return self.ray.get(self.relay.take.remote())

    def close(self) -> None:
        for actor in [*self.workers, self.relay]:
            with contextlib.suppress(Exception):  # already gone: nothing to end
                self.ray.kill(actor)


@dataclass
class Finished:
    """A job that came back from its worker.

    Attributes:
        job: The job, as given to :func:`run_jobs`.
        value: What it returned (``None`` when it failed).
        error: Why it has no value, in one line: its worker died (killed, out of memory) or met a bug.
    """

    job: Any
    value: Any = None
    error: str | None = None


def _first_line(error: BaseException) -> str:
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text.splitlines()[0]}" if text else type(cause).__name__


def run_jobs(
    pool: Pool,
    jobs: Sequence[Any],
    call: Callable[[Any], tuple[Any, ...]],
    *,
    stop: Callable[[], bool],
    on_event: Callable[[JobEvent], None],
) -> Iterator[Finished]:
    """Runs ``jobs`` on ``pool``'s workers, one at a time on each, the next one to the first worker
    free, and yields each as it comes back (in the order they finish).

    Args:
        pool: The workers.
        jobs: The jobs, in the order they start.
        call: A job → the arguments of :meth:`Worker.run` (the function, then its arguments after the
            worker's context).
        stop: Whether to stop: then every busy worker is asked to stop (its job comes back with its
            best result so far) and no further job starts.
        on_event: Receives each relayed event.
    """
    ray = pool.ray
    todo = deque(jobs)
    idle = list(pool.workers)
    busy: dict[Any, tuple[Any, Any]] = {}
    stopping = False
    while True:
        if stop() and not stopping:
            stopping = True
            for worker, _ in busy.values():
                worker.stop.remote()
        while idle and todo and not stopping:
            worker, job = idle.pop(0), todo.popleft()
            busy[worker.run.remote(*call(job))] = (worker, job)
        if not busy:
            break
        ready, _ = ray.wait(list(busy), num_returns=1, timeout=POLL)
        for event in pool.events():
            on_event(event)
        for ref in ready:
            worker, job = busy.pop(ref)
            try:
                finished = Finished(job, ray.get(ref))
            except ray.exceptions.RayActorError as error:  # the worker died: a new one takes its place
                pool.workers.remove(worker)
                worker = pool.spawn()
                pool.workers.append(worker)
                finished = Finished(job, error=f"its worker stopped ({_first_line(error)})")
            except ray.exceptions.RayTaskError as error:  # a bug: named, and the other jobs go on
                finished = Finished(
                    job, error=f"{_first_line(error)} (a bug; the worker's log has the traceback)"
                )
            idle.append(worker)
            yield finished
    for event in pool.events():  # those sent after the last result
        on_event(event)


def notices_once(callbacks: Sequence[Callback]) -> Callable[[Event], None]:
    """Emits a relayed :class:`~styleforge.engine.events.Notice` once, however many workers send it
    (each builds its own network and says the same thing), and a download as it comes."""
    seen: set[str] = set()

    def emit_once(event: Event) -> None:
        if isinstance(event, Notice):
            if event.message in seen:
                return
            seen.add(event.message)
        emit(callbacks, event)

    return emit_once
