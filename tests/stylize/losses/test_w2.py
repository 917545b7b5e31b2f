"""Tests of styleforge.stylize.losses.w2: the W2 distance against closed forms and finite
differences, a singular style covariance, linear blends, and the fast cross term (either side, the
Newton–Schulz fallback, real features against float64)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from styleforge.stylize.features import LayerMask
from styleforge.stylize.losses import W2Loss
from styleforge.stylize.losses.w2 import gaussian, trace_sqrt, w2_distance, w2_to_target


def _spd(c: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(c, 2 * c, generator=g, dtype=torch.float64)
    return a @ a.T / (2 * c) + 0.1 * torch.eye(c, dtype=torch.float64)


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
    target = W2Loss().statistics(features)
    x = torch.rand(1, 5, 6, 6, requires_grad=True)
    mean, cov = gaussian(x)
    t_cov, t_root = target.cov_and_root()
    w2_distance(mean, cov, target.mean, t_cov, t_root).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_w2_blend_is_linear_in_the_moments_and_a_style_blended_with_itself_is_itself() -> None:
    a, b = W2Loss().statistics(torch.rand(1, 3, 5, 5)), W2Loss().statistics(torch.rand(1, 3, 5, 5) * 2)
    blend = W2Loss().blend([a, b], [0.25, 0.75])
    assert torch.allclose(blend.mean, 0.25 * a.mean + 0.75 * b.mean)
    assert torch.allclose(blend.second, 0.25 * a.second + 0.75 * b.second)
    same = W2Loss().blend([a, a], [0.5, 0.5])
    assert torch.allclose(same.cov_and_root()[0], a.cov_and_root()[0], atol=1e-6)


# --- the fast W2 cross term ------------------------------------------------------------------------


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
    from styleforge.stylize.losses import w2

    m = _psd(6, 12, 2).float()

    def value_and_grad() -> tuple[float, torch.Tensor]:
        x = m.clone().requires_grad_(True)
        value = trace_sqrt(x)
        value.backward()
        return value.item(), x.grad

    exact = value_and_grad()
    monkeypatch.setattr(w2, "_has_eigh", lambda device: False)
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

    root_dir = Path(__file__).resolve().parents[3] / "samples"
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    net = VGGFeatures("vgg16", layers, state_dict=hed_weights.state_dict)
    net64 = copy.deepcopy(net).double()
    content = resize_long_side(load_image(root_dir / "content.jpg").rgb, 64)[None]
    style = resize_long_side(load_image(root_dir / "style_swirl.jpg").rgb, 64)[None]
    with torch.no_grad():
        targets = {layer: W2Loss().statistics(f) for layer, f in net(style, layers).items()}

    def loss(x: torch.Tensor, network: VGGFeatures, exact: bool) -> torch.Tensor:
        total = torch.zeros((), dtype=x.dtype)
        for layer, f in network(x, layers).items():
            t_cov, t_root = targets[layer].cov_and_root()
            t_mean = targets[layer].mean.to(x.dtype)
            if exact:
                value = w2_distance(*gaussian_float64(f), t_mean, t_cov.double(), t_root.double())
            else:
                value = w2_to_target(f, None, t_mean, t_cov, t_root)
            total = total + value / targets[layer].magnitude.to(x.dtype)
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
