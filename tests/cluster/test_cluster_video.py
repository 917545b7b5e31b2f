"""``styleforge video ... --backend ray`` with a local Ray instance: chunks joined without a jump, the
first chunk's frames equal to the local run's, a scene cut, a stop and ``--resume``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _helpers import clip_frames, tiny_video_config, write_frames, write_image
from click.testing import CliRunner

from styleforge.cli import cli
from styleforge.cluster.video import WORK, stylize_video_on_cluster
from styleforge.config import VideoConfig
from styleforge.engine.events import FrameProgress
from styleforge.images import load_image, read_metadata
from styleforge.video import frame_path, stylize_video

# fp32 named: the workers are other processes, where the suite's float32 default (conftest.py) does
# not reach.
FAST = tiny_video_config(precision="fp32")
SHORT = VideoConfig(frame_iterations=4)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 24-frame pan (96x48 px) and a style image."""
    folder = tmp_path_factory.mktemp("clip")
    write_frames(folder / "frames", clip_frames(24, size=(96, 48)))
    return {"frames": folder / "frames", "style": write_image(folder / "style.png", (40, 40), seed=3)}


@pytest.fixture(scope="module")
def local(clip: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The clip stylised in one local run, on one thread as each worker is (a module fixture is made
    before the function-scoped ``one_thread``, and sums split over more threads round otherwise)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return stylize_video(
            clip["frames"], [str(clip["style"])], FAST, SHORT, folder=tmp_path_factory.mktemp("local")
        )
    finally:
        torch.set_num_threads(before)


def _pixels(path: Path) -> np.ndarray:
    return load_image(path).rgb.numpy()


def test_chunks_join_without_a_jump(
    ray_instance: Any, clip: dict[str, Path], local: Any, tmp_path: Path
) -> None:
    styles = [str(clip["style"])]
    run = stylize_video_on_cluster(
        clip["frames"], styles, FAST, SHORT, folder=tmp_path / "ray", chunk_frames=16, overlap=7
    )
    assert run.stop_reason == "completed" and len(run.frames) == 24 and not (tmp_path / "ray" / WORK).exists()
    # Two chunks, frames 1-15 and 9-24: frames 9-15 fade from the first to the second.
    assert read_metadata(run.paths[11])["video"]["joined"] == {"chunks": [1, 2], "weights": [0.5, 0.5]}
    assert read_metadata(run.paths[20])["video"]["run"]["chunks"] == [[1, 15, 0], [9, 24, 7]]
    for ours, theirs in zip(run.paths[:8], local.paths[:8]):  # the first chunk's own: the local run's pixels
        assert np.array_equal(_pixels(ours), _pixels(theirs))
    flicker = [r.flicker for r in run.frames]
    at_join = max(flicker[8:16])  # the shared frames 9-15 and frame 16, the first of the second chunk alone
    elsewhere = max(f for f in flicker[1:8] + flicker[16:])
    unchunked = max(r.flicker for r in local.frames[1:])
    # No jump: as low as elsewhere, within the few per cent a tiny random-weights clip's frames vary by
    # (without the shared frames, below, the second chunk's start is many times the flicker elsewhere).
    assert at_join <= 1.1 * elsewhere and at_join <= 1.1 * unchunked, (flicker, unchunked)
    cut = stylize_video_on_cluster(
        clip["frames"], styles, FAST, SHORT, folder=tmp_path / "cut", chunk_frames=12, overlap=0
    )
    assert cut.frames[12].flicker > 5 * unchunked


def test_a_scene_cut_starts_a_chunk_that_runs_as_a_video_of_its_own(
    ray_instance: Any, tmp_path: Path
) -> None:
    first = clip_frames(5)
    second = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in clip_frames(5, seed=4)]  # another scene
    write_frames(tmp_path / "both", first + second)
    write_frames(tmp_path / "second", second)
    style = [str(write_image(tmp_path / "style.png", (40, 40), seed=3))]
    run = stylize_video_on_cluster(tmp_path / "both", style, FAST, SHORT, folder=tmp_path / "ray")
    assert [read_metadata(p)["video"]["chunk"] for p in run.paths] == [1] * 5 + [2] * 5
    alone = stylize_video(tmp_path / "second", style, FAST, SHORT, folder=tmp_path / "alone")
    for ours, theirs in zip(run.paths[5:], alone.paths):
        assert np.array_equal(_pixels(ours), _pixels(theirs))


def test_a_stop_keeps_the_finished_frames_and_resume_does_the_rest(
    ray_instance: Any, clip: dict[str, Path], tmp_path: Path
) -> None:
    class Flag:
        requested = False

    flag, seen = Flag(), []

    def press(event: object) -> None:  # a stop once three frames are finished
        if isinstance(event, FrameProgress):
            seen.append(event.frame)
            flag.requested = len(seen) >= 3

    styles, folder = [str(clip["style"])], tmp_path / "ray"
    options = dict(folder=folder, chunk_frames=16, overlap=7)
    stopped = stylize_video_on_cluster(
        clip["frames"], styles, FAST, SHORT, callbacks=[press], interrupt=flag, **options
    )
    assert stopped.stop_reason == "interrupted" and len(stopped.frames) < 24
    plan = json.loads((folder / WORK / "plan.json").read_text())
    assert plan["run"]["chunks"] == [[1, 15, 0], [9, 24, 7]]
    kept = {p: p.read_bytes() for p in sorted((folder / WORK).rglob("frame_*.png"))}
    assert len(kept) >= 3
    with pytest.raises(Exception, match="give --resume to go on with it"):
        stylize_video_on_cluster(clip["frames"], styles, FAST, SHORT, **options)
    resumed = stylize_video_on_cluster(clip["frames"], styles, FAST, SHORT, resume=True, **options)
    assert resumed.stop_reason == "completed" and len(resumed.frames) == 24
    assert all(frame_path(folder, n).is_file() for n in range(1, 25)) and not (folder / WORK).exists()
    assert sum(r.skipped for r in resumed.frames) >= len(stopped.frames)
    other = tiny_video_config(precision="fp32", content_weight=2.0)
    with pytest.raises(Exception, match=r"--content-weight 2\.0 \(the frames have 1\.0\)"):
        stylize_video_on_cluster(clip["frames"], styles, other, SHORT, resume=True, **options)


def test_the_video_command_on_ray_and_resume(
    ray_instance: Any, clip: dict[str, Path], tmp_path: Path
) -> None:
    args = ["video", str(clip["frames"]), "--style", str(clip["style"]), "--size", "48", "--iterations", "8"]
    args += ["--frame-iterations", "4", "--weights", "random", "--network", "vgg16", "--init", "noise"]
    args += ["--optimizer", "adam", "--device", "cpu", "--precision", "fp32"]
    args += ["--content-layers", "relu2_2", "--style-layers", "relu1_1,relu2_1"]
    result = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "out"), "--backend", "ray"])
    assert result.exit_code == 0, result.output
    assert "done: 24/24 frames; flicker" in result.output
    local = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    # 24 frames on 2 workers: one chunk (a chunk is at least 3 x 8 frames long), the local run's pixels.
    for n in range(1, 25):
        assert np.array_equal(
            _pixels(frame_path(tmp_path / "out", n)), _pixels(frame_path(tmp_path / "local", n))
        )
    again = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "out"), "--backend", "ray", "--resume"])
    assert again.exit_code == 0, again.output
    assert again.output.count("done already (--resume)") == 24


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded, untrained stylizer folder."""
    from styleforge.feedforward.model import save_stylizer
    from styleforge.nets.transformer import TransformerNet

    folder = tmp_path_factory.mktemp("model") / "model"
    save_stylizer(folder, TransformerNet(4, 1, seed=1), {"styles": []})
    return folder


def test_a_model_video_joins_its_chunks_without_a_jump(
    ray_instance: Any, clip: dict[str, Path], model: Path, tmp_path: Path
) -> None:
    from styleforge.cluster.video import stylize_video_with_model_on_cluster
    from styleforge.feedforward.model import load_stylizer
    from styleforge.video.model import stylize_video_with_model

    torch.set_num_threads(1)  # as each worker
    local = stylize_video_with_model(_frames(clip), load_stylizer(model), folder=tmp_path / "l")
    options = dict(device="cpu", chunk_frames=16, overlap=7)
    run = stylize_video_with_model_on_cluster(clip["frames"], model, folder=tmp_path / "ray", **options)
    assert run.stop_reason == "completed" and len(run.frames) == 24 and not (tmp_path / "ray" / WORK).exists()
    meta = read_metadata(run.paths[11])
    assert meta["command"] == "video --model" and meta["video"]["joined"]["chunks"] == [1, 2]
    assert meta["video"]["run"]["chunks"] == [[1, 15, 0], [9, 24, 7]]
    for ours, theirs in zip(run.paths[:8], local.paths[:8]):  # the first chunk's own: the local run's pixels
        assert np.array_equal(_pixels(ours), _pixels(theirs))
    flicker, unchunked = [r.flicker for r in run.frames], [r.flicker for r in local.frames[1:]]
    assert max(flicker[8:16]) <= 1.2 * max(unchunked), (flicker, unchunked)
    alone, ours = local.metadata["video"]["model_flicker"], run.metadata["video"]["model_flicker"]
    assert abs(ours - alone) < 0.05 * alone
    # Without shared frames the second chunk's first frame is the model's alone: a jump.
    cut = stylize_video_with_model_on_cluster(
        clip["frames"], model, folder=tmp_path / "cut", device="cpu", chunk_frames=12, overlap=0
    )
    assert cut.frames[12].flicker > 3 * float(np.median(unchunked)) and cut.frames[12].flicker > 2 * max(
        flicker[8:16]
    )


def _frames(clip: dict[str, Path]) -> Any:
    from styleforge.video.frames import open_frames

    return open_frames(clip["frames"])


def test_the_video_command_with_a_model_on_ray_and_resume(
    ray_instance: Any, clip: dict[str, Path], model: Path, tmp_path: Path
) -> None:
    args = ["video", str(clip["frames"]), "--model", str(model), "--device", "cpu", "--size", "64"]
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [*args, "-o", str(out), "--backend", "ray"])
    assert result.exit_code == 0, result.output
    assert f"done: 24/24 frames through {model}; flicker (mean warping error)" in result.output
    assert read_metadata(frame_path(out, 24))["video"]["run"]["size"] == 64
    assert tuple(load_image(frame_path(out, 24)).rgb.shape) == (3, 32, 64)
    again = CliRunner().invoke(cli, [*args, "-o", str(out), "--backend", "ray", "--resume"])
    assert again.exit_code == 0, again.output
    assert again.output.count("done already (--resume)") == 24
    other = CliRunner().invoke(
        cli, [*args, "-o", str(out), "--backend", "ray", "--resume", "--frame-blend", "0"]
    )
    assert other.exit_code == 2 and "--frame-blend 0.0 (the frames have 0.5)" in other.output, other.output
