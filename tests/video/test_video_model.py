"""``video --model``: a tiny clip through a stylizer, each frame blended with the previous output
along the optical flow; flicker measured against the model's frames alone; --resume; one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _helpers import invoke, one_line_error

from styleforge.feedforward.model import load_stylizer, save_stylizer
from styleforge.images import read_metadata
from styleforge.nets.transformer import TransformerNet
from styleforge.video.frames import open_frames
from styleforge.video.model import stylize_video_with_model


@pytest.fixture
def model(tmp_path: Path) -> Path:
    net = TransformerNet(4, 1, seed=3)
    with torch.no_grad():  # a network whose texture shimmers as its input moves
        for conv in (m for m in net.modules() if isinstance(m, torch.nn.Conv2d)):
            conv.weight.mul_(3)
    save_stylizer(tmp_path / "model", net, {"styles": []})
    return tmp_path / "model"


def test_the_blend_lowers_the_flicker_of_the_models_frames(
    model: Path, clip_dir: Path, tmp_path: Path
) -> None:
    stylizer = load_stylizer(model)
    blended = stylize_video_with_model(
        open_frames(clip_dir), stylizer, folder=tmp_path / "a", frame_blend=0.6
    )
    alone = stylize_video_with_model(open_frames(clip_dir), stylizer, folder=tmp_path / "b", frame_blend=0.0)
    assert blended.stop_reason == "completed" and len(blended.frames) == 8
    model_flicker = blended.metadata["video"]["model_flicker"]
    assert alone.mean_flicker() == pytest.approx(model_flicker, rel=1e-6)  # no blend: the model's own
    assert blended.mean_flicker() < 0.6 * model_flicker
    meta = read_metadata(blended.paths[3])
    assert meta["command"] == "video --model" and meta["video"]["run"]["frame_blend"] == 0.6


def test_video_model_cli_writes_the_video_and_resumes_frames(
    model: Path, clip_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "frames"
    result = invoke("video", clip_dir, "--model", model, "-o", out, "--history", tmp_path / "h.csv")
    assert result.exit_code == 0, result.output
    assert "done: 8/8 frames through" in result.output and "the model's frames alone" in result.output
    assert len(list(out.glob("frame_*.png"))) == 8
    (out / "frame_00008.png").unlink()
    again = invoke("video", clip_dir, "--model", model, "-o", out, "--resume")
    assert again.exit_code == 0, again.output
    assert again.output.count("done already (--resume)") == 7
    line = one_line_error(
        invoke("video", clip_dir, "--model", model, "-o", out, "--resume", "--frame-blend", "0.2")
    )
    assert "frame_00001.png was made with other options" in line
    movie = tmp_path / "clip.mp4"
    result = invoke("video", clip_dir, "--model", model, "-o", movie, "--size", 32)
    assert result.exit_code == 0, result.output
    assert movie.is_file() and not (tmp_path / "clip.mp4.frames").exists()


def test_video_model_errors_are_one_line(model: Path, clip_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    line = one_line_error(invoke("video", clip_dir, "--model", model, "-o", out, "--frame-blend", "1.5"))
    assert "--frame-blend: 1.5 is not valid; expected a number from 0 to 1" in line
    line = one_line_error(invoke("video", clip_dir, "--model", model, "-o", out, "--temporal-weight", "5"))
    assert "--temporal-weight: 5.0 is not valid; expected no --temporal-weight with --model" in line
    line = one_line_error(invoke("video", clip_dir, "--model", tmp_path / "missing", "-o", out))
    assert "--model: " in line and "does not exist" in line
    assert not out.exists()
