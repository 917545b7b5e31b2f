"""The style losses: Gram matrices, Wasserstein-2 between Gaussians, and sliced Wasserstein.

A style loss compares, layer by layer, the distribution of the output's feature vectors (one C-vector
per position) with the style image's. The three losses see different amounts of that distribution:

- ``gram``: the uncentred second moment ``E[f fᵀ]`` (Gatys et al. 2016): the classic.
- ``w2``: the Wasserstein-2 distance between Gaussians fitted to both (mean and covariance), as
  crowsonkb/style-transfer-pytorch does: the mean and the covariance count separately, so a style's
  colours and contrast are matched, not only their product.
- ``sw``: the sliced Wasserstein distance (Heitz et al., CVPR 2021): the features projected on ``C``
  random unit directions, each projection's sorted values matched with the style's. It matches those
  1-D marginals, higher moments included. Heitz et al. re-draw the directions at every step; here
  they are drawn once per scale (seeded), so the objective is one function for L-BFGS and the
  style's projections are sorted once (re-drawing them cost L-BFGS its curvature information and
  doubled the loss's cost: benchmarks/README.md).

Each is relative, as the content term is: divided by the style's mean square feature (the Gram's own
squared norm for ``gram``), so 0 is a perfect match and one ``--style-weight`` serves every network.

**Regions.** Every statistic takes an optional mask: per-position weights in [0, 1] at the layer's
resolution (the output's mask downsampled with the features), so a style is measured only where its
mask is on, and grey levels weigh positions partially. A style image's own mask weighs its positions
the same way.

**Blends.** For ``w2`` and ``sw`` several styles that share a region are one target: their means and
second moments averaged by the blend weights (``w2``: linear in the moments, so the blend of a style
with itself is that style), or their feature sets pooled with each sample weighted by its style's blend
weight (``sw``: the mixture). The distance to that target is computed once per evaluation and each
style's ``style.<name>`` term carries its blend share of it, so the printed parts still add up to the
total (every style of a group reports the same raw value: the distance to the group's blend).
``gram`` keeps one distance per style, whose sum is already a blend (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import STYLE_LOSSES
from .objective import FeatureContext, LayerMask, StyleTerm, full_precision, gram_and_mean, masked_gram

__all__ = [
    "sorted_projections",
    "STYLE_LOSSES",
    "gaussian",
    "w2_distance",
    "w2_to_target",
    "trace_sqrt",
    "sliced_wasserstein",
    "StyleTarget",
    "style_target",
    "blend_targets",
    "StyleGroup",
    "StyleShare",
    "layer_targets",
    "style_terms",
]


def _positions(features: Tensor) -> Tensor:
    """(N, C) feature vectors, one per position, float32 or float64 (the statistics stay fp32 under bf16)."""
    b, c, h, w = features.shape
    if b != 1:
        raise ValueError(f"style statistics take one image at a time, got a batch of {b}")
    return full_precision(features).permute(0, 2, 3, 1).reshape(h * w, c)


def _weights(mask: LayerMask | None, features: Tensor) -> Tensor | None:
    """The mask at ``features``' resolution, flat (N,) and normalised to sum 1 (``None``: uniform)."""
    if mask is None:
        return None
    w = mask.at(features).to(torch.promote_types(features.dtype, torch.float32)).reshape(-1)
    return w / w.sum().clamp_min(1e-12)


def _moments(features: Tensor, mask: LayerMask | None) -> tuple[Tensor, Tensor]:
    """The (masked) mean (C,) and second moment ``E[f fᵀ]`` (C, C) of (1, C, H, W) features.

    The second moment is ``C ×`` :func:`masked_gram`, so it shares the Gram matrix's one-product
    backward and the activations' memory layout (a centred copy of the features would cost three
    more passes over them per evaluation).
    """
    c = features.shape[1]
    if mask is None:
        product, mean = gram_and_mean(features)
        return mean[0], product[0] * c
    second = masked_gram(features, mask)[0] * c
    m = mask.at(features).to(torch.promote_types(features.dtype, torch.float32))
    return (features * m).sum((0, 2, 3)) / m.sum().clamp_min(1e-12), second


def gaussian(features: Tensor, mask: LayerMask | None = None) -> tuple[Tensor, Tensor]:
    """The (masked) mean (C,) and covariance (C, C) of the feature vectors of (1, C, H, W) features."""
    mean, second = _moments(features, mask)
    return mean, second - torch.outer(mean, mean)


#: Eigenvalues below this share of the largest count as zero in the gradient of ``tr √K``, by the
#: matrix's type: float32 resolves eigenvalues down to about 1e−7 of the largest, and below that an
#: eigenvector is rounding noise, which a larger ``K^(−½)`` would amplify into the gradient.
_EIGEN_FLOOR = {torch.float32: 1e-8, torch.float64: 1e-12}


def _has_eigh(device: torch.device) -> bool:
    """Whether ``torch.linalg.eigh`` runs on ``device`` (the CPU's LAPACK and CUDA's cuSOLVER; Apple's
    MPS has none)."""
    return device.type in ("cpu", "cuda")


def _newton_schulz(matrix: Tensor, iterations: int = 24) -> tuple[Tensor, Tensor]:
    """``(√K, K^(−½))`` of a symmetric PSD matrix by the coupled Newton–Schulz iteration (Higham 2008,
    eq. 6.35): matrix products only, for devices without an eigendecomposition. ``K`` is scaled by its
    Frobenius norm so that every eigenvalue lies in (0, 1], where the iteration converges."""
    norm = matrix.norm().clamp_min(1e-30)
    eye = torch.eye(matrix.shape[0], dtype=matrix.dtype, device=matrix.device)
    y, z = matrix / norm, eye
    for _ in range(iterations):
        t = 1.5 * eye - 0.5 * (z @ y)
        y, z = y @ t, t @ z
    return y * norm.sqrt(), z / norm.sqrt()


class _TraceSqrt(torch.autograd.Function):
    """``tr √K`` of a symmetric positive semi-definite (n, n) matrix, in ``K``'s own type; its gradient is
    ``½ K^(−½)``, with eigenvalues under :data:`_EIGEN_FLOOR` of the largest floored there (features of
    a ReLU network have dead channels, whose zero eigenvalues would make the gradient infinite).

    An eigendecomposition where the device has one, else :func:`_newton_schulz`."""

    @staticmethod
    def forward(ctx: Any, matrix: Tensor) -> Tensor:  # type: ignore[override]
        sym = (matrix + matrix.T) / 2
        if not _has_eigh(matrix.device):
            root, inv_root = _newton_schulz(sym)
            ctx.save_for_backward(inv_root / 2)
            return root.diagonal().sum()
        values, vectors = torch.linalg.eigh(sym)
        values = values.clamp_min(0)
        floor = values.max().clamp_min(1e-30) * _EIGEN_FLOOR.get(matrix.dtype, 1e-8)
        ctx.save_for_backward((vectors * (values.clamp_min(floor).rsqrt() / 2)) @ vectors.T)
        return values.sqrt().sum()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:  # type: ignore[override]
        (half_inv_root,) = ctx.saved_tensors
        return grad * half_inv_root


def trace_sqrt(matrix: Tensor) -> Tensor:
    """``tr √K`` of a symmetric PSD matrix, differentiable (:class:`_TraceSqrt`)."""
    return _TraceSqrt.apply(matrix)


def _sqrtm_psd(matrix: Tensor) -> Tensor:
    """The symmetric square root of a PSD (C, C) matrix (a float64 eigendecomposition on the CPU, once
    per style target: devices without float64 or an eigendecomposition get the result)."""
    values, vectors = torch.linalg.eigh(matrix.detach().cpu().double())
    return ((vectors * values.clamp_min(0).sqrt()) @ vectors.T).to(matrix)


def w2_distance(
    mean: Tensor, cov: Tensor, target_mean: Tensor, target_cov: Tensor, target_sqrt: Tensor | None = None
) -> Tensor:
    """Squared Wasserstein-2 distance between N(mean, cov) and N(target_mean, target_cov).

    ``‖μ − μₜ‖² + tr Σ + tr Σₜ − 2 tr √(Σₜ^½ Σ Σₜ^½)`` (Dowson & Landau 1982); gradients flow to
    ``mean`` and ``cov`` only. ``target_sqrt`` (``Σₜ^½``) may be passed precomputed.
    """
    root = _sqrtm_psd(target_cov) if target_sqrt is None else target_sqrt
    cross = trace_sqrt(root @ cov @ root)
    return (
        (mean - target_mean).square().sum() + cov.diagonal().sum() + target_cov.diagonal().sum() - 2 * cross
    )


def w2_to_target(
    features: Tensor, mask: LayerMask | None, target_mean: Tensor, target_cov: Tensor, target_sqrt: Tensor
) -> Tensor:
    """:func:`w2_distance` of the Gaussian of (1, C, H, W) ``features`` (over ``mask``) to a target's.

    The cross term ``tr √(R Σ R)`` (``R = Σₜ^½``) is the sum of the singular values of
    ``A = √w ⊙ (F − μ) R`` (N × C, one row per position, ``w`` the positions' weights), since
    ``R Σ R = AᵀA``. It is taken on the smaller side of ``A``: from ``AᵀA`` (C × C) when there are at
    least as many positions as channels, else from ``A Aᵀ`` (N × N), which has the same non-zero
    eigenvalues: deep layers of small images have few positions (512 channels at 12 positions for
    relu5_1 of a 64 px image), so their matrix function costs N³ instead of C³.
    """
    b, c, h, w = features.shape
    if h * w >= c:
        mean, cov = gaussian(features, mask)
        return w2_distance(mean, cov, target_mean, target_cov, target_sqrt)
    x = _positions(features)
    weights = _weights(mask, features)
    weights = x.new_full((h * w,), 1.0 / (h * w)) if weights is None else weights
    mean = weights @ x
    centred = x - mean
    a = centred @ target_sqrt * weights.sqrt()[:, None]
    spread = (centred.square() * weights[:, None]).sum()
    cross = trace_sqrt(a @ a.T)
    return (mean - target_mean).square().sum() + spread + target_cov.diagonal().sum() - 2 * cross


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
        if target_weights is not None:
            values, order = projected.sort(dim=1)
            return values, target_weights[order]
        values = projected.sort(dim=1).values
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
    px_sorted, order = (x @ directions).T.sort(dim=1)  # (P, N)
    if x_weights is None and tw_sorted is None:
        if pt_sorted.shape[1] != n:
            pt_sorted = F.interpolate(pt_sorted[None], size=n, mode="linear", align_corners=False)[0]
        return (px_sorted - pt_sorted).square().mean()
    if tw_sorted is None:
        tw_sorted = pt_sorted.new_full(pt_sorted.shape, 1.0 / pt_sorted.shape[1])
    xw_sorted = px_sorted.new_full(px_sorted.shape, 1.0 / n) if x_weights is None else x_weights[order]
    levels = xw_sorted.cumsum(1) - xw_sorted / 2  # each output sample at the middle of its share
    matched = _quantiles(pt_sorted, tw_sorted, levels.detach())
    return ((px_sorted - matched).square() * xw_sorted).sum(1).mean()


@dataclass
class StyleTarget:
    """One layer's ``w2`` or ``sw`` statistics of a style (or of a blend of styles).

    Attributes:
        kind: ``w2`` or ``sw``.
        mean: (C,) for ``w2``.
        second: (C, C) ``E[f fᵀ]`` for ``w2`` (blends average it: linear).
        samples: (M, C) for ``sw``; ``weights`` (M,) summing to 1, or ``None``: uniform.
        scale: The style's mean square feature, the denominator of the relative loss.
    """

    kind: str
    scale: Tensor
    mean: Tensor | None = None
    second: Tensor | None = None
    samples: Tensor | None = None
    weights: Tensor | None = None
    _w2: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    def w2_parts(self) -> tuple[Tensor, Tensor]:
        """The covariance and its square root (computed once)."""
        if self._w2 is None:
            assert self.mean is not None and self.second is not None
            cov = self.second - torch.outer(self.mean, self.mean)
            cov = (cov + cov.T) / 2
            self._w2 = (cov, _sqrtm_psd(cov))
        return self._w2


def style_target(kind: str, features: Tensor, mask: LayerMask | None = None) -> StyleTarget:
    """The ``w2`` or ``sw`` statistics of one layer's (1, C, H, W) style features over ``mask``."""
    if kind not in ("w2", "sw"):
        raise ValueError(f"style_target takes w2 or sw, not {kind!r} (Gram targets: masked_gram)")
    mean, second = _moments(features, mask)
    scale = (second.diagonal().sum() / second.shape[0]).clamp_min(1e-30)
    if kind == "w2":
        return StyleTarget(kind, scale=scale, mean=mean, second=second)
    f = _positions(features)
    w = _weights(mask, features)
    if w is None:
        return StyleTarget(kind, scale=scale, samples=f.contiguous())
    keep = w > 0  # positions outside the mask carry no weight
    return StyleTarget(
        kind, scale=scale, samples=f[keep].contiguous(), weights=(w[keep] / w[keep].sum()).contiguous()
    )


def layer_targets(kind: str, features: dict[str, Tensor], mask: LayerMask | None = None) -> dict[str, Any]:
    """Each layer's style statistics for ``kind``: a Gram matrix (1, C, C) for ``gram``, else a
    :class:`StyleTarget`, over ``mask``'s positions of the style image (``None``: all)."""
    if kind == "gram":
        return {layer: masked_gram(f, mask) for layer, f in features.items()}
    return {layer: style_target(kind, f, mask) for layer, f in features.items()}


def blend_targets(targets: Sequence[StyleTarget], shares: Sequence[float]) -> StyleTarget:
    """One target for several styles' statistics of one layer, ``shares`` summing to 1.

    ``w2``: means and second moments averaged (so the blend is linear in the moments); ``sw``: the
    samples pooled, each weighted by its style's share (a mixture); the scale averaged likewise.
    """
    if len(targets) == 1:
        return targets[0]
    kind = targets[0].kind
    scale = sum(s * t.scale for s, t in zip(shares, targets))
    if kind == "w2":
        return StyleTarget(
            kind,
            scale=scale,
            mean=sum(s * t.mean for s, t in zip(shares, targets)),  # type: ignore[misc]
            second=sum(s * t.second for s, t in zip(shares, targets)),
        )  # type: ignore[misc]
    if kind == "sw":
        weights = [
            s
            * (
                t.weights
                if t.weights is not None
                else t.samples.new_full((t.samples.shape[0],), 1 / t.samples.shape[0])
            )
            for s, t in zip(shares, targets)
        ]  # type: ignore[union-attr]
        return StyleTarget(
            kind,
            scale=scale,
            samples=torch.cat([t.samples for t in targets]),  # type: ignore[misc]
            weights=torch.cat(weights),
        )
    raise ValueError(f"{kind} targets are not blended")


class StyleGroup:
    """The ``w2`` or ``sw`` distance of one region to its styles' blend: ``Σ_l w_l · D_l / scale_l``.

    Args:
        kind: ``w2`` or ``sw``.
        targets: Layer → the (blended) style statistics.
        weights: Layer → weight.
        mask: Where in the output the style applies (``None``: everywhere).
        seed: Seeds the ``sw`` directions: C random unit directions per layer, drawn once for the
            group, so every evaluation measures the same function (which L-BFGS's line search and
            curvature pairs assume) and the style's sorted projections are taken once.
    """

    def __init__(
        self,
        kind: str,
        targets: dict[str, StyleTarget],
        weights: dict[str, float],
        mask: LayerMask | None = None,
        seed: int = 0,
    ) -> None:
        self.kind, self.targets, self.weights, self.mask = kind, targets, weights, mask
        self.seed = seed
        self.key = f"style-group-{id(self)}"
        self._sw: dict[str, tuple[Tensor, tuple[Tensor, Tensor | None]]] = {}

    def _sw_side(
        self, layer: str, features: Tensor, x_weights: Tensor | None
    ) -> tuple[Tensor, tuple[Tensor, Tensor | None]]:
        """The layer's directions (C, C) on the features' device and the style's sorted projections,
        made at the first evaluation (the directions are drawn on the CPU, seeded per layer)."""
        if layer not in self._sw:
            c, n = features.shape[1], features.shape[2] * features.shape[3]
            generator = torch.Generator().manual_seed(self.seed * 1000 + list(self.weights).index(layer))
            directions = F.normalize(torch.randn(c, c, generator=generator), dim=0).to(features.device)
            target = self.targets[layer]
            samples = target.samples.to(features.device)  # type: ignore[union-attr]
            weights = None if target.weights is None else target.weights.to(features.device)
            count = n if x_weights is None and weights is None else None
            self._sw[layer] = directions, sorted_projections(samples, weights, directions, count)
        return self._sw[layer]

    def _layer(self, ctx: FeatureContext, layer: str) -> Tensor:
        target, features = self.targets[layer], ctx.features[layer]
        if self.kind == "w2":
            t_cov, t_root = target.w2_parts()
            return w2_to_target(features, self.mask, target.mean, t_cov, t_root) / (
                target.scale * features.shape[1]
            )  # type: ignore[arg-type]
        x_weights = _weights(self.mask, features)
        directions, target_sorted = self._sw_side(layer, features, x_weights)
        value = sliced_wasserstein(
            _positions(features), x_weights, None, None, directions, target_sorted=target_sorted
        )
        return value / target.scale

    def __call__(self, ctx: FeatureContext) -> Tensor:
        """The group's distance, computed once per evaluation however many styles share it."""
        return ctx.memo(
            self.key, lambda: sum(w * self._layer(ctx, layer) for layer, w in self.weights.items())
        )


@dataclass
class StyleShare:
    """One style's ``style.<name>`` term: its group's distance (each style of a group reports the
    same raw value; the engine weighs it by the style's blend share)."""

    group: StyleGroup

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return self.group(ctx)


def style_terms(
    kind: str,
    names: Sequence[str],
    shares: Sequence[float],
    targets: Sequence[dict[str, Any]],
    weights: dict[str, float],
    regions: Sequence[LayerMask | None],
    seed: int = 0,
) -> dict[str, Any]:
    """The ``style.<name>`` terms of a run, one per style.

    ``gram``: a :class:`~styleforge.stylize.objective.StyleTerm` per style, over its region.
    ``w2``/``sw``: the styles that share a region (the same :class:`LayerMask` object, or ``None``)
    form one :class:`StyleGroup` whose target is their blend by ``shares`` (renormalised within the
    group); each style's term is a :class:`StyleShare` of it.

    Args:
        kind: The style loss.
        names: Term names, one per style.
        shares: Blend weights, one per style.
        targets: Per style, :func:`layer_targets` of its image.
        weights: Style layer → weight.
        regions: Per style, its output region (``None``: everywhere).
        seed: Seeds the ``sw`` directions (each group its own stream).
    """
    if kind == "gram":
        return {name: StyleTerm(t, weights, mask=region) for name, t, region in zip(names, targets, regions)}
    groups: dict[int, list[int]] = {}
    for i, region in enumerate(regions):
        groups.setdefault(id(region), []).append(i)
    terms: dict[str, Any] = {}
    for g, members in enumerate(groups.values()):
        total = sum(shares[i] for i in members)
        blend = {
            layer: blend_targets([targets[i][layer] for i in members], [shares[i] / total for i in members])
            for layer in weights
        }
        group = StyleGroup(kind, blend, weights, regions[members[0]], seed=seed + g)
        terms.update({names[i]: StyleShare(group) for i in members})
    return {name: terms[name] for name in names}
