"""Tests of styleforge.engine.distributed with styleforge.engine.fit: the sharding arithmetic, and a
2-process gloo run (on 127.0.0.1) that equals the single-process run, for Adam and L-BFGS, with a
masked term (per-term counts), an uncounted regulariser, uneven shares and an empty share, and a stop
that only rank 0 asks for (Ctrl-C) ending both ranks after the same step."""

from __future__ import annotations

import math
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from styleforge.engine import BatchProgress, WeightedLoss, fit
from styleforge.engine.distributed import Distributed, env_world, init_distributed, process_rank, reduce_terms
from styleforge.engine.interrupt import Interrupt
from styleforge.errors import InvalidParameter

_G = torch.Generator().manual_seed(0)
X = torch.randn(29, 3, generator=_G)
Y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(29, generator=_G)
Y_MASKED = torch.where(torch.arange(29) % 3 == 0, torch.tensor(float("nan")), Y)  # a third unlabelled
N_TRAIN, BATCH = 25, 6  # 5 global batches of 6, 6, 6, 6, 1: the last one leaves rank 1 nothing


def _masked_mse(out: torch.Tensor, batch: tuple) -> torch.Tensor:
    keep = ~torch.isnan(batch[2])
    return ((out[keep] - batch[2][keep]) ** 2).mean() if bool(keep.any()) else out.sum() * 0.0


class _Metric:
    """Mean absolute error over a pass, with the distributed hook."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0.0

    def update(self, outputs: torch.Tensor, batch: tuple) -> None:
        self.total += float((outputs - batch[1]).abs().sum())
        self.count += len(batch[1])

    def all_reduce(self, reduce) -> None:
        self.total, self.count = reduce(torch.tensor([self.total, self.count], dtype=torch.float64)).tolist()

    def compute(self) -> dict[str, float]:
        return {"mae.y": self.total / self.count}


def _loss(weight: torch.Tensor) -> WeightedLoss:
    """A masked term (counted by its labelled values), an L1 term (counted by the batch's length) and a
    regulariser counted by nobody (the same on every rank)."""
    return WeightedLoss(
        {
            "masked": _masked_mse,
            "l1": lambda out, batch: (out - batch[1]).abs().mean() if len(batch[1]) else out.sum() * 0.0,
            "reg": lambda out, batch: (weight**2).sum(),
        },
        {"l1": 0.5, "reg": 0.01},
    )


def _counts(batch: tuple) -> dict[str, float]:
    return {"masked": float((~torch.isnan(batch[2])).sum()), "l1": float(len(batch[1]))}


def _run(
    dist: Distributed | None, optimizer: str, stop_at: tuple[int, int] | None = None
) -> tuple[list[dict[str, float]], dict[str, torch.Tensor], str]:
    """The run's history, final weights and stop reason. ``stop_at``: (epoch, batch) after which rank 0
    alone (as one process would) asks to stop, as its Ctrl-C would."""
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    weight = model.weight

    def part(order: torch.Tensor) -> torch.Tensor:
        return order[dist.shard(len(order))] if dist is not None else order

    def train(generator: torch.Generator) -> list[tuple]:
        order = torch.randperm(N_TRAIN, generator=generator)
        parts = [part(order[i : i + BATCH]) for i in range(0, N_TRAIN, BATCH)]
        return [(X[p], Y[p], Y_MASKED[p]) for p in parts]

    def val() -> list[tuple]:
        p = part(torch.arange(N_TRAIN, 29))
        return [(X[p], Y[p], Y_MASKED[p])]

    loss = _loss(weight)
    flag = Interrupt()

    def on_event(event: object) -> None:
        if (
            isinstance(event, BatchProgress)
            and (event.epoch, event.batch) == stop_at
            and (dist is None or dist.is_main)
        ):
            flag.requested = True

    result = fit(
        model,
        lambda batch: model(batch[0])[:, 0],
        loss,
        train,
        val,
        epochs=4,
        optimizer=optimizer,
        counts=_counts,
        metrics=_Metric,
        seed=3,
        dist=dist,
        callbacks=[on_event],
        interrupt=flag,
    )
    history = [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]
    return history, {k: v.detach().clone() for k, v in model.state_dict().items()}, result.stop_reason


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE="2",
    )
    dist = init_distributed("cpu")
    assert dist is not None and dist.backend == "gloo" and dist.world_size == 2 and process_rank() == rank
    results = {name: _run(dist, name) for name in ("adam@0.05", "lbfgs")}
    results["stopped"] = _run(dist, "adam@0.05", stop_at=(3, 2))
    torch.save(results, f"{out}.{rank}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _close(a: list[dict[str, float]], b: list[dict[str, float]], rel: float) -> None:
    assert len(a) == len(b) and [set(r) for r in a] == [set(r) for r in b]
    for ra, rb in zip(a, b):
        for key in ra:
            assert ra[key] == pytest.approx(rb[key], rel=rel, abs=1e-9), key


def test_shard_bounds_split_like_tensor_split() -> None:
    for n in (0, 1, 5, 6, 7):
        for world in (1, 2, 3):
            bounds = [
                Distributed(r, world, r, world, "gloo", torch.device("cpu")).shard_bounds(n)
                for r in range(world)
            ]
            sizes = [len(t) for t in torch.tensor_split(torch.arange(n), world)]
            assert [hi - lo for lo, hi in bounds] == sizes
            assert (
                bounds[0][0] == 0
                and bounds[-1][1] == n
                and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            )


def test_environment_detection_and_device_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert env_world() is None and process_rank() == 0 and init_distributed("cpu") is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    assert init_distributed("cpu") is None  # torchrun with one process: the plain single-process path
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert env_world() == (1, 2, 1, 2) and process_rank() == 1
    with pytest.raises(
        InvalidParameter, match="--device: 'mps'.*cpu \\(gloo\\) or cuda \\(nccl\\) under torchrun"
    ):
        init_distributed("mps")
    with pytest.raises(InvalidParameter, match="--device: 'gpu'"):
        init_distributed("gpu")


class _Twins(Distributed):
    """A 2-rank world whose other rank holds the same part: a sum over the ranks is twice this one."""

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor * 2


def test_a_distributed_step_sums_its_terms_like_the_single_process_loss() -> None:
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    loss = _loss(model.weight)
    batch = (X[:6], Y[:6], Y_MASKED[:6])
    out = model(batch[0])[:, 0]
    # One process on the global batch (this part twice) has the same means as each part.
    single = loss(out, batch).summary()
    step = reduce_terms(
        _Twins(0, 2, 0, 2, "gloo", torch.device("cpu")),
        {n: t(out, batch) for n, t in loss.terms.items()},
        batch,
        _counts,
    )
    assert step.raw == pytest.approx(single.raw, rel=1e-12) and step.shares == {
        "masked": 0.5,
        "l1": 0.5,
        "reg": 0.5,
    }
    assert step.counts == {"masked": 8.0, "l1": 12.0, "reg": 0.0} and step.finite and not step.stop
    total = step.total(loss.weights)
    assert total == pytest.approx(single.total, rel=1e-6)  # (the report weighs in float32)
    assert total == math.fsum(loss.weights[n] * v for n, v in step.raw.items())  # Σ weight × raw, exactly
    assert total != math.fsum(step.raw.values())  # the weights count (0.5 and 0.01, not 1)
    assert reduce_terms(
        _Twins(1, 2, 1, 2, "gloo", torch.device("cpu")),
        {"reg": loss.terms["reg"](out, batch)},
        batch,
        None,
        stop=True,
    ).stop


@pytest.mark.skipif(
    sys.platform != "linux" or not torch.distributed.is_available(), reason="needs fork and gloo"
)
def test_two_processes_equal_one(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    out = str(tmp_path / "result")
    mp.start_processes(_worker, args=(_free_port(), out), nprocs=2, start_method="fork")
    ranks = [torch.load(f"{out}.{r}", weights_only=True) for r in range(2)]
    for name, optimizer, stop_at in (
        ("adam@0.05", "adam@0.05", None),
        ("lbfgs", "lbfgs", None),
        ("stopped", "adam@0.05", (3, 2)),
    ):
        single_history, single_state, single_reason = _run(None, optimizer, stop_at)
        for history, state, reason in (ranks[0][name], ranks[1][name]):
            _close(history, single_history, 1e-5)  # every rank holds the global values
            for key in single_state:
                torch.testing.assert_close(state[key], single_state[key], rtol=1e-5, atol=1e-6)
            assert reason == single_reason == ("interrupted" if stop_at else "completed")
        assert single_history[-1]["val_loss"] < single_history[0]["val_loss"]
        # rank 1 was never asked: it stopped after the same step as rank 0 (else it would hang or run on)
        assert len(single_history) == (2 if stop_at else 4)
        for row in single_history:
            assert row["loss"] == math.fsum(row[f"loss.{t}"] for t in ("masked", "l1", "reg"))
