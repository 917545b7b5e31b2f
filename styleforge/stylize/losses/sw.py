"""``--style-loss sw``: the sliced Wasserstein distance (Heitz et al., CVPR 2021).

The output's and the style's feature vectors are projected on ``C`` random unit directions, and each
projection's sorted values are matched with the style's: it matches those 1-D marginals, higher
moments included. Heitz et al. re-draw the directions at every step; here they are drawn once per
region and scale (seeded), so the objective is one function for L-BFGS and the style's projections
are sorted once (re-drawing them cost L-BFGS its curvature information and doubled the loss's cost:
benchmarks/README.md).

Several styles that share an output region are one target: their feature sets pooled, each sample
weighted by its style's blend share (a mixture). The distance is divided by the style's mean square
feature.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..features import FeatureContext, LayerMask, mean_and_second, position_weights, positions
from .base import RegionDistance, StyleLoss, mean_square

__all__ = [
    "SWDistance",
    "SWTarget",
    "SlicedWasserstein",
    "argsort_rows",
    "sliced_wasserstein",
    "sort_rows",
    "sorted_projections",
]


def argsort_rows(values: Tensor) -> Tensor:
    """The order that sorts each row of ``values`` (P, N) ascending (no gradient).

    On the CPU it is NumPy's ``argsort`` (its vectorised quicksort): at 256 px it sorts the four
    style layers' projections (64 × 65,536 … 512 × 1,024 values) 6-9× faster than ``torch.sort``
    (benchmarks/README.md). Tied values may come in another order, which changes neither the sorted
    values nor the distance.
    """
    values = values.detach()
    if values.device.type != "cpu" or values.dtype not in (torch.float32, torch.float64):
        return values.argsort(dim=1)
    rows = np.ascontiguousarray(values.numpy())
    threads = min(torch.get_num_threads(), rows.shape[0])
    if threads < 2 or rows.size < _THREADED_FROM:
        return torch.from_numpy(np.argsort(rows, axis=1))
    # NumPy sorts without the GIL: the rows in as many blocks as torch has threads, side by side
    # (at 512 px relu1_1's 64 × 262,144 values: 0.13 s on 2 cores against 0.23 s on one).
    order = np.empty(rows.shape, dtype=np.int64)
    blocks = np.array_split(np.arange(rows.shape[0]), threads)

    def sort(block: np.ndarray) -> None:
        order[block[0] : block[-1] + 1] = np.argsort(rows[block[0] : block[-1] + 1], axis=1)

    list(_pool(threads).map(sort, blocks))
    return torch.from_numpy(order)


#: Values from which :func:`argsort_rows` sorts blocks of rows on several threads.
_THREADED_FROM = 1 << 16
_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}


def _pool(threads: int) -> ThreadPoolExecutor:
    """A thread pool of ``threads`` workers, made once per size and process and kept (a process forked
    from one that had a pool gets its own: the parent's threads do not exist in it)."""
    key = (os.getpid(), threads)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(threads, thread_name_prefix="styleforge-sort")
    return _POOLS[key]


def sort_rows(values: Tensor) -> tuple[Tensor, Tensor]:
    """Each row of ``values`` (P, N) ascending, and the order (as ``torch.sort`` returns them; the
    sorted values gathered with :func:`argsort_rows`'s order, so gradients flow as through
    ``torch.sort``)."""
    order = argsort_rows(values)
    return values.gather(1, order), order


def _quantiles(sorted_values: Tensor, sorted_weights: Tensor, at: Tensor) -> Tensor:
    """The weighted empirical quantile function (the inverse CDF) of each row, evaluated at ``at``.

    Args:
        sorted_values: (P, M) each row ascending.
        sorted_weights: (P, M) the samples' weights in that order, each row summing to 1.
        at: (P, N) levels in (0, 1).

    Returns:
        (P, N): for each level, the first sample whose cumulative weight reaches it (exact for
        mixtures: no interpolation across the gap between two styles' samples).
    """
    cumulative = sorted_weights.cumsum(1)
    index = torch.searchsorted(cumulative.contiguous(), at.contiguous()).clamp_max(cumulative.shape[1] - 1)
    return sorted_values.gather(1, index)


def sorted_projections(
    target: Tensor, target_weights: Tensor | None, directions: Tensor, count: int | None = None
) -> tuple[Tensor, Tensor | None]:
    """The style's side of :func:`sliced_wasserstein`: its projections on ``directions``, sorted.

    Args:
        target: (M, C) the style's vectors.
        target_weights: (M,) summing to 1, or ``None`` for uniform.
        directions: (C, P) unit columns.
        count: With uniform weights, resample the sorted values to this many (the output's
            position count, as Heitz et al. do).

    Returns:
        (P, M or ``count``) sorted projections, and their weights in that order (``None``: uniform).
    """
    with torch.no_grad():
        projected = (target @ directions).T  # (P, M)
        values, order = sort_rows(projected)
        if target_weights is not None:
            return values, target_weights[order]
        if count is not None and count != values.shape[1]:
            values = F.interpolate(values[None], size=count, mode="linear", align_corners=False)[0]
        return values, None


def sliced_wasserstein(
    x: Tensor,
    x_weights: Tensor | None,
    target: Tensor | None,
    target_weights: Tensor | None,
    directions: Tensor,
    *,
    target_sorted: tuple[Tensor, Tensor | None] | None = None,
) -> Tensor:
    """Sliced squared Wasserstein-2 distance of two weighted sets of C-vectors along ``directions``.

    Each set is projected on the P directions; the output's sorted projections are compared with the
    style's quantile function at the same levels (the style's set resampled to the output's count,
    as Heitz et al. do; with weights, the weighted quantiles), and the squared differences averaged
    with the output's weights and over the directions.

    Args:
        x: (N, C) the output's vectors (gradients flow here).
        x_weights: (N,) summing to 1, or ``None`` for uniform.
        target: (M, C) the style's vectors (unused when ``target_sorted`` is given).
        target_weights: (M,) summing to 1, or ``None`` for uniform.
        directions: (C, P) unit columns.
        target_sorted: :func:`sorted_projections` of the style on the same directions, computed once
            for many evaluations (with uniform weights, resampled to N).

    Returns:
        A scalar: the mean over directions of the 1-D squared W2 distances.
    """
    n = x.shape[0]
    if target_sorted is None:
        assert target is not None
        target_sorted = sorted_projections(
            target, target_weights, directions, n if x_weights is None else None
        )
    pt_sorted, tw_sorted = target_sorted
    projected = (x @ directions).T  # (P, N)
    if x_weights is None and tw_sorted is None:
        if pt_sorted.shape[1] != n:
            pt_sorted = F.interpolate(pt_sorted[None], size=n, mode="linear", align_corners=False)[0]
        # Σ (sorted(p) − t)², written as Σ (p − m)² with m the style's value of each sample's rank put
        # at the sample's place: the same value and gradient, without gathering p into sorted order
        # and scattering its gradient back.
        with torch.no_grad():
            matched = torch.empty_like(pt_sorted).scatter_(1, argsort_rows(projected), pt_sorted)
        return (projected - matched).square().mean()
    px_sorted, order = sort_rows(projected)
    if tw_sorted is None:
        tw_sorted = pt_sorted.new_full(pt_sorted.shape, 1.0 / pt_sorted.shape[1])
    xw_sorted = px_sorted.new_full(px_sorted.shape, 1.0 / n) if x_weights is None else x_weights[order]
    levels = xw_sorted.cumsum(1) - xw_sorted / 2  # each output sample at the middle of its share
    matched = _quantiles(pt_sorted, tw_sorted, levels.detach())
    return ((px_sorted - matched).square() * xw_sorted).sum(1).mean()


@dataclass
class SWTarget:
    """One layer's sliced-Wasserstein statistics of a style (or of a blend of styles).

    Attributes:
        samples: (M, C) the style's feature vectors (positions outside its mask left out).
        weights: (M,) the samples' weights, summing to 1, or ``None``: uniform.
        magnitude: The style's mean square feature (the denominator of the relative loss, alone or
            averaged with the content's).
    """

    samples: Tensor
    weights: Tensor | None
    magnitude: Tensor

    def sample_weights(self) -> Tensor:
        """:attr:`weights`, uniform ones written out."""
        if self.weights is not None:
            return self.weights
        return self.samples.new_full((self.samples.shape[0],), 1 / self.samples.shape[0])


class SWDistance(RegionDistance):
    """One region's sliced Wasserstein distance to its styles' blend (``targets``: layer →
    :class:`SWTarget`).

    Args:
        seed: Seeds the directions: C random unit directions per layer, drawn once for the region,
            so every evaluation measures the same function (which L-BFGS's line search and
            curvature pairs assume) and the style's sorted projections are taken once.
    """

    def __init__(
        self,
        targets: Mapping[str, SWTarget],
        weights: Mapping[str, float],
        magnitudes: Mapping[str, Tensor],
        mask: LayerMask | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(targets, weights, magnitudes, mask)
        self.seed = seed
        self._sides: dict[str, tuple[Tensor, tuple[Tensor, Tensor | None]]] = {}

    def _style_side(
        self, layer: str, features: Tensor, x_weights: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor | None]]:
        """The layer's directions (C, C) on the features' device and the style's sorted projections,
        made at the first evaluation (the directions are drawn on the CPU, seeded per layer)."""
        if layer not in self._sides:
            c, n = features.shape[1], features.shape[2] * features.shape[3]
            generator = torch.Generator().manual_seed(self.seed * 1000 + list(self.weights).index(layer))
            directions = F.normalize(torch.randn(c, c, generator=generator), dim=0).to(features.device)
            target = self.targets[layer]
            samples = target.samples.to(features.device)
            weights = None if target.weights is None else target.weights.to(features.device)
            count = n if x_weights is None and weights is None else None
            self._sides[layer] = directions, sorted_projections(samples, weights, directions, count)
        return self._sides[layer]

    def layer(self, ctx: FeatureContext, layer: str) -> Tensor:
        features = ctx.features[layer]
        x_weights = position_weights(self.mask, features)
        directions, target_sorted = self._style_side(layer, features, x_weights)
        value = sliced_wasserstein(
            positions(features), x_weights, None, None, directions, target_sorted=target_sorted
        )
        return value / self.magnitudes[layer]


class SlicedWasserstein(StyleLoss):
    """The sliced Wasserstein distance with directions fixed per region (see the module docstring)."""

    name = "sw"
    shares_regions = True

    def statistics(self, features: Tensor, mask: LayerMask | None = None) -> SWTarget:
        """The (masked) feature vectors of one layer's (1, C, H, W) style features."""
        _, second = mean_and_second(features, mask)
        magnitude = mean_square(second)
        f = positions(features)
        w = position_weights(mask, features)
        if w is None:
            return SWTarget(f.contiguous(), None, magnitude)
        keep = w > 0  # positions outside the mask carry no weight
        return SWTarget(f[keep].contiguous(), (w[keep] / w[keep].sum()).contiguous(), magnitude)

    def mix(self, targets: Sequence[SWTarget], shares: Sequence[float]) -> SWTarget:
        """The samples pooled, each weighted by its style's share (a mixture); the magnitudes averaged
        by ``shares``."""
        return SWTarget(
            samples=torch.cat([t.samples for t in targets]),
            weights=torch.cat([s * t.sample_weights() for s, t in zip(shares, targets)]),
            magnitude=sum(s * t.magnitude for s, t in zip(shares, targets)),  # type: ignore[arg-type]
        )

    def term(
        self,
        targets: Mapping[str, SWTarget],
        weights: Mapping[str, float],
        mask: LayerMask | None = None,
        group: int = 0,
        magnitudes: Mapping[str, Tensor] | None = None,
    ) -> SWDistance:
        """The region's distance, its directions seeded by the run's seed and the region's number."""
        return SWDistance(
            targets, weights, magnitudes or self.denominators(targets), mask, seed=self.seed + group
        )
