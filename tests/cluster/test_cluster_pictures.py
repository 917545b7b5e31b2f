"""``styleforge transfer ... --backend ray`` with a local Ray instance: the local run's pixels, a failed
picture, a second run that skips what is done, a stop, and a missing Ray."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _helpers import (  # noqa: F401  (stop_signals_as_at_start: a fixture)
    clip_frames,
    deliver,
    one_line_error,
    stop_signals_as_at_start,
    write_frames,
    write_image,
    write_samples,
)
from click.testing import CliRunner, Result
from PIL import Image

from styleforge.cli import cli
from styleforge.config import TransferConfig
from styleforge.images import read_metadata

# fp32 named: the workers are other processes, where the test suite's float32 default (conftest.py)
# does not reach, and --precision auto takes bf16 on a CPU that has it natively.
FAST = ["--size", "32", "--iterations", "3", "--weights", "random", "--device", "cpu", "--precision", "fp32"]


def _invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, ["transfer", *map(str, args)])


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Any]:
    """Three content images in a folder, and the styles."""
    samples = write_samples(tmp_path)
    folder = tmp_path / "photos"
    for i, size in enumerate([(40, 32), (32, 40), (48, 32)]):
        write_image(folder / f"p{i}.png", size, seed=10 + i)
    return {"folder": folder, "style": samples["a"], "names": ["p0.png", "p1.png", "p2.png"]}


def test_the_pictures_equal_the_local_run_and_a_second_run_skips_them(
    ray_instance: Any, photos: dict[str, Any], tmp_path: Path
) -> None:
    local, spread = tmp_path / "local", tmp_path / "ray"
    args = [photos["folder"], "--style", photos["style"], *FAST]
    assert _invoke(*args, "-o", local).exit_code == 0
    result = _invoke(*args, "-o", spread, "--backend", "ray")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in spread.iterdir()) == photos["names"]
    for name in photos["names"]:  # the same pixels and the same record of how they were made
        assert np.array_equal(_pixels(local / name), _pixels(spread / name)), name
        assert read_metadata(local / name) == read_metadata(spread / name)
    assert result.output.count("done ") == 3 and "skipped" not in result.output

    stamps = {name: (spread / name).stat().st_mtime_ns for name in photos["names"]}
    (spread / "p1.png").unlink()
    again = _invoke(*args, "-o", spread, "--backend", "ray")
    assert again.exit_code == 0, again.output
    assert "skipped 2 finished picture(s)" in again.stdout and again.output.count("done ") == 1
    assert np.array_equal(_pixels(local / "p1.png"), _pixels(spread / "p1.png"))
    assert all((spread / n).stat().st_mtime_ns == stamps[n] for n in ("p0.png", "p2.png"))
    # Other options: nothing is finished, every picture is made again.
    other = _invoke(*args, "-o", spread, "--backend", "ray", "--content-weight", "2")
    assert other.exit_code == 0 and "skipped" not in other.output and other.output.count("done ") == 3


def test_a_failed_picture_is_named_and_the_others_are_written(
    ray_instance: Any, photos: dict[str, Any], tmp_path: Path
) -> None:
    broken = photos["folder"] / "p1.png"
    broken.write_bytes(broken.read_bytes()[:80])  # its header reads, its pixels do not
    out = tmp_path / "out"
    result = _invoke(photos["folder"], "--style", photos["style"], *FAST, "-o", out, "--backend", "ray")
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p2.png"]
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all(str(broken) in line for line in errors), result.output
    assert errors[-1] == f"error: 1 of 3 image(s) were not written: {broken}"


def test_a_stop_keeps_the_pictures_in_progress_and_starts_no_other(
    ray_instance: Any, photos: dict[str, Any], tmp_path: Path
) -> None:
    from styleforge.cluster import PictureProgress, finished_pictures, transfer_pictures

    class Flag:
        requested = False

    flag = Flag()

    def press(event: object) -> None:  # Ctrl-C once a picture has begun
        if isinstance(event, PictureProgress):
            flag.requested = True

    write_image(photos["folder"] / "p3.png", (40, 40), seed=20)
    contents = sorted(photos["folder"].iterdir())
    outputs = [tmp_path / "out" / c.name for c in contents]
    config = TransferConfig(size=32, iterations=400, weights="random", device="cpu", precision="fp32")
    runs = list(
        transfer_pictures(
            contents, outputs, [str(photos["style"])], config, callbacks=[press], interrupt=flag
        )
    )
    assert 1 <= len(runs) <= 2  # those in progress on the 2 workers; the others never started
    for run in runs:
        assert run.error is None and run.result is not None
        assert run.result.stop_reason == "interrupted" and 0 < len(run.result.history) < 400
        run.result.save(run.output)
    # Their best so far is kept, but they are not finished: a second run does them again.
    assert finished_pictures(contents, outputs, [str(photos["style"])], config) == [False] * 4
    assert finished_pictures(contents[:1], outputs[:1], [str(photos["style"])], config) == [False]


def test_ctrl_c_says_where_the_pictures_are_and_exits_130(
    ray_instance: Any,
    photos: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop_signals_as_at_start: None,
) -> None:
    from styleforge.cli.display import PicturesDisplay
    from styleforge.cluster import PictureProgress

    show = PicturesDisplay.show

    def press(self: PicturesDisplay, event: object) -> None:
        if isinstance(event, PictureProgress) and not getattr(self, "pressed", False):
            self.pressed = True
            deliver(signal.SIGINT)
        show(self, event)

    monkeypatch.setattr(PicturesDisplay, "show", press)
    out = tmp_path / "out"
    args = [photos["folder"], "--style", photos["style"], "--size", "32", "--iterations", "400"]
    result = _invoke(*args, "--weights", "random", "--device", "cpu", "-o", out, "--backend", "ray")
    assert result.exit_code == 130, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("interrupted: "))
    assert line.startswith(
        "interrupted: 0 of 3 picture(s) were finished; the best so far of those in progress"
    )
    assert "run the same command again to do the rest" in line
    written = sorted(out.iterdir())
    assert written and all(str(p) in line for p in written)
    assert all(read_metadata(p)["stop_reason"] == "interrupted" for p in written)


def test_per_picture_outputs_are_refused_on_a_cluster(photos: dict[str, Any], tmp_path: Path) -> None:
    line = one_line_error(
        _invoke(
            photos["folder"],
            "--style",
            photos["style"],
            *FAST,
            "-o",
            tmp_path / "o",
            "--backend",
            "ray",
            "--history",
            tmp_path / "h.csv",
        )
    )
    assert line.startswith("error: --history: ") and "nothing with --backend ray" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["transfer", "video"])
def test_a_missing_ray_is_one_line(
    command: str, photos: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as where it is not installed
    source = photos["folder"] if command == "transfer" else tmp_path / "clip"
    write_frames(tmp_path / "clip", clip_frames(3))
    out = tmp_path / ("o" if command == "transfer" else "frames")
    result = CliRunner().invoke(
        cli,
        [command, str(source), "--style", str(photos["style"]), *FAST, "-o", str(out), "--backend", "ray"],
    )
    line = one_line_error(result, code=1)
    assert line == "error: --backend ray: Ray is not installed; pip install 'styleforge[ray]'"


def test_a_worker_with_a_local_runs_threads_gives_its_pixels(
    ray_instance: Any, photos: dict[str, Any], tmp_path: Path
) -> None:
    """A sum split over 2 threads rounds otherwise than over 1, and a transfer carries that on: the
    worker that gives a local run's pixels has that run's threads (and its precision)."""
    import torch

    from styleforge.cluster import transfer_pictures
    from styleforge.guidance.run import transfer

    config = TransferConfig(size=32, iterations=20, weights="random", device="cpu", precision="fp32")
    content, styles = photos["folder"] / "p0.png", [str(photos["style"])]
    torch.set_num_threads(2)  # the autouse one_thread fixture restores it
    local = transfer(content, styles, config).image
    [two] = transfer_pictures([content], [tmp_path / "a.png"], styles, config, cpus_per_worker=2)
    [one] = transfer_pictures([content], [tmp_path / "b.png"], styles, config)
    assert two.result is not None and one.result is not None
    assert torch.equal(two.result.image, local)
    torch.set_num_threads(1)
    assert torch.equal(one.result.image, transfer(content, styles, config).image)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A seeded, untrained stylizer folder."""
    from styleforge.feedforward.model import save_stylizer
    from styleforge.nets.transformer import TransformerNet

    save_stylizer(tmp_path / "model", TransformerNet(4, 1, seed=1), {"styles": []})
    return tmp_path / "model"


def test_model_pictures_on_the_workers_are_the_local_runs_and_a_second_run_skips_them(
    ray_instance: Any, photos: dict[str, Any], model: Path, tmp_path: Path
) -> None:
    local, spread = tmp_path / "local", tmp_path / "ray"
    args = [photos["folder"], "--model", model, "--size", "36", "--device", "cpu"]
    assert _invoke(*args, "-o", local).exit_code == 0
    result = _invoke(*args, "-o", spread, "--backend", "ray")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in spread.iterdir()) == photos["names"]
    for name in photos["names"]:  # batched locally, one by one on the workers: the same pixels and record
        assert np.array_equal(_pixels(local / name), _pixels(spread / name)), name
        assert read_metadata(local / name) == read_metadata(spread / name)
    assert result.output.count("done ") == 3 and f"through {model} in " in result.output

    (spread / "p2.png").unlink()
    again = _invoke(*args, "-o", spread, "--backend", "ray")
    assert again.exit_code == 0, again.output
    assert "skipped 2 finished picture(s)" in again.stdout and again.output.count("done ") == 1
    assert np.array_equal(_pixels(local / "p2.png"), _pixels(spread / "p2.png"))
    # Another size, or the colours kept: nothing is finished.
    other = _invoke(*args, "-o", spread, "--backend", "ray", "--preserve-colors")
    assert other.exit_code == 0 and "skipped" not in other.output and other.output.count("done ") == 3
    assert all(read_metadata(spread / name)["preserve_colors"] for name in photos["names"])


def test_model_pictures_on_the_workers_name_a_failed_picture_and_a_bad_model_in_one_line(
    ray_instance: Any, photos: dict[str, Any], model: Path, tmp_path: Path
) -> None:
    broken = photos["folder"] / "p0.png"
    broken.write_bytes(broken.read_bytes()[:80])
    out = tmp_path / "out"
    result = _invoke(photos["folder"], "--model", model, "-o", out, "--backend", "ray", "--device", "cpu")
    assert result.exit_code == 1, result.output
    assert sorted(p.name for p in out.iterdir()) == ["p1.png", "p2.png"]
    assert result.output.splitlines()[-1] == f"error: 1 of 3 image(s) were not written: {broken}"
    (model / "model.safetensors").write_bytes(b"not a model")
    line = one_line_error(
        _invoke(photos["folder"], "--model", model, "-o", tmp_path / "o2", "--backend", "ray")
    )
    assert line.startswith(f"error: --model: {str(model / 'model.safetensors')!r} cannot be read")
    assert not (tmp_path / "o2").exists()


def test_a_picture_of_a_version_without_style_norm_counts_as_finished(
    photos: dict[str, Any], tmp_path: Path
) -> None:
    """Its metadata has no ``style_norm``: it was made with the style's magnitude alone, the default,
    so a run with the default skips it, and one with ``--style-norm balanced`` does not."""
    import torch

    from styleforge.cluster import finished_pictures
    from styleforge.images import save_image

    config = TransferConfig(size=32, iterations=3, weights="random")
    content, output = photos["folder"] / "p0.png", tmp_path / "p0.png"
    recorded = config.to_dict()
    del recorded["style_norm"]
    styles = [str(photos["style"])]
    metadata = {"command": "transfer", "content": str(content), "styles": styles, "config": recorded}
    save_image(output, torch.rand(3, 8, 8), metadata=metadata)
    assert finished_pictures([content], [output], styles, config) == [True]
    balanced = TransferConfig(size=32, iterations=3, weights="random", style_norm="balanced")
    assert finished_pictures([content], [output], styles, balanced) == [False]


def test_a_picture_whose_config_holds_the_guidance_options_counts_as_finished(
    photos: dict[str, Any], tmp_path: Path
) -> None:
    """An older version kept the (unset) guidance options among the transfer options."""
    import torch

    from styleforge.cluster import finished_pictures
    from styleforge.images import save_image

    config = TransferConfig(size=32, iterations=3, weights="random")
    content, output = photos["folder"] / "p0.png", tmp_path / "p0.png"
    recorded = {**config.to_dict(), "attrs_model": None, "attrs": [], "attr_weight": 1.0, "score_with": None}
    styles = [str(photos["style"])]
    metadata = {"command": "transfer", "content": str(content), "styles": styles, "config": recorded}
    save_image(output, torch.rand(3, 8, 8), metadata=metadata)
    assert finished_pictures([content], [output], styles, config) == [True]
