"""Fault tests through the CLI (click's CliRunner): a user's bad file or bad output path gives one
``error:`` line naming the parameter and the file, exit code 2, no traceback and no output file."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from PIL import Image, PngImagePlugin

from styleforge.cli import cli
from styleforge.images import METADATA_KEY


def _transfer(*args: object) -> Result:
    return CliRunner().invoke(cli, ["transfer", *map(str, args)])


def _one_error_line(result: Result) -> str:
    """The run's single ``error:`` line, after checking it is the only output and no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _png_with_metadata_text(path: Path, text: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, text)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, pnginfo=info)
    return path


@pytest.fixture
def no_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fails the test if a transfer starts: these errors must come before any work."""
    # styleforge.transfer is the package's transfer() function, so the module comes from sys.modules.
    run_module = importlib.import_module("styleforge.transfer.run")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the transfer ran")

    monkeypatch.setattr(run_module, "transfer", refuse)


# --- --from-image with damaged metadata (fault 2) ---------------------------------------------------


@pytest.mark.parametrize("text", ["{not json", '{"command": "transfer", "config": {', "[1, 2]", '"transfer"', "null"],
                         ids=["garbage", "truncated", "list", "string", "null"])
def test_from_image_with_unusable_metadata_is_one_error_line(tmp_path: Path, text: str, no_transfer: None) -> None:
    bad = _png_with_metadata_text(tmp_path / "bad.png", text)
    out = tmp_path / "out.png"
    result = _transfer("--from-image", bad, "-o", out)
    line = _one_error_line(result)
    assert result.exit_code == 2
    assert str(bad) in line and "metadata" in line and ("not valid JSON" in line or "not a JSON object" in line)
    assert not out.exists()


@pytest.mark.xfail(strict=True, reason="needs cli._read_image_config to call read_metadata(value, param='--from-image')")
def test_from_image_with_unusable_metadata_names_the_option(tmp_path: Path, no_transfer: None) -> None:
    bad = _png_with_metadata_text(tmp_path / "bad.png", "{not json")
    line = _one_error_line(_transfer("--from-image", bad, "-o", tmp_path / "out.png"))
    assert line.startswith("error: --from-image: ") and str(bad) in line


def test_from_image_without_metadata_still_says_so(tmp_path: Path, no_transfer: None) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    result = _transfer("--from-image", plain, "-o", tmp_path / "out.png")
    line = _one_error_line(result)
    assert result.exit_code == 2 and "--from-image" in line and str(plain) in line and "not a PNG written by styleforge" in line
