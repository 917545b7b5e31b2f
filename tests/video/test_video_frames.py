"""Frames in and out: folders and videos, every bad input a one-line error before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import clip_frames, write_frames
from PIL import Image

from styleforge.errors import InputFileError, InvalidParameter
from styleforge.video.frames import check_video_output, open_frames, write_video


def _tensors(count: int = 5) -> list[torch.Tensor]:
    return [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in clip_frames(count)]


def test_folder_frames_in_natural_order(tmp_path: Path) -> None:
    write_frames(tmp_path / "clip", clip_frames(11), name="shot{}.png")
    (tmp_path / "clip" / "notes.txt").write_text("not a frame")
    source = open_frames(tmp_path / "clip")
    assert source.count == 11 and source.size == (48, 64) and source.fps is None
    assert [p.name for p in source.files][:3] == ["shot1.png", "shot2.png", "shot3.png"]
    assert source.files[-1].name == "shot11.png"
    frames = list(source)
    assert len(frames) == 11 and frames[0].rgb.shape == (3, 48, 64)


def test_video_round_trip_keeps_count_size_and_rate(tmp_path: Path) -> None:
    frames = _tensors(6)
    path = write_video(tmp_path / "clip.mp4", frames, fps=12)
    source = open_frames(path)
    assert source.count == 6 and source.size == (48, 64) and source.fps == pytest.approx(12)
    back = list(source)
    assert len(back) == 6
    error = float((back[3].rgb - frames[3]).abs().mean())
    assert error < 0.05  # H.264 is lossy, not wrong
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_odd_sizes_are_cropped_to_even_for_h264(tmp_path: Path) -> None:
    frames = [f[:, :47, :63] for f in _tensors(3)]
    source = open_frames(write_video(tmp_path / "odd.mp4", frames, fps=24))
    assert source.size == (46, 62)


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    def frames():
        yield _tensors(1)[0]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "cut.mp4", frames(), fps=24)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.mp4", "does not exist"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "holds no frames"),
        (
            lambda d: (d / "clip.mp4").write_text("not a video") and d / "clip.mp4",
            "is not a video ffmpeg can read",
        ),
        (lambda d: (d / "notes.txt").write_text("text") and d / "notes.txt", "neither a video"),
    ],
)
def test_bad_inputs(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(InputFileError, match=message) as info:
        open_frames(make(tmp_path))
    assert "\n" not in str(info.value) and str(info.value).startswith("INPUT")


def test_an_unreadable_frame_is_named(tmp_path: Path) -> None:
    paths = write_frames(tmp_path / "clip", clip_frames(4))
    paths[2].write_bytes(paths[2].read_bytes()[:200])  # truncated
    with pytest.raises(InputFileError, match="f3.png.*cannot be read"):
        open_frames(tmp_path / "clip")


def test_frames_of_another_size_are_named(tmp_path: Path) -> None:
    write_frames(tmp_path / "clip", clip_frames(3))
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(tmp_path / "clip" / "f4.png")
    with pytest.raises(InputFileError, match=r"f4.png.*64x40.*64x48"):
        open_frames(tmp_path / "clip")


def test_video_output_paths(tmp_path: Path) -> None:
    assert check_video_output(tmp_path / "out" / "a.mp4") == tmp_path / "out" / "a.mp4"
    assert not (tmp_path / "out").exists()  # the check leaves nothing behind
    with pytest.raises(InvalidParameter, match="-o.*a video file"):
        check_video_output(tmp_path / "a.png")
