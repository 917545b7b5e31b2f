"""``train-stylizer`` under torchrun (2 CPU processes, gloo on 127.0.0.1): each global batch of crops is
split across the ranks, and the run equals the single-process one up to floating-point noise."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import torch
from _ff_helpers import FAST
from _helpers import torchrun
from safetensors.torch import load_file

from styleforge.feedforward.train import train_stylizer

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not torch.distributed.is_available(),
    reason="needs torch.distributed (gloo)",
)


def _history(run: Path) -> list[dict[str, float]]:
    with open(run / "history.csv", newline="") as stream:
        return [{k: float(v) for k, v in row.items() if k != "seconds"} for row in csv.DictReader(stream)]


def test_torchrun_two_processes_equal_one(photos: Path, style: Path, tmp_path: Path) -> None:
    val = tmp_path / "val"
    val.mkdir()
    for p in sorted(photos.glob("*.png"))[:2]:
        (val / p.name).write_bytes(p.read_bytes())
    options = {**FAST, "batch_size": 4, "iterations": 4}
    single = train_stylizer(photos, tmp_path / "single", [str(style)], val=val, **options)
    args: list[str] = []
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", ",".join(value) if isinstance(value, tuple) else str(value)]
    done = torchrun(
        ["train-stylizer", "--style", str(style), "--data", str(photos), "--val", str(val), "-o", "ddp"]
        + ["--device", "cpu", *args],
        tmp_path,
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("iter ")]
    assert [line.split(" · ")[0] for line in lines] == ["iter 2/4", "iter 4/4"]  # rank 0 alone prints
    got, want = _history(tmp_path / "ddp"), _history(tmp_path / "single")
    assert len(got) == len(want) == len(single.history)
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for key in b:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-7), key
    mine, theirs = (
        load_file(str(tmp_path / "ddp" / "model.safetensors")),
        load_file(str(tmp_path / "single" / "model.safetensors")),
    )
    for key in theirs:
        torch.testing.assert_close(mine[key], theirs[key], rtol=1e-4, atol=1e-4, msg=key)
