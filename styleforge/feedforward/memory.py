"""What a stylizer needs of the memory: one pass of the network (``transfer --model``) and one
training step (``train-stylizer``), and the check that refuses a training run that would not fit.

Both are fitted to measurements on the CPU (peak resident memory; benchmarks/README.md): a pass holds
about ``8 × width + 24`` float32 values a pixel; a training step about 4,000 bytes a pixel of its
batch of crops for the frozen VGG's activations and their gradients, plus 170 a pixel for each
channel of the network's width.
"""

from __future__ import annotations

import torch

from ..device import available_memory, check_fits

__all__ = [
    "TRAIN_BYTES_PER_PIXEL",
    "TRAIN_BYTES_PER_WIDTH",
    "TRAIN_FIXED_BYTES",
    "check_training_memory",
    "inference_bytes",
    "training_bytes",
]

#: A training step's bytes per pixel of its crops for the frozen VGG (its activations to relu4_1 and
#: their gradients: the objective's network, both the outputs' pass and the content's).
TRAIN_BYTES_PER_PIXEL = 4000
#: A training step's bytes per pixel of its crops and per channel of the network's ``--width`` (the
#: transformer's activations, gradients and Adam's moments are small beside them).
TRAIN_BYTES_PER_WIDTH = 170
#: What a training run holds besides the step (the networks' weights, the style statistics, the
#: photos' crops, allocator slack), on top of the process's own.
TRAIN_FIXED_BYTES = 200 * 2**20


def inference_bytes(width: int, height: int, side: int) -> int:
    """Peak memory of one pass of a network of ``width`` over a (height × side) picture, in bytes:
    about 8 × width + 24 float32 values per pixel (measured on the CPU: 500 bytes a pixel at width
    16, 1,000 at width 32, at 1024 and 2048 px)."""
    return 4 * height * side * (8 * width + 24)


def training_bytes(size: int, batch: int, width: int) -> int:
    """The memory a training run with ``batch`` crops of ``size`` px per step and a network of
    ``width`` needs on top of the process, in bytes (measured at 128-256 px, batches of 2-4, widths
    16 and 32: within 10 % above the peak resident memory)."""
    return TRAIN_FIXED_BYTES + batch * size * size * (TRAIN_BYTES_PER_PIXEL + TRAIN_BYTES_PER_WIDTH * width)


def check_training_memory(
    size: int,
    batch: int,
    width: int,
    device: torch.device,
    *,
    processes: int = 1,
    available: int | None = None,
) -> int:
    """Refuses a training run whose step would not fit in the memory available, naming what would.

    Args:
        size: ``--size``, the crops' side.
        batch: ``--batch-size``, the crops of a step in all processes.
        width: ``--width``.
        device: Where it trains.
        processes: Processes training together (torchrun): each takes its share of the batch (the
            first ones one crop more), and on a CPU they share the machine's memory.
        available: Bytes available (default: measured now, where it can be; unknown: no check).

    Returns:
        The estimate in bytes.

    Raises:
        ResourceError: It does not fit: both figures, and a ``--batch-size`` or ``--size`` that fits.
    """
    sharing = processes if device.type == "cpu" else 1

    def need(side: int, crops: int) -> int:
        return sharing * training_bytes(side, -(-crops // processes), width)

    free = available if available is not None else available_memory(device)
    if free is None or need(size, batch) <= free:
        return need(size, batch)
    batches = [b for b in range(batch - 1, processes - 1, -1) if need(size, b) <= free]
    sizes = [s for s in range(size - 16, 15, -16) if need(s, batch) <= free]
    hints = [f"--batch-size {batches[0]}"] if batches else []
    hints += [f"--size {sizes[0]}"] if sizes else []
    what = f"--batch-size {batch} --size {size}"
    return check_fits(need(size, batch), device, what, ", ".join([*hints, "free memory"]), available=free)
