"""Tests of styleforge.attributes.schema_file through load_schema: TOML and JSON schema files, and
errors that name the file, the attribute and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from styleforge.attributes.kinds import NumericAttribute
from styleforge.attributes.schema import ACAN_SCHEMA, load_schema
from styleforge.attributes.schema_file import read_schema_file
from styleforge.errors import InputFileError, InvalidParameter, StyleforgeError

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
    assert read_schema_file(path) == ACAN_SCHEMA.attributes  # the attributes, in order
    path = tmp_path / "schema.cfg"  # other suffix: recognised by content
    path.write_text(json.dumps({"attributes": [{"name": "a", "kind": "categorical", "classes": ["x", "y"]}]}))
    assert load_schema(path).names == ("a",)


@pytest.mark.parametrize(
    ("name", "text", "error", "fragments"),
    [
        (
            "missing_classes.toml",
            '[[attribute]]\nname = "a"\nkind = "numeric"\n\n'
            '[[attribute]]\nname = "mood"\nkind = "categorical"\n',
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
