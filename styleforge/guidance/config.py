"""The options of attribute guidance and scoring in a transfer, declared once (no torch).

``--attrs-model``/``--attr``/``--attr-weight`` steer a transfer with a trained attribute network;
``--score-with`` rates its result. They are the guidance layer's own options, apart from the style
transfer's (:class:`styleforge.config.TransferConfig`), which knows nothing of attribute networks.
This module imports no torch, so that the command line checks them before any heavy import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import GUIDANCE_KEYS
from ..errors import InvalidParameter
from ..option import Declared, option
from ..parsing import parse_attr

__all__ = ["DEFAULT_ATTR_WEIGHT", "GuidanceConfig"]

#: Weight of an ``attr.<name>`` term without ``:WEIGHT`` (``--attr-weight``); docs/attributes.md
#: ("Guided transfer") gives the measurements it comes from.
DEFAULT_ATTR_WEIGHT: float = 1.0


@dataclass
class GuidanceConfig(Declared):
    """Attribute guidance and scoring of a transfer: each field declared once (flag, default, checks,
    help), as :class:`~styleforge.config.TransferConfig`'s are."""

    attrs_model: str | None = option(
        None,
        flag="--attrs-model",
        metavar="MODEL_DIR",
        help="A train-attrs run folder whose network steers the transfer towards the --attr targets.",
        doc="A `train-attrs` run folder whose network steers the transfer; needs at least one `--attr`.",
    )
    attrs: tuple[str, ...] = option(
        (),
        flag="--attr",
        kind="items",
        metavar="NAME=VALUE[:WEIGHT]",
        parse=parse_attr,
        help="Attribute target, repeatable: one attr.NAME term each "
        "(contrast=9, pri_color=blue, harmony=triadic:2).",
        doc="Repeatable: one more engine term `attr.<name>` each, shown in the progress line, `--history` "
        "and `--plot` like the others. Numeric (`contrast=9`): squared error of the network's `tanh` "
        "output to the target mapped to [−1, 1]; categorical (`pri_color=blue`, "
        "`harmony=split complementary:2`): cross-entropy to the class. Needs `--attrs-model`.",
    )
    attr_weight: float = option(
        DEFAULT_ATTR_WEIGHT,
        flag="--attr-weight",
        kind="float",
        minimum=0,
        help="Weight of an --attr without :WEIGHT.",
        doc="Weight of an `--attr` without `:WEIGHT`, on the same footing as the (relative) content and "
        "style terms: a numeric target at the far end of its scale starts at a raw 1, a 13-class target "
        "near ln 13 ≈ 2.6, against a style term near 10 × 0.6; docs/attributes.md says how it was chosen.",
    )
    score_with: str | None = option(
        None,
        flag="--score-with",
        metavar="MODEL_DIR",
        help="Score the result with this train-attrs network: printed, and stored in the PNG and the "
        "history.",
        doc="Scores the written image with that network: one `scores (…)` line on stderr, `scores` in the "
        "PNG's metadata, and `score.<attribute>` (`score.<categorical>.probability`) columns on the "
        "`--history` row of the iteration whose image was written.",
    )

    @property
    def active(self) -> bool:
        """Whether the transfer needs the guidance at all (a network to steer or to score with)."""
        return bool(self.attrs_model or self.score_with)

    def validate(self) -> None:
        """Checks each option as declared (the syntax of every ``--attr``; the targets are checked
        against the model's schema when the model is read), then that ``--attr`` and
        ``--attrs-model`` come together.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        self.check()
        if self.attrs and not self.attrs_model:
            raise InvalidParameter(
                "--attr", self.attrs[0], "--attrs-model MODEL_DIR as well (the network that rates the image)"
            )
        if self.attrs_model and not self.attrs:
            raise InvalidParameter(
                "--attrs-model", self.attrs_model, "at least one --attr NAME=VALUE[:WEIGHT] to steer towards"
            )

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> GuidanceConfig:
        """The guidance options a transfer's output recorded: its ``guidance`` entry, or in an output of
        an older version, where they were transfer options, its ``config`` entry's."""
        recorded = metadata.get("guidance")
        if not isinstance(recorded, dict):
            config = metadata.get("config") or {}
            recorded = {key: config[key] for key in GUIDANCE_KEYS if key in config}
        return cls.from_dict(recorded)
