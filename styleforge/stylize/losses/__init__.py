"""The style losses (``--style-loss``) and the ``style.<name>`` terms of a run.

Every loss keeps one small protocol, :class:`~.base.StyleLoss`: a style image's per-layer
statistics (``targets``), the blend of several styles' statistics (``blend``), and the term on them
(``term``). The three losses see different amounts of the feature distribution:

- ``gram`` (:mod:`.gram`): the uncentred second moment ``E[f fᵀ]`` (Gatys et al. 2016);
- ``w2`` (:mod:`.w2`): the Wasserstein-2 distance between Gaussians fitted to both;
- ``sw`` (:mod:`.sw`): the sliced Wasserstein distance, higher moments included.

**Regions.** Every statistic takes an optional mask: per-position weights in [0, 1] at the layer's
resolution (the output's mask downsampled with the features), so a style is measured only where its
mask is on, and grey levels weigh positions partially. A style image's own mask weighs its positions
the same way.

**Blends.** For ``w2`` and ``sw`` the styles that share a region are one target, their blend. The
distance to it is computed once per evaluation and each style's ``style.<name>`` term carries its
blend share of it, so the printed parts still add up to the total (every style of a region reports
the same raw value: the distance to the region's blend). ``gram`` keeps one distance per style,
whose weighted sum is already a blend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from ..features import LayerMask
from .base import StyleLoss, StyleShare, StyleTermFn
from .gram import GramLoss, GramTerm
from .sw import SlicedWasserstein
from .w2 import W2Loss

__all__ = [
    "StyleLoss",
    "StyleShare",
    "GramLoss",
    "GramTerm",
    "W2Loss",
    "SlicedWasserstein",
    "LOSSES",
    "style_loss",
    "layer_targets",
    "style_terms",
]

#: ``--style-loss`` value → the loss.
LOSSES: dict[str, type[StyleLoss]] = {cls.name: cls for cls in (GramLoss, W2Loss, SlicedWasserstein)}


def style_loss(loss: StyleLoss | str, *, seed: int = 0) -> StyleLoss:
    """The loss named ``loss`` (one of :data:`LOSSES`), seeded with ``seed``; a loss given as one is
    returned as it is."""
    return loss if isinstance(loss, StyleLoss) else LOSSES[loss](seed)


def layer_targets(
    loss: StyleLoss | str, features: Mapping[str, Tensor], mask: LayerMask | None = None
) -> dict[str, Any]:
    """Each layer's style statistics for ``loss`` (:meth:`StyleLoss.targets`)."""
    return style_loss(loss).targets(features, mask)


def _regions(regions: Sequence[LayerMask | None]) -> list[list[int]]:
    """The styles grouped by output region (the same :class:`LayerMask` object, or ``None``), in the
    order of each region's first style."""
    groups: dict[int, list[int]] = {}
    for i, region in enumerate(regions):
        groups.setdefault(id(region), []).append(i)
    return list(groups.values())


def style_terms(
    loss: StyleLoss | str,
    names: Sequence[str],
    shares: Sequence[float],
    targets: Sequence[Mapping[str, Any]],
    weights: dict[str, float],
    regions: Sequence[LayerMask | None],
    reference: Mapping[str, Tensor] | None = None,
) -> dict[str, StyleTermFn]:
    """The ``style.<name>`` terms of a run, one per style.

    A loss that shares regions (``w2``, ``sw``) groups the styles by region: each group's target is
    their blend by ``shares`` (renormalised within the group), its distance one term, and each
    style's term a :class:`StyleShare` of it. A ``gram`` style is a group of its own.

    Args:
        loss: The style loss, or its name.
        names: Term names, one per style.
        shares: Blend weights, one per style.
        targets: Per style, the loss's :meth:`~StyleLoss.targets` of its image.
        weights: Style layer → weight.
        regions: Per style, its output region (``None``: everywhere).
        reference: Style layer → the content's :meth:`~StyleLoss.feature_magnitude` (``--style-norm
            balanced``): each distance is divided by the mean of it and the style's magnitude;
            ``None``: by the style's alone.
    """
    loss = style_loss(loss)
    groups = _regions(regions) if loss.shares_regions else [[i] for i in range(len(names))]
    terms: dict[str, StyleTermFn] = {}
    for g, members in enumerate(groups):
        total = sum(shares[i] for i in members)
        blend = {
            layer: loss.blend([targets[i][layer] for i in members], [shares[i] / total for i in members])
            for layer in weights
        }
        region = regions[members[0]]
        if reference is None:
            term = loss.term(blend, weights, region, group=g)
        else:
            term = loss.term(blend, weights, region, group=g, magnitudes=loss.denominators(blend, reference))
        terms.update({names[i]: StyleShare(term) if loss.shares_regions else term for i in members})
    return {name: terms[name] for name in names}
