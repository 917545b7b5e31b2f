"""The optimiser tools shared by both loops: factory, chains, stopping rule, divergence guard.

:func:`optimise_pixels` runs a chain of optimisers over an image; the attribute trainer uses the same
factory (:func:`make_optimizer`), stopping rule (:class:`StopRule`) and divergence check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidParameter, choice_error
from ..parsing import OPTIMIZERS, OptimizerSpec, parse_optimizer
from .events import Callback, Progress, StageEnded, StageStarted, emit
from .interrupt import Interrupt, stop_detail, watch
from .lbfgs import BoxLBFGS
from .outcome import COMPLETED, DIVERGED, INTERRUPTED, STOPPED
from .terms import LossReport, LossSummary

__all__ = [
    "OPTIMIZERS",
    "PIXEL_LR",
    "LBFGS_HISTORY",
    "GRADIENT_NORMALISED",
    "OptimizerSpec",
    "parse_optimizer",
    "make_optimizer",
    "StopRule",
    "DivergenceGuard",
    "HistoryEntry",
    "PixelResult",
    "optimise_pixels",
]

#: Default learning rates for optimising pixels in [0, 1] (see docs/transfer.md for where each
#: comes from). L-BFGS's 1.0 is the full quasi-Newton step, PyTorch's default and that of every
#: implementation styleforge compares itself with (PyTorch's tutorial, jcjohnson/neural-style).
PIXEL_LR: dict[str, float] = {
    "lbfgs": 1.0,
    "adam": 0.02,
    "adamw": 0.02,
    "sgd": 0.003,
    "momentum": 0.001,
    "nesterov": 0.001,
    "rmsprop": 0.005,
    "adagrad": 0.05,
    "adadelta": 1.0,
}

assert tuple(PIXEL_LR) == OPTIMIZERS, "a pixel learning rate for every optimiser"

#: Curvature pairs L-BFGS remembers (jcjohnson/neural-style's and PyTorch's default is 100).
LBFGS_HISTORY = 100

#: Optimisers whose step size scales with the gradient's magnitude. In pixel optimisation that
#: magnitude depends on the network's weights and the loss weights (it differs by orders of
#: magnitude between ImageNet and random VGG weights), so no default learning rate could work for
#: all. For these, :func:`optimise_pixels` divides the gradient by its mean absolute value before
#: each step (as DeepDream-style pixel optimisers do): the learning rate is then in pixel units.
#: Adam, RMSprop, Adagrad and L-BFGS are already invariant to the gradient's scale.
GRADIENT_NORMALISED: frozenset[str] = frozenset({"sgd", "momentum", "nesterov", "adadelta"})


def make_optimizer(
    spec: OptimizerSpec,
    params: Iterable[Tensor] | Iterable[dict[str, Any]],
    *,
    default_lr: Mapping[str, float] = PIXEL_LR,
    weight_decay: float = 0.0,
    bounds: tuple[float, float] | None = None,
) -> tuple[torch.optim.Optimizer, float]:
    """Builds the optimiser a spec names.

    ``momentum`` is SGD with momentum 0.9, ``nesterov`` the same with Nesterov's correction. L-BFGS
    takes one iteration (one function evaluation) per ``step()`` call, so every optimiser advances
    one iteration per call and iteration counts compare across optimisers, as jcjohnson/neural-style
    counts them. With
    ``bounds`` (pixels in a box) L-BFGS is :class:`~styleforge.engine.lbfgs.BoxLBFGS`; without
    (network weights) it is ``torch.optim.LBFGS``.

    Args:
        spec: The stage.
        params: Tensors or parameter groups to optimise.
        default_lr: Learning rate per name when ``spec.lr`` is ``None``.
        weight_decay: L2 penalty (decoupled for adamw). Ignored by L-BFGS.

    Returns:
        The optimiser and the learning rate it uses.
    """
    lr = spec.lr if spec.lr is not None else default_lr[spec.name]
    params = list(params)
    wd = {"weight_decay": weight_decay}
    builders: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "lbfgs": lambda: (
            BoxLBFGS(params, lr=lr, history_size=LBFGS_HISTORY, bounds=bounds)
            if bounds is not None
            else torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=LBFGS_HISTORY)
        ),
        "adam": lambda: torch.optim.Adam(params, lr=lr, **wd),
        "adamw": lambda: torch.optim.AdamW(params, lr=lr, **wd),
        "sgd": lambda: torch.optim.SGD(params, lr=lr, **wd),
        "momentum": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9, **wd),
        "nesterov": lambda: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, **wd),
        "rmsprop": lambda: torch.optim.RMSprop(params, lr=lr, **wd),
        "adagrad": lambda: torch.optim.Adagrad(params, lr=lr, **wd),
        "adadelta": lambda: torch.optim.Adadelta(params, lr=lr, **wd),
    }
    return builders[spec.name](), lr


@dataclass
class StopRule:
    """Early stopping on a loss's relative change, as a pure, resumable decision.

    The rule of Popescu Andrei-George's early-stopping experiment (2023): wait until the change has
    stayed negligible for a number of consecutive checks, since a steeper fall may still come. Stop when
    the relative change ``|v - previous| / |previous|`` stays below ``delta`` for ``patience``
    consecutive checks (``mode="change"``), or when the value has not improved on the best by more than
    ``delta`` (relative) for ``patience`` checks (``mode="improvement"``, the early-stopping form for
    validation losses, which also stops a loss that climbs steadily).

    Attributes:
        delta: Relative threshold, ≥ 0.
        patience: Consecutive checks required, ≥ 1.
        mode: ``change`` or ``improvement``.
    """

    delta: float
    patience: int
    mode: str = "change"
    previous: float | None = None
    best: float | None = None
    count: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        if (
            isinstance(self.delta, bool)
            or not isinstance(self.delta, (int, float))
            or not (math.isfinite(self.delta) and self.delta >= 0)
        ):
            raise InvalidParameter("--stop-delta", self.delta, "a finite number >= 0")
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1:
            raise InvalidParameter("--patience", self.patience, "a whole number >= 1")
        if self.mode not in ("change", "improvement"):
            raise choice_error("mode", self.mode, ("change", "improvement"))

    def update(self, value: float) -> bool:
        """Records one checked value; returns ``True`` when the run should stop (see :attr:`reason`)."""
        reference = self.previous if self.mode == "change" else self.best
        if reference is not None and math.isfinite(value):
            relative = abs(value - reference) / max(abs(reference), 1e-30)
            if self.mode == "change":
                still = relative < self.delta
            else:
                still = not value < reference - self.delta * abs(reference)
            self.count = self.count + 1 if still else 0
        self.previous = value
        if math.isfinite(value) and (self.best is None or value < self.best):
            self.best = value
        if self.count >= self.patience:
            word = "changed" if self.mode == "change" else "improved"
            self.reason = f"loss {word} by less than {self.delta:g} (relative) for {self.patience} checks"
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """The rule's state, to resume a stopped run exactly."""
        return {"previous": self.previous, "best": self.best, "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict` output."""
        self.previous, self.best, self.count = state["previous"], state["best"], int(state["count"])


@dataclass(frozen=True)
class DivergenceGuard:
    """Decides that a run diverged: a NaN/inf total, or a total above ``factor`` × the best so far.

    Attributes:
        factor: Blow-up ratio; ``inf`` disables the ratio check (NaN/inf still stop).
    """

    factor: float = 10.0

    def check(self, total: float, best: float | None) -> str | None:
        """Returns a sentence saying why the run diverged, or ``None``."""
        if not math.isfinite(total):
            return f"the loss became {total}"
        if best is not None and best > 0 and total > self.factor * best:
            return f"the loss {total:.4g} exceeded {self.factor:g}x the best {best:.4g}"
        return None


@dataclass(frozen=True)
class HistoryEntry:
    """One row of a loss history."""

    iteration: int
    stage: int
    optimizer: str
    summary: LossSummary

    def as_row(self) -> dict[str, float | int | str]:
        return {
            "iteration": self.iteration,
            "stage": self.stage,
            "optimizer": self.optimizer,
            **self.summary.as_row(),
        }


@dataclass
class PixelResult:
    """What :func:`optimise_pixels` found.

    Attributes:
        best: The lowest-loss iterate, (1, 3, H, W) in [0, 1].
        last: The final iterate, same shape.
        best_summary: Loss values at ``best`` (``None`` if nothing was evaluated).
        best_iteration: Iteration at which ``best`` was evaluated.
        history: One entry per evaluation.
        stop_reason: One of :data:`~styleforge.engine.outcome.STOP_REASONS`.
        stop_detail: A sentence for the user.
    """

    best: Tensor
    last: Tensor
    best_summary: LossSummary | None
    best_iteration: int
    history: list[HistoryEntry] = field(default_factory=list)
    stop_reason: str = COMPLETED
    stop_detail: str = ""


@dataclass
class _PixelRun:
    """The iterations of one :func:`optimise_pixels` call: the image being optimised, the best one so
    far and the running count of iterations across the stages of the chain."""

    x: Tensor
    best: Tensor
    result: PixelResult
    objective: Callable[[Tensor], LossReport]
    stop: StopRule | None
    guard: DivergenceGuard
    callbacks: Sequence[Callback]
    bounds: tuple[float, float]
    total_iterations: int
    iteration: int = 0

    def run_stage(
        self, index: int, spec: OptimizerSpec, iterations: int, optimizer: Any, flag: Interrupt
    ) -> tuple[str, str, int]:
        """Runs up to ``iterations`` iterations of one stage; returns why it ended
        (:mod:`~styleforge.engine.outcome`'s reasons), a sentence, and the iterations it ran."""
        done = 0
        latest: list[LossSummary] = []
        closure = self._closure(index, spec, optimizer, latest)
        try:
            for _ in range(iterations):
                if flag.requested:
                    return INTERRUPTED, stop_detail(flag), done
                latest.clear()
                optimizer.step(closure)
                self.iteration += 1
                done += 1
                with torch.no_grad():
                    self.x.clamp_(*self.bounds)
                ended = self._check(latest[-1].total if latest else math.nan, optimizer)
                if ended is not None:
                    return (*ended, done)
        except KeyboardInterrupt as exc:  # a second signal, or a caller that kept its own SIGINT handler
            return INTERRUPTED, stop_detail(flag, exc), done
        return COMPLETED, f"ran {iterations} iterations", done

    def _closure(
        self, index: int, spec: OptimizerSpec, optimizer: Any, latest: list[LossSummary]
    ) -> Callable[[], Tensor]:
        """The optimiser's closure: evaluates the objective and its gradient (divided by its mean
        absolute value for a :data:`GRADIENT_NORMALISED` optimiser), keeps the best image, records
        the history and emits :class:`Progress`; ``latest`` collects each evaluation's summary."""
        x, result = self.x, self.result

        def closure() -> Tensor:
            optimizer.zero_grad(set_to_none=True)
            report = self.objective(x)
            report.total.backward()
            if x.grad is not None and spec.name in GRADIENT_NORMALISED:
                x.grad.div_(x.grad.abs().mean().clamp_min(1e-30))
            summary = report.summary()
            latest.append(summary)
            total = summary.total
            is_best = math.isfinite(total) and (
                result.best_summary is None or total < result.best_summary.total
            )
            if is_best:
                self.best.copy_(x.detach())
                result.best_summary, result.best_iteration = summary, self.iteration + 1
            result.history.append(HistoryEntry(self.iteration + 1, index, spec.name, summary))
            emit(
                self.callbacks,
                Progress(self.iteration + 1, self.total_iterations, index, summary, x.detach(), is_best),
            )
            return report.total

        return closure

    def _check(self, total: float, optimizer: Any) -> tuple[str, str] | None:
        """After an iteration: ``(reason, detail)`` when the guard sees divergence (the best image
        is then put back) or the stopping rule fires, else ``None``."""
        # A proposal that L-BFGS's line search rejected is not where the run is: it steps back.
        rejected = getattr(optimizer, "rejected", False)
        best_summary = self.result.best_summary
        why = None if rejected else self.guard.check(total, best_summary.total if best_summary else None)
        if why is not None:
            with torch.no_grad():
                self.x.copy_(self.best)
            return DIVERGED, f"{why}; restored the best image (iteration {self.result.best_iteration})"
        if self.stop is not None and not rejected and self.stop.update(total):
            return STOPPED, self.stop.reason
        return None


def optimise_pixels(
    init: Tensor,
    objective: Callable[[Tensor], LossReport],
    chain: Sequence[OptimizerSpec],
    *,
    iterations: int,
    stop: StopRule | None = None,
    guard: DivergenceGuard = DivergenceGuard(),
    callbacks: Sequence[Callback] = (),
    default_lr: Mapping[str, float] = PIXEL_LR,
    bounds: tuple[float, float] = (0.0, 1.0),
    interrupt: Interrupt | None = None,
) -> PixelResult:
    """Optimises an image's pixels with a chain of optimisers.

    Each stage runs ``spec.steps`` iterations (``iterations`` when ``None``). The gradient of a
    :data:`GRADIENT_NORMALISED` optimiser is divided by its mean absolute value before each step.
    L-BFGS keeps its steps within ``bounds`` itself (:class:`~styleforge.engine.lbfgs.BoxLBFGS`);
    after every other optimiser's step the pixels are clamped to ``bounds``. The lowest-loss
    iterate is kept. A stage ends early when the stopping rule fires (the run ends: ``stopped``) or
    the guard sees divergence (the best image is restored and the run ends: ``diverged``). Ctrl-C
    ends the run with ``interrupted``, keeping the best image. The stopping rule spans the whole
    chain.

    Args:
        init: Starting image, (1, 3, H, W) in ``bounds``; not modified.
        objective: Maps the image to a :class:`LossReport`.
        chain: Stages, run in order.
        iterations: Iterations of a stage whose ``steps`` is ``None``; ≥ 1.
        stop: Optional stopping rule, checked on the total after every iteration.
        guard: Divergence check.
        callbacks: Receive :class:`StageStarted`, :class:`Progress` and :class:`StageEnded`.
        default_lr: Learning rate per optimiser when a stage gives none.
        bounds: Pixel range to clamp to.
        interrupt: The flag of a :func:`~styleforge.engine.interrupt.stop_signals` the caller holds
            over a longer run (a coarse-to-fine pyramid), checked before each step; ``None``: this
            call installs its own for its duration.
    """
    if int(iterations) != iterations or iterations < 1:
        raise InvalidParameter("--iterations", iterations, "a whole number >= 1")
    if not chain:
        raise InvalidParameter("--optimizer", "(none)", "at least one optimizer")
    plan = [spec.steps if spec.steps is not None else iterations for spec in chain]
    x = init.detach().clone().requires_grad_(True)
    best = init.detach().clone()
    result = PixelResult(best=best, last=x.detach(), best_summary=None, best_iteration=0)
    run = _PixelRun(x, best, result, objective, stop, guard, callbacks, bounds, sum(plan))

    # Ctrl-C or SIGTERM: stop after the current step, keep the best (the caller's flag when it holds one)
    with watch(interrupt) as flag:
        for index, (spec, stage_iterations) in enumerate(zip(chain, plan)):
            optimizer, lr = make_optimizer(spec, [x], default_lr=default_lr, bounds=bounds)
            emit(
                callbacks,
                StageStarted(index, spec.name, stage_iterations, lr, run.iteration + 1, run.total_iterations),
            )
            reason, detail, done = run.run_stage(index, spec, stage_iterations, optimizer, flag)
            emit(callbacks, StageEnded(index, reason, detail, done))
            if reason != COMPLETED:
                result.stop_reason, result.stop_detail = reason, detail
                break

    result.last = x.detach().clone()
    return result
