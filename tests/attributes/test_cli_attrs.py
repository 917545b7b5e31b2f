"""Tests of ``styleforge make-dataset`` and ``styleforge train-attrs`` through click's CliRunner: the
epoch lines (total = Σ weight × printed raw), the files, --resume, and user mistakes (one line,
exit code 2 for usage / 1 for runtime, no traceback)."""

from __future__ import annotations

import csv
import re
import signal
from decimal import Decimal
from pathlib import Path

import pytest
from _helpers import deliver, stop_signals_as_at_start  # noqa: F401
from _helpers import invoke as _invoke
from _helpers import one_line_error as _one_line_error

from styleforge.nets import weights as weights_module

FAST = [
    "--backbone",
    "resnet18",
    "--weights",
    "random",
    "--size",
    "32",
    "--batch-size",
    "8",
    "--lr",
    "0.01",
    "--device",
    "cpu",
    "--workers",
    "0",
]
_EPOCH = re.compile(
    r"^epoch (\d+)/(\d+) · loss (\S+) = (.*?) · val_loss (\S+) · val MAE (.*?) · val acc (.*?)( · best)?$"
)


def test_make_dataset_command(tmp_path: Path) -> None:
    result = _invoke("make-dataset", tmp_path / "set", "--count", 3, "--seed", 2, "--size", 32)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "set" / "labels.csv")
    with open(tmp_path / "set" / "labels.csv", newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 3
    bad = _invoke("make-dataset", tmp_path / "x", "--count", 0)
    assert "--count: 0 is not valid" in _one_line_error(bad, 2)


def test_train_attrs_prints_keras_lines_that_add_up_and_resumes(data24: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = _invoke(
        "train-attrs",
        "--data",
        data24,
        "-o",
        run,
        *FAST,
        "--epochs",
        2,
        "--loss-weight",
        "categorical=0.7",
        "--loss-weight",
        "contrast=2",
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("epoch ")]
    assert [int(_EPOCH.match(line)[1]) for line in lines] == [1, 2], result.output
    for line in lines:
        match = _EPOCH.match(line)
        parts = []
        for chunk in match[4].split(" + "):
            label, value = chunk.rsplit(" ", 1)
            weight, name = label.split("×")
            parts.append((name, Decimal(weight), Decimal(value)))
        assert [p[0] for p in parts][:1] == ["variety_texture"] and len(parts) == 8
        weights = {name: weight for name, weight, _ in parts}
        assert weights["pri_color"] == weights["harmony"] == Decimal("0.7") and weights["contrast"] == 2
        assert Decimal(match[3]) == sum(w * v for _, w, v in parts)  # exactly
        assert "contrast" in match[6] and "pri_color" in match[7]
    assert str(run / "model.safetensors") in result.output and str(run / "curves.png") in result.output
    more = _invoke("train-attrs", "-o", run, "--resume", "--epochs", 3, "--device", "cpu")
    assert more.exit_code == 0, more.output
    assert [line.split(" ·")[0] for line in more.output.splitlines() if line.startswith("epoch ")] == [
        "epoch 3/3"
    ]
    with open(run / "history.csv", newline="") as stream:
        assert [row["epoch"] for row in csv.DictReader(stream)] == ["1", "2", "3"]
    changed = _invoke("train-attrs", "-o", run, "--resume", "--epochs", 4, "--balance", "initial")
    assert (
        "--balance: 'initial' is not valid; expected 'none', as in the run being resumed"
        in _one_line_error(changed, 2)
    )
    changed = _invoke("train-attrs", "-o", run, "--resume", "--epochs", 4, "--trunk", "2")
    assert "--trunk: 2 is not valid; expected 1, as in the run being resumed" in _one_line_error(changed, 2)


def test_trunk_options_reach_the_model(data24: Path, tmp_path: Path) -> None:
    import json

    for trunk, width in (("0", "64"), ("2", "24")):
        run = tmp_path / f"trunk{trunk}"
        result = _invoke(
            "train-attrs",
            "--data",
            data24,
            "-o",
            run,
            *FAST,
            "--epochs",
            1,
            "--trunk",
            trunk,
            "--trunk-width",
            width,
        )
        assert result.exit_code == 0, result.output
        meta = json.loads((run / "model.json").read_text())
        assert meta["trunk"]["layers"] == int(trunk) and meta["training"]["config"]["trunk_width"] == int(
            width
        )
        score = _invoke("score", run, data24 / "images" / "0000.png", "--format", "json")
        assert score.exit_code == 0, score.output


def test_feature_norm_reaches_the_model_and_stays_on_resume(data24: Path, tmp_path: Path) -> None:
    import json

    from safetensors.torch import load_file

    for norm in ("l2", "standard"):
        run = tmp_path / norm
        result = _invoke(
            "train-attrs", "--data", data24, "-o", run, *FAST, "--epochs", 1, "--feature-norm", norm
        )
        assert result.exit_code == 0, result.output
        meta = json.loads((run / "model.json").read_text())
        assert meta["feature_norm"] == norm and meta["training"]["config"]["feature_norm"] == norm
        assert ("norm.mean" in load_file(str(run / "model.safetensors"))) == (norm == "standard")
        score = _invoke("score", run, data24 / "images" / "0000.png", "--format", "json")
        assert score.exit_code == 0, score.output
    changed = _invoke(
        "train-attrs", "-o", tmp_path / "l2", "--resume", "--epochs", 2, "--feature-norm", "standard"
    )
    assert (
        "--feature-norm: 'standard' is not valid; expected 'l2', as in the run being resumed"
        in _one_line_error(changed, 2)
    )
    bad = _invoke("train-attrs", "--data", data24, "-o", tmp_path / "bad", *FAST, "--feature-norm", "batch")
    assert (
        _one_line_error(bad, 2)
        == "error: --feature-norm: 'batch' is not valid; expected one of: l2, standard"
    )
    assert not (tmp_path / "bad").exists()


def test_bad_data_is_one_line_naming_file_row_and_column(data24: Path, tmp_path: Path) -> None:
    path = data24 / "labels.csv"
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    rows[3][rows[0].index("pri_color")] = "purple"
    with open(path, "w", newline="") as stream:
        csv.writer(stream).writerows(rows)
    result = _invoke("train-attrs", "--data", data24, "-o", tmp_path / "run", *FAST, "--epochs", 1)
    line = _one_line_error(result, 2)
    assert "labels.csv" in line and "row 3 (line 4), column 'pri_color': 'purple' is not valid" in line
    assert "green-yellow" in line  # the valid classes are listed
    assert not (tmp_path / "run" / "model.json").exists()


@pytest.mark.parametrize(
    "args, code, expected",
    [
        (["--loss-weight", "catgorical=0.7"], 2, "did you mean 'categorical'"),
        (["--loss-weight", "categorical"], 2, "KEY=WEIGHT"),
        (
            ["--augment", "standard"],
            2,
            "--augment: 'standard' is not valid; expected none without --finetune",
        ),
        (["--val-split", "0.6", "--test-split", "0.5"], 2, "--test-split"),
        (["--optimizer", "adamm"], 2, "did you mean 'adam'"),
        (["--size", "16"], 2, "--size: 16 is not valid; expected a whole number >= 32"),
        (["--weights", "missing.pth"], 2, "--weights: 'missing.pth' is not valid"),
        (["--trunk", "-1"], 2, "--trunk: -1 is not valid; expected a whole number >= 0"),
        (["--trunk-width", "0"], 2, "--trunk-width: 0 is not valid; expected a whole number >= 1"),
    ],
)
def test_bad_options(data24: Path, tmp_path: Path, args: list[str], code: int, expected: str) -> None:
    result = _invoke("train-attrs", "--data", data24, "-o", tmp_path / "run", *FAST, "--epochs", 1, *args)
    assert expected in _one_line_error(result, code)


def test_missing_data_and_unavailable_imagenet(
    data24: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _invoke("train-attrs", "-o", tmp_path / "run")
    assert result.exit_code == 2 and "Missing option '--data'" in result.output
    result = _invoke("train-attrs", "--data", tmp_path / "nowhere", "-o", tmp_path / "run")
    assert "nowhere' does not exist" in _one_line_error(result, 2)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(weights_module, "IMAGENET_URL", "http://127.0.0.1:9/")  # no network, fast
    result = _invoke(
        "train-attrs",
        "--data",
        data24,
        "-o",
        tmp_path / "run",
        "--backbone",
        "resnet18",
        "--size",
        "32",
        "--device",
        "cpu",
        "--weights",
        "imagenet",
    )
    line = _one_line_error(result, 1)
    assert "resnet18-f37072fd.pth" in line and "--weights random" in line


def test_skip_bad_counts_and_continues(data24: Path, tmp_path: Path) -> None:
    (data24 / "images" / "0005.png").unlink()
    result = _invoke("train-attrs", "--data", data24, "-o", tmp_path / "a", *FAST, "--epochs", 1)
    assert "row 6 (line 7), column 'image': 'images/0005.png' does not exist" in _one_line_error(result, 2)
    result = _invoke(
        "train-attrs", "--data", data24, "-o", tmp_path / "b", *FAST, "--epochs", 1, "--skip-bad"
    )
    assert result.exit_code == 0, result.output
    assert (
        "note: skipped 1 bad image(s)" in result.output
        and "row 6: images/0005.png does not exist" in result.output
    )


@pytest.mark.parametrize(
    "signum, code, words", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")]
)
def test_a_stop_signal_before_and_during_training_exits_with_its_code_and_one_line(
    data24: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop_signals_as_at_start: None,
    signum: int,
    code: int,
    words: str,
) -> None:
    import styleforge.cli.display as cli_module
    from styleforge.attributes import train as train_module
    from styleforge.engine import BatchProgress

    def signal_now(*args: object, **kwargs: object) -> None:
        deliver(signum)  # no loop listens yet: the handler raises at once

    with monkeypatch.context() as patch:  # while the images are read: before any epoch
        patch.setattr(train_module, "load_images", signal_now)
        before = _invoke("train-attrs", "--data", data24, "-o", tmp_path / "before", *FAST, "--epochs", 2)
    assert before.exit_code == code and "Traceback" not in before.output
    assert before.output.splitlines() == [f"{words} before training started; nothing was trained"]

    show = cli_module.TrainDisplay.show

    def show_then_signal(self: object, event: object) -> None:  # the signal inside the second epoch
        show(self, event)
        if isinstance(event, BatchProgress) and (event.epoch, event.batch) == (2, 1):
            deliver(signum)

    monkeypatch.setattr(cli_module.TrainDisplay, "show", show_then_signal)
    during = _invoke("train-attrs", "--data", data24, "-o", tmp_path / "during", *FAST, "--epochs", 3)
    assert during.exit_code == code and "Traceback" not in during.output
    ended = "interrupted: interrupted by the user" if signum == signal.SIGINT else "stopped by SIGTERM"
    assert [line for line in during.output.splitlines() if line.startswith(words)] == [
        ended,
        f"{words}: continue with styleforge train-attrs -o {tmp_path / 'during'} --resume",
    ]
    with open(tmp_path / "during" / "history.csv", newline="") as stream:
        assert [row["epoch"] for row in csv.DictReader(stream)] == [
            "1"
        ]  # epoch 2 stopped after its first batch


def test_make_dataset_never_overwrites_a_data_set_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert _invoke("make-dataset", out, "--count", 4, "--size", 32).exit_code == 0
    edited = (out / "labels.csv").read_text() + "# my notes\n"
    (out / "labels.csv").write_text(edited)
    again = _invoke("make-dataset", out, "--count", 2, "--size", 32, "--seed", 5)
    line = _one_line_error(again, 2)
    assert line.startswith(f"error: OUT: '{out}' is not valid; expected a new or empty folder")
    assert "labels.csv" in line and "images/" in line and "--overwrite" in line
    assert (out / "labels.csv").read_text() == edited and len(list((out / "images").iterdir())) == 4
    photos = tmp_path / "photos"  # a folder of the user's own pictures, no labels file
    photos.mkdir()
    (photos / "holiday.jpg").write_bytes(b"not really a jpeg")
    assert "holiday.jpg" in _one_line_error(_invoke("make-dataset", photos, "--count", 1, "--size", 32), 2)
    replaced = _invoke("make-dataset", out, "--count", 2, "--size", 32, "--seed", 5, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    with open(out / "labels.csv", newline="") as stream:
        assert [row["image"] for row in csv.DictReader(stream)] == ["images/0000.png", "images/0001.png"]
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "0000.png",
        "0001.png",
    ]  # no stale 0002, 0003
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (
        _invoke("make-dataset", empty, "--count", 1, "--size", 32).exit_code == 0
    )  # an empty folder is fine


def test_resume_names_every_option_that_differs_with_both_values(data24: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _invoke("train-attrs", "--data", data24, "-o", run, *FAST, "--epochs", 1).exit_code == 0
    changed = _invoke(
        "train-attrs", "-o", run, "--resume", "--epochs", 2, "--trunk", "2", "--lr", "0.5", "--finetune"
    )
    line = _one_line_error(changed, 2)
    assert line.startswith("error: --trunk: 2 is not valid; expected 1, as in the run being resumed")
    assert "--lr 0.5 (the run has --lr 0.01)" in line and "--finetune (the run has no --finetune)" in line
    assert "only --epochs" in line
    for python_words in ("None", "True", "False", "PosixPath"):
        assert python_words not in line


def test_an_image_listed_twice_is_an_error_naming_both_rows(data24: Path, tmp_path: Path) -> None:
    labels = data24 / "labels.csv"
    lines = labels.read_text().splitlines()
    lines.append(lines[3].replace("images/0002.png", "./images/../images/0002.png"))  # row 3's image again
    labels.write_text("\n".join(lines) + "\n")
    line = _one_line_error(_invoke("train-attrs", "--data", data24, "-o", tmp_path / "run", *FAST), 2)
    assert (
        "row 25 (line 26), column 'image': './images/../images/0002.png' is the image of row 3 (line 4)"
        in line
    )
    assert "list each image once" in line and not (tmp_path / "run").exists()
