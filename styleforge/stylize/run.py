"""Running a style transfer: the :class:`Stylizer` and :func:`transfer`.

A transfer runs in stages, each its own module: the plan of a content image's pyramid
(:mod:`.plan`: sizes, shapes, tiles, images, masks; no network), the memory check on that plan
(:mod:`.memory`), one scale's objective (:mod:`.objective`, with the style losses of :mod:`.losses`),
and the pyramid run (:mod:`.pyramid`, tiled scales in :mod:`.tiled`), which numbers the iterations
and handles Ctrl-C. The :class:`Stylizer` holds what those stages share between runs: the checked
options, the style images, the feature network and each size's style statistics.

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

from ..config import INITS, TransferConfig
from ..device import resolve_device, resolve_precision, tf32_mode
from ..engine import Callback, HistoryEntry, LossSummary, Notice
from ..engine.events import download_events, emit
from ..engine.interrupt import watch
from ..errors import InvalidParameter, ResourceError
from ..images import load_image, resize_long_side, save_image
from ..nets.vgg import VGGFeatures
from ..nets.weights import resolve_weights
from ..parsing import StyleSpec, normalise_blend, parse_style, style_term_names
from ..version import __version__
from .color import preserve_colors
from .extension import Extension, ExtraTerms, ScaleView, merged
from .losses import style_loss, style_terms
from .memory import available_bytes, check_pyramid
from .objective import LaplacianTerm, Objective, ToneTerm, scale_loss, term_layers
from .plan import ContentPlan, ImageInput, Planner, ScalePlan, load_content, scale_chains, scale_sizes
from .pyramid import Pyramid, PyramidResult
from .tiles import tile_grid

__all__ = ["Stylizer", "TransferResult", "transfer"]


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


class Stylizer:
    """A transfer's options, style images, extensions and feature network, built once, and each size's
    style statistics, taken once: for one content image or many (the frames of a video, the tiles of
    a large image) of any size.

    Everything is checked cheapest first: the options, the style images, then (given ``content``)
    the first content image, its sizes and the memory estimate, then the extensions' files, and only
    then are the weights resolved and the network built. The style statistics of a scale are taken
    once and reused by every content image of that size (except with a ``color_transfer``, where
    they depend on the content).

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
        scale_count = config.resolved_scales()
        self.sizes = scale_sizes(config.size, scale_count, config.min_size)
        self.chains = scale_chains(config, scale_count)
        self.specs = [s if isinstance(s, StyleSpec) else parse_style(os.fspath(s)) for s in styles]
        if not self.specs:
            raise InvalidParameter("--style", "(none)", "at least one style image")
        self.network = config.requested_network()
        self.content_lw, self.style_lw = term_layers(config, self.network)
        if config.init not in INITS and not Path(config.init).is_file():
            raise InvalidParameter(
                "--init", config.init, "content, noise, style, or the path of an image file"
            )
        self.device = resolve_device(config.device)
        compute_dtype = resolve_precision(config.precision, self.device)
        self.style_images = [load_image(s.path, param="--style") for s in self.specs]
        self.names, self.blend = style_term_names(self.specs), normalise_blend(self.specs)
        self.style_loss = style_loss(config.style_loss, seed=config.seed)
        self._style_targets: dict[int, list[dict[str, Any]]] = {}  # scale size → per style
        self._checked_shapes: set[tuple[int, int]] = set()
        self._first = self.prepare(content) if content is not None else None
        for extension in self.extensions:  # their files are read before any slow work
            extension.open(self.device, callbacks)
        self._build(callbacks, compute_dtype)

    def _build(self, callbacks: Sequence[Callback], compute_dtype: Any) -> None:
        """Resolves the weights and builds the network (``auto`` weights may change the network to
        HED's VGG-16: the layers and the sizes are checked again against it)."""
        config = self.config
        weights = resolve_weights(config.weights, self.network, on_download=download_events(callbacks))
        if weights.notice:
            emit(callbacks, Notice(weights.notice))
        if weights.arch != self.network:  # ``auto`` fell back to HED's VGG-16
            self.network = weights.arch
            self.content_lw, self.style_lw = term_layers(config, self.network)
            if self._first is not None:
                shapes = [tuple(scale.target.shape[-2:]) for scale in self._first.scales]
                self._planner().check_contents(shapes, self._first.image.size)  # type: ignore[arg-type]
        self._planner().check_styles()
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
        # the last scale's content magnitudes (--style-norm balanced), for the tiles that follow
        self._measured: tuple[ScalePlan, dict[str, Tensor]] | None = None
        # the last tiled scale's whole-content Laplacian and tone magnitudes, for its tiles
        self._luminance: tuple[ScalePlan, dict[str, Tensor]] | None = None

    @property
    def layers(self) -> list[str]:
        """The layers the content and style terms read."""
        return list(dict.fromkeys([*self.content_lw, *self.style_lw]))

    @property
    def first(self) -> ContentPlan | None:
        """The content image given to the constructor, prepared (``None`` when none was given):
        :meth:`run` without ``content`` optimises it without preparing it again."""
        return self._first

    def _planner(self) -> Planner:
        """The planning stage with this Stylizer's sizes, network, layers and style images."""
        return Planner(
            config=self.config,
            sizes=self.sizes,
            network=self.network,
            layers=self.layers,
            style_layers=list(self.style_lw),
            chain=self.chains[-1],
            specs=self.specs,
            style_images=self.style_images,
            names=self.names,
            whole_image_terms=bool(self.extensions),
        )

    def prepare(self, content: ImageInput | ContentPlan) -> ContentPlan:
        """Loads and checks one content image and plans its pyramid (sizes, tiles, memory, masks),
        without running.

        Every shape of the pyramid is worked out from the image's size (:meth:`.Planner.shapes`),
        and the sizes, the tiles and the memory estimate are checked on those shapes before any image
        is resized (:meth:`.Planner.plan`): a size too large for the machine is refused before it
        takes the memory.
        """
        if isinstance(content, ContentPlan):
            return content
        image = load_content(content)
        planner = self._planner()
        shapes = planner.shapes(image.size, available_bytes(self.device) if planner.auto_tiles else None)
        largest = shapes.optimised()
        if self.config.memory_check and largest not in self._checked_shapes:
            check_pyramid(self.network, self.layers, shapes, self.chains[-1], self.device)
            self._checked_shapes.add(largest)
        return planner.plan(image, shapes)

    def _targets(self, scale: ScalePlan) -> list[dict[str, Any]]:
        """Each style's statistics at one scale (taken once per size unless they depend on the
        content)."""
        cached = self._style_targets.get(scale.size)
        if cached is not None:
            return cached
        targets = [self._statistics(rgb, mask) for rgb, mask in zip(scale.style_rgbs, scale.style_masks)]
        if self.config.color_transfer == "none":
            self._style_targets[scale.size] = targets
        return targets

    def _statistics(self, style_rgb: Tensor, mask: Any) -> dict[str, Any]:
        """One style image's statistics (:meth:`.losses.StyleLoss.targets`), layer by layer."""
        with torch.inference_mode():
            features = self.net(style_rgb[None].to(self.device), self.style_lw)
        # Inference tensors cannot be saved for backward: the statistics are taken from ordinary
        # copies, one layer at a time (a large scale's style image holds gigabytes of features).
        stats: dict[str, Any] = {}
        for layer in list(features):
            copy = features.pop(layer)
            with torch.no_grad():
                stats.update(self.style_loss.targets({layer: copy.clone()}, mask))
            del copy
        return stats

    def _content_magnitudes(self, scale: ScalePlan) -> dict[str, Tensor] | None:
        """``--style-norm balanced``: the content's magnitude at each style layer as the style loss
        measures it (:meth:`.losses.StyleLoss.feature_magnitude`); ``None`` for ``--style-norm style``.

        Measured over the whole content of the scale, a tile's included (every tile is then weighed
        alike), and kept for the tiles of the same scale, which come one after another. A tiled
        scale is measured tile by tile, as it is optimised (the whole may not fit in memory): the
        statistics the magnitude comes from (:meth:`.losses.StyleLoss.content_statistic`, averages
        over positions) averaged over a grid of tiles by their areas, the whole's but for the
        tiles' borders (128 px tiles of a 256 px photo, HED's VGG-16: the mean square feature within
        12 %, gram's mean square Gram entry within 29 %, the most at relu4_1).
        """
        if self.config.style_norm != "balanced":
            return None
        whole = scale.whole or scale
        if self._measured is None or self._measured[0] is not whole:
            image = whole.target
            shape = (image.shape[-2], image.shape[-1])
            windows = tile_grid(shape, whole.tile or max(shape), 0)
            area = sum(w.h * w.w for w in windows)
            sums: dict[str, Tensor] = {}
            with torch.inference_mode():
                for window in windows:
                    features = self.net(window.crop(image)[None].to(self.device), self.style_lw)
                    for layer, f in features.items():
                        part = self.style_loss.content_statistic(f).float() * (window.h * window.w / area)
                        sums[layer] = part if layer not in sums else sums[layer] + part
                measured = {layer: self.style_loss.content_magnitude(stat) for layer, stat in sums.items()}
            # Inference tensors cannot be saved for backward (the terms divide by these): copies.
            self._measured = (whole, {layer: m.clone() for layer, m in measured.items()})
        return self._measured[1]

    def _whole_luminance_magnitudes(self, scale: ScalePlan) -> dict[str, Tensor] | None:
        """For one tile of a scale: the whole content's mean square Laplacian and tonal spread, which
        the tile's ``laplacian`` and ``tone`` errors are relative to (as in the untiled picture),
        measured on the CPU once per scale; ``None`` for a whole scale (its own)."""
        whole = scale.whole
        if whole is None:
            return None
        if self._luminance is None or self._luminance[0] is not whole:
            config, image = self.config, whole.target[None].float()
            measured = {}
            if config.laplacian_weight:
                measured["laplacian"] = LaplacianTerm(image, config.laplacian_sigma).magnitude
            if config.tone_weight:
                measured["tone"] = ToneTerm(image, config.tone_sigma).magnitude
            self._luminance = (whole, {name: m.to(self.device) for name, m in measured.items()})
        return self._luminance[1]

    def _objective(
        self, scale: ScalePlan, extensions: Sequence[Extension]
    ) -> tuple[Objective, list[ExtraTerms]]:
        """One scale's objective (:func:`.objective.scale_loss` on the network and the cached style
        statistics), and the extensions' terms."""
        config, net = self.config, self.net
        view = ScaleView(net, self.network, config.pooling, tuple(scale.target.shape[-2:]))
        extras = [extension.terms(view) for extension in extensions]
        layers = list(dict.fromkeys([*self.layers, *(layer for extra in extras for layer in extra.layers)]))
        targets = self._targets(scale)
        content = scale.target[None].to(self.device)
        with torch.inference_mode():
            content_targets = net(content, self.content_lw)
        styles = style_terms(
            self.style_loss,
            self.names,
            self.blend,
            targets,
            self.style_lw,
            scale.regions,
            reference=self._content_magnitudes(scale),
        )
        loss = scale_loss(
            config,
            content,
            {k: v.clone() for k, v in content_targets.items()},
            self.content_lw,
            styles,
            dict(zip(self.names, self.blend)),
            extras,
            relative_to=self._whole_luminance_magnitudes(scale),
        )
        if self._forward is None:
            self._forward = _compiled(net, content, self.layers) if config.compile else net
        return Objective(loss, self._forward, layers), extras

    def evaluate(self, content: ImageInput | ContentPlan, image: Tensor) -> LossSummary:
        """The last scale's objective (whole, never tiled) at ``image`` (3, H, W) in [0, 1], for
        ``content``: e.g. to compare a tiled result with an untiled one on the same terms."""
        scale = self.prepare(content).scales[-1]
        with tf32_mode(self.device, self.config.precision == "tf32"):
            objective, _ = self._objective(scale, self.extensions)
        with torch.no_grad(), tf32_mode(self.device, self.config.precision == "tf32"):
            return objective(image[None].to(self.device)).summary()

    def run(
        self,
        content: ImageInput | ContentPlan | None = None,
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
        prepared = self.prepare(self._content(content))
        if extensions and any(scale.tile is not None for scale in prepared.scales):
            raise InvalidParameter(
                "--tile",
                self.config.tile,
                "off with per-run terms (the terms see the whole "
                "image, a tiled scale one tile at a time); choose a smaller --size",
            )
        if finest_only:
            prepared = ContentPlan(prepared.image, prepared.scales[-1:])
        chains = (
            self.chains
            if iterations is None and not finest_only
            else scale_chains(self.config, len(prepared.scales), iterations)
        )
        for extension in extensions:
            extension.open(self.device, callbacks)
        every = [*self.extensions, *extensions]
        pyramid = Pyramid(self.config, self._objective, self.style_images, self.device)
        with tf32_mode(self.device, self.config.precision == "tf32"), watch(interrupt) as flag:
            ran = pyramid.run(
                prepared.scales, chains, flag, callbacks=callbacks, init_image=init_image, extensions=every
            )
            return self._result(prepared, ran, every)

    def _content(self, content: ImageInput | ContentPlan | None) -> ImageInput | ContentPlan:
        """``content``, or the constructor's (refused where there was none)."""
        if content is not None:
            return content
        if self._first is None:
            raise InvalidParameter("CONTENT", "(none)", "a content image (none was given to the Stylizer)")
        return self._first

    def _result(
        self, prepared: ContentPlan, ran: PyramidResult, extensions: Sequence[Extension]
    ) -> TransferResult:
        """The transfer's result: the pyramid's image with ``preserve_colors`` applied (once, here),
        the content's alpha, the metadata, and what the extensions add."""
        config = self.config
        image = preserve_colors(ran.image, ran.scale.target) if config.preserve_colors else ran.image
        content_image = prepared.image
        alpha = (
            resize_long_side(content_image.alpha, ran.scale.size) if content_image.alpha is not None else None
        )
        metadata = {
            "styleforge": __version__,
            "command": "transfer",
            "content": str(content_image.path) if content_image.path else None,
            "styles": [str(s) for s in self.specs],
            "blend": dict(zip(self.names, self.blend)),
            "config": config.to_dict(),
            "weights_used": self.weights_kind,
            "network_used": self.network,
            "iteration": ran.iteration,
            "stop_reason": ran.stop_reason,
            "losses": ran.summary.as_row() if ran.summary else None,
        }
        if len(prepared.scales) > 1:
            metadata["scales"] = ran.sizes
        if ran.tiles is not None:  # a tiled last scale: no extensions ran
            metadata["tiles"] = ran.tiles
        finished = [extension.finish(image, extra) for extension, extra in zip(extensions, ran.extras)]
        metadata.update(merged([f.metadata for f in finished]))
        return TransferResult(
            image=image,
            alpha=alpha,
            history=ran.history,
            summary=ran.summary,
            stop_reason=ran.stop_reason,
            stop_detail=ran.stop_detail,
            config=config,
            metadata=metadata,
            scores=next((f.scores for f in finished if f.scores is not None), None),
            improved=ran.improved,
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

    With several scales (``config.scales``, or ``auto`` above 128 px) the run is a pyramid: the
    network is built once, and each size recomputes only its targets and its optimiser state,
    starting from the previous size's best image upsampled, with the content's missing detail added
    (``config.scale_detail``). The iteration budget is the single-size run's, shared out by
    ``config.scale_split`` (1: evenly, so ``--iterations 300 --scales 3 --scale-split 1`` is 100
    iterations at each of three sizes). The history and the events number iterations and stages
    across scales. One Ctrl-C handling covers the whole run: a Ctrl-C, during a scale or between
    two, ends it with the best image so far.
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
