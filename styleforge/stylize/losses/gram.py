"""``--style-loss gram``: Gram matrices (Gatys et al. 2016), the classic style loss.

The Gram matrix is the uncentred second moment ``E[f fᵀ]`` of a layer's feature vectors (divided by
the channel count). Every style keeps its own term, ``Σ_l w_l · ‖G_l(x) − G_l(style)‖² /
‖G_l(style)‖²`` (with ``--style-norm balanced``, divided by the mean of the style's and the content's
``‖G_l‖²`` instead): the engine's sum of those terms weighted by the blend shares ``b_i`` has the gradient
of one quadratic around the mean of the styles' Gram matrices weighted by ``b_i / ‖G_i‖²``, so the
blend needs no target of its own, and each style's value stays reportable. Since the image's Gram
matrices are shared through the :class:`~styleforge.stylize.features.FeatureContext`, a style costs
only a C×C subtraction per layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from torch import Tensor

from ..features import FeatureContext, LayerMask, magnitude, magnitudes, masked_gram, mse
from .base import StyleLoss

__all__ = ["GramLoss", "GramTerm"]


@dataclass
class GramTerm:
    """``Σ_l w_l · ‖G_l(x) − G_l(style)‖² / ‖G_l(style)‖²`` for one style image.

    Relative, like the content term: each layer's Gram error is divided by the style Gram's own
    squared norm, so every layer and every network starts on the same footing (with plain MSE the
    deep layers' small Grams barely count and the shallow ones' dominate, by factors that depend on
    the weights). With ``mask``, the image's Gram matrices are taken over that region only
    (:func:`~styleforge.stylize.features.masked_gram`).

    Attributes:
        targets: Layer → the style image's Gram matrix (1, C, C).
        weights: Layer → weight.
        mask: The output region the style applies to (``None``: everywhere).
        magnitudes: Layer → the denominator (``None``: each target's mean square; ``--style-norm
            balanced`` passes its mean with the content Gram's).
    """

    targets: dict[str, Tensor]
    weights: dict[str, float]
    mask: LayerMask | None = None
    magnitudes: dict[str, Tensor] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.magnitudes is None:
            self.magnitudes = magnitudes(self.targets)

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return sum(
            w * mse(ctx.gram(layer, self.mask), self.targets[layer]) / self.magnitudes[layer]  # type: ignore[index]
            for layer, w in self.weights.items()
        )  # type: ignore[return-value]


class GramLoss(StyleLoss):
    """Gram matrices, one term per style (see the module docstring)."""

    name = "gram"
    shares_regions = False

    def statistics(self, features: Tensor, mask: LayerMask | None = None) -> Tensor:
        """The Gram matrix (1, C, C) of the masked positions."""
        return masked_gram(features, mask)

    def mix(self, targets: Sequence[Tensor], shares: Sequence[float]) -> Tensor:
        """The Gram matrix of the styles' mixture: the matrices averaged by ``shares`` (the run
        keeps one term per style instead, whose weighted sum is already a blend)."""
        return sum(s * t for s, t in zip(shares, targets))  # type: ignore[return-value]

    def magnitude(self, target: Tensor) -> Tensor:
        """The Gram matrix's mean square."""
        return magnitude(target)

    def content_statistic(self, features: Tensor) -> Tensor:
        """The feature map's Gram matrix (an average over its positions)."""
        return self.statistics(features)

    def content_magnitude(self, statistic: Tensor) -> Tensor:
        """The Gram matrix's mean square."""
        return magnitude(statistic)

    def term(
        self,
        targets: Mapping[str, Tensor],
        weights: Mapping[str, float],
        mask: LayerMask | None = None,
        group: int = 0,
        magnitudes: Mapping[str, Tensor] | None = None,
    ) -> GramTerm:
        return GramTerm(dict(targets), dict(weights), mask, dict(magnitudes or self.denominators(targets)))
