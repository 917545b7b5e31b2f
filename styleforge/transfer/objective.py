"""The style-transfer objective's terms: content, Gram-matrix style, total variation.

Each term is a callable on a :class:`FeatureContext` (one forward pass of the frozen network over the
current image), so every term shares that pass and each layer's Gram matrix is computed once per
evaluation however many style images there are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InvalidParameter

__all__ = [
    "gram",
    "FeatureContext",
    "ContentTerm",
    "StyleTerm",
    "TVTerm",
    "StyleSpec",
    "parse_style",
    "normalise_blend",
    "style_term_names",
    "layer_weights",
]


def gram(features: Tensor) -> Tensor:
    """Gram matrix normalised as in PyTorch's tutorial: ``F Fᵀ / (C·H·W)``.

    Args:
        features: (B, C, H, W) activations.

    Returns:
        (B, C, C) Gram matrices.
    """
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


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

    def gram(self, layer: str) -> Tensor:
        """The Gram matrix of ``layer``'s activation (cached for this evaluation)."""
        if layer not in self._grams:
            self._grams[layer] = gram(self.features[layer])
        return self._grams[layer]


@dataclass
class ContentTerm:
    """``Σ_l w_l · MSE(F_l(x), F_l(content))`` over the content layers.

    Attributes:
        targets: Layer → content activation (1, C, H, W).
        weights: Layer → weight.
    """

    targets: dict[str, Tensor]
    weights: dict[str, float]

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return sum(w * F.mse_loss(ctx.features[l], self.targets[l]) for l, w in self.weights.items())  # type: ignore[return-value]


@dataclass
class StyleTerm:
    """``Σ_l w_l · MSE(G_l(x), G_l(style))`` for one style image.

    For several styles with blend weights ``b_i`` (summing to 1) the engine adds
    ``Σ_i b_i · ‖G − G_i‖²``, whose gradient equals that of ``‖G − Σ_i b_i G_i‖²`` (DESIGN.md §3);
    since the Gram matrices of the image are shared through :class:`FeatureContext`, the per-style
    form costs only a C×C subtraction per style and layer and keeps each style's value reportable.

    Attributes:
        targets: Layer → the style image's Gram matrix (1, C, C).
        weights: Layer → weight.
    """

    targets: dict[str, Tensor]
    weights: dict[str, float]

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return sum(w * F.mse_loss(ctx.gram(l), self.targets[l]) for l, w in self.weights.items())  # type: ignore[return-value]


class TVTerm:
    """Total variation: mean squared difference between neighbouring pixels (both directions)."""

    def __call__(self, ctx: FeatureContext) -> Tensor:
        x = ctx.image
        return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def layer_weights(layers: Sequence[str], exponent: float = 1.0, *, param: str = "--style-layer-weight-exp") -> dict[str, float]:
    """Per-layer weights ``w₁ = 1, wₙ₊₁ = exponent·wₙ`` (shallow to deep), normalised to sum 1.

    This is anishathalye/neural-style's ``--style-layer-weight-exp``: below 1 favours fine texture
    (shallow layers), above 1 coarse structure.
    """
    if not (math.isfinite(exponent) and exponent > 0):
        raise InvalidParameter(param, exponent, "a finite number > 0")
    raw = [exponent**i for i in range(len(layers))]
    total = sum(raw)
    return {layer: w / total for layer, w in zip(layers, raw)}


@dataclass(frozen=True)
class StyleSpec:
    """One ``--style`` argument.

    Attributes:
        path: The style image.
        weight: Its blend weight before normalisation (``None``: an equal share).
    """

    path: Path
    weight: float | None = None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_style(text: str, *, param: str = "--style") -> StyleSpec:
    """Parses ``PATH[:WEIGHT]``.

    Only a number after the last colon is a weight, so ``C:\\art\\x.jpg`` and ``my:file.png`` are
    paths. ``a.jpg:abc`` is a bad weight when ``a.jpg`` exists and ``a.jpg:abc`` does not.

    Raises:
        InvalidParameter: A weight that is not a finite number > 0.
    """
    head, sep, tail = str(text).rpartition(":")
    if sep and head:
        weight = _number(tail)
        if weight is not None:
            if not (math.isfinite(weight) and weight > 0):
                raise InvalidParameter(param, text, "PATH[:WEIGHT] with WEIGHT a finite number > 0")
            return StyleSpec(Path(head), weight)
        if Path(head).is_file() and not Path(text).exists():
            raise InvalidParameter(param, text, "PATH[:WEIGHT] with WEIGHT a finite number > 0")
    return StyleSpec(Path(text))


def normalise_blend(specs: Sequence[StyleSpec]) -> list[float]:
    """Blend weights summing to 1; styles without a weight share equally what the others leave.

    With no weight given anywhere each style gets ``1/n``. With some given, an unweighted style
    counts as weight 1 before normalisation (``a.jpg:3 b.jpg`` → 0.75, 0.25).
    """
    raw = [1.0 if s.weight is None else s.weight for s in specs]
    total = sum(raw)
    return [w / total for w in raw]


def style_term_names(specs: Sequence[StyleSpec]) -> list[str]:
    """``style.<stem>`` per style, made unique (``style.a``, ``style.a_2``) and safe for CSV columns."""
    names: list[str] = []
    for spec in specs:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", spec.path.stem) or "style"
        name, n = f"style.{stem}", 2
        while name in names:
            name, n = f"style.{stem}_{n}", n + 1
        names.append(name)
    return names


def gram_targets(features: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Gram matrix of each activation in ``features``."""
    return {layer: gram(f) for layer, f in features.items()}


__all__.append("gram_targets")
