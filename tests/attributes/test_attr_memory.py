"""train-attrs, score and make-dataset check their --size and --batch-size against the memory
available before any image is decoded (through the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _helpers import invoke, one_line_error

from styleforge import device
from styleforge.attributes import memory, synthetic
from styleforge.attributes import train as train_module

GIB = 2**30
FAST = ["--backbone", "resnet18", "--weights", "random", "--size", "32", "--device", "cpu", "--workers", "0"]


@pytest.fixture
def eight_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    """8 GiB free, whatever this machine has."""
    monkeypatch.setattr(device, "available_memory", lambda dev: 8 * GIB)
    monkeypatch.setattr(memory, "available_memory", lambda dev: 8 * GIB)
    monkeypatch.setattr(synthetic, "cpu_memory_available", lambda: 8 * GIB)


def test_train_attrs_refuses_a_size_that_does_not_fit_before_reading_images(
    data24: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, eight_gib: None
) -> None:
    def no_images(*args: object, **kwargs: object) -> None:
        raise AssertionError("images were decoded before the memory check")

    monkeypatch.setattr(train_module, "load_images", no_images)
    line = one_line_error(
        invoke(
            "train-attrs",
            "--data",
            data24,
            "-o",
            tmp_path / "run",
            "--backbone",
            "resnet18",
            "--weights",
            "random",
            "--device",
            "cpu",
            "--size",
            "100000",
        ),
        code=1,
    )
    assert line.startswith("error: --size 100000 with 24 images: ") and "8.0 GiB is available" in line
    line = one_line_error(
        invoke(
            "train-attrs",
            "--data",
            data24,
            "-o",
            tmp_path / "run",
            "--backbone",
            "resnet50",
            "--weights",
            "random",
            "--device",
            "cpu",
            "--size",
            "1024",
            "--finetune",
            "--batch-size",
            "64",
        ),
        code=1,
    )
    assert (
        line.startswith("error: --size 1024 --batch-size 64: ") and "--batch-size" in line.split("try", 1)[1]
    )
    assert not (tmp_path / "run").exists()


def test_the_estimate_grows_with_what_the_options_set() -> None:
    frozen = memory.training_bytes("resnet50", 500, 256, 32, finetune=False)
    assert memory.training_bytes("resnet50", 500, 512, 32, finetune=False) > 3 * frozen  # pixels
    assert memory.training_bytes("resnet50", 5000, 256, 32, finetune=False) > frozen  # images held
    tuned = memory.training_bytes("resnet50", 500, 256, 32, finetune=True)
    assert tuned > frozen and memory.training_bytes("resnet50", 500, 256, 64, finetune=True) > tuned  # batch
    assert memory.scoring_bytes("vgg16", 256, 32) > memory.scoring_bytes("vgg16", 256, 16)


def test_score_refuses_a_batch_that_does_not_fit_and_suggests_one_that_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = synthetic.make_dataset(tmp_path / "data", count=8, seed=0, size=32).parent
    run = tmp_path / "run"
    assert invoke("train-attrs", "--data", data, "-o", run, *FAST, "--epochs", 1, "--quiet").exit_code == 0
    free = memory.scoring_bytes("resnet18", 32, 100)
    monkeypatch.setattr(device, "available_memory", lambda dev: free)
    monkeypatch.setattr(memory, "available_memory", lambda dev: free)
    line = one_line_error(invoke("score", run, data / "images", "--batch-size", "1000"), code=1)
    assert (
        line.startswith("error: --batch-size 1000 (images of 32 px for this model): ")
        and "--batch-size 100" in line
    )
    assert invoke("score", run, data / "images", "--batch-size", "100").exit_code == 0


def test_make_dataset_refuses_a_size_that_does_not_fit(tmp_path: Path, eight_gib: None) -> None:
    line = one_line_error(invoke("make-dataset", tmp_path / "set", "--count", 2, "--size", 100000), code=1)
    assert line.startswith("error: --size 100000: ") and "a smaller --size" in line
    assert not (tmp_path / "set").exists()
