"""Helpers of the feed-forward tests: the fast training options and a folder of seeded photos."""

from __future__ import annotations

from pathlib import Path

from _helpers import write_image
from PIL import Image

#: Training options small enough for a step in milliseconds.
FAST: dict[str, object] = {
    "size": 32,
    "batch_size": 2,
    "width": 4,
    "blocks": 1,
    "weights": "random",
    "network": "vgg16",
    "style_layers": ("relu1_1", "relu2_1"),
    "content_layers": ("relu2_2",),
    "iterations": 4,
    "report_every": 2,
    "val_count": 2,
    "lr": 0.01,
}


def write_photos(folder: Path, count: int = 8) -> Path:
    """``count`` seeded photos of 40-61 x 36-50 px under ``folder``: PNGs at the top, JPEGs and WebPs
    in a subfolder."""
    for i in range(count):
        kind = ("png", "jpg", "webp")[i % 3]
        where = folder if kind == "png" else folder / "more"
        path = write_image(where / f"p{i}.png", (40 + 3 * i, 36 + 2 * i), seed=10 + i)
        if kind != "png":
            Image.open(path).convert("RGB").save(path.with_suffix(f".{kind}"))
            path.unlink()
    return folder
