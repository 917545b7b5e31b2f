"""One scale optimised tile by tile (:mod:`.tiles` holds the grid, the offsets and the windows).

A tiled scale runs ``tile_passes`` passes over a grid shifted at random each time, every tile a
transfer of its own whose best image is blended into the canvas through its feathered window. The
chain's steps are shared out between the passes (:func:`.tiles.pass_steps`); each tile of a pass runs
that pass's share.

A pass counts as one stretch of the run's iterations: its iteration ``k`` is every tile's ``k``-th
step, so what it reports (events with the canvas as the image, and a history of the tiles' mean
loss, :func:`.tiles.mean_summary`) never passes the scale's budget. A pass reports its iterations
from 1; the pyramid's :class:`~styleforge.stylize.pyramid.Numbering` places them in the whole run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from ..engine import Callback, HistoryEntry, LossSummary, OptimizerSpec, PixelResult
from ..engine.events import Progress, StageEnded, StageStarted
from ..engine.outcome import INTERRUPTED
from .plan import ScalePlan
from .tiles import Tile, default_overlap, feather, mean_summary, pass_offsets, pass_steps, tile_grid

if TYPE_CHECKING:
    from .pyramid import Numbering

__all__ = ["TileOptimiser", "optimise_tiled"]

#: One tile's transfer: (the tile's plan, its starting image, the pass's chain, callbacks) → result.
TileOptimiser = Callable[[ScalePlan, Tensor, list[OptimizerSpec], Sequence[Callback]], PixelResult]


class _PassEvents:
    """Passes a tile's events on as its pass's: iteration ``k`` is reached when every tile of the
    pass has taken ``k`` steps on average (so it counts up to the pass's steps, once each), the image
    is the whole canvas (what a checkpoint or a GIF frame should show), and a stage starts and ends
    once per pass.

    Args:
        events: Where the pass's events go (numbered from 1 within the pass).
        steps: The pass's steps, all its stages together.
        tiles: How many tiles the pass has.
        canvas: The scale's image, (1, 3, H, W).
        stages: The chain's stage of each stage the pass runs.
    """

    def __init__(
        self, events: Callback, steps: int, tiles: int, canvas: Tensor, stages: Sequence[int]
    ) -> None:
        self.events, self.steps, self.tiles, self.canvas = events, steps, tiles, canvas
        self.stages = list(stages)
        self.tile = 0  # the tile running now
        self.shown = 0

    def __call__(self, event: Any) -> None:
        if isinstance(event, Progress):
            reached = math.ceil((self.tile * self.steps + event.iteration) / self.tiles)
            if reached > self.shown:
                self.shown = reached
                self.events(
                    dataclasses.replace(
                        event,
                        iteration=reached,
                        stage=self.stages[event.stage],
                        image=self.canvas,
                        is_best=False,
                    )
                )
        elif self._stage_shown(event):
            self.events(dataclasses.replace(event, index=self.stages[event.index]))

    def _stage_shown(self, event: Any) -> bool:
        """A stage starts with the pass's first tile and ends with its last (or when interrupted)."""
        if isinstance(event, StageStarted):
            return self.tile == 0
        return isinstance(event, StageEnded) and (self.tile == self.tiles - 1 or event.reason == INTERRUPTED)


def _pass_history(runs: Sequence[Sequence[HistoryEntry]], stages: Sequence[int]) -> list[HistoryEntry]:
    """One pass's history, numbered from 1: its iteration ``k`` is the tiles' mean loss at their
    ``k``-th step (a tile the stopping rule ended early counts with its last)."""
    if not runs:
        return []
    out = []
    for k in range(max(len(run) for run in runs)):
        entries = [run[min(k, len(run) - 1)] for run in runs]
        first = entries[0]
        out.append(
            HistoryEntry(
                k + 1, stages[first.stage], first.optimizer, mean_summary([e.summary for e in entries])
            )
        )
    return out


@dataclass
class _Tally:
    """What a tiled scale's passes have given so far."""

    history: list[HistoryEntry] = field(default_factory=list)
    improved: bool = False
    optimised: int = 0  # tiles that evaluated at least once
    best: list[LossSummary | None] = field(default_factory=list)  # the last pass's tiles' best losses
    last: PixelResult | None = None  # the last tile's result

    def result(self, canvas: Tensor) -> PixelResult:
        """The scale's result: the canvas as its best and last image, the last pass's mean best loss."""
        assert self.last is not None
        best = self.best
        return PixelResult(
            best=canvas,
            last=canvas,
            best_summary=mean_summary([s for s in best if s is not None]) if any(best) else None,
            best_iteration=len(self.history) if self.improved else 1,
            history=self.history,
            stop_reason=self.last.stop_reason,
            stop_detail=self.last.stop_detail,
        )


@dataclass
class _Pass:
    """One pass over the grid: its tiles and the stages it runs (with their steps)."""

    tiles: list[Tile]
    chain: list[OptimizerSpec]
    stages: list[int]  # the chain's index of each stage in ``chain``

    def run(
        self, scale: ScalePlan, canvas: Tensor, overlap: int, optimise: TileOptimiser, numbering: Numbering
    ) -> tuple[list[HistoryEntry], _Tally]:
        """Every tile of the pass, blended into ``canvas`` in place; the pass's history as recorded."""
        shape = (canvas.shape[-2], canvas.shape[-1])
        events = _PassEvents(
            numbering, sum(s.steps or 0 for s in self.chain), len(self.tiles), canvas, self.stages
        )
        tally, runs = _Tally(), []
        for index, tile in enumerate(self.tiles):
            events.tile = index
            result = tally.last = optimise(scale.crop(tile), tile.crop(canvas), self.chain, [events])
            if result.history:
                weight = feather(tile, shape, overlap)
                tile.crop(canvas).mul_(1 - weight).add_(weight * result.best.detach().cpu())
                tally.optimised += 1
                tally.improved = tally.improved or result.best_iteration > 1
                tally.best.append(result.best_summary)
                runs.append(result.history)
            if result.stop_reason == INTERRUPTED:
                break
        return numbering.record(_pass_history(runs, self.stages)), tally


def optimise_tiled(
    scale: ScalePlan,
    init: Tensor,
    chain: Sequence[OptimizerSpec],
    optimise: TileOptimiser,
    numbering: Numbering,
    *,
    overlap: int | None,
    passes: int,
    seed: int,
    iterations: int,
) -> tuple[PixelResult, dict[str, int]]:
    """One scale, tile by tile (see the module docstring).

    Args:
        scale: The scale (its ``tile`` set).
        init: Its starting image, (1, 3, H, W).
        chain: Its optimiser stages.
        optimise: One tile's transfer.
        numbering: The run's numbering: each pass's events go to it, and its history is recorded
            there as the pass ends.
        overlap: How much neighbouring tiles share in px (``None``: :func:`.tiles.default_overlap`).
        passes: ``--tile-passes``.
        seed: The run's seed (with the scale's size, it seeds the passes' offsets).
        iterations: The steps of a stage that gives none.

    Returns:
        The scale's result (its best and last image the canvas, (1, 3, H, W) on the CPU; its
        history as recorded), and the tiling's record for the output's metadata.
    """
    assert scale.tile is not None
    overlap = overlap if overlap is not None else default_overlap(scale.tile)
    shape = (scale.target.shape[-2], scale.target.shape[-1])
    shares = pass_steps([s.steps or iterations for s in chain], passes)
    canvas = init.detach().clone().cpu()
    total = _Tally()
    for offset, share in zip(pass_offsets(len(shares), scale.tile - overlap, seed + scale.size), shares):
        stages = [i for i, n in enumerate(share) if n]
        one = _Pass(
            tile_grid(shape, scale.tile, overlap, offset),
            [dataclasses.replace(chain[i], steps=share[i]) for i in stages],
            stages,
        )
        history, tally = one.run(scale, canvas, overlap, optimise, numbering)
        total.history += history
        total.improved = total.improved or tally.improved
        total.optimised += tally.optimised
        total.best, total.last = tally.best, tally.last
        if tally.last is not None and tally.last.stop_reason == INTERRUPTED:
            break
    record = {"tile": scale.tile, "overlap": overlap, "passes": len(shares), "optimised": total.optimised}
    return total.result(canvas), record
