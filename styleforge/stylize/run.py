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

from ..config import INITS, TransferConfig
from ..device import resolve_device, resolve_precision, tf32_mode
from ..engine import (
    PIXEL_LR,
    Callback,
    DivergenceGuard,
    HistoryEntry,
    LossSummary,
    Notice,
    OptimizerSpec,
    PixelResult,
    StopRule,
    WeightedLoss,
    optimise_pixels,
    parse_optimizer,
)
from ..engine.events import Progress, StageEnded, StageStarted, download_events, emit
from ..engine.interrupt import stop_detail, watch
from ..engine.outcome import INTERRUPTED
from ..errors import InvalidParameter, ResourceError
from ..images import LoadedImage, load_image, long_side_shape, resize_long_side, save_image
from ..nets.vgg import VGGFeatures, layer_names, pooling_factor
from ..nets.weights import resolve_weights
from ..parsing import StyleSpec, normalise_blend, parse_style, style_term_names
from ..version import __version__
from .color import match_histogram, preserve_colors
from .extension import Extension, ExtraTerms, ScaleView, merged
from .memory import available_bytes, check_memory
from .objective import ContentTerm, FeatureContext, LaplacianTerm, TVTerm, layer_weights, parse_layers
from .regions import image_mask_paths, mask_of, output_regions
from .style_loss import layer_targets, style_terms
from .tiles import (
    Tile,
    choose_tile,
    default_overlap,
    feather,
    held_whole,
    mean_summary,
    pass_offsets,
    pass_steps,
    style_pass,
    tile_grid,
)

__all__ = ["Stylizer", "TransferResult", "transfer"]

ImageInput = str | os.PathLike[str] | LoadedImage


@dataclass
class TransferResult:
    """The outcome of :func:`transfer`.

    Attributes:
        image: (3, H, W) in [0, 1]: the lowest-loss iterate.
        alpha: The content's alpha channel at output size, (1, H, W), or ``None``.
        history: Every evaluation's loss values.
        summary: Loss values of ``image``.
        stop_reason: ``completed``, ``stopped`` (the stopping rule), ``diverged`` or ``interrupted``
            (:mod:`styleforge.engine.outcome`).
        stop_detail: A sentence for the user.
        config: The configuration that ran.
        metadata: What the output file records (configuration, inputs, final losses, and what
            the extensions add: with guidance, the targets under ``attrs`` and the scores under
            ``scores``).
        scores: The result's scores (an extension's, e.g. a scoring network's), or ``None``.
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
    scores: Any = None
    improved: bool = True

    def history_rows(self) -> list[dict[str, Any]]:
        """The history as rows (``iteration, stage, optimizer, total, <term>, <term>.raw``). With
        an extension's scores, the row of the iteration whose image was written also gets the written
        image's scores: ``score.<numeric>`` (rating), ``score.<categorical>`` (class) and
        ``score.<categorical>.probability`` (other rows leave those cells empty)."""
        rows: list[dict[str, Any]] = [entry.as_row() for entry in self.history]
        if self.scores is not None and self.scores.ok and rows:
            iteration = self.metadata.get("iteration")
            row = next((r for r in rows if r["iteration"] == iteration), rows[-1])
            row.update(self.scores.history_row())
        return rows

    def save(self, path: str | os.PathLike[str], *, fallback: bool = False) -> Path:
        """Writes the image atomically, with :attr:`metadata` in a PNG text chunk.

        Args:
            path: Destination; the format comes from the extension.
            fallback: Where ``path`` cannot be written, save the image in the working (else the
                temp) folder and raise :class:`~styleforge.errors.OutputWriteError` saying where.
        """
        return save_image(path, self.image, alpha=self.alpha, metadata=self.metadata, fallback=fallback)


def _load(item: ImageInput, param: str) -> LoadedImage:
    return item if isinstance(item, LoadedImage) else load_image(item, param=param)


def _check_size(
    size: int, network: str, shape: tuple[int, int], layers: Sequence[str], source_shape: tuple[int, int]
) -> None:
    """Refuses a size at which the image would shrink below the deepest layer's pooling factor."""
    minimum = pooling_factor(network, layers)
    short = min(shape)
    if short < minimum:
        order = layer_names(network)
        deepest = max(layers, key=order.index)
        h, w = source_shape
        need = next(
            n
            for n in range(size, 1 << 20)
            if min(round(h * n / max(h, w)), round(w * n / max(h, w))) >= minimum
        )
        raise InvalidParameter(
            "--size",
            size,
            f"a size at which the image's short side is at least {minimum} px, the minimum for layer "
            f"{deepest} of {network} (this image needs --size {need} or more)",
        )


def _term_layers(config: TransferConfig, network: str) -> tuple[dict[str, float], dict[str, float]]:
    """The content layers' weights (normalised to sum 1) and the style layers' (with the exponent),
    checked against ``network``'s layer names."""
    content_lw = parse_layers(config.content_layers, network, param="--content-layers")
    content_lw = {layer: w / sum(content_lw.values()) for layer, w in content_lw.items()}
    style_lw = layer_weights(
        parse_layers(config.style_layers, network, param="--style-layers"), config.style_layer_weight_exp
    )
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
        raise ResourceError(
            f"--compile: torch.compile failed on this machine ({reason}); run without --compile"
        ) from None
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
        return F.interpolate(
            init_image.reshape(1, 3, *init_image.shape[-2:]).float(),
            size=shape,
            mode="bicubic",
            align_corners=False,
        ).clamp(0, 1)
    generator = torch.Generator().manual_seed(config.seed)
    noise = torch.rand((1, 3, *shape), generator=generator)
    if config.init == "content":
        base = content
    elif config.init == "noise":
        base = noise
    else:
        image = styles[0] if config.init == "style" else load_image(config.init, param="--init")
        base = F.interpolate(
            image.rgb[None], size=shape, mode="bicubic", antialias=True, align_corners=False
        ).clamp(0, 1)
    if config.init_noise_blend:
        base = (1 - config.init_noise_blend) * base + config.init_noise_blend * noise
    return base


def scale_shares(steps: int, scales: int, split: float) -> list[int]:
    """``steps`` iterations shared between ``scales`` sizes, coarse to fine, each scale getting
    ``split`` times the next finer one's (1: evenly), rounded so that they add up to ``steps``
    exactly (largest remainders) and each scale gets at least one.

    >>> scale_shares(300, 3, 1.0), scale_shares(175, 3, 2.0)
    ([100, 100, 100], [100, 50, 25])
    """
    weights = [split ** (scales - 1 - k) for k in range(scales)]
    exact = [steps * w / sum(weights) for w in weights]
    shares = [math.floor(x) for x in exact]
    for k in sorted(range(scales), key=lambda k: exact[k] - shares[k], reverse=True)[: steps - sum(shares)]:
        shares[k] += 1
    return [max(1, n) for n in shares]


def _chains(config: TransferConfig, scales: int, budget: int | None = None) -> list[list[OptimizerSpec]]:
    """The optimiser chain of each scale, coarse to fine: ``config.optimizer`` parsed, ``--lr`` filled
    in where a stage has no ``@LR``, and each stage's steps shared between the scales by
    :func:`scale_shares` (``config.scale_split``). ``budget``: the whole chain's iterations instead of
    the configured ones (each stage keeps its share of them)."""
    chain = [parse_optimizer(text) for text in config.optimizer]
    if config.lr is not None:
        chain = [dataclasses.replace(s, lr=config.lr) if s.lr is None else s for s in chain]
    steps = [s.steps or config.iterations for s in chain]
    if budget is not None:
        steps = [max(1, round(n * budget / sum(steps))) for n in steps]
    shares = [scale_shares(n, scales, config.scale_split) for n in steps]
    return [
        [dataclasses.replace(s, steps=share[k]) for s, share in zip(chain, shares)] for k in range(scales)
    ]


@dataclass
class _Scale:
    """What one size of the pyramid needs before the network runs: the content at that size, the style
    images and masks at the size their statistics are taken at, and the output regions."""

    size: int
    target: Tensor
    style_rgbs: list[Tensor]
    style_masks: list[Any]
    regions: list[Any]
    tile: int | None = None  # optimised tile by tile with this side (:mod:`.tiles`)

    def crop(self, tile: Tile) -> _Scale:
        """The scale restricted to one tile: the content cropped; the style images (and so their
        statistics) whole. (Output regions are not tiled: ``--style-mask`` refuses tiles.)"""
        return _Scale(self.size, tile.crop(self.target), self.style_rgbs, self.style_masks, self.regions)


@dataclass
class _Content:
    """One content image and its pyramid, checked."""

    image: LoadedImage
    scales: list[_Scale]


class _Shifted:
    """Passes a scale's events on as parts of the whole coarse-to-fine run (global numbering)."""

    def __init__(self, callback: Callback, iterations: int, stages: int, total: int) -> None:
        self.callback, self.iterations, self.stages, self.total = callback, iterations, stages, total

    def __call__(self, event: Any) -> None:
        if isinstance(event, Progress):
            event = dataclasses.replace(
                event,
                iteration=event.iteration + self.iterations,
                total_iterations=self.total,
                stage=event.stage + self.stages,
            )
        elif isinstance(event, StageStarted):
            event = dataclasses.replace(
                event,
                index=event.index + self.stages,
                total_iterations=self.total,
                first_iteration=event.first_iteration + self.iterations,
            )
        elif isinstance(event, StageEnded):
            event = dataclasses.replace(event, index=event.index + self.stages)
        self.callback(event)


class _TileCounter:
    """Passes a tile's events on as the tiled scale's: iteration ``k`` is reached when every tile of
    the pass has taken ``k`` steps on average (so it counts up to the pass's steps, once each), the
    image is the whole canvas (what a checkpoint or a GIF frame should show), and a stage starts and
    ends once per pass."""

    def __init__(
        self,
        callbacks: Sequence[Callback],
        done: int,
        steps: int,
        tiles: int,
        canvas: Tensor,
        stages: Sequence[int],
    ) -> None:
        self.callbacks, self.done, self.steps, self.tiles, self.canvas = callbacks, done, steps, tiles, canvas
        self.stages = list(stages)  # the chain's stage of each stage this pass runs
        self.tile = 0
        self.shown = done

    def __call__(self, event: Any) -> None:
        if isinstance(event, Progress):
            reached = self.done + math.ceil((self.tile * self.steps + event.iteration) / self.tiles)
            if reached > self.shown:
                self.shown = reached
                emit(
                    self.callbacks,
                    dataclasses.replace(
                        event,
                        iteration=reached,
                        stage=self.stages[event.stage],
                        image=self.canvas,
                        is_best=False,
                    ),
                )
        elif isinstance(event, StageStarted) and self.tile == 0:
            emit(
                self.callbacks,
                dataclasses.replace(
                    event, index=self.stages[event.index], first_iteration=self.done + event.first_iteration
                ),
            )
        elif isinstance(event, StageEnded) and (self.tile == self.tiles - 1 or event.reason == INTERRUPTED):
            emit(self.callbacks, dataclasses.replace(event, index=self.stages[event.index]))


def _pass_history(
    runs: Sequence[Sequence[HistoryEntry]], done: int, stages: Sequence[int]
) -> list[HistoryEntry]:
    """One pass's history: its iteration ``k`` is the tiles' mean loss at their ``k``-th step (a tile
    the stopping rule ended early counts with its last), numbered after the ``done`` before it."""
    if not runs:
        return []
    out = []
    for k in range(max(len(run) for run in runs)):
        entries = [run[min(k, len(run) - 1)] for run in runs]
        first = entries[0]
        out.append(
            HistoryEntry(
                done + k + 1, stages[first.stage], first.optimizer, mean_summary([e.summary for e in entries])
            )
        )
    return out


class Stylizer:
    """A transfer's options, style images, extensions and feature network, built once, for one content
    image or many (the frames of a video, the tiles of a large image) of any size.

    Everything is checked cheapest first: the options, the style images, then (given ``content``)
    the first content image, its sizes and the memory estimate, then the extensions' files, and only
    then are the weights resolved and the network built. The style statistics of a scale are taken
    once and reused by every content image of that size (except with ``color_transfer="histogram"``,
    where they depend on the content).

    Args:
        styles: ``"path[:weight][@scale]"`` strings or :class:`StyleSpec`; weights are normalised
            to sum 1.
        config: Options; ``None`` for the defaults.
        callbacks: Receive the events of building (downloads, notices).
        extensions: More terms in every run (:mod:`styleforge.stylize.extension`).
        content: The first content image, checked before the slow work (then :meth:`run` may omit it).
        **options: Overrides of ``config``'s fields.

    Raises:
        StyleforgeError: Invalid options, unreadable inputs, unavailable weights or device.
    """

    def __init__(
        self,
        styles: Sequence[str | os.PathLike[str] | StyleSpec],
        config: TransferConfig | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        extensions: Sequence[Extension] = (),
        content: ImageInput | None = None,
        **options: Any,
    ) -> None:
        config = dataclasses.replace(config or TransferConfig(), **options)
        config.validate()
        self.config, self.extensions = config, list(extensions)
        count = config.resolved_scales()
        self.sizes = scale_sizes(config.size, count, config.min_size)
        self.chains = _chains(config, count)
        self.specs = [s if isinstance(s, StyleSpec) else parse_style(os.fspath(s)) for s in styles]
        if not self.specs:
            raise InvalidParameter("--style", "(none)", "at least one style image")
        self.network = config.requested_network()
        self.content_lw, self.style_lw = _term_layers(config, self.network)
        if config.init not in INITS and not Path(config.init).is_file():
            raise InvalidParameter(
                "--init", config.init, "content, noise, style, or the path of an image file"
            )
        self.device = resolve_device(config.device)
        compute_dtype = resolve_precision(config.precision, self.device)
        self.style_images = [load_image(s.path, param="--style") for s in self.specs]
        self.names, self.blend = style_term_names(self.specs), normalise_blend(self.specs)
        self._style_targets: dict[int, list[Any]] = {}
        self._checked_shapes: set[tuple[int, int]] = set()
        self._first = self.prepare(content) if content is not None else None

        for extension in self.extensions:  # their files are read before any slow work
            extension.open(self.device, callbacks)
        weights = resolve_weights(config.weights, self.network, on_download=download_events(callbacks))
        if weights.notice:
            emit(callbacks, Notice(weights.notice))
        if weights.arch != self.network:  # ``auto`` fell back to HED's VGG-16
            self.network = weights.arch
            self.content_lw, self.style_lw = _term_layers(config, self.network)
            if self._first is not None:
                self._check_sizes(self._first)
        for size in self.sizes:  # the style images at every scale
            for spec, image in zip(self.specs, self.style_images):
                _check_size(
                    size, self.network, self._style_shape(spec, image, size), list(self.style_lw), image.size
                )
        extra = [
            layer for extension in self.extensions for layer in extension.layers(self.network, config.pooling)
        ]
        self.net = VGGFeatures(
            self.network,
            list(dict.fromkeys([*self.layers, *extra])),
            state_dict=weights.state_dict,
            seed=config.seed,
            pooling=config.pooling,
            source=weights.source,
            compute_dtype=compute_dtype,
        ).to(self.device)
        self.weights_kind = weights.kind
        del weights  # the network holds its own copy; the file's tensors (classifier and all) can go
        self._forward: Any = None  # compiled on the first run, for its size

    @property
    def layers(self) -> list[str]:
        """The layers the content and style terms read."""
        return list(dict.fromkeys([*self.content_lw, *self.style_lw]))

    def _style_shape(self, spec: StyleSpec, image: LoadedImage, size: int) -> tuple[int, int]:
        """The (height, width) of a style image resized for one scale (as :func:`resize_long_side` gives)."""
        scale = spec.scale if spec.scale is not None else self.config.style_scale
        return long_side_shape(image.size, max(1, round(size * scale)))

    @property
    def first(self) -> _Content | None:
        """The content image given to the constructor, prepared (``None`` when none was given):
        :meth:`run` without ``content`` optimises it without preparing it again."""
        return self._first

    def prepare(self, content: ImageInput) -> _Content:
        """Loads and checks one content image and its pyramid (sizes, tiles, memory, masks), without running.

        Every shape of the pyramid is worked out from the image's size, and the sizes, the tiles and
        the memory estimate are checked on those shapes before any image is resized: a size too
        large for the machine is refused before it takes the memory.
        """
        if isinstance(content, _Content):
            return content
        image = _load(content, "CONTENT")
        config = self.config
        shapes = [long_side_shape(image.size, size) for size in self.sizes]
        self._check_shapes(shapes, image.size)
        style_shapes = [
            [self._style_shape(spec, style, size) for spec, style in zip(self.specs, self.style_images)]
            for size in self.sizes
        ]
        tiles = self._plan_tiles(shapes, style_shapes)
        image_masks = image_mask_paths(config.style_image_masks, self.names)
        scales = []
        for size, tile in zip(self.sizes, tiles):
            target = resize_long_side(image.rgb, size)
            style_rgbs = []
            for spec, style in zip(self.specs, self.style_images):
                scale = spec.scale if spec.scale is not None else config.style_scale
                style_rgb = resize_long_side(style.rgb, max(1, round(size * scale)))
                style_rgbs.append(
                    match_histogram(style_rgb, target) if config.color_transfer == "histogram" else style_rgb
                )
            scales.append(
                _Scale(
                    size,
                    target,
                    style_rgbs,
                    [mask_of(image_masks.get(i), tuple(rgb.shape[-2:])) for i, rgb in enumerate(style_rgbs)],
                    output_regions(config.style_masks, self.names, tuple(target.shape[-2:])),
                    tile,
                )
            )
        return _Content(image, scales)

    def _plan_tiles(
        self, shapes: Sequence[tuple[int, int]], style_shapes: Sequence[Sequence[tuple[int, int]]]
    ) -> list[int | None]:
        """Each scale's tile side (``None``: whole), and the memory check of the largest run, from the
        shapes alone.

        Raises:
            InvalidParameter: A scale would be tiled with options that need the whole image.
            ResourceError: The largest run does not fit in the memory available (with the check on).
        """
        config = self.config
        auto = str(config.tile).lower() == "auto"
        free = available_bytes(self.device) if auto else None
        tiles: list[int | None] = []
        for size, shape, styles in zip(self.sizes, shapes, style_shapes):
            tile = choose_tile(
                self.network,
                self.layers,
                shape,
                list(styles),
                self.chains[-1],
                free,
                requested=config.tile_side(),
                auto=auto,
                size=self.sizes[-1],
                scale=size,
            )
            if tile is not None and (self.extensions or config.style_masks):
                why = (
                    "--attrs-model/--score-with (the attribute network rates the whole image)"
                    if self.extensions
                    else "--style-mask (regions are not tiled yet)"
                )
                raise InvalidParameter(
                    "--tile",
                    config.tile,
                    f"off with {why}: the {size} px scale would be tiled; choose a smaller --size",
                )
            tiles.append(tile)
        # The largest run is the last scale's: its style images' pass, then its optimisation (whole, or
        # one tile at a time beside the whole images a tiled scale holds).
        full, last = shapes[-1], tiles[-1]
        shape = full if last is None else (min(last, full[0]), min(last, full[1]))
        if config.memory_check and shape not in self._checked_shapes:
            styles = style_pass(self.network, self.layers, list(style_shapes[-1]))
            check_memory(
                self.network,
                self.layers,
                shape,
                self.sizes[-1],
                self.chains[-1],
                self.device,
                at_least=styles,
                extra=0 if last is None else held_whole(full),
                tiled=last is not None,
            )
            self._checked_shapes.add(shape)
        return tiles

    def _check_shapes(self, shapes: Sequence[tuple[int, int]], source: tuple[int, int]) -> None:
        """Every scale's shape is large enough for the deepest layer."""
        for size, shape in zip(self.sizes, shapes):
            _check_size(size, self.network, shape, self.layers, source)

    def _check_sizes(self, content: _Content) -> None:
        self._check_shapes([tuple(plan.target.shape[-2:]) for plan in content.scales], content.image.size)

    def _targets(self, plan: _Scale) -> list[Any]:
        """The style statistics at one scale (taken once per size unless they depend on the content)."""
        cached = self._style_targets.get(plan.size)
        if cached is not None:
            return cached
        targets = []
        for style_rgb, mask in zip(plan.style_rgbs, plan.style_masks):
            with torch.inference_mode():
                features = self.net(style_rgb[None].to(self.device), self.style_lw)
            # Inference tensors cannot be saved for backward: the statistics are taken from ordinary
            # copies, one layer at a time (a large scale's style image holds gigabytes of features).
            stats: dict[str, Any] = {}
            for layer in list(features):
                copy = features.pop(layer)
                with torch.no_grad():
                    stats.update(layer_targets(self.config.style_loss, {layer: copy.clone()}, mask))
                del copy
            targets.append(stats)
        if self.config.color_transfer != "histogram":
            self._style_targets[plan.size] = targets
        return targets

    def _objective(self, plan: _Scale, extensions: Sequence[Extension]) -> tuple[Any, list[ExtraTerms]]:
        """One scale's objective, ``(1, 3, h, w) pixels -> LossReport``, and the extensions' terms."""
        config, net, device = self.config, self.net, self.device
        view = ScaleView(net, self.network, config.pooling, tuple(plan.target.shape[-2:]))
        extras = [extension.terms(view) for extension in extensions]
        net_layers = list(
            dict.fromkeys([*self.layers, *(layer for extra in extras for layer in extra.layers)])
        )
        style_targets = self._targets(plan)
        with torch.inference_mode():
            content_targets = net(plan.target[None].to(device), self.content_lw)
        content_targets = {k: v.clone() for k, v in content_targets.items()}

        terms: dict[str, Any] = {"content": ContentTerm(content_targets, self.content_lw)}
        terms.update(
            style_terms(
                config.style_loss,
                self.names,
                self.blend,
                style_targets,
                self.style_lw,
                plan.regions,
                seed=config.seed,
            )
        )
        loss_weights = {"content": config.content_weight, "tv": config.tv_weight}
        loss_weights.update(
            {name: config.resolved_style_weight() * share for name, share in zip(self.names, self.blend)}
        )
        terms["tv"] = TVTerm()
        if config.laplacian_weight:
            terms["laplacian"] = LaplacianTerm(plan.target[None].to(device), config.laplacian_sigma)
            loss_weights["laplacian"] = config.laplacian_weight
        terms.update(merged([extra.terms for extra in extras]))
        loss_weights.update(merged([extra.weights for extra in extras]))
        loss = WeightedLoss(terms, loss_weights)
        if self._forward is None:
            self._forward = (
                _compiled(net, plan.target[None].to(device), self.layers) if config.compile else net
            )
        forward = self._forward

        def objective(x: Tensor):
            return loss(FeatureContext(x, forward(x, net_layers)))

        return objective, extras

    def evaluate(self, content: ImageInput | _Content, image: Tensor) -> LossSummary:
        """The last scale's objective (whole, never tiled) at ``image`` (3, H, W) in [0, 1], for
        ``content``: e.g. to compare a tiled result with an untiled one on the same terms."""
        plan = self.prepare(content).scales[-1]
        with tf32_mode(self.device, self.config.precision == "tf32"):
            objective, _ = self._objective(plan, self.extensions)
        with torch.no_grad(), tf32_mode(self.device, self.config.precision == "tf32"):
            return objective(image[None].to(self.device)).summary()

    def _optimise_scale(
        self,
        plan: _Scale,
        init: Tensor,
        chain: Sequence[OptimizerSpec],
        extensions: Sequence[Extension],
        callbacks: Sequence[Callback],
        interrupt: Any,
    ) -> tuple[Any, list[ExtraTerms]]:
        """One scale: its targets, the objective on the engine, the pixels optimised by ``chain``.
        Returns the engine's result and the extensions' terms."""
        config = self.config
        objective, extras = self._objective(plan, extensions)
        result = optimise_pixels(
            init.to(self.device),
            objective,
            list(chain),
            iterations=config.iterations,
            stop=StopRule(config.stop_delta, config.patience) if config.stop_delta is not None else None,
            guard=DivergenceGuard(config.divergence_factor),
            callbacks=callbacks,
            default_lr=PIXEL_LR,
            interrupt=interrupt,
        )
        return result, extras

    def _optimise_tiled(
        self,
        plan: _Scale,
        init: Tensor,
        chain: Sequence[OptimizerSpec],
        callbacks: Sequence[Callback],
        interrupt: Any,
    ) -> tuple[Any, list[ExtraTerms]]:
        """One scale, tile by tile (:mod:`.tiles`): ``tile_passes`` passes over a grid shifted at random
        each time, every tile a transfer of its own blended into the canvas through its feathered
        window. The chain's steps are shared out between the passes (:func:`.tiles.pass_steps`); each
        tile of a pass runs that pass's share.

        The scale's iteration ``k`` of a pass is every tile's ``k``-th step: the counter the events
        show (with the canvas as the image) and the history (the tiles' mean loss,
        :func:`.tiles.mean_summary`) never pass the scale's budget. Returns a result like
        :meth:`_optimise_scale`'s whose best and last images are the canvas."""
        config = self.config
        assert plan.tile is not None
        shape = tuple(plan.target.shape[-2:])
        overlap = config.tile_overlap if config.tile_overlap is not None else default_overlap(plan.tile)
        shares = pass_steps([s.steps or config.iterations for s in chain], config.tile_passes)
        canvas = init.detach().clone().cpu()
        history: list[HistoryEntry] = []
        result: Any = None
        improved, tiles_done, best_summaries = False, 0, []
        for offset, share in zip(
            pass_offsets(len(shares), plan.tile - overlap, config.seed + plan.size), shares
        ):
            pass_chain = [
                (i, dataclasses.replace(s, steps=n)) for i, (s, n) in enumerate(zip(chain, share)) if n
            ]
            tiles = tile_grid(shape, plan.tile, overlap, offset)
            counter = _TileCounter(
                callbacks, len(history), sum(share), len(tiles), canvas, [i for i, _ in pass_chain]
            )
            runs: list[list[HistoryEntry]] = []
            best_summaries = []
            for index, tile in enumerate(tiles):
                counter.tile = index
                result, _ = self._optimise_scale(
                    plan.crop(tile), tile.crop(canvas), [s for _, s in pass_chain], (), [counter], interrupt
                )
                if result.history:
                    tiles_done += 1
                    weight = feather(tile, shape, overlap)
                    piece = tile.crop(canvas)
                    piece.mul_(1 - weight).add_(weight * result.best.detach().cpu())
                    improved = improved or result.best_iteration > 1
                    runs.append(result.history)
                    best_summaries.append(result.best_summary)
                if result.stop_reason == INTERRUPTED:
                    break
            history += _pass_history(runs, len(history), [i for i, _ in pass_chain])
            if result is not None and result.stop_reason == INTERRUPTED:
                break
        assert result is not None
        total = len(history)
        best_summary = (
            mean_summary([s for s in best_summaries if s is not None]) if any(best_summaries) else None
        )
        return PixelResult(
            best=canvas,
            last=canvas,
            best_summary=best_summary,
            best_iteration=total if improved else 1,
            history=history,
            stop_reason=result.stop_reason,
            stop_detail=result.stop_detail,
        ), [
            ExtraTerms(
                metadata={
                    "tiles": {
                        "tile": plan.tile,
                        "overlap": overlap,
                        "passes": len(shares),
                        "optimised": tiles_done,
                    }
                }
            )
        ]

    def run(
        self,
        content: ImageInput | _Content | None = None,
        *,
        callbacks: Sequence[Callback] = (),
        init_image: Tensor | None = None,
        extensions: Sequence[Extension] = (),
        interrupt: Any = None,
        iterations: int | None = None,
        finest_only: bool = False,
    ) -> TransferResult:
        """Optimises one content image (``None``: the one given to the constructor).

        Args:
            content: A path, a :class:`LoadedImage`, or what :meth:`prepare` returned.
            callbacks: Receive engine events (:class:`~styleforge.engine.Progress`, …).
            init_image: A starting image (3, h, w) in [0, 1], resized to the (first scale's) size;
                overrides ``config.init`` and its noise blend.
            extensions: More terms for this run only (opened here; their layers must be among the
                network's, e.g. none: a term on the pixels).
            interrupt: The caller's flag (:func:`~styleforge.engine.interrupt.stop_signals`), for a
                caller that runs many; ``None``: this run installs its own (Ctrl-C and SIGTERM).
            iterations: This run's iteration budget instead of ``config.iterations`` (each stage of
                the chain keeps its share; the scales share it as usual).
            finest_only: Optimise at the last size only (``init_image`` is then a near-finished
                picture: the previous frame of a video, warped).

        Returns:
            A :class:`TransferResult`, as :func:`transfer`'s.
        """
        if content is None:
            if self._first is None:
                raise InvalidParameter(
                    "CONTENT", "(none)", "a content image (none was given to the Stylizer)"
                )
            content = self._first
        prepared = self.prepare(content)
        if extensions and any(plan.tile is not None for plan in prepared.scales):
            raise InvalidParameter(
                "--tile",
                self.config.tile,
                "off with per-run terms (the terms see the whole "
                "image, a tiled scale one tile at a time); choose a smaller --size",
            )
        if finest_only:
            prepared = _Content(prepared.image, prepared.scales[-1:])
        scales = len(prepared.scales)
        chains = (
            self.chains
            if iterations is None and not finest_only
            else _chains(self.config, scales, iterations)
        )
        for extension in extensions:
            extension.open(self.device, callbacks)
        every = [*self.extensions, *extensions]
        with tf32_mode(self.device, self.config.precision == "tf32"), watch(interrupt) as flag:
            return self._run(prepared, chains, callbacks, init_image, every, flag)

    def _run(
        self,
        prepared: _Content,
        chains: Sequence[Sequence[OptimizerSpec]],
        callbacks: Sequence[Callback],
        init_image: Tensor | None,
        extensions: Sequence[Extension],
        interrupt: Any,
    ) -> TransferResult:
        config = self.config
        planned = sum(
            s.steps if s.steps is not None else config.iterations for chain in chains for s in chain
        )
        history: list[HistoryEntry] = []
        image, improved, offset, best_iteration = init_image, False, 0, 0
        result = plan = None
        extras: list[ExtraTerms] = []
        done = 0
        for k, plan_k in enumerate(prepared.scales):
            if interrupt.requested and result is not None:
                break  # Ctrl-C between two scales: the last scale's best image stands
            init = _initial_image(config, plan_k.target[None], self.style_images, image)
            chain = chains[k]
            shifted = [_Shifted(cb, offset, k * len(chain), planned) for cb in callbacks]
            if plan_k.tile is not None:
                scale_result, scale_extras = self._optimise_tiled(plan_k, init, chain, shifted, interrupt)
            else:
                scale_result, scale_extras = self._optimise_scale(
                    plan_k, init, chain, extensions, shifted, interrupt
                )
            if result is not None and not scale_result.history:
                break  # interrupted before this scale's first evaluation: the last scale's image stands
            result, plan, extras, done = scale_result, plan_k, scale_extras, k + 1
            history += [
                dataclasses.replace(e, iteration=e.iteration + offset, stage=e.stage + k * len(chain))
                for e in result.history
            ]
            best_iteration = result.best_iteration + offset
            # The first evaluation is the starting image; a run of one evaluation cannot tell.
            improved = improved or result.best_iteration > 1 or len(result.history) < 2
            offset += len(result.history)
            image = (result.last if config.keep_last else result.best)[0].cpu()
            if result.stop_reason == INTERRUPTED:
                break
        assert result is not None and plan is not None
        if interrupt.requested and result.stop_reason != INTERRUPTED:
            result.stop_reason, result.stop_detail = (
                INTERRUPTED,
                f"{stop_detail(interrupt)} between two scales",
            )
        image = (result.last if config.keep_last else result.best)[0].cpu()
        summary = result.history[-1].summary if config.keep_last and result.history else result.best_summary
        iteration = offset if config.keep_last else best_iteration
        if config.preserve_colors:
            image = preserve_colors(image, plan.target)
        content_image = prepared.image
        alpha = resize_long_side(content_image.alpha, plan.size) if content_image.alpha is not None else None
        metadata = {
            "styleforge": __version__,
            "command": "transfer",
            "content": str(content_image.path) if content_image.path else None,
            "styles": [str(s) for s in self.specs],
            "blend": dict(zip(self.names, self.blend)),
            "config": config.to_dict(),
            "weights_used": self.weights_kind,
            "network_used": self.network,
            "iteration": iteration,
            "stop_reason": result.stop_reason,
            "losses": summary.as_row() if summary else None,
        }
        if len(prepared.scales) > 1:
            metadata["scales"] = [p.size for p in prepared.scales[:done]]
        if plan.tile is not None:  # a tiled last scale: no extensions ran, its extra is the tiling's record
            metadata.update(extras[0].metadata)
            extras = []
        finished = [extension.finish(image, extra) for extension, extra in zip(extensions, extras)]
        metadata.update(merged([f.metadata for f in finished]))
        scores = next((f.scores for f in finished if f.scores is not None), None)
        return TransferResult(
            image=image,
            alpha=alpha,
            history=history,
            summary=summary,
            stop_reason=result.stop_reason,
            stop_detail=result.stop_detail,
            config=config,
            metadata=metadata,
            scores=scores,
            improved=improved,
        )


def transfer(
    content: ImageInput,
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    init_image: Tensor | None = None,
    extensions: Sequence[Extension] = (),
    **options: Any,
) -> TransferResult:
    """Optimises an image to keep ``content``'s content and the blended style of ``styles``.

    With several scales (``config.scales``, or ``auto`` above 256 px) the run is a pyramid: the
    network is built once, and each size recomputes only its targets and its optimiser state,
    starting from the previous size's best image upsampled. The iteration budget is the single-size
    run's, split evenly: every scale runs the whole optimiser chain with ⌈steps / scales⌉ of each
    stage's steps, so ``--iterations 300 --scales 3`` is 100 iterations at each of three sizes. The
    history and the events number iterations and stages across scales. One Ctrl-C handling covers
    the whole run: a Ctrl-C, during a scale or between two, ends it with the best image so far.
    ``preserve_colors`` is applied once, to the image returned.

    Args:
        content: Content image (path or :class:`LoadedImage`).
        styles: ``"path[:weight][@scale]"`` strings or :class:`StyleSpec`; weights are normalised
            to sum 1.
        config: Options; ``None`` for the defaults.
        callbacks: Receive engine events (:class:`~styleforge.engine.Progress`, …).
        init_image: A starting image (3, h, w) in [0, 1], resized to the (first scale's) size;
            overrides ``config.init`` and its noise blend.
        extensions: More terms (:mod:`styleforge.stylize.extension`). Attribute guidance and
            scoring are one: :func:`styleforge.transfer` adds it.
        **options: Overrides of ``config``'s fields (``iterations=50``).

    Returns:
        A :class:`TransferResult`; ``result.save("out.png")`` writes it. When the run was
        interrupted (Ctrl-C) or diverged, it holds the best image so far.

    Raises:
        StyleforgeError: Invalid options, unreadable inputs, unavailable weights or device.
    """
    stylizer = Stylizer(
        styles, config, callbacks=callbacks, extensions=extensions, content=content, **options
    )
    return stylizer.run(callbacks=callbacks, init_image=init_image)
