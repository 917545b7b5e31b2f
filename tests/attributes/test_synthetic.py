"""Tests of styleforge.attributes.synthetic: layout, determinism, and labels that agree with pixels."""

from __future__ import annotations

import colorsys
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.attributes.schema import ACAN_SCHEMA
from styleforge.attributes.synthetic import (
    _MAX_COLORS,
    HARMONY_OFFSETS,
    HUES,
    _hue_groups,
    _luma_window,
    make_dataset,
    make_image,
)
from styleforge.errors import InvalidParameter

HEADER = [
    "image",
    "variety_texture",
    "variety_shape",
    "variety_size",
    "variety_color",
    "contrast",
    "repetition",
    "pri_color",
    "harmony",
]
NUMERIC = HEADER[1:7]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        assert reader.fieldnames == HEADER
        return list(reader)


def _ranks(values: list[float]) -> np.ndarray:
    """Ranks with ties averaged (as Spearman's rho needs)."""
    x = np.asarray(values, dtype=float)
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    for value in np.unique(x):
        ranks[x == value] = ranks[x == value].mean()
    return ranks


def _spearman(a: list[float], b: list[float]) -> float:
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _colors(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """The distinct RGB colours of an image (uint8, (n, 3)) and their pixel counts."""
    return np.unique(np.asarray(image).reshape(-1, 3), axis=0, return_counts=True)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(float) @ np.array([0.299, 0.587, 0.114]) / 255.0


def _hue_distance(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("synthetic") / "set", count=24, seed=3, size=32)


@pytest.fixture(scope="module")
def samples() -> list[tuple[Image.Image, dict[str, float | str]]]:
    rng = np.random.default_rng(2024)
    return [make_image(rng, 48) for _ in range(240)]


# ---------------------------------------------------------------------------------------------
# The data set on disk


def test_dataset_layout(dataset: Path) -> None:
    out_dir = dataset.parent
    assert dataset.name == "labels.csv"
    rows = _read_csv(dataset)
    assert len(rows) == 24
    assert [row["image"] for row in rows] == [f"images/{i:04d}.png" for i in range(24)]
    assert sorted(p.name for p in (out_dir / "images").iterdir()) == [f"{i:04d}.png" for i in range(24)]
    assert not list(out_dir.rglob("*.tmp"))
    for row in rows:
        with Image.open(out_dir / row["image"]) as image:
            assert image.mode == "RGB" and image.size == (32, 32)


def test_dataset_label_values_are_valid(dataset: Path) -> None:
    for row in _read_csv(dataset):
        for name in NUMERIC:
            value = float(row[name])
            assert 1.0 <= value <= 10.0, (name, value)
            assert row[name] == f"{value:.1f}"
        assert row["pri_color"] in ACAN_SCHEMA["pri_color"].classes
        assert row["harmony"] in ACAN_SCHEMA["harmony"].classes


def test_png_carries_its_labels(dataset: Path) -> None:
    row = _read_csv(dataset)[5]
    with Image.open(dataset.parent / row["image"]) as image:
        info = json.loads(image.text["styleforge"])
    assert (info["seed"], info["index"], info["size"]) == (3, 5, 32)
    assert info["labels"]["pri_color"] == row["pri_color"]
    assert f"{info['labels']['contrast']:.1f}" == row["contrast"]


def test_same_seed_same_bytes_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    again = make_dataset(tmp_path / "again", count=24, seed=3, size=32)
    assert again.read_bytes() == dataset.read_bytes()
    for i in range(24):
        name = f"images/{i:04d}.png"
        assert (again.parent / name).read_bytes() == (dataset.parent / name).read_bytes()

    other = make_dataset(tmp_path / "other", count=24, seed=4, size=32)
    assert other.read_bytes() != dataset.read_bytes()
    differing = sum(
        (other.parent / f"images/{i:04d}.png").read_bytes()
        != (dataset.parent / f"images/{i:04d}.png").read_bytes()
        for i in range(24)
    )
    assert differing == 24


def test_image_depends_on_seed_and_index_only(dataset: Path, tmp_path: Path) -> None:
    fewer = make_dataset(tmp_path / "fewer", count=5, seed=3, size=32)
    assert fewer.read_text().splitlines() == dataset.read_text().splitlines()[:6]
    assert (fewer.parent / "images/0004.png").read_bytes() == (
        dataset.parent / "images/0004.png"
    ).read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"count": 0}, "--count"),
        ({"count": 2.5}, "--count"),
        ({"count": 2, "size": 15}, "--size"),
        ({"count": 2, "size": 32.0}, "--size"),
        ({"count": 2, "seed": -1}, "--seed"),
    ],
)
def test_dataset_rejects_bad_arguments(tmp_path: Path, kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        make_dataset(tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    assert info.value.param == param
    assert not (tmp_path / "out" / "labels.csv").exists()


def test_dataset_out_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InvalidParameter):
        make_dataset(path, count=1)


def test_make_image_rejects_small_size() -> None:
    with pytest.raises(InvalidParameter, match="^--size"):
        make_image(np.random.default_rng(0), 8)


# ---------------------------------------------------------------------------------------------
# Labels agree with the pixels


def test_make_image_shape_and_keys(samples: list[tuple[Image.Image, dict[str, float | str]]]) -> None:
    image, labels = samples[0]
    assert image.mode == "RGB" and image.size == (48, 48)
    assert list(labels) == list(ACAN_SCHEMA.names)
    for _, labels in samples:
        for name in NUMERIC:
            assert isinstance(labels[name], float) and 1.0 <= labels[name] <= 10.0
            assert labels[name] == round(labels[name], 1)


def test_numeric_labels_cover_their_range(samples: list[tuple[Image.Image, dict[str, float | str]]]) -> None:
    for name in NUMERIC:
        values = np.array([labels[name] for _, labels in samples])
        assert values.min() <= 1.5 and values.max() >= 9.5, (name, values.min(), values.max())
        assert len(np.unique(values)) >= 5, name
    seen = {labels["pri_color"] for _, labels in samples} | {labels["harmony"] for _, labels in samples}
    assert seen == set(ACAN_SCHEMA["pri_color"].classes) | set(ACAN_SCHEMA["harmony"].classes)


def test_primary_colour_covers_the_most_saturated_pixels(
    samples: list[tuple[Image.Image, dict[str, float | str]]],
) -> None:
    """For a hue class, the 30-degree hue bin with the most saturated pixels is the class's own."""
    hits = total = 0
    for image, labels in samples:
        hue = HUES[str(labels["pri_color"])]
        if hue is None:
            continue
        colors, counts = _colors(image)
        votes = np.zeros(12)
        for rgb, count in zip(colors / 255.0, counts):
            h, s, v = colorsys.rgb_to_hsv(*rgb)
            if s > 0.3 and v > 0.2:
                votes[int(round(h * 12)) % 12] += count
        total += 1
        hits += int(np.argmax(votes)) == int(round(hue / 30.0)) % 12
    assert total > 150
    assert hits >= 0.9 * total, (hits, total)


def test_black_is_the_largest_colour_only_for_black(
    samples: list[tuple[Image.Image, dict[str, float | str]]],
) -> None:
    dark_when_black, dark_otherwise = [], []
    for image, labels in samples:
        colors, counts = _colors(image)
        is_dark = bool(_luma(colors[np.argmax(counts)]) < 0.08)
        (dark_when_black if labels["pri_color"] == "black" else dark_otherwise).append(is_dark)
    assert dark_when_black and all(dark_when_black)
    assert not any(dark_otherwise)


def test_monochromatic_pictures_have_one_hue(
    samples: list[tuple[Image.Image, dict[str, float | str]]],
) -> None:
    checked = 0
    for image, labels in samples:
        hue = HUES[str(labels["pri_color"])]
        if labels["harmony"] != "monochromatic" or hue is None:
            continue
        colors, counts = _colors(image)
        for rgb, count in zip(colors / 255.0, counts):
            h, s, v = colorsys.rgb_to_hsv(*rgb)
            if s > 0.3 and v > 0.2 and count >= 4:
                assert _hue_distance(360.0 * h, hue) <= 20.0, (labels, 360.0 * h)
        checked += 1
    assert checked >= 10


def test_complementary_pictures_use_both_hues(
    samples: list[tuple[Image.Image, dict[str, float | str]]],
) -> None:
    """Most complementary pictures show a saturated colour near the primary hue + 180 degrees."""
    found = checked = 0
    offset = HARMONY_OFFSETS["complementary"][1]
    for image, labels in samples:
        hue = HUES[str(labels["pri_color"])]
        if labels["harmony"] != "complementary" or hue is None:
            continue
        colors, counts = _colors(image)
        hues = [
            360.0 * colorsys.rgb_to_hsv(*rgb)[0]
            for rgb, n in zip(colors / 255.0, counts)
            if colorsys.rgb_to_hsv(*rgb)[1] > 0.2 and colorsys.rgb_to_hsv(*rgb)[2] > 0.15 and n >= 4
        ]
        checked += 1
        found += any(_hue_distance(h, hue + offset) <= 20.0 for h in hues)
    assert checked >= 10
    assert found >= 0.7 * checked, (found, checked)


def test_contrast_follows_the_luminance_range(
    samples: list[tuple[Image.Image, dict[str, float | str]]],
) -> None:
    labels = [float(lab["contrast"]) for _, lab in samples[:60]]
    ranges = []
    for image, _ in samples[:60]:
        luma = np.asarray(image.convert("L"), dtype=float) / 255.0
        ranges.append(float(luma.max() - luma.min()))
    assert _spearman(labels, ranges) > 0.8
    low = [r for r, c in zip(ranges, labels) if c <= 4.0]
    high = [r for r, c in zip(ranges, labels) if c >= 7.0]
    assert low and high and np.mean(high) > np.mean(low) + 0.3


def test_variety_color_follows_the_number_of_colours(
    samples: list[tuple[Image.Image, dict[str, float | str]]],
) -> None:
    labels, counted = [], []
    for image, lab in samples:
        _, counts = _colors(image)
        labels.append(float(lab["variety_color"]))
        counted.append(int((counts >= 0.003 * 48 * 48).sum()))
    assert _spearman(labels, counted) > 0.9
    assert min(counted) >= 2


# ---------------------------------------------------------------------------------------------
# The palette's parts


@pytest.mark.parametrize("n_hues", [1, 2, 3, 4])
@pytest.mark.parametrize("black", [False, True])
def test_hue_groups_use_every_hue_and_favour_the_primary_one(n_hues: int, black: bool) -> None:
    rng = np.random.default_rng(7)
    for k in range(n_hues + 1, _MAX_COLORS + 1):
        groups = _hue_groups(rng, black, n_hues, k)
        assert len(groups) == k and set(range(n_hues)) <= set(groups)
        if black:
            assert groups[0] == -1 and groups.count(-1) == 1
        else:
            counts = np.bincount(groups, minlength=n_hues)
            assert groups[0] == 0 and counts[0] == counts.max()


def test_luma_window_holds_the_primary_luma_and_fits_in_0_1() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        y_p, width, k = rng.uniform(0.0, 1.0), rng.uniform(0.03, 1.2), int(rng.integers(2, 9))
        low, high = _luma_window(rng, y_p, width, False, k)
        assert 0.0 <= low <= y_p + 1e-12 and y_p <= high + 1e-12 and high <= 1.0 + 1e-12
        if k == 2:  # two colours: the primary colour is one end of the window
            assert min(abs(low - y_p), abs(high - y_p)) < 1e-12
        if k > 2 and width <= 1.0:
            assert high - low == pytest.approx(width)
    low, high = _luma_window(rng, 0.03, 0.9, True, 5)  # black: the window starts at its luma
    assert (low, high) == (0.03, pytest.approx(0.93))
    low, high = _luma_window(rng, 0.5, 0.8, False, 2)  # fits on neither side: the wider one
    assert high - low == pytest.approx(0.5) and 0.5 in (low, high)
