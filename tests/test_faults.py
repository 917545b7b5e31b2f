"""Fault tests through the CLI (click's CliRunner): a user's bad file or bad output path gives one
``error:`` line naming the parameter and the file, exit code 2, no traceback and no output file."""

from __future__ import annotations

import errno
import importlib
import os
import tempfile
from pathlib import Path

import pytest
from _helpers import write_samples
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
    run_module = importlib.import_module("styleforge.guidance.run")  # what the CLI calls

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the transfer ran")

    monkeypatch.setattr(run_module, "transfer", refuse)


# --- --from-image with damaged metadata (fault 2) ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"command": "transfer", "config": {', "[1, 2]", '"transfer"', "null"],
    ids=["garbage", "truncated", "list", "string", "null"],
)
def test_from_image_with_unusable_metadata_is_one_error_line(
    tmp_path: Path, text: str, no_transfer: None
) -> None:
    bad = _png_with_metadata_text(tmp_path / "bad.png", text)
    out = tmp_path / "out.png"
    result = _transfer("--from-image", bad, "-o", out)
    line = _one_error_line(result)
    assert result.exit_code == 2
    assert (
        str(bad) in line and "metadata" in line and ("not valid JSON" in line or "not a JSON object" in line)
    )
    assert not out.exists()


def test_from_image_with_unusable_metadata_names_the_option(tmp_path: Path, no_transfer: None) -> None:
    bad = _png_with_metadata_text(tmp_path / "bad.png", "{not json")
    line = _one_error_line(_transfer("--from-image", bad, "-o", tmp_path / "out.png"))
    assert line.startswith("error: --from-image: ") and str(bad) in line


def test_from_image_without_metadata_still_says_so(tmp_path: Path, no_transfer: None) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    result = _transfer("--from-image", plain, "-o", tmp_path / "out.png")
    line = _one_error_line(result)
    assert (
        result.exit_code == 2
        and "--from-image" in line
        and str(plain) in line
        and "not a PNG written by styleforge" in line
    )


# --- output paths that cannot be written (fault 4) ---------------------------------------------------


def _inputs(tmp_path: Path) -> list[object]:
    """CONTENT --style A and the options of a one-iteration 32 px run on random weights."""
    content, a, _ = write_samples(tmp_path / "in").values()
    return [
        content,
        "--style",
        a,
        "--size",
        "32",
        "--iterations",
        "1",
        "--weights",
        "random",
        "--device",
        "cpu",
        "--quiet",
    ]


@pytest.mark.parametrize("option", ["-o", "--plot"])
def test_an_output_inside_a_file_is_refused_before_any_work(
    tmp_path: Path, no_transfer: None, option: str
) -> None:
    # Before: the whole transfer ran, then `-o existing_file.png/out.png` ended in a FileExistsError
    # traceback.
    existing = tmp_path / "existing_file.png"
    existing.write_bytes(b"an earlier result")
    bad = existing / "out.png"
    args = ["-o", bad] if option == "-o" else ["-o", tmp_path / "out.png", "--plot", bad]
    result = _transfer(*_inputs(tmp_path), *args)
    line = _one_error_line(result)
    assert result.exit_code == 2
    assert line.startswith(f"error: {option}: ") and str(bad) in line and "is a file, not a folder" in line
    assert existing.read_bytes() == b"an earlier result" and not (tmp_path / "out.png").exists()


def test_an_output_folder_that_takes_no_file_is_refused_before_any_work(
    tmp_path: Path, no_transfer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = _inputs(tmp_path)
    target = tmp_path / "full"
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:
        if dir is not None and Path(os.fspath(dir)) == target:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    result = _transfer(*inputs, "-o", target / "out.png")
    line = _one_error_line(result)
    assert result.exit_code == 2 and line.startswith("error: -o: ") and "Read-only file system" in line
    assert not target.exists()  # the folder made for the probe is gone again


def test_a_result_that_cannot_be_written_at_the_end_is_saved_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The probe passes; while the transfer runs, the output's folder is replaced by a file.
    run_module = importlib.import_module("styleforge.guidance.run")
    real_transfer = run_module.transfer
    out = tmp_path / "run" / "out.png"

    def transfer_then_lose_the_folder(*args: object, **kwargs: object) -> object:
        result = real_transfer(*args, **kwargs)
        (tmp_path / "run").write_bytes(b"")
        return result

    monkeypatch.setattr(run_module, "transfer", transfer_then_lose_the_folder)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = _transfer(*_inputs(tmp_path), "-o", out)
    assert result.exit_code == 1
    line = [line for line in result.output.splitlines() if line.startswith("error: ")][-1]
    saved = cwd / "out.recovered.png"
    expected = (
        f"error: -o: could not write {str(out)!r} (File exists: {str(tmp_path / 'run')!r}); "
        f"the result was saved to {str(saved)!r}"
    )
    assert line == expected
    assert Image.open(saved).size == (32, 21) and "Traceback" not in result.output


# --- every command's output location is probed before its work ---------------------------------------


@pytest.mark.parametrize(
    "args, param",
    [
        (["make-dataset", "{bad}", "--count", "2"], "OUT"),
        (["train-attrs", "--data", "{tmp}", "-o", "{bad}"], "-o"),
        (["score", "{tmp}", "{tmp}", "-o", "{bad}/scores.csv"], "-o"),
        (["sweep", "transfer", "c.jpg", "--style", "s.jpg", "--grid", "tv-weight=0,1", "-o", "{bad}"], "-o"),
    ],
)
def test_every_command_probes_its_output_before_any_work(tmp_path: Path, args: list[str], param: str) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_bytes(b"")
    bad = str(blocker / "inside")
    result = CliRunner().invoke(cli, [a.format(bad=bad, tmp=tmp_path) for a in args])
    line = _one_error_line(result)
    assert result.exit_code == 2 and line.startswith(f"error: {param}: "), result.output
    assert "a_file" in line and list(tmp_path.iterdir()) == [blocker]


# --- an output is never one of the inputs -------------------------------------------------------------


@pytest.mark.parametrize("which, param", [("content", "-o"), ("a", "-o"), ("a", "--plot")])
def test_an_output_that_is_an_input_is_refused_and_the_input_kept(
    tmp_path: Path, no_transfer: None, which: str, param: str
) -> None:
    samples = write_samples(tmp_path / "in")
    before = samples[which].read_bytes()
    args = ["-o", samples[which]] if param == "-o" else ["-o", tmp_path / "out.png", param, samples[which]]
    result = _transfer(samples["content"], "--style", samples["a"], "--weights", "random", *args)
    line = _one_error_line(result)
    assert (
        result.exit_code == 2
        and line.startswith(f"error: {param}: ")
        and "which the run would overwrite" in line
    )
    assert samples[which].read_bytes() == before


def test_a_folder_of_photos_is_not_written_into_itself(tmp_path: Path, no_transfer: None) -> None:
    samples = write_samples(tmp_path / "in")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "beach.png").write_bytes(samples["content"].read_bytes())
    line = _one_error_line(_transfer(photos, "--style", samples["a"], "-o", photos, "--weights", "random"))
    assert (
        "it is the CONTENT" in line and (photos / "beach.png").read_bytes() == samples["content"].read_bytes()
    )
