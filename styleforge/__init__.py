"""styleforge: tunable neural style transfer and art-composition attribute networks.

The Python API mirrors the CLI::

    import styleforge
    result = styleforge.transfer("content.jpg", ["a.jpg:0.75", "b.jpg:0.25"], size=256, iterations=100)
    result.save("out.png")
"""

__version__ = "0.1.0"

from .config import TransferConfig  # noqa: E402
from .errors import StyleforgeError  # noqa: E402
from .transfer.run import TransferResult, transfer  # noqa: E402

__all__ = ["__version__", "TransferConfig", "TransferResult", "StyleforgeError", "transfer"]

# The attribute network (issue 4): styleforge.make_dataset("data/synth", count=400, size=128);
# styleforge.train_attrs("data/synth", "runs/base", backbone="resnet18", loss_weights={"categorical": 0.7})
from .attributes.synthetic import make_dataset  # noqa: E402
from .attributes.train import TrainResult, train_attrs  # noqa: E402
from .config import TrainConfig  # noqa: E402

__all__ += ["TrainConfig", "TrainResult", "make_dataset", "train_attrs"]

# Scoring (issue 5): styleforge.score_images("runs/base", ["out/"]) -> [ImageScore, ...]; guided transfer
# is styleforge.transfer(..., attrs_model="runs/base", attrs=("contrast=9",), score_with="runs/base").
from .attributes.score import ImageScore, score_images  # noqa: E402

__all__ += ["ImageScore", "score_images"]
