"""Per-head metrics of the attribute network: each head's plain loss, the mean absolute error on the
label scale (numeric heads) or the accuracy (categorical heads), the trivial baseline's, and which of
them the epoch line shows (:data:`EPOCH_LINE_GROUPS`, :func:`format_epoch_line`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from ..engine.events import EpochEnded
from ..engine.fit import format_epoch_line as _engine_epoch_line
from .batches import Batch
from .kinds import NumericAttribute
from .labels import label_mask
from .losses import HeadLoss
from .schema import Schema

__all__ = ["EPOCH_LINE_GROUPS", "AttributeMetrics", "baseline_metrics", "format_epoch_line"]

#: Metric groups the epoch line shows, prefix → label (``mae.contrast`` → ``MAE contrast 1.2``).
EPOCH_LINE_GROUPS: dict[str, str] = {"mae": "MAE", "acc": "acc"}


class AttributeMetrics:
    """Accumulates, per head, its plain loss (``head_loss.<name>``), the mean absolute error on the
    label scale (``mae.<name>``, numeric) or the accuracy (``acc.<name>``, categorical), over the
    labelled values of a pass. A head with no labelled value gets NaN."""

    def __init__(self, schema: Schema, heads: Mapping[str, HeadLoss]) -> None:
        self.schema, self.heads = schema, heads
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def _add(self, key: str, value: float, count: int) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value
        self.counts[key] = self.counts.get(key, 0) + count

    @torch.no_grad()
    def update(self, outputs: Mapping[str, Tensor], batch: Batch) -> None:
        for attribute in self.schema:
            name = attribute.name
            output, target = outputs[name].detach(), batch.labels[name]
            mask = label_mask(target)
            count = int(mask.sum())
            self._add(f"head_loss.{name}", float(self.heads[name].per_item(output, target).sum()), count)
            if isinstance(attribute, NumericAttribute):
                error = attribute.from_unit(output[mask].double()) - attribute.from_unit(
                    target[mask].double()
                )
                self._add(f"mae.{name}", float(error.abs().sum()), count)
            else:
                self._add(f"acc.{name}", float((output[mask].argmax(-1) == target[mask]).sum()), count)

    def _order(self) -> list[str]:
        order = [f"head_loss.{a.name}" for a in self.schema]
        return order + [
            f"{'mae' if isinstance(a, NumericAttribute) else 'acc'}.{a.name}" for a in self.schema
        ]

    def compute(self) -> dict[str, float]:
        return {
            k: (self.sums[k] / self.counts[k] if self.counts.get(k) else math.nan)
            for k in self._order()
            if k in self.sums
        }

    def all_reduce(self, reduce: Callable[[Tensor], Tensor]) -> None:
        """Replaces the sums and counts by their totals over the ranks of a distributed run.

        Args:
            reduce: Sums a tensor over the ranks (:meth:`Distributed.all_reduce`).
        """
        keys = self._order()
        state = torch.tensor(
            [self.sums.get(k, 0.0) for k in keys] + [float(self.counts.get(k, 0)) for k in keys],
            dtype=torch.float64,
        )
        seen = torch.tensor([1.0 if k in self.sums else 0.0 for k in keys], dtype=torch.float64)
        total = reduce(torch.cat([state, seen])).tolist()
        n = len(keys)
        self.sums = {k: total[i] for i, k in enumerate(keys) if total[2 * n + i] > 0}
        self.counts = {k: int(round(total[n + i])) for i, k in enumerate(keys) if total[2 * n + i] > 0}


def baseline_metrics(
    schema: Schema, train: Mapping[str, Tensor], other: Mapping[str, Tensor]
) -> dict[str, float]:
    """The trivial predictor's metrics on ``other``: the training mean (numeric), the majority class."""
    out: dict[str, float] = {}
    for attribute in schema:
        y_train, y = train[attribute.name], other[attribute.name]
        m_train, m = label_mask(y_train), label_mask(y)
        if not bool(m.any()) or not bool(m_train.any()):
            continue
        if isinstance(attribute, NumericAttribute):
            mean = attribute.from_unit(y_train[m_train].double()).mean()
            out[f"mae.{attribute.name}"] = float((attribute.from_unit(y[m].double()) - mean).abs().mean())
        else:
            majority = int(torch.bincount(y_train[m_train], minlength=attribute.num_classes).argmax())
            out[f"acc.{attribute.name}"] = float((y[m] == majority).double().mean())
    return out


def format_epoch_line(event: EpochEnded, digits: int = 4) -> str:
    """The ``train-attrs`` line of one epoch: the engine's (:func:`styleforge.engine.fit.format_epoch_line`)
    with the MAE and accuracy groups.

    ``epoch 12/200 · loss 1.2723 = 1×variety_texture 0.0706 + … + 0.7×pri_color 0.8103 · val_loss
    1.31 · val MAE contrast 1.2 … · val acc pri_color 0.64``.
    """
    return _engine_epoch_line(event, EPOCH_LINE_GROUPS, digits)
