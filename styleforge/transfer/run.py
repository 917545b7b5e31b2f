"""Running a style transfer: load, build the objective on the engine, optimise the pixels.

:func:`transfer` is the Python API behind ``styleforge transfer``; it never prints and reports
progress through engine events.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import __version__
from ..config import INITS, TransferConfig
from ..device import resolve_device, resolve_precision
from ..engine import (
    Callback,
    DivergenceGuard,
    HistoryEntry,
    LossSummary,
    Notice,
    PIXEL_LR,
    StopRule,
    WeightedLoss,
    optimise_pixels,
    parse_optimizer,
)
from ..engine.events import Progress, StageEnded, StageStarted, download_events, emit
from ..errors import InvalidParameter, ResourceError
from ..images import LoadedImage, load_image, resize_long_side, save_image
from ..nets.vgg import VGGFeatures, layer_names, pooling_factor
from ..attributes.model import VGG_HYPERCOLUMN_LAYERS
from ..attributes.score import ImageScore, open_model, score_tensors
from ..nets.weights import resolve_weights
from .color import match_histogram, preserve_colors
from .memory import check_memory
from .objective import ContentTerm, FeatureContext, TVTerm, layer_weights, parse_layers
from ..parsing import StyleSpec, normalise_blend, parse_style, style_term_names
from .regions import image_mask_paths, mask_of, output_regions
from .style_loss import layer_targets, style_terms
from .guide import AttributeGuide, AttributeTerm, can_share_forward, resolve_targets, same_vgg_weights

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
        metadata: What the output file records (configuration, inputs, final losses; with
            ``attrs_model`` the targets under ``attrs``, with ``score_with`` the scores under
            ``scores``).
        scores: The result's scores by ``score_with``'s network, or ``None``.
        improved: Whether any iteration lowered the loss below the starting image's. ``False`` means
            :attr:`image` is the starting image (with ``keep_last``, the last iterate): a failure,
            which the CLI reports as one and writes nothing.
    """

    image: Tensor
    alpha: Tensor | None
    history: list[HistoryEntry]
    summary: LossSummary | None
    stop_reason: str
    stop_detail: str
    config: TransferConfig
    metadata: dict[str, Any] = field(default_factory=dict)
    scores: ImageScore | None = None
    improved: bool = True

    def history_rows(self) -> list[dict[str, Any]]:
        """The history as rows (``iteration, stage, optimizer, total, <term>, <term>.raw``). With
        ``score_with``, the row of the iteration whose image was written also gets the written
        image's scores: ``score.<numeric>`` (rating), ``score.<categorical>`` (class) and
        ``score.<categorical>.probability`` (other rows leave those cells empty)."""
        rows: list[dict[str, Any]] = [entry.as_row() for entry in self.history]
        if self.scores is not None and self.scores.ok and rows:
            iteration = self.metadata.get("iteration")
            row = next((r for r in rows if r["iteration"] == iteration), rows[-1])
            row.update(self.scores.history_row())
        return rows

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Writes the image atomically, with :attr:`metadata` in a PNG text chunk."""
        return save_image(path, self.image, alpha=self.alpha, metadata=self.metadata)


def _load(item: ImageInput, param: str) -> LoadedImage:
    return item if isinstance(item, LoadedImage) else load_image(item, param=param)


def _check_size(config: TransferConfig, network: str, shape: tuple[int, int], layers: Sequence[str],
                source_shape: tuple[int, int]) -> None:
    """Refuses a size at which the image would shrink below the deepest layer's pooling factor."""
    minimum = pooling_factor(network, layers)
    short = min(shape)
    if short < minimum:
        order = layer_names(network)
        deepest = max(layers, key=order.index)
        h, w = source_shape
        need = next(n for n in range(config.size, 1 << 20) if min(round(h * n / max(h, w)), round(w * n / max(h, w))) >= minimum)
        raise InvalidParameter(
            "--size",
            config.size,
            f"a size at which the image's short side is at least {minimum} px, the minimum for layer "
            f"{deepest} of {network} (this image needs --size {need} or more)",
        )


def _term_layers(config: TransferConfig, network: str) -> tuple[dict[str, float], dict[str, float]]:
    """The content layers' weights (normalised to sum 1) and the style layers' (with the exponent),
    checked against ``network``'s layer names."""
    content_lw = parse_layers(config.content_layers, network, param="--content-layers")
    content_lw = {layer: w / sum(content_lw.values()) for layer, w in content_lw.items()}
    style_lw = layer_weights(parse_layers(config.style_layers, network, param="--style-layers"), config.style_layer_weight_exp)
    return content_lw, style_lw


def _compiled(net: VGGFeatures, example: Tensor, layers: Sequence[str]) -> Any:
    """``torch.compile(net)`` for the objective's passes (the one-off target passes stay eager),
    tried once on ``example`` (1, 3, H, W) with a backward pass, so that a machine that cannot
    compile (no C++ compiler for the CPU backend, say) is told so in one line before the run starts
    rather than failing at its first iteration."""
    import torch._dynamo

    compiled = torch.compile(net)
    probe = example.clone().requires_grad_(True)
    try:
        sum(f.sum() for f in compiled(probe, layers).values()).backward()
    except torch._dynamo.exc.TorchDynamoException as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ResourceError(f"--compile: torch.compile failed on this machine ({reason}); run without --compile") from None
    return compiled


def scale_sizes(size: int, scales: int, min_size: int | None = None) -> list[int]:
    """The long sides of a coarse-to-fine run: ``scales`` sizes growing geometrically to ``size``.

    The default first size steps by √2 (``scale_sizes(512, 5)`` → 128, 181, 256, 362, 512), as
    crowsonkb/style-transfer-pytorch does.
    """
    if scales <= 1:
        return [size]
    first = min_size if min_size is not None else round(size / 2 ** ((scales - 1) / 2))
    return [round(first * (size / first) ** (i / (scales - 1))) for i in range(scales)]


def _initial_image(
    config: TransferConfig, content: Tensor, styles: Sequence[LoadedImage], init_image: Tensor | None = None
) -> Tensor:
    """The starting image (1, 3, H, W): ``init_image`` resized (a coarser scale's result), else
    content, noise, the first style or a file, plus the noise blend."""
    shape = content.shape[-2:]
    if init_image is not None:
        return F.interpolate(init_image.reshape(1, 3, *init_image.shape[-2:]).float(), size=shape, mode="bicubic",
                             align_corners=False).clamp(0, 1)
    generator = torch.Generator().manual_seed(config.seed)
    noise = torch.rand((1, 3, *shape), generator=generator)
    if config.init == "content":
        base = content
    elif config.init == "noise":
        base = noise
    else:
        image = styles[0] if config.init == "style" else load_image(config.init, param="--init")
        base = F.interpolate(image.rgb[None], size=shape, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
    if config.init_noise_blend:
        base = (1 - config.init_noise_blend) * base + config.init_noise_blend * noise
    return base


def transfer(
    content: ImageInput,
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    init_image: Tensor | None = None,
    **options: Any,
) -> TransferResult:
    """Optimises an image to keep ``content``'s content and the blended style of ``styles``.

    Args:
        content: Content image (path or :class:`LoadedImage`).
        styles: ``"path[:weight][@scale]"`` strings or :class:`StyleSpec`; weights are normalised
            to sum 1.
        config: Options; ``None`` for the defaults.
        callbacks: Receive engine events (:class:`~styleforge.engine.Progress`, …).
        init_image: A starting image (3, h, w) in [0, 1], resized to the output; overrides
            ``config.init`` and its noise blend (coarse-to-fine passes each scale's result on).
        **options: Overrides of ``config``'s fields (``iterations=50``).

    Returns:
        A :class:`TransferResult`; ``result.save("out.png")`` writes it. When the run was
        interrupted (Ctrl-C) or diverged, it holds the best image so far.

    Raises:
        StyleforgeError: Invalid options, unreadable inputs, unavailable weights or device.
    """
    config = dataclasses.replace(config or TransferConfig(), **options)
    config.validate()
    if config.resolved_scales() > 1:
        return _coarse_to_fine(content, styles, config, callbacks, init_image)
    chain = [parse_optimizer(text) for text in config.optimizer]
    if config.lr is not None:
        chain = [dataclasses.replace(s, lr=config.lr) if s.lr is None else s for s in chain]
    specs = [s if isinstance(s, StyleSpec) else parse_style(os.fspath(s)) for s in styles]
    if not specs:
        raise InvalidParameter("--style", "(none)", "at least one style image")
    requested = config.requested_network()
    content_lw, style_lw = _term_layers(config, requested)
    if config.init not in INITS and not Path(config.init).is_file():
        raise InvalidParameter("--init", config.init, "content, noise, style, or the path of an image file")
    stop = StopRule(config.stop_delta, config.patience) if config.stop_delta is not None else None
    device = resolve_device(config.device)
    compute_dtype = resolve_precision(config.precision, device)

    content_image = _load(content, "CONTENT")
    style_images = [load_image(s.path, param="--style") for s in specs]
    target = resize_long_side(content_image.rgb, config.size)
    layers = list(dict.fromkeys([*content_lw, *style_lw]))
    _check_size(config, requested, tuple(target.shape[-2:]), layers, content_image.size)
    names = style_term_names(specs)
    blend = normalise_blend(specs)
    # The style images at the size their statistics are taken at, and the masks (read now, so a bad
    # one is reported before the slow work).
    style_rgbs = []
    for spec, image in zip(specs, style_images):
        scale = spec.scale if spec.scale is not None else config.style_scale
        style_rgb = resize_long_side(image.rgb, max(1, round(config.size * scale)))
        style_rgbs.append(match_histogram(style_rgb, target) if config.color_transfer == "histogram" else style_rgb)
    regions = output_regions(config.style_masks, names, tuple(target.shape[-2:]))
    image_masks = image_mask_paths(config.style_image_masks, names)
    style_masks = [mask_of(image_masks.get(i), tuple(rgb.shape[-2:])) for i, rgb in enumerate(style_rgbs)]
    if config.memory_check:
        check_memory(requested, layers, tuple(target.shape[-2:]), config.size, chain, device)
    init = _initial_image(config, target[None], style_images, init_image)

    # The attribute networks are read (and the --attr targets checked against their schema) before
    # any slow work; one network serves both when --score-with names the --attrs-model folder.
    attr_model = scorer = None
    if config.attrs_model:
        attr_model = open_model(config.attrs_model, device=device, param="--attrs-model", callbacks=callbacks)
    attr_targets = resolve_targets(config.attrs, attr_model.net.schema, config.attr_weight) if attr_model else []
    if config.score_with:
        same = attr_model is not None and Path(config.score_with).resolve() == Path(str(config.attrs_model)).resolve()
        scorer = attr_model if same else open_model(config.score_with, device=device, param="--score-with", callbacks=callbacks)

    weights = resolve_weights(config.weights, requested, on_download=download_events(callbacks))
    if weights.notice:
        emit(callbacks, Notice(weights.notice))
    network = weights.arch  # ``auto`` may have fallen back to HED's VGG-16
    if network != requested:
        content_lw, style_lw = _term_layers(config, network)
        layers = list(dict.fromkeys([*content_lw, *style_lw]))
        _check_size(config, network, tuple(target.shape[-2:]), layers, content_image.size)
    # Reuse the transfer's VGG pass for the hypercolumn when it is the attribute backbone and sees
    # the image as the model does (square, at the model's input size): at any other size or aspect the
    # hypercolumn differs from the one the model was trained and scores on, and guidance would chase
    # the wrong target, so the model's own backbone runs on the squashed image instead.
    shared_forward = (attr_model is not None and can_share_forward(attr_model, network, config.pooling)
                      and tuple(target.shape[-2:]) == (attr_model.size, attr_model.size))
    net_layers = list(dict.fromkeys([*layers, *VGG_HYPERCOLUMN_LAYERS])) if shared_forward else layers
    net = VGGFeatures(
        network, net_layers, state_dict=weights.state_dict, seed=config.seed, pooling=config.pooling,
        source=weights.source, compute_dtype=compute_dtype,
    ).to(device)
    weights_kind = weights.kind
    del weights  # the network holds its own copy; the file's tensors (classifier and all) can go
    if shared_forward and not same_vgg_weights(attr_model, net):  # type: ignore[arg-type]
        shared_forward, net_layers = False, layers

    content_x = target[None].to(device)
    forward = _compiled(net, content_x, net_layers) if config.compile else net
    style_targets = []
    for style_rgb, image, mask in zip(style_rgbs, style_images, style_masks):
        _check_size(config, network, tuple(style_rgb.shape[-2:]), list(style_lw), image.size)
        with torch.inference_mode():
            features = net(style_rgb[None].to(device), style_lw)
        # Inference tensors cannot be saved for backward: the statistics are taken from ordinary copies.
        with torch.no_grad():
            style_targets.append(layer_targets(config.style_loss, {k: v.clone() for k, v in features.items()}, mask))
        del features
    with torch.inference_mode():
        content_targets = net(content_x, content_lw)
    content_targets = {k: v.clone() for k, v in content_targets.items()}

    terms: dict[str, Any] = {"content": ContentTerm(content_targets, content_lw)}
    terms.update(style_terms(config.style_loss, names, blend, style_targets, style_lw, regions, seed=config.seed))
    loss_weights = {"content": config.content_weight, "tv": config.tv_weight}
    loss_weights.update({name: config.resolved_style_weight() * share for name, share in zip(names, blend)})
    terms["tv"] = TVTerm()
    if attr_model is not None:
        guide = AttributeGuide(attr_model, shared=shared_forward)
        for t in attr_targets:
            terms[t.term] = AttributeTerm(guide, t)
            loss_weights[t.term] = t.weight
    loss = WeightedLoss(terms, loss_weights)

    def objective(x: Tensor):
        return loss(FeatureContext(x, forward(x, net_layers)))

    result = optimise_pixels(
        init.to(device),
        objective,
        chain,
        iterations=config.iterations,
        stop=stop,
        guard=DivergenceGuard(config.divergence_factor),
        callbacks=callbacks,
        default_lr=PIXEL_LR,
    )
    image = (result.last if config.keep_last else result.best)[0].cpu()
    summary = result.history[-1].summary if config.keep_last and result.history else result.best_summary
    iteration = len(result.history) if config.keep_last else result.best_iteration
    if config.preserve_colors:
        image = preserve_colors(image, target)
    alpha = None
    if content_image.alpha is not None:
        alpha = resize_long_side(content_image.alpha, config.size)
    metadata = {
        "styleforge": __version__,
        "command": "transfer",
        "content": str(content_image.path) if content_image.path else None,
        "styles": [str(s) for s in specs],
        "blend": dict(zip(names, blend)),
        "config": config.to_dict(),
        "weights_used": weights_kind,
        "network_used": network,
        "iteration": iteration,
        "stop_reason": result.stop_reason,
        "losses": summary.as_row() if summary else None,
    }
    if attr_model is not None:
        metadata["attrs"] = {"model": str(config.attrs_model), "shared_forward": shared_forward,
                             "targets": {t.name: t.to_dict() for t in attr_targets}}
    scores = None
    if scorer is not None:
        scores = score_tensors(scorer, [image], ["result"])[0]
        metadata["scores"] = {"model": str(config.score_with), "numeric": scores.to_dict()["numeric"],
                              "categorical": scores.to_dict()["categorical"]}
    return TransferResult(
        image=image,
        alpha=alpha,
        history=result.history,
        summary=summary,
        stop_reason=result.stop_reason,
        stop_detail=result.stop_detail,
        config=config,
        metadata=metadata,
        scores=scores,
        # The first evaluation is the starting image; a run of one evaluation cannot tell.
        improved=result.best_iteration > 1 or len(result.history) < 2,
    )


class _Shifted:
    """Passes a scale's events on as parts of the whole coarse-to-fine run (global numbering)."""

    def __init__(self, callback: Callback, iterations: int, stages: int, total: int, first: bool) -> None:
        self.callback, self.iterations, self.stages, self.total, self.first = callback, iterations, stages, total, first

    def __call__(self, event: Any) -> None:
        if isinstance(event, Progress):
            event = dataclasses.replace(event, iteration=event.iteration + self.iterations, total_iterations=self.total,
                                        stage=event.stage + self.stages)
        elif isinstance(event, StageStarted):
            event = dataclasses.replace(event, index=event.index + self.stages, total_iterations=self.total,
                                        first_iteration=event.first_iteration + self.iterations)
        elif isinstance(event, StageEnded):
            event = dataclasses.replace(event, index=event.index + self.stages)
        elif isinstance(event, Notice) and not self.first:
            return  # said once, at the first scale
        self.callback(event)


def _coarse_to_fine(
    content: ImageInput,
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig,
    callbacks: Sequence[Callback],
    init_image: Tensor | None,
) -> TransferResult:
    """Runs the transfer at growing sizes, each scale starting from the one before, upsampled.

    The iteration budget is the single-size run's, split evenly: every scale runs the whole optimiser
    chain with ⌈steps / scales⌉ of each stage's steps, so ``--iterations 300 --scales 3`` is 100
    iterations at each of three sizes, and the run costs less than 300 at full size. The history and
    the events number iterations and stages across scales. A coarse scale that converges or diverges
    hands on its best image; Ctrl-C ends the run with the best image of the scale it was in.
    """
    scales = config.resolved_scales()
    sizes = scale_sizes(config.size, scales, config.min_size)
    chain = [parse_optimizer(s) for s in config.optimizer]
    chain = [dataclasses.replace(s, steps=math.ceil((s.steps or config.iterations) / scales)) for s in chain]
    stages = len(chain)
    planned = sum(s.steps for s in chain)  # type: ignore[misc]
    history: list[HistoryEntry] = []
    image, result, offset, improved = init_image, None, 0, False
    for k, size in enumerate(sizes):
        last = k == len(sizes) - 1
        sub = dataclasses.replace(config, size=size, scales=1, min_size=None, optimizer=tuple(map(str, chain)),
                                  score_with=config.score_with if last else None)
        if result is not None:  # later scales take the weights the first one resolved (no second fallback)
            used = result.metadata["weights_used"]
            sub = dataclasses.replace(sub, weights=config.weights if used == "file" else used,
                                      network=result.metadata["network_used"])
        shifted = [_Shifted(cb, offset, k * stages, planned * len(sizes), k == 0) for cb in callbacks]
        result = transfer(content, styles, sub, callbacks=shifted, init_image=image)
        history += [dataclasses.replace(e, iteration=e.iteration + offset, stage=e.stage + k * stages) for e in result.history]
        result.metadata["iteration"] += offset
        offset += len(result.history)
        image, improved = result.image, improved or result.improved
        if result.stop_reason == "interrupted":
            break
    assert result is not None
    result.history, result.config, result.improved = history, config, improved
    result.metadata.update(config=config.to_dict(), scales=sizes[: k + 1])
    return result
