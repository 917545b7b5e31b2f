"""The studio's runs: one transfer at a time in a worker thread, the others queued, each one's engine
events kept as JSON for the page, and its best picture so far.

A :class:`Studio` holds the runs and their uploaded files (in a folder of its own).
:meth:`Studio.submit` queues a :class:`Run`; the worker thread runs them in turn through the
:class:`~styleforge.stylize.run.Stylizer` with a :class:`Recorder` as the callback, and
:meth:`Studio.stop` asks the engine's interrupt flag to stop after the current step, so that a
stopped run keeps its best image, as Ctrl-C does on the command line. Listeners (the web server) are
told whenever a run has new events. Nothing here prints, and nothing here knows the web framework.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import shutil
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import TransferConfig
from ..errors import StyleforgeError
from ..parsing import StyleSpec, parse_optimizer
from ..signals import Interrupt, installed
from ..version import __version__
from .feedforward import FeedForward
from .options import api_error

__all__ = [
    "FINISHED",
    "STATES",
    "Recorder",
    "Run",
    "Studio",
    "Upload",
    "event_json",
    "planned_iterations",
    "safe_name",
]

_log = logging.getLogger("styleforge.studio")

#: Every state of a run, in the order a run passes through them.
STATES: tuple[str, ...] = ("queued", "running", "done", "stopped", "failed")
#: The states a run ends in.
FINISHED: frozenset[str] = frozenset({"done", "stopped", "failed"})


def safe_name(name: str, default: str = "upload") -> str:
    """A client's file name as the studio stores it: its last path component only, letters, digits,
    ``.``, ``-`` and ``_`` kept (any script), other characters ``_``, no leading dot, at most 80
    characters (the extension kept). ``../../etc/passwd`` becomes ``passwd``."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    base = re.sub(r"[^\w.-]+", "_", base).lstrip("._")
    stem, dot, ext = base.rpartition(".")
    if dot and len(ext) <= 8:
        base = stem[: 80 - len(ext) - 1] + "." + ext
    return base[:80] or default


def planned_iterations(config: TransferConfig) -> int:
    """The iterations a transfer with ``config`` plans in all (every stage of its optimiser chain)."""
    return sum(parse_optimizer(stage).steps or config.iterations for stage in config.optimizer)


@dataclass(frozen=True)
class Upload:
    """An uploaded picture, stored in the run's folder.

    Attributes:
        field: The form field it came in (``content``, ``style``, ``mask_1``).
        name: Its file name as the client sent it (shown, and written in the PNG's metadata).
        path: Where it is stored.
    """

    field: str
    name: str
    path: Path


def event_json(event: Any) -> dict[str, Any] | None:
    """An engine event as the JSON the page reads (``None`` for events it does not show).

    ``progress``: ``iteration``, ``total``, ``stage``, ``losses`` (``total``, each weighted term and its
    ``.raw`` value: a history row), ``best``; ``stage``: an optimiser stage starts; ``stage_end``: it
    ended, with the reason; ``notice`` and ``download``: as the command line shows them.
    """
    from ..engine.events import Download, Notice, Progress, StageEnded, StageStarted

    if isinstance(event, Progress):
        return {
            "type": "progress",
            "iteration": event.iteration,
            "total": event.total_iterations,
            "stage": event.stage,
            "losses": event.summary.as_row(),
            "best": event.is_best,
        }
    if isinstance(event, StageStarted):
        return {"type": "stage", **dataclasses.asdict(event)}
    if isinstance(event, StageEnded):
        return {"type": "stage_end", **dataclasses.asdict(event)}
    if isinstance(event, Notice):
        return {"type": "notice", "message": event.message}
    if isinstance(event, Download):
        return {"type": "download", "what": event.what, "done": event.done, "total": event.total}
    return None


@dataclass(eq=False)
class Run:
    """One transfer of the studio: its inputs, its state, its events and pictures.

    Attributes:
        id: Its number, as text (``"3"``).
        config: The validated options.
        content: The content picture.
        styles: The style pictures, in order.
        blend: Each style's blend weight (``None``: an equal share).
        masks: Style position (from 1) → its output mask (``style_masks``).
        image_masks: Style position → the mask of its own picture (``style_image_masks``).
        model: A feed-forward model's name (:mod:`.feedforward`), else ``None``.
        folder: Where its uploads and pictures are stored.
        state: One of :data:`STATES`.
        iteration: The last iteration reported; ``total``: the iterations planned.
        losses: The last iteration's losses (a history row), or ``None``.
        error: Why it failed (one line naming the field), or ``None``; ``error_field``: that field.
        detail: How it ended, in words (``ran 100 iterations``, ``interrupted by the user``).
        events: Every event so far as JSON (:func:`event_json`, plus ``state`` and ``image``).
        flag: The engine's interrupt flag: :meth:`Studio.stop` sets it.
        external: The run is a command line's (``transfer --preview``), shown but not run here.
    """

    id: str
    config: TransferConfig
    content: Upload
    styles: list[Upload]
    blend: list[float | None]
    folder: Path
    masks: dict[int, Upload] = field(default_factory=dict)
    image_masks: dict[int, Upload] = field(default_factory=dict)
    model: str | None = None
    state: str = "queued"
    iteration: int = 0
    total: int = 0
    losses: dict[str, float] | None = None
    error: str | None = None
    error_field: str | None = None
    detail: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    flag: Interrupt = field(default_factory=Interrupt)
    external: bool = False
    created: float = field(default_factory=time.time)
    image_version: int = 0  # counts the pictures taken: the page asks for ``image?v=N``
    result: Path | None = None  # the final PNG, with its metadata
    _best: Any = None  # the best picture so far, (3, H, W) on the CPU
    _best_iteration: int = 0
    _best_losses: dict[str, float] | None = None
    _png: tuple[int, bytes] | None = None  # (image_version, PNG) of the picture last encoded
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def uploads(self) -> list[Upload]:
        """Every uploaded file of the run."""
        return [self.content, *self.styles, *self.masks.values(), *self.image_masks.values()]

    def upload(self, field: str) -> Upload | None:
        """The uploaded picture of one form field: ``content``, ``style_N``, ``mask_N`` or
        ``image_mask_N`` (N from 1); ``None`` when the run has none such."""
        if field == "content":
            return self.content
        kind, _, number = field.rpartition("_")
        if not number.isdigit():
            return None
        n = int(number)
        if kind == "style":
            return self.styles[n - 1] if 1 <= n <= len(self.styles) else None
        return {"mask": self.masks, "image_mask": self.image_masks}.get(kind, {}).get(n)

    def stored_names(self) -> dict[str, tuple[str, str]]:
        """Each stored path → (form field, the client's name): for messages (:func:`.options.api_error`)."""
        return {str(u.path): (u.field, u.name) for u in self.uploads}

    def style_specs(self, *, client_names: bool = False) -> list[StyleSpec]:
        """The styles as ``--style PATH:WEIGHT`` specs: the stored files, or the client's names."""
        return [
            StyleSpec(Path(u.name) if client_names else u.path, weight)
            for u, weight in zip(self.styles, self.blend)
        ]

    def transfer_config(self, *, client_names: bool = False) -> TransferConfig:
        """:attr:`config` with the uploaded masks as ``style_masks`` / ``style_image_masks`` (``N=PATH``);
        a command line's run (:attr:`external`) has its own."""
        if self.external:
            return self.config

        def items(masks: Mapping[int, Upload]) -> tuple[str, ...]:
            return tuple(f"{n}={m.name if client_names else m.path}" for n, m in sorted(masks.items()))

        return dataclasses.replace(
            self.config, style_masks=items(self.masks), style_image_masks=items(self.image_masks)
        )

    def add_event(self, event: dict[str, Any]) -> None:
        """Appends an event (the worker's thread or the command line's)."""
        with self._lock:
            self.events.append(event)

    def events_since(self, start: int) -> list[dict[str, Any]]:
        """The events from number ``start`` on (0: all)."""
        with self._lock:
            return self.events[start:]

    def take_picture(self, image: Any, iteration: int, losses: dict[str, float] | None = None) -> None:
        """Keeps ``image`` (1, 3, H, W) or (3, H, W) in [0, 1], the picture of ``iteration`` and its
        ``losses``, as the best so far, and announces it."""
        picture = image.detach().reshape(-1, *image.shape[-2:])[-3:].float().cpu().clone()
        with self._lock:
            self._best, self._best_iteration, self._best_losses = picture, iteration, losses
            self.image_version += 1
            self.events.append({"type": "image", "version": self.image_version, "iteration": iteration})

    def picture(self) -> bytes | None:
        """The best picture so far as PNG bytes: the final result once there is one, else the latest
        picture with the run's options, iteration and losses in its metadata (encoded once per
        picture); ``None`` before the first picture."""
        with self._lock:
            if self._png is not None and self._png[0] == self.image_version:
                return self._png[1]
            best, version, result = self._best, self.image_version, self.result
            iteration, losses = self._best_iteration, self._best_losses
        if result is not None:
            data = result.read_bytes()
        elif best is None:
            return None
        else:
            from ..images import save_image

            metadata = {**self.metadata(), "iteration": iteration, "losses": losses}
            # a file of this call's own (two requests may encode at once), read back and removed
            path = self.folder / f"snapshot-{version}-{threading.get_ident()}.png"
            try:
                data = save_image(path, best, metadata=metadata).read_bytes()
            finally:
                path.unlink(missing_ok=True)
        with self._lock:
            self._png = (version, data)
        return data

    def metadata(self) -> dict[str, Any]:
        """What a PNG of this run records, as ``styleforge transfer`` writes it, with the client's file
        names for the pictures (so ``--from-image`` re-runs it beside files of those names)."""
        return {
            "styleforge": __version__,
            "command": "transfer",
            "content": self.content.name,
            "styles": [str(s) for s in self.style_specs(client_names=True)],
            "config": self.transfer_config(client_names=True).to_dict(),
            "studio": {"run": self.id, **({"model": self.model} if self.model else {})},
        }

    def status(self, position: int | None = None) -> dict[str, Any]:
        """``GET /api/runs/ID``: the state and progress, the error, the inputs and the options."""
        return {
            "id": self.id,
            "state": self.state,
            "iteration": self.iteration,
            "total": self.total,
            "losses": self.losses,
            "error": self.error,
            "field": self.error_field,
            "detail": self.detail,
            "position": position,
            "image": self.image_version,
            "content": self.content.name,
            "styles": [u.name for u in self.styles],
            "blend": self.blend,
            "masks": {str(n): m.name for n, m in self.masks.items()},
            "model": self.model,
            "options": self.config.to_dict(),
            "external": self.external,
        }


class Recorder:
    """The engine's callback for one run: its progress, its events as JSON, its best picture.

    Args:
        run: The run the events belong to.
        changed: Called after each event is recorded (the server wakes its event streams).
    """

    def __init__(self, run: Run, changed: Callable[[Run], None]) -> None:
        self.run, self.changed = run, changed
        self.best_in_stage = False
        # The stage running, and whether it is the last one planned.
        self.last_stage: tuple[int, bool] = (-1, False)

    def __call__(self, event: Any) -> None:
        from ..engine.events import Progress, StageEnded, StageStarted

        run = self.run
        if (
            run.external
            and run.flag.requested
            and isinstance(event, Progress)
            and installed() is not run.flag
        ):
            # Stop on the page of a command whose stop signals were ignored when it started: its loop
            # listens to a flag of its own, and ends on this as on a second Ctrl-C, keeping its best image.
            raise KeyboardInterrupt
        data = event_json(event)
        if data is None:
            return
        if isinstance(event, Progress):
            run.iteration, run.total, run.losses = event.iteration, event.total_iterations, data["losses"]
        elif isinstance(event, StageStarted):
            self.best_in_stage = False
            last = event.first_iteration + event.steps - 1 >= event.total_iterations
            self.last_stage = (event.index, last)
        run.add_event(data)
        # The best iterate so far; a tiled scale reports none (its image is the canvas), so there
        # every iteration's picture is shown.
        if isinstance(event, Progress) and (event.is_best or not self.best_in_stage):
            self.best_in_stage = self.best_in_stage or event.is_best
            run.take_picture(event.image, event.iteration, data["losses"])
        if run.external and isinstance(event, StageEnded):
            if event.reason == "interrupted":
                self.finish("stopped", event.detail)
            elif event.index == self.last_stage[0] and self.last_stage[1]:
                self.finish("done", event.detail)
        self.changed(run)

    def state(self, state: str, **data: Any) -> None:
        """Sets the run's state and records it as an event."""
        self.run.state = state
        self.run.add_event({"type": "state", "state": state, **data})
        self.changed(self.run)

    def finish(
        self, state: str, detail: str = "", error: str | None = None, error_field: str | None = None
    ) -> None:
        """Ends the run in ``state`` (``done``, ``stopped`` or ``failed``)."""
        run = self.run
        run.detail, run.error, run.error_field = detail, error, error_field
        self.state(state, detail=detail, error=error, field=error_field, image=run.image_version)


class Studio:
    """The runs of one studio: a queue and the worker thread that runs them, one at a time.

    Args:
        folder: Where uploads and pictures are kept (``None``: a new temporary folder, removed by
            :meth:`close`).
        feedforward: The feed-forward models (:mod:`.feedforward`), or ``None``.
        keep: Finished runs kept (with their files); older ones are forgotten.
    """

    def __init__(
        self, folder: str | Path | None = None, *, feedforward: FeedForward | None = None, keep: int = 50
    ) -> None:
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="styleforge-studio-") if folder is None else folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.feedforward, self.keep = feedforward, keep
        self.listeners: list[Callable[[Run], None]] = []
        self._runs: dict[str, Run] = {}
        self._queue: list[Run] = []
        self._numbers = itertools.count(1)
        self._cond = threading.Condition()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.current: Run | None = None

    # -- runs ------------------------------------------------------------------------------------

    def new_folder(self) -> tuple[str, Path]:
        """A new run's number and its (empty) folder, for its uploads."""
        with self._cond:
            number = str(next(self._numbers))
        folder = self.folder / f"run-{number}"
        folder.mkdir()
        return number, folder

    def runs(self) -> list[Run]:
        """Every run kept, oldest first."""
        with self._cond:
            return list(self._runs.values())

    def get(self, run_id: str) -> Run | None:
        """The run of that id, or ``None``."""
        with self._cond:
            return self._runs.get(run_id)

    def position(self, run: Run) -> int | None:
        """1 for the next run to start, 2 for the one after, ...; ``None`` for a run not queued."""
        with self._cond:
            return self._queue.index(run) + 1 if run in self._queue else None

    def _changed(self, run: Run) -> None:
        for listener in list(self.listeners):
            listener(run)

    def submit(self, run: Run) -> Run:
        """Queues ``run``; the worker starts it when the runs before it have ended."""
        run.total = run.total or planned_iterations(run.config)
        with self._cond:
            if self._closed:
                raise RuntimeError("the studio is closed")
            self._runs[run.id] = run
            run.add_event({"type": "state", "state": "queued", "position": len(self._queue) + 1})
            self._queue.append(run)
            self._forget_old()
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="styleforge-studio", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        self._changed(run)
        return run

    def attach(self, run: Run) -> Recorder:
        """Shows a run made elsewhere (``transfer --preview``): the returned callback records its events."""
        run.external, run.total = True, run.total or planned_iterations(run.config)
        with self._cond:
            self._runs[run.id] = run
        recorder = Recorder(run, self._changed)
        recorder.state("running")
        return recorder

    def stop(self, run: Run) -> None:
        """Stops ``run``: a queued run leaves the queue (``stopped``); a running one stops after its
        current step through the engine's interrupt flag and keeps its best picture."""
        with self._cond:
            queued = run in self._queue
            if queued:
                self._queue.remove(run)
        if queued:
            Recorder(run, self._changed).finish("stopped", "stopped before it started")
        elif run.state not in FINISHED:
            run.flag.request()

    def _forget_old(self) -> None:
        """Drops the oldest finished runs beyond :attr:`keep` and their files (the lock is held)."""
        finished = [r for r in self._runs.values() if r.state in FINISHED]
        for run in finished[: max(0, len(finished) - self.keep)]:
            del self._runs[run.id]
            shutil.rmtree(run.folder, ignore_errors=True)

    def close(self) -> None:
        """Stops the running run, ends the worker, and removes the temporary folder."""
        with self._cond:
            self._closed = True
            queued, self._queue = self._queue, []
            self._cond.notify_all()
            current = self.current
        for run in queued:
            Recorder(run, self._changed).finish("stopped", "the studio was closed")
        if current is not None:
            current.flag.request()
        if self._worker is not None:
            self._worker.join()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- the worker -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                run = self.current = self._queue.pop(0)
            for queued in self._queue:  # everyone moved up one place
                Recorder(queued, self._changed).state("queued", position=self.position(queued))
            try:
                self._execute(run)
            finally:
                with self._cond:
                    self.current = None

    def _execute(self, run: Run) -> None:
        """Runs one transfer (or feed-forward model) and records how it ended."""
        recorder = Recorder(run, self._changed)
        recorder.state("running")
        try:
            if run.model is not None:
                state, detail = self._feedforward(run, recorder)
            else:
                state, detail = self._transfer(run, recorder)
        except StyleforgeError as exc:
            error = api_error(exc, run.stored_names())
            recorder.finish("failed", error=error.message, error_field=error.field)
            return
        except Exception as exc:  # a bug: the run fails, the studio goes on, the log has the traceback
            _log.exception("studio run %s failed", run.id)
            recorder.finish(
                "failed", error=f"internal error (a bug in styleforge): {type(exc).__name__}: {exc}"
            )
            return
        recorder.finish(state, detail)

    def _transfer(self, run: Run, recorder: Recorder) -> tuple[str, str]:
        from ..engine.outcome import INTERRUPTED
        from ..stylize.run import Stylizer

        callbacks = [recorder]
        stylizer = Stylizer(
            run.style_specs(), run.transfer_config(), callbacks=callbacks, content=run.content.path
        )
        result = stylizer.run(callbacks=callbacks, interrupt=run.flag)
        if result.stop_reason == INTERRUPTED and not result.history:
            return "stopped", "stopped before the first iteration: there is no picture"
        if not (result.improved or run.config.keep_last or result.stop_reason == INTERRUPTED):
            why = f" ({result.stop_detail})" if result.stop_reason != "completed" else ""
            raise _NoProgress(
                "the transfer made no progress: no iteration lowered the loss below the starting "
                f"image's{why}; try another optimizer or lr"
            )
        result.metadata.update(run.metadata())
        path = result.save(run.folder / "result.png")
        self._finished_picture(run, path, result.image)
        state = "stopped" if result.stop_reason == INTERRUPTED else "done"
        detail = result.stop_detail or f"ran {len(result.history)} iterations"
        return state, f"{detail}; the picture is iteration {result.metadata['iteration']}'s"

    def _feedforward(self, run: Run, recorder: Recorder) -> tuple[str, str]:
        """One pass of the chosen feed-forward model (``studio --models``)."""
        from ..images import save_image

        assert self.feedforward is not None and run.model is not None
        image = self.feedforward.stylize(
            run.model, run.content.path, run.style_specs(), run.transfer_config()
        )
        path = save_image(run.folder / "result.png", image, metadata=run.metadata())
        run.iteration = run.total = 1
        self._finished_picture(run, path, image)
        return "done", f"feed-forward model {run.model}"

    def _finished_picture(self, run: Run, path: Path, image: Any) -> None:
        run.result = path
        run.take_picture(image, run.iteration, run.losses)


class _NoProgress(StyleforgeError):
    """A run that ended no better than its starting image (the command line writes nothing then)."""
