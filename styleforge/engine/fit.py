"""The training loop of the shared engine: fit a module's weights to a :class:`WeightedLoss`.

:func:`fit` is the network-training counterpart of :func:`~styleforge.engine.optimize.optimise_pixels`
and uses the same tools: the optimiser factory (:func:`make_optimizer`, here with the training
learning-rate table :data:`TRAIN_LR`), the stopping rule (:class:`StopRule`, ``mode="improvement"``
on the monitored total) and the divergence guard. It knows nothing about attributes: the caller
gives a ``forward`` (batch → outputs), a :class:`WeightedLoss` whose terms take ``(outputs, batch)``,
batch iterables and, optionally, metric accumulators. Every epoch's loss terms are reported as a
:class:`LossSummary` whose total is exactly the sum of its weighted parts.

A run is resumable exactly: :meth:`FitCheckpoint.state` holds the module, the optimiser, the schedule,
the stopping rule, the history, the best epoch and weights, and the random number generators; pass it
back as ``resume=`` and the following epochs are the same as in an uninterrupted run.

Under torchrun, pass ``dist=`` (:func:`styleforge.engine.distributed.init_distributed`): every rank
runs this loop on its part of each global batch, terms and counts are all-reduced per step and the
gradients summed, so the run equals the single-process one up to floating-point noise (the module
docstring of :mod:`styleforge.engine.distributed` says why).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..errors import InvalidParameter, choice_error
from .distributed import Distributed, reduce_terms
from .events import BatchProgress, Callback, EpochEnded, EpochStarted, FitEnded, emit
from .interrupt import Interrupt, stop_detail, watch
from .optimize import DivergenceGuard, OptimizerSpec, StopRule, make_optimizer, parse_optimizer
from .outcome import COMPLETED, DIVERGED, INTERRUPTED, STOPPED
from .terms import LossSummary, WeightedLoss, summary_of, weighted_total

__all__ = [
    "TRAIN_LR",
    "SCHEDULES",
    "Metrics",
    "FitCheckpoint",
    "FitResult",
    "evaluate",
    "fit",
    "format_epoch_line",
]

#: Default learning rates for training network weights: PyTorch's own default for each optimiser
#: (``torch.optim``'s signatures; SGD's since torch 2.2), so a user who knows PyTorch gets no
#: surprise. See docs/attributes.md for why ``adam`` is the attribute trainer's default optimiser.
TRAIN_LR: dict[str, float] = {
    "lbfgs": 1.0,
    "adam": 1e-3,
    "adamw": 1e-3,
    "sgd": 1e-3,
    "momentum": 1e-3,
    "nesterov": 1e-3,
    "rmsprop": 1e-2,
    "adagrad": 1e-2,
    "adadelta": 1.0,
}

#: Learning-rate schedules :func:`fit` knows: constant, cosine annealing to 0 over the planned
#: epochs, and reduce-on-plateau of the monitored total.
SCHEDULES: tuple[str, ...] = ("none", "cosine", "plateau")


class Metrics(Protocol):
    """Accumulates metrics over the batches of one pass (an epoch, or one evaluation)."""

    def update(self, outputs: Any, batch: Any) -> None:
        """Adds one batch (outputs computed without gradients are fine)."""

    def compute(self) -> dict[str, float]:
        """The metrics of everything added, ``name -> value``."""

    # Distributed runs also call ``all_reduce(reduce)`` before ``compute()``: the accumulator replaces
    # its state (sums and counts) by ``reduce(state)``, a tensor summed over the ranks.


class _Diverged(Exception):
    """Raised inside a closure when a batch's loss is not finite, before the optimiser steps."""


@dataclass
class _Mean:
    """Count-weighted running mean of each term's raw value over a pass."""

    names: list[str]
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)

    def add(self, raw: Mapping[str, float], counts: Mapping[str, float] | None) -> None:
        for name in self.names:
            c = 1.0 if counts is None else float(counts.get(name, 0.0))
            if c > 0:
                self.sums[name] = self.sums.get(name, 0.0) + c * raw[name]
                self.counts[name] = self.counts.get(name, 0.0) + c

    def summary(self, weights: Mapping[str, float]) -> LossSummary:
        # A term with nothing to average over (e.g. no labelled value in the set) counts 0.
        return summary_of(
            {n: (self.sums[n] / self.counts[n] if self.counts.get(n) else 0.0) for n in self.names}, weights
        )


def _batch_raw(report: Any) -> dict[str, float]:
    names = list(report.raw)
    values = torch.stack([report.raw[n] for n in names]).detach().cpu().double().tolist() if names else []
    return dict(zip(names, values))


@torch.no_grad()
def evaluate(
    module: nn.Module,
    forward: Callable[[Any], Any],
    loss: WeightedLoss,
    batches: Iterable[Any],
    *,
    counts: Callable[[Any], Mapping[str, float]] | None = None,
    metrics: Callable[[], Metrics] | None = None,
    dist: Distributed | None = None,
) -> tuple[LossSummary, dict[str, float]]:
    """One pass over ``batches`` in eval mode, without gradients.

    Args:
        module: Put in eval mode for the pass, and back in its previous mode after.
        forward: Batch → outputs.
        loss: Called as ``loss(outputs, batch)``.
        batches: The data.
        counts: Batch → each term's weight in the mean (e.g. its number of labelled values);
            ``None``: every batch counts 1.
        metrics: Factory of a fresh accumulator.
        dist: A distributed run: ``batches`` are this rank's parts of the global batches (the same
            number on every rank); the returned values are the global ones, on every rank.

    Returns:
        The count-weighted mean of each term (as a :class:`LossSummary`) and the metrics.
    """
    was_training = module.training
    module.eval()
    try:
        mean = _Mean(loss.names)
        acc = metrics() if metrics is not None else None
        for batch in batches:
            outputs = forward(batch)
            report = loss(outputs, batch)
            if dist is not None:
                step = reduce_terms(dist, report.raw, batch, counts)
                mean.add(step.raw, step.counts)
            else:
                mean.add(_batch_raw(report), counts(batch) if counts is not None else None)
            if acc is not None:
                acc.update(outputs, batch)
        return mean.summary(loss.weights), _compute(acc, dist)
    finally:
        module.train(was_training)


@dataclass
class FitCheckpoint:
    """What :func:`fit` hands to its ``checkpoint`` function after every epoch.

    Attributes:
        epoch: The epoch that just ended (1-based).
        is_best: Whether its weights are the best so far (the caller may save them now).
        row: The epoch's history row.
        state: Returns the full resume state (tensors, numbers, strings, lists and dicts only, so
            ``torch.save`` + ``torch.load(weights_only=True)`` round-trip it).
    """

    epoch: int
    is_best: bool
    row: dict[str, float]
    state: Callable[[], dict[str, Any]]


@dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes:
        history: One row per epoch: ``epoch``, ``lr``, ``seconds``, ``loss`` (training total),
            ``loss.<term>`` (weighted), ``loss.<term>.raw``, the training metrics, and the same with
            a ``val_`` prefix for the validation pass, then the ``epoch_values``.
        best_epoch: The epoch with the lowest monitored total (0 when none finished).
        best_value: That total, or ``None``.
        stop_reason: One of :data:`~styleforge.engine.outcome.STOP_REASONS`: ``completed``,
            ``stopped`` (early stopping), ``diverged`` or ``interrupted``.
        stop_detail: A sentence for the user.
        epochs_run: The last epoch that finished.
    """

    history: list[dict[str, float]]
    best_epoch: int
    best_value: float | None
    stop_reason: str
    stop_detail: str
    epochs_run: int


def _check_int(param: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameter(param, value, f"a whole number >= {minimum}")
    return value


def _make_schedule(
    name: str, optimizer: torch.optim.Optimizer, epochs: int, plateau_factor: float, plateau_patience: int
) -> Any:
    if name not in SCHEDULES:
        raise choice_error("--lr-schedule", name, SCHEDULES)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=plateau_factor, patience=plateau_patience
        )
    return None


def _compute(acc: Metrics | None, dist: Distributed | None) -> dict[str, float]:
    """The accumulator's metrics; in a distributed run, of every rank's batches."""
    if acc is None:
        return {}
    if dist is not None:
        if not hasattr(acc, "all_reduce"):
            raise TypeError(
                f"{type(acc).__name__} needs an all_reduce(reduce) method to be used in a distributed run"
            )
        acc.all_reduce(dist.all_reduce)  # type: ignore[attr-defined]
    return acc.compute()


def _clone_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _param_groups(
    module: nn.Module,
    params: Iterable[Tensor] | Iterable[dict[str, Any]] | None,
    spec: OptimizerSpec,
    default_lr: Mapping[str, float],
    weight_decay: float,
) -> list[dict[str, Any]]:
    """The optimiser's parameter groups for :func:`fit`'s ``params``.

    Consecutive groups with nothing but ``params`` (single tensors included) become one group; L-BFGS
    gets a single group (torch's L-BFGS takes one learning rate for everything); a group's ``lr_scale``
    becomes its own ``lr`` (the spec's or ``default_lr``'s rate times it); every group without a
    ``weight_decay`` gets ``weight_decay`` (not L-BFGS's, which has none).

    Args:
        module: Its parameters that require a gradient, when ``params`` is ``None``.
        params: Tensors or parameter groups (dicts with ``params`` and any optimiser option).
        spec: The optimiser.
        default_lr: Learning rate per optimiser when the spec gives none.
        weight_decay: The run's L2 penalty.

    Returns:
        Groups for :func:`~styleforge.engine.optimize.make_optimizer`.
    """
    groups: list[dict[str, Any]] = []
    for item in params if params is not None else [p for p in module.parameters() if p.requires_grad]:
        group = dict(item) if isinstance(item, Mapping) else {"params": [item]}
        if groups and set(group) == {"params"} and set(groups[-1]) == {"params"}:
            groups[-1]["params"] = list(groups[-1]["params"]) + list(group["params"])
        else:
            groups.append(group)
    if spec.name == "lbfgs" and len(groups) > 1:
        # torch's L-BFGS takes a single parameter group: one learning rate for everything.
        groups = [{"params": [p for group in groups for p in group["params"]]}]
    base_lr = spec.lr if spec.lr is not None else default_lr[spec.name]
    for group in groups:
        factor = float(group.pop("lr_scale", 1.0))
        if factor != 1.0:
            group["lr"] = base_lr * factor
        if "weight_decay" not in group and spec.name != "lbfgs":
            group["weight_decay"] = weight_decay
    return groups


@dataclass
class _Loop:
    """The epochs of one :func:`fit` call: what every epoch uses, and what it carries to the next
    (the history and the best epoch so far), which is also what a resumed run restores."""

    module: nn.Module
    forward: Callable[[Any], Any]
    loss: WeightedLoss
    opt: torch.optim.Optimizer
    scheduler: Any
    schedule: str
    stop: StopRule | None
    guard: DivergenceGuard
    counts: Callable[[Any], Mapping[str, float]] | None
    metrics: Callable[[], Metrics] | None
    epoch_values: Callable[[], Mapping[str, float]] | None
    checkpoint: Callable[[FitCheckpoint], None] | None
    callbacks: Sequence[Callback]
    dist: Distributed | None
    generator: torch.Generator
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_value: float | None = None
    best_state: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        self.weights = dict(self.loss.weights)
        self.trained = [p for group in self.opt.param_groups for p in group["params"]]

    def restore(self, resume: Mapping[str, Any]) -> int:
        """Loads a :meth:`state` into the module, the optimiser, the schedule, the stopping rule,
        the generators and the history; returns the first epoch still to run."""
        self.module.load_state_dict(resume["module"])
        self.opt.load_state_dict(resume["optimizer"])
        if self.scheduler is not None and resume.get("scheduler"):
            self.scheduler.load_state_dict(resume["scheduler"])
        if self.stop is not None and resume.get("stop"):
            self.stop.load_state_dict(resume["stop"])
        self.generator.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])
        self.history = [dict(row) for row in resume["history"]]
        self.best_epoch, self.best_value = int(resume["best_epoch"]), resume["best_value"]
        self.best_state = dict(resume["best_state"]) if resume.get("best_state") is not None else None
        return int(resume["epoch"]) + 1

    def state(self, epoch: int) -> dict[str, Any]:
        """The full resume state after ``epoch`` (:attr:`FitCheckpoint.state`)."""
        return {
            "epoch": epoch,
            "module": _clone_state(self.module),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "stop": self.stop.state_dict() if self.stop is not None else {},
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": [dict(row) for row in self.history],
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "best_state": self.best_state,
        }

    def run_epoch(
        self,
        epoch: int,
        epochs: int,
        train_batches: Callable[[torch.Generator], Iterable[Any]],
        val_batches: Callable[[], Iterable[Any]] | None,
        flag: Interrupt,
    ) -> tuple[str, str] | None:
        """Trains one epoch, validates and records it; returns ``(reason, detail)`` when the run
        ends here (diverged, stopped early or interrupted), else ``None``."""
        began = time.perf_counter()
        lr = float(self.opt.param_groups[0]["lr"])
        batches = self._epoch_batches(train_batches, epoch)
        emit(self.callbacks, EpochStarted(epoch, epochs, len(batches), lr))
        mean, acc, interrupted = self._train_pass(epoch, batches, flag)
        if interrupted:
            return INTERRUPTED, stop_detail(flag)
        train = mean.summary(self.weights)
        row, shown, val = self._measure(epoch, lr, train, acc, val_batches)
        monitored = (val or train).total
        why, is_best, stopping = self._judge(epoch, monitored)
        row["seconds"] = time.perf_counter() - began
        self.history.append(row)
        if self.checkpoint is not None and why is None:
            self.checkpoint(FitCheckpoint(epoch, is_best, dict(row), lambda e=epoch: self.state(e)))
        emit(
            self.callbacks,
            EpochEnded(epoch, epochs, train, val, shown, self.weights, is_best, lr, row["seconds"]),
        )
        if why is not None:
            return DIVERGED, f"{why} (epoch {epoch})"
        if stopping:
            assert self.stop is not None
            watched = "validation" if val is not None else "training"
            return STOPPED, f"{watched} {self.stop.reason} (epoch {epoch})"
        if _requested(flag, self.dist):  # Ctrl-C during validation or the checkpoint
            return INTERRUPTED, stop_detail(flag)
        return None

    def _epoch_batches(
        self, train_batches: Callable[[torch.Generator], Iterable[Any]], epoch: int
    ) -> Sequence[Any]:
        """The epoch's training batches (listed unless they have a ``len()``), the same number on
        every rank of a distributed run."""
        batches = train_batches(self.generator)
        if not hasattr(batches, "__len__"):
            batches = list(batches)
        if self.dist is not None and len(set(self.dist.all_gather_object(len(batches)))) > 1:
            raise RuntimeError(
                f"the ranks have different numbers of batches in epoch {epoch}: "
                "train_batches must split every global batch across the ranks"
            )
        return batches  # type: ignore[return-value]

    def _train_pass(
        self, epoch: int, batches: Sequence[Any], flag: Interrupt
    ) -> tuple[_Mean, Metrics | None, bool]:
        """One optimiser step per batch; returns the terms' running mean, the training metrics'
        accumulator and whether a stop was asked for (the pass then ends after that step)."""
        self.module.train()
        mean = _Mean(self.loss.names)
        acc = self.metrics() if self.metrics is not None else None
        for index, batch in enumerate(batches, start=1):
            outputs, report = self._step(epoch, index, batch, flag)
            if self.dist is not None:
                mean.add(report.raw, report.counts)
            else:
                mean.add(_batch_raw(report), self.counts(batch) if self.counts is not None else None)
            if acc is not None:
                with torch.no_grad():
                    acc.update(_detach(outputs), batch)
            emit(self.callbacks, BatchProgress(epoch, index, len(batches), mean.summary(self.weights)))
            # Ctrl-C: stop after this step; the unfinished epoch is not recorded (a resumed run
            # repeats it). Under torchrun the ranks agree in the step's own all-reduce.
            if report.stop if self.dist is not None else flag.requested:
                return mean, acc, True
        return mean, acc, False

    def _step(self, epoch: int, index: int, batch: Any, flag: Interrupt) -> tuple[Any, Any]:
        """One optimiser step on one batch, through a closure so L-BFGS works too; returns the
        outputs and the loss report (in a distributed run, the step's all-reduced terms)."""
        captured: list[tuple[Any, Any]] = []

        def closure() -> Tensor:
            self.opt.zero_grad(set_to_none=True)
            outputs = self.forward(batch)
            if self.dist is not None:
                return _distributed_closure(
                    self.dist,
                    self.loss,
                    self.weights,
                    outputs,
                    batch,
                    self.counts,
                    self.trained,
                    captured,
                    f"epoch {epoch}, batch {index}",
                    flag.requested,
                )
            report = self.loss(outputs, batch)
            if not torch.isfinite(report.total.detach()):
                raise _Diverged(
                    f"the training loss became {float(report.total.detach()):g} "
                    f"(epoch {epoch}, batch {index})"
                )
            report.total.backward()
            captured.append((outputs, report))
            return report.total

        self.opt.step(closure)
        return captured[0]

    def _measure(
        self,
        epoch: int,
        lr: float,
        train: LossSummary,
        acc: Metrics | None,
        val_batches: Callable[[], Iterable[Any]] | None,
    ) -> tuple[dict[str, float], dict[str, float], LossSummary | None]:
        """The epoch's history row (without its ``seconds``), the metrics and extra values shown in
        :class:`EpochEnded`, and the validation pass's terms (``None`` without validation)."""
        row: dict[str, float] = {"epoch": epoch, "lr": lr}
        row.update(_prefixed("loss", train))
        shown = dict(_compute(acc, self.dist))  # the metrics and extra values, for EpochEnded
        row.update(shown)
        val = None
        if val_batches is not None:
            val, val_metrics = evaluate(
                self.module,
                self.forward,
                self.loss,
                val_batches(),
                counts=self.counts,
                metrics=self.metrics,
                dist=self.dist,
            )
            row.update(_prefixed("val_loss", val))
            val_shown = {f"val_{k}": v for k, v in val_metrics.items()}
            row.update(val_shown)
            shown.update(val_shown)
        if self.epoch_values is not None:
            extra = {k: float(v) for k, v in self.epoch_values().items()}
            row.update(extra)
            shown.update(extra)
        return row, shown, val

    def _judge(self, epoch: int, monitored: float) -> tuple[str | None, bool, bool]:
        """Decides on the epoch's monitored total: why the run diverged (or ``None``), whether the
        epoch is the best so far (its weights are then kept), and whether to stop early. The
        schedule and the stopping rule only see the total of an epoch that did not diverge."""
        why = self.guard.check(monitored, self.best_value)
        is_best = (
            why is None
            and math.isfinite(monitored)
            and (self.best_value is None or monitored < self.best_value)
        )
        if is_best:
            self.best_epoch, self.best_value = epoch, monitored
            self.best_state = _clone_state(self.module)
        if self.scheduler is not None and why is None:
            self.scheduler.step(monitored) if self.schedule == "plateau" else self.scheduler.step()
        stopping = self.stop.update(monitored) if self.stop is not None and why is None else False
        return why, is_best, stopping

    def finish(self, reason: str, detail: str) -> FitResult:
        """Puts the best epoch's weights back into the module and reports the run."""
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        if reason == DIVERGED:
            detail += f"; kept the weights of epoch {self.best_epoch}" if self.best_epoch else ""
        epochs_run = int(self.history[-1]["epoch"]) if self.history else 0
        emit(self.callbacks, FitEnded(reason, detail, epochs_run, self.best_epoch))
        return FitResult(self.history, self.best_epoch, self.best_value, reason, detail, epochs_run)


def fit(
    module: nn.Module,
    forward: Callable[[Any], Any],
    loss: WeightedLoss,
    train_batches: Callable[[torch.Generator], Iterable[Any]],
    val_batches: Callable[[], Iterable[Any]] | None = None,
    *,
    epochs: int,
    optimizer: OptimizerSpec | str = "adam",
    params: Iterable[Tensor] | Iterable[dict[str, Any]] | None = None,
    default_lr: Mapping[str, float] = TRAIN_LR,
    weight_decay: float = 0.0,
    schedule: str = "none",
    plateau_factor: float = 0.1,
    plateau_patience: int = 10,
    stop: StopRule | None = None,
    guard: DivergenceGuard | None = None,
    counts: Callable[[Any], Mapping[str, float]] | None = None,
    metrics: Callable[[], Metrics] | None = None,
    epoch_values: Callable[[], Mapping[str, float]] | None = None,
    seed: int = 0,
    resume: Mapping[str, Any] | None = None,
    checkpoint: Callable[[FitCheckpoint], None] | None = None,
    callbacks: Sequence[Callback] = (),
    dist: Distributed | None = None,
    interrupt: Interrupt | None = None,
) -> FitResult:
    """Trains ``module`` for up to ``epochs`` epochs and leaves the best epoch's weights in it.

    Each epoch: one optimiser step per training batch (``loss(forward(batch), batch).total``,
    through a closure so L-BFGS works too), then a validation pass (:func:`evaluate`). The monitored
    total is the validation total (the training total without validation); the lowest one marks the
    best epoch. After the epoch the schedule steps, the stopping rule sees the monitored total, the
    ``checkpoint`` function is called and :class:`~styleforge.engine.events.EpochEnded` is emitted.

    A batch whose loss is NaN/inf stops the run before the optimiser applies it, and a monitored
    total the guard calls divergent stops it after the epoch (``diverged``). Ctrl-C or SIGTERM
    (:func:`~styleforge.engine.interrupt.stop_signals`, as in
    :func:`~styleforge.engine.optimize.optimise_pixels`) stops it after the current step
    (``interrupted``): the unfinished epoch is not recorded, so a resumed run repeats it. In every
    case the best epoch's weights are put back into ``module``. The stop reasons are those of
    :mod:`styleforge.engine.outcome`.

    Args:
        module: Everything trained (its ``train()``/``eval()`` mode is switched per pass).
        forward: Batch → outputs.
        loss: Its terms are called as ``term(outputs, batch)``.
        train_batches: Given the run's random generator, the epoch's training batches (shuffle
            and augment with that generator only, so a resumed run draws the same numbers). An
            object with ``len()`` is iterated lazily; any other iterable is listed first.
        val_batches: The validation batches, or ``None``.
        epochs: Planned epochs (>= 1); with ``resume``, the total including those already run.
        optimizer: ``NAME[@LR]`` or a spec (its ``steps`` is ignored).
        params: Tensors or parameter groups to optimise; ``None``: every parameter of ``module``
            that requires a gradient. A group's ``lr_scale`` key multiplies the learning rate.
        default_lr: Learning rate per optimiser when the spec gives none.
        weight_decay: L2 penalty (decoupled for adamw).
        schedule: One of :data:`SCHEDULES`.
        plateau_factor: ``plateau``: factor the learning rate is multiplied by.
        plateau_patience: ``plateau``: epochs without improvement before it is.
        stop: Early stopping on the monitored total (``mode="improvement"``), or ``None``.
        guard: Divergence check (``None``: the default :class:`DivergenceGuard`).
        counts: Batch → each term's weight in the epoch mean (``None``: 1 per batch).
        metrics: Factory of metric accumulators, one per pass; validation names get ``val_``.
        epoch_values: Extra values logged at the end of each epoch (e.g. learned log-variances).
        seed: Seeds the run's generator (shuffling, augmentation).
        resume: A state from :attr:`FitCheckpoint.state` to continue from.
        checkpoint: Called after every epoch.
        callbacks: Receive :class:`EpochStarted`, :class:`BatchProgress`, :class:`EpochEnded`
            and :class:`FitEnded`.
        dist: A distributed run (every rank calls :func:`fit` alike): ``train_batches`` and
            ``val_batches`` give this rank's part of each global batch (the same number of batches
            on every rank); rank *r* backpropagates ``Σ weight × (its count / global count) × term``
            and the gradients are summed over the ranks, so every rank takes the step one process
            would take on the whole batch. Terms must be means over the batch's counted items
            (``counts``; without it, over its ``len``), or affine in such a mean. Metric
            accumulators need an ``all_reduce(reduce)`` method. Events, history and checkpoints
            hold the global values on every rank (the caller lets one rank print and write).
            A Ctrl-C on any rank stops every rank after the same step.
        interrupt: The flag of a :func:`~styleforge.engine.interrupt.stop_signals` the caller holds
            over a longer run, checked after every step; ``None``: this call installs its own for
            its duration.

    Returns:
        A :class:`FitResult`.

    Raises:
        InvalidParameter: ``epochs`` < 1, an unknown optimiser or schedule.
    """
    _check_int("--epochs", epochs, 1)
    spec = parse_optimizer(optimizer)
    groups = _param_groups(module, params, spec, default_lr, weight_decay)
    opt, _ = make_optimizer(spec, groups, default_lr=default_lr, weight_decay=weight_decay)
    loop = _Loop(
        module,
        forward,
        loss,
        opt,
        _make_schedule(schedule, opt, epochs, plateau_factor, plateau_patience),
        schedule,
        stop,
        guard if guard is not None else DivergenceGuard(),
        counts,
        metrics,
        epoch_values,
        checkpoint,
        callbacks,
        dist,
        torch.Generator().manual_seed(int(seed)),
    )
    start = loop.restore(resume) if resume is not None else 1
    reason, detail = COMPLETED, f"ran {epochs} epochs"
    if start > epochs:
        detail = f"the run already finished epoch {start - 1}; ask for more --epochs to continue"
    # Ctrl-C: stop after the current step, keep the best (the caller's flag when it holds one).
    with watch(interrupt) as flag:
        try:
            for epoch in range(start, epochs + 1):
                ended = loop.run_epoch(epoch, epochs, train_batches, val_batches, flag)
                if ended is not None:
                    reason, detail = ended
                    break
        except _Diverged as exc:
            reason, detail = DIVERGED, str(exc)
        except KeyboardInterrupt as exc:  # a second signal, or a caller that kept its own SIGINT handler
            reason, detail = INTERRUPTED, stop_detail(flag, exc)
    return loop.finish(reason, detail)


def _distributed_closure(
    dist: Distributed,
    loss: WeightedLoss,
    weights: Mapping[str, float],
    outputs: Any,
    batch: Any,
    counts: Callable[[Any], Mapping[str, float]] | None,
    trained: Sequence[Tensor],
    captured: list[tuple[Any, Any]],
    where: str,
    stop: bool,
) -> Tensor:
    """One rank's forward/backward of a distributed step; returns the global total (what the
    optimiser sees, the same on every rank) after the gradients were summed over the ranks.
    ``stop``: this rank was asked to stop (its flag travels in the step's all-reduce)."""
    values = {name: term(outputs, batch) for name, term in loss.terms.items()}
    step = reduce_terms(dist, values, batch, counts, stop=stop)
    total = step.total(weights)
    if not step.finite or not math.isfinite(total):
        raise _Diverged(f"the training loss became {total:g} ({where})")
    # This rank's part of the global objective: each term weighted by its weight × this rank's share.
    objective = weighted_total(values, {name: weights[name] * step.shares[name] for name in values})
    if objective.requires_grad:
        objective.backward()
    dist.all_reduce_gradients(trained)
    captured.append((outputs, step))
    return torch.tensor(total, dtype=torch.float64)


def _requested(flag: Interrupt, dist: Distributed | None) -> bool:
    """Whether a stop was asked for: here, or under torchrun on any rank (one all-reduce)."""
    if dist is None:
        return flag.requested
    return dist.all_reduce_floats([1.0 if flag.requested else 0.0])[0] > 0


def _detach(outputs: Any) -> Any:
    if isinstance(outputs, Tensor):
        return outputs.detach()
    if isinstance(outputs, Mapping):
        return {k: _detach(v) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return type(outputs)(_detach(v) for v in outputs)
    return outputs


def _prefixed(prefix: str, summary: LossSummary) -> dict[str, float]:
    row = {prefix: summary.total}
    for name in summary.weighted:
        row[f"{prefix}.{name}"] = summary.weighted[name]
        row[f"{prefix}.{name}.raw"] = summary.raw[name]
    return row


def format_epoch_line(event: EpochEnded, groups: Mapping[str, str] | None = None, digits: int = 4) -> str:
    """The Keras-style line of one epoch.

    ``epoch 12/200 · loss 1.2723 = 1×a 0.0706 + … + 0.7×b 0.8103 · val_loss 1.31 · val <label> x 1.2 …
    · best``. The training total is exactly the sum of ``weight × raw`` of the printed terms
    (:meth:`LossSummary.format` with ``show_weights``). Which metrics are shown is the caller's
    choice (``groups``); they are the validation ones when there is a validation set, else the
    training ones.

    Args:
        event: The epoch.
        groups: Metric-name prefix → label: the metrics ``<prefix>.<name>`` are shown as
            ``<label> <name> <value> …``, one group after the other; ``None``: no metrics.
        digits: Significant digits of the largest weighted term.
    """
    parts = [
        f"epoch {event.epoch}/{event.epochs}",
        f"loss {event.train.format(digits, show_weights=event.weights)}",
    ]
    prefix = ""
    if event.val is not None:
        parts.append(f"val_loss {event.val.total:.{digits}g}")
        prefix = "val_"
    for group, label in (groups or {}).items():
        start = f"{prefix}{group}."
        shown = [f"{k[len(start) :]} {v:.3g}" for k, v in event.metrics.items() if k.startswith(start)]
        if shown:
            parts.append(f"{'val ' if prefix else ''}{label} " + " ".join(shown))
    if event.is_best:
        parts.append("best")
    return " · ".join(parts)
