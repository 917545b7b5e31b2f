"""Tests of styleforge.attributes.schema: ACAN's schema, the validation of a schema and its round trip
through ``model.json``'s form."""

from __future__ import annotations

import json

import pytest

from styleforge.attributes.kinds import CategoricalAttribute, NumericAttribute
from styleforge.attributes.schema import ACAN_SCHEMA, Schema
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
# ACAN_SCHEMA


def test_acan_schema_names_order_and_kinds() -> None:
    assert ACAN_SCHEMA.names == (
        "variety_texture",
        "variety_shape",
        "variety_size",
        "variety_color",
        "contrast",
        "repetition",
        "pri_color",
        "harmony",
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
# Validation of schemas


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
