"""Reading a schema document: a TOML or JSON file, or the ``schema`` table of ``model.json``.

:func:`parse_attributes` checks a document's shape and values and returns its attributes, with errors
that say where the problem is (the file, the attribute by index and name, the field);
:func:`read_schema_file` reads and decodes a file first (TOML or JSON, by suffix or content).
:func:`styleforge.attributes.schema.load_schema` and :meth:`Schema.from_dict
<styleforge.attributes.schema.Schema.from_dict>` build a schema from what these return.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from ..errors import InputFileError, InvalidParameter, StyleforgeError, did_you_mean
from ..files import TOMLDecodeError, loads_toml
from .kinds import (
    Attribute,
    CategoricalAttribute,
    NumericAttribute,
    _classes_issue,
    _name_issue,
    _numeric_issue,
)

__all__ = ["parse_attributes", "read_schema_file"]

_KINDS: dict[str, type] = {"numeric": NumericAttribute, "categorical": CategoricalAttribute}
_FIELDS = {"numeric": ("name", "kind", "min", "max"), "categorical": ("name", "kind", "classes")}


class _Where:
    """Builds errors that say where in a schema document something is wrong."""

    def __init__(self, param: str, path: Path | None, toml: bool) -> None:
        self.param, self.path, self.toml = param, path, toml

    def location(self, index: int | None, name: object = None, field: str | None = None) -> str:
        parts = []
        if index is not None:
            place = f"[[attribute]] #{index + 1}" if self.toml else f"attributes[{index}]"
            if isinstance(name, str):
                place += f" ({name!r})"
            parts.append(place)
        if field is not None:
            parts.append(f"field {field!r}")
        return ", ".join(parts)

    def bad_value(
        self,
        value: object,
        valid: str,
        index: int | None = None,
        name: object = None,
        field: str | None = None,
        hint: str = "",
    ) -> InvalidParameter:
        """A value that is well-formed but not allowed (min >= max, a duplicate name)."""
        where = self.location(index, name, field)
        if self.path is not None:
            where = f"in {str(self.path)!r}, {where}" if where else f"in {str(self.path)!r}"
        return InvalidParameter(self.param, value, valid, f"{where}; {hint}" if hint else where)

    def malformed(
        self,
        problem: str,
        valid: str,
        value: object = None,
        index: int | None = None,
        name: object = None,
        field: str | None = None,
    ) -> StyleforgeError:
        """A document of the wrong shape (a missing or unknown field, a wrong type).

        ``problem`` completes a sentence about the location (``"is missing"``) and is used for a file;
        ``valid`` says what would be valid and is used for in-memory data.
        """
        where = self.location(index, name, field)
        if self.path is not None:
            return InputFileError(
                self.param, self.path, f"is not a valid schema: {where + ' ' if where else ''}{problem}"
            )
        return InvalidParameter(self.param, value, valid, where)


_TOP_VALID = (
    "a table with one list of attributes: 'attribute' ([[attribute]] tables in TOML) or 'attributes' (JSON)"
)


def parse_attributes(
    data: object, param: str, *, path: Path | None = None, toml: bool = False
) -> tuple[Attribute, ...]:
    """The attributes of a schema document, checked.

    Args:
        data: ``{"attributes": [...]}`` (JSON, :meth:`Schema.to_dict`'s form) or ``{"attribute":
            [...]}`` (TOML's ``[[attribute]]`` tables).
        param: The parameter named in errors (``--schema``, ``MODEL_DIR model.json schema``).
        path: The file the document came from, named in errors; ``None`` for in-memory data.
        toml: Name the attributes as TOML tables (``[[attribute]] #2``) rather than list items
            (``attributes[1]``) in errors.

    Returns:
        The attributes, in order, with unique names.

    Raises:
        InputFileError: (with ``path``) The document is of the wrong shape (a missing or unknown
            field, a wrong type); the message names the file, the attribute (index and name) and
            the field.
        InvalidParameter: A value is not allowed (``min >= max``, duplicate names, fewer than 2
            classes), or (without ``path``) the document is of the wrong shape.
    """
    return _parse(data, _Where(param, path, toml))


def _parse(data: object, where: _Where) -> tuple[Attribute, ...]:
    if not isinstance(data, Mapping):
        raise where.malformed(f"the top level is not a table; expected {_TOP_VALID}", _TOP_VALID, data)
    for key in data:
        if key not in ("attribute", "attributes"):
            hint = did_you_mean(str(key), ["attribute", "attributes"])
            raise where.malformed(
                f"has an unknown top-level key {key!r}; expected {_TOP_VALID}"
                + (f" ({hint})" if hint else ""),
                _TOP_VALID,
                key,
            )
    keys = [key for key in ("attribute", "attributes") if key in data]
    if len(keys) != 1:
        raise where.malformed(
            f"has {'both' if keys else 'neither'} 'attribute' and 'attributes'; expected {_TOP_VALID}",
            _TOP_VALID,
            sorted(data),
        )
    entries = data[keys[0]]
    if not isinstance(entries, list) or not entries:
        raise where.malformed(
            f"has {keys[0]!r} that is not a non-empty list of attribute tables",
            "a non-empty list of attribute tables",
            entries,
            field=keys[0],
        )

    attributes: list[Attribute] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        attributes.append(_parse_attribute(entry, index, where))
        name = attributes[-1].name
        if name in seen:
            raise where.bad_value(
                name,
                "unique attribute names",
                index,
                name,
                "name",
                f"already used by {where.location(seen[name], name)}",
            )
        seen[name] = index
    return tuple(attributes)


def _parse_attribute(entry: object, index: int, where: _Where) -> Attribute:
    if not isinstance(entry, Mapping):
        raise where.malformed("is not a table", "a table with 'name' and 'kind'", entry, index)
    if "name" not in entry:
        raise where.malformed("is missing", "a 'name' field", dict(entry), index, field="name")
    name = entry["name"]
    issue = _name_issue(name)
    if issue is not None:
        raise where.bad_value(issue[0], issue[1], index, None, "name")
    if "kind" not in entry:
        raise where.malformed(
            "is missing (expected 'numeric' or 'categorical')",
            "a 'kind' field: 'numeric' or 'categorical'",
            dict(entry),
            index,
            name,
            "kind",
        )
    kind = entry["kind"]
    if kind not in _KINDS:
        raise where.bad_value(
            kind, "'numeric' or 'categorical'", index, name, "kind", did_you_mean(str(kind), list(_KINDS))
        )
    fields = _FIELDS[kind]
    for key in entry:
        if key not in fields:
            hint = did_you_mean(str(key), fields)
            raise where.malformed(
                f"is not a field of a {kind} attribute (its fields: {', '.join(fields)})"
                + (f"; {hint}" if hint else ""),
                f"one of the fields {', '.join(fields)}" + (f" ({hint})" if hint else ""),
                key,
                index,
                name,
                str(key),
            )
    if kind == "numeric":
        lo, hi = entry.get("min", 1.0), entry.get("max", 10.0)
        problem = _numeric_issue(lo, hi)
        if problem is not None:
            field, value, valid = problem
            raise where.bad_value(value, valid, index, name, field)
        return NumericAttribute(name, float(lo), float(hi))
    if "classes" not in entry:
        raise where.malformed(
            "is missing (expected a list of class names)",
            "a 'classes' field (a list of class names)",
            dict(entry),
            index,
            name,
            "classes",
        )
    problem = _classes_issue(entry["classes"])
    if problem is not None:
        value, valid, hint = problem
        raise where.bad_value(value, valid, index, name, "classes", hint)
    return CategoricalAttribute(name, tuple(entry["classes"]))


def read_schema_file(path: str | Path, param: str = "--schema") -> tuple[Attribute, ...]:
    """The attributes of a TOML or JSON schema file (:func:`styleforge.attributes.schema.load_schema`
    describes the format); JSON when the suffix is ``.json``, or another suffix than ``.toml`` and the
    text starts with ``{``.

    Raises:
        InputFileError: The file is missing, a folder, unreadable, not TOML/JSON, or of the wrong
            shape (see :func:`parse_attributes`).
        InvalidParameter: A value is not allowed (see :func:`parse_attributes`).
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(param, path, "does not exist")
    if path.is_dir():
        raise InputFileError(param, path, "is a folder, not a schema file (.toml or .json)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(param, path, f"cannot be read as UTF-8 text ({exc})") from None
    suffix = path.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".toml" and text.lstrip().startswith("{"))
    try:
        data = json.loads(text) if is_json else loads_toml(text)
    except (json.JSONDecodeError, TOMLDecodeError) as exc:
        raise InputFileError(param, path, f"is not valid {'JSON' if is_json else 'TOML'} ({exc})") from None
    return parse_attributes(data, param, path=path, toml=not is_json)
