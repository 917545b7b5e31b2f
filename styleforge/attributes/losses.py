"""The attribute network's training objective: one engine term per head, weighted and balanced.

One term per attribute head, named after the attribute: the numeric heads' regression loss
(``--numeric-loss``) on labels mapped to [-1, 1], the categorical heads' cross-entropy (with label
smoothing). Unlabelled cells are masked out of their head's term. ``--loss-weight`` sets each term's
weight (``numeric``, ``categorical`` or an attribute name; :func:`head_weights`); ``--balance`` can
rescale the terms automatically (:func:`build_loss`):

- ``initial``: each head's loss is divided by its value on the training set before the first
  update, so every term starts near 1 (the hand-balancing Holly Grimm did for her network, done
  once).
- ``uncertainty``: Kendall, Gal & Cipolla (2018): each term becomes ``exp(-s)·L + s`` with a learned
  log-variance ``s`` per head (the common simplified form: the paper's ½ factors only rescale).
  The regulariser ``s`` is inside the term's value, so the printed total is still exactly the sum
  of the printed terms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import TrainConfig
from ..engine import WeightedLoss, validate_weight
from ..errors import InvalidParameter, did_you_mean
from .batches import Batch
from .kinds import CategoricalAttribute, NumericAttribute
from .labels import label_mask
from .schema import Schema

__all__ = ["head_weights", "HeadLoss", "build_loss"]


def head_weights(schema: Schema, loss_weights: Mapping[str, float]) -> dict[str, float]:
    """Each head's weight: 1, then ``numeric`` / ``categorical`` for its kind, then its own name.

    Args:
        schema: The attributes.
        loss_weights: ``numeric``, ``categorical`` or attribute name → weight.

    Raises:
        InvalidParameter: An unknown key (the valid ones listed), a kind the schema does not have,
            or an invalid weight.
    """
    keys = ["numeric", "categorical", *schema.names]
    for key, value in loss_weights.items():
        if key not in keys:
            raise InvalidParameter(
                "--loss-weight",
                key,
                "numeric, categorical or an attribute name: " + ", ".join(schema.names),
                did_you_mean(key, keys),
            )
        validate_weight(key, value, param="--loss-weight")
        if key == "numeric" and not schema.numeric or key == "categorical" and not schema.categorical:
            raise InvalidParameter(
                "--loss-weight", key, "a kind of attribute the schema has: " + ", ".join(schema.names)
            )
    out = {}
    for attribute in schema:
        weight = loss_weights.get(attribute.kind, 1.0)
        out[attribute.name] = float(loss_weights.get(attribute.name, weight))
    return out


class HeadLoss:
    """One head's masked loss, called as ``term(outputs, batch)`` by the engine.

    Args:
        attribute: The attribute.
        numeric_loss: ``mse``, ``smooth_l1``, ``l1`` or ``huber`` (numeric heads, on the [-1, 1] scale).
        delta: ``huber``'s delta / ``smooth_l1``'s beta.
        label_smoothing: Cross-entropy label smoothing (categorical heads).

    Returns (when called): the mean loss over the batch's labelled values, a 0-d tensor (0 with a
    gradient of 0 when none is labelled).
    """

    def __init__(
        self,
        attribute: NumericAttribute | CategoricalAttribute,
        numeric_loss: str = "mse",
        delta: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        self.attribute, self.name = attribute, attribute.name
        self.numeric = isinstance(attribute, NumericAttribute)
        self.numeric_loss, self.delta, self.label_smoothing = (
            numeric_loss,
            float(delta),
            float(label_smoothing),
        )

    def per_item(self, output: Tensor, target: Tensor) -> Tensor:
        """Unreduced loss of labelled values only: ``(n_labelled,)``."""
        mask = label_mask(target)
        if self.numeric:
            pred, true = output[mask], target[mask].to(output.dtype)
            if self.numeric_loss == "mse":
                return (pred - true) ** 2
            if self.numeric_loss == "l1":
                return (pred - true).abs()
            if self.numeric_loss == "smooth_l1":
                return F.smooth_l1_loss(pred, true, reduction="none", beta=self.delta)
            return F.huber_loss(pred, true, reduction="none", delta=self.delta)
        return F.cross_entropy(
            output[mask], target[mask], reduction="none", label_smoothing=self.label_smoothing
        )

    def __call__(self, outputs: Mapping[str, Tensor], batch: Batch) -> Tensor:
        output = outputs[self.name]
        values = self.per_item(output, batch.labels[self.name])
        if values.numel() == 0:
            return output.sum() * 0.0
        return values.mean()


class _InitialBalanced:
    """``--balance initial``: the head's loss divided by its value before training."""

    def __init__(self, term: HeadLoss, initial: float) -> None:
        self.term, self.initial = term, float(initial)

    def __call__(self, outputs: Mapping[str, Tensor], batch: Batch) -> Tensor:
        return self.term(outputs, batch) / self.initial


class _UncertaintyBalanced:
    """``--balance uncertainty``: ``exp(-s)·L + s`` (Kendall et al. 2018), ``s`` learned."""

    def __init__(self, term: HeadLoss, log_var: nn.Parameter) -> None:
        self.term, self.log_var = term, log_var

    def __call__(self, outputs: Mapping[str, Tensor], batch: Batch) -> Tensor:
        value = self.term(outputs, batch)
        if not bool(label_mask(batch.labels[self.term.name]).any()):
            return value + self.log_var * 0.0  # nothing labelled: no term, not even the regulariser
        return torch.exp(-self.log_var) * value + self.log_var


def build_loss(
    schema: Schema,
    config: TrainConfig,
    *,
    initial: Mapping[str, float] | None = None,
    log_vars: nn.ParameterDict | None = None,
) -> tuple[WeightedLoss, dict[str, HeadLoss]]:
    """The engine loss: one term per head, weighted by ``--loss-weight``, balanced by ``--balance``.

    Args:
        schema: The attributes.
        config: ``numeric_loss``, ``huber_delta``, ``label_smoothing``, ``loss_weights``, ``balance``.
        initial: ``balance == "initial"``: each head's loss before training (values <= 0 or
            non-finite divide by 1).
        log_vars: ``balance == "uncertainty"``: one learnable scalar per head.

    Returns:
        The :class:`WeightedLoss` and the plain (unbalanced) head losses.
    """
    heads = {
        a.name: HeadLoss(a, config.numeric_loss, config.huber_delta, config.label_smoothing) for a in schema
    }
    terms: dict[str, Callable[..., Tensor]] = dict(heads)
    if config.balance == "initial":
        assert initial is not None
        terms = {
            n: _InitialBalanced(h, v if math.isfinite(v := float(initial[n])) and v > 0 else 1.0)
            for n, h in heads.items()
        }
    elif config.balance == "uncertainty":
        assert log_vars is not None
        terms = {n: _UncertaintyBalanced(h, log_vars[n]) for n, h in heads.items()}
    return WeightedLoss(terms, head_weights(schema, config.loss_weights), param="--loss-weight"), heads
