"""Tests of styleforge.stylize.objective: Gram normalisation, blended style targets, layer weights,
``--style PATH[:WEIGHT]`` parsing, blend normalisation and term names."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from styleforge.engine import WeightedLoss
from styleforge.errors import InvalidParameter
from styleforge.stylize.objective import (
    ContentTerm,
    FeatureContext,
    StyleSpec,
    StyleTerm,
    TVTerm,
    gram,
    gram_targets,
    layer_weights,
    mse,
    normalise_blend,
    parse_style,
    style_term_names,
)

# --- gram ----------------------------------------------------------------------------------------


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


def test_feature_context_caches_each_gram() -> None:
    features = {"l": torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))}
    ctx = FeatureContext(torch.zeros(1, 3, 4, 4), features)
    first = ctx.gram("l")
    assert ctx.gram("l") is first
    assert torch.allclose(first, gram(features["l"]))
    assert set(gram_targets(features)) == {"l"}


# --- per-style sum vs blended target -------------------------------------------------------------


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
        targets = [gram_targets(net(s)) for s in styles]
    layer_w = {"l1": 0.3, "l2": 0.7}
    style_weight = 1e3

    per_style = WeightedLoss(
        {f"style.s{i}": StyleTerm(t, layer_w) for i, t in enumerate(targets)},
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
    blended = WeightedLoss({"style": StyleTerm(blended_targets, blended_w)}, {"style": style_weight})

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


def test_style_and_content_terms_are_weighted_relative_mse() -> None:
    g = torch.Generator().manual_seed(5)
    features = {"a": torch.rand(1, 2, 3, 3, generator=g), "b": torch.rand(1, 4, 2, 2, generator=g)}
    targets = {k: torch.rand_like(v) for k, v in features.items()}
    ctx = FeatureContext(torch.zeros(1, 3, 4, 4), features)
    content = ContentTerm(targets, {"a": 0.25, "b": 0.75})(ctx)
    rel = {k: ((features[k] - targets[k]) ** 2).mean() / (targets[k] ** 2).mean() for k in features}
    assert torch.allclose(content, 0.25 * rel["a"] + 0.75 * rel["b"])
    gram_t = {"a": torch.rand(1, 2, 2, generator=g)}
    style = StyleTerm(gram_t, {"a": 2.0})(ctx)
    assert torch.allclose(
        style, 2.0 * ((gram(features["a"]) - gram_t["a"]) ** 2).mean() / (gram_t["a"] ** 2).mean()
    )
    assert ContentTerm(features, {"a": 1.0, "b": 1.0})(ctx).item() == 0.0
    # all-zero features are a relative error of exactly 1
    zero = FeatureContext(torch.zeros(1, 3, 4, 4), {k: torch.zeros_like(v) for k, v in features.items()})
    assert ContentTerm(targets, {"a": 0.5, "b": 0.5})(zero).item() == pytest.approx(1.0)


def test_terms_do_not_depend_on_the_activations_scale() -> None:
    """Scaling every activation (another network, another input convention) leaves both terms as they are."""
    g = torch.Generator().manual_seed(6)
    features = {"a": torch.rand(1, 3, 4, 4, generator=g)}
    targets = {"a": torch.rand(1, 3, 4, 4, generator=g)}
    for term, tgt in ((ContentTerm, targets), (StyleTerm, gram_targets(targets))):
        base = term(tgt, {"a": 1.0})(FeatureContext(torch.zeros(1, 3, 4, 4), features))
        scaled_targets = {k: 50.0 * v for k, v in targets.items()}
        scaled_tgt = scaled_targets if term is ContentTerm else gram_targets(scaled_targets)
        scaled = term(scaled_tgt, {"a": 1.0})(
            FeatureContext(torch.zeros(1, 3, 4, 4), {"a": 50.0 * features["a"]})
        )
        assert base.item() > 0.01
        assert scaled.item() == pytest.approx(base.item(), rel=1e-5)


def test_tv_term_hand_computation() -> None:
    image = torch.tensor([[[[0.0, 1.0], [1.0, 3.0]]]]).expand(1, 3, 2, 2)
    # vertical diffs: (1-0)², (3-1)² -> mean 2.5 ; horizontal: (1-0)², (3-1)² -> mean 2.5
    value = TVTerm()(FeatureContext(image, {}))
    assert value.item() == pytest.approx(5.0)
    assert TVTerm()(FeatureContext(torch.full((1, 3, 5, 4), 0.3), {})).item() == 0.0


# --- layer_weights -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exponent, expected",
    [
        (2.0, [1 / 7, 2 / 7, 4 / 7]),
        (1.0, [1 / 3, 1 / 3, 1 / 3]),
        (0.5, [4 / 7, 2 / 7, 1 / 7]),
        (3.0, [1 / 13, 3 / 13, 9 / 13]),
    ],
)
def test_layer_weights_exponent(exponent: float, expected: list[float]) -> None:
    weights = layer_weights(["relu1_1", "relu2_1", "relu3_1"], exponent)
    assert list(weights) == ["relu1_1", "relu2_1", "relu3_1"]
    assert list(weights.values()) == pytest.approx(expected, rel=1e-12)
    assert math.fsum(weights.values()) == pytest.approx(1.0)


def test_layer_weights_single_layer() -> None:
    assert layer_weights(["relu4_1"], 5.0) == {"relu4_1": 1.0}


@pytest.mark.parametrize("exponent", [0.0, -1.0, float("nan"), float("inf")])
def test_layer_weights_invalid_exponent(exponent: float) -> None:
    with pytest.raises(InvalidParameter) as info:
        layer_weights(["relu1_1", "relu2_1"], exponent)
    assert str(info.value).startswith("--style-layer-weight-exp:")
    assert "> 0" in str(info.value)


# --- parse_style ---------------------------------------------------------------------------------


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "text, path, weight",
    [
        ("a.png", "a.png", None),
        ("a.png:0.75", "a.png", 0.75),
        ("a.png:3", "a.png", 3.0),
        ("a.png:1e-3", "a.png", 1e-3),
        ("C:\\art\\x.jpg", "C:\\art\\x.jpg", None),
        ("C:\\art\\x.jpg:0.5", "C:\\art\\x.jpg", 0.5),
        ("my:file.png", "my:file.png", None),
        ("my:file.png:2", "my:file.png", 2.0),
        ("dir/sub:dir/b.jpg", "dir/sub:dir/b.jpg", None),
    ],
)
def test_parse_style(in_tmp: Path, text: str, path: str, weight: float | None) -> None:
    spec = parse_style(text)
    assert spec.path == Path(path)
    assert spec.weight == weight


def test_parse_style_bad_word_after_an_existing_file(in_tmp: Path) -> None:
    (in_tmp / "a.png").write_bytes(b"x")
    with pytest.raises(InvalidParameter) as info:
        parse_style("a.png:abc")
    message = str(info.value)
    assert (
        message.startswith("--style:") and "a.png:abc" in message and "finite" in message and "> 0" in message
    )
    # An absolute path works the same way.
    with pytest.raises(InvalidParameter):
        parse_style(f"{in_tmp / 'a.png'}:abc")


def test_parse_style_word_after_a_missing_file_is_a_path(in_tmp: Path) -> None:
    assert parse_style("nothere.png:abc").path == Path("nothere.png:abc")


def test_parse_style_a_file_whose_name_has_a_colon(in_tmp: Path) -> None:
    (in_tmp / "a.png").write_bytes(b"x")
    (in_tmp / "a.png:abc").write_bytes(b"x")
    assert parse_style("a.png:abc") == StyleSpec(Path("a.png:abc"), None)


@pytest.mark.parametrize("suffix", [":-1", ":0", ":0.0", ":-0.5", ":nan", ":inf", ":-inf"])
@pytest.mark.parametrize("exists", [True, False])
def test_parse_style_bad_weights(in_tmp: Path, suffix: str, exists: bool) -> None:
    if exists:
        (in_tmp / "a.png").write_bytes(b"x")
    with pytest.raises(InvalidParameter) as info:
        parse_style("a.png" + suffix, param="--style")
    assert "--style" in str(info.value) and ("a.png" + suffix) in str(info.value)


# --- normalise_blend / style_term_names ----------------------------------------------------------


@pytest.mark.parametrize(
    "weights, expected",
    [
        ([None, None], [0.5, 0.5]),
        ([None, None, None, None], [0.25] * 4),
        ([0.75, 0.25], [0.75, 0.25]),
        ([3.0, 1.0], [0.75, 0.25]),
        ([3.0, None], [0.75, 0.25]),
        ([2.0], [1.0]),
        ([1.0, 2.0, 5.0], [0.125, 0.25, 0.625]),
    ],
)
def test_normalise_blend(weights: list[float | None], expected: list[float]) -> None:
    specs = [StyleSpec(Path(f"s{i}.png"), w) for i, w in enumerate(weights)]
    blend = normalise_blend(specs)
    assert blend == pytest.approx(expected, rel=1e-12)
    assert math.fsum(blend) == pytest.approx(1.0)


def test_style_term_names_are_unique_and_safe() -> None:
    specs = [
        StyleSpec(Path(p)) for p in ["a.png", "x/a.jpg", "y/a.png", "my file (1).png", "b.png", "a_2.png"]
    ]
    names = style_term_names(specs)
    assert names[:3] == ["style.a", "style.a_2", "style.a_3"]
    assert names[3] == "style.my_file_1_"
    assert names[4] == "style.b"
    assert len(set(names)) == len(names)
    for name in names:
        assert name.startswith("style.") and "," not in name and " " not in name


def test_style_term_names_from_parsed_specs() -> None:
    assert style_term_names([parse_style("dir/a.png:0.75"), parse_style("b.png:0.25")]) == [
        "style.a",
        "style.b",
    ]
