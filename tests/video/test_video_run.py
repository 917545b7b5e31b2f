"""stylize_video: the temporal term, resuming, Ctrl-C, and the Stylizer's per-run budget."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from _helpers import rewrite_metadata, tiny_video_config

from styleforge.config import VideoConfig
from styleforge.engine.events import FrameProgress
from styleforge.engine.interrupt import Interrupt
from styleforge.errors import InvalidParameter
from styleforge.images import load_image, read_metadata, resize_long_side
from styleforge.stylize.run import Stylizer
from styleforge.video import frame_path, open_frames, stylize_video
from styleforge.video.flow import motion, start_image, warp, warping_error

FAST = tiny_video_config()
SHORT = VideoConfig(frame_iterations=4)


def _flicker(paths: list[Path], inputs: list[torch.Tensor]) -> float:
    outs = [load_image(p).rgb for p in paths]
    errors = [warping_error(a, b, motion(x, y)) for a, b, x, y in zip(outs, outs[1:], inputs, inputs[1:])]
    return sum(errors) / len(errors)


def test_temporal_term_lowers_flicker_against_independent_frames(
    clip_dir: Path, style: Path, tmp_path: Path
) -> None:
    source = open_frames(clip_dir)
    frames = [f.rgb for f in source][:4]
    short = open_frames(clip_dir)
    short = type(short)(short.path, 4, short.size, short.fps, short.files[:4])
    held = stylize_video(
        short,
        [str(style)],
        FAST,
        VideoConfig(temporal_weight=300, frame_iterations=4),
        folder=tmp_path / "held",
    )
    loose = stylize_video(
        short,
        [str(style)],
        FAST,
        VideoConfig(temporal_weight=0, frame_iterations=4),
        folder=tmp_path / "loose",
    )
    stylizer = Stylizer([str(style)], FAST)  # every frame on its own, as a transfer
    alone = []
    for i, frame in enumerate(short):
        alone.append(tmp_path / f"alone{i}.png")
        stylizer.run(frame).save(alone[-1])
    inputs = [resize_long_side(f, FAST.size) for f in frames]
    independent = _flicker(alone, inputs)
    assert held.stop_reason == "completed" and len(held.frames) == 4
    assert held.mean_flicker() < loose.mean_flicker() < independent
    assert held.mean_flicker() == pytest.approx(_flicker(held.paths, inputs), rel=0.1)  # PNGs: 8 bits
    # Frames after the first carry the temporal term; the first is an ordinary transfer.
    assert "temporal" not in held.frames[0].summary.weighted
    assert all("temporal" in r.summary.weighted for r in held.frames[1:])
    assert all(r.iterations == 4 for r in held.frames[1:]) and held.frames[0].iterations == 8
    assert "temporal" not in loose.frames[1].summary.weighted


def test_first_later_frame_starts_from_the_warped_previous_output(
    clip_dir: Path, style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: list[torch.Tensor | None] = []
    real = Stylizer.run

    def spy(self, content=None, **kwargs):
        starts.append(kwargs.get("init_image"))
        return real(self, content, **kwargs)

    monkeypatch.setattr(Stylizer, "run", spy)
    source = open_frames(clip_dir)
    source = type(source)(source.path, 2, source.size, source.fps, source.files[:2])
    result = stylize_video(source, [str(style)], FAST, SHORT, folder=tmp_path / "out")
    assert starts[0] is None
    first_out = load_image(result.paths[0]).rgb
    inputs = [resize_long_side(f.rgb, FAST.size) for f in source]
    move = motion(inputs[0], inputs[1])
    warped = warp(first_out, move.to_previous)
    expected = start_image(warped, inputs[1], move)
    assert torch.allclose(starts[1], expected, atol=1.5 / 255)  # the PNG read back has 8 bits
    # The previous output where the frame has seen it before; the frame's own pixels where it has not.
    old = (move.entering == 0).expand_as(warped)
    assert torch.allclose(starts[1][old], warped[old], atol=1.5 / 255)
    assert torch.equal(starts[1][~old], inputs[1][~old]) or not bool((~old).any())


def _two(clip_dir: Path):
    source = open_frames(clip_dir)
    return type(source)(source.path, 3, source.size, source.fps, source.files[:3])


def test_resume_skips_finished_frames_and_refuses_other_options(
    clip_dir: Path, style: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "frames"
    source = _two(clip_dir)
    full = stylize_video(source, [str(style)], FAST, SHORT, folder=folder)
    frame_path(folder, 3).unlink()
    before = frame_path(folder, 1).read_bytes()
    events: list[FrameProgress] = []
    again = stylize_video(
        source, [str(style)], FAST, SHORT, folder=folder, resume=True, callbacks=[events.append]
    )
    frame_events = [e for e in events if isinstance(e, FrameProgress)]
    assert [e.skipped for e in frame_events] == [True, True, False]
    assert frame_path(folder, 1).read_bytes() == before  # not rewritten
    assert [r.skipped for r in again.frames] == [True, True, False]
    assert len(full.frames) == 3
    meta = read_metadata(frame_path(folder, 3))
    assert meta["command"] == "video" and meta["video"]["frame"] == 3 and meta["losses"]["temporal"] >= 0
    default = f"{VideoConfig().temporal_weight:g}"
    with pytest.raises(InvalidParameter, match=rf"--resume.*--temporal-weight 5 \(the frames have {default}"):
        stylize_video(
            source,
            [str(style)],
            FAST,
            VideoConfig(temporal_weight=5, frame_iterations=4),
            folder=folder,
            resume=True,
        )


def _frames_as_an_older_version_wrote_them(
    clip_dir: Path, style: Path, folder: Path, edit: Callable[[dict[str, Any]], None]
) -> Any:
    """Two frames made now, each run record's transfer options then changed by ``edit`` (in place);
    returns the frame source."""
    source = _two(clip_dir)
    source = type(source)(source.path, 2, source.size, source.fps, source.files[:2])
    stylize_video(source, [str(style)], FAST, SHORT, folder=folder)
    for number in (1, 2):
        meta = read_metadata(frame_path(folder, number))
        edit(meta["video"]["run"]["config"])
        rewrite_metadata(frame_path(folder, number), meta)
    return source


def test_resume_takes_the_frames_of_a_version_that_kept_guidance_options_in_the_transfers(
    clip_dir: Path, style: Path, tmp_path: Path
) -> None:
    """An older version's frames record the guidance options (unset) among the transfer options;
    they are the same run."""
    from styleforge.config import GUIDANCE_KEYS

    unset = {"attrs_model": None, "attrs": [], "attr_weight": 1.0, "score_with": None}
    assert tuple(unset) == GUIDANCE_KEYS

    def add_guidance(config: dict[str, Any]) -> None:
        assert not set(config) & set(unset)
        config.update(unset)

    folder = tmp_path / "frames"
    source = _frames_as_an_older_version_wrote_them(clip_dir, style, folder, add_guidance)
    again = stylize_video(source, [str(style)], FAST, SHORT, folder=folder, resume=True)
    assert [r.skipped for r in again.frames] == [True, True]


def test_frames_from_before_style_norm_resume_with_the_styles_magnitude_alone(
    clip_dir: Path, style: Path, tmp_path: Path
) -> None:
    """A frames folder of a version without ``--style-norm`` (no ``style_norm`` in its run record)
    was made with ``style``, the default: it resumes, and ``balanced`` is named with both values."""

    def drop_style_norm(config: dict[str, Any]) -> None:
        assert config.pop("style_norm") == "style"

    folder = tmp_path / "frames"
    source = _frames_as_an_older_version_wrote_them(clip_dir, style, folder, drop_style_norm)
    again = stylize_video(source, [str(style)], FAST, SHORT, folder=folder, resume=True)
    assert [r.skipped for r in again.frames] == [True, True]
    balanced = dataclasses.replace(FAST, style_norm="balanced")
    with pytest.raises(
        InvalidParameter, match=r"--resume.*--style-norm 'balanced' \(the frames have 'style'\)"
    ):
        stylize_video(source, [str(style)], balanced, SHORT, folder=folder, resume=True)


def test_ctrl_c_keeps_the_finished_frames(clip_dir: Path, style: Path, tmp_path: Path) -> None:
    flag = Interrupt()

    def press_after_second(event: object) -> None:
        if isinstance(event, FrameProgress) and event.frame == 2:
            flag.requested = True

    source = _two(clip_dir)
    result = stylize_video(
        source,
        [str(style)],
        FAST,
        SHORT,
        folder=tmp_path / "f",
        callbacks=[press_after_second],
        interrupt=flag,
    )
    assert result.stop_reason == "interrupted"
    assert [r.frame for r in result.frames] == [1, 2]
    assert frame_path(tmp_path / "f", 2).is_file() and not frame_path(tmp_path / "f", 3).exists()


def test_ctrl_c_during_a_frame_leaves_it_undone(clip_dir: Path, style: Path, tmp_path: Path) -> None:
    flag = Interrupt()
    seen: list[int] = []

    def press_in_second(event: object) -> None:
        if isinstance(event, FrameProgress):
            seen.append(event.frame)
        elif seen == [1] and type(event).__name__ == "Progress":
            flag.requested = True

    result = stylize_video(
        _two(clip_dir),
        [str(style)],
        FAST,
        SHORT,
        folder=tmp_path / "f",
        callbacks=[press_in_second],
        interrupt=flag,
    )
    assert result.stop_reason == "interrupted" and [r.frame for r in result.frames] == [1]
    assert not frame_path(tmp_path / "f", 2).exists()


def test_stylizer_budget_and_finest_only(style: Path, clip_dir: Path) -> None:
    stylizer = Stylizer([str(style)], FAST, scales=2, min_size=32)
    frame = next(iter(open_frames(clip_dir)))
    whole = stylizer.run(frame)
    assert whole.metadata["scales"] == [32, 48] and len(whole.history) == 8  # 4 per scale
    finest = stylizer.run(frame, finest_only=True, iterations=3)
    assert "scales" not in finest.metadata and len(finest.history) == 3
    assert finest.image.shape == whole.image.shape
    chained = Stylizer([str(style)], FAST, optimizer=("adam:6", "lbfgs:2"))
    run = chained.run(frame, iterations=4)  # each stage keeps its share: 3 + 1
    assert sorted({e.stage for e in run.history}) == [0, 1]
    assert sum(1 for e in run.history if e.stage == 0) == 3


def test_temporal_refuses_a_tiled_frame_size(clip_dir: Path, style: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="--tile.*--temporal-weight"):
        stylize_video(
            _two(clip_dir),
            [str(style)],
            dataclasses.replace(FAST, size=96, tile="64"),
            SHORT,
            folder=tmp_path / "f",
        )
    assert not (tmp_path / "f").exists()


def test_each_frame_is_prepared_once(
    clip_dir: Path, style: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.stylize.plan import ContentPlan

    prepared: list[int] = []
    real = Stylizer.prepare

    def counting(self, content):
        if not isinstance(content, ContentPlan):  # an image to load and check, not a prepared one
            prepared.append(1)
        return real(self, content)

    monkeypatch.setattr(Stylizer, "prepare", counting)
    source = _two(clip_dir)
    result = stylize_video(source, [str(style)], FAST, SHORT, folder=tmp_path / "out")
    assert len(result.frames) == 3 and len(prepared) == 3
