"""Tests of styleforge.attributes.score_format on scores made by hand: the JSON and CSV forms read back
to the same scores (a failed image included), the table and the one-line form."""

from __future__ import annotations

import json
import math

import pytest

from styleforge.attributes.kinds import CategoricalAttribute, NumericAttribute
from styleforge.attributes.schema import Schema
from styleforge.attributes.score import CategoricalScore, ClassProbability, ImageScore
from styleforge.attributes.score_format import csv_columns, format_score_line, format_scores, read_scores
from styleforge.errors import InvalidParameter

SCHEMA = Schema((NumericAttribute("contrast"), CategoricalAttribute("hue", ("red", "green", "blue", "cyan"))))
TOP = (ClassProbability("blue", 0.6125), ClassProbability("red", 0.25), ClassProbability("cyan", 0.004))
SCORES = [
    ImageScore("a.png", {"contrast": 8.912345678901234}, {"hue": CategoricalScore("blue", 0.6125, TOP)}),
    ImageScore("gone.png", error="does not exist"),
]


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_json_and_csv_read_back_exactly(fmt: str) -> None:
    text = format_scores(SCORES, fmt, SCHEMA, model="runs/x")
    assert read_scores(text, fmt) == SCORES
    assert format_scores(read_scores(text, fmt), fmt, SCHEMA, model="runs/x") == text


def test_json_has_no_nan_and_csv_its_columns() -> None:
    odd = [ImageScore("n.png", {"contrast": math.nan}, {"hue": CategoricalScore("blue", 0.6125, TOP)})]
    document = json.loads(format_scores(odd, "json", SCHEMA))
    assert (
        document["images"][0]["numeric"]["contrast"] is None and document["format"] == "styleforge.scores/1"
    )
    assert csv_columns(SCHEMA) == [
        "path",
        "contrast",
        "hue",
        "hue.probability",
        "hue.top2",
        "hue.top2.probability",
        "hue.top3",
        "hue.top3.probability",
        "error",
    ]


def test_table_and_score_line() -> None:
    table = format_scores(SCORES, "table", SCHEMA)
    assert table.splitlines() == [
        "a.png",
        "  contrast    8.9   (1..10)",
        "  hue       blue 61%   red 25%   cyan <1%",
        "",
        "gone.png",
        "  error     does not exist",
    ]
    assert format_score_line(SCORES[0]) == "contrast 8.9 · hue blue (61%)"
    assert format_score_line(SCORES[1]) == "error: does not exist"
    with pytest.raises(InvalidParameter, match="--format: 'xml'"):
        format_scores(SCORES, "xml", SCHEMA)
