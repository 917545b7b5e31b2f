"""``styleforge video`` through the CLI: outputs, history, resume, Ctrl-C and bad input."""

from __future__ import annotations

import csv
import signal
from pathlib import Path

import pytest
from _helpers import clip_frames, deliver, invoke, one_line_error, stop_signals_as_at_start, write_frames  # noqa: F401

from styleforge.config import VideoConfig
from styleforge.images import read_metadata
from styleforge.video.frames import open_frames

FAST = [
    "--weights",
    "random",
    "--network",
    "vgg16",
    "--size",
    "48",
    "--optimizer",
    "adam",
    "--iterations",
    "6",
    "--frame-iterations",
    "3",
    "--content-layers",
    "relu2_2",
    "--style-layers",
    "relu1_1,relu2_1",
    "--device",
    "cpu",
    "--quiet",
]


@pytest.fixture
def clip3(tmp_path: Path) -> Path:
    write_frames(tmp_path / "clip3", clip_frames(3))
    return tmp_path / "clip3"


def test_folder_to_video_with_history(clip3: Path, style: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "clip.mp4"
    result = invoke(
        "video", clip3, "--style", style, "-o", out, "--fps", 10, "--history", tmp_path / "h.csv", *FAST
    )
    assert result.exit_code == 0, result.output
    made = open_frames(out)
    assert made.count == 3 and made.fps == pytest.approx(10) and made.size == (36, 48)
    assert not (tmp_path / "out" / "clip.mp4.frames").exists()  # removed once the video is written
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert [r["frame"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["flicker"] == "" and float(rows[2]["flicker"]) >= 0 and float(rows[2]["temporal"]) >= 0
    assert "done: 3/3 frames; flicker" in result.output


def test_video_to_folder_of_frames_with_metadata(clip3: Path, style: Path, tmp_path: Path) -> None:
    from styleforge.video.frames import write_video

    frames = [f.rgb for f in open_frames(clip3)]
    movie = write_video(tmp_path / "in.mp4", frames, fps=15)
    result = invoke("video", movie, "--style", style, "-o", tmp_path / "frames", *FAST)
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert [p.name for p in pngs] == ["frame_00001.png", "frame_00002.png", "frame_00003.png"]
    meta = read_metadata(pngs[1])
    assert meta["command"] == "video" and meta["video"]["frame"] == 2 and meta["config"]["size"] == 48
    assert meta["video"]["run"]["temporal_weight"] == VideoConfig().temporal_weight
    again = invoke(
        "video", movie, "--style", style, "-o", tmp_path / "frames", *FAST
    )  # frames there, no --resume
    assert "--resume" in one_line_error(again)


def test_keep_frames_and_resume(clip3: Path, style: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    assert invoke("video", clip3, "--style", style, "-o", out, "--keep-frames", *FAST).exit_code == 0
    frames = tmp_path / "clip.mp4.frames"
    assert len(list(frames.glob("frame_*.png"))) == 3
    (frames / "frame_00003.png").unlink()
    out.unlink()
    result = invoke("video", clip3, "--style", style, "-o", out, "--resume", "--keep-frames", *FAST[:-1])
    assert result.exit_code == 0, result.output
    assert result.output.count("done already") == 2 and open_frames(out).count == 3


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_writes_the_finished_frames(
    clip3: Path,
    style: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stop_signals_as_at_start: None,
    signum: int,
    code: int,
) -> None:
    from styleforge.cli import display
    from styleforge.engine.events import FrameProgress

    real_show = display.VideoDisplay.__call__

    def pressing(self, event):
        if isinstance(event, FrameProgress) and event.frame == 2:
            deliver(signum)  # while frame 2 is reported: frame 3 never starts
        return real_show(self, event)

    monkeypatch.setattr(display.VideoDisplay, "__call__", pressing)
    out = tmp_path / "clip.mp4"
    result = invoke("video", clip3, "--style", style, "-o", out, *FAST)
    assert result.exit_code == code, result.output
    assert open_frames(out).count == 2
    assert "--resume" in result.output and (tmp_path / "clip.mp4.frames" / "frame_00002.png").is_file()
    assert ("interrupted:" if signum == signal.SIGINT else "stopped by SIGTERM:") in result.output


def test_a_frame_that_cannot_be_written_keeps_the_finished_ones(
    clip3: Path, style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Disk full at the third frame: the first two stay in the frames folder and make the video, the
    third is saved in the working folder, and every line says where."""
    import errno

    from styleforge import files

    real = files.write_atomic

    def full_at_frame_3(path, write):
        if Path(path).name == "frame_00003.png":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write)

    monkeypatch.setattr(files, "write_atomic", full_at_frame_3)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    out = tmp_path / "clip.mp4"
    result = invoke("video", clip3, "--style", style, "-o", out, *FAST)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    frames = tmp_path / "clip.mp4.frames"
    assert sorted(p.name for p in frames.glob("frame_*.png")) == ["frame_00001.png", "frame_00002.png"]
    assert open_frames(out).count == 2 and (cwd / "frame_00003.recovered.png").is_file()
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert (
        len(errors) == 1
        and "No space left on device" in errors[0]
        and "frame_00003.recovered.png" in errors[0]
    )
    assert f"the 2 finished frame(s) are in {frames}" in result.output and "--resume" in result.output


@pytest.mark.parametrize(
    "args, param",
    [
        (["--temporal-weight", "-1"], "--temporal-weight"),
        (["--frame-iterations", "0"], "--frame-iterations"),
        (["--fps", "0"], "--fps"),
        (["-o", "out.png"], "-o"),
    ],
)
def test_bad_options(clip3: Path, style: Path, tmp_path: Path, args: list[str], param: str) -> None:
    argv = ["video", clip3, "--style", style, *FAST]
    if "-o" not in args:
        argv += ["-o", tmp_path / "out.mp4"]
    else:
        args = ["-o", tmp_path / args[1]]
    line = one_line_error(invoke(*argv, *args))
    assert param in line
    assert list(tmp_path.glob("out*")) == []


def test_bad_input_is_one_line_and_no_output(style: Path, tmp_path: Path) -> None:
    (tmp_path / "fake.mp4").write_text("not a video")
    line = one_line_error(
        invoke("video", tmp_path / "fake.mp4", "--style", style, "-o", tmp_path / "o.mp4", *FAST)
    )
    assert "fake.mp4" in line and "not a video" in line
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o.mp4.frames").exists()


def test_resume_names_each_option_that_differs_with_both_values(
    clip3: Path, style: Path, tmp_path: Path
) -> None:
    frames = tmp_path / "frames"
    assert invoke("video", clip3, "--style", style, "-o", frames, *FAST).exit_code == 0
    (frames / "frame_00003.png").unlink()
    changed = [
        *FAST[: FAST.index("--size")],
        "--size",
        "40",
        *FAST[FAST.index("--size") + 2 :],
        "--temporal-weight",
        "5",
    ]
    line = one_line_error(invoke("video", clip3, "--style", style, "-o", frames, "--resume", *changed))
    assert line.startswith(
        f"error: --resume: '{frames}' is not valid; expected a frames folder made with the same"
    )
    default = VideoConfig().temporal_weight
    assert "--size 40 (the frames have 48)" in line
    assert f"--temporal-weight 5.0 (the frames have {default})" in line
    assert "None" not in line and "True" not in line


def test_the_output_is_never_the_input(clip3: Path, style: Path) -> None:
    line = one_line_error(invoke("video", clip3, "--style", style, "-o", clip3, *FAST))
    assert line.startswith("error: -o: ") and "it is the INPUT" in line
