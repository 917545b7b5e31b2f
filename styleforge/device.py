"""Choosing the torch device from ``--device``, and the memory a run may use on it."""

from __future__ import annotations

import re

import torch

from .config import PRECISIONS
from .errors import InvalidParameter, ResourceError, choice_error
from .machine import check_fits as fits_or_refuse
from .machine import cpu_memory_available

__all__ = ["DEVICE_CHOICES", "PRECISIONS", "available_memory", "check_fits", "resolve_device", "resolve_precision"]

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(spec: str) -> torch.device:
    """Turns ``auto|cpu|cuda|cuda:N|mps`` into a device that exists on this machine.

    ``auto`` picks CUDA, then MPS, then the CPU.

    Raises:
        InvalidParameter: A string that is not one of the forms above.
        ResourceError: A CUDA/MPS device that this machine does not have.
    """
    text = str(spec).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text == "cpu":
        return torch.device("cpu")
    if text == "mps":
        if not torch.backends.mps.is_available():
            raise ResourceError("--device mps: this machine has no MPS (Apple GPU) device; use --device cpu or auto")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not match:
        raise InvalidParameter("--device", spec, DEVICE_CHOICES)
    if not torch.cuda.is_available():
        raise ResourceError(f"--device {spec}: no CUDA device is available on this machine; use --device cpu or auto")
    index = int(match[1] or 0)
    if index >= torch.cuda.device_count():
        raise ResourceError(
            f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0..cuda:{torch.cuda.device_count() - 1}"
        )
    return torch.device("cuda", index)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast type of the network's convolutions for ``--precision`` on ``device``.

    ``auto`` is bfloat16 on a CUDA device with bf16 support (Ampere and later) and float32
    elsewhere. On CPUs bf16 is opt-in: it is slower than float32 on CPUs without bf16 instructions,
    and on one with them (AVX512-BF16, benchmarks/README.md) it was 1.8× faster but moved L-BFGS's
    loss after 100 iterations by 1.4 % (Adam's by 0.1 %). ``bf16`` asks for it anywhere autocast
    supports it (CUDA and CPU).

    Returns:
        ``torch.bfloat16``, or ``None`` for float32.

    Raises:
        InvalidParameter: Not one of :data:`PRECISIONS`.
        ResourceError: ``bf16`` on a device without bf16 autocast.
    """
    if precision not in PRECISIONS:
        raise choice_error("--precision", precision, PRECISIONS)
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return torch.bfloat16 if cuda_bf16 else None
    if precision == "fp32":
        return None
    if device.type == "cpu" or cuda_bf16:
        return torch.bfloat16
    raise ResourceError(f"--precision bf16: {device.type} has no bf16 autocast here; use --precision fp32 or auto")


# --------------------------------------------------------------------------------------------------
# Memory: what a run may use, checked before its first large tensor


def available_memory(device: torch.device) -> int | None:
    """Bytes a run on ``device`` may still allocate, or ``None`` when it cannot be known: on CUDA the
    device's free memory, on the CPU :func:`styleforge.machine.cpu_memory_available` (the system's,
    within any container, batch job or ``ulimit -v`` limit)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return cpu_memory_available() if device.type == "cpu" else None


def check_fits(need: int, device: torch.device, what: str, fix: str, *, available: int | None = None) -> int:
    """:func:`styleforge.machine.check_fits` on ``device`` (``available``: default, measured now)."""
    free = available if available is not None else available_memory(device)
    return fits_or_refuse(need, free, what, fix, where=device.type)
