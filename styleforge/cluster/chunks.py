"""A video cut into chunks that workers stylise at once: at scene cuts, and within a scene at fixed
lengths that overlap.

Each chunk is stylised as a video of its own (:func:`~styleforge.video.run.stylize_video`): its first
frame an ordinary transfer, every later one held to the one before it by the temporal term. Where a
scene cut separates two chunks the frames are unrelated and nothing joins them. Within a scene, two
neighbouring chunks share :data:`OVERLAP` frames, which both stylise: the later chunk's own start
has settled by the end of them, and the joined video fades from the earlier chunk's frames to the
later one's across them (:func:`join_weights`), so the temporal consistency holds across the join
instead of jumping from one chunk's strokes to the other's in one frame.

A cut is where the optical flow says two consecutive frames are unrelated: less than
:data:`CUT_RELIABLE` of the frame has reliable flow from the one before (a pan or a moving subject keeps
0.75–0.98 of it, unrelated pictures 0.002–0.09).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from torch import Tensor

from ..errors import InvalidParameter
from ..images import resize_long_side
from ..video.flow import motion

__all__ = [
    "CUT_RELIABLE",
    "CUT_SIZE",
    "MAX_CHUNK",
    "OVERLAP",
    "Chunk",
    "chunk_length",
    "covering",
    "join_weights",
    "plan_chunks",
    "scene_cuts",
]

#: Frames two neighbouring chunks of one scene share, faded from one to the other in the joined video.
OVERLAP = 8
#: The longest chunk, in frames: more chunks than workers share the work evenly (a chunk's first
#: frame is a whole transfer, a cost of a few frames' worth per chunk).
MAX_CHUNK = 240
#: A frame starts a new scene when less than this share of it has reliable flow from the one before.
CUT_RELIABLE = 0.25
#: The long side, in px, at which scene cuts are looked for (a few milliseconds a frame).
CUT_SIZE = 128


@dataclass(frozen=True)
class Chunk:
    """Frames ``first`` to ``last`` (1-based, inclusive) of a video, stylised as one run.

    Attributes:
        first: Its first frame.
        last: Its last frame.
        shared: How many of its first frames the chunk before it stylises too (0 where a scene starts).
    """

    first: int
    last: int
    shared: int = 0

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def to_list(self) -> list[int]:
        return [self.first, self.last, self.shared]


def chunk_length(frames: int, workers: int, overlap: int = OVERLAP) -> int:
    """The chunk length that gives each of ``workers`` about one chunk of a ``frames``-frame scene,
    between ``3 × overlap`` (at most a third of a chunk is shared) and :data:`MAX_CHUNK`."""
    return max(3 * overlap, 2, min(MAX_CHUNK, -(-frames // max(1, workers)) + overlap))


def plan_chunks(frames: int, cuts: Iterable[int], length: int, overlap: int = OVERLAP) -> list[Chunk]:
    """The chunks of a ``frames``-frame video: one per scene (scenes start at frame 1 and at each of
    ``cuts``), a scene longer than ``length`` cut into chunks of about equal length, at most
    ``length``, each sharing ``overlap`` frames with the next.

    Raises:
        InvalidParameter: ``overlap`` below 0, or ``length`` below ``2 × overlap + 1`` (a chunk must
            have frames of its own between its two shared stretches).
    """
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InvalidParameter("overlap", overlap, "a whole number >= 0")
    if isinstance(length, bool) or not isinstance(length, int) or length < 2 * overlap + 1:
        raise InvalidParameter(
            "chunk_frames", length, f"a whole number >= {2 * overlap + 1} (2 x overlap + 1)"
        )
    starts = sorted({1, *(c for c in cuts if 1 < c <= frames)})
    chunks: list[Chunk] = []
    for start, end in zip(starts, [*starts[1:], frames + 1]):
        count = end - start
        if count <= length:
            chunks.append(Chunk(start, end - 1))
            continue
        pieces = math.ceil((count - overlap) / (length - overlap))
        stride = (count - overlap) / pieces
        for k in range(pieces):
            first = start + round(k * stride)
            chunks.append(Chunk(first, start + round((k + 1) * stride) + overlap - 1, overlap if k else 0))
    return chunks


def join_weights(chunk: Chunk) -> list[float]:
    """The weight of ``chunk``'s own frame in each of the frames it shares with the chunk before it,
    ``1/(n+1) … n/(n+1)`` for ``n`` shared frames (the chunk before takes the rest): the joined video
    fades from one to the other."""
    return [k / (chunk.shared + 1) for k in range(1, chunk.shared + 1)]


def scene_cuts(
    frames: Iterable[Tensor], *, size: int = CUT_SIZE, threshold: float = CUT_RELIABLE
) -> list[int]:
    """The frames (1-based numbers) that start a new scene: those with less than ``threshold`` of
    their pixels' flow from the frame before reliable (:func:`~styleforge.video.flow.motion`), at a
    long side of ``size`` px.

    Args:
        frames: The video's frames, (3, H, W) in [0, 1], in order.
    """
    cuts: list[int] = []
    previous: Tensor | None = None
    for number, frame in enumerate(frames, start=1):
        current = resize_long_side(frame, min(size, max(frame.shape[-2:])))
        if previous is not None and float(motion(previous, current).mask.mean()) < threshold:
            cuts.append(number)
        previous = current
    return cuts


def covering(chunks: Sequence[Chunk], frame: int) -> list[tuple[int, float]]:
    """The chunks (indices into ``chunks``, in order) that stylise ``frame``, each with its weight in
    the joined frame (:func:`join_weights`)."""
    index = bisect.bisect_right([c.first for c in chunks], frame) - 1
    out = [i for i in (index - 1, index) if i >= 0 and chunks[i].first <= frame <= chunks[i].last]
    if len(out) == 2:  # the shared frames of a join: the later chunk's weight grows across them
        weight = join_weights(chunks[out[1]])[frame - chunks[out[1]].first]
        return [(out[0], 1 - weight), (out[1], weight)]
    return [(i, 1.0) for i in out]
