"""The whole transfer: the style transfer of :mod:`styleforge.stylize`, with attribute guidance and
scoring when the configuration asks for them (``attrs_model``/``attrs``, ``score_with``).

This is :func:`styleforge.transfer`. It sits above both :mod:`styleforge.stylize` and
:mod:`styleforge.attributes`: the transfer takes the attribute terms through its extension hook
(:mod:`styleforge.stylize.extension`) and knows nothing of attribute networks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..attributes.model import VGG_HYPERCOLUMN_LAYERS, LoadedModel
from ..attributes.score import open_model, score_tensors
from ..config import TransferConfig
from ..engine.events import Callback
from ..parsing import StyleSpec
from ..stylize.extension import ExtraTerms, Finished, ScaleView
from ..stylize.run import ImageInput, TransferResult
from ..stylize.run import transfer as stylize
from .terms import AttributeGuide, AttributeTerm, AttrTarget, can_share_forward, resolve_targets, same_vgg_weights

__all__ = ["AttributeGuidance", "transfer"]


class AttributeGuidance:
    """The :class:`~styleforge.stylize.extension.Extension` of ``--attrs-model``/``--attr`` (one
    ``attr.<name>`` term per target) and ``--score-with`` (the result's scores).

    One network serves both when ``--score-with`` names the ``--attrs-model`` folder.
    """

    def __init__(self, config: TransferConfig) -> None:
        self.config = config
        self.model: LoadedModel | None = None
        self.scorer: LoadedModel | None = None
        self.targets: list[AttrTarget] = []

    def open(self, device: torch.device, callbacks: Sequence[Callback]) -> None:
        """Reads the networks and checks the ``--attr`` targets against the model's schema."""
        config = self.config
        if config.attrs_model:
            self.model = open_model(config.attrs_model, device=device, param="--attrs-model", callbacks=callbacks)
            self.targets = resolve_targets(config.attrs, self.model.net.schema, config.attr_weight)
        if config.score_with:
            same = self.model is not None and Path(config.score_with).resolve() == Path(str(config.attrs_model)).resolve()
            self.scorer = self.model if same else open_model(config.score_with, device=device, param="--score-with",
                                                             callbacks=callbacks)

    def layers(self, network: str, pooling: str) -> Sequence[str]:
        """The hypercolumn's layers when the model may share the transfer's pass at some scale."""
        if self.model is not None and can_share_forward(self.model, network, pooling):
            return VGG_HYPERCOLUMN_LAYERS
        return ()

    def terms(self, scale: ScaleView) -> ExtraTerms:
        """The ``attr.<name>`` terms. The transfer's VGG pass gives the hypercolumn when it is the
        attribute backbone and sees the image as the model does (square, at the model's input size):
        at any other size or aspect the hypercolumn differs from the one the model was trained and
        scores on, and guidance would chase the wrong target, so the model's own backbone runs on the
        squashed image instead."""
        model = self.model
        if model is None:
            return ExtraTerms()
        shared = (can_share_forward(model, scale.network, scale.pooling) and scale.shape == (model.size, model.size)
                  and same_vgg_weights(model, scale.net))
        guide = AttributeGuide(model, shared=shared)
        return ExtraTerms(
            terms={t.term: AttributeTerm(guide, t) for t in self.targets},
            weights={t.term: t.weight for t in self.targets},
            layers=tuple(VGG_HYPERCOLUMN_LAYERS) if shared else (),
            metadata={"attrs": {"model": str(self.config.attrs_model), "shared_forward": shared,
                                "targets": {t.name: t.to_dict() for t in self.targets}}},
        )

    def finish(self, image: Tensor, last: ExtraTerms) -> Finished:
        """The last scale's ``attrs`` record, and with ``--score-with`` the image's scores."""
        finished = Finished(metadata=dict(last.metadata))
        if self.scorer is not None:
            scores = score_tensors(self.scorer, [image], ["result"])[0]
            finished.scores = scores
            finished.metadata["scores"] = {"model": str(self.config.score_with), **{
                key: scores.to_dict()[key] for key in ("numeric", "categorical")}}
        return finished


def transfer(
    content: ImageInput,
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    *,
    callbacks: Sequence[Callback] = (),
    init_image: Tensor | None = None,
    **options: Any,
) -> TransferResult:
    """Optimises an image to keep ``content``'s content and the blended style of ``styles``, steered
    by an attribute network with ``attrs_model`` and ``attrs``, scored with ``score_with``.

    The arguments, the result and the errors are those of :func:`styleforge.stylize.run.transfer`
    (which see: the pyramid, Ctrl-C, colours); this adds the attribute networks' terms and scores.

    Example::

        import styleforge
        result = styleforge.transfer("content.jpg", ["a.jpg:0.75", "b.jpg:0.25"], size=256, iterations=100)
        result.save("out.png")
    """
    config = dataclasses.replace(config or TransferConfig(), **options)
    extensions = [AttributeGuidance(config)] if config.attrs_model or config.score_with else []
    return stylize(content, styles, config, callbacks=callbacks, init_image=init_image, extensions=extensions)
