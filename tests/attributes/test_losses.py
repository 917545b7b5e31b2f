"""Tests of styleforge.attributes.losses: loss weights (kinds and names), masked partial labels, the
numeric losses, label smoothing, and the weighted and balanced totals."""

from __future__ import annotations

import math

import pytest
import torch
from _attr_helpers import SMALL
from _attr_helpers import small_batch as _batch

from styleforge.attributes.kinds import NumericAttribute
from styleforge.attributes.losses import HeadLoss, build_loss, head_weights
from styleforge.attributes.schema import ACAN_SCHEMA, Schema
from styleforge.cli.flags import from_flags
from styleforge.config import TrainConfig
from styleforge.errors import InvalidParameter

# --- loss weights ------------------------------------------------------------------------------------


def parse_loss_weights(items: list[str]) -> dict[str, float]:
    """Repeated ``--loss-weight KEY=W`` values, as the command line parses and checks them (the
    option's declaration, ``TrainConfig.loss_weights``)."""
    return from_flags(TrainConfig, {"loss_weights": tuple(items)}).loss_weights


def test_loss_weight_keys_kinds_and_names() -> None:
    assert head_weights(ACAN_SCHEMA, {}) == dict.fromkeys(ACAN_SCHEMA.names, 1.0)
    weights = head_weights(ACAN_SCHEMA, parse_loss_weights(["categorical=0.7"]))  # ACAN's final run
    assert weights["pri_color"] == weights["harmony"] == 0.7
    assert all(weights[n] == 1.0 for n in ACAN_SCHEMA.names[:6])
    # An attribute's own weight beats its kind's, whatever the order.
    for order in (["contrast=2", "numeric=0.5"], ["numeric=0.5", "contrast=2"]):
        weights = head_weights(ACAN_SCHEMA, parse_loss_weights(order))
        assert weights["contrast"] == 2.0 and weights["repetition"] == 0.5 and weights["harmony"] == 1.0
    assert parse_loss_weights(["harmony=1", "harmony=0"]) == {"harmony": 0.0}


@pytest.mark.parametrize(
    "items, match",
    [
        (["categorical"], "KEY=WEIGHT"),
        (["=0.7"], "KEY=WEIGHT"),
        (["contrast=-1"], "--loss-weight contrast: '-1'"),
        (["contrast=abc"], "a finite number >= 0"),
        (["contrast=nan"], "a finite number >= 0"),
    ],
)
def test_bad_loss_weight_values(items: list[str], match: str) -> None:
    with pytest.raises(InvalidParameter, match=match):
        parse_loss_weights(items)


def test_unknown_loss_weight_key_lists_valid_and_suggests() -> None:
    with pytest.raises(InvalidParameter) as info:
        head_weights(ACAN_SCHEMA, {"catgorical": 0.7})
    message = str(info.value)
    assert "did you mean 'categorical'" in message and "pri_color" in message and info.value.exit_code == 2
    with pytest.raises(InvalidParameter, match="a kind of attribute the schema has"):
        head_weights(Schema((NumericAttribute("x"),)), {"categorical": 0.5})


# --- terms: masking, scaling, balancing ------------------------------------------------------------


def test_masked_partial_labels_only_count_labelled_cells() -> None:
    outputs, batch = _batch()
    contrast = HeadLoss(SMALL["contrast"])
    value = contrast(outputs, batch)
    assert value.item() == pytest.approx(((0.5 - 1.0) ** 2 + 0.0) / 2)  # rows 0 and 2 only
    value.backward()
    grad = outputs["contrast"].grad
    assert grad[1] == 0 and grad[3] == 0 and grad[0] != 0
    empty = HeadLoss(SMALL["repetition"])(outputs, batch)  # nothing labelled: 0, no NaN
    assert empty.item() == 0.0 and empty.requires_grad
    hue = HeadLoss(SMALL["hue"])(outputs, batch)
    expected = torch.nn.functional.cross_entropy(outputs["hue"][[0, 1, 3]], torch.tensor([0, 2, 1]))
    assert hue.item() == pytest.approx(expected.item())
    assert batch.counts() == {"contrast": 2.0, "repetition": 0.0, "hue": 3.0}


@pytest.mark.parametrize("kind", ["mse", "l1", "smooth_l1", "huber"])
def test_numeric_loss_choices(kind: str) -> None:
    outputs, batch = _batch()
    value = HeadLoss(SMALL["contrast"], kind, delta=0.25)(outputs, batch).item()
    errors = torch.tensor([-0.5, 0.0])
    expected = {
        "mse": (errors**2).mean(),
        "l1": errors.abs().mean(),
        "smooth_l1": torch.nn.functional.smooth_l1_loss(errors, torch.zeros(2), beta=0.25),
        "huber": torch.nn.functional.huber_loss(errors, torch.zeros(2), delta=0.25),
    }[kind]
    assert value == pytest.approx(expected.item())


def test_label_smoothing_raises_the_loss_of_confident_right_answers() -> None:
    outputs, batch = _batch()
    plain = HeadLoss(SMALL["hue"])(outputs, batch).item()
    smooth = HeadLoss(SMALL["hue"], label_smoothing=0.2)(outputs, batch).item()
    assert smooth > plain


def test_weighted_and_balanced_totals() -> None:
    outputs, batch = _batch()
    plain = {n: HeadLoss(SMALL[n])(outputs, batch).item() for n in SMALL.names}
    config = TrainConfig(loss_weights={"categorical": 0.7, "contrast": 2.0})
    loss, _ = build_loss(SMALL, config)
    report = loss(outputs, batch)
    assert loss.weights == {"contrast": 2.0, "repetition": 1.0, "hue": 0.7}
    assert report.total.item() == pytest.approx(2.0 * plain["contrast"] + 0.7 * plain["hue"])
    summary = report.summary()
    assert summary.total == math.fsum(summary.weighted.values())

    initial = {"contrast": 0.5, "repetition": 0.0, "hue": 2.0}  # 0 divides by 1
    loss, _ = build_loss(SMALL, TrainConfig(balance="initial", loss_weights={"hue": 3.0}), initial=initial)
    raw = {k: v.item() for k, v in loss(outputs, batch).raw.items()}
    assert raw["contrast"] == pytest.approx(plain["contrast"] / 0.5)
    assert raw["hue"] == pytest.approx(plain["hue"] / 2.0)
    assert raw["repetition"] == 0.0

    log_vars = torch.nn.ParameterDict(
        {
            n: torch.nn.Parameter(torch.tensor(v))
            for n, v in {"contrast": 0.5, "repetition": 1.0, "hue": -0.3}.items()
        }
    )
    loss, _ = build_loss(
        SMALL, TrainConfig(balance="uncertainty", loss_weights={"hue": 0.5}), log_vars=log_vars
    )
    report = loss(outputs, batch)
    raw = {k: v.item() for k, v in report.raw.items()}
    assert raw["contrast"] == pytest.approx(math.exp(-0.5) * plain["contrast"] + 0.5)  # exp(-s)·L + s
    assert raw["hue"] == pytest.approx(math.exp(0.3) * plain["hue"] - 0.3)
    assert raw["repetition"] == 0.0  # unlabelled in this batch: not even the regulariser
    assert report.total.item() == pytest.approx(raw["contrast"] + raw["repetition"] + 0.5 * raw["hue"])
    report.total.backward()
    # d/ds (exp(-s)L + s) = 1 - exp(-s)L: the log-variances learn.
    assert log_vars["contrast"].grad.item() == pytest.approx(1 - math.exp(-0.5) * plain["contrast"])
