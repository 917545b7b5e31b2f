"""Running a style transfer: load, build the objective on the engine, optimise the pixels.

:func:`transfer` is the Python API behind ``styleforge transfer``; it never prints and reports
progress through engine events.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import __version__
from ..config import TransferConfig
from ..device import resolve_device
from ..engine import (
    Callback,
    HistoryEntry,
    LossSummary,
    Notice,
    PIXEL_LR,
    WeightedLoss,
    optimise_pixels,
    parse_optimizer,
)
from ..engine.events import emit
from ..errors import InvalidParameter
from ..images import LoadedImage, load_image, resize_long_side, save_image
from ..nets.vgg import VGGFeatures, check_layers, layer_names, pooling_factor
from ..nets.weights import resolve_weights
from .objective import (
    ContentTerm,
    FeatureContext,
    StyleSpec,
    StyleTerm,
    TVTerm,
    gram_targets,
    layer_weights,
    normalise_blend,
    parse_style,
    style_term_names,
)

__all__ = ["TransferResult", "transfer"]

ImageInput = str | os.PathLike[str] | LoadedImage


@dataclass
class TransferResult:
    """The outcome of :func:`transfer`.

    Attributes:
        image: (3, H, W) in [0, 1]: the lowest-loss iterate.
        alpha: The content's alpha channel at output size, (1, H, W), or ``None``.
        history: Every evaluation's loss values.
        summary: Loss values of ``image``.
        stop_reason: ``completed``, ``converged``, ``diverged`` or ``interrupted``.
        stop_detail: A sentence for the user.
        config: The configuration that ran.
        metadata: What the output file records (configuration, inputs, final losses).
    """

    image: Tensor
    alpha: Tensor | None
    history: list[HistoryEntry]
    summary: LossSummary | None
    stop_reason: str
    stop_detail: str
    config: TransferConfig
    metadata: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the image atomically, with :attr:`metadata` in a PNG text chunk."""
        return save_image(path, self.image, alpha=self.alpha, metadata=self.metadata)


def _load(item: ImageInput, param: str) -> LoadedImage:
    return item if isinstance(item, LoadedImage) else load_image(item, param=param)


def _check_size(config: TransferConfig, shape: tuple[int, int], layers: Sequence[str]) -> None:
    minimum = pooling_factor(config.network, layers)
    short = min(shape)
    if short < minimum:
        order = layer_names(config.network)
        deepest = max(layers, key=order.index)
        need = -(-config.size * minimum // short)
        raise InvalidParameter(
            "--size",
            config.size,
            f"a size at which the image's short side is at least {minimum} px, the minimum for layer "
            f"{deepest} of {config.network} (this image needs --size {need} or more)",
        )


def transfer(
    content: ImageInput,
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    **options: Any,
) -> TransferResult:
    """Optimises an image to keep ``content``'s content and the blended style of ``styles``.

    Args:
        content: Content image (path or :class:`LoadedImage`).
        styles: ``"path[:weight]"`` strings or :class:`StyleSpec`; weights are normalised to sum 1.
        config: Options; ``None`` for the defaults.
        callbacks: Receive engine events (:class:`~styleforge.engine.Progress`, …).
        **options: Overrides of ``config``'s fields (``iterations=50``).

    Returns:
        A :class:`TransferResult`; ``result.save("out.png")`` writes it.

    Raises:
        StyleforgeError: Invalid options, unreadable inputs, unavailable weights or device.
    """
    config = dataclasses.replace(config or TransferConfig(), **options)
    config.validate()
    chain = [parse_optimizer(text) for text in config.optimizer]
    if config.lr is not None:
        chain = [dataclasses.replace(s, lr=config.lr) if s.lr is None else s for s in chain]
    specs = [s if isinstance(s, StyleSpec) else parse_style(os.fspath(s)) for s in styles]
    if not specs:
        raise InvalidParameter("--style", "(none)", "at least one style image")
    check_layers(config.network, config.content_layers, "--content-layers")
    check_layers(config.network, config.style_layers, "--style-layers")
    layers = list(dict.fromkeys([*config.content_layers, *config.style_layers]))
    device = resolve_device(config.device)

    content_image = _load(content, "CONTENT")
    style_images = [load_image(s.path, param="--style") for s in specs]
    target = resize_long_side(content_image.rgb, config.size)
    _check_size(config, tuple(target.shape[-2:]), layers)

    weights = resolve_weights(config.weights, config.network)
    if weights.notice:
        emit(callbacks, Notice(weights.notice))
    net = VGGFeatures(
        config.network, layers, state_dict=weights.state_dict, seed=config.seed, pooling=config.pooling, source=weights.source
    ).to(device)

    content_x = target[None].to(device)
    with torch.inference_mode():
        content_targets = net(content_x, config.content_layers)
        style_targets = []
        for image in style_images:
            style_x = resize_long_side(image.rgb, config.size)[None].to(device)
            _check_size(config, tuple(style_x.shape[-2:]), config.style_layers)
            style_targets.append(gram_targets(net(style_x, config.style_layers)))
    # Inference tensors cannot be saved for backward: clone them into ordinary tensors once.
    content_targets = {k: v.clone() for k, v in content_targets.items()}
    style_targets = [{k: v.clone() for k, v in t.items()} for t in style_targets]

    content_lw = {layer: 1.0 / len(config.content_layers) for layer in config.content_layers}
    style_lw = layer_weights(config.style_layers, config.style_layer_weight_exp)
    names = style_term_names(specs)
    blend = normalise_blend(specs)
    terms: dict[str, Any] = {"content": ContentTerm(content_targets, content_lw)}
    loss_weights = {"content": config.content_weight, "tv": config.tv_weight}
    for name, targets, share in zip(names, style_targets, blend):
        terms[name] = StyleTerm(targets, style_lw)
        loss_weights[name] = config.style_weight * share
    terms["tv"] = TVTerm()
    loss = WeightedLoss(terms, loss_weights)

    def objective(x: Tensor):
        return loss(FeatureContext(x, net(x, layers)))

    result = optimise_pixels(
        content_x, objective, chain, iterations=config.iterations, callbacks=callbacks, default_lr=PIXEL_LR
    )
    alpha = None
    if content_image.alpha is not None:
        alpha = resize_long_side(content_image.alpha, config.size)
    summary = result.best_summary
    metadata = {
        "styleforge": __version__,
        "command": "transfer",
        "content": str(content_image.path) if content_image.path else None,
        "styles": [{"path": str(s.path), "weight": w, "term": n} for s, w, n in zip(specs, blend, names)],
        "config": config.to_dict(),
        "weights": weights.kind,
        "iteration": result.best_iteration,
        "stop_reason": result.stop_reason,
        "losses": summary.as_row() if summary else None,
    }
    return TransferResult(
        image=result.best[0].cpu(),
        alpha=alpha,
        history=result.history,
        summary=summary,
        stop_reason=result.stop_reason,
        stop_detail=result.stop_detail,
        config=config,
        metadata=metadata,
    )
