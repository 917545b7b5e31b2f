"""The two kinds of attribute a network predicts: numeric ratings and categorical classes.

A :class:`NumericAttribute` has a value range (``[min, max]``, 1..10 in ACAN) that the network sees
mapped linearly onto ``[-1, 1]`` (the range of its ``tanh`` head); a :class:`CategoricalAttribute`
has a tuple of class names that the network sees as class indices (its ``softmax`` head). Each checks
its own values when it is built.

Class labels are matched forgivingly (:func:`normalize_label`): case, surrounding spaces and the
separators ``-``, ``_`` and space do not matter, and the two-part colour names that ACAN's label sheets
spell both ways (``yellow-green`` / ``green-yellow``) are the same class.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, TypeVar

from ..errors import InvalidParameter

__all__ = [
    "NumericAttribute",
    "CategoricalAttribute",
    "Attribute",
    "CLASS_ALIASES",
    "normalize_label",
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
Attribute = NumericAttribute | CategoricalAttribute
