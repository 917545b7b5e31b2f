"""Choosing the torch device from ``--device``, and the memory a run may use on it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .config import PRECISIONS
from .errors import InvalidParameter, ResourceError, choice_error
from .machine import check_fits as fits_or_refuse
from .machine import cpu_memory_available

__all__ = [
    "DEVICE_CHOICES",
    "PRECISIONS",
    "available_memory",
    "check_fits",
    "native_bf16",
    "resolve_device",
    "resolve_precision",
    "tf32_mode",
]

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
            raise ResourceError(
                "--device mps: this machine has no MPS (Apple GPU) device; use --device cpu or auto"
            )
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if not match:
        raise InvalidParameter("--device", spec, DEVICE_CHOICES)
    if not torch.cuda.is_available():
        raise ResourceError(
            f"--device {spec}: no CUDA device is available on this machine; use --device cpu or auto"
        )
    index = int(match[1] or 0)
    if index >= torch.cuda.device_count():
        raise ResourceError(
            f"--device {spec}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"cuda:0..cuda:{torch.cuda.device_count() - 1}"
        )
    return torch.device("cuda", index)


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively, not by emulation: a CUDA device of compute
    capability 8.0 or later (Ampere's tensor cores; checked on ``device`` itself, not on the current
    device), or a CPU with AVX512-BF16 or AMX instructions. Elsewhere bf16 is emulated and slower
    than float32."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).major >= 8
    if device.type == "cpu":
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast type of the network's convolutions for ``--precision`` on ``device``.

    ``tf32`` keeps float32 tensors and lets CUDA's convolutions and matrix products round their inputs to
    TF32 (:func:`tf32_mode`); ``fp32`` is float32 throughout (PyTorch's own default lets cuDNN
    convolutions use TF32, which ``fp32`` turns off). ``auto`` is bfloat16 where the device computes in
    it natively (:func:`native_bf16`: CUDA from Ampere on, CPUs with AVX512-BF16 or AMX) and float32
    elsewhere: on a CPU with bf16 instructions a transfer ran 1.8× faster in bf16, with pictures within a
    few levels of float32's (benchmarks/README.md), while emulated bf16 is slower than float32. ``bf16``
    asks for it anywhere autocast supports it (CUDA and CPU).
    Returns:
        ``torch.bfloat16``, or ``None`` for float32.

    Raises:
        InvalidParameter: Not one of :data:`PRECISIONS`.
        ResourceError: ``bf16`` on a device without bf16 autocast.
    """
    if precision not in PRECISIONS:
        raise choice_error("--precision", precision, PRECISIONS)
    if precision == "auto":
        return torch.bfloat16 if native_bf16(device) else None
    if precision == "tf32":
        if device.type != "cuda":
            raise ResourceError(
                f"--precision tf32: TF32 is a format of NVIDIA GPUs, not of {device.type}; "
                "use --precision fp32, bf16 or auto"
            )
        return None
    if precision == "fp32":
        return None
    if device.type == "cpu" or (device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    raise ResourceError(
        f"--precision bf16: {device.type} has no bf16 autocast here; use --precision fp32 or auto"
    )


# --------------------------------------------------------------------------------------------------
# Memory: what a run may use, checked before its first large tensor


def available_memory(device: torch.device) -> int | None:
    """Bytes a run on ``device`` may still allocate, or ``None`` when it cannot be known: on CUDA the
    device's free memory plus the blocks PyTorch's allocator holds cached but unused (free to this
    process, though the card counts them as taken: without them a second image or video frame would
    see half the card), on the CPU :func:`styleforge.machine.cpu_memory_available` (the system's,
    within any container, batch job or ``ulimit -v`` limit)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free + max(0, cached))
    return cpu_memory_available() if device.type == "cpu" else None


def check_fits(need: int, device: torch.device, what: str, fix: str, *, available: int | None = None) -> int:
    """:func:`styleforge.machine.check_fits` on ``device`` (``available``: default, measured now)."""
    free = available if available is not None else available_memory(device)
    return fits_or_refuse(need, free, what, fix, where=device.type)


def _tf32_settings() -> list[tuple[object, str, object, object]]:
    """(owner, attribute, TF32 value, float32 value) of CUDA's matrix-product and convolution
    settings: PyTorch 2.9's ``fp32_precision`` where it exists (mixing it with the legacy
    ``allow_tf32`` flags is an error there), else the legacy flags."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        return [
            (torch.backends.cuda.matmul, "fp32_precision", "tf32", "ieee"),
            (conv, "fp32_precision", "tf32", "ieee"),
        ]
    return [
        (torch.backends.cuda.matmul, "allow_tf32", True, False),
        (torch.backends.cudnn, "allow_tf32", True, False),
    ]


@contextmanager
def tf32_mode(device: torch.device, enabled: bool) -> Iterator[None]:
    """Within the block, CUDA convolutions and matrix products may use TF32 only if ``enabled``
    (``--precision tf32``); the settings found are restored after (PyTorch's own default is TF32
    convolutions and float32 products). A no-op on other devices."""
    if device.type != "cuda":
        yield
        return
    settings = _tf32_settings()
    saved = [getattr(owner, name) for owner, name, _, _ in settings]
    for owner, name, tf32, full in settings:
        setattr(owner, name, tf32 if enabled else full)
    try:
        yield
    finally:
        for (owner, name, _, _), value in zip(settings, saved):
            setattr(owner, name, value)
