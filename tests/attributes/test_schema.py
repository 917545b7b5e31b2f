"""Tests of styleforge.attributes.schema: units, class matching, validation and schema files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from styleforge.attributes.schema import (
    ACAN_SCHEMA,
    CategoricalAttribute,
    NumericAttribute,
    Schema,
    load_schema,
    normalize_label,
)
from styleforge.errors import InputFileError, InvalidParameter, StyleforgeError

PRI_COLORS = (
    "black", "blue", "blue-cyan", "blue-magenta", "cyan", "green", "green-cyan", "green-yellow",
    "magenta", "orange", "red", "red-magenta", "yellow",
)
HARMONIES = ("analogous", "complementary", "monochromatic", "split complementary", "tetradic", "triadic")


# ---------------------------------------------------------------------------------------------
# ACAN_SCHEMA


def test_acan_schema_names_order_and_kinds() -> None:
    assert ACAN_SCHEMA.names == (
        "variety_texture", "variety_shape", "variety_size", "variety_color", "contrast", "repetition",
        "pri_color", "harmony",
    )
    assert [a.name for a in ACAN_SCHEMA.numeric] == list(ACAN_SCHEMA.names[:6])
    assert [a.name for a in ACAN_SCHEMA.categorical] == ["pri_color", "harmony"]
    for attribute in ACAN_SCHEMA.numeric:
        assert (attribute.kind, attribute.min, attribute.max) == ("numeric", 1.0, 10.0)
    assert ACAN_SCHEMA["pri_color"].classes == PRI_COLORS
    assert ACAN_SCHEMA["harmony"].classes == HARMONIES
    assert ACAN_SCHEMA["harmony"].kind == "categorical"
    assert ACAN_SCHEMA["pri_color"].num_classes == 13
    assert len(ACAN_SCHEMA) == 8 and "contrast" in ACAN_SCHEMA and "nope" not in ACAN_SCHEMA


def test_unknown_attribute_name_lists_valid_names() -> None:
    with pytest.raises(InvalidParameter) as info:
        ACAN_SCHEMA["contrats"]
    message = str(info.value)
    assert "'contrats'" in message
    for name in ACAN_SCHEMA.names:
        assert name in message
    assert "did you mean 'contrast'" in message


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


@pytest.mark.parametrize("label", ["split complementary", "split-complementary", "Split_Complementary", " SPLIT  complementary "])
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
# Validation of attributes and schemas


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


def test_schema_validation() -> None:
    with pytest.raises(InvalidParameter, match="unique attribute names"):
        Schema((NumericAttribute("a"), CategoricalAttribute("a", ("x", "y"))))
    with pytest.raises(InvalidParameter, match="at least one attribute"):
        Schema(())
    with pytest.raises(InvalidParameter):
        Schema(("contrast",))  # type: ignore[arg-type]
    schema = Schema([NumericAttribute("a"), CategoricalAttribute("b", ("x", "y"))])  # type: ignore[arg-type]
    assert isinstance(schema.attributes, tuple) and schema.names == ("a", "b")


def test_to_dict_from_dict_round_trip() -> None:
    data = json.loads(json.dumps(ACAN_SCHEMA.to_dict()))
    assert data["attributes"][0] == {"name": "variety_texture", "kind": "numeric", "min": 1.0, "max": 10.0}
    assert data["attributes"][6]["classes"] == list(PRI_COLORS)
    assert Schema.from_dict(data) == ACAN_SCHEMA
    custom = Schema((NumericAttribute("warmth", -1.0, 1.0), CategoricalAttribute("era", ("old", "new"))))
    assert Schema.from_dict(custom.to_dict()) == custom


def test_from_dict_errors_name_the_field() -> None:
    with pytest.raises(InvalidParameter) as info:
        Schema.from_dict({"attributes": [{"name": "a", "kind": "numeric", "min": 3, "max": 2}]})
    assert "attributes[0] ('a')" in str(info.value) and "field 'max'" in str(info.value)
    with pytest.raises(InvalidParameter, match="field 'classes'"):
        Schema.from_dict({"attributes": [{"name": "a", "kind": "categorical"}]})
    with pytest.raises(InvalidParameter, match="^model.json"):
        Schema.from_dict({"attributes": []}, param="model.json")


# ---------------------------------------------------------------------------------------------
# Schema files


GOOD_TOML = """
[[attribute]]
name = "warmth"
kind = "numeric"
min = 0
max = 5

[[attribute]]
name = "contrast"
kind = "numeric"

[[attribute]]
name = "mood"
kind = "categorical"
classes = ["calm", "wild", "split complementary"]
"""


def test_load_schema_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "schema.toml"
    path.write_text(GOOD_TOML, encoding="utf-8")
    schema = load_schema(path)
    assert schema.names == ("warmth", "contrast", "mood")
    assert schema["warmth"] == NumericAttribute("warmth", 0.0, 5.0)
    assert schema["contrast"] == NumericAttribute("contrast", 1.0, 10.0)  # defaults
    assert schema["mood"].index("Split-Complementary") == 2
    assert schema["warmth"].to_unit(5.0) == pytest.approx(1.0)


def test_load_schema_from_json(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(ACAN_SCHEMA.to_dict()), encoding="utf-8")
    assert load_schema(path) == ACAN_SCHEMA
    path = tmp_path / "schema.cfg"  # other suffix: recognised by content
    path.write_text(json.dumps({"attributes": [{"name": "a", "kind": "categorical", "classes": ["x", "y"]}]}))
    assert load_schema(path).names == ("a",)


@pytest.mark.parametrize(
    ("name", "text", "error", "fragments"),
    [
        (
            "missing_classes.toml",
            '[[attribute]]\nname = "a"\nkind = "numeric"\n\n[[attribute]]\nname = "mood"\nkind = "categorical"\n',
            InputFileError,
            ["#2", "'mood'", "field 'classes'", "missing"],
        ),
        (
            "missing_name.json",
            json.dumps({"attributes": [{"kind": "numeric"}]}),
            InputFileError,
            ["attributes[0]", "field 'name'", "missing"],
        ),
        (
            "min_max.toml",
            '[[attribute]]\nname = "contrast"\nkind = "numeric"\nmin = 10\nmax = 1\n',
            InvalidParameter,
            ["#1", "'contrast'", "field 'max'", "greater than min"],
        ),
        (
            "duplicate.json",
            json.dumps({"attributes": [{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "numeric"}]}),
            InvalidParameter,
            ["attributes[1]", "field 'name'", "unique"],
        ),
        (
            "unknown_field.toml",
            '[[attribute]]\nname = "a"\nkind = "numeric"\nmaximum = 3\n',
            InputFileError,
            ["field 'maximum'", "did you mean 'max'"],
        ),
        (
            "bad_kind.toml",
            '[[attribute]]\nname = "a"\nkind = "number"\n',
            InvalidParameter,
            ["field 'kind'", "'numeric' or 'categorical'"],
        ),
        (
            "one_class.json",
            json.dumps({"attributes": [{"name": "a", "kind": "categorical", "classes": ["only"]}]}),
            InvalidParameter,
            ["field 'classes'", "at least 2"],
        ),
        ("syntax.toml", "[[attribute]\nname = ", InputFileError, ["not valid TOML"]),
        ("syntax.json", '{"attributes": [', InputFileError, ["not valid JSON"]),
        ("empty.toml", "", InputFileError, ["'attribute'"]),
    ],
)
def test_load_schema_bad_files(
    tmp_path: Path, name: str, text: str, error: type[StyleforgeError], fragments: list[str]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(error) as info:
        load_schema(path)
    message = str(info.value)
    assert message.startswith("--schema:")
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_load_schema_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="does not exist"):
        load_schema(tmp_path / "nope.toml")
    with pytest.raises(InputFileError, match="folder"):
        load_schema(tmp_path)
