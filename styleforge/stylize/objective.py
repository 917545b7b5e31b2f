"""The style-transfer objective's terms: content, Gram-matrix style, total variation.

Each term is a callable on a :class:`FeatureContext` (one forward pass of the frozen network over the
current image), so every term shares that pass and each layer's Gram matrix is computed once per
evaluation however many style images there are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InvalidParameter
from ..nets.vgg import check_layers
from ..parsing import StyleSpec, as_number, normalise_blend, parse_style, style_term_names

__all__ = [
    "full_precision",
    "gram",
    "gram_and_mean",
    "masked_gram",
    "mse",
    "LayerMask",
    "FeatureContext",
    "ContentTerm",
    "StyleTerm",
    "TVTerm",
    "LaplacianTerm",
    "StyleSpec",
    "parse_style",
    "parse_layers",
    "normalise_blend",
    "style_term_names",
    "layer_weights",
    "gram_targets",
]


def _flat(features: Tensor) -> tuple[Tensor, bool]:
    """A (B, HW, C) view of channels_last activations (``True``), else (B, C, HW) (``False``).

    Either is a view without a copy in its layout, so the Gram matrix and its gradient are one
    matrix product each and the gradient comes back in the activation's own memory layout (a
    gradient in the other layout would make every later add and ReLU backward a strided copy).
    """
    b, c, h, w = features.shape
    if c > 1 and features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(b, h * w, c), True
    return features.reshape(b, c, h * w), False


class _Moments(torch.autograd.Function):
    """The Gram matrix ``F Fᵀ / (C·H·W)`` (B, C, C) and, if asked, the channel sums ``F·1`` (B, C) of
    (B, C, H, W) activations, each way in one pass over them.

    Autograd's generic backward of ``bmm(F, Fᵀ)`` costs two products of that size (one per operand);
    since both operands are the same tensor, their gradients sum to one product with ``g + gᵀ``
    (a C×C addition), and the sums' gradient rides along as that product's added bias
    (``baddbmm``), so the whole gradient is written once, in the activations' own layout and type.
    This is the largest cost of the objective after the network itself.

    Products and sums run in the activations' type (bf16 activations: bf16 products, which
    accumulate in float32 and are 4× faster than float32 ones on CPUs with bf16 instructions); both
    results are returned in float32, so the loss arithmetic on them is float32.
    """

    @staticmethod
    def forward(ctx: Any, features: Tensor, with_sums: bool) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        b, c, h, w = features.shape
        flat, last = _flat(features)
        ctx.save_for_backward(features)
        ctx.set_materialize_grads(False)
        product = torch.bmm(flat.transpose(1, 2), flat) if last else torch.bmm(flat, flat.transpose(1, 2))
        sums = full_precision(flat.sum(1 if last else 2)) if with_sums else None
        product = full_precision(product).div_(c * h * w)
        return product, product.new_zeros((b, c)) if sums is None else sums

    @staticmethod
    def backward(ctx: Any, grad: Tensor | None, grad_sums: Tensor | None) -> tuple[Tensor | None, None]:  # type: ignore[override]
        (features,) = ctx.saved_tensors
        b, c, h, w = features.shape
        flat, last = _flat(features)
        if grad is None:
            grad = full_precision(flat.new_zeros((b, c, c)))
        sym = (grad + grad.transpose(1, 2)).div_(c * h * w).to(features.dtype)
        if last:
            out = (
                torch.bmm(flat, sym)
                if grad_sums is None
                else torch.baddbmm(grad_sums.to(features.dtype).view(b, 1, c), flat, sym)
            )
            return out.view(b, h, w, c).permute(0, 3, 1, 2), None
        out = (
            torch.bmm(sym, flat)
            if grad_sums is None
            else torch.baddbmm(grad_sums.to(features.dtype).view(b, c, 1), sym, flat)
        )
        return out.view(b, c, h, w), None


def gram(features: Tensor) -> Tensor:
    """Gram matrix normalised as in PyTorch's tutorial: ``F Fᵀ / (C·H·W)``.

    Args:
        features: (B, C, H, W) activations, either memory layout, float32 or bf16.

    Returns:
        (B, C, C) Gram matrices, float32.
    """
    return _Moments.apply(features, False)[0]


def gram_and_mean(features: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`gram` and the channel means (B, C), both float32, from one product each way."""
    product, sums = _Moments.apply(features, True)
    return product, sums / (features.shape[2] * features.shape[3])


class LayerMask:
    """A region of the output: a mask at the output's resolution, downsampled (area average) to each
    layer's resolution, cached by size.

    Args:
        mask: (H, W) weights in [0, 1] (grey levels weigh positions partially).
    """

    def __init__(self, mask: Tensor) -> None:
        self.mask = mask.float()
        self._at: dict[tuple[int, int, str], Tensor] = {}

    def at(self, features: Tensor) -> Tensor:
        """The mask at the resolution of ``features`` (1, C, h, w), as (1, 1, h, w)."""
        h, w = features.shape[-2:]
        key = (h, w, str(features.device))
        if key not in self._at:
            small = F.adaptive_avg_pool2d(self.mask[None, None].to(features.device), (h, w))
            self._at[key] = small.clamp_(0, 1)
        return self._at[key]


def masked_gram(features: Tensor, mask: LayerMask | None) -> Tensor:
    """``Σ_p m_p f_p f_pᵀ / (C · Σ_p m_p)``: the Gram matrix of the masked positions, (B, C, C).

    It is :func:`gram` of ``F · √m`` rescaled by ``H·W / Σm``, so it keeps the Gram's one-product
    backward and equals :func:`gram` for no mask or a mask of ones. Positions outside the mask get
    no gradient.
    """
    if mask is None:
        return gram(features)
    m = mask.at(features).to(
        torch.promote_types(features.dtype, torch.float32)
    )  # float64 features: float64 weights
    h, w = features.shape[-2:]
    return gram(features * m.sqrt().to(features.dtype)) * (h * w / m.sum().clamp_min(1e-12))


def full_precision(x: Tensor) -> Tensor:
    """``x`` in float32 at least: bf16 activations become float32, float64 stays (loss arithmetic)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error in :func:`full_precision` whose gradient keeps ``a``'s memory layout and
    type (``F.mse_loss``'s backward returns a contiguous NCHW gradient, which costs a layout
    conversion against channels_last activations)."""
    return (full_precision(a) - full_precision(b)).square().mean()


@dataclass
class FeatureContext:
    """One evaluation's activations, with each layer's Gram matrix computed at most once.

    Attributes:
        image: The image being optimised, (1, 3, H, W) in [0, 1].
        features: Layer name → activation.
    """

    image: Tensor
    features: dict[str, Tensor]
    _grams: dict[str, Tensor] = field(default_factory=dict, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def gram(self, layer: str, mask: LayerMask | None = None) -> Tensor:
        """The Gram matrix of ``layer``'s activation over ``mask`` (:func:`masked_gram`), cached for
        this evaluation (styles that share a region share it)."""
        key = layer if mask is None else f"{layer}@{id(mask)}"
        if key not in self._grams:
            self._grams[key] = masked_gram(self.features[layer], mask)
        return self._grams[key]

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, run at most once per evaluation for ``key`` (e.g. the attribute network's
        outputs, which every ``attr.<name>`` term shares)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


def _magnitudes(targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each target's mean square, the denominator that makes a squared error relative."""
    return {layer: full_precision(t).square().mean().clamp_min(1e-30) for layer, t in targets.items()}


@dataclass
class ContentTerm:
    """``Σ_l w_l · ‖F_l(x) − F_l(content)‖² / ‖F_l(content)‖²`` over the content layers.

    Each layer's squared error is divided by its target's squared norm (both as means), so the term
    is a relative error: 0 when the features match, 1 when they are all zero, whatever the network's
    activation magnitudes. This departs from Gatys et al. and the anchors (plain MSE or sums, whose
    scale differs by orders of magnitude between networks and input conventions: DESIGN.md §3), so
    that one set of default weights serves VGG-19 ImageNet, VGG-16 HED and random weights.

    Attributes:
        targets: Layer → content activation (1, C, H, W).
        weights: Layer → weight.
    """

    targets: dict[str, Tensor]
    weights: dict[str, float]
    scales: dict[str, Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.scales = _magnitudes(self.targets)

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return sum(
            w * mse(ctx.features[layer], self.targets[layer]) / self.scales[layer]
            for layer, w in self.weights.items()
        )  # type: ignore[return-value]


@dataclass
class StyleTerm:
    """``Σ_l w_l · ‖G_l(x) − G_l(style)‖² / ‖G_l(style)‖²`` for one style image.

    Relative, like :class:`ContentTerm`: each layer's Gram error is divided by the style Gram's own
    squared norm, so every layer and every network starts on the same footing (with plain MSE the
    deep layers' small Grams barely count and the shallow ones' dominate, by factors that depend on
    the weights). For several styles with blend weights ``b_i`` (summing to 1) the engine adds
    ``Σ_i b_i · ‖G − G_i‖² / ‖G_i‖²``, whose gradient is that of one quadratic around the mean of the
    targets weighted by ``b_i / ‖G_i‖²`` (DESIGN.md §3's identity, with those weights); since the Gram matrices of the image are
    shared through :class:`FeatureContext`, the per-style form costs only a C×C subtraction per style
    and layer and keeps each style's value reportable.

    With ``mask``, the image's Gram matrices are taken over that region only (:func:`masked_gram`).

    Attributes:
        targets: Layer → the style image's Gram matrix (1, C, C).
        weights: Layer → weight.
        mask: The output region the style applies to (``None``: everywhere).
    """

    targets: dict[str, Tensor]
    weights: dict[str, float]
    mask: LayerMask | None = None
    scales: dict[str, Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.scales = _magnitudes(self.targets)

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return sum(
            w * mse(ctx.gram(layer, self.mask), self.targets[layer]) / self.scales[layer]
            for layer, w in self.weights.items()
        )  # type: ignore[return-value]


class LaplacianTerm:
    """``‖L(x) − L(c)‖² / ‖L(c)‖²``: the relative error of the picture's Laplacian against the content's,
    of the luminance blurred by ``sigma`` (Li et al. 2017, "Laplacian-steered neural style transfer",
    who take it of the RGB image after a strided pooling: the pooling's grid showed in the picture,
    and on RGB the term also held the colours, which the style should change). Deep content layers let
    the style's texture run over the content's fine structure; this keeps its edges and the local
    contrast of faces, and its flat areas (skies) flat, while the colours are free.

    Args:
        content: The content image (1, 3, H, W) at the scale's size.
        sigma: The Gaussian blur before the Laplacian, in pixels (the scale of the structure kept).
    """

    #: Rec. 601 luma weights of R, G, B.
    LUMA = (0.299, 0.587, 0.114)
    #: The least mean square Laplacian the error is relative to (photographs: 8e-5 to 4e-3).
    FLOOR = 1e-5

    def __init__(self, content: Tensor, sigma: float = 1.0) -> None:
        radius = max(1, math.ceil(3 * sigma))
        taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
        self.blur = (taps / taps.sum()).to(content.device)
        self.luma = torch.tensor(self.LUMA, device=content.device).view(1, 3, 1, 1)
        self.laplace = torch.tensor(
            [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=content.device
        )
        with torch.no_grad():
            self.target = self.laplacian(content)
            # a flat content has no structure to keep: the floor (a tenth of the least of photographs'
            # at 512 px) keeps the relative error finite there
            self.scale = self.target.square().mean().clamp_min(self.FLOOR)

    def laplacian(self, image: Tensor) -> Tensor:
        """(1, 3, H, W) RGB → (1, 1, H, W): the Laplacian of its blurred luminance (reflected edges)."""
        r = self.blur.numel() // 2
        x = F.pad((image * self.luma).sum(1, keepdim=True), (r, r, r, r), mode="reflect")
        x = F.conv2d(F.conv2d(x, self.blur.view(1, 1, 1, -1)), self.blur.view(1, 1, -1, 1))
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.laplace[None, None])

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return (self.laplacian(ctx.image) - self.target).square().mean() / self.scale


class TVTerm:
    """Total variation: mean squared difference between neighbouring pixels (both directions)."""

    def __call__(self, ctx: FeatureContext) -> Tensor:
        x = ctx.image
        return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def layer_weights(
    layers: Mapping[str, float] | Sequence[str],
    exponent: float = 1.0,
    *,
    param: str = "--style-layer-weight-exp",
) -> dict[str, float]:
    """Per-layer weights ``w₁ = 1, wₙ₊₁ = exponent·wₙ`` (in the given order), normalised to sum 1.

    This is anishathalye/neural-style's ``--style-layer-weight-exp``: below 1 favours fine texture
    (shallow layers), above 1 coarse structure. Explicit per-layer weights (a mapping) multiply the
    exponent's weights before normalisation.
    """
    if not (math.isfinite(exponent) and exponent > 0):
        raise InvalidParameter(param, exponent, "a finite number > 0")
    explicit = dict(layers) if isinstance(layers, Mapping) else dict.fromkeys(layers, 1.0)
    raw = {layer: w * exponent**i for i, (layer, w) in enumerate(explicit.items())}
    total = sum(raw.values())
    return {layer: w / total for layer, w in raw.items()}


def parse_layers(items: Sequence[str], network: str, *, param: str) -> dict[str, float]:
    """Parses ``LAYER[:WEIGHT]`` items (each may also be a comma-separated list) into layer → weight.

    Raises:
        InvalidParameter: An unknown layer (the message lists the valid ones), a repeated layer, or
            a weight that is not a finite number > 0.
    """
    out: dict[str, float] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in str(item).split(","))):
            name, sep, tail = part.partition(":")
            weight = as_number(tail) if sep else 1.0
            if weight is None or not (math.isfinite(weight) and weight > 0):
                raise InvalidParameter(param, part, "LAYER[:WEIGHT] with WEIGHT a finite number > 0")
            check_layers(network, [name], param)
            if name in out:
                raise InvalidParameter(param, part, "each layer at most once")
            out[name] = weight
    if not out:
        raise InvalidParameter(param, ",".join(items), "at least one layer name")
    return out


def gram_targets(features: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Gram matrix of each activation in ``features``."""
    return {layer: gram(f) for layer, f in features.items()}
