"""The frozen backbone's features of a data set, computed once (:func:`compute_features`), and their
cache file (``features.safetensors``), keyed by what they depend on and by the image files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import Tensor

from ..engine.events import Callback, TaskProgress, emit
from ..files import write_atomic

__all__ = ["compute_features", "cached_features", "read_feature_cache", "write_feature_cache"]


@torch.inference_mode()
def compute_features(
    backbone: Callable[[Tensor], Tensor],
    images: Tensor,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 16,
    callbacks: Sequence[Callback] = (),
) -> Tensor:
    """Each image's features, computed once (frozen backbone, no augmentation).

    Args:
        backbone: ``(B, 3, S, S)`` float in [0, 1] → ``(B, D)``; in eval mode.
        images: uint8 ``(N, 3, S, S)``.
        device: Where to run the backbone.
        batch_size: Images per forward pass.
        callbacks: Receive :class:`~styleforge.engine.events.TaskProgress` (task ``features``).

    Returns:
        float32 ``(N, D)`` on ``device`` (an ordinary tensor, not an inference tensor).
    """
    chunks = []
    for start in range(0, len(images), batch_size):
        # Asynchronous when ``images`` is in pinned memory and ``device`` is a GPU.
        x = images[start : start + batch_size].to(device, non_blocking=True).float().div_(255)
        chunks.append(backbone(x))
        emit(callbacks, TaskProgress("features", min(start + batch_size, len(images)), len(images)))
    return torch.cat(chunks).clone()


def _fingerprint(key: dict[str, object], paths: Iterable[Path]) -> str:
    files = []
    for path in paths:
        try:
            stat = path.stat()
            files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
        except OSError:
            files.append([str(path), None, None])
    text = json.dumps({"key": key, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def read_feature_cache(path: Path | None, key: dict[str, object], paths: Sequence[Path]) -> Tensor | None:
    """The features stored in ``path`` when they were computed for ``key`` and the same image files
    (:func:`cached_features`), else ``None`` (also for a missing or unreadable file).

    Args:
        path: The cache file, or ``None``.
        key: What the features depend on besides the files.
        paths: The image files, in row order.

    Returns:
        float32 ``(N, D)`` on the CPU, or ``None``.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    if path is None or not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = (handle.metadata() or {}).get("fingerprint")
        if stored == _fingerprint(key, paths):
            return load_file(str(path))["features"]
    except (OSError, SafetensorError):
        pass  # an unreadable cache is recomputed
    return None


def write_feature_cache(path: Path, key: dict[str, object], paths: Sequence[Path], features: Tensor) -> Path:
    """Writes ``features`` ``(N, D)`` to ``path`` (atomically) with the fingerprint of ``key`` and
    the image files, for :func:`read_feature_cache`."""
    from safetensors.torch import save

    data = save(
        {"features": features.detach().cpu().contiguous()}, metadata={"fingerprint": _fingerprint(key, paths)}
    )
    return write_atomic(path, lambda h: h.write(data))


def cached_features(
    path: Path | None,
    key: dict[str, object],
    paths: Sequence[Path],
    compute: Callable[[], Tensor],
) -> tuple[Tensor, bool]:
    """Features from ``path`` when they were computed for the same key and image files, else computed.

    The cache is a safetensors file whose metadata holds a fingerprint of ``key`` (backbone,
    weights, size) and of each image's path, size and modification time; any change recomputes it.

    Args:
        path: The cache file, or ``None`` for no disk cache.
        key: What the features depend on besides the files.
        paths: The image files, in row order.
        compute: Computes the features ``(N, D)``.

    Returns:
        The features and whether they came from the cache.
    """
    stored = read_feature_cache(path, key, paths)
    if stored is not None:
        return stored, True
    features = compute()
    if path is not None:
        write_feature_cache(path, key, paths, features)
    return features, False
