"""A video's chunks: the plan (scenes, fixed lengths, shared frames), the weights of a join, and the
scene cuts the flow finds. No Ray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import clip_frames

from styleforge.cluster.chunks import (
    MAX_CHUNK,
    Chunk,
    chunk_length,
    covering,
    join_weights,
    plan_chunks,
    scene_cuts,
)
from styleforge.cluster.video import chunk_source
from styleforge.errors import InvalidParameter
from styleforge.video.frames import open_frames, write_video


def _check_cover(chunks: list[Chunk], frames: int, length: int) -> None:
    """Every frame is in one chunk, or in two where they share frames; no chunk is longer than ``length``."""
    assert chunks[0].first == 1 and chunks[-1].last == frames
    assert all(c.count <= length for c in chunks)
    for before, after in zip(chunks, chunks[1:]):
        assert after.first == before.last + 1 - after.shared
    for frame in range(1, frames + 1):
        weights = [w for _, w in covering(chunks, frame)]
        assert len(weights) in (1, 2) and sum(weights) == pytest.approx(1.0)


def test_a_scene_longer_than_a_chunk_is_cut_into_chunks_that_share_frames() -> None:
    chunks = plan_chunks(48, [], 32, 8)
    assert chunks == [Chunk(1, 28, 0), Chunk(21, 48, 8)]
    _check_cover(chunks, 48, 32)
    long = plan_chunks(1000, [], 100, 8)
    _check_cover(long, 1000, 100)
    assert len(long) == 11 and {c.shared for c in long[1:]} == {8}
    assert max(c.count for c in long) - min(c.count for c in long) <= 1  # about equal lengths


def test_scene_cuts_start_chunks_that_share_nothing() -> None:
    chunks = plan_chunks(48, [20, 999], 32, 8)  # a cut past the end is no cut
    assert chunks == [Chunk(1, 19, 0), Chunk(20, 48, 0)]
    chunks = plan_chunks(60, [10], 24, 4)
    assert chunks[0] == Chunk(1, 9, 0) and chunks[1].first == 10 and chunks[1].shared == 0
    assert all(c.shared == 4 for c in chunks[2:])
    _check_cover(chunks, 60, 24)


def test_a_join_fades_from_the_earlier_chunk_to_the_later() -> None:
    chunks = plan_chunks(48, [], 32, 8)
    assert join_weights(chunks[1]) == pytest.approx([k / 9 for k in range(1, 9)])
    assert covering(chunks, 20) == [(0, 1.0)] and covering(chunks, 29) == [(1, 1.0)]
    shared = [covering(chunks, frame) for frame in range(21, 29)]
    assert [parts[1][1] for parts in shared] == pytest.approx([k / 9 for k in range(1, 9)])
    assert [parts[0][0] for parts in shared] == [0] * 8


def test_chunk_lengths_and_bad_plans() -> None:
    assert chunk_length(48, 2, 8) == 32  # one chunk a worker, plus the shared frames
    assert chunk_length(10, 2, 8) == 24  # at least 3 x the shared frames
    assert chunk_length(100_000, 4, 8) == MAX_CHUNK
    with pytest.raises(
        InvalidParameter, match="chunk_frames: 16 is not valid; expected a whole number >= 17"
    ):
        plan_chunks(48, [], 16, 8)
    with pytest.raises(InvalidParameter, match="overlap"):
        plan_chunks(48, [], 32, -1)


def test_the_flow_finds_the_cut_between_two_scenes() -> None:
    first = clip_frames(6)
    second = [np.ascontiguousarray(f[::-1, ::-1, ::-1]) for f in clip_frames(6, seed=4)]  # unrelated
    frames = [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in first + second]
    assert scene_cuts(frames) == [7]
    assert scene_cuts(frames[:6]) == []


def test_a_chunk_of_a_video_file_is_its_frames(tmp_path: Path) -> None:
    """ffmpeg seeks to a chunk's first frame: the chunk's frames are those a read from the start gives."""
    frames = [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in clip_frames(12, size=(96, 48))]
    source = open_frames(write_video(tmp_path / "clip.mp4", frames, fps=12))
    whole = [frame.rgb for frame in source]
    chunk = chunk_source(source, Chunk(5, 9))
    assert chunk.count == 5
    part = [frame.rgb for frame in chunk]
    assert len(part) == 5 and all(torch.equal(a, b) for a, b in zip(part, whole[4:9]))
