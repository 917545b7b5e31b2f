"""The command line: ``train-stylizer``, ``transfer --model`` and their one-line errors (through
click's CliRunner)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from _ff_helpers import FAST
from _helpers import deliver, invoke, one_line_error, stop_signals_as_at_start, write_image  # noqa: F401
from PIL import Image

from styleforge.feedforward.model import save_stylizer
from styleforge.images import read_metadata
from styleforge.nets.transformer import TransformerNet


def _args(options: dict[str, object]) -> list[str]:
    args: list[str] = []
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        args += [flag, ",".join(value) if isinstance(value, tuple) else str(value)]
    return args


@pytest.fixture
def model(tmp_path: Path) -> Path:
    save_stylizer(tmp_path / "model", TransformerNet(4, 1, seed=1), {"styles": []})
    return tmp_path / "model"


def test_train_then_transfer_with_the_model(photos: Path, style: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = invoke("train-stylizer", "--style", style, "--data", photos, "-o", run, *_args(FAST))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    iters = [line for line in lines if line.startswith("iter ")]
    assert [line.split(" · ")[0] for line in iters] == ["iter 2/4", "iter 4/4"]
    assert "loss " in iters[0] and " = 1×content " in iters[0] and "10×style.style " in iters[0]
    assert any(line.startswith("done: completed after 4 iterations; best iteration") for line in lines)
    assert str(run / "model.safetensors") in lines
    out = tmp_path / "out.png"
    result = invoke("transfer", photos / "p0.png", "--model", run, "-o", out)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == Image.open(photos / "p0.png").size
    meta = read_metadata(out)
    assert meta["command"] == "transfer --model" and meta["model"]["path"] == str(run)


def test_many_pictures_in_batches_are_the_pixels_of_one_by_one(model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for i in range(5):  # three of one size, then two of another: batches of 3 and 2
        write_image(folder / f"c{i}.png", (40, 32) if i < 3 else (24, 36), seed=20 + i)
    result = invoke("transfer", folder, "--model", model, "-o", tmp_path / "many")
    assert result.exit_code == 0, result.output
    assert "done: 5 image(s) through" in result.output
    for i in range(5):
        single = tmp_path / f"one{i}.png"
        assert invoke("transfer", folder / f"c{i}.png", "--model", model, "-o", single).exit_code == 0
        assert np.array_equal(
            np.asarray(Image.open(single)), np.asarray(Image.open(tmp_path / "many" / f"c{i}.png"))
        )


def test_model_options_size_and_preserve_colors(model: Path, tmp_path: Path) -> None:
    content = write_image(tmp_path / "c.png", (48, 32), seed=5)
    out = tmp_path / "o.png"
    result = invoke("transfer", content, "--model", model, "-o", out, "--size", 24, "--preserve-colors")
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (24, 16)
    meta = read_metadata(out)
    assert meta["size"] == 24 and meta["preserve_colors"] is True


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--style", "s.png"], "--style: ['s.png'] is not valid; expected no --style with --model"),
        (["--iterations", "9"], "--iterations: 9 is not valid; expected no --iterations with --model"),
        (["--history", "h.csv"], "--history: 'h.csv' is not valid; expected no --history with --model"),
    ],
)
def test_options_a_model_does_not_take_are_refused(
    model: Path, tmp_path: Path, extra: list[str], words: str
) -> None:
    content = write_image(tmp_path / "c.png")
    line = one_line_error(invoke("transfer", content, "--model", model, "-o", tmp_path / "o.png", *extra))
    assert words in line
    assert not (tmp_path / "o.png").exists()


def test_bad_model_folders_and_bad_data_are_one_line_and_write_nothing(
    photos: Path, style: Path, tmp_path: Path
) -> None:
    content = write_image(tmp_path / "c.png")
    out = tmp_path / "o.png"
    line = one_line_error(invoke("transfer", content, "--model", tmp_path / "nope", "-o", out))
    assert line == f"error: --model: {str(tmp_path / 'nope')!r} does not exist"
    (tmp_path / "empty").mkdir()
    line = one_line_error(invoke("transfer", content, "--model", tmp_path / "empty", "-o", out))
    assert "has no model.json; expected the -o folder of styleforge train-stylizer" in line
    assert not out.exists()
    few = tmp_path / "few"
    write_image(few / "a.png", (40, 40))
    (few / "b.jpg").write_text("not a jpeg")
    run = tmp_path / "run"
    line = one_line_error(invoke("train-stylizer", "--style", style, "--data", few, "-o", run, *_args(FAST)))
    assert "--data: " in line and "has 1 readable image(s) of 2; expected at least 2" in line
    assert "b.jpg (is not an image Pillow can read" in line
    assert not (run / "model.json").exists() and not (run / "resume.pt").exists()
    line = one_line_error(
        invoke("train-stylizer", "--style", style, "--data", photos, "-o", run, "--size", "8")
    )
    assert line.startswith("error: --size: 8 is not valid; expected a whole number >= 16")
    line = one_line_error(invoke("train-stylizer", "--style", style, "-o", run))
    assert "Missing option '--data'" in line


def test_unreadable_photos_are_listed_and_training_goes_on(photos: Path, style: Path, tmp_path: Path) -> None:
    (photos / "more" / "broken.webp").write_bytes(b"RIFF0000WEBPjunk")
    result = invoke(
        "train-stylizer", "--style", style, "--data", photos, "-o", tmp_path / "run", *_args(FAST)
    )
    assert result.exit_code == 0, result.output
    assert "note: skipped 1 unreadable image(s): " in result.output and "broken.webp" in result.output
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert meta["training"]["skipped"][0][0].endswith("broken.webp")


def test_ctrl_c_keeps_the_best_and_says_how_to_resume(
    photos: Path, style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_signals_as_at_start: None
) -> None:
    from styleforge.feedforward import train as train_module

    real = train_module.fit

    def fit(*args: object, **kwargs: object) -> object:
        def press(event: object) -> None:
            if type(event).__name__ == "EpochEnded" and event.epoch == 1:  # type: ignore[attr-defined]
                deliver(signal.SIGINT)

        kwargs["callbacks"] = [*kwargs["callbacks"], press]  # type: ignore[misc]
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "fit", fit)
    run = tmp_path / "run"
    result = invoke("train-stylizer", "--style", style, "--data", photos, "-o", run, *_args(FAST))
    assert result.exit_code == 130, result.output
    assert f"interrupted: continue with styleforge train-stylizer -o {run} --resume" in result.output
    assert json.loads((run / "model.json").read_text())["best"]["iteration"] == 2
    result = invoke("train-stylizer", "-o", run, "--resume")
    assert result.exit_code == 0, result.output
    assert "iter 4/4" in result.output


def test_the_shared_options_show_the_stylizers_defaults_and_read_a_config(
    style: Path, tmp_path: Path
) -> None:
    result = invoke("train-stylizer", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for words in ("--style-loss gram|w2|sw", "[default: gram]", "[default: 3.0]", "[default: relu2_2]"):
        assert words in text, words
    toml = tmp_path / "run.toml"
    toml.write_text('[train-stylizer]\nsize = 8\nstyle-loss = "gram"\n')
    line = one_line_error(
        invoke("train-stylizer", "--style", style, "--data", tmp_path, "-o", tmp_path / "r", "--config", toml)
    )
    assert line.startswith("error: --size: 8 is not valid; expected a whole number >= 16")


def test_the_model_size_option(model: Path, tmp_path: Path) -> None:
    content = write_image(tmp_path / "c.png", (64, 40), seed=5)
    out = tmp_path / "o.png"
    result = invoke("transfer", content, "--model", model, "-o", out, "--model-size", 32)
    assert result.exit_code == 0, result.output
    meta = read_metadata(out)
    assert meta["model_size"] == "32" and meta["network_input"] == [20, 32]
    assert Image.open(out).size == (64, 40)
    line = one_line_error(
        invoke("transfer", content, "--model", model, "-o", tmp_path / "b.png", "--model-size", 8)
    )
    assert line == "error: --model-size: '8' is not valid; expected auto, off or a long side in px >= 32"
    assert not (tmp_path / "b.png").exists()
    line = one_line_error(
        invoke("transfer", content, "--style", content, "-o", tmp_path / "b.png", "--model-size", 64)
    )
    assert line == "error: --model-size: '64' is not valid; expected no --model-size without --model"


def test_a_bad_tile_with_a_model_is_one_line_before_any_picture_on_either_backend(
    model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    for i in range(2):
        write_image(folder / f"c{i}.png", (40, 32), seed=i)
    for backend in ("local", "ray"):  # refused before Ray would start
        out = tmp_path / backend
        line = one_line_error(
            invoke("transfer", folder, "--model", model, "-o", out, "--tile", 50, "--backend", backend)
        )
        assert line == "error: --tile: '50' is not valid; expected auto, off or a tile side in px >= 128"
        assert not out.exists()
