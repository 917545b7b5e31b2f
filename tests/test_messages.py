"""Messages name the option, the value and what is valid, in the user's words: values from TOML
files and output metadata are checked as strictly as the command line, no Python repr reaches a
message, and usage errors point to the right --help (through the command line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _helpers import invoke, one_line_error, write_samples
from PIL import Image, PngImagePlugin

from styleforge.errors import InvalidParameter, shown
from styleforge.images import METADATA_KEY

FAST = ["--size", "32", "--iterations", "2", "--weights", "random", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["foo"], "(see styleforge --help)"),
        (["sweep", "foo"], "(see styleforge sweep --help)"),
        (["transfer", "--bogus"], "(see styleforge transfer --help)"),
    ],
)
def test_usage_errors_point_to_the_right_help(argv: list[str], hint: str) -> None:
    line = one_line_error(invoke(*argv))
    assert line.endswith(hint) and "styleforge styleforge" not in line


@pytest.mark.parametrize("option", ["--gif-every", "--checkpoint-every"])
@pytest.mark.parametrize("value", ["0", "-3"])
def test_non_positive_intervals_are_refused_before_any_work(tmp_path: Path, option: str, value: str) -> None:
    samples = write_samples(tmp_path)
    out = tmp_path / "out.png"
    line = one_line_error(
        invoke(
            "transfer",
            samples["content"],
            "--style",
            samples["a"],
            "-o",
            out,
            option,
            value,
            "--progress-gif",
            tmp_path / "run.gif",
            *FAST,
        )
    )
    assert line == f"error: {option}: {value} is not valid; expected a whole number >= 1"
    assert not out.exists() and not (tmp_path / "run.gif").exists()


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("size = 64.5", "size = 64.5 is not valid; expected a whole number"),
        ("size = 64.0", "size = 64.0 is not valid; expected a whole number"),
        ("iterations = true", "iterations = true is not valid; expected a whole number"),
        (
            'style-weight = "heavy"',
            None,
        ),  # text, as the command line would have it: the option's own check names it
        (
            "style = 5",
            "style = 5 is not valid; expected a string (PATH[:WEIGHT][@SCALE]) or a list of strings",
        ),
        ('quiet = "yes"', "quiet = 'yes' is not valid; expected true or false"),
        ("pooling = 2", "pooling = 2 is not valid; expected a string"),
        ('style-layer = "relu1_1"', "unknown key 'style-layer' (did you mean 'style-layers'?)"),
    ],
)
def test_toml_values_are_checked_as_strictly_as_the_command_line(
    tmp_path: Path, toml: str, expected: str | None
) -> None:
    samples = write_samples(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text(f'style = "{samples["a"]}"\n' * (not toml.startswith("style =")) + toml + "\n")
    out = tmp_path / "out.png"
    line = one_line_error(invoke("transfer", samples["content"], "--config", config, "-o", out, *FAST))
    if expected is None:
        assert "--style-weight" in line and "'heavy'" in line
    else:
        assert line == f"error: --config {config}: {expected}" or line.startswith(
            f"error: --config {config}: {expected}"
        )
    assert not out.exists()


def test_tile_and_scales_take_whole_numbers_from_toml(tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    config = tmp_path / "run.toml"
    config.write_text(
        f'style = "{samples["a"]}"\ntile = 64\nscales = 1\nstyle-layers = ["relu1_1", "relu2_1"]\n'
    )
    result = invoke("transfer", samples["content"], "--config", config, "-o", tmp_path / "out.png", *FAST)
    assert result.exit_code == 0, result.output


def test_from_image_metadata_is_checked_as_strictly(tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    first = tmp_path / "first.png"
    assert invoke("transfer", samples["content"], "--style", samples["a"], "-o", first, *FAST).exit_code == 0
    with Image.open(first) as image:
        meta = json.loads(image.text[METADATA_KEY])
    meta["config"]["iterations"] = 2.5  # edited by hand
    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, json.dumps(meta))
    edited = tmp_path / "edited.png"
    Image.open(first).save(edited, pnginfo=info)
    line = one_line_error(invoke("transfer", "--from-image", edited, "-o", tmp_path / "again.png"))
    assert line == f"error: --from-image {edited}: iterations = 2.5 is not valid; expected a whole number"


@pytest.mark.parametrize(
    "value, words",
    [
        (None, "missing"),
        (True, "true"),
        (False, "false"),
        (Path("a/b.png"), "'a/b.png'"),
        ([1, "x"], "[1, 'x']"),
        (0.5, "0.5"),
        (float("inf"), "inf"),
        (7, "7"),
    ],
)
def test_values_are_shown_in_the_users_words(value: object, words: str) -> None:
    message = str(InvalidParameter("--opt", value, "something else"))
    assert words in message and "None" not in message and "PosixPath" not in message and "True" not in message
    if value is not None:
        assert shown(value) == words
