"""Augmentation for fine-tuning: random pad + crop, a small rotation, a horizontal flip (never colour),
as the blog post "Hard training works in deep learning" used to regularise a ResNet-50; each image
seeded on its own (:func:`sample_seed`) so that the result does not depend on batching, worker
processes or ranks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["augment", "sample_seed", "augment_sample"]


def augment(images: Tensor, generator: torch.Generator, *, max_degrees: float = 10.0) -> Tensor:
    """Random pad + crop, a small rotation, a horizontal flip (see the module docstring).

    Never colour jitter: colour is a label (primary colour, harmony, contrast).

    Args:
        images: ``(B, 3, S, S)`` float in [0, 1].
        generator: The only source of randomness (a resumed run draws the same numbers).
        max_degrees: Rotations are uniform in ``±max_degrees``.

    Returns:
        ``(B, 3, S, S)`` in [0, 1]: reflect-padded by ``S/16`` and cropped back at a random offset,
        rotated (reflection at the borders), flipped with probability 1/2.
    """
    b, _, h, w = images.shape
    pad = max(1, min(h, w) // 16)
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator).tolist()
    cropped = torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(offsets)])
    angles = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(max_degrees)
    flips = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = angles.cos(), angles.sin()
    theta = torch.stack(
        [
            torch.stack([cos * flips, -sin, torch.zeros(b)], 1),
            torch.stack([sin * flips, cos, torch.zeros(b)], 1),
        ],
        1,
    ).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(
        cropped, grid, mode="bilinear", padding_mode="reflection", align_corners=False
    ).clamp(0, 1)


_MASK64 = (1 << 64) - 1


def sample_seed(epoch_seed: int, index: int) -> int:
    """The seed of one image's augmentation in one epoch: SplitMix64 of ``(epoch_seed, index)``.

    Seeding each image on its own (rather than drawing a batch's numbers from one generator) makes
    the augmentation independent of batching, worker processes and ranks.

    Args:
        epoch_seed: Drawn once per epoch from the run's generator.
        index: The image's row in the data set.

    Returns:
        A seed in ``[0, 2**64)``.
    """
    x = (int(epoch_seed) * 0x9E3779B97F4A7C15 + int(index) + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def augment_sample(image: Tensor, seed: int, *, max_degrees: float = 10.0) -> Tensor:
    """:func:`augment` of one image with its own generator seeded by ``seed`` (:func:`sample_seed`).

    Args:
        image: ``(3, S, S)`` float in [0, 1].
        seed: The image's seed for this epoch.
        max_degrees: As :func:`augment`.

    Returns:
        ``(3, S, S)`` in [0, 1].
    """
    return augment(image[None], torch.Generator().manual_seed(int(seed)), max_degrees=max_degrees)[0]
