"""Tests of styleforge.engine.optimize: optimizer specs and factory, stopping rule, divergence guard,
and the pixel-optimisation loop on a small quadratic objective."""

from __future__ import annotations

import math

import pytest
import torch

from styleforge.engine import (
    OPTIMIZERS,
    PIXEL_LR,
    DivergenceGuard,
    OptimizerSpec,
    Progress,
    StageEnded,
    StageStarted,
    StopRule,
    WeightedLoss,
    make_optimizer,
    optimise_pixels,
    parse_optimizer,
)
from styleforge.errors import InvalidParameter

# --- parse_optimizer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("adam", OptimizerSpec("adam", None, None)),
        ("adam:200", OptimizerSpec("adam", 200, None)),
        ("adam:200@0.05", OptimizerSpec("adam", 200, 0.05)),
        ("lbfgs@0.8", OptimizerSpec("lbfgs", None, 0.8)),
        ("LBFGS", OptimizerSpec("lbfgs", None, None)),
        ("Adam:3@1e-2", OptimizerSpec("adam", 3, 0.01)),
        ("  nesterov:7  ", OptimizerSpec("nesterov", 7, None)),
    ],
)
def test_parse_optimizer(text: str, expected: OptimizerSpec) -> None:
    assert parse_optimizer(text) == expected


def test_parse_optimizer_passes_specs_through_and_round_trips() -> None:
    spec = OptimizerSpec("adam", 5, 0.1)
    assert parse_optimizer(spec) is spec
    assert str(spec) == "adam:5@0.1"
    assert parse_optimizer(str(spec)) == spec
    assert str(OptimizerSpec("lbfgs")) == "lbfgs"


def test_parse_optimizer_unknown_name_lists_valid_with_suggestion() -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_optimizer("adma:10")
    message = str(info.value)
    assert message.startswith("--optimizer:")
    assert "adma" in message and "did you mean 'adam'" in message
    for name in OPTIMIZERS:
        assert name in message


def test_parse_optimizer_uses_param_name() -> None:
    with pytest.raises(InvalidParameter, match="^--stage:"):
        parse_optimizer("nope", param="--stage")


@pytest.mark.parametrize("text", ["adam:0", "adam:-1", "adam:abc", "adam:", "adam:2.5"])
def test_parse_optimizer_bad_steps(text: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_optimizer(text)
    assert "--optimizer" in str(info.value) and repr(text) in str(info.value) and "steps" in str(info.value)


@pytest.mark.parametrize("text", ["adam@0", "adam@nan", "adam@abc", "adam@-0.1", "adam@inf", "adam:5@"])
def test_parse_optimizer_bad_lr(text: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_optimizer(text)
    assert "--optimizer" in str(info.value) and "learning rate" in str(info.value)


@pytest.mark.parametrize("text", ["", "1adam", "ad-am", ":5"])
def test_parse_optimizer_malformed(text: str) -> None:
    with pytest.raises(InvalidParameter, match="--optimizer"):
        parse_optimizer(text)


# --- make_optimizer ------------------------------------------------------------------------------

_CLASSES = {
    "lbfgs": torch.optim.LBFGS,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "momentum": torch.optim.SGD,
    "nesterov": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "adadelta": torch.optim.Adadelta,
}


def test_every_optimizer_has_a_class_and_default_lr() -> None:
    assert set(OPTIMIZERS) == set(_CLASSES) == set(PIXEL_LR)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_make_optimizer_builds_the_right_class(name: str) -> None:
    p = torch.zeros(3, requires_grad=True)
    optimizer, lr = make_optimizer(OptimizerSpec(name), [p])
    assert type(optimizer) is _CLASSES[name]
    assert lr == PIXEL_LR[name]
    assert optimizer.param_groups[0]["lr"] == lr
    optimizer2, lr2 = make_optimizer(OptimizerSpec(name, lr=0.123), [p])
    assert lr2 == 0.123 and optimizer2.param_groups[0]["lr"] == 0.123


def test_make_optimizer_momentum_flags() -> None:
    p = torch.zeros(3, requires_grad=True)
    sgd = make_optimizer(OptimizerSpec("sgd"), [p])[0].param_groups[0]
    momentum = make_optimizer(OptimizerSpec("momentum"), [p])[0].param_groups[0]
    nesterov = make_optimizer(OptimizerSpec("nesterov"), [p])[0].param_groups[0]
    assert sgd["momentum"] == 0 and not sgd["nesterov"]
    assert momentum["momentum"] == 0.9 and not momentum["nesterov"]
    assert nesterov["momentum"] == 0.9 and nesterov["nesterov"]


def test_make_optimizer_weight_decay_and_default_lr_table() -> None:
    p = torch.zeros(3, requires_grad=True)
    optimizer, lr = make_optimizer(OptimizerSpec("adamw"), [p], default_lr={"adamw": 0.5}, weight_decay=0.01)
    assert lr == 0.5 and optimizer.param_groups[0]["weight_decay"] == 0.01


def test_lbfgs_does_one_evaluation_per_step() -> None:
    p = torch.tensor([3.0, -2.0], requires_grad=True)
    optimizer, _ = make_optimizer(OptimizerSpec("lbfgs"), [p])
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        optimizer.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return loss

    for _ in range(4):
        optimizer.step(closure)
    assert len(calls) == 4


# --- StopRule ------------------------------------------------------------------------------------


@pytest.mark.parametrize("patience", [1, 2, 5])
def test_stop_rule_stops_exactly_after_patience_checks(patience: int) -> None:
    rule = StopRule(delta=1e-3, patience=patience)
    # The first value only sets the reference; every later equal value is one "still" check.
    decisions = [rule.update(10.0) for _ in range(patience + 1)]
    assert decisions == [False] * patience + [True]
    assert rule.count == patience
    assert "1e-03" in rule.reason or "0.001" in rule.reason
    assert str(patience) in rule.reason


def test_stop_rule_big_change_resets_the_count() -> None:
    rule = StopRule(delta=0.01, patience=3)
    assert not rule.update(100.0)
    assert not rule.update(100.0)  # count 1
    assert not rule.update(100.0)  # count 2
    assert not rule.update(50.0)  # -50 %: reset
    assert rule.count == 0
    assert not rule.update(50.0)  # 1
    assert not rule.update(50.2)  # 0.4 % change: 2
    assert rule.update(50.2)  # 3 -> stop


def test_stop_rule_change_mode_keeps_going_while_the_loss_moves() -> None:
    rule = StopRule(delta=0.01, patience=2)
    value = 1000.0
    for _ in range(50):
        value *= 0.9  # 10 % decrease every check
        assert not rule.update(value)


def test_stop_rule_change_mode_is_relative() -> None:
    # A change of 0.5 is tiny relative to 1e6 and large relative to 1.
    big = StopRule(delta=1e-3, patience=1)
    big.update(1e6)
    assert big.update(1e6 + 0.5)
    small = StopRule(delta=1e-3, patience=1)
    small.update(1.0)
    assert not small.update(1.5)


def test_stop_rule_improvement_mode_stops_on_a_rising_loss() -> None:
    rule = StopRule(delta=0.0, patience=3, mode="improvement")
    values = [1.0, 1.1, 1.2, 1.3, 1.4]
    decisions = [rule.update(v) for v in values]
    assert decisions == [False, False, False, True, True][: len(values)]
    assert rule.best == 1.0
    assert "improved" in rule.reason


def test_stop_rule_change_mode_does_not_stop_a_steadily_rising_loss() -> None:
    rule = StopRule(delta=0.01, patience=3)
    assert not any(rule.update(1.0 * 1.1**i) for i in range(20))


def test_stop_rule_improvement_resets_on_a_new_best() -> None:
    rule = StopRule(delta=0.01, patience=2, mode="improvement")
    assert not rule.update(10.0)
    assert not rule.update(10.5)  # 1
    assert not rule.update(5.0)  # new best beyond delta: reset
    assert rule.count == 0
    assert not rule.update(4.99)  # 0.2 % better: not enough, 1
    assert rule.update(6.0)  # 2 -> stop


def test_stop_rule_ignores_non_finite_values_for_best() -> None:
    rule = StopRule(delta=0.01, patience=5, mode="improvement")
    rule.update(2.0)
    rule.update(float("nan"))
    assert rule.best == 2.0


def test_stop_rule_state_dict_round_trip_resumes_identically() -> None:
    series = [10.0, 9.0, 8.9, 8.89, 8.889, 8.8889, 8.88889, 8.888889, 8.8888889, 8.88888889]
    for mode in ("change", "improvement"):
        reference = StopRule(delta=0.005, patience=3, mode=mode)
        expected = [reference.update(v) for v in series]
        for cut in range(len(series)):
            first = StopRule(delta=0.005, patience=3, mode=mode)
            decisions = [first.update(v) for v in series[:cut]]
            state = first.state_dict()
            resumed = StopRule(delta=0.005, patience=3, mode=mode)
            resumed.load_state_dict(dict(state))
            assert resumed.state_dict() == state
            decisions += [resumed.update(v) for v in series[cut:]]
            assert decisions == expected, (mode, cut)
        assert any(expected)  # the series does plateau


@pytest.mark.parametrize("delta", [-0.1, float("nan"), float("inf")])
def test_stop_rule_invalid_delta(delta: float) -> None:
    with pytest.raises(InvalidParameter, match="--stop-delta"):
        StopRule(delta=delta, patience=3)


@pytest.mark.parametrize("patience", [0, -1, 1.5])
def test_stop_rule_invalid_patience(patience: float) -> None:
    with pytest.raises(InvalidParameter, match="--patience"):
        StopRule(delta=0.01, patience=patience)  # type: ignore[arg-type]


def test_stop_rule_invalid_mode() -> None:
    with pytest.raises(InvalidParameter, match="improvement"):
        StopRule(delta=0.01, patience=3, mode="improve")


# --- DivergenceGuard -----------------------------------------------------------------------------


def test_divergence_guard() -> None:
    guard = DivergenceGuard()
    assert guard.check(float("nan"), 1.0) is not None and "nan" in guard.check(float("nan"), 1.0)
    assert guard.check(float("inf"), None) is not None
    assert guard.check(float("-inf"), 1.0) is not None
    assert guard.check(10.5, 1.0) is not None and "10x" in guard.check(10.5, 1.0)
    assert guard.check(9.9, 1.0) is None
    assert guard.check(10.0, 1.0) is None
    assert guard.check(1e30, None) is None
    assert guard.check(5.0, 0.0) is None  # no ratio against a zero best


def test_divergence_guard_factor() -> None:
    assert DivergenceGuard(2.0).check(2.5, 1.0) is not None
    assert DivergenceGuard(2.0).check(1.9, 1.0) is None
    assert DivergenceGuard(math.inf).check(1e300, 1e-300) is None
    assert DivergenceGuard(math.inf).check(float("nan"), 1.0) is not None


# --- optimise_pixels -----------------------------------------------------------------------------


def _target() -> torch.Tensor:
    return torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _init() -> torch.Tensor:
    return torch.full((1, 3, 8, 8), 0.5)


def _quadratic(target: torch.Tensor, **weights: float) -> WeightedLoss:
    return WeightedLoss(
        {"mse": lambda x: (x - target).pow(2).mean(), "l2": lambda x: x.pow(2).mean()},
        {"mse": 1.0, "l2": 0.0, **weights},
    )


def test_optimise_pixels_decreases_a_quadratic() -> None:
    target = _target()
    loss = _quadratic(target)
    for spec in ("adam:20@0.05", "lbfgs:5", "sgd:20@0.02"):
        init = _init()
        result = optimise_pixels(init, loss, [parse_optimizer(spec)], iterations=1)
        totals = [entry.summary.total for entry in result.history]
        assert totals[-1] < 0.5 * totals[0], spec
        assert result.best_summary is not None and result.best_summary.total == min(totals)
        assert result.stop_reason == "completed"
        assert torch.equal(init, _init())  # not modified
        assert (result.best - target).pow(2).mean() < (init - target).pow(2).mean()


@pytest.mark.parametrize("scale", [1e-6, 1e-9])
def test_lbfgs_does_not_depend_on_the_scale_of_the_loss(scale: float) -> None:
    # PyTorch's L-BFGS keeps a curvature pair only when sᵀy > 1e-10: with a loss this small it would
    # keep none and crawl along the raw gradient. optimise_pixels rescales the gradient once per
    # stage, so the run is the same at any scale.
    target = _target()
    quartic = WeightedLoss({"fit": lambda x: (x - target).pow(2).mean() + 4 * (x - target).pow(4).mean()})
    scaled = WeightedLoss(
        {"fit": lambda x: scale * ((x - target).pow(2).mean() + 4 * (x - target).pow(4).mean())}
    )
    chain = [parse_optimizer("lbfgs:15")]
    plain, small = (optimise_pixels(_init(), loss, chain, iterations=1) for loss in (quartic, scaled))
    first = plain.history[0].summary.total
    assert plain.best_summary.total < 1e-3 * first  # it converges ...
    assert small.best_summary.total / scale == pytest.approx(
        plain.best_summary.total, rel=1e-3, abs=1e-9 * first
    )
    assert torch.allclose(
        small.best, plain.best, atol=1e-4
    )  # ... and takes the same steps at the small scale
    with_torch = torch.optim.LBFGS([x := _init().requires_grad_(True)], max_iter=1)

    def closure() -> torch.Tensor:
        with_torch.zero_grad()
        value = scaled(x).total
        value.backward()
        return value

    for _ in range(15):
        with_torch.step(closure)
    assert (x.detach() - target).pow(2).mean() > 0.5 * (_init() - target).pow(2).mean()  # unscaled: stuck


def test_optimise_pixels_chain_runs_each_stage_and_emits_events() -> None:
    events = []
    loss = _quadratic(_target())
    chain = [parse_optimizer("adam:3"), parse_optimizer("lbfgs:2")]
    result = optimise_pixels(_init(), loss, chain, iterations=100, callbacks=[events.append])
    assert [e.iteration for e in result.history] == [1, 2, 3, 4, 5]
    assert [e.stage for e in result.history] == [0, 0, 0, 1, 1]
    assert [e.optimizer for e in result.history] == ["adam", "adam", "adam", "lbfgs", "lbfgs"]
    starts = [e for e in events if isinstance(e, StageStarted)]
    ends = [e for e in events if isinstance(e, StageEnded)]
    progress = [e for e in events if isinstance(e, Progress)]
    assert [(s.index, s.name, s.steps, s.first_iteration, s.total_iterations) for s in starts] == [
        (0, "adam", 3, 1, 5),
        (1, "lbfgs", 2, 4, 5),
    ]
    assert starts[0].lr == PIXEL_LR["adam"] and starts[1].lr == PIXEL_LR["lbfgs"]
    assert [(e.index, e.reason, e.iterations) for e in ends] == [(0, "completed", 3), (1, "completed", 2)]
    assert [p.iteration for p in progress] == [1, 2, 3, 4, 5]
    assert all(p.total_iterations == 5 for p in progress)
    assert [p.stage for p in progress] == [0, 0, 0, 1, 1]
    # Events arrive in order: start 0, three progress, end 0, start 1, two progress, end 1.
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["StageStarted"] + ["Progress"] * 3 + ["StageEnded", "StageStarted"] + [
        "Progress"
    ] * 2 + ["StageEnded"]
    # is_best is True exactly for new minima.
    best = math.inf
    for p in progress:
        assert p.is_best == (p.summary.total < best)
        best = min(best, p.summary.total)


def test_optimise_pixels_stage_without_steps_uses_iterations() -> None:
    result = optimise_pixels(
        _init(), _quadratic(_target()), [parse_optimizer("adam"), parse_optimizer("sgd:2")], iterations=4
    )
    assert [e.stage for e in result.history] == [0, 0, 0, 0, 1, 1]


def test_history_rows() -> None:
    result = optimise_pixels(
        _init(), _quadratic(_target(), l2=0.5), [parse_optimizer("adam:2")], iterations=1
    )
    row = result.history[0].as_row()
    assert row["iteration"] == 1 and row["stage"] == 0 and row["optimizer"] == "adam"
    assert set(row) == {"iteration", "stage", "optimizer", "total", "mse", "mse.raw", "l2", "l2.raw"}
    assert row["l2"] == pytest.approx(0.5 * row["l2.raw"])
    assert row["total"] == pytest.approx(row["mse"] + row["l2"])


class _Recording:
    """Wraps an objective: records every evaluated image and adds a per-call offset / failure."""

    def __init__(
        self,
        loss: WeightedLoss,
        offsets: dict[int, float],
        nan_at: int | None = None,
        interrupt_at: int | None = None,
    ) -> None:
        self.loss, self.offsets, self.nan_at, self.interrupt_at = loss, offsets, nan_at, interrupt_at
        self.images: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor):
        call = len(self.images) + 1
        if call == self.interrupt_at:
            raise KeyboardInterrupt
        self.images.append(x.detach().clone())
        offset = self.offsets.get(call, 0.0)
        nan = self.nan_at == call
        wrapped = WeightedLoss(
            {
                "mse": lambda v: self.loss(v).total * (torch.tensor(float("nan")) if nan else 1.0),
                "offset": lambda v: torch.tensor(offset),
            }
        )
        return wrapped(x)


def test_nan_loss_diverges_and_keeps_the_best_image() -> None:
    # Offsets make iteration 2 the best, so "best" is not simply "the last finite one".
    objective = _Recording(_quadratic(_target()), {1: 1.0, 2: 0.0, 3: 0.5}, nan_at=4)
    events = []
    result = optimise_pixels(
        _init(), objective, [parse_optimizer("adam:10@0.05")], iterations=1, callbacks=[events.append]
    )
    assert result.stop_reason == "diverged"
    assert "nan" in result.stop_detail and "iteration 2" in result.stop_detail
    assert len(result.history) == 4 and math.isnan(result.history[-1].summary.total)
    assert result.best_iteration == 2
    assert result.best_summary is result.history[1].summary
    assert torch.equal(result.best, objective.images[1])
    assert torch.equal(result.last, objective.images[1])  # the best image is restored
    assert not torch.equal(objective.images[0], objective.images[1])
    end = [e for e in events if isinstance(e, StageEnded)]
    assert [(e.reason, e.iterations) for e in end] == [("diverged", 4)]


def test_blow_up_diverges() -> None:
    objective = _Recording(_quadratic(_target()), {3: 100.0})
    result = optimise_pixels(_init(), objective, [parse_optimizer("adam:10")], iterations=1)
    assert result.stop_reason == "diverged" and len(result.history) == 3
    assert result.best_iteration == 2 and torch.equal(result.best, objective.images[1])


def test_chain_stops_at_the_diverging_stage() -> None:
    events = []
    objective = _Recording(_quadratic(_target()), {}, nan_at=2)
    result = optimise_pixels(
        _init(),
        objective,
        [parse_optimizer("adam:3"), parse_optimizer("lbfgs:3")],
        iterations=1,
        callbacks=[events.append],
    )
    assert result.stop_reason == "diverged"
    assert [e.index for e in events if isinstance(e, StageStarted)] == [0]


def test_keyboard_interrupt_keeps_the_best() -> None:
    objective = _Recording(_quadratic(_target()), {1: 1.0, 2: 0.0, 3: 0.3, 4: 0.3}, interrupt_at=5)
    events = []
    result = optimise_pixels(
        _init(), objective, [parse_optimizer("adam:10@0.05")], iterations=1, callbacks=[events.append]
    )
    assert result.stop_reason == "interrupted"
    assert len(result.history) == 4
    assert result.best_iteration == 2
    assert torch.equal(result.best, objective.images[1])
    assert [(e.reason, e.iterations) for e in events if isinstance(e, StageEnded)] == [("interrupted", 4)]


def test_stop_rule_converges_the_run() -> None:
    flat = WeightedLoss({"c": lambda x: x.sum() * 0 + 1.0})
    result = optimise_pixels(
        _init(), flat, [parse_optimizer("adam:50")], iterations=1, stop=StopRule(1e-6, 3)
    )
    assert result.stop_reason == "stopped"
    assert len(result.history) == 4
    assert "3 checks" in result.stop_detail


def test_pixels_stay_within_bounds() -> None:
    # The target lies far outside [0, 1]; a huge step would leave the box without clamping.
    target = torch.full((1, 3, 8, 8), 3.0)
    target[..., :4, :] = -2.0
    seen = []
    loss = WeightedLoss({"mse": lambda x: (x - target).pow(2).mean()})

    def objective(x: torch.Tensor):
        seen.append(x.detach().clone())
        return loss(x)

    result = optimise_pixels(
        _init(), objective, [parse_optimizer("sgd:5@1000"), parse_optimizer("lbfgs:3")], iterations=1
    )
    for image in [*seen, result.best, result.last]:
        assert image.min() >= 0.0 and image.max() <= 1.0
    assert result.last[..., :4, :].max() == 0.0 and result.last[..., 4:, :].min() == 1.0

    custom = optimise_pixels(
        _init(), loss, [parse_optimizer("sgd:3@1000")], iterations=1, bounds=(0.25, 0.75)
    )
    assert custom.last.min() >= 0.25 and custom.last.max() <= 0.75


@pytest.mark.parametrize("iterations", [0, -1, 2.5])
def test_invalid_iterations(iterations: float) -> None:
    with pytest.raises(InvalidParameter) as info:
        optimise_pixels(_init(), _quadratic(_target()), [parse_optimizer("adam")], iterations=iterations)  # type: ignore[arg-type]
    assert str(info.value).startswith("--iterations:")


def test_empty_chain_is_invalid() -> None:
    with pytest.raises(InvalidParameter, match="--optimizer"):
        optimise_pixels(_init(), _quadratic(_target()), [], iterations=3)
