"""The transfer's weighted terms for a network that stylises batches: the one door into stylize.

Everything this package takes from :mod:`styleforge.stylize` (the content, style, TV, Laplacian and tone
terms over a :class:`FeatureContext`, the layer options, the style statistics, the colour and tile
helpers) is imported here and nowhere else, so that a change of stylize's insides meets one file.

**Batches.** In a transfer a term sees one image, (1, 3, H, W). The style statistics are per image:
a Gram matrix's error over a batch broadcasts to the mean of the per-image errors, but ``w2`` and
``sw`` read one image's moments (``w2`` would take the batch's first image alone, ``sw`` refuses a
batch). So every term here is evaluated image by image, each image in its own
:class:`FeatureContext` (its own Gram matrices and memos) against its own content, and averaged
over the batch: ``term(batch) = mean_i term(image_i)``, exactly the loss a transfer of each image
would report, and a mean over the batch's images as the engine's distributed training requires.
The content, Laplacian and tone targets are the batch's photos' own, computed with each step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..config import TransferConfig
from ..engine import WeightedLoss
from ..nets.vgg import VGGFeatures
from ..parsing import StyleSpec, normalise_blend, style_term_names
from ..stylize.color import preserve_colors
from ..stylize.features import FeatureContext
from ..stylize.losses import layer_targets, style_loss, style_terms
from ..stylize.objective import ContentTerm, LaplacianTerm, ToneTerm, TVTerm
from ..stylize.objective import term_layers as _term_layers
from ..stylize.tiles import feather, tile_grid

__all__ = [
    "Stylized",
    "BatchObjective",
    "term_layers",
    "preserve_colors",
    "feather",
    "tile_grid",
]


def term_layers(config: TransferConfig, network: str) -> tuple[dict[str, float], dict[str, float]]:
    """The content layers' weights (summing to 1) and the style layers' (with the exponent), checked
    against ``network``'s layer names, as a transfer takes them.

    Raises:
        InvalidParameter: An unknown or repeated layer, or a bad weight.
    """
    return _term_layers(config, network)


@dataclass
class Stylized:
    """What the training loop's forward returns for a batch (the terms' ``outputs``).

    Attributes:
        image: The network's output (B, 3, H, W) in [0, 1].
        photos: The batch it stylised (B, 3, H, W), the content of each image.
        contexts: Per image, its :class:`FeatureContext` (features of the output, (1, C, h, w)).
        content: The photos' activations at the content layers (B, C, h, w), without gradients.
    """

    image: Tensor
    photos: Tensor
    contexts: list[FeatureContext]
    content: dict[str, Tensor]


class _PerImage:
    """A term of a batch: the mean over its images of ``value(outputs, i)``."""

    def __init__(self, value: Callable[[Stylized, int], Tensor]) -> None:
        self.value = value

    def __call__(self, outputs: Stylized, batch: Any = None) -> Tensor:
        return torch.stack([self.value(outputs, i) for i in range(len(outputs.contexts))]).mean()


def _each(term: Callable[[FeatureContext], Tensor]) -> _PerImage:
    """A term of one image's context, per image."""
    return _PerImage(lambda outputs, i: term(outputs.contexts[i]))


def _against_photos(term_class: type[LaplacianTerm] | type[ToneTerm], sigma: float) -> _PerImage:
    """A luminance term (Laplacian or tone) of each output against its own photo, per image."""
    return _PerImage(lambda outputs, i: term_class(outputs.photos[i : i + 1], sigma)(outputs.contexts[i]))


class BatchObjective:
    """The transfer's objective for batches: ``content``, ``style.<name>`` per style (blended as in a
    transfer), ``tv`` and, each with a weight, ``laplacian`` and ``tone``, each the mean of its
    per-image values.

    Args:
        config: The terms' options (``size`` is the crop the style statistics are sized against).
        net: The frozen network, built for :attr:`layers` (see :func:`term_layers`).
        specs: The styles and their blend weights.
        style_images: Each style's (3, H, W) picture in [0, 1], full size.
        device: Where the network runs.
    """

    def __init__(
        self,
        config: TransferConfig,
        net: VGGFeatures,
        specs: Sequence[StyleSpec],
        style_images: Sequence[Tensor],
        device: torch.device,
    ) -> None:
        from ..images import resize_long_side

        self.config, self.net, self.device = config, net, device
        self.content_lw, self.style_lw = term_layers(config, net.arch)
        self.names, self.blend = style_term_names(specs), normalise_blend(specs)
        loss = style_loss(config.style_loss, seed=config.seed)
        targets = []
        for spec, rgb in zip(specs, style_images):
            scale = spec.scale if spec.scale is not None else config.style_scale
            style = resize_long_side(rgb, max(1, round(config.size * scale)))[None].to(device)
            with torch.inference_mode():
                features = net(style, self.style_lw)
            with torch.no_grad():  # ordinary copies: inference tensors cannot be saved for backward
                targets.append(layer_targets(loss, {k: v.clone() for k, v in features.items()}, None))
        styles = style_terms(loss, self.names, self.blend, targets, self.style_lw, [None] * len(self.names))
        content_lw = self.content_lw
        terms: dict[str, Any] = {
            "content": _PerImage(
                lambda out, i: ContentTerm({k: out.content[k][i : i + 1] for k in content_lw}, content_lw)(
                    out.contexts[i]
                )
            )
        }
        terms.update({name: _each(term) for name, term in styles.items()})
        terms["tv"] = _each(TVTerm())
        weights = {"content": config.content_weight, "tv": config.tv_weight}
        weights.update(
            {name: config.resolved_style_weight() * share for name, share in zip(self.names, self.blend)}
        )
        for name, term_class in (("laplacian", LaplacianTerm), ("tone", ToneTerm)):
            weight = getattr(config, f"{name}_weight")
            if weight:
                terms[name] = _against_photos(term_class, getattr(config, f"{name}_sigma"))
                weights[name] = weight
        self.loss = WeightedLoss(terms, weights)

    @property
    def layers(self) -> list[str]:
        """The layers the terms read."""
        return list(dict.fromkeys([*self.content_lw, *self.style_lw]))

    def __call__(self, image: Tensor, photos: Tensor) -> Stylized:
        """The frozen network's pass over the output ``image`` and (without gradients) ``photos``."""
        features = self.net(image, self.layers)
        with torch.no_grad():
            content = self.net(photos, self.content_lw)
        contexts = [
            FeatureContext(image[i : i + 1], {k: v[i : i + 1] for k, v in features.items()})
            for i in range(image.shape[0])
        ]
        return Stylized(image, photos, contexts, content)
