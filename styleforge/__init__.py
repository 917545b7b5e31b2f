"""styleforge: tunable neural style transfer and art-composition attribute networks.

The Python API mirrors the CLI::

    import styleforge
    result = styleforge.transfer("content.jpg", ["a.jpg:0.75", "b.jpg:0.25"], size=256, iterations=100)
    result.save("out.png")

    styleforge.make_dataset("data/synth", count=400, size=128)
    styleforge.train_attrs("data/synth", "runs/base", backbone="resnet18", loss_weights={"categorical": 0.7})
    styleforge.score_images("runs/base", ["out/"])  # -> [ImageScore, ...]

Guided transfer is ``styleforge.transfer(..., attrs_model="runs/base", attrs=("contrast=9",),
score_with="runs/base")``: those options are :class:`GuidanceConfig`'s, the others
:class:`TransferConfig`'s. Feed-forward transfer trains a network once per style, then runs it::

    styleforge.train_stylizer("photos/", "models/starry", ["starry.jpg"], weights="hed", iterations=2000)
    model = styleforge.load_stylizer("models/starry")
    images = model(batch)                      # (B, 3, H, W) in [0, 1] -> the same, one pass
    model.stylize_image("photo.jpg").save("out.png")

The names are loaded on first use (PEP 562), so ``import styleforge`` — and with it the CLI's
``--help`` and its argument checks — does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .version import __version__

#: Public name -> the module that defines it.
_API = {
    "TransferConfig": "styleforge.config",
    "GuidanceConfig": "styleforge.guidance.config",
    "TrainConfig": "styleforge.config",
    "StyleforgeError": "styleforge.errors",
    "transfer": "styleforge.guidance.run",
    "transfer_each": "styleforge.guidance.run",
    "TransferResult": "styleforge.stylize.run",
    "make_dataset": "styleforge.attributes.synthetic",
    "train_attrs": "styleforge.attributes.train",
    "TrainResult": "styleforge.attributes.train",
    "score_images": "styleforge.attributes.score",
    "ImageScore": "styleforge.attributes.score",
    "StylizerConfig": "styleforge.feedforward.config",
    "train_stylizer": "styleforge.feedforward.train",
    "StylizerTrainResult": "styleforge.feedforward.train",
    "load_stylizer": "styleforge.feedforward.model",
    "StylizerModel": "styleforge.feedforward.model",
}

__all__ = [
    "__version__",
    "TransferConfig",
    "GuidanceConfig",
    "TrainConfig",
    "StyleforgeError",
    "transfer",
    "transfer_each",
    "TransferResult",
    "make_dataset",
    "train_attrs",
    "TrainResult",
    "score_images",
    "ImageScore",
    "StylizerConfig",
    "train_stylizer",
    "StylizerTrainResult",
    "load_stylizer",
    "StylizerModel",
]
assert set(__all__) == {"__version__", *_API}

if TYPE_CHECKING:
    from .attributes.score import ImageScore, score_images
    from .attributes.synthetic import make_dataset
    from .attributes.train import TrainResult, train_attrs
    from .config import TrainConfig, TransferConfig
    from .errors import StyleforgeError
    from .feedforward.config import StylizerConfig
    from .feedforward.model import StylizerModel, load_stylizer
    from .feedforward.train import StylizerTrainResult, train_stylizer
    from .guidance.config import GuidanceConfig
    from .guidance.run import transfer, transfer_each
    from .stylize.run import TransferResult


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'styleforge' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
