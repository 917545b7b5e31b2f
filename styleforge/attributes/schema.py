"""The attribute schema: which attributes a network predicts, their kinds and their valid values.

A schema is an ordered tuple of attributes. A :class:`NumericAttribute` has a value range
(``[min, max]``, 1..10 in ACAN) that the network sees mapped linearly onto ``[-1, 1]`` (the range of
its ``tanh`` head); a :class:`CategoricalAttribute` has a tuple of class names that the network sees
as class indices (its ``softmax`` head). :data:`ACAN_SCHEMA` is the eight attributes of Holly Grimm's
Art Composition Attributes Network (DESIGN.md section 3); :func:`load_schema` reads a user's own
schema from a TOML or JSON file, and :meth:`Schema.to_dict` / :meth:`Schema.from_dict` store one in
``model.json``.

Class labels are matched forgivingly (:func:`normalize_label`): case, surrounding spaces and the
separators ``-``, ``_`` and space do not matter, and the two-part colour names that ACAN's label sheets
spell both ways (``yellow-green`` / ``green-yellow``) are the same class.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union

from ..errors import InputFileError, InvalidParameter, StyleforgeError, choice_error, did_you_mean
from ..files import TOMLDecodeError, loads_toml

__all__ = [
    "NumericAttribute",
    "CategoricalAttribute",
    "Attribute",
    "Schema",
    "ACAN_SCHEMA",
    "CLASS_ALIASES",
    "normalize_label",
    "load_schema",
]

_T = TypeVar("_T")

#: Reversed spellings of two-part colour names, after :func:`normalize_label` (separators -> space),
#: mapped to the spelling ACAN's class list uses. Her sheets write both orders.
CLASS_ALIASES: dict[str, str] = {
    "yellow green": "green yellow",
    "cyan blue": "blue cyan",
    "magenta blue": "blue magenta",
    "cyan green": "green cyan",
    "magenta red": "red magenta",
}

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_NAME_VALID = "a name of letters, digits, '_' or '-' that starts with a letter or '_' (at most 64 characters)"
_SEPARATORS_RE = re.compile(r"[\s_\-]+")


def normalize_label(label: str) -> str:
    """The comparison key of a class label.

    Lower-cases, strips surrounding spaces, treats runs of ``-``, ``_`` and whitespace as one space,
    then applies :data:`CLASS_ALIASES` (``Yellow-Green`` -> ``green yellow``).

    Args:
        label: A class name as written in a label file, a schema or on the command line.

    Returns:
        The key two spellings of the same class share.
    """
    key = _SEPARATORS_RE.sub(" ", str(label).strip().lower()).strip()
    return CLASS_ALIASES.get(key, key)


def _name_issue(name: object) -> tuple[object, str] | None:
    """``(value, valid)`` when ``name`` is not a valid attribute name, else ``None``."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or len(name) > 64:
        return name, _NAME_VALID
    return None


def _number_issue(value: object) -> bool:
    """Whether ``value`` is not a finite real number (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return True
    return not math.isfinite(value)


def _numeric_issue(lo: object, hi: object) -> tuple[str, object, str] | None:
    """``(field, value, valid)`` for the first problem with a numeric range, else ``None``."""
    if _number_issue(lo):
        return "min", lo, "a finite number"
    if _number_issue(hi):
        return "max", hi, "a finite number"
    if not float(lo) < float(hi):
        return "max", hi, f"a number greater than min ({float(lo):g})"
    return None


def _classes_issue(classes: object) -> tuple[object, str, str] | None:
    """``(value, valid, hint)`` for the first problem with a class list, else ``None``."""
    if isinstance(classes, str) or not isinstance(classes, (list, tuple)):
        return classes, "a list of class names", ""
    for label in classes:
        if not isinstance(label, str) or not label.strip():
            return label, "a non-empty class name (a string)", ""
    seen: dict[str, str] = {}
    for label in classes:
        key = normalize_label(label)
        if key in seen:
            hint = f"{seen[key]!r} and {label!r} are the same class (case, '-', '_' and spaces are ignored)"
            return label, "class names that differ from each other", hint
        seen[key] = label
    if len(classes) < 2:
        return list(classes), "at least 2 distinct classes", ""
    return None


@dataclass(frozen=True)
class NumericAttribute:
    """A numeric attribute rated on ``[min, max]`` (ACAN: 1..10), predicted by a ``tanh`` head.

    Attributes:
        name: The attribute's name (a CSV column, ``attr.<name>`` loss term, ``--attr name=value``).
        min: The lowest rating.
        max: The highest rating; greater than ``min``.
    """

    name: str
    min: float = 1.0
    max: float = 10.0

    kind: ClassVar[str] = "numeric"

    def __post_init__(self) -> None:
        issue = _name_issue(self.name)
        if issue is not None:
            raise InvalidParameter("attribute name", issue[0], issue[1])
        problem = _numeric_issue(self.min, self.max)
        if problem is not None:
            field, value, valid = problem
            raise InvalidParameter(f"{self.name}.{field}", value, valid)
        object.__setattr__(self, "min", float(self.min))
        object.__setattr__(self, "max", float(self.max))

    def to_unit(self, value: _T) -> _T:
        """Maps ratings from ``[min, max]`` linearly onto ``[-1, 1]`` (ACAN: ``2(v-1)/9 - 1``).

        Args:
            value: A float, a NumPy array or a torch tensor of any shape. Not clipped.

        Returns:
            The same type and shape; ``min`` -> -1, ``max`` -> 1, the midpoint -> 0.
        """
        return 2.0 * (value - self.min) / (self.max - self.min) - 1.0  # type: ignore[operator,return-value]

    def from_unit(self, unit: _T) -> _T:
        """The inverse of :meth:`to_unit`: ``[-1, 1]`` -> ``[min, max]``.

        Args:
            unit: A float, a NumPy array or a torch tensor (e.g. a ``tanh`` output). Not clipped.

        Returns:
            The same type and shape, in rating units.
        """
        return (unit + 1.0) * (0.5 * (self.max - self.min)) + self.min  # type: ignore[operator,return-value]

    def parse(self, value: object, param: str | None = None) -> float:
        """Checks one rating (a number, or its text from a CSV cell / the command line).

        Args:
            value: The rating.
            param: The name to report in an error; the attribute's name by default.

        Returns:
            The rating as a float.

        Raises:
            InvalidParameter: If ``value`` is not a finite number within ``[min, max]``.
        """
        valid = f"a number from {self.min:g} to {self.max:g}"
        try:
            number = float(value.strip() if isinstance(value, str) else value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InvalidParameter(param or self.name, value, valid) from None
        if isinstance(value, bool) or not math.isfinite(number) or not self.min <= number <= self.max:
            raise InvalidParameter(param or self.name, value, valid)
        return number

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form, as :func:`load_schema` reads it."""
        return {"name": self.name, "kind": self.kind, "min": self.min, "max": self.max}


@dataclass(frozen=True)
class CategoricalAttribute:
    """A categorical attribute with named classes, predicted by a ``softmax`` head.

    Attributes:
        name: The attribute's name.
        classes: The class names, in the order of the network's outputs (at least 2 distinct).
    """

    name: str
    classes: tuple[str, ...]

    kind: ClassVar[str] = "categorical"

    def __post_init__(self) -> None:
        issue = _name_issue(self.name)
        if issue is not None:
            raise InvalidParameter("attribute name", issue[0], issue[1])
        problem = _classes_issue(self.classes)
        if problem is not None:
            value, valid, hint = problem
            raise InvalidParameter(f"{self.name}.classes", value, valid, hint)
        object.__setattr__(self, "classes", tuple(self.classes))

    @property
    def num_classes(self) -> int:
        """How many classes there are (the width of the head)."""
        return len(self.classes)

    @cached_property
    def _keys(self) -> dict[str, int]:
        return {normalize_label(label): i for i, label in enumerate(self.classes)}

    def index(self, label: str) -> int:
        """The index of a class label, matched forgivingly (see :func:`normalize_label`).

        Args:
            label: A class name: ``"Yellow-Green"`` finds ``green-yellow``, ``"split-complementary"``
                finds ``split complementary``.

        Returns:
            The class index, ``0 <= index < num_classes``.

        Raises:
            InvalidParameter: If no class matches; the message lists the classes and the closest one.
        """
        hint = ""
        if isinstance(label, str):
            key = normalize_label(label)
            if key in self._keys:
                return self._keys[key]
            match = difflib.get_close_matches(key, list(self._keys), n=1, cutoff=0.6)
            hint = f"did you mean {self.classes[self._keys[match[0]]]!r}?" if match else ""
        raise InvalidParameter(self.name, label, "one of: " + ", ".join(self.classes), hint)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form, as :func:`load_schema` reads it."""
        return {"name": self.name, "kind": self.kind, "classes": list(self.classes)}


#: Either kind of attribute.
Attribute = Union[NumericAttribute, CategoricalAttribute]

_KINDS: dict[str, type] = {"numeric": NumericAttribute, "categorical": CategoricalAttribute}


@dataclass(frozen=True)
class Schema:
    """An ordered set of attributes with unique names.

    Attributes:
        attributes: The attributes, in the order of the network's heads and of label-file columns.
    """

    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        attributes = self.attributes
        if isinstance(attributes, (str, bytes, Mapping)) or not isinstance(attributes, Iterable):
            raise InvalidParameter("schema.attributes", attributes, "a sequence of attributes")
        attributes = tuple(attributes)
        if not attributes:
            raise InvalidParameter("schema.attributes", attributes, "at least one attribute")
        for attribute in attributes:
            if not isinstance(attribute, (NumericAttribute, CategoricalAttribute)):
                raise InvalidParameter(
                    "schema.attributes", attribute, "NumericAttribute or CategoricalAttribute objects"
                )
        names = [attribute.name for attribute in attributes]
        for name in names:
            if names.count(name) > 1:
                raise InvalidParameter(
                    "schema.attributes", name, "unique attribute names", f"{name!r} appears {names.count(name)} times"
                )
        object.__setattr__(self, "attributes", attributes)

    @property
    def names(self) -> tuple[str, ...]:
        """The attribute names, in order."""
        return tuple(attribute.name for attribute in self.attributes)

    @property
    def numeric(self) -> tuple[NumericAttribute, ...]:
        """The numeric attributes, in order."""
        return tuple(a for a in self.attributes if isinstance(a, NumericAttribute))

    @property
    def categorical(self) -> tuple[CategoricalAttribute, ...]:
        """The categorical attributes, in order."""
        return tuple(a for a in self.attributes if isinstance(a, CategoricalAttribute))

    def __getitem__(self, name: str) -> Attribute:
        """The attribute called ``name``.

        Raises:
            InvalidParameter: If there is none; the message lists the valid names.
        """
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise choice_error("attribute", name, self.names)

    def __contains__(self, name: object) -> bool:
        return any(attribute.name == name for attribute in self.attributes)

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form: ``{"attributes": [{"name", "kind", "min", "max" | "classes"}, ...]}``."""
        return {"attributes": [attribute.to_dict() for attribute in self.attributes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], param: str = "schema") -> Schema:
        """Rebuilds a schema from :meth:`to_dict`'s form (e.g. read back from ``model.json``).

        Args:
            data: ``{"attributes": [...]}``; a TOML-style ``{"attribute": [...]}`` is accepted too.
            param: The name to report in errors.

        Raises:
            InvalidParameter: Naming the attribute (index and name) and the field that is wrong.
        """
        return _parse(data, _Where(param, None, toml=False))


#: The eight attributes of ACAN (Holly Grimm 2018), in her order.
ACAN_SCHEMA = Schema(
    (
        NumericAttribute("variety_texture"),
        NumericAttribute("variety_shape"),
        NumericAttribute("variety_size"),
        NumericAttribute("variety_color"),
        NumericAttribute("contrast"),
        NumericAttribute("repetition"),
        CategoricalAttribute(
            "pri_color",
            (
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
            ),
        ),
        CategoricalAttribute(
            "harmony",
            ("analogous", "complementary", "monochromatic", "split complementary", "tetradic", "triadic"),
        ),
    )
)


# --------------------------------------------------------------------------------------------------
# Reading a schema from data (a file or model.json)


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
        self, value: object, valid: str, index: int | None = None, name: object = None, field: str | None = None,
        hint: str = "",
    ) -> InvalidParameter:
        """A value that is well-formed but not allowed (min >= max, a duplicate name)."""
        where = self.location(index, name, field)
        if self.path is not None:
            where = f"in {str(self.path)!r}, {where}" if where else f"in {str(self.path)!r}"
        return InvalidParameter(self.param, value, valid, f"{where}; {hint}" if hint else where)

    def malformed(
        self, problem: str, valid: str, value: object = None, index: int | None = None, name: object = None,
        field: str | None = None,
    ) -> StyleforgeError:
        """A document of the wrong shape (a missing or unknown field, a wrong type).

        ``problem`` completes a sentence about the location (``"is missing"``) and is used for a file;
        ``valid`` says what would be valid and is used for in-memory data.
        """
        where = self.location(index, name, field)
        if self.path is not None:
            return InputFileError(self.param, self.path, f"is not a valid schema: {where + ' ' if where else ''}{problem}")
        return InvalidParameter(self.param, value, valid, where)


_TOP_VALID = "a table with one list of attributes: 'attribute' ([[attribute]] tables in TOML) or 'attributes' (JSON)"


def _parse(data: object, where: _Where) -> Schema:
    if not isinstance(data, Mapping):
        raise where.malformed(f"the top level is not a table; expected {_TOP_VALID}", _TOP_VALID, data)
    for key in data:
        if key not in ("attribute", "attributes"):
            hint = did_you_mean(str(key), ["attribute", "attributes"])
            raise where.malformed(
                f"has an unknown top-level key {key!r}; expected {_TOP_VALID}" + (f" ({hint})" if hint else ""),
                _TOP_VALID, key,
            )
    keys = [key for key in ("attribute", "attributes") if key in data]
    if len(keys) != 1:
        raise where.malformed(f"has {'both' if keys else 'neither'} 'attribute' and 'attributes'; expected {_TOP_VALID}",
                              _TOP_VALID, sorted(data))
    entries = data[keys[0]]
    if not isinstance(entries, list) or not entries:
        raise where.malformed(
            f"has {keys[0]!r} that is not a non-empty list of attribute tables", "a non-empty list of attribute tables",
            entries, field=keys[0],
        )

    attributes: list[Attribute] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        attributes.append(_parse_attribute(entry, index, where))
        name = attributes[-1].name
        if name in seen:
            raise where.bad_value(
                name, "unique attribute names", index, name, "name",
                f"already used by {where.location(seen[name], name)}",
            )
        seen[name] = index
    return Schema(tuple(attributes))


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
            "is missing (expected 'numeric' or 'categorical')", "a 'kind' field: 'numeric' or 'categorical'",
            dict(entry), index, name, "kind",
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
                f"is not a field of a {kind} attribute (its fields: {', '.join(fields)})" + (f"; {hint}" if hint else ""),
                f"one of the fields {', '.join(fields)}" + (f" ({hint})" if hint else ""), key, index, name, str(key),
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
            "is missing (expected a list of class names)", "a 'classes' field (a list of class names)",
            dict(entry), index, name, "classes",
        )
    problem = _classes_issue(entry["classes"])
    if problem is not None:
        value, valid, hint = problem
        raise where.bad_value(value, valid, index, name, "classes", hint)
    return CategoricalAttribute(name, tuple(entry["classes"]))


def load_schema(path: str | Path) -> Schema:
    """Reads a schema from a TOML or JSON file.

    TOML::

        [[attribute]]
        name = "contrast"
        kind = "numeric"      # min and max default to 1 and 10
        min = 1
        max = 10

        [[attribute]]
        name = "harmony"
        kind = "categorical"
        classes = ["analogous", "complementary"]

    JSON: ``{"attributes": [{"name": "contrast", "kind": "numeric", "min": 1, "max": 10}, ...]}``
    (the form :meth:`Schema.to_dict` writes). The format is chosen by the suffix (``.toml`` /
    ``.json``), or by the content for any other suffix.

    Args:
        path: The file.

    Returns:
        The schema.

    Raises:
        InputFileError: (``--schema``) The file is missing, unreadable, not TOML/JSON, or of the wrong
            shape (a missing or unknown field, a wrong type); the message names the file, the attribute
            (index and name) and the field.
        InvalidParameter: (``--schema``) A value is not allowed (``min >= max``, duplicate names,
            fewer than 2 classes); the message names the file, the attribute and the field.
    """
    param = "--schema"
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
    return _parse(data, _Where(param, path, toml=not is_json))
