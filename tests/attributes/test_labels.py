"""Tests of styleforge.attributes.labels: both CSV layouts, label parsing and scaling, every bad-data
case (an error naming file, row and column), splits, and the labels as tensors."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from _attr_helpers import GOOD, NAMES
from _attr_helpers import label_folder as _own
from _attr_helpers import png as _png
from _attr_helpers import write_csv as _write_csv

from styleforge.attributes.kinds import CategoricalAttribute, NumericAttribute
from styleforge.attributes.labels import (
    LabelError,
    _row_split,
    assign_splits,
    encode_labels,
    find_labels,
    label_mask,
    read_labels,
)
from styleforge.attributes.preprocess import load_images
from styleforge.attributes.schema import ACAN_SCHEMA, Schema
from styleforge.errors import InputFileError, StyleforgeError


def _error(tmp_path: Path, rows: list[list[str]], header: list[str] | None = None) -> str:
    folder = _own(tmp_path, rows, header)
    with pytest.raises(LabelError) as info:
        read_labels(folder, ACAN_SCHEMA)
    message = str(info.value)
    assert "\n" not in message and "labels.csv" in message
    assert info.value.exit_code == 2
    return message


# --- both layouts ---------------------------------------------------------------------------------


def test_reads_make_dataset_output(synth24: Path) -> None:
    table = read_labels(synth24, ACAN_SCHEMA)
    assert table.layout == "styleforge" and len(table.items) == 24
    with open(synth24 / "labels.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    for item, row in zip(table.items, rows):
        assert item.path == synth24 / row["image"] and item.path.is_file()
        assert item.labels["contrast"] == float(row["contrast"])
        pri = ACAN_SCHEMA["pri_color"]
        assert pri.classes[item.labels["pri_color"]] == row["pri_color"]
        assert item.split is None


def test_styleforge_layout_spellings_empty_cells_and_split(tmp_path: Path) -> None:
    rows = [
        ["a.png", *GOOD, "train"],
        ["b.png", "", "3", "", "", "", "", "BLUE", "", "Validation"],
        ["c.png", "1", "1", "1", "1", "1", "1", "green yellow", "Split Complementary", ""],
    ]
    folder = _own(tmp_path, rows, ["Image", *[n.upper() for n in NAMES], "split"])
    table = read_labels(folder, ACAN_SCHEMA)
    a, b, c = table.items
    pri, harmony = ACAN_SCHEMA["pri_color"], ACAN_SCHEMA["harmony"]
    assert pri.classes[a.labels["pri_color"]] == "green-yellow"  # yellow-green is the same class
    assert a.labels["pri_color"] == c.labels["pri_color"]
    assert (
        harmony.classes[a.labels["harmony"]] == "split complementary" == harmony.classes[c.labels["harmony"]]
    )
    assert a.labels["variety_shape"] == 2.5 and a.labels["variety_size"] == 10.0
    assert (
        b.labels["variety_texture"] is None
        and b.labels["harmony"] is None
        and b.labels["variety_shape"] == 3.0
    )
    assert pri.classes[b.labels["pri_color"]] == "blue"
    assert [a.split, b.split, c.split] == ["train", "val", None]
    assert (a.row, a.line) == (1, 2) and (c.row, c.line) == (3, 4)


def test_acan_layout_reads_train_and_test_folders(tmp_path: Path) -> None:
    _png(tmp_path / "train" / "x1.jpg")
    _png(tmp_path / "train" / "x2.jpg")
    _png(tmp_path / "test" / "y1.jpg")
    header = ["in_train", "new_filename", *NAMES]
    rows = [
        ["True", "x1.jpg", *GOOD],
        ["1", "x2.jpg", *GOOD],
        ["False", "y1.jpg", *GOOD[:6], "red", "triadic"],
    ]
    _write_csv(tmp_path / "acan.csv", header, rows)
    table = read_labels(tmp_path, ACAN_SCHEMA)  # the folder's only CSV
    assert table.layout == "acan"
    assert [i.path for i in table.items] == [
        tmp_path / "train/x1.jpg",
        tmp_path / "train/x2.jpg",
        tmp_path / "test/y1.jpg",
    ]
    assert [i.split for i in table.items] == ["train", "train", "val"]
    images, kept, skipped = load_images(table.items, 32, csv_path=table.csv_path)
    assert (
        images.shape == (3, 3, 32, 32) and images.dtype == torch.uint8 and kept == [0, 1, 2] and not skipped
    )


def test_custom_schema_columns_only(tmp_path: Path) -> None:
    schema = Schema((NumericAttribute("mood", 0, 4), CategoricalAttribute("era", ("old", "new"))))
    _png(tmp_path / "a.png")
    _write_csv(
        tmp_path / "labels.csv", ["image", "era", "mood", "notes"], [["a.png", "NEW", "4", "anything"]]
    )
    item = read_labels(tmp_path, schema).items[0]
    assert item.labels == {"mood": 4.0, "era": 1}


def test_labels_option_and_csv_discovery(tmp_path: Path) -> None:
    folder = _own(tmp_path, [["a.png", *GOOD]])
    (folder / "labels.csv").rename(folder / "mine.csv")
    assert find_labels(folder) == folder / "mine.csv"
    _write_csv(folder / "other.csv", ["image", *NAMES], [])
    with pytest.raises(InputFileError, match="several CSV files .*--labels"):
        find_labels(folder)
    assert find_labels(folder, "mine.csv") == folder / "mine.csv"
    with pytest.raises(InputFileError, match="--labels: .*nope.csv' does not exist"):
        find_labels(folder, "nope.csv")


# --- bad data: file, row and column named ----------------------------------------------------------


def test_no_folder_no_csv(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="--data: .*does not exist"):
        read_labels(tmp_path / "missing", ACAN_SCHEMA)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="has no labels CSV"):
        read_labels(tmp_path / "empty", ACAN_SCHEMA)


def test_missing_attribute_columns_are_named(tmp_path: Path) -> None:
    header = ["image", *NAMES[:4], "contrst", "repetition", "pri_color"]
    message = _error(tmp_path, [["a.png", *GOOD[:7]]], header)
    assert "missing the attribute columns contrast, harmony" in message
    assert "did you mean 'contrst'" in message


def test_neither_layout(tmp_path: Path) -> None:
    message = _error(tmp_path, [["a.png", *GOOD]], ["file", *NAMES])
    assert "'image'" in message and "'new_filename'" in message and "file" in message


@pytest.mark.parametrize(
    "column, value, expected",
    [
        (
            "contrast",
            "11",
            "row 2 (line 3), column 'contrast': '11' is not valid; expected a number from 1 to 10",
        ),
        (
            "variety_shape",
            "0.5",
            "column 'variety_shape': '0.5' is not valid; expected a number from 1 to 10",
        ),
        ("repetition", "lots", "column 'repetition': 'lots' is not valid; expected a number from 1 to 10"),
        ("variety_size", "nan", "expected a number from 1 to 10"),
        (
            "pri_color",
            "purple",
            "column 'pri_color': 'purple' is not valid; expected one of: black, blue, blue-cyan",
        ),
        ("harmony", "triadc", "did you mean 'triadic'?"),
    ],
)
def test_bad_values_name_row_column_and_valid_values(
    tmp_path: Path, column: str, value: str, expected: str
) -> None:
    bad = list(GOOD)
    bad[NAMES.index(column)] = value
    message = _error(tmp_path, [["a.png", *GOOD], ["b.png", *bad]])
    assert expected in message


def test_unknown_class_lists_every_valid_class(tmp_path: Path) -> None:
    message = _error(tmp_path, [["a.png", *GOOD[:6], "purple", "triadic"]])
    assert all(name in message for name in ACAN_SCHEMA["pri_color"].classes)


def test_structural_row_errors(tmp_path: Path) -> None:
    assert "row 1 (line 2): has 8 cells but the header has 9" in _error(
        tmp_path / "a", [["a.png", *GOOD[:7]]]
    )
    assert "column 'image': is empty" in _error(tmp_path / "b", [[" ", *GOOD]])
    header = ["image", *NAMES, "split"]
    assert "column 'split': 'holdout' is not valid; expected train, val or test" in _error(
        tmp_path / "c", [["a.png", *GOOD, "holdout"]], header
    )
    acan = ["in_train", "new_filename", *NAMES]
    assert "column 'in_train': 'maybe' is not valid; expected 1/0 or true/false" in _error(
        tmp_path / "d", [["maybe", "a.png", *GOOD]], acan
    )


def test_empty_header_only_and_non_utf8_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "labels.csv").write_text("")
    with pytest.raises(LabelError, match="is empty"):
        read_labels(tmp_path / "a", ACAN_SCHEMA)
    assert "no rows" in _error(tmp_path / "b", [])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "labels.csv").write_bytes(b"image,contrast\n\xff\xfe,1\n")
    with pytest.raises(LabelError, match="not UTF-8"):
        read_labels(tmp_path / "c", ACAN_SCHEMA)


def test_bom_and_blank_lines_are_tolerated(tmp_path: Path) -> None:
    folder = _own(tmp_path, [["a.png", *GOOD]])
    text = (folder / "labels.csv").read_text()
    (folder / "labels.csv").write_text("\ufeff" + text + "\n\n", encoding="utf-8")
    assert len(read_labels(folder, ACAN_SCHEMA).items) == 1


# --- labels as tensors ------------------------------------------------------------------------------


def test_label_scaling_both_ways_and_masks(tmp_path: Path) -> None:
    folder = _own(tmp_path, [["a.png", "1", "10", "5.5", "", "3", "7", "red", ""]])
    table = read_labels(folder, ACAN_SCHEMA)
    encoded = encode_labels(ACAN_SCHEMA, table.items)
    assert encoded["variety_texture"].tolist() == [-1.0]
    assert encoded["variety_shape"].tolist() == [1.0]
    assert encoded["variety_size"].tolist() == [0.0]
    assert math.isnan(encoded["variety_color"].item())
    contrast = ACAN_SCHEMA["contrast"]
    assert encoded["contrast"].item() == pytest.approx(2 * (3 - 1) / 9 - 1)  # the original's 2(v-1)/9-1
    assert contrast.from_unit(encoded["contrast"]).item() == pytest.approx(3.0)
    assert contrast.from_unit(encoded["repetition"]).item() == pytest.approx(7.0)
    assert encoded["pri_color"].tolist() == [ACAN_SCHEMA["pri_color"].classes.index("red")]
    assert encoded["harmony"].tolist() == [-1] and encoded["harmony"].dtype == torch.int64
    masks = {
        name: label_mask(encoded[name]).tolist()
        for name in ("variety_color", "contrast", "pri_color", "harmony")
    }
    assert masks == {"variety_color": [False], "contrast": [True], "pri_color": [True], "harmony": [False]}


# --- splits -------------------------------------------------------------------------------------------


def test_seeded_split_sizes_and_determinism(synth24: Path) -> None:
    table = read_labels(synth24, ACAN_SCHEMA)
    a = assign_splits(table, 0.25, 0.125, seed=3)
    assert [len(a[s]) for s in ("train", "val", "test")] == [15, 6, 3]
    assert sorted(a["train"] + a["val"] + a["test"]) == list(range(24))
    assert assign_splits(table, 0.25, 0.125, seed=3) == a
    assert assign_splits(table, 0.25, 0.125, seed=4) != a
    keep = [i for i in range(24) if i % 2]
    b = assign_splits(table, 0.1, 0.0, seed=0, keep=keep)
    assert set(b["train"] + b["val"]) == set(keep) and len(b["val"]) == 1 and not b["test"]


def test_csv_split_column_wins(tmp_path: Path) -> None:
    rows = [[f"{c}.png", *GOOD, s] for c, s in zip("abcd", ["val", "train", "", "test"])]
    folder = _own(tmp_path, rows, ["image", *NAMES, "split"], images=4)
    table = read_labels(folder, ACAN_SCHEMA)
    splits = assign_splits(table, 0.1, 0.0, seed=0)
    assert splits == {"train": [1, 2], "val": [0], "test": [3]}


def test_too_few_images_for_the_split(tmp_path: Path) -> None:
    folder = _own(tmp_path, [["a.png", *GOOD], ["b.png", *GOOD]], images=2)
    table = read_labels(folder, ACAN_SCHEMA)
    with pytest.raises(
        StyleforgeError, match=r"2 usable image\(s\), too few for --val-split 0.1 and --test-split 0.1"
    ):
        assign_splits(table, 0.1, 0.1, seed=0)
    assert assign_splits(table, 0.1, 0.0, seed=0)["train"]


def test_row_split_of_each_layout(tmp_path: Path) -> None:
    def where(problem: str, column: str | None = None) -> LabelError:
        return LabelError(tmp_path / "labels.csv", problem, 4, 5, column)

    names = ["image", "split"]
    assert _row_split(["a.png", " Validation "], 1, "styleforge", names, where) == "val"
    assert _row_split(["a.png", "TRAINING"], 1, "styleforge", names, where) == "train"
    assert _row_split(["a.png", " "], 1, "styleforge", names, where) is None
    assert _row_split(["a.png"], None, "styleforge", names, where) is None
    with pytest.raises(
        LabelError, match=r"row 4 \(line 5\), column 'split': 'dev' is not valid; expected train"
    ):
        _row_split(["a.png", "dev"], 1, "styleforge", names, where)
    acan = ["in_train", "new_filename"]
    assert [_row_split([v, "a.png"], 0, "acan", acan, where) for v in ("Yes", "1", "f", "0")] == [
        "train",
        "train",
        "val",
        "val",
    ]
    with pytest.raises(LabelError, match="column 'in_train': '' is not valid; expected 1/0 or true/false"):
        _row_split(["", "a.png"], 0, "acan", acan, where)
