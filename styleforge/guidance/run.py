"""The whole transfer: the style transfer of :mod:`styleforge.stylize`, with attribute guidance and
scoring when the guidance options ask for them (:class:`~styleforge.guidance.config.GuidanceConfig`:
``attrs_model``/``attrs``, ``score_with``).

This is :func:`styleforge.transfer`. It sits above both :mod:`styleforge.stylize` and
:mod:`styleforge.attributes`: the transfer takes the attribute terms through its extension hook
(:mod:`styleforge.stylize.extension`) and knows nothing of attribute networks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..attributes.model import VGG_HYPERCOLUMN_LAYERS, LoadedModel
from ..attributes.score import open_model, score_tensors
from ..config import TransferConfig
from ..engine.events import Callback
from ..engine.interrupt import watch
from ..errors import InputFileError, InvalidParameter
from ..images import probe_image
from ..parsing import StyleSpec
from ..stylize.extension import ExtraTerms, Finished, ScaleView
from ..stylize.plan import ImageInput
from ..stylize.run import Stylizer, TransferResult
from ..stylize.run import transfer as stylize
from .config import GuidanceConfig
from .terms import (
    AttributeGuide,
    AttributeTerm,
    AttrTarget,
    can_share_forward,
    resolve_targets,
    same_vgg_weights,
)

__all__ = ["AttributeGuidance", "transfer", "transfer_each", "ContentRun"]


class AttributeGuidance:
    """The :class:`~styleforge.stylize.extension.Extension` of ``--attrs-model``/``--attr`` (one
    ``attr.<name>`` term per target) and ``--score-with`` (the result's scores).

    One network serves both when ``--score-with`` names the ``--attrs-model`` folder. The result's
    metadata records the options under ``guidance``, so that the output reproduces the run.
    """

    def __init__(self, config: GuidanceConfig) -> None:
        self.config = config
        self.model: LoadedModel | None = None
        self.scorer: LoadedModel | None = None
        self.targets: list[AttrTarget] = []

    def open(self, device: torch.device, callbacks: Sequence[Callback]) -> None:
        """Reads the networks and checks the ``--attr`` targets against the model's schema."""
        config = self.config
        if config.attrs_model:
            self.model = open_model(
                config.attrs_model, device=device, param="--attrs-model", callbacks=callbacks
            )
            self.targets = resolve_targets(config.attrs, self.model.net.schema, config.attr_weight)
        if config.score_with:
            same = (
                self.model is not None
                and Path(config.score_with).resolve() == Path(str(config.attrs_model)).resolve()
            )
            self.scorer = (
                self.model
                if same
                else open_model(config.score_with, device=device, param="--score-with", callbacks=callbacks)
            )

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
        shared = (
            can_share_forward(model, scale.network, scale.pooling)
            and scale.shape == (model.size, model.size)
            and same_vgg_weights(model, scale.net)
        )
        guide = AttributeGuide(model, shared=shared)
        return ExtraTerms(
            terms={t.term: AttributeTerm(guide, t) for t in self.targets},
            weights={t.term: t.weight for t in self.targets},
            layers=tuple(VGG_HYPERCOLUMN_LAYERS) if shared else (),
            metadata={
                "attrs": {
                    "model": str(self.config.attrs_model),
                    "shared_forward": shared,
                    "targets": {t.name: t.to_dict() for t in self.targets},
                }
            },
        )

    def finish(self, image: Tensor, last: ExtraTerms) -> Finished:
        """The last scale's ``attrs`` record, and with ``--score-with`` the image's scores."""
        finished = Finished(metadata={**last.metadata, "guidance": self.config.to_dict()})
        if self.scorer is not None:
            scores = score_tensors(self.scorer, [image], ["result"])[0]
            finished.scores = scores
            finished.metadata["scores"] = {
                "model": str(self.config.score_with),
                **{key: scores.to_dict()[key] for key in ("numeric", "categorical")},
            }
        return finished


def _split(
    config: TransferConfig | None, guidance: GuidanceConfig | None, options: dict[str, Any]
) -> tuple[TransferConfig, GuidanceConfig, list[AttributeGuidance]]:
    """The transfer's and the guidance's options, each with the ``options`` that are its fields
    applied, the guidance validated, and the extension it asks for (none without a network)."""
    names = {f.name for f in dataclasses.fields(GuidanceConfig)}
    guidance = dataclasses.replace(
        guidance or GuidanceConfig(), **{k: v for k, v in options.items() if k in names}
    )
    guidance.validate()
    config = dataclasses.replace(
        config or TransferConfig(), **{k: v for k, v in options.items() if k not in names}
    )
    return config, guidance, [AttributeGuidance(guidance)] if guidance.active else []


def transfer(
    content: ImageInput,
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    *,
    guidance: GuidanceConfig | None = None,
    callbacks: Sequence[Callback] = (),
    init_image: Tensor | None = None,
    **options: Any,
) -> TransferResult:
    """Optimises an image to keep ``content``'s content and the blended style of ``styles``, steered
    by an attribute network with ``attrs_model`` and ``attrs``, scored with ``score_with``.

    The arguments, the result and the errors are those of :func:`styleforge.stylize.run.transfer`
    (which see: the pyramid, Ctrl-C, colours); this adds the attribute networks' terms and scores.
    ``guidance`` holds the guidance options; ``options`` may name the fields of either configuration
    (``attrs_model="runs/base", attrs=["contrast=9"], size=256``).

    Example::

        import styleforge
        result = styleforge.transfer("content.jpg", ["a.jpg:0.75", "b.jpg:0.25"], size=256, iterations=100)
        result.save("out.png")
    """
    config, guidance, extensions = _split(config, guidance, options)
    return stylize(content, styles, config, callbacks=callbacks, init_image=init_image, extensions=extensions)


@dataclass
class ContentRun:
    """One content image of :func:`transfer_each`.

    Attributes:
        content: The content image's path.
        result: Its transfer, or ``None`` when the image could not be read.
        error: Why it could not be read (an :class:`~styleforge.errors.InputFileError` naming
            ``CONTENT`` and the file), else ``None``.
    """

    content: Path
    result: TransferResult | None = None
    error: InputFileError | None = None


def transfer_each(
    contents: Iterable[str | os.PathLike[str]],
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    config: TransferConfig | None = None,
    *,
    guidance: GuidanceConfig | None = None,
    callbacks: Sequence[Callback] = (),
    interrupt: Any = None,
    **options: Any,
) -> Iterator[ContentRun]:
    """Transfers several content images with the same styles and options, one after the other.

    The options, the style images, every content file's header and the first content image are
    checked before any work; the network is built once and the style statistics are taken once per
    size, whatever the number of images (the same as :func:`transfer` for each, less the repeated
    set-up). An image that turns out to be unreadable later (a truncated file) is yielded with its
    error and the others go on. A Ctrl-C ends the image being optimised with its best result so far
    (``result.stop_reason == "interrupted"``), which is the last one yielded.

    Images are optimised one at a time. (Several in one batch would share each step's kernels on a
    GPU; on a CPU a step's cost grows with the pixels, so a batch is no faster there.)

    Args:
        contents: Content image files, in order.
        styles: As :func:`transfer`'s.
        config: Options; ``None`` for the defaults.
        guidance: The guidance options; ``None`` for none.
        callbacks: Receive every image's engine events.
        interrupt: The caller's flag (:func:`~styleforge.engine.interrupt.stop_signals`); ``None``:
            this call installs its own for the whole loop (Ctrl-C and SIGTERM).
        **options: Overrides of ``config``'s and ``guidance``'s fields.

    Yields:
        A :class:`ContentRun` per content image, in order.

    Raises:
        InvalidParameter: No content image; invalid options.
        InputFileError: A content file that is missing, a folder or not an image; an unreadable style.
    """
    paths = [Path(c) for c in contents]
    if not paths:
        raise InvalidParameter("CONTENT", "", "at least one content image")
    for path in paths:
        probe_image(path, param="CONTENT")
    config, guidance, extensions = _split(config, guidance, options)
    stylizer = Stylizer(styles, config, callbacks=callbacks, extensions=extensions, content=paths[0])
    with watch(interrupt) as flag:
        yield from _each(stylizer, paths, callbacks, flag)


def _each(
    stylizer: Stylizer, paths: Sequence[Path], callbacks: Sequence[Callback], interrupt: Any
) -> Iterator[ContentRun]:
    for index, path in enumerate(paths):
        if interrupt.requested:
            return
        try:
            result = stylizer.run(None if index == 0 else path, callbacks=callbacks, interrupt=interrupt)
        except InputFileError as exc:
            if exc.param != "CONTENT":
                raise
            yield ContentRun(path, error=exc)
            continue
        yield ContentRun(path, result)
        if result.stop_reason == "interrupted":
            return
