"""Tests of ``train-attrs`` in worker processes and under torchrun (2 CPU processes, gloo on
127.0.0.1): the results equal the single-process run up to floating-point noise.

Hard cases on purpose: partial labels (per-term counts differ between the ranks), ``--balance
uncertainty`` (a term that is not a plain mean), batches of 5 split 3 + 2 across the ranks and a last
batch of 1 that leaves rank 1 nothing, ``--resume`` under torchrun, fine-tuning with augmentation.
"""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _attr_helpers import FAST
from _helpers import free_port, torchrun
from click.testing import CliRunner

from styleforge.attributes.synthetic import make_dataset
from styleforge.attributes.train import train_attrs
from styleforge.cli import cli

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not torch.distributed.is_available(),
    reason="needs fork and torch.distributed (gloo)",
)

#: 16 images: with --val-split 0.3, 11 train in batches of 5, 5, 1 (split 3 + 2, 3 + 2, 1 + 0 across
#: the ranks) and 5 validate (3 + 2).
#: (The tests here choose --workers themselves.)
OPTIONS = {
    **{k: v for k, v in FAST.items() if k != "workers"},
    "batch_size": 5,
    "val_split": 0.3,
    "labels": "partial.csv",
    "balance": "uncertainty",
}


@pytest.fixture(scope="module")
def synth16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 synthetic images at 32 px whose labels CSV leaves a third of contrast, a quarter of
    harmony and a fifth of pri_color unlabelled."""
    folder = tmp_path_factory.mktemp("synth16")
    make_dataset(folder, count=16, seed=2, size=32)
    with open(folder / "labels.csv", newline="") as stream:
        rows = list(csv.reader(stream))
    header = rows[0]
    for i, row in enumerate(rows[1:], 1):
        for name, every in (("contrast", 3), ("harmony", 4), ("pri_color", 5)):
            if i % every == 1:
                row[header.index(name)] = ""
    with open(folder / "partial.csv", "w", newline="") as stream:
        csv.writer(stream).writerows(rows)
    return folder


def _history(run: Path) -> list[dict[str, float]]:
    with open(run / "history.csv", newline="") as stream:
        return [{k: float(v) for k, v in row.items() if k != "seconds"} for row in csv.DictReader(stream)]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / "model.safetensors"))


def _assert_same_run(run: Path, reference: Path, *, rtol: float = 1e-4, atol: float = 5e-5) -> None:
    """Same history (every column, every epoch), same best weights, same final scores, up to
    floating-point noise. (Adam's normalised step turns that noise in a near-zero gradient into a
    visible difference: 1.3e-5 in one of the trunk's 491,520 weights, whose largest is 0.05.)"""
    got, want = _history(run), _history(reference)
    assert len(got) == len(want) and [set(r) for r in got] == [set(r) for r in want]
    for a, b in zip(got, want):
        for key, value in b.items():
            if math.isnan(value):
                assert math.isnan(a[key]), key
            else:
                assert a[key] == pytest.approx(value, rel=rtol, abs=1e-7), (int(b["epoch"]), key)
    got_w, want_w = _weights(run), _weights(reference)
    assert got_w.keys() == want_w.keys()
    for key in want_w:
        torch.testing.assert_close(got_w[key], want_w[key], rtol=rtol, atol=atol, msg=key)
    metrics = [json.loads((r / "metrics.json").read_text()) for r in (run, reference)]
    assert (
        metrics[0]["best_epoch"] == metrics[1]["best_epoch"] and metrics[0]["images"] == metrics[1]["images"]
    )
    for key, value in metrics[1]["val"].items():
        assert metrics[0]["val"][key] == pytest.approx(value, rel=rtol, abs=1e-7, nan_ok=True), key


def _torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return torchrun(["train-attrs", *args], cwd)


def _cli_args(options: dict[str, object]) -> list[str]:
    args = []
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def test_torchrun_two_processes_equal_one_and_resume(synth16: Path, tmp_path: Path) -> None:
    single = train_attrs(synth16, tmp_path / "single", workers=0, **OPTIONS)
    assert single.best_epoch >= 1 and single.metrics["images"] == {
        "train": 11,
        "val": 5,
        "test": 0,
        "skipped": 0,
    }
    # 2 epochs under torchrun, then --resume for the third: the same 3 epochs as one process.
    first = _torchrun(["--data", str(synth16), "-o", "ddp", *_cli_args({**OPTIONS, "epochs": 2})], tmp_path)
    epoch_lines = [line for line in first.stderr.splitlines() if line.startswith("epoch ")]
    assert [line.split(" · ")[0] for line in epoch_lines] == ["epoch 1/2", "epoch 2/2"]  # rank 0 only
    assert first.stdout.count("model.safetensors") == 1 and "error" not in first.stderr
    _torchrun(["-o", "ddp", "--resume", "--epochs", "3"], tmp_path)
    _assert_same_run(tmp_path / "ddp", tmp_path / "single")
    assert len(_history(tmp_path / "ddp")) == 3
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(
        p.name for p in (tmp_path / "single").iterdir()
    )


def _finetune_worker(rank: int, port: int, data: str, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE="2",
    )
    result = train_attrs(data, out, finetune=True, workers=1, **{**OPTIONS, "epochs": 2})
    assert (rank == 0) == bool(result.files)  # only rank 0 writes


@pytest.fixture(scope="module")
def finetuned(synth16: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-process fine-tuning run (augmentation on), in the main process."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = tmp_path_factory.mktemp("finetune") / "workers0"
        train_attrs(synth16, run, finetune=True, workers=0, **{**OPTIONS, "epochs": 2})
    finally:
        torch.set_num_threads(before)
    return run


def test_workers_give_the_same_result(synth16: Path, finetuned: Path, tmp_path: Path) -> None:
    train_attrs(synth16, tmp_path / "workers2", finetune=True, workers=2, **{**OPTIONS, "epochs": 2})
    # Each image is decoded and augmented alone with its own seed: the same numbers, whatever the
    # worker that made them.
    _assert_same_run(tmp_path / "workers2", finetuned, rtol=1e-6, atol=1e-7)


def test_finetune_two_processes_equal_one(synth16: Path, finetuned: Path, tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    run = tmp_path / "ddp"
    mp.start_processes(
        _finetune_worker, args=(free_port(), str(synth16), str(run)), nprocs=2, start_method="fork"
    )
    # Adam's normalised steps magnify the float noise of gradients that are nearly 0 (backbone
    # convolutions on batches of 3 + 2 instead of 5): a looser absolute tolerance on weights.
    _assert_same_run(run, finetuned, rtol=1e-4, atol=1e-4)


def test_other_ranks_print_nothing_for_a_usage_error(
    synth16: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["train-attrs", "--data", str(synth16), "-o", str(tmp_path / "run"), "--device", "mps"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, printed in ((0, True), (1, False)):
        monkeypatch.setenv("RANK", str(rank))
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2
        assert (
            "--device: 'mps' is not valid; expected cpu (gloo) or cuda (nccl) under torchrun" in result.output
        ) == printed
    assert not (tmp_path / "run").exists()


def test_workers_option_is_checked_and_may_change_on_resume(synth16: Path, tmp_path: Path) -> None:
    from styleforge.attributes.saved_run import RESUME_OPTIONS
    from styleforge.attributes.train import auto_workers
    from styleforge.config import TrainConfig
    from styleforge.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="--workers: -1 is not valid; expected a whole number >= 0"):
        TrainConfig(workers=-1).validate()
    assert "workers" in RESUME_OPTIONS and 0 <= auto_workers() <= 4 and auto_workers(10**6) == 0
    result = CliRunner().invoke(
        cli, ["train-attrs", "--data", str(synth16), "-o", str(tmp_path / "run"), "--workers", "x"]
    )
    assert result.exit_code == 2 and "--workers" in result.output
