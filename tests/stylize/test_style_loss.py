"""Tests of styleforge.stylize.style_loss: the W2 and sliced-Wasserstein distances against closed
forms, masked statistics (no gradient outside the mask), linear blends, and the per-style terms."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from styleforge.engine import WeightedLoss
from styleforge.stylize.objective import FeatureContext, LayerMask, StyleTerm, gram, masked_gram
from styleforge.stylize.style_loss import (
    StyleShare,
    blend_targets,
    gaussian,
    layer_targets,
    sliced_wasserstein,
    sorted_projections,
    style_target,
    style_terms,
    trace_sqrt,
    w2_distance,
    w2_to_target,
)


def _spd(c: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(c, 2 * c, generator=g, dtype=torch.float64)
    return a @ a.T / (2 * c) + 0.1 * torch.eye(c, dtype=torch.float64)


# --- W2 -------------------------------------------------------------------------------------------


def test_w2_of_identical_gaussians_is_zero() -> None:
    cov = _spd(6, 0)
    mean = torch.arange(6, dtype=torch.float64)
    assert w2_distance(mean, cov, mean, cov).item() == pytest.approx(0.0, abs=1e-9)


def test_w2_matches_the_closed_form_of_commuting_covariances() -> None:
    """Both covariances diagonal in the same rotated basis: W2² = ‖μ₁−μ₂‖² + Σ(√a_i − √b_i)²."""
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    a, b = (
        torch.tensor([1.0, 4.0, 0.25, 9.0], dtype=torch.float64),
        torch.tensor([2.0, 1.0, 1.0, 16.0], dtype=torch.float64),
    )
    m1, m2 = (
        torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64),
        torch.tensor([1.0, 1.0, 0.0, 3.0], dtype=torch.float64),
    )
    expected = (m1 - m2).square().sum() + (a.sqrt() - b.sqrt()).square().sum()
    got = w2_distance(m1, q @ torch.diag(a) @ q.T, m2, q @ torch.diag(b) @ q.T)
    assert got.item() == pytest.approx(expected.item(), rel=1e-9)


def test_w2_in_one_dimension_is_the_gap_of_means_and_deviations() -> None:
    got = w2_distance(
        torch.tensor([1.0], dtype=torch.float64),
        torch.tensor([[4.0]], dtype=torch.float64),
        torch.tensor([3.0], dtype=torch.float64),
        torch.tensor([[1.0]], dtype=torch.float64),
    )
    assert got.item() == pytest.approx((1 - 3) ** 2 + (2 - 1) ** 2)


def test_w2_gradient_matches_finite_differences() -> None:
    target_cov, target_mean = _spd(4, 2), torch.zeros(4, dtype=torch.float64)
    mean = torch.randn(4, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).requires_grad_(
        True
    )
    root = torch.randn(4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4)).requires_grad_(
        True
    )
    # cov = R Rᵀ + I keeps the argument SPD under the probe's perturbations
    assert torch.autograd.gradcheck(
        lambda m, r: w2_distance(m, r @ r.T + torch.eye(4, dtype=torch.float64), target_mean, target_cov),
        (mean, root),
    )


def test_w2_gradient_is_finite_against_a_style_with_dead_channels() -> None:
    """ReLU features have channels that are always 0: a singular target covariance."""
    features = torch.rand(1, 5, 6, 6)
    features[:, 2] = 0
    target = style_target("w2", features)
    x = torch.rand(1, 5, 6, 6, requires_grad=True)
    mean, cov = gaussian(x)
    t_cov, t_root = target.w2_parts()
    w2_distance(mean, cov, target.mean, t_cov, t_root).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


# --- sliced Wasserstein ---------------------------------------------------------------------------


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


# --- masks ----------------------------------------------------------------------------------------


def test_masked_gram_of_a_full_mask_is_the_gram_and_of_a_half_mask_the_halfs_gram() -> None:
    f = torch.rand(1, 4, 6, 8)
    assert torch.allclose(masked_gram(f, LayerMask(torch.ones(6, 8))), gram(f), atol=1e-6)
    left = torch.zeros(6, 8)
    left[:, :4] = 1
    assert torch.allclose(masked_gram(f, LayerMask(left)), gram(f[..., :4]), atol=1e-6)


def test_a_mask_is_downsampled_with_the_features() -> None:
    mask = torch.zeros(8, 8)
    mask[:4] = 1  # top half
    small = LayerMask(mask).at(torch.zeros(1, 2, 2, 2))
    assert small.shape == (1, 1, 2, 2) and torch.equal(small[0, 0], torch.tensor([[1.0, 1.0], [0.0, 0.0]]))


@pytest.mark.parametrize("kind", ["gram", "w2", "sw"])
def test_a_masked_style_loss_ignores_features_outside_the_mask(kind: str) -> None:
    torch.manual_seed(0)
    style = {"l": torch.rand(1, 4, 8, 8)}
    mask = torch.zeros(8, 8)
    mask[:, :3] = 1
    terms = style_terms(kind, ["style.a"], [1.0], [layer_targets(kind, style)], {"l": 1.0}, [LayerMask(mask)])
    x = torch.rand(1, 4, 8, 8, requires_grad=True)
    value = terms["style.a"](FeatureContext(torch.zeros(1, 3, 8, 8), {"l": x}))
    value.backward()
    assert x.grad[..., :3].abs().sum() > 0
    assert torch.count_nonzero(x.grad[..., 3:]) == 0
    # and changing the features outside the mask does not change the value
    y = x.detach().clone()
    y[..., 3:] = torch.rand(1, 4, 8, 5)
    again = style_terms(kind, ["style.a"], [1.0], [layer_targets(kind, style)], {"l": 1.0}, [LayerMask(mask)])
    assert again["style.a"](FeatureContext(torch.zeros(1, 3, 8, 8), {"l": y})).item() == pytest.approx(
        value.item(), rel=1e-5
    )


@pytest.mark.parametrize("kind", ["w2", "sw"])
def test_a_style_image_mask_takes_the_statistics_from_the_masked_part_only(kind: str) -> None:
    f = torch.rand(1, 3, 6, 6)
    mask = torch.zeros(6, 6)
    mask[:, :2] = 1
    masked = style_target(kind, f, LayerMask(mask))
    cropped = style_target(kind, f[..., :2].contiguous())
    if kind == "w2":
        assert torch.allclose(masked.mean, cropped.mean, atol=1e-6) and torch.allclose(
            masked.second, cropped.second, atol=1e-6
        )
    else:
        assert masked.samples.shape == cropped.samples.shape
        assert torch.allclose(masked.samples.sort(0).values, cropped.samples.sort(0).values)


# --- blends and terms -----------------------------------------------------------------------------


def test_w2_blend_is_linear_in_the_moments_and_a_style_blended_with_itself_is_itself() -> None:
    a, b = style_target("w2", torch.rand(1, 3, 5, 5)), style_target("w2", torch.rand(1, 3, 5, 5) * 2)
    blend = blend_targets([a, b], [0.25, 0.75])
    assert torch.allclose(blend.mean, 0.25 * a.mean + 0.75 * b.mean)
    assert torch.allclose(blend.second, 0.25 * a.second + 0.75 * b.second)
    same = blend_targets([a, a], [0.5, 0.5])
    assert torch.allclose(same.w2_parts()[0], a.w2_parts()[0], atol=1e-6)


def test_sw_blend_is_the_weighted_mixture_of_the_samples() -> None:
    a, b = style_target("sw", torch.zeros(1, 2, 2, 2)), style_target("sw", torch.ones(1, 2, 3, 3))
    blend = blend_targets([a, b], [0.75, 0.25])
    assert blend.samples.shape == (4 + 9, 2)
    assert blend.weights[:4].sum().item() == pytest.approx(0.75) and blend.weights[
        4:
    ].sum().item() == pytest.approx(0.25)
    # an output half zeros, half ones is nearer a 50/50 mixture than a 75/25 one
    x = torch.cat([torch.zeros(8, 2), torch.ones(8, 2)])
    dirs = _directions(2, 4)
    even = blend_targets([a, b], [0.5, 0.5])
    assert sliced_wasserstein(x, None, even.samples, even.weights, dirs) < sliced_wasserstein(
        x, None, blend.samples, blend.weights, dirs
    )
    assert sliced_wasserstein(x, None, even.samples, even.weights, dirs).item() == pytest.approx(
        0.0, abs=1e-6
    )


@pytest.mark.parametrize("kind", ["w2", "sw"])
def test_styles_sharing_a_region_share_one_distance_and_the_parts_add_up(kind: str) -> None:
    styles = [{"l": torch.rand(1, 4, 6, 6)}, {"l": torch.rand(1, 4, 6, 6) * 3}]
    targets = [layer_targets(kind, s) for s in styles]
    terms = style_terms(kind, ["style.a", "style.b"], [0.75, 0.25], targets, {"l": 1.0}, [None, None])
    assert isinstance(terms["style.a"], StyleShare) and terms["style.a"].group is terms["style.b"].group
    loss = WeightedLoss(terms, {"style.a": 7.5, "style.b": 2.5})
    report = loss(FeatureContext(torch.zeros(1, 3, 6, 6), {"l": torch.rand(1, 4, 6, 6)})).summary()
    assert report.raw["style.a"] == report.raw["style.b"]
    assert report.total == pytest.approx(10 * report.raw["style.a"], rel=1e-6)


def test_styles_in_different_regions_get_their_own_distance() -> None:
    top, bottom = torch.zeros(6, 6), torch.zeros(6, 6)
    top[:3], bottom[3:] = 1, 1
    styles = [{"l": torch.rand(1, 4, 6, 6)}, {"l": torch.rand(1, 4, 6, 6) * 3}]
    terms = style_terms(
        "w2",
        ["style.a", "style.b"],
        [0.5, 0.5],
        [layer_targets("w2", s) for s in styles],
        {"l": 1.0},
        [LayerMask(top), LayerMask(bottom)],
    )
    assert terms["style.a"].group is not terms["style.b"].group
    ctx = FeatureContext(torch.zeros(1, 3, 6, 6), {"l": torch.rand(1, 4, 6, 6)})
    assert terms["style.a"](ctx).item() != pytest.approx(terms["style.b"](ctx).item())


def test_gram_terms_stay_one_per_style() -> None:
    styles = [{"l": torch.rand(1, 4, 6, 6)}, {"l": torch.rand(1, 4, 6, 6)}]
    terms = style_terms(
        "gram",
        ["style.a", "style.b"],
        [0.5, 0.5],
        [layer_targets("gram", s) for s in styles],
        {"l": 1.0},
        [None, None],
    )
    assert all(isinstance(t, StyleTerm) for t in terms.values())
    assert torch.allclose(terms["style.a"].targets["l"], gram(styles[0]["l"]))


@pytest.mark.parametrize("kind", ["gram", "w2", "sw"])
def test_each_loss_is_relative_zero_at_the_style_and_one_at_zero_features(kind: str) -> None:
    f = torch.rand(1, 4, 6, 6) + 0.1
    terms = style_terms(kind, ["style.a"], [1.0], [layer_targets(kind, {"l": f})], {"l": 1.0}, [None])
    at_style = terms["style.a"](FeatureContext(torch.zeros(1, 3, 6, 6), {"l": f})).item()
    terms = style_terms(kind, ["style.a"], [1.0], [layer_targets(kind, {"l": f})], {"l": 1.0}, [None])
    at_zero = terms["style.a"](FeatureContext(torch.zeros(1, 3, 6, 6), {"l": torch.zeros_like(f)})).item()
    assert at_style == pytest.approx(0.0, abs=1e-5)
    # w2 and gram are exactly 1 at zero features; sw is 1 in expectation over the directions
    assert at_zero == pytest.approx(1.0, rel=1e-4 if kind != "sw" else 0.5)
    assert math.isfinite(at_zero)


def test_sw_directions_are_fixed_for_a_term_and_seeded() -> None:
    """One function for the whole run (L-BFGS needs it), with the style's side sorted once."""
    f, x = torch.rand(1, 4, 6, 6), torch.rand(1, 4, 6, 6)

    def values(seed: int) -> list[float]:
        terms = style_terms(
            "sw", ["style.a"], [1.0], [layer_targets("sw", {"l": f})], {"l": 1.0}, [None], seed=seed
        )
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


# --- the fast W2 cross term -----------------------------------------------------------------------


def _psd(n: int, rank: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, rank, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T / rank


def test_trace_sqrt_and_its_gradient_in_float64() -> None:
    m = _psd(5, 8, 0)
    values = torch.linalg.eigvalsh(m)
    assert trace_sqrt(m).item() == pytest.approx(values.sqrt().sum().item(), rel=1e-12)
    root = torch.randn(5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_(
        True
    )
    assert torch.autograd.gradcheck(
        lambda r: trace_sqrt(r @ r.T + 0.5 * torch.eye(5, dtype=torch.float64)), (root,)
    )


def test_newton_schulz_gives_the_eigendecomposition_value_and_gradient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Devices without an eigendecomposition (Apple's MPS) take the matrix-product iteration."""
    import styleforge.stylize.style_loss as style_loss

    m = _psd(6, 12, 2).float()

    def value_and_grad() -> tuple[float, torch.Tensor]:
        x = m.clone().requires_grad_(True)
        value = trace_sqrt(x)
        value.backward()
        return value.item(), x.grad

    exact = value_and_grad()
    monkeypatch.setattr(style_loss, "_has_eigh", lambda device: False)
    iterated = value_and_grad()
    assert iterated[0] == pytest.approx(exact[0], rel=1e-4)
    assert torch.allclose(iterated[1], exact[1], rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(
    "shape", [(1, 6, 5, 4), (1, 12, 2, 2)], ids=["positions >= channels", "few positions"]
)
@pytest.mark.parametrize("masked", [False, True])
def test_w2_to_target_equals_the_covariance_form_on_either_side(shape: tuple[int, ...], masked: bool) -> None:
    """Few positions (deep layers of small images) take the N × N side: same value, same gradient."""
    g = torch.Generator().manual_seed(3)
    c = shape[1]
    t_mean, t_cov = torch.rand(c, generator=g, dtype=torch.float64), _psd(c, c + 3, 4)
    root = torch.linalg.cholesky(t_cov)  # any factor would do for the test; the run uses the symmetric root
    root = root @ root.T  # symmetric PSD, not Σₜ^½: the identity holds for any symmetric R
    mask = LayerMask(torch.rand(shape[2], shape[3], generator=g, dtype=torch.float64)) if masked else None
    features = torch.rand(*shape, generator=g, dtype=torch.float64)

    def direct(f: torch.Tensor) -> torch.Tensor:
        mean, cov = gaussian(f, mask)
        cross = trace_sqrt(root @ cov.double() @ root)
        return (mean - t_mean).square().sum() + cov.diagonal().sum() + t_cov.diagonal().sum() - 2 * cross

    x1, x2 = features.clone().requires_grad_(True), features.clone().requires_grad_(True)
    a, b = w2_to_target(x1, mask, t_mean, t_cov, root), direct(x2)
    a.backward()
    b.backward()
    assert a.item() == pytest.approx(
        b.item(), rel=1e-7
    )  # the covariance form sees the zero eigenvalues as rounding
    assert torch.allclose(x1.grad, x2.grad, rtol=1e-6, atol=1e-9)
    if shape[2] * shape[3] > c:  # with fewer positions the centred features have a zero singular value,
        # whose square root of rounding noise defeats finite differences (the analytic sides agree above)
        assert torch.autograd.gradcheck(
            lambda f: w2_to_target(f, mask, t_mean, t_cov, root), (features.clone().requires_grad_(True),)
        )


def test_fast_w2_is_close_to_the_float64_value_and_pixel_gradient_on_real_features(hed_weights) -> None:
    """The run's W2 (float32, either side, floored eigenvalues) against the same distance in float64
    throughout (network included), on HED's VGG-16 features of a real photograph and painting."""
    import copy

    from styleforge.images import load_image, resize_long_side
    from styleforge.nets.vgg import VGGFeatures

    root_dir = Path(__file__).resolve().parents[2] / "samples"
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    net = VGGFeatures("vgg16", layers, state_dict=hed_weights.state_dict)
    net64 = copy.deepcopy(net).double()
    content = resize_long_side(load_image(root_dir / "content.jpg").rgb, 64)[None]
    style = resize_long_side(load_image(root_dir / "style_swirl.jpg").rgb, 64)[None]
    with torch.no_grad():
        targets = {layer: style_target("w2", f) for layer, f in net(style, layers).items()}

    def loss(x: torch.Tensor, network: VGGFeatures, exact: bool) -> torch.Tensor:
        total = torch.zeros((), dtype=x.dtype)
        for layer, f in network(x, layers).items():
            t_cov, t_root = targets[layer].w2_parts()
            t_mean = targets[layer].mean.to(x.dtype)
            if exact:
                value = w2_distance(*gaussian_float64(f), t_mean, t_cov.double(), t_root.double())
            else:
                value = w2_to_target(f, None, t_mean, t_cov, t_root)
            total = total + value / targets[layer].scale.to(x.dtype)
        return total

    x32, x64 = content.clone().requires_grad_(True), content.double().clone().requires_grad_(True)
    fast, exact = loss(x32, net, False), loss(x64, net64, True)
    fast.backward()
    exact.backward()
    assert fast.item() == pytest.approx(exact.item(), rel=1e-3)
    assert ((x32.grad.double() - x64.grad).norm() / x64.grad.norm()).item() < 1e-2


def gaussian_float64(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of (1, C, H, W) float64 features, computed centred in float64."""
    x = features[0].reshape(features.shape[1], -1)
    mean = x.mean(1)
    centred = x - mean[:, None]
    return mean, centred @ centred.T / x.shape[1]
