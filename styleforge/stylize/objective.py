"""One scale's objective: the content, style, total-variation, Laplacian, tone and extensions' terms on
the engine's :class:`~styleforge.engine.WeightedLoss`, and the layers and weights they read.

The terms are callables on a :class:`~styleforge.stylize.features.FeatureContext` (one forward pass
of the frozen network over the current image), so every term shares that pass. The style terms come
from :mod:`.losses`; this module adds the others and weighs them all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import TransferConfig
from ..engine import LossReport, WeightedLoss
from ..errors import InvalidParameter
from ..nets.vgg import check_layers
from ..parsing import as_number
from .color import luma
from .extension import ExtraTerms, merged
from .features import FeatureContext, magnitudes, mse
from .filters import blur, gaussian_taps

__all__ = [
    "ContentTerm",
    "TVTerm",
    "LaplacianTerm",
    "ToneTerm",
    "Objective",
    "scale_loss",
    "layer_weights",
    "parse_layers",
    "term_layers",
]


@dataclass
class ContentTerm:
    """``Σ_l w_l · ‖F_l(x) − F_l(content)‖² / ‖F_l(content)‖²`` over the content layers.

    Each layer's squared error is divided by its target's squared norm (both as means), so the term
    is a relative error: 0 when the features match, 1 when they are all zero, whatever the network's
    activation magnitudes. This departs from Gatys et al. and the reference implementations (plain MSE
    or sums, whose values differ by orders of magnitude between networks and input conventions), so
    that one set of default weights serves VGG-19 ImageNet, VGG-16 HED and random weights.

    Attributes:
        targets: Layer → content activation (1, C, H, W).
        weights: Layer → weight.
    """

    targets: dict[str, Tensor]
    weights: dict[str, float]
    magnitudes: dict[str, Tensor] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.magnitudes = magnitudes(self.targets)

    def __call__(self, ctx: FeatureContext) -> Tensor:
        return sum(
            w * mse(ctx.features[layer], self.targets[layer]) / self.magnitudes[layer]
            for layer, w in self.weights.items()
        )  # type: ignore[return-value]


class _BlurredLuminance:
    """What the luminance terms share: an image's BT.601 luma (:func:`.color.luma`), blurred by
    ``sigma`` px.

    Args:
        sigma: The Gaussian blur, in pixels (the size of the structure the term looks at).
        device: Where the images are.
    """

    def __init__(self, sigma: float, device: torch.device) -> None:
        self.taps = gaussian_taps(sigma, device)

    def blurred_luminance(self, image: Tensor) -> Tensor:
        """(1, 3, H, W) RGB → (1, 1, H, W): its luma, blurred (reflected edges)."""
        return blur(luma(image), self.taps)


class LaplacianTerm(_BlurredLuminance):
    """``‖L(x) − L(c)‖² / ‖L(c)‖²``: the relative error of the picture's Laplacian against the
    content's, of the luminance blurred by ``sigma`` (Li et al. 2017, "Laplacian-steered neural style
    transfer", who take it of the RGB image after a strided pooling: the pooling's grid showed in the
    picture, and on RGB the term also held the colours, which the style should change). Deep content
    layers let the style's texture run over the content's fine structure; this keeps its edges and
    the local contrast of faces, and its flat areas (skies) flat, while the colours are free.

    Args:
        content: The content image (1, 3, H, W) at the scale's size, or one tile of it.
        sigma: The Gaussian blur before the Laplacian, in pixels (the size of the structure kept).
        magnitude: What the error is relative to, when not the content's own mean square
            Laplacian: for one tile of a scale, the whole content's (a tile of sky alone would weigh
            its error hundreds of times more than the untiled picture does).
    """

    #: The least mean square Laplacian the error is relative to (photographs: 8e-5 to 4e-3).
    FLOOR = 1e-5

    def __init__(self, content: Tensor, sigma: float = 1.0, magnitude: Tensor | None = None) -> None:
        super().__init__(sigma, content.device)
        self.laplace = torch.tensor(
            [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], device=content.device
        )
        with torch.no_grad():
            self.target = self.laplacian(content)
            # a flat content has no structure to keep: the floor (a tenth of the least of photographs'
            # at 512 px) keeps the relative error finite there
            own = self.target.square().mean().clamp_min(self.FLOOR)
        self.magnitude = own if magnitude is None else magnitude

    def laplacian(self, image: Tensor) -> Tensor:
        """(1, 3, H, W) RGB → (1, 1, H, W): the Laplacian of its blurred luminance (reflected edges)."""
        x = self.blurred_luminance(image)
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.laplace[None, None])

    def __call__(self, ctx: FeatureContext) -> Tensor:
        """The relative error of ``ctx.image`` (1, 3, H, W), the content's shape: a scalar."""
        return mse(self.laplacian(ctx.image), self.target) / self.magnitude


class ToneTerm(_BlurredLuminance):
    """``‖Y(x) − Y(c)‖² / Var Y(c)``: the error of the picture's luminance against the content's, both
    blurred by ``sigma``, relative to the content's tonal spread. The content layers and the
    :class:`LaplacianTerm` keep the content's forms and edges, but a dark or pale painting's
    statistics still pull every part of the picture to its own few tones, and a portrait dissolves
    into a night sky or a watercolour's paper; this keeps where the content is light and where it
    is dark, while the colours and the texture finer than ``sigma`` are free (the style's strokes
    and dots stay: benchmarks/README.md measures it).

    Args:
        content: The content image (1, 3, H, W) at the scale's size, or one tile of it.
        sigma: The Gaussian blur of both luminances, in pixels.
        magnitude: What the error is relative to, when not the content's own tonal spread: for
            one tile of a scale, the whole content's.
    """

    #: The least variance of the content's blurred luminance the error is relative to (a flat
    #: content; the photographs of benchmarks/quality.py: 0.014 to 0.096).
    FLOOR = 1e-4

    def __init__(self, content: Tensor, sigma: float = 1.0, magnitude: Tensor | None = None) -> None:
        super().__init__(sigma, content.device)
        with torch.no_grad():
            self.target = self.blurred_luminance(content)
            own = (self.target - self.target.mean()).square().mean().clamp_min(self.FLOOR)
        self.magnitude = own if magnitude is None else magnitude

    def __call__(self, ctx: FeatureContext) -> Tensor:
        """The relative error of ``ctx.image`` (1, 3, H, W), the content's shape: a scalar."""
        return mse(self.blurred_luminance(ctx.image), self.target) / self.magnitude


class TVTerm:
    """Total variation: mean squared difference between neighbouring pixels (both directions)."""

    def __call__(self, ctx: FeatureContext) -> Tensor:
        x = ctx.image
        return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


def scale_loss(
    config: TransferConfig,
    content: Tensor,
    content_targets: dict[str, Tensor],
    content_layers: dict[str, float],
    style: Mapping[str, Callable[[FeatureContext], Tensor]],
    blend: Mapping[str, float],
    extras: Sequence[ExtraTerms] = (),
    relative_to: Mapping[str, Tensor] | None = None,
) -> WeightedLoss:
    """One scale's weighted terms: ``content``, the ``style.<name>`` terms, ``tv``, ``laplacian``
    and ``tone`` (each with a weight) and the extensions'.

    Args:
        config: The weights (``content_weight``, the style weight, ``tv_weight``, ``laplacian_*``,
            ``tone_*``).
        content: The content image at the scale's size, (1, 3, H, W) on the run's device.
        content_targets: Layer → the content's activation there.
        content_layers: Layer → the content term's weight of it.
        style: The ``style.<name>`` terms (:func:`~styleforge.stylize.losses.style_terms`).
        blend: Each style term's blend share; its weight is the style weight times it.
        extras: The extensions' terms at this scale.
        relative_to: When ``content`` is one tile of the scale: the whole content's measures that
            the ``laplacian`` and ``tone`` errors are relative to (term name → scalar, measured
            once per scale by the caller).
    """
    relative_to = relative_to or {}
    terms: dict[str, Callable[[FeatureContext], Tensor]] = {
        "content": ContentTerm(content_targets, content_layers),
        **style,
        "tv": TVTerm(),
    }
    weights = {"content": config.content_weight, "tv": config.tv_weight}
    weights.update({name: config.resolved_style_weight() * share for name, share in blend.items()})
    if config.laplacian_weight:
        terms["laplacian"] = LaplacianTerm(content, config.laplacian_sigma, relative_to.get("laplacian"))
        weights["laplacian"] = config.laplacian_weight
    if config.tone_weight:
        terms["tone"] = ToneTerm(content, config.tone_sigma, relative_to.get("tone"))
        weights["tone"] = config.tone_weight
    terms.update(merged([extra.terms for extra in extras]))
    weights.update(merged([extra.weights for extra in extras]))
    return WeightedLoss(terms, weights)


@dataclass
class Objective:
    """One scale's objective: pixels (1, 3, H, W) in [0, 1] → the engine's :class:`LossReport`.

    Attributes:
        loss: The weighted terms (:func:`scale_loss`).
        forward: The network's pass, ``(image, layers) -> {layer: activation}`` (compiled or not).
        layers: The layers the terms read.
    """

    loss: WeightedLoss
    forward: Callable[[Tensor, Sequence[str]], dict[str, Tensor]]
    layers: list[str]

    def __call__(self, x: Tensor) -> LossReport:
        return self.loss(FeatureContext(x, self.forward(x, self.layers)))


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


def term_layers(config: TransferConfig, network: str) -> tuple[dict[str, float], dict[str, float]]:
    """The content layers' weights (normalised to sum 1) and the style layers' (with the exponent),
    checked against ``network``'s layer names."""
    content_lw = parse_layers(config.content_layers, network, param="--content-layers")
    content_lw = {layer: w / sum(content_lw.values()) for layer, w in content_lw.items()}
    style_lw = layer_weights(
        parse_layers(config.style_layers, network, param="--style-layers"), config.style_layer_weight_exp
    )
    return content_lw, style_lw
