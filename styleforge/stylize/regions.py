"""Style regions: ``--style-mask NAME=MASK`` (where in the output a style applies) and
``--style-image-mask NAME=MASK`` (which part of its own image a style's statistics come from).

A mask is any image: its luminance (times its alpha, where it has one) is the weight of each pixel,
white = on, black = off, grey = partly. It is resized to the picture it masks (stretched if its
aspect differs), and the style losses downsample it with the features at every layer
(:class:`~styleforge.stylize.features.LayerMask`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch.nn.functional as F
from torch import Tensor

from ..errors import InvalidParameter
from ..images import load_image
from ..parsing import parse_region, resolve_style_name
from .color import luma
from .features import LayerMask

__all__ = ["load_mask", "output_regions", "image_mask_paths", "mask_of"]

#: A mask whose brightest pixel is below this (one 8-bit level) is empty.
_EMPTY = 1 / 255


def _read_grey(path: Path, param: str) -> Tensor:
    """A mask file's weights at its own size, (H, W): luminance × alpha. Each scale of a pyramid asks
    for the same files; a file is read once per (path, modification time)."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = None  # load_image names the problem
    return _read_grey_cached(path, stamp, param)


@lru_cache(maxsize=16)
def _read_grey_cached(path: Path, stamp: int | None, param: str) -> Tensor:
    image = load_image(path, param=param)
    grey = luma(image.rgb)[0]
    return grey * image.alpha[0] if image.alpha is not None else grey


def load_mask(path: Path, shape: tuple[int, int], *, param: str, whole: str) -> Tensor:
    """Reads a mask image as (H, W) weights in [0, 1] at ``shape`` (H, W).

    Raises:
        InputFileError: Missing, a folder, or not an image.
        InvalidParameter: The mask is empty (all black, or fully transparent).
    """
    grey = _read_grey(path, param)
    if tuple(grey.shape) != tuple(shape):
        grey = F.interpolate(
            grey[None, None], size=tuple(shape), mode="bilinear", antialias=True, align_corners=False
        )[0, 0]
    grey = grey.clamp(0, 1)
    if float(grey.max()) < _EMPTY:
        raise InvalidParameter(
            param, whole, "a mask with some non-black pixels (white = on); this one is empty"
        )
    return grey


def _resolved(items: Sequence[str], names: Sequence[str], param: str) -> dict[int, tuple[Path, str]]:
    """Style index → (mask path, the item as given); each style at most once."""
    out: dict[int, tuple[Path, str]] = {}
    for item in items:
        name, path = parse_region(item, param=param)
        index = resolve_style_name(name, names, param=param, whole=item)
        if index in out:
            raise InvalidParameter(
                param, item, f"one mask per style ({names[index]} already has {out[index][1]!r})"
            )
        out[index] = (path, item)
    return out


def output_regions(
    items: Sequence[str], names: Sequence[str], shape: tuple[int, int]
) -> list[LayerMask | None]:
    """Each style's region of the output (``None``: everywhere), from ``--style-mask`` items.

    Styles given the same mask file share one region (so ``w2``/``sw`` blend them there). When some
    styles have masks, the others share what the masks leave, ``1 − Σ masks`` clamped to [0, 1]; when
    every style has one, the uncovered pixels keep the content alone.

    Raises:
        InvalidParameter: An unknown style name, two masks for one style, an empty mask, or masks
            that leave nothing for the unmasked styles.
        InputFileError: A mask that cannot be read.
    """
    given = _resolved(items, names, "--style-mask")
    if not given:
        return [None] * len(names)
    by_path: dict[Path, LayerMask] = {}
    regions: list[LayerMask | None] = [None] * len(names)
    for index, (path, item) in given.items():
        key = path.resolve()
        if key not in by_path:
            by_path[key] = LayerMask(load_mask(path, shape, param="--style-mask", whole=item))
        regions[index] = by_path[key]
    free = [i for i in range(len(names)) if i not in given]
    if free:
        rest = (1 - sum(m.mask for m in by_path.values())).clamp(0, 1)  # type: ignore[union-attr]
        if float(rest.max()) < _EMPTY:
            raise InvalidParameter(
                "--style-mask",
                ", ".join(item for _, item in given.values()),
                f"masks that leave some of the image to {names[free[0]]}, which has no mask "
                "(give it one, or drop it)",
            )
        shared = LayerMask(rest)
        for i in free:
            regions[i] = shared
    return regions


def image_mask_paths(items: Sequence[str], names: Sequence[str]) -> dict[int, tuple[Path, str]]:
    """Style index → (mask path, item) from ``--style-image-mask`` items (read at the style image's
    size with :func:`load_mask` once that size is known)."""
    return _resolved(items, names, "--style-image-mask")


def mask_of(entry: tuple[Path, str] | None, shape: tuple[int, int]) -> LayerMask | None:
    """The style image's :class:`LayerMask` at ``shape`` for an :func:`image_mask_paths` entry."""
    if entry is None:
        return None
    path, item = entry
    return LayerMask(load_mask(path, shape, param="--style-image-mask", whole=item))
