"""The attribute schema: which attributes a network predicts, in which order.

A schema is an ordered tuple of attributes with unique names, each a
:class:`~styleforge.attributes.kinds.NumericAttribute` or a
:class:`~styleforge.attributes.kinds.CategoricalAttribute`. :data:`ACAN_SCHEMA` is the eight attributes
of Holly Grimm's Art Composition Attributes Network (ACAN, 2018); :func:`load_schema` reads a
user's own schema from a TOML or JSON file, and :meth:`Schema.to_dict` / :meth:`Schema.from_dict`
store one in ``model.json`` (:mod:`styleforge.attributes.schema_file` checks those documents).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidParameter, choice_error
from .kinds import Attribute, CategoricalAttribute, NumericAttribute
from .schema_file import parse_attributes, read_schema_file

__all__ = ["Schema", "ACAN_SCHEMA", "load_schema"]


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
                    "schema.attributes",
                    name,
                    "unique attribute names",
                    f"{name!r} appears {names.count(name)} times",
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
        return cls(parse_attributes(data, param))


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
    return Schema(read_schema_file(path))
