"""Estimating a transfer's memory before it starts, to refuse a run that would be killed.

The estimate counts what dominates: the activations autograd keeps for the backward pass (every
ReLU and pooling output of the truncated VGG, times a factor for the gradients alive at the peak),
the network's weights, and L-BFGS's history (two vectors of the image's size per remembered step).
Its constants were fitted to measured peaks on CPU (benchmarks/transfer_speed.py: +674 MB at
512 × 384 and +252 MB at 256 × 192 over the imported process, with a few L-BFGS steps), and the
L-BFGS factor to peaks with its history full (after 103 iterations: +2,397 MB over Adam's peak at
1024 × 768 for 1,888 MB of history, +593 MB for 472 MB at 512 × 384).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import torch

from ..device import available_memory
from ..engine import OptimizerSpec
from ..errors import ResourceError
from ..nets.vgg import VGG_BLOCKS, layer_names

if TYPE_CHECKING:
    from .plan import PyramidShapes

__all__ = [
    "ACTIVATION_FACTOR",
    "FIXED_BYTES",
    "LBFGS_FACTOR",
    "activation_elements",
    "estimate_bytes",
    "inference_bytes",
    "held_whole",
    "style_pass",
    "available_bytes",
    "check_memory",
    "check_pyramid",
]

#: Saved activations × this = activations plus the gradient buffers alive at the backward's peak.
ACTIVATION_FACTOR = 2.4
#: Bytes that do not grow with the image (temporaries, allocator slack), fitted as described above.
FIXED_BYTES = 110 * 2**20
#: L-BFGS's ``history_size`` in :func:`styleforge.engine.make_optimizer`.
LBFGS_HISTORY = 100
#: Measured memory of a full L-BFGS history over its vectors' size (the pairs, the recursion's
#: temporaries and allocator slack).
LBFGS_FACTOR = 1.3


def activation_elements(arch: str, layers: Iterable[str], height: int, width: int) -> tuple[int, int]:
    """Elements of the activations kept for backward, and of the weights, up to the deepest layer.

    Returns:
        (activation elements, weight elements) for one image of ``height × width``.
    """
    order = layer_names(arch)
    deepest = max(order.index(layer) for layer in layers)
    acts = weights = 0
    in_channels, h, w, index = 3, height, width, 0
    for _block, channels in enumerate(VGG_BLOCKS[arch], start=1):
        for out_channels in channels:
            if index > deepest:
                return acts, weights
            acts += out_channels * h * w  # the ReLU output autograd keeps (the conv output is freed)
            weights += out_channels * (in_channels * 9 + 1)
            in_channels, index = out_channels, index + 2
        if index > deepest:
            return acts, weights
        h, w, index = h // 2, w // 2, index + 1
        acts += in_channels * h * w
    return acts, weights


def estimate_bytes(
    arch: str, layers: Iterable[str], height: int, width: int, chain: Sequence[OptimizerSpec]
) -> int:
    """Estimated extra memory of a transfer at ``height × width`` (float32), in bytes."""
    acts, weights = activation_elements(arch, layers, height, width)
    pixels = 3 * height * width
    history = (
        LBFGS_FACTOR * 2 * LBFGS_HISTORY * pixels
        if any(spec.name == "lbfgs" for spec in chain)
        else 4 * pixels
    )
    return int(4 * (ACTIVATION_FACTOR * acts + weights + history + 8 * pixels) + FIXED_BYTES)


def inference_bytes(arch: str, layers: Iterable[str], height: int, width: int) -> int:
    """Peak memory of a pass without gradients up to the deepest of ``layers`` (a style image's
    statistics), float32: the outputs of ``layers`` it returns, kept, plus the largest input and
    conv and ReLU outputs alive at once, plus one returned layer's copy (the statistics are taken
    from copies, one layer at a time)."""
    wanted = set(layers)
    order = layer_names(arch)
    deepest = max(order.index(layer) for layer in wanted)
    kept = peak = largest = 0
    in_channels, h, w, index = 3, height, width, 0
    input_kept = False  # the layer's input is a returned layer: counted once, in ``kept``
    for block, channels in enumerate(VGG_BLOCKS[arch], start=1):
        for k, out_channels in enumerate(channels, start=1):
            if index > deepest:
                return 4 * (peak + largest)
            size = out_channels * h * w
            peak = max(peak, kept + (0 if input_kept else in_channels * h * w) + 2 * size)
            input_kept = f"relu{block}_{k}" in wanted
            for name in (f"conv{block}_{k}", f"relu{block}_{k}"):
                if name in wanted:
                    kept, largest = kept + size, max(largest, size)
            in_channels, index = out_channels, index + 2
        if index > deepest:
            break
        h, w, index = h // 2, w // 2, index + 1
        input_kept = f"pool{block}" in wanted
        if input_kept:
            kept, largest = kept + in_channels * h * w, max(largest, in_channels * h * w)
    return 4 * (peak + largest)


def held_whole(shape: tuple[int, int]) -> int:
    """Bytes a tiled scale holds at full size throughout: the content, the starting image, the canvas
    and the result, (3, H, W) float32 each."""
    return 4 * 4 * 3 * shape[0] * shape[1]


def style_pass(arch: str, layers: Iterable[str], style_shapes: Sequence[tuple[int, int]]) -> int:
    """The peak of the largest style image's pass (its statistics are taken before any tile runs,
    and that memory is free again when the tiles are optimised)."""
    layers = list(layers)
    return max((inference_bytes(arch, layers, h, w) for h, w in style_shapes), default=0)


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this run on ``device`` (:func:`styleforge.device.available_memory`: CUDA's free
    memory; on the CPU the system's, within any container or ``ulimit -v`` limit)."""
    return available_memory(device)


def _size_that_fits(
    arch: str,
    layers: list[str],
    shape: tuple[int, int],
    size: int,
    chain: Sequence[OptimizerSpec],
    free: int,
    *,
    at_least: int,
    extra: int,
) -> int | None:
    """The largest ``--size`` below ``size`` (in steps of 16 px) whose estimate fits in ``free`` bytes
    (:func:`check_memory`'s arguments), or ``None``."""
    height, width = shape
    for s in range(size - 16, 15, -16):
        optimisation = estimate_bytes(arch, layers, round(height * s / size), round(width * s / size), chain)
        if max(optimisation, at_least * (s / size) ** 2) + extra <= free:
            return s
    return None


def check_memory(
    arch: str,
    layers: Iterable[str],
    shape: tuple[int, int],
    size: int,
    chain: Sequence[OptimizerSpec],
    device: torch.device,
    *,
    available: int | None = None,
    at_least: int = 0,
    extra: int = 0,
    tiled: bool = False,
) -> int:
    """Refuses a run whose estimate exceeds the memory available, suggesting a size that fits.

    Args:
        arch: The VGG.
        layers: Layers the objective uses.
        shape: The output's (height, width), or a tile's.
        size: The ``--size`` that gave ``shape``.
        chain: The optimiser stages.
        device: Where it runs.
        available: Bytes available (default: measured now).
        at_least: A peak the run reaches outside the optimisation (the style images' pass,
            :func:`inference_bytes`): the need is the larger of the two.
        extra: Bytes held on top throughout (a tiled scale's whole images).
        tiled: ``shape`` is a tile (tiles are not suggested then).

    Returns:
        The estimate in bytes.

    Raises:
        ResourceError: The estimate does not fit; the message gives both figures and what to try:
            tiles, a ``--size`` that fits, or (when the style images' pass is the larger part)
            a smaller ``--style-scale``.
    """
    layers = list(layers)
    height, width = shape
    optimisation = estimate_bytes(arch, layers, height, width, chain)
    need = max(optimisation, at_least) + extra
    free = available if available is not None else available_bytes(device)
    if free is None or need <= free:
        return need
    fits = _size_that_fits(arch, layers, shape, size, chain, free, at_least=at_least, extra=extra)
    hints = [] if tiled or at_least >= optimisation else ["--tile auto (tiles that fit)"]
    if fits is not None:
        hints.append(f"--size {fits}")
    if at_least >= optimisation:
        hints.append("a --style-scale below 1 (the style images' statistics are the larger part)")
    raise ResourceError(
        f"--size {size}: this transfer needs about {need / 2**30:.1f} GiB on {device.type} and "
        f"{free / 2**30:.1f} GiB is available; try {', '.join(hints + ['free memory'])}, "
        "or pass --no-memory-check to try anyway"
    )


def check_pyramid(
    arch: str,
    layers: Iterable[str],
    pyramid: PyramidShapes,
    chain: Sequence[OptimizerSpec],
    device: torch.device,
) -> int:
    """:func:`check_memory` of a planned pyramid, on its shapes alone (before any image is resized).

    The largest run is the finest scale's: its style images' pass, then its optimisation (whole, or
    one tile at a time beside the whole images a tiled scale holds).

    Args:
        arch: The VGG.
        layers: Layers the objective uses.
        pyramid: The content's planned shapes and tiles (:class:`~styleforge.stylize.plan.PyramidShapes`).
        chain: The finest scale's optimiser stages.
        device: Where it runs.

    Returns:
        The estimate in bytes.
    """
    layers = list(layers)
    full, tile = pyramid.contents[-1], pyramid.tiles[-1]
    return check_memory(
        arch,
        layers,
        pyramid.optimised(),
        pyramid.sizes[-1],
        chain,
        device,
        at_least=style_pass(arch, layers, pyramid.styles[-1]),
        extra=0 if tile is None else held_whole(full),
        tiled=tile is not None,
    )
