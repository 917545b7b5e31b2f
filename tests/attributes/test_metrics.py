"""Tests of styleforge.attributes.metrics: MAE on the label scale, accuracy, heads without labels, and
the groups the epoch line shows."""

from __future__ import annotations

import math

import pytest
from _attr_helpers import SMALL
from _attr_helpers import small_batch as _batch

from styleforge.attributes.losses import HeadLoss
from styleforge.attributes.metrics import AttributeMetrics, format_epoch_line
from styleforge.engine import EpochEnded, LossSummary


def test_metrics_mae_on_the_label_scale_and_accuracy() -> None:
    outputs, batch = _batch()
    metrics = AttributeMetrics(SMALL, {n: HeadLoss(SMALL[n]) for n in SMALL.names})
    metrics.update(outputs, batch)
    metrics.update(outputs, batch)
    values = metrics.compute()
    # contrast rows 0 and 2: predictions 0.5 / 0.0 in unit → 7.75 / 5.5; labels 1.0 / 0.0 → 10 / 5.5
    assert values["mae.contrast"] == pytest.approx((2.25 + 0.0) / 2)
    assert values["acc.hue"] == pytest.approx(1 / 3)  # rows 0, 1, 3: right, wrong, tie→class 0 wrong
    assert math.isnan(values["mae.repetition"]) and math.isnan(values["head_loss.repetition"])
    assert values["head_loss.contrast"] == pytest.approx(0.125)


def test_the_epoch_line_shows_mae_and_accuracy() -> None:
    train = LossSummary({"contrast": 0.5, "hue": 1.0}, {"contrast": 0.5, "hue": 0.7})
    metrics = {"head_loss.contrast": 0.5, "mae.contrast": 2.25, "acc.hue": 0.3333, "logvar.hue": 0.1}
    line = format_epoch_line(
        EpochEnded(2, 5, train, None, metrics, {"contrast": 1.0, "hue": 0.7}, False, 0.01, 0.2)
    )
    assert (
        line
        == "epoch 2/5 · loss 1.2000 = 1×contrast 0.5000 + 0.7×hue 1.0000 · MAE contrast 2.25 · acc hue 0.333"
    )
