"""Gaussian blur of image tensors: the Laplacian term's blur and the pyramid's softened finest detail."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_taps", "blur"]


def gaussian_taps(sigma: float, device: torch.device | str | None = None) -> Tensor:
    """The normalised 1-D Gaussian of standard deviation ``sigma`` px, radius ⌈3σ⌉ (at least 1)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    return (taps / taps.sum()).to(device)


def blur(image: Tensor, taps: Tensor) -> Tensor:
    """(N, C, H, W) ``image`` blurred channel by channel with the separable ``taps``
    (:func:`gaussian_taps`), edges reflected (repeated where the image is narrower than the taps'
    radius); same shape."""
    r = taps.numel() // 2
    channels = image.shape[1]
    mode = "reflect" if r < min(image.shape[-2:]) else "replicate"
    x = F.pad(image, (r, r, r, r), mode=mode)
    x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
