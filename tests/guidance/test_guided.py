"""Tests of attribute-guided transfer (``--attrs-model``/``--attr``) and ``--score-with``, with
attribute networks trained inside the test: a numeric target raises that attribute's score and a
categorical one its class's probability (same seed, with and without); the VGG-19 pass is shared when
the attribute backbone is the transfer's own network (no second network runs); the terms show in
progress lines, history and plot; scores land in the PNG and the history; every error is one line."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from _helpers import one_line_error as _one_line_error
from click.testing import CliRunner
from PIL import Image, PngImagePlugin

import styleforge
from styleforge.attributes.model import VGG_HYPERCOLUMN_LAYERS, Hypercolumn, LoadedModel
from styleforge.attributes.preprocess import preprocess_image, squash_resize
from styleforge.attributes.score import open_model
from styleforge.attributes.score_format import read_scores
from styleforge.cli import cli
from styleforge.engine import Progress
from styleforge.errors import InvalidParameter
from styleforge.guidance.config import DEFAULT_ATTR_WEIGHT
from styleforge.guidance.terms import AttributeGuide, AttributeTerm, resolve_targets
from styleforge.images import METADATA_KEY, load_image, read_metadata
from styleforge.nets.vgg import VGGFeatures
from styleforge.parsing import parse_attr
from styleforge.stylize.features import FeatureContext

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CONTENT, STYLE = SAMPLES / "content.jpg", SAMPLES / "style_swirl.jpg"
#: The guided runs: 64 px, Adam (smooth on random weights), seeded random VGG-19 weights.
RUN = dict(size=64, iterations=40, optimizer=("adam",), weights="random", seed=0, device="cpu")
#: Independent heads (``trunk=0``): 15 steps are too few for a trunk on random features to spread its
#: scores; ``models["trunk"]`` is trained longer.
TRAIN = dict(
    weights="random",
    size=32,
    batch_size=8,
    lr=0.05,
    epochs=5,
    val_split=0.0,
    patience=0,
    device="cpu",
    feature_cache=False,
    seed=0,
    trunk=0,
)


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """``n`` intra-op threads (these tiny runs are faster on one; a busy machine's spin-waiting
    threads slow them several-fold), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with _threads(1):
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny networks trained once for this module on 24 synthetic pictures: ``resnet18`` at 32 px
    (its own backbone runs on the image) and ``vgg19`` at 64 px (seed 0 random weights: the
    transfer's own VGG-19, so its hypercolumn comes from the transfer's pass)."""
    folder = tmp_path_factory.mktemp("guided")
    with _threads(1):  # module-scoped fixtures run before the autouse one
        styleforge.make_dataset(folder / "data", count=24, seed=1, size=32)
        for arch, size in (("resnet18", 32), ("vgg19", 64)):
            styleforge.train_attrs(folder / "data", folder / arch, backbone=arch, **{**TRAIN, "size": size})
        styleforge.train_attrs(
            folder / "data",
            folder / "trunk",
            backbone="resnet18",
            **{**TRAIN, "trunk": 1, "trunk_width": 64, "lr": 0.01, "epochs": 30},
        )
    return {"resnet18": folder / "resnet18", "vgg19": folder / "vgg19", "trunk": folder / "trunk"}


@pytest.fixture(scope="module")
def plain(models: dict[str, Path]):
    """The unguided run every guided run is compared with (same seed and settings)."""
    with _threads(1):
        return styleforge.transfer(CONTENT, [STYLE], **RUN)


@pytest.fixture
def forwards(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts forward passes of the transfer's VGG (``VGGFeatures``) and of attribute backbones
    (``Hypercolumn``; a VGG-19 hypercolumn's own VGGFeatures call is not counted as the transfer's)."""
    counts = {"vgg": 0, "hypercolumn": 0}
    vgg_forward, hc_forward = VGGFeatures.forward, Hypercolumn.forward
    inside = [False]

    def vgg(self, *args, **kwargs):
        if not inside[0]:
            counts["vgg"] += 1
        return vgg_forward(self, *args, **kwargs)

    def hypercolumn(self, *args, **kwargs):
        counts["hypercolumn"] += 1
        inside[0] = True
        try:
            return hc_forward(self, *args, **kwargs)
        finally:
            inside[0] = False

    monkeypatch.setattr(VGGFeatures, "forward", vgg)
    monkeypatch.setattr(Hypercolumn, "forward", hypercolumn)
    return counts


def _probabilities(model: LoadedModel, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every class's probability (and ratings) for an image, preprocessed as for scoring."""
    x = preprocess_image(image.clamp(0, 1).mul(255).round().div(255), model.size)[None].float() / 255
    return {k: v[0] for k, v in model.net.predict(x).items()}


def test_a_numeric_target_raises_its_score_own_backbone(models, plain, forwards) -> None:
    model = open_model(models["resnet18"])
    before = float(_probabilities(model, plain.image)["contrast"])
    forwards.update(vgg=0, hypercolumn=0)
    guided = styleforge.transfer(
        CONTENT,
        [STYLE],
        attrs_model=str(models["resnet18"]),
        attrs=("contrast=10:10",),
        score_with=str(models["resnet18"]),
        **RUN,
    )
    assert guided.metadata["attrs"]["shared_forward"] is False
    # the attribute network's own backbone ran once per evaluation, plus once to score the result
    assert forwards["hypercolumn"] == RUN["iterations"] + 1
    assert forwards["vgg"] == 2 + RUN["iterations"]  # content, style, one pass per evaluation
    after = guided.scores.numeric["contrast"]
    assert after > before + 2.0, (before, after)
    assert after == pytest.approx(float(_probabilities(model, guided.image)["contrast"]), abs=1e-4)
    # the term is an engine term like the others
    assert list(guided.summary.weighted) == [
        "content",
        "style.style_swirl",
        "tv",
        "laplacian",
        "tone",
        "attr.contrast",
    ]
    assert guided.summary.weighted["attr.contrast"] == pytest.approx(10 * guided.summary.raw["attr.contrast"])


def test_a_trunk_model_guides_and_scores(models, plain) -> None:
    """A model with the shared trunk loads for guidance and for --score-with, and a numeric target
    moves its score in the target's direction (raised here, lowered with a low target)."""
    model = open_model(models["trunk"])
    assert model.net.trunk_shape.layers == 1 and model.net.trunk_shape.width == 64
    before = float(_probabilities(model, plain.image)["contrast"])
    high = styleforge.transfer(
        CONTENT,
        [STYLE],
        attrs_model=str(models["trunk"]),
        attrs=("contrast=10:10",),
        score_with=str(models["trunk"]),
        **RUN,
    )
    low = styleforge.transfer(
        CONTENT,
        [STYLE],
        attrs_model=str(models["trunk"]),
        attrs=("contrast=1:10",),
        score_with=str(models["trunk"]),
        **RUN,
    )
    assert high.scores.numeric["contrast"] > before + 0.5, (before, high.scores.numeric["contrast"])
    assert low.scores.numeric["contrast"] < before - 0.5, (before, low.scores.numeric["contrast"])


def test_a_categorical_target_raises_its_class_probability(models, plain) -> None:
    model = open_model(models["resnet18"])
    classes = model.net.schema["pri_color"].classes
    start = _probabilities(model, plain.image)["pri_color"]
    target = classes[int(start.argsort(descending=True)[2])]  # the unguided result's third most likely class
    guided = styleforge.transfer(
        CONTENT, [STYLE], attrs_model=str(models["resnet18"]), attrs=(f"pri_color={target}:10",), **RUN
    )
    end = _probabilities(model, guided.image)["pri_color"]
    index = classes.index(target)
    assert float(end[index]) > float(start[index]) + 0.25, (target, float(start[index]), float(end[index]))
    assert guided.metadata["attrs"]["targets"] == {"pri_color": {"target": target, "weight": 10.0}}


def test_the_transfers_vgg19_pass_is_shared(models, forwards) -> None:
    # A square content at the model's size: the shared pass then sees what scoring sees (at other
    # sizes it sees the image at the transfer's size and aspect; docs/attributes.md).
    content = models["resnet18"].parent / "data" / "images" / "0000.png"
    model = open_model(models["vgg19"])
    before = float(_probabilities(model, styleforge.transfer(content, [STYLE], **RUN).image)["contrast"])
    forwards.update(vgg=0, hypercolumn=0)
    events: list = []
    guided = styleforge.transfer(
        content,
        [STYLE],
        attrs_model=str(models["vgg19"]),
        attrs=("contrast=10:100",),
        callbacks=[events.append],
        **RUN,
    )
    assert guided.metadata["attrs"]["shared_forward"] is True
    assert forwards["hypercolumn"] == 0  # no second network ...
    assert forwards["vgg"] == 2 + RUN["iterations"]  # ... and no extra pass of the transfer's
    assert (
        sum(isinstance(e, Progress) and "attr.contrast" in e.summary.raw for e in events) == RUN["iterations"]
    )
    after = float(_probabilities(model, guided.image)["contrast"])
    assert after > before + 0.6, (before, after)
    # other weights (another seed): the model's backbone runs on its own
    forwards.update(vgg=0, hypercolumn=0)
    other = styleforge.transfer(
        content,
        [STYLE],
        attrs_model=str(models["vgg19"]),
        attrs=("contrast=10",),
        **{**RUN, "seed": 1, "iterations": 3},
    )
    assert other.metadata["attrs"]["shared_forward"] is False and forwards["hypercolumn"] == 3


def _vgg_model(folder: Path, arch: str, weights: str, seed: int = 0) -> LoadedModel:
    """An attribute model on a frozen ``arch`` backbone with ``weights`` (untrained heads), at 64 px."""
    from styleforge.attributes.model import AttributeNet, load_model, save_model
    from styleforge.attributes.schema import ACAN_SCHEMA
    from styleforge.nets.weights import resolve_weights

    choice = resolve_weights(weights, arch)
    net = AttributeNet(
        ACAN_SCHEMA, Hypercolumn(arch, choice.state_dict, seed=seed, source=choice.source), seed=seed
    )
    meta = {
        "backbone": {"arch": arch, "weights": choice.kind, "seed": seed, "finetuned": False},
        "preprocessing": {"size": 64},
    }
    save_model(folder, net, meta, with_backbone=False)
    return load_model(folder)


def test_sharing_follows_the_models_own_vgg_arch(tmp_path: Path) -> None:
    """A VGG-16 attribute backbone shares a VGG-16 transfer's pass (same weights, max pooling), never a
    VGG-19's; a VGG-19 backbone never a VGG-16's."""
    from styleforge.guidance.terms import can_share_forward, same_vgg_weights

    vgg16 = _vgg_model(tmp_path / "vgg16", "vgg16", "random")
    vgg19 = _vgg_model(tmp_path / "vgg19", "vgg19", "random")
    assert can_share_forward(vgg16, "vgg16", "max")
    assert not can_share_forward(vgg16, "vgg19", "max") and not can_share_forward(vgg16, "vgg16", "avg")
    assert can_share_forward(vgg19, "vgg19", "max") and not can_share_forward(vgg19, "vgg16", "max")
    layers = ["relu4_2", *VGG_HYPERCOLUMN_LAYERS]
    assert same_vgg_weights(vgg16, VGGFeatures("vgg16", layers, seed=0))
    assert not same_vgg_weights(vgg16, VGGFeatures("vgg16", layers, seed=1))  # other weights
    assert not same_vgg_weights(vgg16, VGGFeatures("vgg19", layers, seed=0))  # another network
    assert not same_vgg_weights(vgg19, VGGFeatures("vgg16", layers, seed=0))


def test_a_hed_vgg16_models_pass_is_shared_with_a_hed_vgg16_transfer(tmp_path: Path, forwards) -> None:
    """A model on HED's pretrained VGG-16 guides a ``--network vgg16 --weights hed`` transfer from
    the transfer's own pass (square image at the model's size), and its outputs there are its own."""
    from _helpers import write_image

    model = _vgg_model(tmp_path / "hed", "vgg16", "hed")
    content = write_image(tmp_path / "square.png", (64, 64), seed=4)
    run = {**RUN, "network": "vgg16", "weights": "hed", "iterations": 3}
    forwards.update(vgg=0, hypercolumn=0)
    guided = styleforge.transfer(content, [STYLE], attrs_model=model, attrs=("contrast=10",), **run)
    assert guided.metadata["attrs"]["shared_forward"] is True
    assert forwards["hypercolumn"] == 0 and forwards["vgg"] == 2 + run["iterations"]
    x = squash_resize(load_image(content).rgb[None], 64)
    net = VGGFeatures("vgg16", ["relu4_2", *VGG_HYPERCOLUMN_LAYERS], state_dict=model.weights.state_dict)
    ctx = FeatureContext(x, net(x, VGG_HYPERCOLUMN_LAYERS))
    shared = AttributeGuide(model, shared=True).outputs(ctx)
    own = AttributeGuide(model, shared=False).outputs(FeatureContext(x, {}))
    for name in model.net.schema.names:
        assert torch.allclose(shared[name], own[name], atol=1e-5), name


def test_the_shared_hypercolumn_is_the_models_own(models) -> None:
    """At the model's input size the pooled transfer activations give the model's own outputs, and
    gradients reach the pixels, never the frozen network."""
    model = open_model(models["vgg19"])
    x = load_image(CONTENT).rgb[None]
    x = squash_resize(x, model.size).requires_grad_(True)
    net = VGGFeatures("vgg19", ["relu4_2", *VGG_HYPERCOLUMN_LAYERS], seed=0)
    ctx = FeatureContext(x, net(x, VGG_HYPERCOLUMN_LAYERS))
    shared = AttributeGuide(model, shared=True).outputs(ctx)
    own = AttributeGuide(model, shared=False).outputs(FeatureContext(x, {}))
    for name in model.net.schema.names:
        assert torch.allclose(shared[name], own[name], atol=1e-5), name
    target = resolve_targets(["contrast=10"], model.net.schema, 1.0)[0]
    AttributeTerm(AttributeGuide(model, shared=True), target)(ctx).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in model.net.parameters())
    assert not model.net.training


def test_cli_terms_scores_history_plot_and_metadata(models, tmp_path: Path) -> None:
    out, history = tmp_path / "out.png", tmp_path / "history.csv"
    result = CliRunner().invoke(
        cli,
        [
            "transfer",
            str(CONTENT),
            "--style",
            str(STYLE),
            "-o",
            str(out),
            "--size",
            "64",
            "--iterations",
            "5",
            "--optimizer",
            "adam",
            "--weights",
            "random",
            "--device",
            "cpu",
            "--attrs-model",
            str(models["resnet18"]),
            "--attr",
            "contrast=10",
            "--attr",
            "pri_color=blue:0.5",
            "--score-with",
            str(models["resnet18"]),
            "--history",
            str(history),
            "--plot",
            str(tmp_path / "loss.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if line.startswith("iter ")]
    assert progress and all("attr.contrast" in line and "attr.pri_color" in line for line in progress)
    score_line = next(line for line in result.stderr.splitlines() if line.startswith("scores ("))
    assert "contrast" in score_line and "pri_color" in score_line
    assert (tmp_path / "loss.png").is_file()
    with open(history, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert {
        "attr.contrast",
        "attr.contrast.raw",
        "attr.pri_color",
        "score.contrast",
        "score.pri_color",
        "score.pri_color.probability",
    } <= set(rows[0])
    meta = read_metadata(out)
    scored = [r for r in rows if r["score.contrast"]]
    assert len(scored) == 1 and int(scored[0]["iteration"]) == meta["iteration"] and scored[0]["total"]
    assert meta["guidance"]["attrs"] == ["contrast=10", "pri_color=blue:0.5"]
    assert meta["attrs"]["targets"] == {
        "contrast": {"target": 10.0, "weight": DEFAULT_ATTR_WEIGHT},
        "pri_color": {"target": "blue", "weight": 0.5},
    }
    assert float(scored[0]["score.contrast"]) == meta["scores"]["numeric"]["contrast"]
    # `styleforge score out.png` gives what the PNG recorded
    again = CliRunner().invoke(
        cli, ["score", str(models["resnet18"]), str(out), "--format", "json", "--device", "cpu"]
    )
    assert again.exit_code == 0, again.output
    rescored = read_scores(again.stdout, "json")[0]
    assert rescored.numeric == pytest.approx(meta["scores"]["numeric"], abs=1e-4)
    assert rescored.categorical["pri_color"].label == meta["scores"]["categorical"]["pri_color"]["class"]
    # the PNG's configuration re-runs the guided transfer
    rerun = CliRunner().invoke(
        cli,
        [
            "transfer",
            "--from-image",
            str(out),
            "-o",
            str(tmp_path / "again.png"),
            "--iterations",
            "2",
            "--quiet",
        ],
    )
    assert rerun.exit_code == 0, rerun.output
    assert read_metadata(tmp_path / "again.png")["attrs"] == meta["attrs"]
    # the guidance options are recorded apart from the transfer's, and re-run as they were
    assert meta["guidance"] == {
        "attrs_model": str(models["resnet18"]),
        "attrs": ["contrast=10", "pri_color=blue:0.5"],
        "attr_weight": DEFAULT_ATTR_WEIGHT,
        "score_with": str(models["resnet18"]),
    }
    assert not set(meta["config"]) & set(meta["guidance"])
    assert read_metadata(tmp_path / "again.png")["guidance"] == meta["guidance"]


def test_from_image_reruns_a_guided_png_of_an_older_version(models, tmp_path: Path) -> None:
    """An older version kept the guidance options in the metadata's ``config``: such a PNG re-runs
    guided, with the same options, and its re-run records them in their own place."""
    model = str(models["resnet18"])
    result = styleforge.transfer(
        CONTENT,
        [STYLE],
        attrs_model=model,
        attrs=("contrast=10:2",),
        attr_weight=0.5,
        score_with=model,
        **{**RUN, "iterations": 2},
    )
    meta = dict(result.metadata)
    guidance = meta.pop("guidance")
    assert guidance == {
        "attrs_model": model,
        "attrs": ["contrast=10:2"],
        "attr_weight": 0.5,
        "score_with": model,
    }
    old = {**meta, "config": {**meta["config"], **guidance}}
    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, json.dumps(old))
    Image.open(result.save(tmp_path / "first.png")).save(tmp_path / "old.png", pnginfo=info)
    rerun = CliRunner().invoke(
        cli,
        ["transfer", "--from-image", str(tmp_path / "old.png"), "-o", str(tmp_path / "again.png"), "--quiet"],
    )
    assert rerun.exit_code == 0, rerun.output
    again = read_metadata(tmp_path / "again.png")
    assert again["guidance"] == guidance and again["attrs"]["targets"] == meta["attrs"]["targets"]
    assert again["config"] == meta["config"] and "scores" in again


def test_json_history_has_the_scores(models, tmp_path: Path) -> None:
    result = styleforge.transfer(
        CONTENT, [STYLE], score_with=str(models["vgg19"]), **{**RUN, "iterations": 2}
    )
    rows = result.history_rows()
    assert [r for r in rows if "score.contrast" in r][0]["iteration"] == result.metadata["iteration"]
    assert set(result.metadata["scores"]) == {"model", "numeric", "categorical"}
    assert "attrs" not in result.metadata and result.scores is not None and result.scores.ok
    path = tmp_path / "h.json"
    CliRunner().invoke(
        cli,
        [
            "transfer",
            str(CONTENT),
            "--style",
            str(STYLE),
            "-o",
            str(tmp_path / "o.png"),
            "--size",
            "64",
            "--iterations",
            "2",
            "--optimizer",
            "adam",
            "--weights",
            "random",
            "--device",
            "cpu",
            "--score-with",
            str(models["vgg19"]),
            "--history",
            str(path),
            "--quiet",
        ],
    )
    data = json.loads(path.read_text())
    assert sum("score.harmony" in row for row in data) == 1


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--attr", "contrast=9"],
            "--attr: 'contrast=9' is not valid; expected --attrs-model MODEL_DIR as well",
        ),
        (["--attrs-model", "{resnet18}"], "--attrs-model: '"),
        (
            ["--attrs-model", "{resnet18}", "--attr", "contrst=9"],
            "expected one of: variety_texture, variety_shape",
        ),
        (["--attrs-model", "{resnet18}", "--attr", "contrst=9"], "did you mean 'contrast'?"),
        (
            ["--attrs-model", "{resnet18}", "--attr", "pri_color=bleu"],
            "--attr pri_color: 'bleu' is not valid; expected one of: black, blue,",
        ),
        (["--attrs-model", "{resnet18}", "--attr", "pri_color=bleu"], "did you mean 'blue'?"),
        (["--attrs-model", "{resnet18}", "--attr", "harmony=triadc"], "did you mean 'triadic'?"),
        (
            ["--attrs-model", "{resnet18}", "--attr", "contrast=11"],
            "--attr contrast: '11' is not valid; expected a number from 1 to 10",
        ),
        (["--attrs-model", "{resnet18}", "--attr", "contrast=0.5"], "expected a number from 1 to 10"),
        (["--attrs-model", "{resnet18}", "--attr", "contrast=high"], "expected a number from 1 to 10"),
        (
            ["--attrs-model", "{resnet18}", "--attr", "contrast=9:-1"],
            "the weight '-1' is not a finite number >= 0",
        ),
        (
            ["--attrs-model", "{resnet18}", "--attr", "contrast=9:nan"],
            "the weight 'nan' is not a finite number >= 0",
        ),
        (
            ["--attrs-model", "{resnet18}", "--attr", "contrast=9:inf"],
            "the weight 'inf' is not a finite number >= 0",
        ),
        (["--attrs-model", "{resnet18}", "--attr", "contrast=9:heavy"], "the weight 'heavy' is not a number"),
        (["--attrs-model", "{resnet18}", "--attr", "contrast"], "expected NAME=VALUE[:WEIGHT]"),
        (
            ["--attrs-model", "{resnet18}", "--attr", "contrast=9", "--attr", "contrast=2"],
            "each attribute at most once",
        ),
        (
            ["--attrs-model", "{resnet18}", "--attr", "contrast=9", "--attr-weight", "-2"],
            "--attr-weight: -2.0 is not valid",
        ),
        (
            ["--attrs-model", "{data}", "--attr", "contrast=9"],
            "has no model.json; expected the -o folder of styleforge train-attrs",
        ),
        (["--score-with", "{data}"], "--score-with: "),
        (["--score-with", "{broken}"], "model.safetensors and model.json disagree"),
        (["--attrs-model", "{broken}", "--attr", "contrast=9"], "--attrs-model: "),
    ],
)
def test_errors_are_one_line_before_any_work(models, tmp_path: Path, args: list[str], expected: str) -> None:
    import shutil

    broken = Path(shutil.copytree(models["resnet18"], tmp_path / "broken"))
    meta = json.loads((broken / "model.json").read_text())
    meta["schema"]["attributes"] = meta["schema"]["attributes"][
        :-1
    ]  # the harmony head is in the file, not here
    (broken / "model.json").write_text(json.dumps(meta))
    names = {"resnet18": models["resnet18"], "data": models["resnet18"].parent / "data", "broken": broken}
    out = tmp_path / "out.png"
    result = CliRunner().invoke(
        cli,
        [
            "transfer",
            str(CONTENT),
            "--style",
            str(STYLE),
            "-o",
            str(out),
            "--size",
            "64",
            "--weights",
            "random",
            "--device",
            "cpu",
            *[a.format(**names) for a in args],
        ],
    )
    assert expected in _one_line_error(result, 2)
    assert not out.exists()


def test_api_errors_and_parsing(models) -> None:
    assert parse_attr("harmony=split complementary:2").value == "split complementary"
    assert parse_attr("harmony=split complementary:2").weight == 2.0
    assert parse_attr("contrast=9").weight is None
    schema = open_model(models["resnet18"]).net.schema
    targets = resolve_targets(["contrast=9", "harmony=Split-Complementary:0"], schema, 0.25)
    assert [(t.term, t.value, t.weight) for t in targets] == [
        ("attr.contrast", 9.0, 0.25),
        ("attr.harmony", "split complementary", 0.0),
    ]
    assert targets[0].unit == pytest.approx(2 * 8 / 9 - 1)
    with pytest.raises(InvalidParameter, match="expected --attrs-model"):
        styleforge.transfer(CONTENT, [STYLE], attrs=("contrast=9",), **RUN)
