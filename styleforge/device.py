"""Choosing the torch device from ``--device``."""

from __future__ import annotations

import re

import torch

from .errors import InvalidParameter, ResourceError

__all__ = ["DEVICE_CHOICES", "resolve_device"]

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
