"""Tests of styleforge.stylize.losses: every loss keeps the protocol, masks (no gradient outside the
region, statistics from a style image's masked part), styles grouped by region (one distance per
region, parts that add up), and every loss relative (0 at the style, 1 at zero features)."""

from __future__ import annotations

import math

import pytest
import torch

from styleforge.engine import WeightedLoss
from styleforge.stylize.features import FeatureContext, LayerMask
from styleforge.stylize.losses import LOSSES, StyleShare, layer_targets, style_terms


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
    masked = LOSSES[kind]().statistics(f, LayerMask(mask))
    cropped = LOSSES[kind]().statistics(f[..., :2].contiguous())
    if kind == "w2":
        assert torch.allclose(masked.mean, cropped.mean, atol=1e-6) and torch.allclose(
            masked.second, cropped.second, atol=1e-6
        )
    else:
        assert masked.samples.shape == cropped.samples.shape
        assert torch.allclose(masked.samples.sort(0).values, cropped.samples.sort(0).values)


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
