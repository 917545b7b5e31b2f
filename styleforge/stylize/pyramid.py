"""The pyramid run: a planned content image optimised scale by scale, coarse to fine.

Each scale starts from the previous scale's best image upsampled, with the content's finer detail
added (``--scale-detail``; the first scale from ``--init``), builds its objective and optimises it,
whole or tile by tile (:mod:`.tiled`). Two things span the scales and live here alone:

- **The numbering.** The engine numbers each optimisation's iterations from 1; :class:`Numbering`
  places every one of them (a whole scale, or one pass of a tiled scale) in the run, so that the
  events and the history count the run's iterations 1..N and its stages across the scales.
- **Ctrl-C.** One flag is watched over the whole run. A Ctrl-C during a scale ends that scale's
  optimisation with its best image; the run then stops before the next scale (one place), keeping
  the last scale that evaluated anything, and a Ctrl-C that came between two scales is reported so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import TransferConfig
from ..engine import (
    PIXEL_LR,
    Callback,
    DivergenceGuard,
    HistoryEntry,
    LossReport,
    LossSummary,
    OptimizerSpec,
    PixelResult,
    StopRule,
    optimise_pixels,
)
from ..engine.events import Progress, StageEnded, StageStarted, emit
from ..engine.interrupt import stop_detail
from ..engine.outcome import INTERRUPTED
from ..images import LoadedImage, load_image
from .extension import Extension, ExtraTerms
from .filters import blur, gaussian_taps
from .plan import ScalePlan
from .tiled import optimise_tiled

__all__ = ["ObjectiveSource", "Numbering", "PyramidResult", "Pyramid", "initial_image", "planned_iterations"]

#: The blur (px) of the content's detail added at the finest scale, chosen on the tune half of
#: benchmarks/quality.py against no blur (it left a pixel grid), every band blurred, and no detail there.
FINEST_DETAIL_SIGMA = 0.7

#: One scale's objective and the extensions' terms there: ``(scale, extensions) -> (objective, extras)``.
ObjectiveSource = Callable[
    [ScalePlan, Sequence[Extension]], tuple[Callable[[Tensor], LossReport], list[ExtraTerms]]
]


def planned_iterations(chains: Sequence[Sequence[OptimizerSpec]], iterations: int) -> int:
    """The run's iterations as planned: every scale's stages (``iterations`` where one gives none)."""
    return sum(s.steps if s.steps is not None else iterations for chain in chains for s in chain)


class Numbering:
    """The run's one count of iterations and stages.

    An optimisation (a whole scale, or one pass of a tiled scale) numbers its iterations from 1 and
    its stages from 0 within the scale's chain; its events go through this callback and its history
    through :meth:`record` when it ends, and come out numbered in the whole run: iteration ``i`` of it
    is ``i`` plus the iterations recorded before it, stage ``s`` is ``s`` plus the stages of the
    scales before it, and every event's total is the run's.

    Args:
        callbacks: Receive the run's events.
        total: The run's planned iterations.
    """

    def __init__(self, callbacks: Sequence[Callback], total: int) -> None:
        self.callbacks, self.total = list(callbacks), total
        self.history: list[HistoryEntry] = []  # the run's, as numbered
        self.first_stage = 0  # the run's number of the current scale's first stage

    def start_scale(self, first_stage: int) -> None:
        """A scale begins; its chain's stage 0 is the run's ``first_stage``."""
        self.first_stage = first_stage

    def __call__(self, event: Any) -> None:
        done, stage = len(self.history), self.first_stage
        if isinstance(event, Progress):
            event = dataclasses.replace(
                event,
                iteration=event.iteration + done,
                total_iterations=self.total,
                stage=event.stage + stage,
            )
        elif isinstance(event, StageStarted):
            event = dataclasses.replace(
                event,
                index=event.index + stage,
                total_iterations=self.total,
                first_iteration=event.first_iteration + done,
            )
        elif isinstance(event, StageEnded):
            event = dataclasses.replace(event, index=event.index + stage)
        emit(self.callbacks, event)

    def record(self, entries: Sequence[HistoryEntry]) -> list[HistoryEntry]:
        """Adds an ended optimisation's history (numbered from 1) to the run's; returns it numbered."""
        done, stage = len(self.history), self.first_stage
        numbered = [
            dataclasses.replace(e, iteration=e.iteration + done, stage=e.stage + stage) for e in entries
        ]
        self.history += numbered
        return numbered


def initial_image(
    config: TransferConfig,
    content: Tensor,
    styles: Sequence[LoadedImage],
    init_image: Tensor | None = None,
    coarser_content: Tensor | None = None,
    finest: bool = False,
) -> Tensor:
    """A scale's starting image (1, 3, H, W): ``init_image`` resized (a coarser scale's result), else
    content, noise, the first style or a file, plus the noise blend.

    With ``coarser_content`` (the content at the coarser scale ``init_image`` came from), the
    content's detail that the coarser scale could not hold, ``content − enlarged(coarser_content)``
    (one band of a Laplacian pyramid, Burt & Adelson 1983), is added ``config.scale_detail`` times:
    enlarging the coarser result alone starts the finer scale from a blurred picture, and the
    optimisation then paints the style's texture over the blur instead of over the content's edges.
    At the ``finest`` scale the band is blurred by :data:`FINEST_DETAIL_SIGMA` first: its top
    frequencies (0.35 to 0.5 cycles per pixel) are finer than the network's features can reshape,
    and left whole they end as a diagonal pixel grid over foliage and railings.
    """
    shape = content.shape[-2:]
    if init_image is not None:
        image = _resized(init_image, shape)
        if coarser_content is not None and config.scale_detail:
            band = content - _resized(coarser_content, shape)
            if finest:
                band = blur(band, gaussian_taps(FINEST_DETAIL_SIGMA, band.device))
            image = image + config.scale_detail * band
        return image.clamp(0, 1)
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


def _resized(image: Tensor, shape: torch.Size) -> Tensor:
    """(…, 3, h, w) → (1, 3, *shape), bicubic, not clamped."""
    return F.interpolate(
        image.reshape(1, 3, *image.shape[-2:]).float(), size=shape, mode="bicubic", align_corners=False
    )


@dataclass
class _Scaled:
    """One scale that ran: its engine result, where its iterations start in the run, what the
    extensions gave there, and a tiled scale's record."""

    scale: ScalePlan
    result: PixelResult
    start: int
    extras: list[ExtraTerms]
    tiles: dict[str, int] | None = None

    def image(self, keep_last: bool) -> Tensor:
        """The image it hands on, (3, H, W) on the CPU: its best, or with ``keep_last`` its last."""
        return (self.result.last if keep_last else self.result.best)[0].cpu()


@dataclass
class PyramidResult:
    """What a pyramid run found (before the colours, the alpha and the metadata are added).

    Attributes:
        image: (3, H, W) in [0, 1] on the CPU: the last scale's best image (its last with
            ``keep_last``).
        history: Every evaluation, numbered in the run.
        summary: The loss values of ``image``.
        iteration: The run's iteration that gave ``image``.
        stop_reason: How the run ended (:mod:`styleforge.engine.outcome`).
        stop_detail: A sentence for the user.
        improved: Whether any scale lowered its loss below its starting image's.
        scale: The last scale that ran.
        sizes: The sizes of the scales that ran.
        extras: What the extensions gave at the last scale (none for a tiled one).
        tiles: The last scale's tiling record, if it was tiled.
    """

    image: Tensor
    history: list[HistoryEntry]
    summary: LossSummary | None
    iteration: int
    stop_reason: str
    stop_detail: str
    improved: bool
    scale: ScalePlan
    sizes: list[int]
    extras: list[ExtraTerms] = field(default_factory=list)
    tiles: dict[str, int] | None = None


@dataclass
class Pyramid:
    """Runs a content plan's scales.

    Attributes:
        config: The checked options.
        objective: Builds a scale's objective (the Stylizer's, from its cached network and style
            statistics).
        style_images: The style images as read (``--init style`` starts from the first).
        device: Where the pixels are optimised.
    """

    config: TransferConfig
    objective: ObjectiveSource
    style_images: Sequence[LoadedImage]
    device: torch.device

    def run(
        self,
        scales: Sequence[ScalePlan],
        chains: Sequence[Sequence[OptimizerSpec]],
        interrupt: Any,
        *,
        callbacks: Sequence[Callback] = (),
        init_image: Tensor | None = None,
        extensions: Sequence[Extension] = (),
    ) -> PyramidResult:
        """Optimises ``scales`` in order, scale ``k`` with ``chains[k]``, listening to ``interrupt``
        (the flag :func:`~styleforge.engine.interrupt.watch` gives)."""
        numbering = Numbering(callbacks, planned_iterations(chains, self.config.iterations))
        ran: list[_Scaled] = []
        image = init_image
        for k, scale in enumerate(scales):
            if ran and interrupt.requested:
                break  # the one stop between scales: a Ctrl-C, during the last scale or after it
            numbering.start_scale(k * len(chains[k]))
            coarser = ran[-1].scale.target if ran else None  # the content of the scale ``image`` came from
            finest = k == len(scales) - 1
            init = initial_image(self.config, scale.target[None], self.style_images, image, coarser, finest)
            outcome = self._scale(scale, init, chains[k], extensions, numbering, interrupt)
            # A scale stopped before its first evaluation is dropped: the check above then ends the run.
            if not ran or outcome.result.history:
                ran.append(outcome)
                image = outcome.image(self.config.keep_last)
        return self._finish(ran, numbering, interrupt)

    def _scale(
        self,
        scale: ScalePlan,
        init: Tensor,
        chain: Sequence[OptimizerSpec],
        extensions: Sequence[Extension],
        numbering: Numbering,
        interrupt: Any,
    ) -> _Scaled:
        """One scale, whole or tile by tile, its history recorded in ``numbering``."""
        start = len(numbering.history)
        if scale.tile is None:
            result, extras = self._optimise(scale, init, chain, extensions, [numbering], interrupt)
            numbering.record(result.history)
            return _Scaled(scale, result, start, extras)
        config = self.config

        def one_tile(
            plan: ScalePlan, tile_init: Tensor, tile_chain: list[OptimizerSpec], events: Sequence[Callback]
        ) -> PixelResult:
            return self._optimise(plan, tile_init, tile_chain, (), events, interrupt)[0]

        result, record = optimise_tiled(
            scale,
            init,
            chain,
            one_tile,
            numbering,
            overlap=config.tile_overlap,
            passes=config.tile_passes,
            seed=config.seed,
            iterations=config.iterations,
        )
        return _Scaled(scale, result, start, [], record)

    def _optimise(
        self,
        scale: ScalePlan,
        init: Tensor,
        chain: Sequence[OptimizerSpec],
        extensions: Sequence[Extension],
        callbacks: Sequence[Callback],
        interrupt: Any,
    ) -> tuple[PixelResult, list[ExtraTerms]]:
        """One optimisation on the engine: the scale's (or tile's) objective, the pixels optimised by
        ``chain``. Returns the engine's result and the extensions' terms."""
        config = self.config
        objective, extras = self.objective(scale, extensions)
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

    def _finish(self, ran: Sequence[_Scaled], numbering: Numbering, interrupt: Any) -> PyramidResult:
        """The run's result from the scales that ran (the last one's image)."""
        keep_last = self.config.keep_last
        last = ran[-1]
        result, history = last.result, numbering.history
        reason, detail = result.stop_reason, result.stop_detail
        if interrupt.requested and reason != INTERRUPTED:
            reason, detail = INTERRUPTED, f"{stop_detail(interrupt)} between two scales"
        # The first evaluation is the starting image; a run of one evaluation cannot tell.
        improved = any(s.result.best_iteration > 1 or len(s.result.history) < 2 for s in ran)
        return PyramidResult(
            image=last.image(keep_last),
            history=history,
            summary=history[-1].summary if keep_last and history else result.best_summary,
            iteration=len(history) if keep_last else last.start + result.best_iteration,
            stop_reason=reason,
            stop_detail=detail,
            improved=improved,
            scale=last.scale,
            sizes=[s.scale.size for s in ran],
            extras=last.extras,
            tiles=last.tiles,
        )
