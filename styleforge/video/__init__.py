"""Video: stylised frames that do not flicker (``styleforge video``).

:mod:`.frames` reads a video or a folder of frames and writes a video; :mod:`.flow` computes the
optical flow between frames and where it is reliable; :mod:`.temporal` is the ``temporal`` term;
:mod:`.run` stylises the frames one after the other (:func:`stylize_video`).

This layer sits above :mod:`styleforge.stylize` (it adds its term through the transfer's extension
hook) and below the CLI.
"""

from .frames import FrameSource, open_frames, write_video
from .run import FrameRecord, VideoResult, frame_path, stylize_video

__all__ = [
    "FrameSource",
    "FrameRecord",
    "VideoResult",
    "frame_path",
    "open_frames",
    "stylize_video",
    "write_video",
]
