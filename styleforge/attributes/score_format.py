"""Formatting scores (:class:`~styleforge.attributes.score.ImageScore`) as text, and reading them back.

Three output formats, with stable keys (documented in docs/attributes.md):

- ``table``: one block per image, for a terminal.
- ``json``: ``{"format": "styleforge.scores/1", "model", "attributes", "images": [entry, ...]}``
  with each entry ``{"path", "error", "numeric": {name: rating}, "categorical": {name: {"class",
  "probability", "top3": [{"class", "probability"}, ...]}}}``.
- ``csv``: ``path``, one column per numeric attribute, for each categorical one ``<name>``,
  ``<name>.probability``, ``<name>.top2``, ``<name>.top2.probability``, ``<name>.top3``,
  ``<name>.top3.probability``, then ``error``.

:func:`read_scores` parses the JSON and CSV forms back (floats are written with full precision,
so they round-trip exactly). :func:`format_score_line` is the one-line form of a progress log.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Sequence
from typing import Any

from ..errors import choice_error
from .kinds import NumericAttribute
from .schema import Schema
from .score import TOP_K, CategoricalScore, ClassProbability, ImageScore

__all__ = [
    "SCORE_FORMATS",
    "SCORES_FORMAT",
    "format_scores",
    "format_table",
    "format_json",
    "format_csv",
    "format_score_line",
    "read_scores",
    "csv_columns",
]

SCORE_FORMATS: tuple[str, ...] = ("table", "json", "csv")
#: The ``format`` value of the JSON document.
SCORES_FORMAT = "styleforge.scores/1"


def _percent(p: float) -> str:
    return f"{100 * p:.0f}%" if p >= 0.005 else "<1%"


def _rating(value: float) -> str:
    return f"{value:.1f}"


def format_table(scores: Sequence[ImageScore], schema: Schema) -> str:
    """One block per image: each numeric attribute's rating and scale, each categorical one's top
    classes with their probabilities; a failed image shows its error.

    Example::

        out/guided.png
          variety_texture   4.2   (1..10)
          contrast          8.9   (1..10)
          pri_color         blue 61%   cyan 22%   green 7%
    """
    width = max([len(a.name) for a in schema] + [5])
    blocks = []
    for score in scores:
        lines = [score.path]
        if not score.ok:
            lines.append(f"  {'error':<{width}}  {score.error}")
        else:
            for a in schema:
                if isinstance(a, NumericAttribute):
                    lines.append(
                        f"  {a.name:<{width}}  {_rating(score.numeric[a.name]):>5}   ({a.min:g}..{a.max:g})"
                    )
                else:
                    c = score.categorical[a.name]
                    lines.append(
                        f"  {a.name:<{width}}  "
                        + "   ".join(f"{t.label} {_percent(t.probability)}" for t in c.top)
                    )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def format_score_line(score: ImageScore) -> str:
    """One line for a progress log: ``contrast 8.9 · … · pri_color blue (61%) · …``."""
    if not score.ok:
        return f"error: {score.error}"
    parts = [f"{name} {_rating(v)}" for name, v in score.numeric.items()]
    parts += [f"{name} {c.label} ({_percent(c.probability)})" for name, c in score.categorical.items()]
    return " · ".join(parts)


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def format_json(
    scores: Sequence[ImageScore], schema: Schema, model: str | os.PathLike[str] | None = None
) -> str:
    """The JSON document (see the module docstring); floats at full precision."""
    document = {
        "format": SCORES_FORMAT,
        "model": None if model is None else str(model),
        "attributes": schema.to_dict()["attributes"],
        "images": [s.to_dict() for s in scores],
    }
    return json.dumps(_finite(document), indent=1, allow_nan=False) + "\n"


def csv_columns(schema: Schema) -> list[str]:
    """The CSV header for ``schema``: ``path``, the attributes' columns, ``error``."""
    columns = ["path"]
    for a in schema:
        if isinstance(a, NumericAttribute):
            columns.append(a.name)
        else:
            columns += [a.name, f"{a.name}.probability"]
            for k in range(2, min(TOP_K, a.num_classes) + 1):
                columns += [f"{a.name}.top{k}", f"{a.name}.top{k}.probability"]
    return columns + ["error"]


def format_csv(scores: Sequence[ImageScore], schema: Schema) -> str:
    """The CSV table (see the module docstring); floats written with ``repr`` (exact round-trip)."""
    columns = csv_columns(schema)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for score in scores:
        row: dict[str, str] = {"path": score.path, "error": score.error or ""}
        for name, value in score.numeric.items():
            row[name] = repr(value)
        for name, c in score.categorical.items():
            row[name], row[f"{name}.probability"] = c.label, repr(c.probability)
            for k, t in enumerate(c.top[1:], start=2):
                row[f"{name}.top{k}"], row[f"{name}.top{k}.probability"] = t.label, repr(t.probability)
        writer.writerow(row)
    return text.getvalue()


def format_scores(
    scores: Sequence[ImageScore], fmt: str, schema: Schema, *, model: str | os.PathLike[str] | None = None
) -> str:
    """``scores`` as ``table``, ``json`` or ``csv`` text.

    Raises:
        InvalidParameter: An unknown format.
    """
    if fmt == "table":
        return format_table(scores, schema)
    if fmt == "json":
        return format_json(scores, schema, model)
    if fmt == "csv":
        return format_csv(scores, schema)
    raise choice_error("--format", fmt, SCORE_FORMATS)


def read_scores(text: str, fmt: str) -> list[ImageScore]:
    """Parses :func:`format_json` or :func:`format_csv` output back into :class:`ImageScore` objects.

    In CSV, a column ``<name>.probability`` marks ``<name>`` as categorical; every other attribute
    column is numeric.

    Raises:
        InvalidParameter: ``fmt`` is not ``json`` or ``csv``.
    """
    if fmt == "json":
        return [ImageScore.from_dict(entry) for entry in json.loads(text)["images"]]
    if fmt != "csv":
        raise choice_error("format", fmt, ("json", "csv"))
    reader = csv.DictReader(io.StringIO(text))
    columns = list(reader.fieldnames or [])
    attrs = [c for c in columns if c not in ("path", "error") and "." not in c]
    cats = [c for c in attrs if f"{c}.probability" in columns]
    out = []
    for row in reader:
        if row.get("error"):
            out.append(ImageScore(row["path"], error=row["error"]))
            continue
        numeric = {c: float(row[c]) for c in attrs if c not in cats}
        categorical = {}
        for c in cats:
            top = [ClassProbability(row[c], float(row[f"{c}.probability"]))]
            for k in range(2, TOP_K + 1):
                if row.get(f"{c}.top{k}"):
                    top.append(ClassProbability(row[f"{c}.top{k}"], float(row[f"{c}.top{k}.probability"])))
            categorical[c] = CategoricalScore(top[0].label, top[0].probability, tuple(top))
        out.append(ImageScore(row["path"], numeric, categorical))
    return out
