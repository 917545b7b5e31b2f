"""Tests of styleforge.stylize.losses.gram: one relative Gram term per style, whose weighted sum has
the gradient of one blended target."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from styleforge.engine import WeightedLoss
from styleforge.stylize.features import FeatureContext, gram
from styleforge.stylize.losses import GramLoss, GramTerm, layer_targets, style_terms


class _TinyNet(nn.Module):
    """A seeded random two-layer conv net standing in for VGG."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1).double()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, stride=2).double()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        r1 = torch.relu(self.conv1(x))
        r2 = torch.relu(self.conv2(r1))
        return {"l1": r1, "l2": r2}


def _grad(loss: WeightedLoss, net: _TinyNet, image: torch.Tensor) -> tuple[torch.Tensor, float]:
    x = image.clone().requires_grad_(True)
    report = loss(FeatureContext(x, net(x)))
    report.total.backward()
    return x.grad.detach(), report.total.item()


@pytest.mark.parametrize("blend", [[0.75, 0.25], [0.2, 0.3, 0.5], [1.0]])
def test_per_style_sum_and_blended_target_give_the_same_gradient(blend: list[float]) -> None:
    g = torch.Generator().manual_seed(3)
    net = _TinyNet()
    image = torch.rand(1, 3, 12, 10, generator=g, dtype=torch.float64)
    styles = [torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64) for _ in blend]
    with torch.no_grad():
        targets = [GramLoss().targets(net(s)) for s in styles]
    layer_w = {"l1": 0.3, "l2": 0.7}
    style_weight = 1e3

    per_style = WeightedLoss(
        {f"style.s{i}": GramTerm(t, layer_w) for i, t in enumerate(targets)},
        {f"style.s{i}": style_weight * b for i, b in enumerate(blend)},
    )
    # Each style's error is relative to its own Gram's mean square n_il, so the equivalent single
    # target is the mean of the targets weighted by c_il = b_i / n_il, with layer factor Σ_i c_il.
    c = [{layer: b / t[layer].square().mean() for layer in layer_w} for b, t in zip(blend, targets)]
    factor = {layer: sum(ci[layer] for ci in c) for layer in layer_w}
    blended_targets = {
        layer: sum(ci[layer] * t[layer] for ci, t in zip(c, targets)) / factor[layer] for layer in layer_w
    }
    blended_w = {
        layer: w * float(factor[layer] * blended_targets[layer].square().mean())
        for layer, w in layer_w.items()
    }
    blended = WeightedLoss({"style": GramTerm(blended_targets, blended_w)}, {"style": style_weight})

    grad_sum, value_sum = _grad(per_style, net, image)
    grad_blend, value_blend = _grad(blended, net, image)
    assert grad_sum.abs().max() > 0
    assert torch.allclose(grad_sum, grad_blend, rtol=1e-9, atol=1e-12)
    # The values differ by a constant that does not depend on the image (zero for one style).
    other = torch.rand(1, 3, 12, 10, generator=g, dtype=torch.float64)
    _, other_sum = _grad(per_style, net, other)
    _, other_blend = _grad(blended, net, other)
    assert value_sum - value_blend == pytest.approx(other_sum - other_blend, rel=1e-9, abs=1e-9)
    assert value_sum >= value_blend - 1e-12
    if len(blend) == 1:
        assert value_sum == pytest.approx(value_blend, rel=1e-12)


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
    assert all(isinstance(t, GramTerm) for t in terms.values())
    assert torch.allclose(terms["style.a"].targets["l"], gram(styles[0]["l"]))


def test_gram_targets_are_each_layers_gram_matrix() -> None:
    features = {"l": torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))}
    targets = GramLoss().targets(features)
    assert set(targets) == {"l"} and torch.allclose(targets["l"], gram(features["l"]))


def test_the_gram_blend_is_the_mixtures_gram_matrix() -> None:
    """Features of two images side by side: their Gram matrix is the two Gram matrices averaged by
    the images' shares of the positions."""
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(1, 3, 4, 2, generator=g), torch.rand(1, 3, 4, 6, generator=g)
    loss = GramLoss()
    blended = loss.blend([loss.statistics(a), loss.statistics(b)], [0.25, 0.75])
    assert torch.allclose(blended, gram(torch.cat([a, b], dim=-1)), atol=1e-6)
