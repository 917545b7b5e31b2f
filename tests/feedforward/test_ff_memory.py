"""The memory a stylizer's training step needs, and the check that refuses a run that would not fit
(before any photo is read), naming a batch size or crop size that fits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _ff_helpers import FAST
from _helpers import invoke, one_line_error

from styleforge.errors import ResourceError
from styleforge.feedforward import memory
from styleforge.feedforward.memory import TRAIN_FIXED_BYTES, check_training_memory, training_bytes

CPU = torch.device("cpu")


def test_the_estimate_grows_with_the_batch_the_crops_and_the_width() -> None:
    base = training_bytes(128, 4, 16)
    assert base - TRAIN_FIXED_BYTES == 4 * 128 * 128 * (4000 + 170 * 16)
    assert training_bytes(128, 8, 16) - TRAIN_FIXED_BYTES == 2 * (base - TRAIN_FIXED_BYTES)
    assert training_bytes(256, 4, 16) - TRAIN_FIXED_BYTES == 4 * (base - TRAIN_FIXED_BYTES)
    assert training_bytes(128, 4, 32) > base


def test_a_run_that_fits_passes_and_one_that_does_not_names_what_would() -> None:
    need = training_bytes(256, 8, 32)
    assert check_training_memory(256, 8, 32, CPU, available=need) == need
    free = training_bytes(256, 3, 32)  # room for 3 crops of 256 px
    with pytest.raises(ResourceError) as caught:
        check_training_memory(256, 8, 32, CPU, available=free)
    message = str(caught.value)
    assert message.startswith("--batch-size 8 --size 256: this needs about ")
    assert "try --batch-size 3, --size 144, free memory" in message
    with pytest.raises(ResourceError, match=r"try free memory$"):  # not even one 16 px crop
        check_training_memory(256, 8, 32, CPU, available=TRAIN_FIXED_BYTES)


def test_train_stylizer_refuses_in_one_line_before_reading_the_photos(
    photos: Path, style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_memory", lambda device: training_bytes(32, 1, 4))
    args = ["train-stylizer", "--style", style, "--data", photos, "-o", tmp_path / "run"]
    for key in ("size", "batch_size", "width", "weights", "network", "iterations"):
        args += [f"--{key.replace('_', '-')}", FAST[key]]
    line = one_line_error(invoke(*args), code=1)
    assert line.startswith("error: --batch-size 2 --size 32: this needs about ")
    assert line.endswith("try --batch-size 1, --size 16, free memory")
    assert not (tmp_path / "run").exists()


def test_processes_share_the_batch_and_on_a_cpu_the_memory() -> None:
    one = training_bytes(128, 4, 16)
    assert check_training_memory(128, 8, 16, CPU, processes=2, available=2 * one) == 2 * one
    assert check_training_memory(128, 8, 16, torch.device("cuda"), processes=2, available=one) == one
    assert check_training_memory(128, 7, 16, CPU, processes=2, available=2 * one) == 2 * one  # 4 + 3
    with pytest.raises(ResourceError, match=r"try --batch-size 6, --size"):  # global sizes, 3 a process
        check_training_memory(128, 8, 16, CPU, processes=2, available=2 * training_bytes(128, 3, 16))
