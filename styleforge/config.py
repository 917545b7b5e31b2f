"""Run configurations: the single home of every default (the CLI reads its defaults from here).

Where each transfer default comes from is documented in docs/transfer.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParameter, choice_error

__all__ = ["TransferConfig", "DEFAULT_STYLE_LAYERS", "DEFAULT_CONTENT_LAYERS", "COLOR_TRANSFERS", "INITS"]

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def _check_number(param: str, value: float, *, minimum: float = 0.0, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        raise InvalidParameter(param, value, f"a finite number {'>' if strict else '>='} {minimum:g}")


def _check_int(param: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameter(param, value, f"a whole number >= {minimum}")


COLOR_TRANSFERS: tuple[str, ...] = ("none", "histogram")
INITS: tuple[str, ...] = ("content", "noise", "style")


@dataclass
class TransferConfig:
    """Every option of a style transfer, with its default (docs/transfer.md says where each comes from).

    Attributes:
        content_weight: Weight of the ``content`` term.
        style_weight: Total weight of the ``style.*`` terms, split by the blend weights.
        tv_weight: Weight of the total-variation term ``tv``.
        iterations: Steps of an optimiser stage that names none.
        size: Output long side in pixels.
        optimizer: Chain of ``NAME[:STEPS][@LR]`` stages, run in order.
        lr: Learning rate for stages that name none (``None``: each optimiser's default).
        seed: Seed for random weights and noise.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        weights: ``imagenet``, ``random``, ``auto`` or a path to a state dict.
        network: ``vgg19`` or ``vgg16``.
        content_layers: ``LAYER[:WEIGHT]`` of the content term (weights normalised to sum 1).
        style_layers: ``LAYER[:WEIGHT]`` of the style terms.
        style_layer_weight_exp: Layer-weight exponent (w₁ = 1, wₙ₊₁ = exp·wₙ, then × any explicit
            per-layer weight, normalised to sum 1).
        pooling: ``max`` or ``avg``.
        init: ``content``, ``noise``, ``style`` (the first style image) or an image path.
        init_noise_blend: Share of seeded uniform noise mixed into the init, 0..1.
        style_scale: Style images are resized to ``size × style_scale`` (long side) before their
            Gram matrices are taken; a per-style ``@SCALE`` overrides it.
        color_transfer: ``histogram`` recolours each style image to the content's colour histogram
            before optimising; ``none`` leaves them.
        preserve_colors: Put the content's chroma (YCbCr Cb, Cr) back on the result.
        stop_delta: Stop when the total's relative change stays below this for ``patience``
            iterations (``None``: run every iteration).
        patience: Consecutive iterations for ``stop_delta``.
        divergence_factor: A total above this × the best so far counts as divergence (``inf``:
            only NaN/inf do).
        keep_last: Return the last iterate instead of the lowest-loss one.
    """

    content_weight: float = 1.0
    style_weight: float = 5e6
    tv_weight: float = 0.0
    iterations: int = 300
    size: int = 512
    optimizer: tuple[str, ...] = ("lbfgs",)
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    weights: str = "imagenet"
    network: str = "vgg19"
    content_layers: tuple[str, ...] = DEFAULT_CONTENT_LAYERS
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_layer_weight_exp: float = 1.0
    pooling: str = "max"
    init: str = "content"
    init_noise_blend: float = 0.0
    style_scale: float = 1.0
    color_transfer: str = "none"
    preserve_colors: bool = False
    stop_delta: float | None = None
    patience: int = 10
    divergence_factor: float = 10.0
    keep_last: bool = False

    def validate(self) -> None:
        """Checks every value that can be checked without files or a network.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        _check_number("--content-weight", self.content_weight)
        _check_number("--style-weight", self.style_weight)
        _check_number("--tv-weight", self.tv_weight)
        _check_int("--iterations", self.iterations, 1)
        _check_int("--size", self.size, 1)
        _check_int("--seed", self.seed, 0)
        if self.lr is not None:
            _check_number("--lr", self.lr, strict=True)
        _check_number("--style-layer-weight-exp", self.style_layer_weight_exp, strict=True)
        if self.pooling not in ("max", "avg"):
            raise choice_error("--pooling", self.pooling, ("max", "avg"))
        if not self.content_layers:
            raise InvalidParameter("--content-layers", "", "at least one layer name")
        if not self.style_layers:
            raise InvalidParameter("--style-layers", "", "at least one layer name")
        if not (isinstance(self.init_noise_blend, (int, float)) and 0 <= self.init_noise_blend <= 1):
            raise InvalidParameter("--init-noise-blend", self.init_noise_blend, "a number from 0 to 1")
        _check_number("--style-scale", self.style_scale, strict=True)
        if self.color_transfer not in COLOR_TRANSFERS:
            raise choice_error("--color-transfer", self.color_transfer, COLOR_TRANSFERS)
        if self.stop_delta is not None:
            _check_number("--stop-delta", self.stop_delta)
        _check_int("--patience", self.patience, 1)
        if not (isinstance(self.divergence_factor, (int, float)) and self.divergence_factor > 1):
            raise InvalidParameter("--divergence-factor", self.divergence_factor, "a number > 1 (inf disables the ratio check)")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists), stored in output metadata."""
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransferConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise choice_error("config key", unknown[0], sorted(names))
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**kwargs)
