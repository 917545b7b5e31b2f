"""Transfers on a CUDA device (marked ``gpu``: skipped unless ``--run-gpu`` on a machine with CUDA).

Nothing here has a CPU stand-in that would say the same: the precision the card computes in, the
device synchronisations of the optimiser loop, the allocator's cached memory."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

import styleforge
from styleforge.engine import Progress

pytestmark = pytest.mark.gpu
SAMPLES = Path(__file__).resolve().parents[1] / "samples"


def _transfer(**options):  # type: ignore[no-untyped-def]
    return styleforge.transfer(
        SAMPLES / "content.jpg",
        [SAMPLES / "style_swirl.jpg"],
        device="cuda",
        size=64,
        weights="hed",
        **options,
    )


@pytest.mark.native_precision
@pytest.mark.parametrize("precision", ["auto", "fp32", "tf32", "bf16"])
def test_a_transfer_on_cuda_improves_in_every_precision(precision: str) -> None:
    result = _transfer(precision=precision, iterations=20)
    assert result.improved and result.stop_reason == "completed", result.stop_detail
    assert result.image.device.type == "cpu" and result.image.dtype == torch.float32
    assert result.summary.total < 0.7 * result.history[0].summary.total


def test_bf16_and_fp32_reach_close_losses_on_cuda() -> None:
    totals = [_transfer(precision=p, iterations=30).summary.total for p in ("fp32", "bf16")]
    assert abs(totals[1] - totals[0]) / totals[0] < 0.05


def test_lbfgs_synchronises_the_device_a_few_times_per_iteration_not_per_curvature_pair() -> None:
    steps: list[int] = []
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _transfer(
                iterations=40, callbacks=[lambda e: isinstance(e, Progress) and steps.append(len(caught))]
            )
    finally:
        torch.cuda.set_sync_debug_mode("default")
    per_step = [b - a for a, b in zip(steps[20:], steps[21:])]  # after 20 steps: a history of pairs
    assert per_step and max(per_step) <= 8, per_step


def test_a_second_run_sees_the_memory_the_first_left_cached() -> None:
    from styleforge.stylize.memory import available_bytes

    _transfer(iterations=2)
    free, _ = torch.cuda.mem_get_info()
    cached = torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
    assert cached > 0 and available_bytes(torch.device("cuda")) >= free + cached - 2**20


def test_w2_on_cuda_matches_the_cpu() -> None:
    from styleforge.stylize.losses import W2Loss
    from styleforge.stylize.losses.w2 import w2_to_target

    g = torch.Generator().manual_seed(0)
    style, x = torch.rand(1, 64, 20, 20, generator=g), torch.rand(1, 64, 20, 20, generator=g)
    values = []
    for device in ("cpu", "cuda"):
        target = W2Loss().statistics(style.to(device))
        t_cov, t_root = target.cov_and_root()
        values.append(w2_to_target(x.to(device), None, target.mean, t_cov, t_root).item())
    assert values[1] == pytest.approx(values[0], rel=1e-3)
