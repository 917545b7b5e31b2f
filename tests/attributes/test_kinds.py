"""Tests of styleforge.attributes.kinds: units, class matching and the validation of numeric and
categorical attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from styleforge.attributes.kinds import CategoricalAttribute, NumericAttribute, normalize_label
from styleforge.attributes.schema import ACAN_SCHEMA
from styleforge.errors import InvalidParameter

PRI_COLORS = (
    "black",
    "blue",
    "blue-cyan",
    "blue-magenta",
    "cyan",
    "green",
    "green-cyan",
    "green-yellow",
    "magenta",
    "orange",
    "red",
    "red-magenta",
    "yellow",
)
HARMONIES = ("analogous", "complementary", "monochromatic", "split complementary", "tetradic", "triadic")


# ---------------------------------------------------------------------------------------------
# Numeric attributes


def test_to_unit_endpoints() -> None:
    contrast = ACAN_SCHEMA["contrast"]
    assert contrast.to_unit(1.0) == pytest.approx(-1.0)
    assert contrast.to_unit(10.0) == pytest.approx(1.0)
    assert contrast.to_unit(5.5) == pytest.approx(0.0)
    # ACAN's formula 2(v-1)/9 - 1
    for v in (1.0, 2.0, 3.7, 9.0):
        assert contrast.to_unit(v) == pytest.approx(2 * (v - 1) / 9 - 1)
    assert contrast.from_unit(-1.0) == pytest.approx(1.0)
    assert contrast.from_unit(1.0) == pytest.approx(10.0)
    assert contrast.from_unit(0.0) == pytest.approx(5.5)


def test_unit_round_trip_on_floats_arrays_and_tensors() -> None:
    attribute = NumericAttribute("score", min=-5.0, max=15.0)
    values = np.linspace(-5.0, 15.0, 11)
    units = attribute.to_unit(values)
    assert isinstance(units, np.ndarray)
    assert units.min() == pytest.approx(-1.0) and units.max() == pytest.approx(1.0)
    np.testing.assert_allclose(attribute.from_unit(units), values)

    tensor = torch.tensor([[1.0, 2.5], [7.25, 10.0]])
    contrast = ACAN_SCHEMA["contrast"]
    back = contrast.from_unit(contrast.to_unit(tensor))
    assert isinstance(back, torch.Tensor) and back.shape == (2, 2)
    torch.testing.assert_close(back, tensor)
    assert contrast.from_unit(contrast.to_unit(3.3)) == pytest.approx(3.3)


def test_numeric_parse() -> None:
    contrast = ACAN_SCHEMA["contrast"]
    assert contrast.parse(" 3.5 ") == 3.5
    assert contrast.parse(10) == 10.0
    for bad in ("11", "0.5", "high", float("nan"), True, None):
        with pytest.raises(InvalidParameter) as info:
            contrast.parse(bad)
        assert "from 1 to 10" in str(info.value)
    with pytest.raises(InvalidParameter, match="^--attr"):
        contrast.parse("12", param="--attr")


# ---------------------------------------------------------------------------------------------
# Categorical attributes


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("green-yellow", "green-yellow"),
        ("Yellow-Green", "green-yellow"),
        (" yellow_green ", "green-yellow"),
        ("GREEN YELLOW", "green-yellow"),
        ("cyan-blue", "blue-cyan"),
        ("magenta blue", "blue-magenta"),
        ("Cyan_Green", "green-cyan"),
        ("magenta-red", "red-magenta"),
        ("Red", "red"),
        ("  black", "black"),
    ],
)
def test_pri_color_spelling_variants(label: str, expected: str) -> None:
    pri_color = ACAN_SCHEMA["pri_color"]
    assert pri_color.index(label) == PRI_COLORS.index(expected)


@pytest.mark.parametrize(
    "label", ["split complementary", "split-complementary", "Split_Complementary", " SPLIT  complementary "]
)
def test_harmony_spelling_variants(label: str) -> None:
    assert ACAN_SCHEMA["harmony"].index(label) == HARMONIES.index("split complementary")


def test_every_class_finds_itself() -> None:
    for attribute in ACAN_SCHEMA.categorical:
        assert [attribute.index(label) for label in attribute.classes] == list(range(attribute.num_classes))


def test_unknown_class_lists_valid_classes() -> None:
    pri_color = ACAN_SCHEMA["pri_color"]
    with pytest.raises(InvalidParameter) as info:
        pri_color.index("purple")
    message = str(info.value)
    assert message.startswith("pri_color: 'purple'")
    for label in PRI_COLORS:
        assert label in message
    with pytest.raises(InvalidParameter, match="did you mean 'blue-cyan'"):
        pri_color.index("blu-cyan")
    with pytest.raises(InvalidParameter, match="did you mean 'split complementary'"):
        ACAN_SCHEMA["harmony"].index("split-complimentary")
    with pytest.raises(InvalidParameter):
        pri_color.index(3)  # type: ignore[arg-type]


def test_normalize_label() -> None:
    assert normalize_label(" Yellow--Green ") == "green yellow"
    assert normalize_label("split_complementary") == "split complementary"
    assert normalize_label("blue-cyan") == normalize_label("Cyan Blue")


# ---------------------------------------------------------------------------------------------
# Validation of attributes


def test_numeric_validation_names_the_field() -> None:
    with pytest.raises(InvalidParameter) as info:
        NumericAttribute("contrast", min=5.0, max=5.0)
    assert str(info.value).startswith("contrast.max:")
    with pytest.raises(InvalidParameter, match="^contrast.min:"):
        NumericAttribute("contrast", min=float("nan"), max=5.0)
    with pytest.raises(InvalidParameter, match="^attribute name:"):
        NumericAttribute("has space")
    assert NumericAttribute("x", 0, 1).max == 1.0 and isinstance(NumericAttribute("x", 0, 1).min, float)


def test_categorical_validation_names_the_field() -> None:
    with pytest.raises(InvalidParameter, match="^mood.classes:.*at least 2"):
        CategoricalAttribute("mood", ("calm",))
    with pytest.raises(InvalidParameter, match="^mood.classes:.*same class"):
        CategoricalAttribute("mood", ("calm", "Calm "))
    with pytest.raises(InvalidParameter, match="^hue.classes:"):
        CategoricalAttribute("hue", ("yellow-green", "green_yellow"))
    with pytest.raises(InvalidParameter, match="^mood.classes:"):
        CategoricalAttribute("mood", ("calm", ""))
    assert CategoricalAttribute("mood", ["calm", "wild"]).classes == ("calm", "wild")  # type: ignore[arg-type]
