"""Helpers of the attribute tests: the options of fast training runs, small image folders with a labels
CSV written by a test, and a hand-made batch of a 3-attribute schema with partial labels. (A module of
its own, not conftest.py: test modules import from it, and another folder's conftest.py may be the one
imported under that name.)"""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from PIL import Image

from styleforge.attributes.batches import Batch
from styleforge.attributes.kinds import CategoricalAttribute, NumericAttribute
from styleforge.attributes.schema import ACAN_SCHEMA, Schema

#: Options of a fast training run: everything small, seeded and on the CPU, images decoded in this process
#: (worker processes cost more than 24 tiny images; test_train_distributed.py tests them).
FAST = dict(
    backbone="resnet18", weights="random", size=32, batch_size=8, lr=0.01, device="cpu", epochs=3, workers=0
)
#: A tiny run on pretrained VGG-16 features: 8 pictures at 64 px, 2 epochs (with ``synth8``).
HED = dict(
    backbone="vgg16",
    weights="hed",
    size=64,
    batch_size=4,
    lr=0.01,
    device="cpu",
    epochs=2,
    patience=0,
    workers=0,
)

NAMES = list(ACAN_SCHEMA.names)
#: One valid row of the 8 ACAN labels.
GOOD = ["5", "2.5", "10", "1", "7.3", "4", "Yellow-Green", "split-complementary"]


def png(path: Path, color: tuple[int, int, int] = (200, 30, 30), size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), color).save(path)
    return path


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def label_folder(
    tmp_path: Path, rows: list[list[str]], header: list[str] | None = None, images: int = 3
) -> Path:
    """A styleforge-layout folder with ``images`` PNGs a.png, b.png, ... and a labels.csv."""
    for i in range(images):
        png(tmp_path / f"{'abcdefgh'[i]}.png", (40 * i, 100, 200))
    write_csv(tmp_path / "labels.csv", header or ["image", *NAMES], rows)
    return tmp_path


#: Two numeric attributes and a 3-class one.
SMALL = Schema(
    (
        NumericAttribute("contrast"),
        NumericAttribute("repetition"),
        CategoricalAttribute("hue", ("red", "green", "blue")),
    )
)


def small_batch() -> tuple[dict[str, torch.Tensor], Batch]:
    """Outputs of :data:`SMALL`'s heads for 4 images and their labels: contrast labelled on rows 0 and 2,
    repetition on none, hue on rows 0, 1 and 3."""
    outputs = {
        "contrast": torch.tensor([0.5, -0.5, 0.0, 1.0], requires_grad=True),
        "repetition": torch.tensor([0.1, 0.2, 0.3, 0.4], requires_grad=True),
        "hue": torch.tensor(
            [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]], requires_grad=True
        ),
    }
    labels = {
        "contrast": torch.tensor([1.0, float("nan"), 0.0, float("nan")]),
        "repetition": torch.full((4,), float("nan")),
        "hue": torch.tensor([0, 2, -1, 1]),
    }
    return outputs, Batch(torch.zeros(4, 1), labels)
