"""Run configurations: the single home of every default (the CLI reads its defaults from here).

Where each transfer default comes from is documented in docs/transfer.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParameter, choice_error

__all__ = ["TransferConfig", "DEFAULT_STYLE_LAYERS", "DEFAULT_CONTENT_LAYERS"]

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


@dataclass
class TransferConfig:
    """Every option of a style transfer, with its default.

    Attributes:
        content_weight: Weight of the ``content`` term.
        style_weight: Total weight of the ``style.*`` terms, split by the blend weights.
        tv_weight: Weight of the total-variation term ``tv``.
        iterations: Steps of an optimiser stage that names none.
        size: Output long side in pixels.
        optimizer: Chain of ``NAME[:STEPS][@LR]`` stages.
        lr: Learning rate for stages that name none (``None``: each optimiser's default).
        seed: Seed for random weights and random init.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        weights: ``imagenet``, ``random``, ``auto`` or a path to a state dict.
        network: ``vgg19`` or ``vgg16``.
        content_layers: Layers of the content term.
        style_layers: Layers of the style terms.
        style_layer_weight_exp: Layer-weight exponent (w₁ = 1, wₙ₊₁ = exp·wₙ, normalised).
        pooling: ``max`` or ``avg``.
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
