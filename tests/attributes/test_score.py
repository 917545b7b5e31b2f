"""Tests of ``styleforge score`` and :func:`styleforge.attributes.score.score_images` with a model
trained inside the test: every attribute present and in range, the training preprocessing, batches,
the JSON and CSV formats of :mod:`styleforge.attributes.score_format` (parsed and round-tripped), a
corrupt image among good ones (scored around, exit code 1), and the errors for model folders that are
missing or inconsistent."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from _helpers import invoke as _invoke
from _helpers import one_line_error as _one_line_error

from styleforge.attributes.features import compute_features
from styleforge.attributes.labels import read_labels
from styleforge.attributes.model import AttributeNet
from styleforge.attributes.preprocess import load_images
from styleforge.attributes.schema import ACAN_SCHEMA
from styleforge.attributes.score import ImageScore, ModelFileError, open_model, score_images
from styleforge.attributes.score_format import SCORES_FORMAT, csv_columns, format_scores, read_scores
from styleforge.attributes.train import train_attrs
from styleforge.errors import InputFileError, InvalidParameter

#: A tiny model: ResNet-18 with seeded random weights, 32 px, trained for 5 epochs on all 24 images,
#: independent heads (15 steps are too few for a trunk to tell these pictures apart; ``hed_run`` has
#: the default trunk).
TINY = dict(
    backbone="resnet18",
    weights="random",
    size=32,
    batch_size=8,
    lr=0.05,
    epochs=5,
    val_split=0.0,
    patience=0,
    device="cpu",
    feature_cache=False,
    workers=0,
    trunk=0,
)


@pytest.fixture(scope="module")
def model_dir(synth24: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder trained once for this module (frozen backbone, cached features)."""
    run = tmp_path_factory.mktemp("score") / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # module-scoped fixtures run before the autouse one-thread fixture
    try:
        train_attrs(synth24, run, **TINY)
    finally:
        torch.set_num_threads(before)
    return run


def _check_in_range(score: ImageScore) -> None:
    assert score.ok and score.error is None
    assert list(score.numeric) == [a.name for a in ACAN_SCHEMA.numeric]
    assert list(score.categorical) == [a.name for a in ACAN_SCHEMA.categorical]
    for a in ACAN_SCHEMA.numeric:
        assert 1.0 <= score.numeric[a.name] <= 10.0
    for a in ACAN_SCHEMA.categorical:
        c = score.categorical[a.name]
        assert len(c.top) == 3 and c.top[0].label == c.label and c.top[0].probability == c.probability
        assert all(t.label in a.classes for t in c.top) and len({t.label for t in c.top}) == 3
        probabilities = [t.probability for t in c.top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert probabilities[-1] > 0.0 and sum(probabilities) <= 1.0 + 1e-9


def test_every_attribute_in_range_and_as_in_training(model_dir: Path, synth24: Path) -> None:
    scores = score_images(model_dir, [synth24], batch_size=5, device="cpu")
    # the folder is walked: images only (labels.csv is not one), sorted
    assert [Path(s.path).name for s in scores] == [f"{i:04d}.png" for i in range(24)]
    for score in scores:
        _check_in_range(score)
    # the same numbers as the training pipeline's own preprocessing and network
    model = open_model(model_dir)
    table = read_labels(synth24, ACAN_SCHEMA)
    images, _, _ = load_images(table.items, model.size)
    outputs = model.net.heads_forward(compute_features(model.net.backbone, images))
    for a in ACAN_SCHEMA.numeric:
        expected = a.from_unit(outputs[a.name])
        assert torch.allclose(
            torch.tensor([s.numeric[a.name] for s in scores], dtype=torch.float64),
            expected.double(),
            atol=1e-4,
        )
    probs = outputs["pri_color"].softmax(-1)
    assert [s.categorical["pri_color"].label for s in scores] == [
        ACAN_SCHEMA["pri_color"].classes[i] for i in probs.argmax(-1)
    ]
    # the spread shows the network is not constant: a trained model tells pictures apart
    contrast = torch.tensor([s.numeric["contrast"] for s in scores])
    assert float(contrast.max() - contrast.min()) > 0.5


def test_a_hed_vgg16_model_scores_through_the_cli(hed_run: Path, synth8: Path) -> None:
    """A model on HED's pretrained VGG-16 (model.json: arch vgg16, weights hed) is checked, loaded
    and scored like any other; the scores are the heads' outputs on the features training cached."""
    from safetensors.torch import load_file

    model = open_model(hed_run)
    assert (
        model.net.backbone is not None and model.net.backbone.arch == "vgg16" and model.weights.kind == "hed"
    )
    assert model.net.trunk_shape.layers == 1  # the default shared trunk loads and scores
    result = _invoke("score", hed_run, synth8 / "images", "--format", "json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    scores = read_scores(result.stdout, "json")
    assert [Path(s.path).name for s in scores] == [f"{i:04d}.png" for i in range(8)]
    for score in scores:
        _check_in_range(score)
    trained = model.net.heads_forward(load_file(str(hed_run / "features.safetensors"))["features"])
    expected = ACAN_SCHEMA["contrast"].from_unit(trained["contrast"]).double()
    assert torch.allclose(
        torch.tensor([s.numeric["contrast"] for s in scores], dtype=torch.float64), expected, atol=1e-4
    )


def test_images_are_scored_in_batches(
    model_dir: Path, synth24: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    original = AttributeNet.predict

    def counting(self: AttributeNet, images: torch.Tensor) -> dict[str, torch.Tensor]:
        sizes.append(int(images.shape[0]))
        return original(self, images)

    monkeypatch.setattr(AttributeNet, "predict", counting)
    model = open_model(model_dir)
    batched = score_images(model, [synth24 / "images"], batch_size=10)
    assert sizes == [10, 10, 4]
    single = score_images(model, sorted((synth24 / "images").glob("*.png")), batch_size=1)
    assert [s.path for s in single] == [s.path for s in batched]
    for a, b in zip(single, batched):
        assert a.numeric == pytest.approx(b.numeric, abs=1e-4)
        assert a.categorical["harmony"].label == b.categorical["harmony"].label


def test_json_and_csv_parse_and_round_trip(model_dir: Path, synth24: Path, tmp_path: Path) -> None:
    images = [synth24 / "images" / f"000{i}.png" for i in range(3)]
    api = score_images(model_dir, images, device="cpu")
    result = _invoke("score", model_dir, *images, "--format", "json", "--device", "cpu")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format"] == SCORES_FORMAT and document["model"] == str(model_dir)
    assert [a["name"] for a in document["attributes"]] == list(ACAN_SCHEMA.names)
    entry = document["images"][0]
    assert set(entry) == {"path", "error", "numeric", "categorical"} and entry["error"] is None
    assert set(entry["categorical"]["pri_color"]) == {"class", "probability", "top3"}
    assert set(entry["categorical"]["pri_color"]["top3"][0]) == {"class", "probability"}
    assert read_scores(result.stdout, "json") == api

    out = tmp_path / "scores.csv"  # the format follows -o's extension
    result = _invoke("score", model_dir, *images, "-o", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]  # no temporary file left behind
    text = out.read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == csv_columns(ACAN_SCHEMA)
    assert list(rows[0])[:8] == ["path", *[a.name for a in ACAN_SCHEMA.numeric], "pri_color"]
    assert {
        "pri_color.probability",
        "pri_color.top2",
        "pri_color.top3.probability",
        "harmony.top3",
        "error",
    } <= set(rows[0])
    assert [r["path"] for r in rows] == [str(p) for p in images] and all(r["error"] == "" for r in rows)
    assert float(rows[1]["contrast"]) == api[1].numeric["contrast"]
    assert read_scores(text, "csv") == api
    # and the formatted text of the parsed scores is the text itself
    assert format_scores(read_scores(text, "csv"), "csv", ACAN_SCHEMA) == text


def test_table_reads_in_a_terminal(model_dir: Path, synth24: Path) -> None:
    image = synth24 / "images" / "0000.png"
    result = _invoke("score", model_dir, image, "--device", "cpu")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == str(image)
    assert len(lines) == 1 + len(ACAN_SCHEMA) and all(line.startswith("  ") for line in lines[1:])
    assert lines[5].split()[0] == "contrast" and lines[5].split()[2] == "(1..10)"
    assert lines[7].split()[0] == "pri_color" and lines[7].count("%") == 3
    assert "scored 1 image(s)" in result.stderr


def test_a_corrupt_image_is_reported_the_rest_scored_exit_1(model_dir: Path, data24: Path) -> None:
    (data24 / "images" / "0007.png").write_bytes(b"not a png at all")
    (data24 / "images" / "notes.txt").write_text("not an image: not walked")
    result = _invoke(
        "score", model_dir, data24 / "images", data24 / "missing.png", "--format", "json", "--device", "cpu"
    )
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    entries = json.loads(result.stdout)["images"]
    assert len(entries) == 25
    failed = {Path(e["path"]).name: e["error"] for e in entries if e["error"]}
    assert set(failed) == {"0007.png", "missing.png"}
    assert "is not an image" in failed["0007.png"] and failed["missing.png"] == "does not exist"
    for entry in entries:
        if not entry["error"]:
            _check_in_range(ImageScore.from_dict(entry))
    assert f"failed: {data24 / 'images' / '0007.png'}: is not an image" in result.stderr
    assert "scored 23 image(s), 2 failed" in result.stderr
    table = _invoke("score", model_dir, data24 / "images" / "0007.png", "--device", "cpu")
    assert table.exit_code == 1 and "  error" in table.stdout and "is not an image" in table.stdout


def _corrupt_shape(run: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(run / "model.safetensors"))
    tensors["heads.contrast.weight"] = torch.zeros(1, 7)
    save_file(tensors, str(run / "model.safetensors"))


def _drop_head(run: Path) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(run / "model.safetensors"))
    del tensors["heads.harmony.bias"]
    save_file(tensors, str(run / "model.safetensors"))


def _extra_class(run: Path) -> None:
    meta = json.loads((run / "model.json").read_text())
    meta["schema"]["attributes"][6]["classes"].append("purple")
    (run / "model.json").write_text(json.dumps(meta))


def _other_backbone(run: Path) -> None:
    meta = json.loads((run / "model.json").read_text())
    meta["backbone"]["arch"] = "vgg19"
    meta["backbone"].pop("feature_dims", None)
    (run / "model.json").write_text(json.dumps(meta))


def _no_weights_file(run: Path) -> None:
    (run / "model.safetensors").unlink()


def _garbage_weights(run: Path) -> None:
    (run / "model.safetensors").write_bytes(b"\x00" * 10)


@pytest.mark.parametrize(
    "damage, expected",
    [
        (
            _corrupt_shape,
            "heads.contrast.weight has shape [1, 7]; "
            "model.json (contrast: 1 output, resnet18: 1920 features) needs [1, 1920]",
        ),
        (
            _drop_head,
            "model.json has the attribute 'harmony' but model.safetensors has no heads.harmony.bias",
        ),
        (_extra_class, "heads.pri_color.weight has shape [13, 1920]; model.json (pri_color: 14 classes"),
        (_other_backbone, "needs [1, 1472]"),
        (_no_weights_file, "has model.json but no model.safetensors"),
        (_garbage_weights, "cannot be read"),
    ],
)
def test_model_files_that_disagree_with_model_json(
    model_dir: Path, synth24: Path, tmp_path: Path, damage, expected: str
) -> None:
    run = Path(shutil.copytree(model_dir, tmp_path / "run"))
    damage(run)
    line = _one_line_error(_invoke("score", run, synth24 / "images" / "0000.png", "--device", "cpu"), 2)
    assert line.startswith("error: MODEL_DIR: ") and expected in line
    with pytest.raises(ModelFileError):
        open_model(run)


def test_model_folder_errors(model_dir: Path, synth24: Path, tmp_path: Path) -> None:
    image = synth24 / "images" / "0000.png"
    line = _one_line_error(_invoke("score", synth24, image), 2)
    assert f"'{synth24}' has no model.json; expected the -o folder of styleforge train-attrs" in line
    line = _one_line_error(_invoke("score", tmp_path / "nowhere", image), 2)
    assert "nowhere' does not exist" in line
    line = _one_line_error(_invoke("score", image, image), 2)
    assert "is a file; expected the -o folder" in line
    with pytest.raises(InputFileError):
        score_images(synth24, [image])
    line = _one_line_error(_invoke("score", model_dir, image, "--batch-size", "0", "--device", "cpu"), 2)
    assert "--batch-size: 0 is not valid; expected a whole number >= 1" in line
    with pytest.raises(InvalidParameter):
        score_images(model_dir, [image], batch_size=0)
    result = _invoke("score", model_dir, image, "--format", "xml")
    assert (
        _one_line_error(result, 2) == "error: --format: 'xml' is not valid; expected one of: table, json, csv"
    )
    result = _invoke("score", model_dir)
    assert result.exit_code == 2 and "Missing argument" in result.output


def test_a_folder_without_images_is_a_failure(model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no pictures here")
    scores = score_images(model_dir, [tmp_path / "empty"], device="cpu")
    assert len(scores) == 1 and not scores[0].ok and "is a folder with no images" in (scores[0].error or "")
