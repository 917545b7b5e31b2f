"""Tests of styleforge.attributes.features: the feature cache is reused for the same key and files,
and recomputed when either changes."""

from __future__ import annotations

from pathlib import Path

import torch
from _attr_helpers import png as _png

from styleforge.attributes.features import cached_features


def test_feature_cache_reuses_and_invalidates(tmp_path: Path) -> None:
    images = [_png(tmp_path / "a.png"), _png(tmp_path / "b.png")]
    calls: list[int] = []

    def compute() -> torch.Tensor:
        calls.append(1)
        return torch.arange(6.0).view(2, 3)

    path = tmp_path / "run" / "features.safetensors"
    first, hit = cached_features(path, {"backbone": "resnet18"}, images, compute)
    assert not hit and path.is_file() and len(calls) == 1
    again, hit = cached_features(path, {"backbone": "resnet18"}, images, compute)
    assert hit and torch.equal(again, first) and len(calls) == 1
    _, hit = cached_features(path, {"backbone": "resnet50"}, images, compute)
    assert not hit and len(calls) == 2
    _png(images[0], (1, 2, 3), size=20)  # a changed image file
    _, hit = cached_features(path, {"backbone": "resnet50"}, images, compute)
    assert not hit and len(calls) == 3
    _, hit = cached_features(None, {"backbone": "resnet50"}, images, compute)
    assert not hit and len(calls) == 4
