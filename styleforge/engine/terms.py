"""The weighted-loss engine: a loss is a set of named terms, each ``weight × term(inputs)``.

Both loops use it: pixel optimisation (terms ``content``, ``style.<name>``, ``tv``, ``attr.<name>``)
and network training (one term per attribute head). Every evaluation returns a :class:`LossReport`
with the differentiable total and each term's raw and weighted value, so the total a user sees is
always exactly the sum of the weighted parts shown beside it: no term is ever folded in silently
(a Keras user could not reconcile the printed total of a two-output model with its weighted parts
because a regulariser was hidden in it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import torch
from torch import Tensor

from ..errors import InvalidParameter, did_you_mean

__all__ = ["LossTerm", "WeightedLoss", "LossReport", "LossSummary", "validate_weight"]

#: A term maps the loop's inputs (e.g. a feature context, or predictions and labels) to a scalar.
LossTerm = Callable[..., Tensor]


def validate_weight(key: str, weight: object, *, param: str = "weight") -> float:
    """Checks that a loss weight is a finite number ≥ 0 and returns it as a float.

    Args:
        key: The term the weight belongs to, named in the error.
        weight: The candidate value.
        param: The parameter name to show in the error (e.g. ``--loss-weight``).

    Raises:
        InvalidParameter: If ``weight`` is not a real number, is negative, NaN or infinite.
    """
    try:
        value = float(weight)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidParameter(f"{param} {key}", weight, "a finite number >= 0") from None
    if isinstance(weight, bool) or not math.isfinite(value) or value < 0:
        raise InvalidParameter(f"{param} {key}", weight, "a finite number >= 0")
    return value


def _weight_text(weight: float) -> str:
    """A weight as printed beside its term: ``%g`` when that is exact (``0.7``, ``1``), else ``repr``."""
    text = f"{weight:g}"
    return text if Decimal(text) == Decimal(repr(float(weight))) else repr(float(weight))


@dataclass(frozen=True)
class LossSummary:
    """Plain-float view of one evaluation: what progress lines, histories and plots show.

    Attributes:
        total: Exactly ``math.fsum(weighted.values())``.
        raw: Each term's unweighted value.
        weighted: Each term's ``weight × raw``.
    """

    raw: dict[str, float]
    weighted: dict[str, float]

    @property
    def total(self) -> float:
        return math.fsum(self.weighted.values())

    def format(self, digits: int = 4, *, show_weights: Mapping[str, float] | None = None) -> str:
        """Formats ``total = part + part + …`` so that the printed parts add up to the printed total.

        Every part is rounded to the same decimal quantum (``digits`` significant digits of the
        largest magnitude), and the printed total is the exact decimal sum of the printed parts, so
        a reader can check the arithmetic by hand. The printed total differs from :attr:`total` by at
        most half a quantum per term.

        Args:
            digits: Significant digits of the largest part.
            show_weights: When given, each part is written ``weight×name raw`` instead of
                ``name weighted`` (the Keras-style epoch line), the raw values rounded by
                :meth:`rounded_raw`, and the printed total is exactly ``Σ weight × printed raw``.
        """
        parts = self.rounded_parts(digits)
        total = sum(parts.values(), Decimal(0))
        if show_weights is None:
            body = " + ".join(f"{name} {value:f}" for name, value in parts.items())  # :f, never 1.2E+4
        else:
            # Keras-style ``w×name raw``: the printed total is exactly Σ w × printed raw.
            raws = self.rounded_raw(show_weights, digits)
            shown = {n: _weight_text(show_weights[n]) for n in raws}
            if all(v.is_finite() for v in raws.values()):
                total = sum((Decimal(shown[n]) * v for n, v in raws.items()), Decimal(0))
                if total == total.quantize(quantum := self._quantum(digits)):
                    total = total.quantize(quantum)  # drop the zeros the products appended
            body = " + ".join(f"{shown[n]}×{n} {v:f}" for n, v in raws.items())
        return f"{total:f} = {body}" if body else f"{total:f}"

    def _quantum(self, digits: int) -> Decimal:
        """The decimal quantum of ``digits`` significant digits of the largest weighted part."""
        largest = max((abs(v) for v in self.weighted.values() if math.isfinite(v)), default=0.0)
        exponent = (math.floor(math.log10(largest)) if largest > 0 else 0) - digits + 1
        return Decimal(1).scaleb(exponent)

    def rounded_raw(self, weights: Mapping[str, float], digits: int = 4) -> dict[str, Decimal]:
        """Each raw value rounded so that ``weight × rounded raw`` is within half a shared quantum.

        The shared quantum is :meth:`rounded_parts`'s (``digits`` significant digits of the largest
        weighted part); term ``k`` is rounded to the largest power of ten ``q`` with
        ``weights[k] × q <= quantum``, so a term with a large weight and a tiny raw value keeps its
        digits. :meth:`format` with ``show_weights`` prints ``Σ weights[k] × rounded raw[k]``,
        computed exactly in decimal with each weight as printed, as the total: a reader can redo the
        sum by hand, as one checks Keras's ``loss = Σ loss_weight × output loss`` on its log.

        Args:
            weights: Term name → the weight printed beside it (``weighted / raw``).
            digits: Significant digits of the largest weighted part.
        """
        quantum = self._quantum(digits)
        out: dict[str, Decimal] = {}
        for name, value in self.raw.items():
            if not math.isfinite(value):
                out[name] = Decimal(value)
                continue
            weight = abs(Decimal(_weight_text(weights[name])))
            step = Decimal(1).scaleb(math.floor((quantum / weight).log10())) if weight > 0 else quantum
            out[name] = Decimal(repr(value)).quantize(step)
        return out

    def rounded_parts(self, digits: int = 4) -> dict[str, Decimal]:
        """Each weighted part rounded to one shared decimal quantum (see :meth:`format`)."""
        largest = max((abs(v) for v in self.weighted.values() if math.isfinite(v)), default=0.0)
        exponent = (math.floor(math.log10(largest)) if largest > 0 else 0) - digits + 1
        quantum = Decimal(1).scaleb(exponent)
        out: dict[str, Decimal] = {}
        for name, value in self.weighted.items():
            out[name] = Decimal(repr(value)).quantize(quantum) if math.isfinite(value) else Decimal(value)
        return out

    def as_row(self) -> dict[str, float]:
        """Flat mapping ``{"total", "<name>", "<name>.raw"}`` for CSV/JSON histories."""
        row = {"total": self.total}
        for name in self.weighted:
            row[name] = self.weighted[name]
            row[f"{name}.raw"] = self.raw[name]
        return row


@dataclass(frozen=True)
class LossReport:
    """One evaluation of a :class:`WeightedLoss`.

    Attributes:
        total: Differentiable scalar, ``Σ weights[k] × raw[k]``.
        raw: Each term's unweighted value (detached 0-d tensors, on the loss's device).
        weighted: Each term's weighted value (detached 0-d tensors).
    """

    total: Tensor
    raw: dict[str, Tensor]
    weighted: dict[str, Tensor]

    def summary(self) -> LossSummary:
        """Copies the values to the host in one transfer (one device sync) as plain floats."""
        names = list(self.raw)
        if not names:
            return LossSummary({}, {})
        values = torch.stack([self.raw[n] for n in names] + [self.weighted[n] for n in names])
        floats = values.detach().cpu().double().tolist()  # on the device: no float64 (Apple MPS has none)
        return LossSummary(dict(zip(names, floats[: len(names)])), dict(zip(names, floats[len(names) :])))


class WeightedLoss:
    """A named set of loss terms and their weights.

    Every term is called with the same arguments; the total is ``Σ weight × term(...)``. Weights are
    validated when the loss is built: a weight for an unknown term, or a negative, NaN or infinite
    weight, is rejected with a message naming the key. Terms without a given weight get 1.0 (as in
    Keras). A term with weight 0 is still evaluated and reported, but contributes nothing.

    Args:
        terms: Term name → callable returning a scalar tensor.
        weights: Term name → weight (optional per term).
        param: Parameter name used in validation errors.

    Example:
        >>> loss = WeightedLoss({"a": lambda x: x.sum(), "b": lambda x: (x**2).sum()}, {"b": 0.5})
        >>> report = loss(torch.ones(3))
        >>> float(report.total)
        4.5
    """

    def __init__(
        self,
        terms: Mapping[str, LossTerm],
        weights: Mapping[str, object] | None = None,
        *,
        param: str = "weight",
    ) -> None:
        self.terms: dict[str, LossTerm] = dict(terms)
        weights = dict(weights or {})
        unknown = [k for k in weights if k not in self.terms]
        if unknown:
            key = unknown[0]
            raise InvalidParameter(
                param, key, "a term name, one of: " + ", ".join(self.terms), did_you_mean(key, self.terms)
            )
        self.weights: dict[str, float] = {
            name: validate_weight(name, weights.get(name, 1.0), param=param) for name in self.terms
        }

    @property
    def names(self) -> list[str]:
        """The term names, in evaluation (and display) order."""
        return list(self.terms)

    def __call__(self, *args: object, **kwargs: object) -> LossReport:
        """Evaluates every term on the same inputs.

        Returns:
            A :class:`LossReport`; ``report.total`` carries gradients.
        """
        raw: dict[str, Tensor] = {}
        weighted: dict[str, Tensor] = {}
        total: Tensor | None = None
        for name, term in self.terms.items():
            value = term(*args, **kwargs)
            part = value * self.weights[name]
            total = part if total is None else total + part
            raw[name] = value.detach()
            weighted[name] = part.detach()
        if total is None:
            raise InvalidParameter("loss", "no terms", "at least one loss term")
        return LossReport(total, raw, weighted)


# Loops that average or all-reduce the raw values themselves (an epoch's mean, a distributed step)
# form their totals here too, so ``Σ weight × raw`` is written once, in this module.
__all__ += ["summary_of", "weighted_total"]


def summary_of(raw: Mapping[str, float], weights: Mapping[str, float]) -> LossSummary:
    """The :class:`LossSummary` of plain raw values under ``weights``.

    Args:
        raw: Term name → unweighted value (e.g. an epoch's mean of each term).
        weights: Term name → weight; every name of ``raw`` needs one.

    Returns:
        The summary: each part ``weights[k] × raw[k]`` in ``raw``'s order, the total their
        :func:`math.fsum`.
    """
    return LossSummary(dict(raw), {name: weights[name] * value for name, value in raw.items()})


def weighted_total(values: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """``Σ weights[k] × values[k]`` of 0-d tensors, differentiable, added in ``values``' order (as
    :class:`WeightedLoss` adds its terms).

    Raises:
        InvalidParameter: No values.
    """
    total: Tensor | None = None
    for name, value in values.items():
        part = value * weights[name]
        total = part if total is None else total + part
    if total is None:
        raise InvalidParameter("loss", "no terms", "at least one loss term")
    return total
