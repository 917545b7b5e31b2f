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
