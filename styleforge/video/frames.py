"""Frames in and out: a video file (imageio's ffmpeg plugin, whose binary the ``imageio-ffmpeg``
wheel ships) or a folder of images, checked before any slow work.

A video is read as a stream (one frame in memory at a time); a folder is every image file in it,
in natural order (``f2.png`` before ``f10.png``). Both are checked whole when opened: every frame
decodes, and every frame has the first one's size.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..errors import InputFileError, InvalidParameter
from ..files import atomic_path, check_writable, save_with_fallback
from ..images import LoadedImage, load_image

__all__ = [
    "FRAME_SUFFIXES",
    "VIDEO_SUFFIXES",
    "FrameSource",
    "open_frames",
    "is_video_path",
    "write_video",
    "check_video_output",
]

#: Containers read and written through ffmpeg.
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
#: Image files taken from a folder of frames.
FRAME_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_PARAM = "INPUT"


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video container (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _natural(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class FrameSource:
    """An opened, checked sequence of frames.

    Attributes:
        path: The video file or the folder.
        count: Frames in it (>= 1).
        size: Every frame's (height, width).
        fps: The video's frame rate (``None`` for a folder).
        files: A folder's frame files in order (empty for a video).
    """

    path: Path
    count: int
    size: tuple[int, int]
    fps: float | None
    files: tuple[Path, ...] = ()

    def __iter__(self) -> Iterator[LoadedImage]:
        """The frames, (3, H, W) in [0, 1], one at a time."""
        if self.files:
            for file in self.files:
                yield load_image(file, param=_PARAM)
            return
        import imageio.v2 as iio

        with iio.get_reader(self.path, "ffmpeg") as reader:
            for array in reader:
                yield LoadedImage(
                    torch.from_numpy(np.ascontiguousarray(array[..., :3])).permute(2, 0, 1).float() / 255,
                    None,
                    self.path,
                )


def _open_folder(folder: Path) -> FrameSource:
    files = sorted(
        (f for f in folder.iterdir() if f.suffix.lower() in FRAME_SUFFIXES and f.is_file()), key=_natural
    )
    if not files:
        raise InputFileError(_PARAM, folder, f"holds no frames (image files: {', '.join(FRAME_SUFFIXES)})")
    size: tuple[int, int] | None = None
    for file in files:  # decoded whole: a truncated frame is found now, not after hours of work
        try:
            with Image.open(file) as image:
                image.load()
                shape = (image.height, image.width)
        except (OSError, SyntaxError, ValueError) as exc:
            raise InputFileError(
                _PARAM, file, f"is a frame that cannot be read ({_first_line(exc)})"
            ) from None
        if size is None:
            size = shape
        elif shape != size:
            raise InputFileError(
                _PARAM,
                file,
                f"is {shape[1]}x{shape[0]} px, but the frames before it are "
                f"{size[1]}x{size[0]}; every frame of a folder must have the same size",
            )
    assert size is not None
    return FrameSource(folder, len(files), size, None, tuple(files))


def _open_video(path: Path) -> FrameSource:
    import imageio.v2 as iio

    try:
        with iio.get_reader(path, "ffmpeg") as reader:
            meta = reader.get_meta_data()
            count = reader.count_frames()  # decodes the stream once: a damaged file is found now
    except (OSError, RuntimeError, ValueError) as exc:
        raise InputFileError(_PARAM, path, f"is not a video ffmpeg can read ({_first_line(exc)})") from None
    if not count:
        raise InputFileError(_PARAM, path, "holds no frames")
    width, height = meta["size"]
    fps = meta.get("fps")
    return FrameSource(path, int(count), (int(height), int(width)), float(fps) if fps else None)


def open_frames(path: str | os.PathLike[str]) -> FrameSource:
    """Opens a video file or a folder of frames and checks it.

    Raises:
        InputFileError: Missing; neither a video nor a folder; not readable; no frames; a frame that
            cannot be decoded; frames of different sizes.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(_PARAM, path, "does not exist")
    if path.is_dir():
        return _open_folder(path)
    if not is_video_path(path):
        raise InputFileError(
            _PARAM, path, f"is neither a video ({', '.join(VIDEO_SUFFIXES)}) nor a folder of frames"
        )
    return _open_video(path)


def check_video_output(path: str | os.PathLike[str], *, param: str = "-o") -> Path:
    """Checks, before any work, that a video can be written at ``path``.

    Raises:
        InvalidParameter: Not a video suffix, or a path that cannot be written.
    """
    path = Path(path)
    if not is_video_path(path):
        raise InvalidParameter(
            param, str(path), f"a video file ({', '.join(VIDEO_SUFFIXES)}) or a folder for the frames"
        )
    return check_writable(path, param=param)


def _even(frame: np.ndarray) -> np.ndarray:
    """Crops the last row/column of an odd-sized frame: H.264 in yuv420p (what players take) needs
    even sides, and a crop of one pixel beats imageio's resampling to a multiple of 16."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[Tensor] | Callable[[], Iterable[Tensor]],
    fps: float,
    *,
    fallback: bool = False,
    param: str = "-o",
) -> Path:
    """Writes frames (3, H, W) in [0, 1] as an H.264 video at ``fps`` (no audio), atomically: the
    file appears whole or not at all.

    Args:
        path: The video file.
        frames: The frames, or a function that returns them (called once per attempt: with
            ``fallback``, a video that cannot be written at ``path`` is encoded again elsewhere).
        fps: Frames per second.
        fallback: Where ``path`` cannot be written (disk full), save the video in the working (else
            the temp) folder and raise :class:`~styleforge.errors.OutputWriteError` saying where.
        param: The parameter ``path`` was given as, named in errors.

    Returns:
        ``path``.
    """
    import imageio.v2 as iio

    def encode(target: Path) -> Path:
        with atomic_path(target, keep_suffix=True) as tmp:
            writer = iio.get_writer(
                tmp,
                format="FFMPEG",
                fps=fps,
                codec="libx264",
                quality=8,
                pixelformat="yuv420p",
                macro_block_size=1,
                ffmpeg_log_level="error",
            )
            try:
                for frame in frames() if callable(frames) else frames:
                    array = (
                        frame.detach()
                        .float()
                        .clamp(0, 1)
                        .mul(255)
                        .round()
                        .byte()
                        .permute(1, 2, 0)
                        .cpu()
                        .numpy()
                    )
                    writer.append_data(_even(array))
            finally:
                writer.close()
        return target

    if fallback:
        return save_with_fallback(path, encode, param=param)
    return encode(Path(path))
