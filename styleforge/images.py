"""Reading and writing images: every input a user may hand over, and atomic, self-describing outputs.

Inputs: JPEG, PNG, WebP, BMP, TIFF, GIF (first frame) and whatever else Pillow opens; EXIF orientation
is applied; grayscale, palette, CMYK and 12/16/32-bit images become RGB (integer greyscale scaled by
its format's full range, so a dark 16-bit image stays dark); an alpha channel is returned separately
so it can be put back on the output; decompression bombs are refused.

Outputs: the format follows the extension; the file is written to a temporary file in the same folder
and renamed, so an output is never half-written; a PNG carries a ``styleforge`` text chunk with the
run's parameters (JSON), which :func:`read_metadata` reads back.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from torch import Tensor

from .errors import InputFileError, InvalidParameter
from .files import IMAGE_EXTENSIONS, check_writable, write_atomic, write_with_fallback

__all__ = [
    "METADATA_KEY",
    "LoadedImage",
    "load_image",
    "probe_image",
    "long_side_shape",
    "resize_long_side",
    "save_image",
    "read_metadata",
    "output_format",
    "check_output_path",
    "IMAGE_EXTENSIONS",
    "find_images",
]

METADATA_KEY = "styleforge"
_ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "GIF"}


@dataclass(frozen=True)
class LoadedImage:
    """A decoded image.

    Attributes:
        rgb: (3, H, W) float32 in [0, 1].
        alpha: (1, H, W) float32 in [0, 1], or ``None`` when the file has no transparency.
        path: Where it came from (``None`` for in-memory images).
    """

    rgb: Tensor
    alpha: Tensor | None = None
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])


def _tiff_depth(image: Image.Image) -> tuple[int, bool] | None:
    """(bits, signed) of a TIFF's integer samples (BitsPerSample, SampleFormat), or ``None`` when the
    file does not say (not a TIFF)."""
    tags = getattr(image, "tag_v2", None)
    if tags is None or 258 not in tags:
        return None
    bits, sample_format = tags.get(258), tags.get(339, 1)
    bits = bits[0] if isinstance(bits, tuple) else bits
    sample_format = sample_format[0] if isinstance(sample_format, tuple) else sample_format
    return int(bits), sample_format == 2


def _integer_gray(image: Image.Image, depth: tuple[int, bool] | None) -> np.ndarray:
    """An integer greyscale image (Pillow mode ``I`` or ``I;16*``) → (H, W) float32 in [0, 1].

    The scale is the format's full range, never the image's own maximum, so a dark image stays dark:
    ``2**bits - 1`` for a TIFF's BitsPerSample (12-bit TIFFs open as ``I;16`` holding 0..4095;
    ``2**(bits-1) - 1`` for signed samples, negatives clip to black). Other files do not record a
    depth in a way Pillow keeps, and Pillow holds their 16-bit samples (PNG, PGM/PPM with any maxval
    above 255) on the 0..65535 scale in ``I;16*`` or ``I``: those are 16-bit, unless ``I`` holds
    values above 65535, which only 32-bit data can, and then the scale is ``I``'s (2**31 - 1).
    """
    data = np.asarray(image)
    if depth is None:
        bits, signed = (
            (16, False) if image.mode.startswith("I;16") or int(data.max(initial=0)) <= 65535 else (32, True)
        )
    else:
        bits, signed = depth
        if bits == 32 and not signed and data.dtype == np.int32:
            data = data.view(np.uint32)  # Pillow reads unsigned 32-bit samples into the signed "I"
    peak = float(2 ** (bits - 1) - 1 if signed else 2**bits - 1)
    return np.clip(data.astype(np.float32) / np.float32(peak), 0.0, 1.0)


def _to_float_array(
    image: Image.Image, depth: tuple[int, bool] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Converts any Pillow mode to (H, W, 3) RGB and optional (H, W) alpha, float32 in [0, 1].

    ``depth`` is the file's (bits, signed) for integer greyscale modes (:func:`_tiff_depth`).
    """
    mode = image.mode
    if mode == "I" or mode.startswith("I;16"):
        gray = _integer_gray(image, depth)
        return np.repeat(gray[..., None], 3, axis=2), None
    if mode == "F":
        gray = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
        return np.repeat(gray[..., None], 3, axis=2), None
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return rgba[..., :3], rgba[..., 3]
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0, None


def _image_file(path: str | os.PathLike[str], param: str) -> Path:
    """``path`` as a :class:`Path`, once it is known to exist and not to be a folder."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(param, path, "does not exist")
    if path.is_dir():
        raise InputFileError(param, path, "is a folder; expected an image file")
    return path


def load_image(path: str | os.PathLike[str], *, param: str = "image") -> LoadedImage:
    """Reads an image file.

    Args:
        path: The file.
        param: The parameter it was given as (``CONTENT``, ``--style``), named in errors.

    Raises:
        InputFileError: Missing file, a folder, not an image, truncated, or a decompression bomb.
    """
    path = _image_file(path, param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.seek(0)  # first frame of an animation
                image.load()
                depth = _tiff_depth(image)  # read before exif_transpose, whose copy drops the tags
                image = ImageOps.exif_transpose(image)
                rgb, alpha = _to_float_array(image, depth)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputFileError(
            param,
            path,
            f"is larger than {Image.MAX_IMAGE_PIXELS} pixels (refused as a possible decompression bomb)",
        ) from None
    except UnidentifiedImageError:
        raise InputFileError(
            param, path, "is not an image Pillow can read (JPEG, PNG, WebP, BMP, TIFF, GIF, ...)"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputFileError(param, path, f"could not be decoded ({exc})") from None
    if rgb.size == 0:
        raise InputFileError(param, path, "is an empty image")
    rgb_t = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))
    alpha_t = None
    if alpha is not None and float(alpha.min()) < 1.0:
        alpha_t = torch.from_numpy(np.ascontiguousarray(alpha))[None]
    return LoadedImage(rgb_t, alpha_t, path)


def probe_image(path: str | os.PathLike[str], *, param: str = "image") -> tuple[int, int]:
    """Checks that a file is an image Pillow can identify, reading its header only (not its pixels),
    so that many inputs can be checked before a long run. Returns its (width, height).

    Raises:
        InputFileError: Missing file, a folder, or not an image.
    """
    path = _image_file(path, param)
    try:
        with Image.open(path) as image:
            return image.size
    except UnidentifiedImageError:
        raise InputFileError(
            param, path, "is not an image Pillow can read (JPEG, PNG, WebP, BMP, TIFF, GIF, ...)"
        ) from None
    except OSError as exc:
        raise InputFileError(param, path, f"could not be read ({exc})") from None


def long_side_shape(shape: tuple[int, int], size: int) -> tuple[int, int]:
    """The (height, width) :func:`resize_long_side` gives an image of ``shape`` for ``size``: known
    before any pixel is resized (to check what the resized image will cost)."""
    h, w = shape
    zoom = size / max(h, w)
    return max(1, round(h * zoom)), max(1, round(w * zoom))


def resize_long_side(image: Tensor, size: int) -> Tensor:
    """Resizes (C, H, W) or (B, C, H, W) so the longer side is ``size`` px (antialiased bicubic).

    The aspect ratio is kept; the result is clamped to [0, 1].
    """
    batched = image.dim() == 4
    x = image if batched else image[None]
    h, w = x.shape[-2:]
    new = long_side_shape((int(h), int(w)), size)
    if new != (h, w):
        x = F.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False).clamp_(0.0, 1.0)
    return x if batched else x[0]


def output_format(path: str | os.PathLike[str], *, param: str = "-o") -> str:
    """The Pillow format name for ``path``'s extension (``.png`` → ``PNG``)."""
    ext = Path(path).suffix.lower()
    formats = Image.registered_extensions()
    if ext not in formats or formats[ext] not in Image.SAVE:
        valid = sorted(
            e
            for e, f in formats.items()
            if f in Image.SAVE and f in {"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"}
        )
        raise InvalidParameter(param, str(path), "a file name ending in one of: " + " ".join(valid))
    return formats[ext]


def check_output_path(path: str | os.PathLike[str], *, param: str = "-o") -> Path:
    """Validates an output image path before any work is done, so a run never ends unable to save.

    The extension must name a format Pillow writes, and the file must be writable there
    (:func:`~styleforge.files.check_writable`: not an existing folder, no parent that is a file,
    missing folders can be created, the folder takes a new file). Nothing is left behind.

    Raises:
        InvalidParameter: Naming ``param``, the path, and what is wrong with it.
    """
    path = Path(path)
    if not path.is_dir():  # an existing folder is named as such by check_writable, whatever its name
        output_format(path, param=param)
    return check_writable(path, param=param)


def _to_pil(rgb: Tensor, alpha: Tensor | None) -> Image.Image:
    array = rgb.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    if alpha is None:
        return Image.fromarray(array, "RGB")
    a = alpha.detach().float().clamp(0, 1).mul(255).round().byte()[0].cpu().numpy()
    return Image.fromarray(np.dstack([array, a]), "RGBA")


def save_image(
    path: str | os.PathLike[str],
    rgb: Tensor,
    *,
    alpha: Tensor | None = None,
    metadata: Mapping[str, Any] | None = None,
    param: str = "-o",
    fallback: bool = False,
) -> Path:
    """Writes an image atomically (temporary file in the same folder, then rename).

    Missing parent folders are created; an existing file is replaced. ``alpha`` is resized to the
    image if needed and kept where the format supports it. ``metadata`` is stored as JSON in a PNG
    text chunk named :data:`METADATA_KEY` (other formats: not stored).

    Args:
        path: Destination; the extension chooses the format.
        rgb: (3, H, W) or (1, 3, H, W) in [0, 1].
        alpha: Optional (1, h, w) in [0, 1].
        metadata: JSON-able parameters of the run.
        param: Parameter name for errors.
        fallback: For a result that must not be lost: if ``path`` cannot be written (OSError), save
            the image in the working folder (else the temp folder) and raise
            :class:`~styleforge.errors.OutputWriteError` saying where
            (:func:`~styleforge.files.write_with_fallback`). Otherwise the OSError propagates.

    Raises:
        InvalidParameter: An extension that names no format Pillow writes.
        OutputWriteError: With ``fallback``, ``path`` could not be written.
    """
    path = Path(path)
    fmt = output_format(path, param=param)
    if rgb.dim() == 4:
        rgb = rgb[0]
    if alpha is not None and fmt in _ALPHA_FORMATS:
        if alpha.shape[-2:] != rgb.shape[-2:]:
            alpha = F.interpolate(
                alpha[None].float(), size=rgb.shape[-2:], mode="bilinear", align_corners=False
            )[0]
    else:
        alpha = None
    image = _to_pil(rgb, alpha)
    options: dict[str, Any] = {}
    if fmt == "PNG" and metadata is not None:
        info = PngImagePlugin.PngInfo()
        info.add_itxt(METADATA_KEY, json.dumps(metadata, sort_keys=True, default=str))
        options["pnginfo"] = info
    if fmt == "JPEG":
        options["quality"] = 95

    def encode(handle: BinaryIO) -> None:
        image.save(handle, format=fmt, **options)

    if fallback:
        write_with_fallback(path, encode, param=param)
    else:
        write_atomic(path, encode)
    return path


def _json_kind(value: object) -> str:
    """``a list``, ``a string``, ``a number``, ``a boolean`` or ``null``: what a JSON value is."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {list: "a list", str: "a string"}.get(type(value), "a number")


def read_metadata(path: str | os.PathLike[str], *, param: str = "image") -> dict[str, Any] | None:
    """The parameters stored by :func:`save_image` in a PNG.

    Args:
        path: The image.
        param: The parameter it was given as (``--from-image``), named in errors.

    Returns:
        The stored JSON object, or ``None`` when the file has none: no ``styleforge`` text chunk, or
        not an image Pillow can open (a JPEG has no chunk; a text file, a missing or truncated file).

    Raises:
        InputFileError: The file has a ``styleforge`` chunk that cannot be used: Pillow refuses to
            inflate it, it is not valid JSON, or it is JSON but not an object. Such a file was damaged
            or edited after styleforge wrote it, and is not taken for one without metadata.
    """
    try:
        with Image.open(path) as image:
            text = getattr(image, "text", {}).get(METADATA_KEY)
    except OSError:  # includes UnidentifiedImageError
        return None
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # e.g. a chunk past MAX_TEXT_CHUNK
        raise InputFileError(
            param, path, f"has a {METADATA_KEY} metadata chunk that could not be read ({exc})"
        ) from None
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; RecursionError for "[[[[…" nested too deep
        why = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise InputFileError(
            param,
            path,
            f"has {METADATA_KEY} metadata that is not valid JSON ({why}); expected "
            f"the JSON object styleforge writes, so the file was damaged or edited",
        ) from None
    if not isinstance(data, dict):
        raise InputFileError(
            param,
            path,
            f"has {METADATA_KEY} metadata that is {_json_kind(data)}, not a JSON object "
            f"(styleforge writes an object of the run's parameters)",
        )
    return data


def find_images(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str | None]]:
    """The images that ``paths`` name, in order (``score``'s and ``transfer``'s many inputs): each
    file as given, each folder walked recursively.

    A folder contributes its files whose extension is in :data:`IMAGE_EXTENSIONS` (hidden files
    and folders skipped), sorted by their path relative to it; a file given by name is taken
    whatever its extension. A path is listed once even when given twice.

    Returns:
        ``(path, problem)`` pairs: ``problem`` is ``None``, or why the argument yields nothing
        (``does not exist``, ``is a folder with no images ...``).
    """
    out: list[tuple[str, str | None]] = []
    seen: set[str] = set()

    def add(text: str, problem: str | None = None) -> None:
        key = os.path.normcase(os.path.abspath(text))
        if problem is not None or key not in seen:
            seen.add(key)
            out.append((text, problem))

    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = sorted(
                (
                    p
                    for p in path.rglob("*")
                    if p.is_file()
                    and p.suffix.lower() in IMAGE_EXTENSIONS
                    and not any(part.startswith(".") for part in p.relative_to(path).parts)
                ),
                key=lambda p: p.relative_to(path).as_posix(),
            )
            if not found:
                add(str(path), f"is a folder with no images ({' '.join(IMAGE_EXTENSIONS)})")
            for p in found:
                add(str(p))
        elif path.exists():
            add(str(path))
        else:
            add(str(path), "does not exist")
    return out
