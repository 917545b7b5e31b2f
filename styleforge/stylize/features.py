"""What every term of the objective reads: one evaluation's activations and the statistics of them.

The content term, the style losses (:mod:`.losses`) and the extensions' terms are all callables on a
:class:`FeatureContext` (one forward pass of the frozen network over the current image), so every
term shares that pass and each layer's Gram matrix is computed once per evaluation however many
style images there are. The helpers here are the ones more than one term uses: the Gram matrix and
channel means in one product each way, masks downsampled with the features, per-position moments,
and the float32 arithmetic the losses are computed in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "full_precision",
    "gram",
    "gram_and_mean",
    "masked_gram",
    "mse",
    "magnitude",
    "magnitudes",
    "FLOOR",
    "positions",
    "position_weights",
    "mean_and_second",
    "LayerMask",
    "FeatureContext",
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


#: The smallest magnitude a relative distance is divided by.
FLOOR = 1e-30


def full_precision(x: Tensor) -> Tensor:
    """``x`` in float32 at least: bf16 activations become float32, float64 stays (loss arithmetic)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def mse(a: Tensor, b: Tensor) -> Tensor:
    """Mean squared error in :func:`full_precision` whose gradient keeps ``a``'s memory layout and
    type (``F.mse_loss``'s backward returns a contiguous NCHW gradient, which costs a layout
    conversion against channels_last activations).

    For two tensors of one shape, one difference tensor is made, kept for the backward and scaled
    into the gradient there (the plain expression made five temporaries of the activation's size in
    float32: at 1024 px, 128 MB each for relu2_2, each a fresh allocation, 0.5 s of an evaluation;
    0.1 s this way). The sum of squares is the norms of rows of 1,024 values, squared and added in
    float64: within 1e-9 of float64 (one float32 dot product of 33 million values is off by 4e-4),
    and a reduction, which neither autocast nor TF32 lowers.
    """
    if a.shape != b.shape:  # broadcasting: the plain expression, whose gradients autograd reduces
        return (full_precision(a) - full_precision(b)).square().mean()
    return _SquaredError.apply(a, b)


class _SquaredError(torch.autograd.Function):
    """``mean((a − b)²)`` of two tensors of one shape, and its gradient (:func:`mse`)."""

    @staticmethod
    def forward(ctx: Any, a: Tensor, b: Tensor) -> Tensor:
        diff = _difference(a, b)
        ctx.save_for_backward(a, b, diff)
        return (_sum_of_squares(diff) / max(diff.numel(), 1)).to(diff.dtype)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b, diff = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: the difference again, in operations autograd records
            diff = _difference(a, b)
        scaled = diff * (2 * grad / max(a.numel(), 1))
        grad_a = scaled.to(a.dtype) if ctx.needs_input_grad[0] else None
        grad_b = (-scaled).to(b.dtype) if ctx.needs_input_grad[1] else None
        return grad_a, grad_b


def _difference(a: Tensor, b: Tensor) -> Tensor:
    """``a − b`` in :func:`full_precision` of both, as one new tensor in ``a``'s layout."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    return a.to(dtype).sub_(b) if a.dtype != dtype else a - b


def _sum_of_squares(x: Tensor) -> Tensor:
    """``Σ x²`` over every element of ``x``, in float64: the norms of rows of 1,024 values (in ``x``'s
    type), squared and added in float64."""
    order = sorted(range(x.dim()), key=lambda i: -x.stride(i))
    flat = x.permute(order).reshape(-1)  # a view of a dense tensor in whatever layout
    whole = flat.numel() - flat.numel() % 1024
    norms = torch.linalg.vector_norm(flat[:whole].view(-1, 1024), dim=1)
    rest = torch.linalg.vector_norm(flat[whole:])
    return norms.to(torch.float64).square().sum() + rest.to(torch.float64).square()


def magnitude(target: Tensor) -> Tensor:
    """A target's mean square: the denominator that makes a squared error relative."""
    return full_precision(target).square().mean().clamp_min(FLOOR)


def magnitudes(targets: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Each target's :func:`magnitude`."""
    return {layer: magnitude(t) for layer, t in targets.items()}


def positions(features: Tensor) -> Tensor:
    """(N, C) feature vectors, one per position, float32 or float64 (the statistics stay fp32 under
    bf16)."""
    b, c, h, w = features.shape
    if b != 1:
        raise ValueError(f"style statistics take one image at a time, got a batch of {b}")
    return full_precision(features).permute(0, 2, 3, 1).reshape(h * w, c)


def position_weights(mask: LayerMask | None, features: Tensor) -> Tensor | None:
    """The mask at ``features``' resolution, flat (N,) and normalised to sum 1 (``None``: uniform)."""
    if mask is None:
        return None
    w = mask.at(features).to(torch.promote_types(features.dtype, torch.float32)).reshape(-1)
    return w / w.sum().clamp_min(1e-12)


def mean_and_second(features: Tensor, mask: LayerMask | None) -> tuple[Tensor, Tensor]:
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
