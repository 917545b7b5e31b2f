"""Tests of styleforge.engine.fit: the shared training loop (epoch means, best weights, early stopping,
divergence, Ctrl-C, exact resumption, schedules, events) and the Keras-style epoch line whose total is
exactly the sum of ``weight × raw`` of the printed terms."""

from __future__ import annotations

import io
import math
import random
import re
from decimal import Decimal

import pytest
import torch
from torch import nn

from styleforge.engine import (
    BatchProgress,
    DivergenceGuard,
    EpochEnded,
    EpochStarted,
    FitEnded,
    LossSummary,
    StopRule,
    WeightedLoss,
    evaluate,
    fit,
)
from styleforge.engine.fit import TRAIN_LR, FitCheckpoint, _param_groups, format_epoch_line
from styleforge.engine.optimize import parse_optimizer
from styleforge.errors import InvalidParameter

# A tiny regression problem: y = x·w* + noise, two "heads" (a and b) on the same linear model.
_G = torch.Generator().manual_seed(0)
X = torch.randn(40, 3, generator=_G)
Y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.05 * torch.randn(40, generator=_G)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(3, 1)


def _loss(weights: dict[str, float] | None = None) -> WeightedLoss:
    return WeightedLoss(
        {
            "a": lambda out, batch: ((out - batch[1]) ** 2).mean(),
            "b": lambda out, batch: (out - batch[1]).abs().mean(),
        },
        weights or {"b": 0.5},
    )


def _train_batches(size: int = 8):
    def make(generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(32, generator=generator)
        return [(X[order[i : i + size]], Y[order[i : i + size]]) for i in range(0, 32, size)]

    return make


def _val_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(X[32:], Y[32:])]


def _run(model: nn.Module, **options: object):
    defaults = dict(epochs=5, optimizer="adam@0.05", seed=0)
    defaults.update(options)
    return fit(
        model, lambda batch: model(batch[0])[:, 0], _loss(), _train_batches(), _val_batches, **defaults
    )


def test_loss_falls_and_rows_add_up() -> None:
    model = _model()
    result = _run(model, epochs=20)
    assert result.stop_reason == "completed" and result.epochs_run == 20 and len(result.history) == 20
    assert result.history[-1]["val_loss"] < 0.2 * result.history[0]["val_loss"]
    for row in result.history:
        assert row["loss"] == math.fsum([row["loss.a"], row["loss.b"]])
        assert row["loss.b"] == 0.5 * row["loss.b.raw"] and row["loss.a"] == row["loss.a.raw"]
        assert row["val_loss"] == math.fsum([row["val_loss.a"], row["val_loss.b"]])
        assert row["lr"] == 0.05 and row["seconds"] >= 0


def test_epoch_summaries_weigh_their_means_as_the_loss_does() -> None:
    model = _model()
    loss = _loss({"a": 2.0, "b": 0.25})
    forward = lambda batch: model(batch[0])[:, 0]
    batches = _train_batches()(torch.Generator().manual_seed(1))
    mean, _ = evaluate(model, forward, loss, batches)
    one = loss(forward(batches[0]), batches[0]).summary()
    alone, _ = evaluate(model, forward, loss, batches[:1])  # the mean of one batch is that batch
    assert alone.raw == pytest.approx(one.raw, rel=1e-12) and alone.total == pytest.approx(
        one.total, rel=1e-12
    )
    assert mean.weighted == {"a": 2.0 * mean.raw["a"], "b": 0.25 * mean.raw["b"]}
    assert mean.total == math.fsum([2.0 * mean.raw["a"], 0.25 * mean.raw["b"]])
    with torch.no_grad():
        raws = [loss(forward(b), b).summary().raw for b in batches]
    assert mean.raw["a"] == pytest.approx(sum(r["a"] for r in raws) / len(raws), rel=1e-12)


def test_best_weights_are_restored_and_reported() -> None:
    model = _model()
    result = _run(model, epochs=12, optimizer="sgd@0.9")  # too large a step: the validation loss wobbles
    values = [row["val_loss"] for row in result.history]
    assert result.best_epoch == values.index(min(values)) + 1 and result.best_value == min(values)
    summary, _ = evaluate(model, lambda batch: model(batch[0])[:, 0], _loss(), _val_batches())
    assert summary.total == pytest.approx(min(values), rel=1e-6)


def test_epoch_mean_is_weighted_by_counts() -> None:
    model = _model()
    constant = WeightedLoss(
        {"t": lambda out, batch: batch[1][0] + 0 * out.sum(), "u": lambda out, batch: out.sum() * 0}
    )
    batches = [(X[:4], torch.tensor([1.0])), (X[4:8], torch.tensor([4.0]))]
    counts = {1.0: {"t": 3.0, "u": 0.0}, 4.0: {"t": 1.0, "u": 0.0}}
    summary, _ = evaluate(
        model,
        lambda batch: model(batch[0])[:, 0],
        constant,
        batches,
        counts=lambda batch: counts[float(batch[1][0])],
    )
    assert summary.raw["t"] == pytest.approx((3 * 1.0 + 1 * 4.0) / 4)  # not the plain mean 2.5
    assert summary.raw["u"] == 0.0  # nothing to average: 0, not NaN
    plain, _ = evaluate(model, lambda batch: model(batch[0])[:, 0], constant, batches)
    assert plain.raw["t"] == pytest.approx(2.5)


def test_early_stopping_uses_the_improvement_rule() -> None:
    model = _model()
    result = _run(model, epochs=50, stop=StopRule(0.5, 2, mode="improvement"))
    assert result.stop_reason == "stopped" and result.epochs_run < 50
    assert "improved by less than 0.5" in result.stop_detail and "validation" in result.stop_detail


def test_nan_batch_stops_before_the_step_and_keeps_the_best() -> None:
    model = _model()
    calls = {"n": 0}

    def loss_fn(out: torch.Tensor, batch: object) -> torch.Tensor:
        value = ((out - batch[1]) ** 2).mean()
        if not torch.is_grad_enabled():  # validation
            return value
        calls["n"] += 1
        return value * float("nan") if calls["n"] > 9 else value  # the 10th training batch is NaN

    loss = WeightedLoss({"a": loss_fn})
    result = fit(
        model,
        lambda batch: model(batch[0])[:, 0],
        loss,
        _train_batches(),
        _val_batches,
        epochs=5,
        optimizer="adam@0.05",
    )
    assert result.stop_reason == "diverged" and "epoch 3, batch 2" in result.stop_detail
    assert result.epochs_run == 2 and result.best_epoch in (1, 2)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_guard_blow_up_on_the_monitored_total() -> None:
    model = _model()
    result = _run(model, epochs=20, optimizer="sgd@5", guard=DivergenceGuard(2.0))
    assert result.stop_reason == "diverged" and "exceeded 2x the best" in result.stop_detail
    assert "kept the weights of epoch" in result.stop_detail


class _Count:
    """A metric accumulator: how many items a pass saw."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, outputs: torch.Tensor, batch: object) -> None:
        self.n += len(outputs)

    def compute(self) -> dict[str, float]:
        return {"seen": float(self.n)}


def test_events_in_order() -> None:
    events: list[object] = []
    _run(_model(), epochs=2, callbacks=[events.append], metrics=_Count, epoch_values=lambda: {"extra": 1.5})
    kinds = [type(e).__name__ for e in events]
    assert kinds == (["EpochStarted"] + ["BatchProgress"] * 4 + ["EpochEnded"]) * 2 + ["FitEnded"]
    started = [e for e in events if isinstance(e, EpochStarted)]
    assert started[0].batches == 4 and started[0].epochs == 2 and started[0].lr == 0.05
    progress = [e for e in events if isinstance(e, BatchProgress)]
    assert [p.batch for p in progress[:4]] == [1, 2, 3, 4]
    ended = [e for e in events if isinstance(e, EpochEnded)]
    assert ended[0].weights == {"a": 1.0, "b": 0.5} and ended[0].val is not None
    assert ended[0].metrics == {
        "seen": 32.0,
        "val_seen": 8.0,
        "extra": 1.5,
    }  # metrics and values, no loss columns
    assert (
        isinstance(events[-1], FitEnded) and events[-1].reason == "completed" and events[-1].epochs_run == 2
    )


def test_interrupt_and_resume_is_exact() -> None:
    options = dict(epochs=6, schedule="cosine", stop=None)
    whole = _run(_model(), **options)
    saved: list[dict] = []

    def keep(checkpoint: FitCheckpoint) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint.state(), buffer)  # what train-attrs writes: loadable with weights_only
        saved.append({"epoch": checkpoint.epoch, "bytes": buffer.getvalue()})

    def interrupt(event: object) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 3:
            raise KeyboardInterrupt

    part = _run(_model(), callbacks=[interrupt], checkpoint=keep, **options)
    assert part.stop_reason == "interrupted" and part.epochs_run == 3 and saved[-1]["epoch"] == 3
    state = torch.load(io.BytesIO(saved[-1]["bytes"]), weights_only=True)
    model = _model(seed=99)  # different initial weights: the state replaces them
    resumed = _run(model, resume=state, **options)
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]
    assert strip(resumed.history) == strip(whole.history)
    assert resumed.best_epoch == whole.best_epoch
    finished = _run(model, resume=torch.load(io.BytesIO(saved[-1]["bytes"]), weights_only=True), epochs=3)
    assert finished.stop_reason == "completed" and "already finished epoch 3" in finished.stop_detail


def test_schedules_and_parameter_group_scales() -> None:
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    lrs: list[list[float]] = []
    groups = [{"params": model[0].parameters(), "lr_scale": 0.1}, {"params": model[1].parameters()}]

    class Watch:
        def __call__(self, event: object) -> None:
            if isinstance(event, EpochEnded):
                lrs.append([g["lr"] for g in optimizer_ref[0].param_groups])

    optimizer_ref: list = []
    original = torch.optim.Adam.__init__

    def spy(self, *args, **kwargs):  # keep a handle on the optimiser fit builds
        original(self, *args, **kwargs)
        optimizer_ref.append(self)

    torch.optim.Adam.__init__ = spy
    try:
        fit(
            model,
            lambda b: model(b[0])[:, 0],
            _loss(),
            _train_batches(),
            _val_batches,
            epochs=4,
            optimizer="adam@0.1",
            params=groups,
            schedule="cosine",
            callbacks=[Watch()],
        )
    finally:
        torch.optim.Adam.__init__ = original
    assert lrs[0][0] == pytest.approx(0.1 * lrs[0][1])  # the scaled group
    assert lrs[0][1] == pytest.approx(0.1 * (1 + math.cos(math.pi / 4)) / 2)  # cosine after epoch 1
    assert lrs[-1][1] == pytest.approx(0.0, abs=1e-12)
    # A step too small to improve by PyTorch's plateau threshold: after the first epoch (the first best),
    # the rate halves after every epoch.
    result = _run(
        _model(), epochs=4, optimizer="sgd@1e-7", schedule="plateau", plateau_patience=0, plateau_factor=0.5
    )
    assert [row["lr"] for row in result.history] == pytest.approx([1e-7, 1e-7, 5e-8, 2.5e-8], rel=1e-9, abs=0)


def test_lbfgs_and_default_learning_rates() -> None:
    model = _model()
    result = _run(
        model, epochs=3, optimizer="lbfgs", params=[{"params": [model.weight]}, {"params": [model.bias]}]
    )
    assert (
        result.history[-1]["lr"] == TRAIN_LR["lbfgs"]
        and result.history[-1]["val_loss"] < result.history[0]["val_loss"]
    )
    assert _run(_model(), epochs=1, optimizer="adagrad").history[0]["lr"] == 0.01  # PyTorch's default


def test_parameter_groups_merge_tensors_scale_rates_and_fill_weight_decay() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 1))
    w0, b0, w1, b1 = model.parameters()
    given = [w0, b0, {"params": [w1], "lr_scale": 0.25}, {"params": [b1], "weight_decay": 0.0}]
    groups = _param_groups(model, given, parse_optimizer("adam@0.2"), TRAIN_LR, 0.01)
    assert [[id(p) for p in g["params"]] for g in groups] == [[id(w0), id(b0)], [id(w1)], [id(b1)]]
    assert "lr" not in groups[0] and groups[1]["lr"] == pytest.approx(0.05) and "lr_scale" not in groups[1]
    assert [g["weight_decay"] for g in groups] == [0.01, 0.01, 0.0]  # an explicit one is kept
    (merged,) = _param_groups(model, [w0, {"params": [b0]}], parse_optimizer("adam"), TRAIN_LR, 0.0)
    assert [id(p) for p in merged["params"]] == [id(w0), id(b0)]  # a group of nothing but params joins
    # No params: every parameter that requires a gradient, one group; no spec rate: the table's.
    model[0].bias.requires_grad_(False)
    (only,) = _param_groups(model, None, parse_optimizer("sgd"), TRAIN_LR, 0.0)
    assert [id(p) for p in only["params"]] == [id(w0), id(w1), id(b1)]
    scaled = _param_groups(model, [{"params": [w0], "lr_scale": 2.0}], parse_optimizer("sgd"), TRAIN_LR, 0.0)
    assert scaled[0]["lr"] == pytest.approx(2.0 * TRAIN_LR["sgd"])
    # L-BFGS: one group of everything, without a weight decay.
    (single,) = _param_groups(model, given, parse_optimizer("lbfgs"), TRAIN_LR, 0.01)
    assert [id(p) for p in single["params"]] == [id(w0), id(b0), id(w1), id(b1)]
    assert set(single) == {"params"}


def test_invalid_arguments() -> None:
    with pytest.raises(InvalidParameter, match="--epochs"):
        _run(_model(), epochs=0)
    with pytest.raises(
        InvalidParameter, match="--lr-schedule: 'step' is not valid; expected one of: none, cosine, plateau"
    ):
        _run(_model(), schedule="step")
    with pytest.raises(InvalidParameter, match="--optimizer"):
        _run(_model(), optimizer="adamm")


# --- the epoch line ---------------------------------------------------------------------------------

#: Metric groups a caller might show (the engine has none of its own).
GROUPS = {"mae": "MAE", "acc": "acc"}
_LINE = re.compile(r"^epoch (\d+)/(\d+) · loss (\S+) = (.*?)( · |$)")


def _parse(line: str) -> tuple[Decimal, list[tuple[Decimal, str, Decimal]]]:
    match = _LINE.match(line)
    assert match, line
    parts = []
    for chunk in match[4].split(" + "):
        label, value = chunk.rsplit(" ", 1)
        weight, name = label.split("×", 1)
        parts.append((Decimal(weight), name, Decimal(value)))
    return Decimal(match[3]), parts


def test_epoch_line_total_is_exactly_the_sum_of_weight_times_printed_raw() -> None:
    rng = random.Random(4)
    for case in range(300):
        n = rng.randint(1, 8)
        weights = {
            f"h{i}": rng.choice([0.0, 0.3, 0.5, 0.7, 0.85, 1.0, 2.0, 1e-3, 1e6, 1 / 3]) for i in range(n)
        }
        raw = {k: rng.choice([0.0, 10 ** rng.uniform(-7, 3), -rng.uniform(0, 2)]) for k in weights}
        summary = LossSummary(raw, {k: weights[k] * raw[k] for k in raw})
        event = EpochEnded(3, 10, summary, None, {"mae.x": 1.234, "acc.y": 0.5}, weights, False, 0.01, 0.1)
        line = format_epoch_line(event, GROUPS)
        total, parts = _parse(line)
        assert [name for _, name, _ in parts] == list(weights), line
        assert total == sum((w * v for w, _, v in parts), Decimal(0)), (case, line)
        # Close to the true total: each printed term is off by at most half the shared quantum.
        largest = max((abs(v) for v in summary.weighted.values()), default=0.0)
        quantum = 10 ** ((math.floor(math.log10(largest)) if largest > 0 else 0) - 3)
        assert abs(float(total) - summary.total) <= n * quantum / 2 * (1 + 1e-9) + 1e-12, (case, line)
        assert line.endswith("MAE x 1.23 · acc y 0.5")


def test_epoch_line_example_and_validation_part() -> None:
    raw = {"variety_texture": 0.0706, "pri_color": 0.8103}
    weights = {"variety_texture": 1.0, "pri_color": 0.7}
    train = LossSummary(raw, {k: weights[k] * raw[k] for k in raw})
    val = LossSummary({"variety_texture": 0.1, "pri_color": 1.2}, {"variety_texture": 0.1, "pri_color": 0.84})
    metrics = {
        "mae.contrast": 2.0,
        "val_mae.contrast": 1.2,
        "val_acc.pri_color": 0.64,
        "head_loss.contrast": 3.0,
    }
    event = EpochEnded(12, 200, train, val, metrics, weights, True, 1e-3, 0.5)
    assert format_epoch_line(event, GROUPS) == (
        "epoch 12/200 · loss 0.63781 = 1×variety_texture 0.0706 + 0.7×pri_color 0.8103 · val_loss 0.94 · "
        "val MAE contrast 1.2 · val acc pri_color 0.64 · best"
    )
    # Only the groups the caller names, in its order and with its labels.
    assert format_epoch_line(event).endswith("val_loss 0.94 · best")
    assert format_epoch_line(event, {"acc": "accuracy", "head_loss": "loss"}).endswith(
        "val_loss 0.94 · val accuracy pri_color 0.64 · best"
    )
