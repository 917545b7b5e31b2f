"""Tests of styleforge.stylize.losses.sw: the sliced Wasserstein distance against closed forms,
weighted quantiles, mixtures as blends, and directions fixed per term with the style sorted once."""

from __future__ import annotations

import pytest
import torch

from styleforge.stylize.features import FeatureContext
from styleforge.stylize.losses import SlicedWasserstein, layer_targets, style_terms
from styleforge.stylize.losses.sw import argsort_rows, sliced_wasserstein, sort_rows, sorted_projections


def _directions(c: int, p: int, seed: int = 0) -> torch.Tensor:
    return torch.nn.functional.normalize(
        torch.randn(c, p, generator=torch.Generator().manual_seed(seed)), dim=0
    )


def test_sw_of_a_set_against_a_permutation_of_itself_is_zero() -> None:
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    shuffled = x[torch.randperm(50, generator=torch.Generator().manual_seed(1))]
    assert sliced_wasserstein(x, None, shuffled, None, _directions(8, 8)).item() == pytest.approx(
        0.0, abs=1e-10
    )
    uniform = torch.full((50,), 1 / 50)
    assert sliced_wasserstein(x, uniform, shuffled, uniform, _directions(8, 8)).item() == pytest.approx(
        0.0, abs=1e-10
    )


def test_sw_resamples_a_style_set_of_another_size() -> None:
    """Each point twice is the same distribution: distance 0 through the resampling."""
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    assert sliced_wasserstein(x, None, x.repeat(2, 1), None, _directions(4, 6)).item() == pytest.approx(
        0.0, abs=1e-10
    )


def test_sw_of_a_shifted_set_is_the_mean_squared_projected_shift() -> None:
    x = torch.randn(30, 3, generator=torch.Generator().manual_seed(0))
    shift = torch.tensor([1.0, -2.0, 0.5])
    dirs = _directions(3, 5)
    expected = (shift @ dirs).square().mean()
    assert sliced_wasserstein(x, None, x + shift, None, dirs).item() == pytest.approx(
        expected.item(), rel=1e-5
    )


def test_sw_weighted_quantiles_match_the_unweighted_path_for_equal_weights() -> None:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    t = torch.randn(32, 4, generator=torch.Generator().manual_seed(1)) + 1
    dirs = _directions(4, 4)
    plain = sliced_wasserstein(x, None, t, None, dirs)
    weighted = sliced_wasserstein(x, torch.full((32,), 1 / 32), t, torch.full((32,), 1 / 32), dirs)
    assert weighted.item() == pytest.approx(plain.item(), rel=1e-5)


def test_sw_blend_is_the_weighted_mixture_of_the_samples() -> None:
    a, b = (
        SlicedWasserstein().statistics(torch.zeros(1, 2, 2, 2)),
        SlicedWasserstein().statistics(torch.ones(1, 2, 3, 3)),
    )
    blend = SlicedWasserstein().blend([a, b], [0.75, 0.25])
    assert blend.samples.shape == (4 + 9, 2)
    assert blend.weights[:4].sum().item() == pytest.approx(0.75) and blend.weights[
        4:
    ].sum().item() == pytest.approx(0.25)
    # an output half zeros, half ones is nearer a 50/50 mixture than a 75/25 one
    x = torch.cat([torch.zeros(8, 2), torch.ones(8, 2)])
    dirs = _directions(2, 4)
    even = SlicedWasserstein().blend([a, b], [0.5, 0.5])
    assert sliced_wasserstein(x, None, even.samples, even.weights, dirs) < sliced_wasserstein(
        x, None, blend.samples, blend.weights, dirs
    )
    assert sliced_wasserstein(x, None, even.samples, even.weights, dirs).item() == pytest.approx(
        0.0, abs=1e-6
    )


def test_sw_directions_are_fixed_for_a_term_and_seeded() -> None:
    """One function for the whole run (L-BFGS needs it), with the style's side sorted once."""
    f, x = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 6, 6)

    def values(seed: int) -> list[float]:
        loss = SlicedWasserstein(seed=seed)
        terms = style_terms(loss, ["style.a"], [1.0], [layer_targets(loss, {"l": f})], {"l": 1.0}, [None])
        return [terms["style.a"](FeatureContext(torch.zeros(1, 3, 6, 6), {"l": x})).item() for _ in range(3)]

    first = values(0)
    assert len(set(first)) == 1  # the same directions each evaluation
    assert values(0) == first and values(1) != first


def test_sw_with_the_style_sorted_once_equals_the_direct_distance() -> None:
    g = torch.Generator().manual_seed(5)
    x, target, directions = (
        torch.randn(30, 4, generator=g),
        torch.randn(50, 4, generator=g),
        _directions(4, 4),
    )
    for x_w, t_w in (
        (None, None),
        (torch.full((30,), 1 / 30), None),
        (None, torch.softmax(torch.randn(50, generator=g), 0)),
    ):
        count = 30 if x_w is None and t_w is None else None
        cached = sliced_wasserstein(
            x, x_w, None, None, directions, target_sorted=sorted_projections(target, t_w, directions, count)
        )
        assert cached.item() == pytest.approx(
            sliced_wasserstein(x, x_w, target, t_w, directions).item(), rel=1e-6
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_sort_rows_sorts_as_torch_does_and_passes_the_gradient_back(dtype: torch.dtype) -> None:
    """NumPy's argsort on the CPU (float32, float64), torch.sort otherwise: the same values, and the
    gradient of a sorted-matching loss through either."""
    values = torch.randn(6, 300, generator=torch.Generator().manual_seed(2)).to(dtype).requires_grad_()
    target = torch.randn(6, 300, generator=torch.Generator().manual_seed(3)).to(dtype).sort(dim=1).values
    ours, order = sort_rows(values)
    theirs, their_order = values.sort(dim=1)
    assert torch.equal(ours.detach(), theirs.detach())
    assert torch.equal(values.detach().gather(1, order), ours.detach())
    (grad,) = torch.autograd.grad((ours - target).square().sum(), values)
    (their_grad,) = torch.autograd.grad((theirs - target).square().sum(), values)
    if dtype != torch.bfloat16:  # no ties among 300 random floats: the same permutation
        assert torch.equal(order, their_order)
    torch.testing.assert_close(grad, their_grad)
    assert grad.abs().sum() > 0


def test_the_uniform_distance_and_its_gradient_are_those_of_the_sorted_projections() -> None:
    """The uniform path (the style's value of each sample's rank, put at the sample's place) against
    the plain formula: sort both projections, mean squared difference."""
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x.requires_grad_()
    target = torch.randn(200, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    d = _directions(6, 6).double()
    ours = sliced_wasserstein(x, None, target, None, d)
    plain = ((x @ d).T.sort(dim=1).values - (target @ d).T.sort(dim=1).values).square().mean()
    torch.testing.assert_close(ours, plain)
    (grad,) = torch.autograd.grad(ours, x)
    (plain_grad,) = torch.autograd.grad(plain, x)
    torch.testing.assert_close(grad, plain_grad)
    assert torch.autograd.gradcheck(lambda v: sliced_wasserstein(v, None, target, None, d), (x,))


def test_sort_rows_on_several_threads_is_the_same_order() -> None:
    values = torch.randn(7, 20_000, generator=torch.Generator().manual_seed(6))  # 140,000 values
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = sort_rows(values)[1]
        torch.set_num_threads(3)  # 7 rows in 3 blocks
        three = sort_rows(values)[1]
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, three) and torch.equal(values.gather(1, three), values.sort(dim=1).values)


def _sort_in_child(queue: object) -> None:
    """In the forked child: ranks on 2 threads with no torch kernel (a forked child's own OpenMP team
    is another matter: argsort_rows runs none)."""
    import numpy as np

    rows = np.random.default_rng(7).standard_normal((4, 40_000)).astype(np.float32)
    torch.set_num_threads(2)
    order = argsort_rows(torch.from_numpy(rows)).numpy()
    queue.put(bool((np.take_along_axis(rows, order, 1) == np.sort(rows, axis=1)).all()))  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_process_sorts_on_threads_of_its_own() -> None:
    """A pool made before a fork has no threads in the child: the child makes its own (else it hangs)."""
    import multiprocessing

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        sort_rows(torch.randn(4, 40_000))  # the parent's pool
    finally:
        torch.set_num_threads(before)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sort_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive and queue.get(timeout=5) is True
