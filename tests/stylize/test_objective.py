"""Tests of styleforge.stylize.objective: the content, Gram and TV terms as weighted relative errors,
one scale's weighted terms, layer weights; and the ``--style PATH[:WEIGHT]`` parsing, blend
normalisation and term names the objective's style terms are named by."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from styleforge.config import TransferConfig
from styleforge.errors import InvalidParameter
from styleforge.parsing import StyleSpec, normalise_blend, parse_style, style_term_names
from styleforge.stylize.extension import ExtraTerms
from styleforge.stylize.features import FeatureContext, gram
from styleforge.stylize.losses import GramLoss, GramTerm
from styleforge.stylize.objective import ContentTerm, Objective, TVTerm, layer_weights, scale_loss


def test_style_and_content_terms_are_weighted_relative_mse() -> None:
    g = torch.Generator().manual_seed(5)
    features = {"a": torch.rand(1, 2, 3, 3, generator=g), "b": torch.rand(1, 4, 2, 2, generator=g)}
    targets = {k: torch.rand_like(v) for k, v in features.items()}
    ctx = FeatureContext(torch.zeros(1, 3, 4, 4), features)
    content = ContentTerm(targets, {"a": 0.25, "b": 0.75})(ctx)
    rel = {k: ((features[k] - targets[k]) ** 2).mean() / (targets[k] ** 2).mean() for k in features}
    assert torch.allclose(content, 0.25 * rel["a"] + 0.75 * rel["b"])
    gram_t = {"a": torch.rand(1, 2, 2, generator=g)}
    style = GramTerm(gram_t, {"a": 2.0})(ctx)
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
    for term, tgt in ((ContentTerm, targets), (GramTerm, GramLoss().targets(targets))):
        base = term(tgt, {"a": 1.0})(FeatureContext(torch.zeros(1, 3, 4, 4), features))
        scaled_targets = {k: 50.0 * v for k, v in targets.items()}
        scaled_tgt = scaled_targets if term is ContentTerm else GramLoss().targets(scaled_targets)
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


def test_one_scales_loss_weighs_each_term_and_adds_the_extensions() -> None:
    """The parts in order (content, styles, tv, laplacian, tone, extensions'), each weighted by its own
    weight (a style's: the style weight times its blend share)."""
    g = torch.Generator().manual_seed(7)
    config = TransferConfig(
        content_weight=2.0, tv_weight=0.5, style_weight=10.0, laplacian_weight=0.3, tone_weight=0.6
    )
    content = torch.rand(1, 3, 8, 8, generator=g)
    features = {"l": torch.rand(1, 4, 8, 8, generator=g)}
    styles = {"style.a": lambda ctx: ctx.image.mean(), "style.b": lambda ctx: 2 * ctx.image.mean()}
    pull = ExtraTerms(terms={"pull": lambda ctx: ctx.image.square().mean()}, weights={"pull": 4.0})
    loss = scale_loss(
        config, content, features, {"l": 1.0}, styles, {"style.a": 0.75, "style.b": 0.25}, [pull]
    )
    layers: list[list[str]] = []
    objective = Objective(loss, lambda x, asked: layers.append(list(asked)) or dict(features), ["l"])
    x = torch.rand(1, 3, 8, 8, generator=g)
    report = objective(x).summary()
    assert layers == [["l"]]
    assert list(report.weighted) == ["content", "style.a", "style.b", "tv", "laplacian", "tone", "pull"]
    expected = {
        "content": 2.0,
        "style.a": 7.5,
        "style.b": 2.5,
        "tv": 0.5,
        "laplacian": 0.3,
        "tone": 0.6,
        "pull": 4.0,
    }
    for name, weight in expected.items():
        assert report.weighted[name] == pytest.approx(weight * report.raw[name], rel=1e-6)
    assert report.raw["content"] == 0.0 and report.raw["style.a"] == pytest.approx(x.mean().item())
    at_content = objective(content).summary().raw
    assert report.raw["laplacian"] > 0 and at_content["laplacian"] == 0.0
    assert report.raw["tone"] > 0 and at_content["tone"] == 0.0
    plain = scale_loss(
        TransferConfig(laplacian_weight=0.0, tone_weight=0.0),
        content,
        features,
        {"l": 1.0},
        styles,
        {"style.a": 1.0},
    )
    assert not {"laplacian", "tone", "pull"} & set(plain.terms)


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
