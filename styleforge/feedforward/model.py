"""A trained feed-forward stylizer: its files, and stylising tensors and image files with it.

A model is the ``-o`` folder of ``train-stylizer``: ``model.safetensors`` (the network's weights)
and ``model.json`` (what builds the network again, the styles, every training option, the best
report). Nothing is pickled code. :func:`load_stylizer` checks both and returns a
:class:`StylizerModel`, which stylises

- tensors: ``model(images)``, (B, 3, H, W) in [0, 1] → the same shape, one forward pass; instance
  normalisation makes each image's result independent of the others in the batch;
- pictures of any size: :meth:`StylizerModel.stylize` runs a picture whole, or, where the memory
  available does not hold its pass (or a tile side is asked for), in overlapping tiles blended
  through feathered windows, every tile normalised with the statistics of the whole picture
  (taken from a copy small enough to run whole), so the tiles meet without seams;
- files: :meth:`StylizerModel.stylize_file` and :meth:`StylizerModel.stylize_files` (output PNGs
  carry their parameters, as every transfer's).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..device import available_memory, resolve_device
from ..errors import InputFileError, InvalidParameter, ResourceError
from ..files import write_atomic
from ..images import LoadedImage, load_image, resize_long_side, save_image
from ..machine import gib
from ..nets.transformer import TransformerNet
from ..version import __version__
from .memory import inference_bytes
from .terms import feather, preserve_colors, tile_grid

__all__ = [
    "FORMAT",
    "MODEL_FILE",
    "MODEL_JSON",
    "AUTO_MODEL_SIZE",
    "MIN_MODEL_SIZE",
    "MIN_TILE",
    "StylizerModel",
    "Stylized",
    "inference_bytes",
    "load_stylizer",
    "model_size_word",
    "save_stylizer",
]

#: ``model.json``'s ``format``.
FORMAT = "styleforge.stylizer/1"
MODEL_FILE = "model.safetensors"
MODEL_JSON = "model.json"
#: The smallest tile side: the network's receptive field is about 100 px wide.
MIN_TILE = 128
#: ``model_size="auto"``: a picture goes through the network at most this many times the model's
#: training crop (long side) and is resized back, so that its strokes keep the size against the
#: picture that they are trained for. Chosen on benchmarks/quality.py's tune half (benchmarks/README.md).
AUTO_MODEL_SIZE = 2.5
#: The smallest ``model_size`` in px.
MIN_MODEL_SIZE = 32


def save_stylizer(folder: str | os.PathLike[str], net: TransformerNet, meta: dict[str, Any]) -> list[Path]:
    """Writes ``model.safetensors`` and ``model.json`` (with ``meta``) atomically; returns both paths."""
    from safetensors.torch import save

    folder = Path(folder)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    data = save(tensors, metadata={"format": FORMAT})
    document = {"format": FORMAT, "styleforge": __version__, "network": {**net.shape()}, **meta}
    text = json.dumps(document, indent=1, default=str, allow_nan=True)
    return [
        write_atomic(folder / MODEL_FILE, lambda h: h.write(data)),
        write_atomic(folder / MODEL_JSON, lambda h: h.write(text.encode())),
    ]


def _read_meta(folder: Path, param: str) -> dict[str, Any]:
    """``model.json`` of a stylizer folder, checked."""
    if not folder.exists():
        raise InputFileError(param, folder, "does not exist")
    if not folder.is_dir():
        raise InputFileError(
            param, folder, "is not a folder; expected the -o folder of styleforge train-stylizer"
        )
    path = folder / MODEL_JSON
    if not path.is_file():
        raise InputFileError(
            param, folder, f"has no {MODEL_JSON}; expected the -o folder of styleforge train-stylizer"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(param, path, f"is not readable JSON ({exc})") from None
    kind = str(meta.get("format", "")) if isinstance(meta, dict) else ""
    if kind.startswith("styleforge.attributes/"):
        raise InputFileError(
            param, folder, "holds an attribute network (train-attrs), not a stylizer (train-stylizer)"
        )
    if kind != FORMAT:
        raise InputFileError(param, path, f"is not a styleforge stylizer description (format {FORMAT})")
    shape = meta.get("network")
    if not (
        isinstance(shape, dict)
        and all(
            isinstance(shape.get(k), int) and shape[k] >= least for k, least in (("width", 1), ("blocks", 0))
        )
    ):
        raise InputFileError(param, path, "has no network shape (network.width >= 1 and network.blocks >= 0)")
    return meta


@dataclass
class Stylized:
    """One stylised picture.

    Attributes:
        image: (3, H, W) in [0, 1].
        alpha: The content's alpha channel at the output's size, or ``None``.
        metadata: What its PNG records.
        tile: The tile side it ran in (``None``: whole).
    """

    image: Tensor
    alpha: Tensor | None
    metadata: dict[str, Any]
    tile: int | None = None

    def save(self, path: str | os.PathLike[str], *, fallback: bool = False) -> Path:
        """Writes the image atomically, its metadata in a PNG text chunk (see
        :func:`~styleforge.images.save_image`)."""
        return save_image(path, self.image, alpha=self.alpha, metadata=self.metadata, fallback=fallback)


def model_size_word(model_size: str | int | None) -> str:
    """``model_size`` as outputs record it: ``auto``, ``off`` or the side in px (``" 512"`` → ``512``,
    ``None`` → ``off``), so that the same choice written two ways is the same record."""
    text = "off" if model_size is None else str(model_size).strip().lower()
    return str(int(text)) if text.isdigit() else text


class StylizerModel:
    """A trained stylizer, in eval mode on ``device``.

    Attributes:
        net: The :class:`~styleforge.nets.transformer.TransformerNet`.
        meta: ``model.json``.
        path: The folder it was read from (``None``: built in memory).
        device: Where it runs.
    """

    def __init__(
        self, net: TransformerNet, meta: dict[str, Any], path: Path | None, device: torch.device
    ) -> None:
        self.net, self.meta, self.path, self.device = net.to(device).eval(), meta, path, device
        self.net.requires_grad_(False)

    @property
    def styles(self) -> list[str]:
        """The styles it was trained on, as ``--style`` gave them."""
        return [str(s["style"]) for s in self.meta.get("styles", [])]

    def __call__(self, images: Tensor) -> Tensor:
        """``images`` (B, 3, H, W) or (3, H, W) in [0, 1] stylised in one pass, on the model's device,
        returned where they came from."""
        single = images.dim() == 3
        x = images[None] if single else images
        with torch.inference_mode():
            out = self.net(x.to(self.device, torch.float32)).to(images.device)
        return out[0] if single else out

    def tile_side(self, shape: tuple[int, int], tile: str | int | None = "auto") -> int | None:
        """The tile side a picture of ``shape`` (height, width) runs in, or ``None`` (whole).

        Args:
            shape: The picture's (height, width).
            tile: ``auto`` (tiles only where the pass does not fit in the memory available, the
                largest tile that does), ``off``/``None`` (whole), or a side in px (pictures larger
                than it run in tiles of it).

        Raises:
            InvalidParameter: A side below :data:`MIN_TILE` or a word other than auto/off.
            ResourceError: ``auto`` and even a :data:`MIN_TILE` tile does not fit.
        """
        h, w = shape
        text = str(tile).strip().lower() if tile is not None else "off"
        if text == "off":
            return None
        if text != "auto":
            if not (text.isdigit() and int(text) >= MIN_TILE):
                raise InvalidParameter("--tile", tile, f"auto, off or a tile side in px >= {MIN_TILE}")
            return int(text) if max(h, w) > int(text) else None
        width = self.net.width
        free = available_memory(self.device)
        if free is None or inference_bytes(width, h, w) <= free // 2:
            return None
        side = math.isqrt(max(1, free // 2 // inference_bytes(width, 1, 1)))
        if side < MIN_TILE:
            raise ResourceError(
                f"--tile auto: even a {MIN_TILE} px tile needs about "
                f"{gib(inference_bytes(width, MIN_TILE, MIN_TILE) * 2)} of memory and {gib(free)} is "
                "available; free memory"
            )
        return side

    def check_options(
        self, *, tile: str | int | None = "auto", model_size: str | int | None = "auto"
    ) -> None:
        """Checks ``tile`` and ``model_size`` before any picture (each picture would meet the same error).

        Raises:
            InvalidParameter: Either is not valid (:meth:`tile_side`, :meth:`working_side`).
        """
        self.working_side((0, 0), model_size)
        text = str(tile).strip().lower() if tile is not None else "off"
        if text not in ("auto", "off"):
            self.tile_side((MIN_TILE, MIN_TILE), tile)

    def working_side(self, shape: tuple[int, int], model_size: str | int | None = "auto") -> int | None:
        """The long side a picture of ``shape`` (height, width) goes through the network at, or ``None``
        (its own size).

        Args:
            shape: The picture's (height, width).
            model_size: ``auto`` (:data:`AUTO_MODEL_SIZE` × the training crop that ``model.json``
                records; its own size without one), ``off``/``None`` (its own size), or a long side in
                px. A picture no larger than it runs at its own size.

        Raises:
            InvalidParameter: A side below :data:`MIN_MODEL_SIZE` or a word other than auto/off.
        """
        text = "off" if model_size is None else str(model_size).strip().lower()
        if text == "off":
            return None
        if text == "auto":
            crop = ((self.meta.get("training") or {}).get("config") or {}).get("size")
            if isinstance(crop, bool) or not isinstance(crop, int) or crop < 1:
                return None
            side = round(AUTO_MODEL_SIZE * crop)
        elif text.isdigit() and int(text) >= MIN_MODEL_SIZE:
            side = int(text)
        else:
            raise InvalidParameter(
                "--model-size", model_size, f"auto, off or a long side in px >= {MIN_MODEL_SIZE}"
            )
        return side if side < max(shape) else None

    def stylize(self, image: Tensor, *, tile: str | int | None = "auto") -> tuple[Tensor, int | None]:
        """One picture (3, H, W) in [0, 1] at its size; returns it stylised and the tile side used."""
        side = self.tile_side(tuple(image.shape[-2:]), tile)
        if side is None:
            return self(image), None
        return self._tiled(image, side), side

    def _tiled(self, image: Tensor, side: int) -> Tensor:
        """The picture in tiles of ``side`` px overlapping by a quarter, each normalised with the
        statistics of the whole picture at ``side`` px long side, blended through feathered windows."""
        shape = (int(image.shape[-2]), int(image.shape[-1]))
        overlap = side // 4
        small = resize_long_side(image.float(), side) if max(shape) > side else image.float()
        stats = self.net.statistics(small[None].to(self.device))
        total = torch.zeros((3, *shape))
        weight = torch.zeros((1, *shape))
        with self.net.fixed_statistics(stats), torch.inference_mode():
            for t in tile_grid(shape, side, overlap):
                out = self.net(t.crop(image)[None].to(self.device, torch.float32))[0].cpu()
                window = feather(t, shape, overlap)[0]
                t.crop(total).add_(out * window)
                t.crop(weight).add_(window)
        return (total / weight).clamp_(0, 1)

    def record(self) -> dict[str, Any]:
        """What a picture's PNG records of the model: its folder, styles, network and checkpoint."""
        return {
            "path": str(self.path) if self.path else None,
            "format": self.meta.get("format"),
            "styles": self.meta.get("styles"),
            "network": self.meta.get("network"),
            "best": self.meta.get("best"),
        }

    def _metadata(self, content: LoadedImage, run: _Pass, work: Tensor, tile: int | None) -> dict[str, Any]:
        return {
            "styleforge": __version__,
            "command": "transfer --model",
            "content": str(content.path) if content.path else None,
            "model": self.record(),
            "size": run.size,
            "preserve_colors": run.preserve_colors,
            "model_size": model_size_word(run.model_size),
            "network_input": list(work.shape[-2:]),
            "tile": tile,
        }

    def stylize_image(
        self,
        content: str | os.PathLike[str] | LoadedImage,
        *,
        size: int | None = None,
        preserve_colors: bool = False,
        tile: str | int | None = "auto",
        model_size: str | int | None = "auto",
    ) -> Stylized:
        """One image file (or a decoded one) stylised.

        Args:
            content: The picture.
            size: Its long side in px before stylising (``None``: its own size).
            preserve_colors: Put the content's colours back (luminance-only transfer).
            tile: As :meth:`tile_side`.
            model_size: As :meth:`working_side`: the network sees a larger picture at this long side,
                and its result is resized back (bicubic) to the picture's size.
        """
        return next(self._run([content], _Pass(size, preserve_colors, tile, model_size), 1))

    def stylize_files(
        self,
        contents: Sequence[str | os.PathLike[str] | LoadedImage],
        *,
        size: int | None = None,
        preserve_colors: bool = False,
        tile: str | int | None = "auto",
        model_size: str | int | None = "auto",
        batch_size: int = 4,
    ) -> Iterator[Stylized]:
        """Many pictures (options as :meth:`stylize_image`'s), in order; consecutive ones that go through
        the network whole at the same size go together, up to ``batch_size`` at a time (a result does
        not depend on its batch)."""
        yield from self._run(contents, _Pass(size, preserve_colors, tile, model_size), batch_size)

    def _run(
        self, contents: Sequence[str | os.PathLike[str] | LoadedImage], run: _Pass, batch_size: int
    ) -> Iterator[Stylized]:
        pending: list[tuple[LoadedImage, Tensor]] = []  # each picture and what the network sees of it

        def flush() -> Iterator[Stylized]:
            if not pending:
                return
            batch = torch.stack([work for _, work in pending])
            for (loaded, work), out in zip(pending, self(batch)):
                yield self._finish(loaded, work, out, run, None)
            pending.clear()

        for item in contents:
            loaded = item if isinstance(item, LoadedImage) else load_image(item, param="CONTENT")
            if run.size is not None:
                alpha = resize_long_side(loaded.alpha, run.size) if loaded.alpha is not None else None
                loaded = LoadedImage(resize_long_side(loaded.rgb, run.size), alpha, loaded.path)
            side = self.working_side(loaded.size, run.model_size)
            work = resize_long_side(loaded.rgb, side) if side is not None else loaded.rgb
            shape = (int(work.shape[-2]), int(work.shape[-1]))
            tile = self.tile_side(shape, run.tile)
            if pending and (
                tile is not None or pending[0][1].shape != work.shape or len(pending) >= batch_size
            ):
                yield from flush()
            if tile is not None:
                yield self._finish(loaded, work, self._tiled(work, tile), run, tile)
            else:
                pending.append((loaded, work))
        yield from flush()

    def _finish(
        self, loaded: LoadedImage, work: Tensor, out: Tensor, run: _Pass, tile: int | None
    ) -> Stylized:
        if out.shape[-2:] != loaded.rgb.shape[-2:]:  # back from the network's size to the picture's
            out = F.interpolate(
                out[None], size=tuple(loaded.rgb.shape[-2:]), mode="bicubic", align_corners=False
            )[0].clamp_(0, 1)
        if run.preserve_colors:
            out = preserve_colors(out, loaded.rgb)
        return Stylized(out, loaded.alpha, self._metadata(loaded, run, work, tile), tile)


@dataclass(frozen=True)
class _Pass:
    """How the pictures of one call go through the network (:meth:`StylizerModel.stylize_image`'s
    options)."""

    size: int | None
    preserve_colors: bool
    tile: str | int | None
    model_size: str | int | None


def load_stylizer(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu", param: str = "--model"
) -> StylizerModel:
    """Reads a model folder written by ``train-stylizer`` (or :func:`styleforge.train_stylizer`).

    Args:
        path: The folder.
        device: ``cpu``, ``cuda``, ``auto``, ... or a :class:`torch.device`.
        param: The parameter named in errors.

    Raises:
        InputFileError: Not a folder, no or a damaged ``model.json`` or ``model.safetensors``, another
            kind of model, or weights that do not fit the network ``model.json`` describes.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(path)
    meta = _read_meta(folder, param)
    where = device if isinstance(device, torch.device) else resolve_device(device)
    try:
        tensors = load_file(str(folder / MODEL_FILE))
    except (OSError, SafetensorError) as exc:
        raise InputFileError(param, folder / MODEL_FILE, f"cannot be read ({exc})") from None
    shape = meta["network"]
    net = TransformerNet(shape["width"], shape["blocks"])
    try:
        net.load_state_dict(tensors)
    except RuntimeError as exc:  # missing, extra or misshapen tensors
        reason = str(exc).splitlines()[0].rstrip(":")
        raise InputFileError(
            param, folder / MODEL_FILE, f"does not hold the network {MODEL_JSON} describes ({reason})"
        ) from None
    return StylizerModel(net, meta, folder, where)
