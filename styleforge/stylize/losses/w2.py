"""``--style-loss w2``: the Wasserstein-2 distance between Gaussians fitted to the features.

The output's and the style's feature vectors are each summarised by a mean and a covariance, and
compared by the closed-form W2 distance between the two Gaussians, as crowsonkb/style-transfer-pytorch
does: the mean and the covariance count separately, so a style's colours and contrast are matched,
not only their product (which is all a Gram matrix sees).

Several styles that share an output region are one target: their means and second moments averaged
by the blend shares (linear in the moments, so the blend of a style with itself is that style). The
distance is divided by the style's mean square feature times the channel count: relative, 1 at zero
features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..features import FeatureContext, LayerMask, mean_and_second, position_weights, positions
from .base import RegionDistance, StyleLoss, mean_square

__all__ = [
    "gaussian",
    "trace_sqrt",
    "w2_distance",
    "w2_to_target",
    "W2Target",
    "W2Distance",
    "W2Loss",
]


def gaussian(features: Tensor, mask: LayerMask | None = None) -> tuple[Tensor, Tensor]:
    """The (masked) mean (C,) and covariance (C, C) of the feature vectors of (1, C, H, W) features."""
    mean, second = mean_and_second(features, mask)
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
    """``tr √K`` of a symmetric positive semi-definite (n, n) matrix, in ``K``'s own type; its
    gradient is ``½ K^(−½)``, with eigenvalues under :data:`_EIGEN_FLOOR` of the largest floored
    there (features of a ReLU network have dead channels, whose zero eigenvalues would make the
    gradient infinite).

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
    x = positions(features)
    weights = position_weights(mask, features)
    weights = x.new_full((h * w,), 1.0 / (h * w)) if weights is None else weights
    mean = weights @ x
    centred = x - mean
    a = centred @ target_sqrt * weights.sqrt()[:, None]
    spread = (centred.square() * weights[:, None]).sum()
    cross = trace_sqrt(a @ a.T)
    return (mean - target_mean).square().sum() + spread + target_cov.diagonal().sum() - 2 * cross


@dataclass
class W2Target:
    """One layer's W2 statistics of a style (or of a blend of styles).

    Attributes:
        mean: (C,) the mean feature vector.
        second: (C, C) the second moment ``E[f fᵀ]`` (blends average it: linear).
        magnitude: The style's mean square feature (the denominator of the relative loss, alone or
            averaged with the content's).
    """

    mean: Tensor
    second: Tensor
    magnitude: Tensor
    _cov_and_root: tuple[Tensor, Tensor] | None = field(default=None, repr=False)

    def cov_and_root(self) -> tuple[Tensor, Tensor]:
        """The covariance and its symmetric square root (computed once)."""
        if self._cov_and_root is None:
            cov = self.second - torch.outer(self.mean, self.mean)
            cov = (cov + cov.T) / 2
            self._cov_and_root = (cov, _sqrtm_psd(cov))
        return self._cov_and_root


class W2Distance(RegionDistance):
    """One region's W2 distance to its styles' blend (``targets``: layer → :class:`W2Target`)."""

    def layer(self, ctx: FeatureContext, layer: str) -> Tensor:
        target, features = self.targets[layer], ctx.features[layer]
        t_cov, t_root = target.cov_and_root()
        return w2_to_target(features, self.mask, target.mean, t_cov, t_root) / (
            self.magnitudes[layer] * features.shape[1]
        )


class W2Loss(StyleLoss):
    """Wasserstein-2 between Gaussians (see the module docstring)."""

    name = "w2"
    shares_regions = True

    def statistics(self, features: Tensor, mask: LayerMask | None = None) -> W2Target:
        """The (masked) mean and second moment of one layer's (1, C, H, W) style features."""
        mean, second = mean_and_second(features, mask)
        return W2Target(mean=mean, second=second, magnitude=mean_square(second))

    def mix(self, targets: Sequence[W2Target], shares: Sequence[float]) -> W2Target:
        """Means, second moments and magnitudes averaged by ``shares``."""
        return W2Target(
            mean=sum(s * t.mean for s, t in zip(shares, targets)),  # type: ignore[arg-type]
            second=sum(s * t.second for s, t in zip(shares, targets)),  # type: ignore[arg-type]
            magnitude=sum(s * t.magnitude for s, t in zip(shares, targets)),  # type: ignore[arg-type]
        )

    def term(
        self,
        targets: Mapping[str, W2Target],
        weights: Mapping[str, float],
        mask: LayerMask | None = None,
        group: int = 0,
        magnitudes: Mapping[str, Tensor] | None = None,
    ) -> W2Distance:
        return W2Distance(targets, weights, magnitudes or self.denominators(targets), mask)
