"""Attribute training data: label CSVs in two layouts, validation, splits, images and cached features.

Two CSV layouts are read (the first row is a header; column names are matched case-insensitively):

- styleforge's own, as :func:`styleforge.attributes.synthetic.make_dataset` writes it:
  ``image,<attribute columns>[,split]``. ``image`` is a path relative to the data folder (or
  absolute); ``split`` is ``train``, ``val`` (``validation``) or ``test``, or empty.
- ACAN's (Holly Grimm 2018): ``in_train,new_filename,<the 8 attributes>``. The image is
  ``train/<new_filename>`` when ``in_train`` is true (``1``/``true``/``yes``), else
  ``test/<new_filename>``; those held-out rows are the validation split.

Numeric labels are on their attribute's scale (1..10 for ACAN); categorical labels are class names,
matched forgivingly (:func:`styleforge.attributes.schema.normalize_label`: case, ``-``/``_``/space and
ACAN's reversed colour names). An empty cell means "not labelled": that head's loss and metrics skip
the image. Every problem is an error that names the file, the row and the column.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..engine.distributed import Distributed
from ..engine.events import Callback, TaskProgress, emit
from ..files import write_atomic
from ..errors import InputFileError, InvalidParameter, did_you_mean
from ..images import load_image
from .kinds import CategoricalAttribute, NumericAttribute
from .schema import Schema

__all__ = [
    "SPLITS",
    "LabelError",
    "LabelledImage",
    "LabelTable",
    "Skipped",
    "find_labels",
    "read_labels",
    "assign_splits",
    "load_images",
    "squash_resize",
    "preprocess_image",
    "encode_labels",
    "augment",
    "sample_seed",
    "augment_sample",
    "compute_features",
    "cached_features",
    "read_feature_cache",
    "write_feature_cache",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


class LabelError(InputFileError):
    """A problem in a labels CSV, naming the file, the row (and its line) and the column.

    Attributes:
        row: 1-based data row (the header is row 0), or ``None`` for the whole file.
        column: The column's name as written, or ``None``.
    """

    def __init__(self, path: Path, problem: str, row: int | None = None, line: int | None = None,
                 column: str | None = None) -> None:
        where = []
        if row is not None:
            where.append(f"row {row} (line {line})" if line is not None else f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        self.row, self.column = row, column
        super().__init__("--data", path, (", ".join(where) + ": " if where else "") + problem)


@dataclass(frozen=True)
class LabelledImage:
    """One row of a labels CSV.

    Attributes:
        path: The image file.
        row: 1-based data row.
        line: The row's line in the file.
        labels: Attribute name → rating (numeric, on its scale), class index (categorical) or
            ``None`` (not labelled).
        split: ``train``, ``val``, ``test`` from the CSV, or ``None`` (assigned by the seed).
        image_text: The path as written in the CSV.
    """

    path: Path
    row: int
    line: int
    labels: dict[str, float | int | None]
    split: str | None = None
    image_text: str = ""


@dataclass
class LabelTable:
    """A validated labels CSV.

    Attributes:
        csv_path: The file.
        layout: ``styleforge`` or ``acan``.
        schema: The attributes read.
        items: Its rows, in file order.
        sha256: Hash of the file's bytes (a resumed run checks it).
    """

    csv_path: Path
    layout: str
    schema: Schema
    items: list[LabelledImage]
    sha256: str = ""


@dataclass(frozen=True)
class Skipped:
    """An image left out with ``--skip-bad``: its row, path and why."""

    row: int
    path: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.path} {self.reason}"


def find_labels(data_dir: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None) -> Path:
    """The labels CSV of a data folder.

    Args:
        data_dir: The folder (``--data``).
        labels: An explicit CSV (``--labels``), relative to ``data_dir`` or absolute.

    Returns:
        ``labels`` if given, else ``data_dir/labels.csv``, else the folder's only ``.csv``.

    Raises:
        InputFileError: The folder or the CSV does not exist, or there is no CSV or several.
    """
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise InputFileError("--data", data_dir, "does not exist")
    if not data_dir.is_dir():
        raise InputFileError("--data", data_dir, "is not a folder; expected a folder with images and a labels CSV")
    if labels is not None:
        path = Path(labels) if Path(labels).is_absolute() else data_dir / labels
        if not path.is_file():
            raise InputFileError("--labels", path, "does not exist" if not path.exists() else "is not a file")
        return path
    if (data_dir / "labels.csv").is_file():
        return data_dir / "labels.csv"
    found = sorted(p for p in data_dir.glob("*.csv") if p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputFileError("--data", data_dir, "has no labels CSV (expected labels.csv, or give --labels FILE)")
    raise InputFileError(
        "--data", data_dir, f"has several CSV files ({', '.join(p.name for p in found)}) and no labels.csv; choose one with --labels"
    )


def _parse_cell(attribute: NumericAttribute | CategoricalAttribute, text: str, where: Callable[..., LabelError]
                ) -> float | int | None:
    text = text.strip()
    if not text:
        return None
    try:
        if isinstance(attribute, NumericAttribute):
            return attribute.parse(text)
        return attribute.index(text)
    except InvalidParameter as exc:
        hint = f" ({exc.hint})" if exc.hint else ""
        raise where(f"{text!r} is not valid; expected {exc.valid}{hint}", attribute.name) from None


def read_labels(
    data_dir: str | os.PathLike[str], schema: Schema, labels: str | os.PathLike[str] | None = None
) -> LabelTable:
    """Reads and validates a labels CSV in either layout (see the module docstring).

    Images are only located here (their paths are resolved), not opened: :func:`load_images`
    decodes them.

    Args:
        data_dir: The data folder.
        schema: The attributes to read; each must have a column.
        labels: An explicit CSV path (see :func:`find_labels`).

    Raises:
        InputFileError: No CSV (see :func:`find_labels`).
        LabelError: An unreadable or empty file, neither layout's columns, a missing attribute
            column, a row with the wrong number of cells, an empty image name, an ``in_train`` or
            ``split`` value that is not valid, a number out of range or an unknown class (listing
            the valid ones).
    """
    data_dir = Path(data_dir)
    path = find_labels(data_dir, labels)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except OSError as exc:
        raise LabelError(path, f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise LabelError(path, "is not UTF-8 text (save it as CSV UTF-8)") from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = next(reader)
    except StopIteration:
        raise LabelError(path, "is empty; expected a header row and one row per image") from None
    except csv.Error as exc:
        raise LabelError(path, f"is not valid CSV ({exc})", 0, 1) from None
    names = [h.strip() for h in header]
    index = {}
    for i, name in enumerate(names):
        index.setdefault(name.lower(), i)
    if "image" in index:
        layout = "styleforge"
    elif "new_filename" in index:
        layout = "acan"
    else:
        raise LabelError(
            path,
            "has neither an 'image' column (styleforge's layout: image,<attributes>[,split]) nor 'new_filename' "
            f"(ACAN's layout: in_train,new_filename,<attributes>); its columns: {', '.join(names)}",
            0, 1,
        )
    missing = [a.name for a in schema if a.name.lower() not in index]
    if missing:
        hints = [did_you_mean(m, names) for m in missing]
        hint = next((h for h in hints if h), "")
        raise LabelError(
            path,
            f"is missing the attribute column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
            f" (its columns: {', '.join(names)})" + (f"; {hint}" if hint else ""),
            0, 1,
        )
    image_col = index["image"] if layout == "styleforge" else index["new_filename"]
    split_col = index.get("split") if layout == "styleforge" else index.get("in_train")
    items: list[LabelledImage] = []
    row = 0
    try:
        for cells in reader:
            row += 1
            line = reader.line_num

            def where(problem: str, column: str | None = None, _row: int = row, _line: int = line) -> LabelError:
                return LabelError(path, problem, _row, _line, column)

            if not any(c.strip() for c in cells):
                row -= 1  # blank lines are not rows
                continue
            if len(cells) != len(names):
                raise where(f"has {len(cells)} cells but the header has {len(names)}")
            image_text = cells[image_col].strip()
            if not image_text:
                raise where("is empty; expected an image file name", names[image_col])
            split = None
            if split_col is not None:
                value = cells[split_col].strip().lower()
                if layout == "styleforge" and value:
                    if value not in _SPLIT_NAMES:
                        raise where(f"{cells[split_col]!r} is not valid; expected train, val or test (or empty)", names[split_col])
                    split = _SPLIT_NAMES[value]
                elif layout == "acan":
                    if value in _TRUE:
                        split = "train"
                    elif value in _FALSE:
                        split = "val"
                    else:
                        raise where(f"{cells[split_col]!r} is not valid; expected 1/0 or true/false", names[split_col])
            labels_row = {a.name: _parse_cell(a, cells[index[a.name.lower()]], where) for a in schema}
            items.append(LabelledImage(_image_path(data_dir, layout, image_text, split, split_col is not None),
                                       row, line, labels_row, split, image_text))
    except csv.Error as exc:
        raise LabelError(path, f"is not valid CSV ({exc})", row, reader.line_num) from None
    if not items:
        raise LabelError(path, "has a header but no rows; expected one row per image")
    return LabelTable(path, layout, schema, items, hashlib.sha256(raw).hexdigest())


def _image_path(data_dir: Path, layout: str, text: str, split: str | None, has_split: bool) -> Path:
    given = Path(text)
    if given.is_absolute() or layout == "styleforge":
        return given if given.is_absolute() else data_dir / given
    # ACAN: train/ or test/ by in_train; look in the other folder and the data folder too.
    folders = ["train", "test"] if split != "val" else ["test", "train"]
    candidates = [data_dir / f / given for f in folders] + [data_dir / given]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


def assign_splits(
    table: LabelTable, val_split: float, test_split: float, seed: int, keep: Sequence[int] | None = None
) -> dict[str, list[int]]:
    """Splits the usable rows into train / val / test.

    Rows whose CSV gives a split keep it. The others are shuffled with ``seed`` and the first
    ``round(n × test_split)`` go to test, the next ``round(n × val_split)`` to validation (each at
    least 1 when its share is > 0), the rest to training. (The original held out the last 10 % of
    rows; a seeded shuffle does not depend on the file's order.)

    Args:
        table: The labels.
        val_split: Share for validation, in [0, 1).
        test_split: Share for test, in [0, 1).
        seed: Shuffle seed.
        keep: Indices of ``table.items`` that are usable (e.g. after skipping bad images);
            ``None``: all.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, indices into ``table.items``, sorted.

    Raises:
        LabelError: Too few images: no training image would be left.
    """
    indices = list(range(len(table.items))) if keep is None else list(keep)
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    free = []
    for i in indices:
        split = table.items[i].split
        (out[split] if split is not None else free).append(i)
    n = len(free)
    n_test = max(1, round(n * test_split)) if test_split > 0 and n else 0
    n_val = max(1, round(n * val_split)) if val_split > 0 and n and not out["val"] else 0
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed))).tolist()
    shuffled = [free[k] for k in order]
    out["test"] += shuffled[:n_test]
    out["val"] += shuffled[n_test : n_test + n_val]
    out["train"] += shuffled[n_test + n_val :]
    if not out["train"]:
        raise LabelError(
            table.csv_path,
            f"has {len(indices)} usable image(s), too few for --val-split {val_split:g} and --test-split {test_split:g} "
            "(each held-out split needs at least 1 image, and training the rest)",
        )
    return {s: sorted(v) for s, v in out.items()}


def squash_resize(images: Tensor, size: int) -> Tensor:
    """The model's resize: squash to ``size × size`` (bicubic, antialiased), clamped to [0, 1].

    Differentiable, so attribute-guided transfer can use it on the image being optimised.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1].
        size: Side in px (``model.json``'s ``preprocessing.size``).

    Returns:
        ``(B, 3, size, size)`` float in [0, 1].
    """
    resized = F.interpolate(images, size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return resized.clamp(0, 1)


def preprocess_image(rgb: Tensor, size: int) -> Tensor:
    """One decoded image as the network sees it in training and scoring (``model.json``'s
    ``preprocessing``): :func:`squash_resize`, then quantised to 8 bits.

    Args:
        rgb: ``(3, H, W)`` float in [0, 1] (:attr:`styleforge.images.LoadedImage.rgb`).
        size: Side in px.

    Returns:
        uint8 ``(3, size, size)``; the network's input is this ``/ 255``.
    """
    return squash_resize(rgb[None], size)[0].mul(255).round().to(torch.uint8)


class _DecodeSet(torch.utils.data.Dataset):
    """Item ``i`` → ``(i, uint8 (3, size, size) or None, problem or None)``; never raises for a bad
    image (an exception inside a worker process would lose its message)."""

    def __init__(self, items: Sequence[LabelledImage], size: int) -> None:
        self.items, self.size = list(items), int(size)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[int, Tensor | None, str | None]:
        try:
            rgb = load_image(self.items[i].path, param="image").rgb
        except InputFileError as exc:
            return i, None, exc.problem
        return i, preprocess_image(rgb, self.size), None


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


def _decode(items: Sequence[LabelledImage], size: int, workers: int, report: Callable[[int], None]
            ) -> list[tuple[int, Tensor | None, str | None]]:
    """Decodes ``items`` in order, in ``workers`` processes (0: in this one)."""
    dataset = _DecodeSet(items, size)
    if workers <= 0 or len(items) <= 1:
        out = []
        for i in range(len(dataset)):
            out.append(dataset[i])
            report(i + 1)
        return out
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, collate_fn=_as_list, num_workers=min(workers, len(items)),
                                         generator=torch.Generator())  # never draws from the global generator
    out = []
    for chunk in loader:  # in order, whatever the worker scheduling
        out.extend(chunk)
        report(len(out))
    return out


def load_images(
    items: Sequence[LabelledImage],
    size: int,
    *,
    skip_bad: bool = False,
    csv_path: Path | None = None,
    callbacks: Sequence[Callback] = (),
    workers: int = 0,
    pin_memory: bool = False,
    dist: Distributed | None = None,
) -> tuple[Tensor, list[int], list[Skipped]]:
    """Decodes and resizes every image to ``size × size`` (squashed, as the original's loader).

    The result does not depend on ``workers`` or on the number of processes: each image is decoded
    and resized on its own, and the results are put back in row order.

    Args:
        items: The rows.
        size: Side in px.
        skip_bad: Skip missing or unreadable images (and report them) instead of raising.
        csv_path: The CSV, named in errors.
        callbacks: Receive :class:`~styleforge.engine.events.TaskProgress` (task ``images``).
        workers: Decode in this many worker processes (``torch.utils.data.DataLoader``); 0: in
            this process.
        pin_memory: Return the images in page-locked memory (fast, asynchronous copies to CUDA).
        dist: A distributed run: each rank decodes a contiguous share of the rows and every rank
            gets all of them (and raises the same error, if any).

    Returns:
        ``(images, kept, skipped)``: uint8 ``(len(kept), 3, size, size)``; the indices of ``items``
        that loaded; the skipped rows.

    Raises:
        LabelError: A missing or unreadable image (without ``skip_bad``), or every image bad.
    """
    total = len(items)
    lo, hi = dist.shard_bounds(total) if dist is not None else (0, total)
    step = max(1, (hi - lo) // 8)

    def report(done: int) -> None:  # progress of this rank's share, scaled to all rows
        if done % step == 0 and done < hi - lo:
            emit(callbacks, TaskProgress("images", min(total, done * total // max(1, hi - lo)), total))

    decoded = _decode(items[lo:hi], size, workers, report)
    ok = [x for _, x, _ in decoded if x is not None]
    problems = [(lo + i, problem) for i, x, problem in decoded if x is None]
    local = torch.stack(ok) if ok else torch.empty((0, 3, size, size), dtype=torch.uint8)
    if dist is not None:  # every rank: all rows, in row order (shares are contiguous, in rank order)
        problems = [entry for part in dist.all_gather_object(problems) for entry in part]
        local = dist.all_gather_rows(local)
    emit(callbacks, TaskProgress("images", total, total))
    where_file = csv_path or Path("labels.csv")
    bad = dict(problems)
    skipped: list[Skipped] = []
    for i in sorted(bad):
        item = items[i]
        if not skip_bad:
            reason = bad[i] + ("" if item.image_text == str(item.path) else f" ({item.path})")
            raise LabelError(where_file, f"{item.image_text!r} {reason}; fix it or pass --skip-bad", item.row,
                             item.line, "image")
        skipped.append(Skipped(item.row, item.image_text, bad[i]))
    kept = [i for i in range(total) if i not in bad]
    if not kept:
        raise LabelError(where_file, f"none of its {total} images could be read (first: {skipped[0]})")
    return (local.pin_memory() if pin_memory else local), kept, skipped


def encode_labels(schema: Schema, items: Sequence[LabelledImage]) -> dict[str, Tensor]:
    """The labels as tensors, one per attribute, in the heads' units.

    Returns:
        Numeric: float32 ``(N,)`` mapped to [-1, 1] (:meth:`NumericAttribute.to_unit`), NaN where
        unlabelled. Categorical: int64 ``(N,)`` class indices, -1 where unlabelled.
    """
    out: dict[str, Tensor] = {}
    for attribute in schema:
        values = [item.labels[attribute.name] for item in items]
        if isinstance(attribute, NumericAttribute):
            out[attribute.name] = torch.tensor(
                [attribute.to_unit(float(v)) if v is not None else float("nan") for v in values], dtype=torch.float32
            )
        else:
            out[attribute.name] = torch.tensor([int(v) if v is not None else -1 for v in values], dtype=torch.int64)
    return out


def augment(images: Tensor, generator: torch.Generator, *, max_degrees: float = 10.0) -> Tensor:
    """Seed 003's augmentation: random pad + crop, a small rotation, a horizontal flip.

    Never colour jitter: colour is a label (primary colour, harmony, contrast).

    Args:
        images: ``(B, 3, S, S)`` float in [0, 1].
        generator: The only source of randomness (a resumed run draws the same numbers).
        max_degrees: Rotations are uniform in ``±max_degrees``.

    Returns:
        ``(B, 3, S, S)`` in [0, 1]: reflect-padded by ``S/16`` and cropped back at a random offset,
        rotated (reflection at the borders), flipped with probability 1/2.
    """
    import math

    b, _, h, w = images.shape
    pad = max(1, min(h, w) // 16)
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    offsets = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator).tolist()
    cropped = torch.stack([padded[i, :, y : y + h, x : x + w] for i, (y, x) in enumerate(offsets)])
    angles = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(max_degrees)
    flips = torch.where(torch.rand(b, generator=generator) < 0.5, -1.0, 1.0)
    cos, sin = angles.cos(), angles.sin()
    theta = torch.stack([torch.stack([cos * flips, -sin, torch.zeros(b)], 1),
                         torch.stack([sin * flips, cos, torch.zeros(b)], 1)], 1).to(images)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(cropped, grid, mode="bilinear", padding_mode="reflection", align_corners=False).clamp(0, 1)


_MASK64 = (1 << 64) - 1


def sample_seed(epoch_seed: int, index: int) -> int:
    """The seed of one image's augmentation in one epoch: SplitMix64 of ``(epoch_seed, index)``.

    Seeding each image on its own (rather than drawing a batch's numbers from one generator) makes
    the augmentation independent of batching, worker processes and ranks.

    Args:
        epoch_seed: Drawn once per epoch from the run's generator.
        index: The image's row in the data set.

    Returns:
        A seed in ``[0, 2**64)``.
    """
    x = (int(epoch_seed) * 0x9E3779B97F4A7C15 + int(index) + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def augment_sample(image: Tensor, seed: int, *, max_degrees: float = 10.0) -> Tensor:
    """:func:`augment` of one image with its own generator seeded by ``seed`` (:func:`sample_seed`).

    Args:
        image: ``(3, S, S)`` float in [0, 1].
        seed: The image's seed for this epoch.
        max_degrees: As :func:`augment`.

    Returns:
        ``(3, S, S)`` in [0, 1].
    """
    return augment(image[None], torch.Generator().manual_seed(int(seed)), max_degrees=max_degrees)[0]


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

    data = save({"features": features.detach().cpu().contiguous()}, metadata={"fingerprint": _fingerprint(key, paths)})
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
