"""The temporal term: one more named term in a frame's objective, through the transfer's extension
hook (:mod:`styleforge.stylize.extension`).

``temporal`` is Ruder et al.'s short-term consistency loss (2016, eq. 5): the squared change of the
frame from the previous output frame warped by the optical flow, counted only where the flow is
reliable, averaged over all H·W·3 values (so a frame with little reliable flow gets a weaker pull).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..stylize.extension import ExtraTerms, Finished, ScaleView

__all__ = ["TEMPORAL", "TemporalTerm", "Temporal"]

#: The term's name in the engine, the history and the printed losses.
TEMPORAL = "temporal"


class TemporalTerm:
    """``mean(mask · (x − warped)²)`` over the image, an engine term on a
    :class:`~styleforge.stylize.features.FeatureContext`.

    Args:
        warped: The previous output frame moved into this one, (3, H, W) in [0, 1].
        mask: Where the motion is reliable, (1, H, W) in {0, 1}.
    """

    def __init__(self, warped: Tensor, mask: Tensor) -> None:
        self.warped = warped[None]
        self.mask = mask[None]

    def __call__(self, context: Any) -> Tensor:
        x = context.image
        warped, mask = self.warped.to(x.device), self.mask.to(x.device)
        return (mask * (x - warped) ** 2).sum() / x[0].numel()


class Temporal:
    """The :class:`~styleforge.stylize.extension.Extension` that adds ``temporal`` to one frame's run.

    Args:
        warped: The previous output frame warped into this frame, (3, H, W).
        mask: Where that is reliable, (1, H, W).
        weight: The term's weight (``--temporal-weight``).
    """

    def __init__(self, warped: Tensor, mask: Tensor, weight: float) -> None:
        self.warped, self.mask, self.weight = warped, mask, weight

    def open(self, device: torch.device, callbacks: Sequence[Callable[[Any], None]]) -> None:
        self.warped, self.mask = self.warped.to(device), self.mask.to(device)

    def layers(self, network: str, pooling: str) -> Sequence[str]:
        return ()  # a term on the pixels

    def terms(self, scale: ScaleView) -> ExtraTerms:
        if tuple(self.warped.shape[-2:]) != scale.shape:
            raise ValueError(f"the temporal term is for {tuple(self.warped.shape[-2:])}, not {scale.shape}")
        return ExtraTerms(
            terms={TEMPORAL: TemporalTerm(self.warped, self.mask)},
            weights={TEMPORAL: self.weight},
            metadata={TEMPORAL: {"weight": self.weight, "reliable": round(float(self.mask.mean()), 4)}},
        )

    def finish(self, image: Tensor, last: ExtraTerms) -> Finished:
        return Finished(metadata=last.metadata)
