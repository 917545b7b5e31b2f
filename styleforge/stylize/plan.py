"""Planning a transfer: the pyramid's sizes, shapes, tiles, images and masks, before any network runs.

A *scale* is one size of the coarse-to-fine pyramid (its long side in px); a run optimises the
scales in order, each starting from the previous one's result. A content image is planned in two
steps, with the memory check (:func:`~styleforge.stylize.memory.check_pyramid`) between them, so
that a size too large for the machine is refused before any image is resized to it:

1. :meth:`Planner.shapes`: every scale's shape, the style images' shapes and the tiles, from the
   image's size alone (:class:`PyramidShapes`);
2. :meth:`Planner.plan`: the images at those shapes: the content, the style images (recoloured with
   ``--color-transfer histogram|luminance``), their masks and the output regions (:class:`ContentPlan`).

Everything here is plain data; the network never runs.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from ..config import TransferConfig
from ..engine import OptimizerSpec, parse_optimizer
from ..errors import InvalidParameter
from ..images import LoadedImage, load_image, long_side_shape, resize_long_side
from ..nets.vgg import layer_names, pooling_factor
from ..parsing import StyleSpec
from .color import match_histogram, match_luminance
from .features import LayerMask
from .regions import image_mask_paths, mask_of, output_regions
from .tiles import Tile, choose_tile

__all__ = [
    "ImageInput",
    "Shape",
    "load_content",
    "scale_sizes",
    "scale_shares",
    "scale_chains",
    "check_size",
    "PyramidShapes",
    "ScalePlan",
    "ContentPlan",
    "Planner",
]

#: A content image: a path, or an image already read.
ImageInput = str | os.PathLike[str] | LoadedImage
#: (height, width) in px.
Shape = tuple[int, int]


def load_content(item: ImageInput) -> LoadedImage:
    """The content image, read where it is a path (errors name ``CONTENT``)."""
    return item if isinstance(item, LoadedImage) else load_image(item, param="CONTENT")


def scale_sizes(size: int, count: int, min_size: int | None = None) -> list[int]:
    """The long sides of a coarse-to-fine run: ``count`` sizes growing geometrically to ``size``.

    The default first size steps by √2 (``scale_sizes(512, 5)`` → 128, 181, 256, 362, 512), as
    crowsonkb/style-transfer-pytorch does.
    """
    if count <= 1:
        return [size]
    first = min_size if min_size is not None else round(size / 2 ** ((count - 1) / 2))
    return [round(first * (size / first) ** (i / (count - 1))) for i in range(count)]


def scale_shares(steps: int, count: int, split: float) -> list[int]:
    """``steps`` iterations shared between ``count`` scales, coarse to fine, each scale getting
    ``split`` times the next finer one's (1: evenly), rounded so that they add up to ``steps``
    exactly (largest remainders) and each scale gets at least one.

    >>> scale_shares(300, 3, 1.0), scale_shares(175, 3, 2.0)
    ([100, 100, 100], [100, 50, 25])
    """
    weights = [split ** (count - 1 - k) for k in range(count)]
    exact = [steps * w / sum(weights) for w in weights]
    shares = [math.floor(x) for x in exact]
    for k in sorted(range(count), key=lambda k: exact[k] - shares[k], reverse=True)[: steps - sum(shares)]:
        shares[k] += 1
    return [max(1, n) for n in shares]


def scale_chains(config: TransferConfig, count: int, budget: int | None = None) -> list[list[OptimizerSpec]]:
    """The optimiser chain of each of ``count`` scales, coarse to fine: ``config.optimizer`` parsed,
    ``--lr`` filled in where a stage has no ``@LR``, and each stage's steps shared between the scales
    by :func:`scale_shares` (``config.scale_split``). ``budget``: the whole chain's iterations
    instead of the configured ones (each stage keeps its share of them)."""
    chain = [parse_optimizer(text) for text in config.optimizer]
    if config.lr is not None:
        chain = [dataclasses.replace(s, lr=config.lr) if s.lr is None else s for s in chain]
    steps = [s.steps or config.iterations for s in chain]
    if budget is not None:
        steps = [max(1, round(n * budget / sum(steps))) for n in steps]
    shares = [scale_shares(n, count, config.scale_split) for n in steps]
    return [[dataclasses.replace(s, steps=share[k]) for s, share in zip(chain, shares)] for k in range(count)]


def check_size(size: int, network: str, shape: Shape, layers: Sequence[str], source_shape: Shape) -> None:
    """Refuses a size at which an image of ``source_shape``, resized to ``shape``, would be smaller than
    the deepest layer's pooling factor."""
    minimum = pooling_factor(network, layers)
    if min(shape) >= minimum:
        return
    order = layer_names(network)
    deepest = max(layers, key=order.index)
    h, w = source_shape
    need = next(
        n for n in range(size, 1 << 20) if min(round(h * n / max(h, w)), round(w * n / max(h, w))) >= minimum
    )
    raise InvalidParameter(
        "--size",
        size,
        f"a size at which the image's short side is at least {minimum} px, the minimum for layer "
        f"{deepest} of {network} (this image needs --size {need} or more)",
    )


#: ``--color-transfer``'s recolourings of a style image (style, content) → style: to the content's
#: colours or only its tone; ``none`` leaves the style as it is.
_RECOLOURINGS = {"histogram": match_histogram, "luminance": match_luminance}


@dataclass(frozen=True)
class PyramidShapes:
    """A content image's pyramid as shapes only, known before any image is resized.

    Attributes:
        sizes: Each scale's long side, coarse to fine.
        contents: The content's shape at each scale.
        styles: At each scale, each style image's shape.
        tiles: Each scale's tile side (``None``: optimised whole).
    """

    sizes: tuple[int, ...]
    contents: tuple[Shape, ...]
    styles: tuple[tuple[Shape, ...], ...]
    tiles: tuple[int | None, ...]

    def optimised(self) -> Shape:
        """The largest shape optimised at once: the finest scale's, or its tile's."""
        full, tile = self.contents[-1], self.tiles[-1]
        return full if tile is None else (min(tile, full[0]), min(tile, full[1]))


@dataclass
class ScalePlan:
    """What one scale needs before the network runs: the content at that size, the style images and
    masks at the size their statistics are taken at, and the output regions.

    Attributes:
        size: The scale's long side in px.
        target: The content image at this size, (3, h, w) in [0, 1] (what the content and Laplacian
            terms are taken from).
        style_rgbs: Each style image at its size for this scale, (3, h', w').
        style_masks: Each style image's own mask (``--style-image-mask``), or ``None``.
        regions: Each style's output region (``--style-mask``), or ``None``: everywhere.
        tile: Optimised tile by tile with this side (:mod:`.tiles`), or ``None``: whole.
        whole: For one tile of a scale (:meth:`crop`), the whole scale: what is measured over the
            whole content (``--style-norm balanced``'s content magnitudes) is measured there.
    """

    size: int
    target: Tensor
    style_rgbs: list[Tensor]
    style_masks: list[LayerMask | None]
    regions: list[LayerMask | None]
    tile: int | None = None
    whole: ScalePlan | None = dataclasses.field(default=None, repr=False, compare=False)

    def crop(self, tile: Tile) -> ScalePlan:
        """The scale restricted to one tile: the content cropped; the style images (and so their
        statistics) whole. (Output regions are not tiled: ``--style-mask`` refuses tiles.)"""
        return ScalePlan(
            self.size,
            tile.crop(self.target),
            self.style_rgbs,
            self.style_masks,
            self.regions,
            whole=self.whole or self,
        )


@dataclass
class ContentPlan:
    """One content image and its pyramid, checked: what :meth:`Planner.plan` gives.

    Attributes:
        image: The content image as read.
        scales: Its scales, coarse to fine.
    """

    image: LoadedImage
    scales: list[ScalePlan]


@dataclass(frozen=True)
class Planner:
    """What planning a content image needs, all of it known before the network is built.

    Attributes:
        config: The checked options.
        sizes: Each scale's long side, coarse to fine.
        network: The VGG (``vgg19`` or ``vgg16``).
        layers: Every layer the terms read.
        style_layers: The style terms' layers.
        chain: The finest scale's optimiser chain (its memory is the largest).
        specs: The style images as given.
        style_images: The style images as read.
        names: The styles' term names (``style.<name>``), which masks refer to.
        whole_image_terms: Some terms need the whole image (the extensions'): no scale may be tiled.
    """

    config: TransferConfig
    sizes: Sequence[int]
    network: str
    layers: Sequence[str]
    style_layers: Sequence[str]
    chain: Sequence[OptimizerSpec]
    specs: Sequence[StyleSpec]
    style_images: Sequence[LoadedImage]
    names: Sequence[str]
    whole_image_terms: bool = False

    @property
    def auto_tiles(self) -> bool:
        """``--tile auto``: the tiles depend on the memory available."""
        return str(self.config.tile).lower() == "auto"

    def style_side(self, spec: StyleSpec, size: int) -> int:
        """A style image's long side at a scale of ``size``: ``size`` times its ``style_scale`` (its
        own ``@SCALE``, else ``--style-scale``)."""
        style_scale = spec.scale if spec.scale is not None else self.config.style_scale
        return max(1, round(size * style_scale))

    def check_styles(self) -> None:
        """Every style image is large enough for the deepest style layer at every scale."""
        for size in self.sizes:
            for spec, image in self._styles():
                shape = long_side_shape(image.size, self.style_side(spec, size))
                check_size(size, self.network, shape, list(self.style_layers), image.size)

    def check_contents(self, shapes: Sequence[Shape], source: Shape) -> None:
        """Every scale's content shape is large enough for the deepest layer."""
        for size, shape in zip(self.sizes, shapes):
            check_size(size, self.network, shape, list(self.layers), source)

    def shapes(self, source: Shape, free: int | None = None) -> PyramidShapes:
        """The pyramid of a content image of ``source`` (height, width), from the shapes alone.

        Args:
            source: The content image's shape.
            free: The memory available in bytes, for ``--tile auto`` (``None``: unknown).

        Raises:
            InvalidParameter: A scale too small for the deepest layer, or one that would be tiled
                with options that need the whole image.
            ResourceError: ``--tile auto`` finds no tile that fits.
        """
        contents = [long_side_shape(source, size) for size in self.sizes]
        self.check_contents(contents, source)
        styles = [
            tuple(long_side_shape(image.size, self.style_side(spec, size)) for spec, image in self._styles())
            for size in self.sizes
        ]
        tiles = [
            self._tile(size, shape, style, free) for size, shape, style in zip(self.sizes, contents, styles)
        ]
        return PyramidShapes(tuple(self.sizes), tuple(contents), tuple(styles), tuple(tiles))

    def _styles(self) -> list[tuple[StyleSpec, LoadedImage]]:
        return list(zip(self.specs, self.style_images))

    def _tile(self, size: int, shape: Shape, style_shapes: Sequence[Shape], free: int | None) -> int | None:
        """One scale's tile side (:func:`~styleforge.stylize.tiles.choose_tile`), refused where the
        options need the whole image."""
        config = self.config
        tile = choose_tile(
            self.network,
            self.layers,
            shape,
            list(style_shapes),
            self.chain,
            free,
            requested=config.tile_side(),
            auto=self.auto_tiles,
            size=self.sizes[-1],
            scale_size=size,
        )
        if tile is not None and (self.whole_image_terms or config.style_masks):
            why = (
                "--attrs-model/--score-with (the attribute network rates the whole image)"
                if self.whole_image_terms
                else "--style-mask (regions are not tiled yet)"
            )
            raise InvalidParameter(
                "--tile",
                config.tile,
                f"off with {why}: the {size} px scale would be tiled; choose a smaller --size",
            )
        return tile

    def plan(self, image: LoadedImage, shapes: PyramidShapes) -> ContentPlan:
        """The images of a checked pyramid: each scale's content, style images, masks and regions.

        Raises:
            InvalidParameter: A mask that names no style, or an empty mask.
            InputFileError: A mask that cannot be read.
        """
        image_masks = image_mask_paths(self.config.style_image_masks, self.names)
        return ContentPlan(
            image,
            [self._scale(image, size, tile, image_masks) for size, tile in zip(shapes.sizes, shapes.tiles)],
        )

    def _scale(
        self, image: LoadedImage, size: int, tile: int | None, image_masks: dict[int, Any]
    ) -> ScalePlan:
        config = self.config
        target = resize_long_side(image.rgb, size)
        style_rgbs = []
        for spec, style in self._styles():
            style_rgb = resize_long_side(style.rgb, self.style_side(spec, size))
            recolour = _RECOLOURINGS.get(config.color_transfer)
            style_rgbs.append(recolour(style_rgb, target) if recolour else style_rgb)
        return ScalePlan(
            size,
            target,
            style_rgbs,
            [mask_of(image_masks.get(i), tuple(rgb.shape[-2:])) for i, rgb in enumerate(style_rgbs)],
            output_regions(config.style_masks, self.names, tuple(target.shape[-2:])),
            tile,
        )
