"""``styleforge train-stylizer``'s options and their defaults: the one place they are written.

The terms' options keep the transfer's names and meanings (:data:`TERM_FIELDS`: ``--content-weight``,
``--style-loss``, ``--style-layers``, ...) and are checked by :class:`~styleforge.config.TransferConfig`
itself (:meth:`StylizerConfig.transfer_config`). Their defaults are those of a transfer except where a
network trained on crops needs others (docs/feedforward.md says where each comes from). No torch here:
the command line reads these defaults before anything heavy is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import TransferConfig
from ..option import Declared, option, option_of

__all__ = ["RESUME_OPTIONS", "TERM_FIELDS", "StylizerConfig"]

#: The fields a :class:`StylizerConfig` shares with :class:`~styleforge.config.TransferConfig` (same
#: names, same meaning): the weighted terms, the frozen network, and the run's seed and device.
TERM_FIELDS: tuple[str, ...] = (
    "content_weight",
    "style_weight",
    "tv_weight",
    "laplacian_weight",
    "laplacian_sigma",
    "tone_weight",
    "tone_sigma",
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


def _term(name: str, default: Any, origin: str = "as the transfer's", **changes: Any) -> Any:
    """A term option declared as the transfer declares it, with the stylizer's ``default``."""
    return option_of(TransferConfig, name, default, origin=origin, **changes)


_JOHNSON = "Johnson et al. (2016)"


@dataclass
class StylizerConfig(Declared):
    """Every option of ``styleforge train-stylizer``, declared once (:func:`~styleforge.option.option`):
    default, type, range, flag, help and docs line.

    The term options (:data:`TERM_FIELDS`) are the transfer's own declarations
    (:func:`~styleforge.option.option_of`: the same flags, help and checks) with the defaults a network
    trained on crops needs. ``size`` is the training crop, so ``style_scale`` sizes the style images
    against the crop: its default, 3, is the transfer's 1.5 (its default then) at twice the crop, the
    size of picture whose pixel density a crop sees (the photos are kept at twice the crop); at 1 the
    whole painting is squeezed into one crop and the network learns its texture as a fine crosshatch.
    """

    size: int = option(
        256,
        flag="--size",
        kind="int",
        minimum=16,
        help="Side of the square training crops in px (the style images are sized to it x --style-scale).",
        origin=f"{_JOHNSON}'s",
    )
    batch_size: int = option(
        4, flag="--batch-size", kind="int", minimum=1, help="Crops per step.", origin=f"{_JOHNSON}'s"
    )
    iterations: int = option(2000, flag="--iterations", kind="int", minimum=1, help="Steps in all.")
    lr: float = option(
        1e-3,
        flag="--lr",
        kind="float",
        minimum=0,
        above=True,
        help="Adam's learning rate.",
        origin=f"{_JOHNSON}'s",
    )
    width: int = option(
        32,
        flag="--width",
        kind="int",
        minimum=1,
        help="Channels of the network's first layer (32: Johnson et al.; 16 runs about 3x faster).",
        origin=f"{_JOHNSON}'s",
    )
    blocks: int = option(
        5, flag="--blocks", kind="int", minimum=0, help="Residual blocks.", origin=f"{_JOHNSON}'s"
    )
    report_every: int = option(
        100,
        flag="--report-every",
        kind="int",
        minimum=1,
        help="Steps between reports: a line, a history row, the validation loss, a checkpoint.",
    )
    sheet_every: int = option(
        1,
        flag="--sheet-every",
        kind="int",
        minimum=0,
        help="Reports between contact sheets of the validation photos (RUN/sheets/; 0: none).",
    )
    val_count: int = option(
        8,
        flag="--val-count",
        kind="int",
        minimum=1,
        help="Without --val: photos of --data held out (at most a tenth).",
    )
    content_weight: float = _term("content_weight", 1.0)
    style_weight: float | None = _term("style_weight", None, none="by --style-loss (gram: 10)")
    tv_weight: float = _term("tv_weight", 0.0)
    laplacian_weight: float = _term(
        "laplacian_weight",
        0.0,
        origin="off: in the hatching's 600-step probes 0.2 lost the subjects under a grid, 1 gave blurs",
    )
    laplacian_sigma: float = _term("laplacian_sigma", 1.0)
    tone_weight: float = _term(
        "tone_weight", 0.0, origin="off: at 0.7 the recipe's hatching model was worse on every measure"
    )
    tone_sigma: float = _term("tone_sigma", 1.0)
    weights: str = _term("weights", "auto")
    network: str = _term("network", "auto")
    content_layers: tuple[str, ...] = _term(
        "content_layers", ("relu2_2",), origin=f"{_JOHNSON}'s content layer"
    )
    style_layers: tuple[str, ...] = _term("style_layers", ("relu1_1", "relu2_1", "relu3_1", "relu4_1"))
    style_layer_weight_exp: float = _term(
        "style_layer_weight_exp", 1.0, origin=f"every style layer weighs the same, as in {_JOHNSON}"
    )
    style_loss: str = _term(
        "style_loss", "gram", origin=f"{_JOHNSON}'s; `w2` and `sw` work too, at more cost per step"
    )
    pooling: str = _term("pooling", "max")
    style_scale: float = _term(
        "style_scale",
        3.0,
        origin="the transfer's 1.5 (its default until 2026-12-07) at twice the crop (see below)",
        help="Style images are sized to --size (the crop) x this before their statistics are taken.",
    )
    seed: int = _term(
        "seed",
        0,
        origin="",
        help="Seed of the network's initial weights, the crops and the held-out photos.",
    )
    device: str = _term("device", "auto", origin="as the transfer's (one per process under torchrun)")

    def transfer_config(self) -> TransferConfig:
        """The terms' options as a :class:`~styleforge.config.TransferConfig` (``size`` = the crop)."""
        return TransferConfig(**{name: getattr(self, name) for name in TERM_FIELDS}, size=self.size)

    def validate(self) -> None:
        """Checks every value that can be checked without files or a network: each option as declared,
        then the transfer's rules between its options.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        self.check()
        self.transfer_config().validate()

    def epochs(self) -> int:
        """Reports in the whole run (the engine's epochs): ``iterations / report_every``, rounded up."""
        return -(-self.iterations // self.report_every)

    def steps_in(self, epoch: int) -> int:
        """Steps of report period ``epoch`` (1-based): ``report_every``, the last one what is left."""
        return min(self.report_every, self.iterations - (epoch - 1) * self.report_every)
