"""The protocol every style loss keeps, and the pieces the losses that blend styles share.

A style loss compares, layer by layer, the distribution of the output's feature vectors (one
C-vector per position) with a style image's. It does so in three steps, one method each:

1. :meth:`StyleLoss.targets`: a style image's statistics, per layer, over an optional mask of its
   own positions (computed once per scale of the pyramid);
2. :meth:`StyleLoss.blend`: one layer's statistics of several styles that apply to the same output
   region, made one target by their blend shares (summing to 1; each loss's :meth:`StyleLoss.mix`);
3. :meth:`StyleLoss.term`: the term that measures an output's features against those targets:
   a callable on a :class:`~styleforge.stylize.features.FeatureContext`.

Each is relative, as the content term is: divided by a *magnitude* (the style's mean square
feature, or for ``gram`` its Gram matrix's mean square), so that 0 is a perfect match and one
``--style-weight`` serves every network. With ``--style-norm balanced`` the
denominator is the mean of the style's magnitude and the content's, measured the same way
(:meth:`StyleLoss.denominators`): a dark or flat painting, whose own magnitude is small, then no
longer outweighs the content by the ratio of the two.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor

from ..features import FLOOR, FeatureContext, LayerMask, mean_and_second

__all__ = ["StyleLoss", "StyleTermFn", "RegionDistance", "StyleShare", "mean_square"]

#: A style term: one evaluation's features → a scalar.
StyleTermFn = Callable[[FeatureContext], Tensor]


class StyleLoss(ABC):
    """A style loss (``--style-loss``): statistics, their blend, and the term on them.

    Args:
        seed: The run's seed, for a loss that draws at random (the sliced Wasserstein distance's
            projection directions), so that a run can be repeated exactly; the others ignore it.
    """

    #: The ``--style-loss`` value that selects the loss.
    name: ClassVar[str]
    #: ``True``: the styles that share an output region share one distance to their blend (each
    #: style's term is a :class:`StyleShare` of it); ``False``: every style keeps its own term.
    shares_regions: ClassVar[bool]

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def targets(self, features: Mapping[str, Tensor], mask: LayerMask | None = None) -> dict[str, Any]:
        """Each layer's :meth:`statistics` of a style image's (1, C, H, W) ``features``, over
        ``mask``'s positions of that image (``None``: all)."""
        return {layer: self.statistics(f, mask) for layer, f in features.items()}

    @abstractmethod
    def statistics(self, features: Tensor, mask: LayerMask | None = None) -> Any:
        """One layer's statistics of (1, C, H, W) style features over ``mask``."""

    def blend(self, targets: Sequence[Any], shares: Sequence[float]) -> Any:
        """One target for several styles' statistics of one layer, ``shares`` summing to 1
        (:meth:`mix`); one target with share 1 is returned as it is."""
        return targets[0] if len(targets) == 1 else self.mix(targets, shares)

    @abstractmethod
    def mix(self, targets: Sequence[Any], shares: Sequence[float]) -> Any:
        """The blend of two or more styles' statistics of one layer."""

    def magnitude(self, target: Any) -> Tensor:
        """One layer's statistics' magnitude (a float32 scalar): what a distance to them is divided
        by. Here the statistics' ``magnitude``, the style's mean square feature (``w2``, ``sw``)."""
        return target.magnitude

    def content_statistic(self, features: Tensor) -> Tensor:
        """What :meth:`feature_magnitude` is taken from, an average over the positions of a (1, C, H, W)
        feature map, so that a picture measured tile by tile is the tiles' average weighted by their
        areas. Here the mean square feature."""
        return mean_square(mean_and_second(features, None)[1])

    def content_magnitude(self, statistic: Tensor) -> Tensor:
        """The magnitude of a :meth:`content_statistic` (here the statistic itself)."""
        return statistic

    def feature_magnitude(self, features: Tensor) -> Tensor:
        """:meth:`magnitude`'s measure of a (1, C, H, W) feature map: the content's, for
        ``--style-norm balanced``."""
        return self.content_magnitude(self.content_statistic(features))

    def denominators(
        self, targets: Mapping[str, Any], reference: Mapping[str, Tensor] | None = None
    ) -> dict[str, Tensor]:
        """Each layer's denominator of the relative distance to ``targets``: the target's
        :meth:`magnitude`, or with ``reference`` (layer → the content's :meth:`feature_magnitude`)
        the mean of the two (``--style-norm balanced``)."""
        own = {layer: self.magnitude(target) for layer, target in targets.items()}
        if reference is None:
            return own
        return {layer: ((m + reference[layer].to(m)) / 2).clamp_min(FLOOR) for layer, m in own.items()}

    @abstractmethod
    def term(
        self,
        targets: Mapping[str, Any],
        weights: Mapping[str, float],
        mask: LayerMask | None = None,
        group: int = 0,
        magnitudes: Mapping[str, Tensor] | None = None,
    ) -> StyleTermFn:
        """The term ``Σ_l w_l · D_l`` of ``targets`` (layer → statistics) over the output region
        ``mask`` (``None``: everywhere); ``group`` numbers the region among the run's;
        ``magnitudes`` (layer → denominator; ``None``: :meth:`denominators` of ``targets``) make
        each distance relative (:func:`~styleforge.stylize.losses.style_terms` passes them only for
        ``--style-norm balanced``)."""


def mean_square(second: Tensor) -> Tensor:
    """A style's mean square feature, from its second moment ``E[f fᵀ]`` (C, C): the magnitude its
    relative losses are divided by."""
    return (second.diagonal().sum() / second.shape[0]).clamp_min(FLOOR)


class RegionDistance(ABC):
    """The distance of one output region to its styles' blend, ``Σ_l w_l · D_l``, computed once per
    evaluation however many styles share it.

    Args:
        targets: Layer → the (blended) style statistics.
        weights: Layer → weight.
        magnitudes: Layer → what the layer's distance is divided by.
        mask: Where in the output the styles apply (``None``: everywhere).
    """

    def __init__(
        self,
        targets: Mapping[str, Any],
        weights: Mapping[str, float],
        magnitudes: Mapping[str, Tensor],
        mask: LayerMask | None = None,
    ) -> None:
        self.targets, self.weights, self.mask = dict(targets), dict(weights), mask
        self.magnitudes = dict(magnitudes)
        self.key = f"style-region-{id(self)}"

    @abstractmethod
    def layer(self, ctx: FeatureContext, layer: str) -> Tensor:
        """The relative distance ``D_l`` of one layer."""

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return ctx.memo(
            self.key, lambda: sum(w * self.layer(ctx, layer) for layer, w in self.weights.items())
        )


@dataclass
class StyleShare:
    """One style's ``style.<name>`` term: its region's distance (each style of a region reports the
    same raw value; the engine weighs it by the style's blend share)."""

    group: StyleTermFn

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return self.group(ctx)
