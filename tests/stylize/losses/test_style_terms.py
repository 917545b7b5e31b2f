"""Tests of styleforge.stylize.losses: every loss keeps the protocol, masks (no gradient outside the
region, statistics from a style image's masked part), styles grouped by region (one distance per
region, parts that add up), and every loss relative (0 at the style, 1 at zero features)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from styleforge.config import STYLE_LOSSES
from styleforge.engine import WeightedLoss
from styleforge.stylize.features import FeatureContext, LayerMask
from styleforge.stylize.losses import LOSSES, StyleLoss, StyleShare, layer_targets, style_loss, style_terms


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


# --- the protocol ---------------------------------------------------------------------------------


def _features(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.rand(1, 4, 6, 6, generator=g), "b": torch.rand(1, 8, 3, 3, generator=g)}


def test_the_registry_is_the_configs_list_of_losses() -> None:
    assert tuple(LOSSES) == STYLE_LOSSES
    assert all(LOSSES[name].name == name for name in STYLE_LOSSES)


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_each_loss_keeps_the_protocol(name: str) -> None:
    """Statistics per layer, the blend of one target with share 1 that target, and a term that is 0
    at the style's own features and positive elsewhere."""
    loss = style_loss(name, seed=3)
    assert isinstance(loss, StyleLoss) and loss.name == name and loss.seed == 3
    assert style_loss(loss) is loss
    features = _features(0)
    targets = loss.targets(features)
    assert list(targets) == ["a", "b"]
    assert all(loss.blend([t], [1.0]) is t for t in targets.values())
    term = loss.term(targets, {"a": 0.5, "b": 0.5})
    at_style = term(FeatureContext(torch.zeros(1, 3, 6, 6), features))
    elsewhere = term(FeatureContext(torch.zeros(1, 3, 6, 6), _features(1)))
    assert at_style.shape == () and at_style.item() == pytest.approx(0.0, abs=1e-5)
    assert elsewhere.item() > 1e-3


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_a_style_blended_with_itself_measures_as_the_style_alone(name: str) -> None:
    loss = style_loss(name)
    targets = loss.targets(_features(0))
    blended = {layer: loss.blend([t, t], [0.5, 0.5]) for layer, t in targets.items()}
    ctx = FeatureContext(torch.zeros(1, 3, 6, 6), _features(1))
    alone = loss.term(targets, {"a": 0.5, "b": 0.5})(ctx).item()
    assert loss.term(blended, {"a": 0.5, "b": 0.5})(ctx).item() == pytest.approx(alone, rel=1e-4)


def test_a_loss_that_shares_regions_gives_every_style_of_a_region_one_term() -> None:
    targets = [layer_targets("gram", _features(i)) for i in range(3)]
    names, shares, weights = ["style.a", "style.b", "style.c"], [0.5, 0.25, 0.25], {"a": 1.0, "b": 1.0}
    region = LayerMask(torch.ones(6, 6))
    regions = [region, None, region]
    gram_terms = style_terms("gram", names, shares, targets, weights, regions)
    assert len({id(t) for t in gram_terms.values()}) == 3 and not LOSSES["gram"].shares_regions
    targets = [layer_targets("w2", _features(i)) for i in range(3)]
    w2_terms = style_terms("w2", names, shares, targets, weights, regions)
    assert all(isinstance(t, StyleShare) for t in w2_terms.values())
    assert w2_terms["style.a"].group is w2_terms["style.c"].group is not w2_terms["style.b"].group


# --- --style-norm balanced: the denominator ------------------------------------------------------


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_a_content_reference_divides_by_the_mean_of_the_two_magnitudes(name: str) -> None:
    """With the content's magnitude as reference, each layer's distance is the style-only one times
    ``m_style / ((m_style + m_content) / 2)``: a style four times fainter than the content counts
    2.5 times less than alone."""
    loss = style_loss(name, seed=1)
    style, output = _features(0), _features(1)
    style = {layer: f / 2 for layer, f in style.items()}  # features / 2: mean square / 4, Gram's / 16
    targets = [loss.targets(style)]
    content = _features(2)
    reference = {layer: loss.feature_magnitude(f) for layer, f in content.items()}
    weights = {"a": 1.0}

    def measure(**keywords: Any) -> float:
        terms = style_terms(loss, ["style.s"], [1.0], targets, weights, [None], **keywords)
        return terms["style.s"](FeatureContext(torch.zeros(1, 3, 6, 6), output)).item()

    alone, balanced = measure(), measure(reference=reference)
    own = loss.magnitude(targets[0]["a"]).item()
    assert balanced == pytest.approx(alone * own / ((own + reference["a"].item()) / 2), rel=1e-5)
    assert balanced < alone / 2  # the content's magnitude is the larger one here


@pytest.mark.parametrize("name", STYLE_LOSSES)
def test_a_feature_maps_magnitude_is_its_statistics_magnitude(name: str) -> None:
    loss = style_loss(name)
    f = _features(3)["a"]
    assert loss.feature_magnitude(f).item() == pytest.approx(
        loss.magnitude(loss.statistics(f)).item(), rel=1e-5
    )
    # the mean square feature for w2 and sw; the Gram matrix's mean square for gram
    expected = f.square().mean() if name != "gram" else loss.statistics(f).square().mean()
    assert loss.feature_magnitude(f).item() == pytest.approx(expected.item(), rel=1e-5)
