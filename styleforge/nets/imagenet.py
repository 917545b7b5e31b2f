"""The input convention of torchvision's ImageNet weights, which every styleforge network takes.

RGB in [0, 1], normalised with these per-channel means and standard deviations inside the network.
"""

from __future__ import annotations

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
