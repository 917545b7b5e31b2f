"""Where network weights come from: torchvision's ImageNet files, a local file, or a seeded init.

``imagenet`` loads torchvision's published file with :func:`torch.hub.load_state_dict_from_url`
(hash-checked, cached under ``$TORCH_HOME/hub/checkpoints``, the cache torchvision itself uses), so a
file torchvision already downloaded is reused. ``PATH`` loads a local state dict with
``weights_only=True`` (never unpickles code). ``random`` means the network's own seeded init.
``auto`` is ``imagenet`` when that works and ``random`` (with a notice saying why) when it does not.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import InvalidParameter, WeightsError

__all__ = [
    "IMAGENET_FILES",
    "IMAGENET_URL",
    "WeightsChoice",
    "cache_path",
    "resolve_weights",
    "load_checked",
]

IMAGENET_URL = "https://download.pytorch.org/models/"

#: torchvision's published ImageNet files; the 8 hex digits are the SHA-256 prefix that
#: ``check_hash=True`` verifies.
IMAGENET_FILES: dict[str, str] = {
    "vgg19": "vgg19-dcbb9e9d.pth",
    "vgg16": "vgg16-397923af.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet18": "resnet18-f37072fd.pth",
}


@dataclass(frozen=True)
class WeightsChoice:
    """Resolved weights.

    Attributes:
        kind: ``imagenet``, ``random`` or ``file``.
        state_dict: The tensors to load, or ``None`` for the seeded init.
        source: Human-readable origin (a path, or ``seeded random init``).
        notice: A sentence to show the user (e.g. why ``auto`` fell back), or ``""``.
    """

    kind: str
    state_dict: dict[str, Tensor] | None
    source: str
    notice: str = ""


def cache_path(arch: str) -> Path:
    """Where torch.hub (and torchvision) cache ``arch``'s ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILES[arch]


def _offline_message(arch: str, why: str) -> str:
    return (
        f"--weights imagenet: cannot get {IMAGENET_FILES[arch]} ({why}); put it in {cache_path(arch).parent} "
        f"or pass --weights PATH to a local copy, or use --weights random"
    )


def _load_imagenet(arch: str) -> dict[str, Tensor]:
    url = IMAGENET_URL + IMAGENET_FILES[arch]
    try:
        # torch.hub writes "Downloading: ..." to stdout even with progress=False; the core never prints.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return torch.hub.load_state_dict_from_url(
                url, map_location="cpu", progress=False, check_hash=True, weights_only=True
            )
    except OSError as exc:  # URLError, connection and disk errors
        why = f"no connection: {getattr(exc, 'reason', None) or exc}"
    except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # hash mismatch, corrupt or empty file
        why = (str(exc).splitlines() or [""])[0] or f"corrupt file ({type(exc).__name__})"
    error = WeightsError(_offline_message(arch, why))
    error.why = why  # type: ignore[attr-defined]
    raise error


def _load_file(path: Path) -> dict[str, Tensor]:
    if not path.exists():
        raise InvalidParameter("--weights", str(path), "imagenet, random, auto, or the path of an existing .pth file")
    if path.is_dir():
        raise InvalidParameter("--weights", str(path), "a file, not a folder")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean "not a state dict"
        raise WeightsError(f"--weights: {str(path)!r} is not a PyTorch state-dict file ({type(exc).__name__})") from None
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise WeightsError(f"--weights: {str(path)!r} does not hold a state dict (name -> tensor)")
    return dict(loaded)


def resolve_weights(spec: str | os.PathLike[str], arch: str) -> WeightsChoice:
    """Resolves ``--weights`` for network ``arch``.

    Args:
        spec: ``imagenet``, ``random``, ``auto`` or a path.
        arch: A key of :data:`IMAGENET_FILES`.

    Raises:
        WeightsError: ``imagenet`` unavailable (offline, bad hash) or an unreadable file.
        InvalidParameter: A path that does not exist.
    """
    text = os.fspath(spec)
    if text == "random":
        return WeightsChoice("random", None, "seeded random init")
    if text in ("imagenet", "auto"):
        try:
            return WeightsChoice("imagenet", _load_imagenet(arch), str(cache_path(arch)))
        except WeightsError as exc:
            if text == "imagenet":
                raise
            why = getattr(exc, "why", str(exc))
            return WeightsChoice(
                "random",
                None,
                "seeded random init",
                f"ImageNet {arch} weights are not cached and cannot be downloaded ({why}): "
                f"falling back to seeded random weights",
            )
    return WeightsChoice("file", _load_file(Path(text)), text)


def load_checked(module: nn.Module, state_dict: Mapping[str, Tensor], *, source: str, ignore: tuple[str, ...] = ()) -> None:
    """Loads ``state_dict`` into ``module`` strictly, with a message that says what does not fit.

    Args:
        module: The network, built with torchvision's names.
        state_dict: Loaded tensors.
        source: Where they came from, for the message.
        ignore: Key prefixes of the file that are not part of ``module`` (e.g. ``classifier.``).

    Raises:
        WeightsError: Missing or unexpected keys, or shape mismatches (the first few are named).
    """
    own = module.state_dict()
    given = {k: v for k, v in state_dict.items() if not k.startswith(ignore)}
    missing = [k for k in own if k not in given]
    unexpected = [k for k in given if k not in own]
    shapes = [f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in given and given[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:2])})")
    if problems:
        raise WeightsError(f"--weights: {source!r} does not fit this network: " + "; ".join(problems))
    module.load_state_dict(given, strict=True)
