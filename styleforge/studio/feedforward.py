"""HOOK(feed-forward): where the studio will run a trained feed-forward stylizer for an instant result.

styleforge's feed-forward models (``train-stylizer``, ``transfer --model``) are being built apart from
the studio. Until they exist, :func:`find_feedforward` finds none: ``GET /api/info`` then says
``"models": null``, the page hides its model chooser, and a run that names a ``model`` is refused
with a 400 naming the field.

To connect them, make :func:`find_feedforward` return an object with the two methods of
:class:`FeedForward` (listing the models the server may use, by name: never a path a client sends,
and stylizing one content picture with one of them). Nothing else in the studio changes:
:class:`~styleforge.studio.runs.Studio` runs it in its worker thread like a transfer, and the result
is saved with the same metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from torch import Tensor

    from ..config import TransferConfig
    from ..parsing import StyleSpec

__all__ = ["FeedForward", "find_feedforward"]


class FeedForward(Protocol):
    """What the studio needs of feed-forward models."""

    def models(self) -> list[str]:
        """The names of the models a client may choose (shown in the page's chooser)."""
        ...

    def stylize(
        self, model: str, content: Path, styles: Sequence[StyleSpec], config: TransferConfig
    ) -> Tensor:
        """One pass of ``model`` over ``content``: the result, (3, H, W) in [0, 1], at ``config.size``.

        Raises:
            StyleforgeError: An unknown model, an unreadable picture, ...
        """
        ...


def find_feedforward() -> FeedForward | None:
    """The server's feed-forward models, or ``None`` where styleforge has none (today, always)."""
    return None
