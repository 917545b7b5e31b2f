"""Tests of styleforge.attributes.augment: seeded, shape- and range-preserving, colour-preserving."""

from __future__ import annotations

import torch

from styleforge.attributes.augment import augment


def test_augment_is_seeded_shaped_and_keeps_colours() -> None:
    images = torch.rand(4, 3, 32, 32)
    a = augment(images, torch.Generator().manual_seed(5))
    b = augment(images, torch.Generator().manual_seed(5))
    c = augment(images, torch.Generator().manual_seed(6))
    assert a.shape == images.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    flat = torch.zeros(2, 3, 32, 32)
    flat[:, 0], flat[:, 1], flat[:, 2] = 0.9, 0.2, 0.4  # a flat colour stays exactly that colour
    out = augment(flat, torch.Generator().manual_seed(0))
    assert torch.allclose(out, flat, atol=1e-5)
