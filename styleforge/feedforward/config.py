"""``styleforge train-stylizer``'s options and their defaults: the one place they are written.

The terms' options keep the transfer's names and meanings (:data:`TERM_FIELDS`: ``--content-weight``,
``--style-loss``, ``--style-layers``, ...) and are checked by :class:`~styleforge.config.TransferConfig`
itself (:meth:`StylizerConfig.transfer_config`). Their defaults are those of a transfer except where a
network trained on crops needs others (docs/feedforward.md says where each comes from). No torch here:
the command line reads these defaults before anything heavy is imported.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..config import TransferConfig
from ..errors import InvalidParameter, choice_error

__all__ = ["RESUME_OPTIONS", "TERM_FIELDS", "StylizerConfig"]

#: The fields a :class:`StylizerConfig` shares with :class:`~styleforge.config.TransferConfig` (same
#: names, same meaning): the weighted terms, the frozen network, and the run's seed and device.
TERM_FIELDS: tuple[str, ...] = (
    "content_weight",
    "style_weight",
    "tv_weight",
    "laplacian_weight",
    "laplacian_sigma",
    "content_layers",
    "style_layers",
    "style_layer_weight_exp",
    "style_loss",
    "pooling",
    "style_scale",
    "weights",
    "network",
    "seed",
    "device",
)

#: Options that may differ when a run is resumed (the others must match the saved run).
RESUME_OPTIONS: tuple[str, ...] = ("iterations", "device", "sheet_every")


def _whole(param: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidParameter(param, value, f"a whole number >= {least}")


@dataclass
class StylizerConfig:
    """Every option of ``styleforge train-stylizer``, with its default.

    Attributes:
        content_weight, style_weight, tv_weight, laplacian_weight, laplacian_sigma, weights, network,
        content_layers, style_layers, style_layer_weight_exp, style_loss, pooling, style_scale, seed,
        device: As :class:`~styleforge.config.TransferConfig`'s (:data:`TERM_FIELDS`); ``size`` is
            the training crop, so ``style_scale`` sizes the style images against the crop. Its
            default, 3, is the transfer's 1.5 at twice the crop, the size of picture whose pixel
            density a crop sees (the photos are kept at twice the crop): at 1 the whole painting is
            squeezed into one crop and the network learns its texture as a fine crosshatch.
        size: Side of the square training crops in px (the style statistics are taken at
            ``size × style_scale``).
        batch_size: Crops per optimiser step.
        iterations: Optimiser steps in all.
        lr: Adam's learning rate.
        width: Channels of the network's first layer (:class:`~styleforge.nets.transformer.TransformerNet`;
            16 runs about 3× faster than Johnson et al.'s 32).
        blocks: Residual blocks of the network.
        report_every: Steps between two reports: a history row, the validation loss (which picks the
            best checkpoint), the run folder's checkpoint.
        sheet_every: Reports between two contact sheets of the validation photos (0: none).
        val_count: Without ``--val``: photos of ``--data`` held out for validation (at most a tenth
            of them; at least one).
    """

    content_weight: float = 1.0
    style_weight: float | None = None
    tv_weight: float = 0.0
    laplacian_weight: float = 0.0
    laplacian_sigma: float = 1.0
    weights: str = "auto"
    network: str = "auto"
    content_layers: tuple[str, ...] = ("relu2_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    style_layer_weight_exp: float = 1.0
    style_loss: str = "gram"
    pooling: str = "max"
    style_scale: float = 3.0
    seed: int = 0
    device: str = "auto"
    size: int = 256
    batch_size: int = 4
    iterations: int = 2000
    lr: float = 1e-3
    width: int = 32
    blocks: int = 5
    report_every: int = 100
    sheet_every: int = 1
    val_count: int = 8

    def transfer_config(self) -> TransferConfig:
        """The terms' options as a :class:`~styleforge.config.TransferConfig` (``size`` = the crop)."""
        return TransferConfig(**{name: getattr(self, name) for name in TERM_FIELDS}, size=self.size)

    def validate(self) -> None:
        """Checks every value that can be checked without files or a network.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        self.transfer_config().validate()
        _whole("--size", self.size, 16)
        _whole("--batch-size", self.batch_size, 1)
        _whole("--iterations", self.iterations, 1)
        if (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, (int, float))
            or not (math.isfinite(self.lr) and self.lr > 0)
        ):
            raise InvalidParameter("--lr", self.lr, "a finite number > 0")
        _whole("--width", self.width, 1)
        _whole("--blocks", self.blocks, 0)
        _whole("--report-every", self.report_every, 1)
        _whole("--sheet-every", self.sheet_every, 0)
        _whole("--val-count", self.val_count, 1)

    def epochs(self) -> int:
        """Reports in the whole run (the engine's epochs): ``iterations / report_every``, rounded up."""
        return -(-self.iterations // self.report_every)

    def steps_in(self, epoch: int) -> int:
        """Steps of report period ``epoch`` (1-based): ``report_every``, the last one what is left."""
        return min(self.report_every, self.iterations - (epoch - 1) * self.report_every)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists), stored in ``model.json``."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StylizerConfig:
        """Inverse of :meth:`to_dict`; an unknown key is an error naming the valid ones."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise choice_error("config key", unknown[0], names)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
