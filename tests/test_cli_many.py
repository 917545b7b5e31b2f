"""Tests of ``styleforge transfer`` over several content images and folders (CliRunner)."""

from __future__ import annotations

from pathlib import Path

from _helpers import write_image, write_samples
from click.testing import CliRunner, Result

from styleforge.cli import cli
from styleforge.images import read_metadata

FAST = ["--size", "32", "--iterations", "3", "--weights", "random", "--device", "cpu"]


def _invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, ["transfer", *map(str, args)])


def _error(result: Result, code: int) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert lines, result.output
    return lines[0]


def test_a_folder_and_a_file_each_become_an_output_with_its_own_metadata(tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    folder = tmp_path / "holiday"
    write_image(folder / "beach.jpg", (40, 32), seed=4)
    write_image(folder / "sub" / "hill.png", (32, 40), seed=5)
    (folder / "notes.txt").write_text("not an image: not listed")
    out = tmp_path / "out"
    result = _invoke(folder, samples["content"], "--style", samples["a"], "-o", out, *FAST)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == ["beach.png", "content.png", "hill.png"]
    for name, source in (
        ("beach.png", folder / "beach.jpg"),
        ("hill.png", folder / "sub" / "hill.png"),
        ("content.png", samples["content"]),
    ):
        meta = read_metadata(out / name)
        assert meta is not None and Path(meta["content"]).name == source.name
    assert "done 3/3:" in result.output and str(out / "hill.png") in result.output


def test_many_contents_refuse_an_image_output_clashing_names_and_per_run_files(tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    other = write_image(tmp_path / "b" / "content.jpg", (40, 32), seed=4)
    line = _error(_invoke(samples["content"], other, "--style", samples["a"], "-o", tmp_path / "o", *FAST), 2)
    assert line.startswith("error: CONTENT: ") and "would be written to" in line and "content.png" in line
    line = _error(
        _invoke(samples["content"], samples["b"], "--style", samples["a"], "-o", tmp_path / "x.png", *FAST), 2
    )
    assert line.startswith("error: -o: ") and "expected a folder" in line
    line = _error(
        _invoke(
            samples["content"],
            samples["b"],
            "--style",
            samples["a"],
            "-o",
            tmp_path / "o",
            "--history",
            tmp_path / "h.csv",
            *FAST,
        ),
        2,
    )
    assert line.startswith("error: --history: ") and "single CONTENT" in line
    line = _error(_invoke(tmp_path / "empty", "--style", samples["a"], "-o", tmp_path / "o", *FAST), 2)
    assert line.startswith("error: CONTENT: ")
    (tmp_path / "empty").mkdir()
    line = _error(_invoke(tmp_path / "empty", "--style", samples["a"], "-o", tmp_path / "o", *FAST), 2)
    assert "is a folder with no images" in line
    assert not (tmp_path / "o").exists() and not (tmp_path / "x.png").exists()


def test_a_broken_image_is_skipped_the_others_written_and_the_exit_code_says_so(tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    folder = tmp_path / "in"
    good = write_image(folder / "a_good.png", (40, 32), seed=4)
    (folder / "b_broken.png").write_bytes(good.read_bytes()[:80])  # the header reads, the pixels do not
    write_image(folder / "c_good.png", (32, 40), seed=5)
    result = _invoke(folder, "--style", samples["a"], "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_good.png", "c_good.png"]
    assert "b_broken.png" in result.output and "skipped" in result.output
    assert "1 of 3 image(s) were not written" in result.output


def test_contents_from_a_config_file_and_checkpoints_per_image(tmp_path: Path) -> None:
    samples = write_samples(tmp_path)
    other = write_image(tmp_path / "other.png", (32, 40), seed=4)
    config = tmp_path / "run.toml"
    config.write_text(
        f"[transfer]\ncontent = [{str(samples['content'])!r}, {str(other)!r}]\n"
        f"style = [{str(samples['a'])!r}]\n"
    )
    out = tmp_path / "out"
    result = _invoke("--config", config, "-o", out, "--checkpoint-every", 2, *FAST)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["content.png", "content_0002.png", "other.png", "other_0002.png"]
    assert read_metadata(out / "other_0002.png")["iteration"] == 2


def test_ctrl_c_keeps_the_finished_images_and_the_current_best_and_exits_130(
    tmp_path: Path, monkeypatch
) -> None:
    from styleforge.engine import Progress
    from styleforge.guidance import run as run_module

    samples = write_samples(tmp_path)
    contents = [write_image(tmp_path / "in" / f"{n}.png", (40, 32), seed=i) for i, n in enumerate("abc")]
    real = run_module.transfer_each

    class Flag:
        requested = False

    flag, iterations = Flag(), []

    def press(event: object) -> None:  # Ctrl-C during the second image's second iteration
        if isinstance(event, Progress):
            iterations.append(event.iteration)
            if len(iterations) == 5:
                flag.requested = True

    def each(paths, styles, config, *, callbacks=(), **options):  # options: the guidance's
        return real(paths, styles, config, callbacks=[*callbacks, press], interrupt=flag, **options)

    monkeypatch.setattr(run_module, "transfer_each", each)
    result = _invoke(*contents, "--style", samples["a"], "-o", tmp_path / "out", *FAST)
    assert result.exit_code == 130, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]  # c never started
    assert read_metadata(tmp_path / "out" / "b.png")["iteration"] < 3
    assert (
        "interrupted: the best image so far of" in result.output
        and "1 of 3 image(s) were finished" in result.output
    )


def test_an_image_that_makes_no_progress_is_not_written_and_the_others_are(tmp_path: Path) -> None:
    # The style image is one of the contents: its start already has loss 0, so nothing beats it.
    samples = write_samples(tmp_path)
    result = _invoke(
        samples["a"],
        samples["content"],
        "--style",
        samples["a"],
        "-o",
        tmp_path / "out",
        *FAST,
        "--style-scale",
        "1",
    )
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["content.png"]
    assert f"error: {samples['a']}: the transfer made no progress" in result.output
    assert "1 of 2 image(s) were not written" in result.output
