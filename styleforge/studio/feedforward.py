"""Trained feed-forward stylizers in the studio: an instant result instead of an optimisation.

``styleforge studio --models FOLDER`` offers every ``train-stylizer`` model folder inside FOLDER (a
folder holding ``model.json``) by its name; ``GET /api/info`` lists them (``"models": null`` without
``--models``), the page shows a chooser, and a run that names a ``model`` runs one pass of it in the
studio's worker thread, saved with the same metadata as ``transfer --model``'s. A client chooses a
model by name only: never a path on the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from torch import Tensor

    from ..config import TransferConfig
    from ..parsing import StyleSpec

__all__ = ["FeedForward", "ModelFolder", "find_feedforward"]


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


class ModelFolder:
    """The ``train-stylizer`` models in one folder, each loaded once, when first chosen.

    Args:
        folder: A folder of model folders (each with ``model.json`` and ``model.safetensors``).
        device: Where the models run (``auto``, ``cpu``, ``cuda``, ...).
    """

    def __init__(self, folder: str | Path, device: str = "auto") -> None:
        self.folder, self.device = Path(folder), device
        self._loaded: dict[str, Any] = {}

    def models(self) -> list[str]:
        """The names of the model folders inside :attr:`folder`."""
        return sorted(p.parent.name for p in self.folder.glob("*/model.json"))

    def stylize(
        self, model: str, content: Path, styles: Sequence[StyleSpec], config: TransferConfig
    ) -> Tensor:
        """One pass of ``model`` over ``content`` at ``config.size`` (colours kept with
        ``config.preserve_colors``); ``styles`` are the model's own, fixed when it was trained."""
        from ..errors import InvalidParameter, choice_error
        from ..feedforward.model import load_stylizer

        names = self.models()
        if model not in names:
            raise (
                choice_error("model", model, names)
                if names
                else InvalidParameter("model", model, "a model of --models (the folder has none)")
            )
        if model not in self._loaded:
            self._loaded[model] = load_stylizer(self.folder / model, device=self.device, param="model")
        stylized = self._loaded[model].stylize_image(
            content, size=config.size, preserve_colors=config.preserve_colors
        )
        return stylized.image


def find_feedforward(folder: str | Path | None = None, device: str = "auto") -> FeedForward | None:
    """The models of ``folder`` (``styleforge studio --models``), or ``None`` without one.

    Raises:
        InputFileError: ``folder`` is not a folder.
    """
    if folder is None:
        return None
    if not Path(folder).is_dir():
        from ..errors import InputFileError

        raise InputFileError("--models", folder, "is not a folder of train-stylizer models")
    return ModelFolder(folder, device)
