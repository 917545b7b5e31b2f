"""The hook through which a layer above the transfer adds terms to its objective.

The transfer knows content, style and total variation; anything else is an :class:`Extension`
given to :func:`styleforge.stylize.run.transfer`. :mod:`styleforge.guidance` is one: it adds the
``attr.<name>`` terms of a trained attribute network and scores the result. Keeping the hook here
lets imports run one way: ``guidance`` imports ``stylize`` and ``attributes``, never the reverse.

An extension's life in one run: :meth:`~Extension.open` once, after the cheap checks and before
the weights are resolved (so a bad file is reported before any slow work);
:meth:`~Extension.layers` once, while the network is built; :meth:`~Extension.terms` at every
scale of the pyramid; :meth:`~Extension.finish` once, on the image returned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from ..nets.vgg import VGGFeatures

__all__ = ["ScaleView", "ExtraTerms", "Finished", "Extension"]


@dataclass(frozen=True)
class ScaleView:
    """What an extension sees of one scale of the pyramid.

    Attributes:
        net: The transfer's feature network (frozen).
        network: Its arch (``vgg19`` or ``vgg16``; after ``--weights auto`` fell back to HED, the
            ``vgg16`` actually built).
        pooling: ``max`` or ``avg``.
        shape: The image's (height, width) at this scale.
    """

    net: VGGFeatures
    network: str
    pooling: str
    shape: tuple[int, int]


@dataclass
class ExtraTerms:
    """An extension's contribution to one scale's objective.

    Attributes:
        terms: Engine terms by name; each is called on a
            :class:`~styleforge.stylize.features.FeatureContext`.
        weights: Each term's weight.
        layers: Layers the objective's pass must also return (among :meth:`Extension.layers`).
        metadata: What the output records about these terms (the last scale's is kept).
    """

    terms: dict[str, Callable[[Any], Tensor]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Finished:
    """What an extension adds to the result: entries of the output's metadata, and scores (an
    object with ``ok`` and ``history_row()``, e.g. :class:`~styleforge.attributes.score.ImageScore`)."""

    metadata: dict[str, Any] = field(default_factory=dict)
    scores: Any = None


class Extension(Protocol):
    """More terms in a transfer (see the module docstring for the order of the calls)."""

    def open(self, device: torch.device, callbacks: Sequence[Callable[[Any], None]]) -> None:
        """Reads the extension's files onto ``device``; errors are :class:`StyleforgeError`."""

    def layers(self, network: str, pooling: str) -> Sequence[str]:
        """The layers some scale's pass may ask for: built into the network (an unused one costs
        nothing, as the trunk stops at the deepest layer a pass asks for)."""

    def terms(self, scale: ScaleView) -> ExtraTerms:
        """The terms of one scale's objective."""

    def finish(self, image: Tensor, last: ExtraTerms) -> Finished:
        """The result's additions, for the image returned (3, H, W) in [0, 1]; ``last`` is what
        :meth:`terms` gave at the last scale that ran."""


def merged(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The union of the extensions' mappings (a name given twice is a bug in the caller)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            assert key not in out, f"two extensions give {key!r}"
            out[key] = value
    return out
