"""Tests of styleforge.stylize.features: the Gram matrix (values, normalisation, its one-product
gradient in either memory layout), masks downsampled with the features, the masked Gram matrix, MSE,
and the per-evaluation cache of the FeatureContext."""

from __future__ import annotations

import pytest
import torch

from styleforge.stylize.features import FeatureContext, LayerMask, gram, masked_gram, mse


def test_gram_matches_a_hand_computation() -> None:
    # (B=1, C=2, H=2, W=3)
    values = [[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], [[-1.0, 0.0, 2.0], [0.5, -3.0, 1.0]]]
    features = torch.tensor([values])
    c, h, w = 2, 2, 3
    flat = [[v for row in channel for v in row] for channel in values]
    expected = [
        [sum(a * b for a, b in zip(flat[i], flat[j])) / (c * h * w) for j in range(c)] for i in range(c)
    ]
    # e.g. G[0][0] = (1+4+9+16+25+36)/12 = 91/12
    assert expected[0][0] == pytest.approx(91 / 12)
    result = gram(features)
    assert result.shape == (1, 2, 2)
    assert torch.allclose(result[0], torch.tensor(expected), rtol=0, atol=1e-6)


def test_gram_is_batched_symmetric_and_normalised_by_chw() -> None:
    g = torch.Generator().manual_seed(0)
    features = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64)
    result = gram(features)
    assert result.shape == (3, 4, 4)
    assert torch.allclose(result, result.transpose(1, 2))
    for b in range(3):
        flat = features[b].reshape(4, -1)
        assert torch.allclose(result[b], flat @ flat.T / (4 * 5 * 6))
    # Doubling H·W with the same statistics keeps the Gram matrix (it is a mean, not a sum).
    tiled = torch.cat([features, features], dim=-1)
    assert torch.allclose(gram(tiled), result)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_gradient_is_exact_in_either_memory_layout(layout: torch.memory_format) -> None:
    # The one-product backward must equal autograd's two-product gradient of F Fᵀ / (C·H·W), for a
    # non-symmetric upstream gradient too, and hand the gradient back in the activation's layout.
    g = torch.Generator().manual_seed(2)
    features = torch.randn(2, 5, 3, 4, generator=g, dtype=torch.float64).contiguous(memory_format=layout)
    assert torch.autograd.gradcheck(gram, (features.requires_grad_(True),))
    upstream = torch.randn(2, 5, 5, generator=g, dtype=torch.float64)
    (ours,) = torch.autograd.grad((gram(features) * upstream).sum(), features)
    flat = features.reshape(2, 5, 12)
    reference = torch.bmm(flat, flat.transpose(1, 2)) / 60
    (expected,) = torch.autograd.grad((reference * upstream).sum(), features)
    assert torch.allclose(ours, expected, rtol=1e-12, atol=1e-12)
    assert ours.is_contiguous(memory_format=layout)


def test_mse_matches_torch_and_keeps_the_layout() -> None:
    g = torch.Generator().manual_seed(3)
    a = (
        torch.randn(1, 4, 3, 5, generator=g)
        .contiguous(memory_format=torch.channels_last)
        .requires_grad_(True)
    )
    b = torch.randn(1, 4, 3, 5, generator=g)
    assert torch.allclose(mse(a, b), torch.nn.functional.mse_loss(a, b))
    mse(a, b).backward()
    assert a.grad is not None and a.grad.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(a.grad, 2 * (a - b).detach() / a.numel())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 8, 40, 40), (2, 3, 7), (5,)])
def test_mse_is_the_float64_mean_square_and_its_gradient_in_the_inputs_type(
    dtype: torch.dtype, shape: tuple[int, ...]
) -> None:
    """Within float32's rounding of the float64 value for every size (12,800 values: 12 rows of 1,024
    and a rest), the gradient in ``a``'s type and layout, and into ``b`` too when it asks for one."""
    g = torch.Generator().manual_seed(len(shape))
    a = torch.randn(*shape, generator=g).to(dtype)
    if len(shape) == 4:
        a = a.contiguous(memory_format=torch.channels_last)
    a.requires_grad_(True)
    b = torch.randn(*shape, generator=g).to(dtype).requires_grad_(True)
    value = mse(a, b)
    exact = (a.detach().double() - b.detach().double()).square().mean()
    assert value.dtype == torch.promote_types(dtype, torch.float32)
    assert value.item() == pytest.approx(exact.item(), rel=1e-6 if dtype != torch.float64 else 1e-12)
    value.backward()
    assert (
        a.grad is not None and b.grad is not None and a.grad.dtype == dtype and a.grad.stride() == a.stride()
    )
    expected = 2 * (a.detach().double() - b.detach().double()) / a.numel()
    assert torch.allclose(a.grad.double(), expected, rtol=1e-2 if dtype == torch.bfloat16 else 1e-6)
    assert torch.allclose(b.grad.double(), -expected, rtol=1e-2 if dtype == torch.bfloat16 else 1e-6)


def test_mse_passes_gradcheck() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(3, 1030, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(mse, (a, b))


def test_mse_stays_float32_under_autocast_and_broadcasts() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 3000, generator=g, requires_grad=True)
    b = torch.randn(4, 3000, generator=g)
    exact = (a.detach().double() - b.double()).square().mean().item()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert mse(a, b).item() == pytest.approx(exact, rel=1e-6)
    row = torch.randn(1, 3000, generator=g, requires_grad=True)
    assert mse(row, b).item() == pytest.approx((row.detach() - b).square().mean().item(), rel=1e-6)
    mse(row, b).backward()
    assert row.grad is not None and row.grad.shape == row.shape


def test_mse_has_the_right_second_derivative() -> None:
    """In a sum with another term, the Hessian keeps mse's 2/n on its diagonal."""
    g = torch.Generator().manual_seed(2)
    a, b = (torch.randn(2, 600, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradgradcheck(mse, (a, b))
    x = torch.randn(5, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.randn(5, generator=g, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(lambda v: mse(v, target) + (v**3).sum(), x)
    assert torch.allclose(hessian, torch.diag(2 / 5 + 6 * x.detach()))


def test_feature_context_caches_each_gram() -> None:
    features = {"l": torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))}
    ctx = FeatureContext(torch.zeros(1, 3, 4, 4), features)
    first = ctx.gram("l")
    assert ctx.gram("l") is first
    assert torch.allclose(first, gram(features["l"]))


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
