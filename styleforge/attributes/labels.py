"""Labels CSVs: reading and validating both layouts, splitting the rows, the labels as tensors.

Two CSV layouts are read (the first row is a header; column names are matched case-insensitively):

- styleforge's own, as :func:`styleforge.attributes.synthetic.make_dataset` writes it:
  ``image,<attribute columns>[,split]``. ``image`` is a path relative to the data folder (or
  absolute); ``split`` is ``train``, ``val`` (``validation``) or ``test``, or empty.
- ACAN's (Holly Grimm 2018): ``in_train,new_filename,<the 8 attributes>``. The image is
  ``train/<new_filename>`` when ``in_train`` is true (``1``/``true``/``yes``), else
  ``test/<new_filename>``; those held-out rows are the validation split.

Numeric labels are on their attribute's scale (1..10 for ACAN); categorical labels are class names,
matched forgivingly (:func:`styleforge.attributes.kinds.normalize_label`: case, ``-``/``_``/space and
ACAN's reversed colour names). An empty cell means "not labelled": that head's loss and metrics skip
the image. Every problem is an error that names the file, the row and the column. Images are only
located here (:func:`styleforge.attributes.preprocess.load_images` decodes them).

:func:`encode_labels` turns the rows into one tensor per attribute in the heads' units, with NaN / -1
where a cell is empty; :func:`label_mask` says which values are labelled.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import InputFileError, InvalidParameter, did_you_mean
from .kinds import CategoricalAttribute, NumericAttribute
from .schema import Schema

__all__ = [
    "SPLITS",
    "LabelError",
    "LabelledImage",
    "LabelTable",
    "find_labels",
    "read_labels",
    "assign_splits",
    "encode_labels",
    "label_mask",
]

SPLITS: tuple[str, ...] = ("train", "val", "test")
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


class LabelError(InputFileError):
    """A problem in a labels CSV, naming the file, the row (and its line) and the column.

    Attributes:
        row: 1-based data row (the header is row 0), or ``None`` for the whole file.
        column: The column's name as written, or ``None``.
    """

    def __init__(
        self,
        path: Path,
        problem: str,
        row: int | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
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
        split: ``train``, ``val``, ``test`` from the CSV, or ``None`` (assigned by the seeded
            shuffle of :func:`assign_splits`).
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
        raise InputFileError(
            "--data", data_dir, "is not a folder; expected a folder with images and a labels CSV"
        )
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
        raise InputFileError(
            "--data", data_dir, "has no labels CSV (expected labels.csv, or give --labels FILE)"
        )
    raise InputFileError(
        "--data",
        data_dir,
        f"has several CSV files ({', '.join(p.name for p in found)}) and no labels.csv; "
        "choose one with --labels",
    )


def _parse_cell(
    attribute: NumericAttribute | CategoricalAttribute, text: str, where: Callable[..., LabelError]
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

    Images are only located here (their paths are resolved), not opened:
    :func:`~styleforge.attributes.preprocess.load_images` decodes them.

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
    raw, text = _read_text(path)
    reader = csv.reader(text.splitlines(keepends=True))
    names = _read_header(path, reader)
    layout, index = _layout(path, names, schema)
    image_col = index["image"] if layout == "styleforge" else index["new_filename"]
    split_col = index.get("split") if layout == "styleforge" else index.get("in_train")
    items: list[LabelledImage] = []
    row = 0
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank lines are not rows
            row += 1
            line = reader.line_num

            def where(
                problem: str, column: str | None = None, _row: int = row, _line: int = line
            ) -> LabelError:
                return LabelError(path, problem, _row, _line, column)

            if len(cells) != len(names):
                raise where(f"has {len(cells)} cells but the header has {len(names)}")
            image_text = cells[image_col].strip()
            if not image_text:
                raise where("is empty; expected an image file name", names[image_col])
            split = _row_split(cells, split_col, layout, names, where)
            labels_row = {a.name: _parse_cell(a, cells[index[a.name.lower()]], where) for a in schema}
            image = _image_path(data_dir, layout, image_text, split, split_col is not None)
            items.append(LabelledImage(image, row, line, labels_row, split, image_text))
    except csv.Error as exc:
        raise LabelError(path, f"is not valid CSV ({exc})", row, reader.line_num) from None
    if not items:
        raise LabelError(path, "has a header but no rows; expected one row per image")
    _check_unique(path, items, names[image_col])
    return LabelTable(path, layout, schema, items, hashlib.sha256(raw).hexdigest())


def _read_text(path: Path) -> tuple[bytes, str]:
    """The CSV's bytes (hashed, so a resumed run can tell a changed file) and its text, UTF-8 with or
    without a byte-order mark.

    Raises:
        LabelError: The file cannot be read or is not UTF-8.
    """
    try:
        raw = path.read_bytes()
        return raw, raw.decode("utf-8-sig")
    except OSError as exc:
        raise LabelError(path, f"cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise LabelError(path, "is not UTF-8 text (save it as CSV UTF-8)") from None


def _read_header(path: Path, reader: Iterator[list[str]]) -> list[str]:
    """The header row's column names, stripped.

    Raises:
        LabelError: An empty file, or a header that is not valid CSV.
    """
    try:
        header = next(reader)
    except StopIteration:
        raise LabelError(path, "is empty; expected a header row and one row per image") from None
    except csv.Error as exc:
        raise LabelError(path, f"is not valid CSV ({exc})", 0, 1) from None
    return [h.strip() for h in header]


def _layout(path: Path, names: list[str], schema: Schema) -> tuple[str, dict[str, int]]:
    """Which layout the header is (``styleforge`` or ``acan``), and each lower-cased column name's
    first position.

    Raises:
        LabelError: Neither layout's image column, or a missing attribute column (with a "did you
            mean" when a column's name is close).
    """
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(name.lower(), i)
    if "image" in index:
        layout = "styleforge"
    elif "new_filename" in index:
        layout = "acan"
    else:
        raise LabelError(
            path,
            "has neither an 'image' column (styleforge's layout: image,<attributes>[,split]) "
            "nor 'new_filename' "
            f"(ACAN's layout: in_train,new_filename,<attributes>); its columns: {', '.join(names)}",
            0,
            1,
        )
    missing = [a.name for a in schema if a.name.lower() not in index]
    if missing:
        hints = [did_you_mean(m, names) for m in missing]
        hint = next((h for h in hints if h), "")
        raise LabelError(
            path,
            f"is missing the attribute column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
            f" (its columns: {', '.join(names)})" + (f"; {hint}" if hint else ""),
            0,
            1,
        )
    return layout, index


def _row_split(
    cells: list[str],
    split_col: int | None,
    layout: str,
    names: list[str],
    where: Callable[..., LabelError],
) -> str | None:
    """A row's split: its ``split`` cell (styleforge's layout; empty: ``None``), or ``train`` /
    ``val`` from ACAN's ``in_train``; ``None`` without such a column.

    Raises:
        LabelError: A value that is neither (through ``where``, naming the row and the column).
    """
    if split_col is None:
        return None
    value = cells[split_col].strip().lower()
    if layout == "acan":
        if value in _TRUE:
            return "train"
        if value in _FALSE:
            return "val"
        raise where(f"{cells[split_col]!r} is not valid; expected 1/0 or true/false", names[split_col])
    if not value:
        return None
    if value not in _SPLIT_NAMES:
        raise where(
            f"{cells[split_col]!r} is not valid; expected train, val or test (or empty)", names[split_col]
        )
    return _SPLIT_NAMES[value]


def _check_unique(path: Path, items: Sequence[LabelledImage], column: str) -> None:
    """Refuses an image listed twice (the same file, however its path is written): its labels would
    count twice, or disagree, and it could land in two splits.

    Raises:
        LabelError: Naming the later row and the earlier one, and how each wrote the image.
    """
    seen: dict[str, LabelledImage] = {}
    for item in items:
        key = os.path.normcase(str(item.path.resolve()))
        first = seen.setdefault(key, item)
        if first is not item:
            written = "" if item.image_text == first.image_text else f" ({first.image_text!r})"
            raise LabelError(
                path,
                f"{item.image_text!r} is the image of row {first.row} (line {first.line}){written} "
                "again; list each image once",
                item.row,
                item.line,
                column,
            )


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
            f"has {len(indices)} usable image(s), too few for --val-split {val_split:g} and "
            f"--test-split {test_split:g} "
            "(each held-out split needs at least 1 image, and training the rest)",
        )
    return {s: sorted(v) for s, v in out.items()}


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
                [attribute.to_unit(float(v)) if v is not None else float("nan") for v in values],
                dtype=torch.float32,
            )
        else:
            out[attribute.name] = torch.tensor(
                [int(v) if v is not None else -1 for v in values], dtype=torch.int64
            )
    return out


def label_mask(labels: Tensor) -> Tensor:
    """Which values of an encoded label tensor (:func:`encode_labels`) are labelled.

    Args:
        labels: Numeric float ``(N,)`` with NaN where unlabelled, or categorical int64 ``(N,)`` with -1.

    Returns:
        bool ``(N,)``.
    """
    return ~torch.isnan(labels) if labels.is_floating_point() else labels >= 0
