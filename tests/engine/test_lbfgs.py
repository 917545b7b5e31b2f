"""Tests of styleforge.engine.lbfgs.BoxLBFGS: box constraints outside the curvature pairs, the
backtracking line search spread over steps, and independence of the loss's scale."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from styleforge.engine.lbfgs import BoxLBFGS
from styleforge.engine.optimize import DivergenceGuard, OptimizerSpec, optimise_pixels
from styleforge.engine.terms import WeightedLoss


def _run(f, x0: torch.Tensor, steps: int, **kwargs) -> tuple[torch.Tensor, list[float], BoxLBFGS]:
    x = x0.clone().requires_grad_(True)
    opt = BoxLBFGS([x], **kwargs)
    values = []

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        values.append(float(loss.detach()))
        return loss

    for _ in range(steps):
        opt.step(closure)
        assert float(x.detach().min()) >= 0.0 and float(x.detach().max()) <= 1.0  # never outside the box
    return x.detach(), values, opt


def _quadratic(target: torch.Tensor, scales: torch.Tensor):
    return lambda x: (scales * (x - target) ** 2).sum()


def test_reaches_the_projected_minimum_of_a_box_constrained_quadratic() -> None:
    g = torch.Generator().manual_seed(0)
    target = torch.rand(200, generator=g) * 1.6 - 0.3  # a third of the optimum lies outside [0, 1]
    scales = torch.rand(200, generator=g) * 100 + 0.1  # ill-conditioned: 1000:1
    x, values, opt = _run(
        _quadratic(target.double(), scales.double()), torch.full((200,), 0.5, dtype=torch.float64), 60
    )
    assert torch.allclose(x, target.clamp(0, 1).double(), atol=1e-4)
    assert opt.rejections <= 5  # held pixels stay put, so the curvature model stays good
    assert opt.evaluations == 60 and len(opt.s) > 0


def test_the_iterates_do_not_depend_on_the_losss_scale() -> None:
    g = torch.Generator().manual_seed(1)
    target, scales = torch.rand(50, generator=g), torch.rand(50, generator=g) + 0.5
    f = _quadratic(target, scales)
    x1, v1, _ = _run(f, torch.zeros(50), 25)
    x2, v2, _ = _run(lambda x: 1e-9 * f(x), torch.zeros(50), 25)
    assert torch.allclose(x1, x2, atol=1e-5)
    assert v2[-1] == pytest.approx(1e-9 * v1[-1], rel=1e-3)


def test_an_overshooting_proposal_is_rejected_and_the_step_halved() -> None:
    # Steep walls: with lr 50 every quasi-Newton proposal overshoots, so the line search must act.
    f = lambda x: ((x - 0.5) ** 4).sum() * 1e3 + ((x - 0.5) ** 2).sum()
    x, values, opt = _run(f, torch.linspace(0.0, 1.0, 30), 80, lr=50.0)
    assert opt.rejections > 0
    accepted = []  # the losses at accepted points never go up (Armijo)
    best = math.inf
    for value in values:
        if value <= best:
            accepted.append(value)
            best = value
    assert accepted == sorted(accepted, reverse=True)
    assert values[-1] < 1e-2 * values[0] or min(values) < 1e-2 * values[0]


def test_the_divergence_guard_ignores_rejected_proposals() -> None:
    target = torch.full((1, 3, 4, 4), 0.7)

    def objective(x: torch.Tensor):
        loss = WeightedLoss(
            {"wall": lambda ctx: ((ctx - target) ** 4).sum() * 1e3 + ((ctx - target) ** 2).sum()},
            {"wall": 1.0},
        )
        return loss(x)

    init = torch.zeros(1, 3, 4, 4)
    result = optimise_pixels(
        init, objective, [OptimizerSpec("lbfgs", lr=50.0)], iterations=40, guard=DivergenceGuard(1.5)
    )
    assert result.stop_reason == "completed", result.stop_detail
    assert result.best_summary.total < 1e-2 * result.history[0].summary.total


class _HostCopies(TorchDispatchMode):
    """Counts copies of a tensor's value to the host (``item()``, ``float()``, a tensor passed as a
    number): on a GPU each is a device synchronisation. A CPU stand-in for CUDA's sync debug mode."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is torch.ops.aten._local_scalar_dense.default:
            self.count += 1
        return func(*args, **(kwargs or {}))


def test_a_step_with_a_full_history_copies_to_the_host_a_few_times_not_per_pair() -> None:
    g = torch.Generator().manual_seed(4)
    f = _quadratic(torch.rand(300, generator=g), torch.rand(300, generator=g) + 0.1)
    x = torch.full((300,), 0.5, requires_grad=True)
    opt = BoxLBFGS([x], history_size=20)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss

    for _ in range(30):
        opt.step(closure)
    assert len(opt.s) >= 10  # the recursion runs over many pairs
    with _HostCopies() as copies:
        opt.step(closure)
    assert copies.count <= 3  # the loss and the Armijo test, the curvature test, the descent test
