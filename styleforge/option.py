"""Options declared once, as dataclass fields: default, type, range or choices, help and docs line.

A configuration dataclass declares each field with :func:`option`; the record it keeps in the field's
metadata (:class:`Option`) is all any other part needs to know about the option:

- the configuration's checks (:meth:`Declared.check`: types, ranges, choices and the syntax of each
  item, with one-line errors naming the flag, the value and what is valid);
- the command line (``styleforge.cli.flags`` builds one click option per declaration);
- the documentation (:func:`markdown_table`, which ``docs/make_option_tables.py`` writes into the docs,
  and a test holds the committed docs equal to).

Like the rest of the bottom layer this module imports neither torch nor click.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import InvalidParameter, choice_error

__all__ = [
    "KINDS",
    "Declared",
    "Option",
    "declared",
    "markdown_table",
    "option",
    "option_of",
    "shown_default",
]

#: What an option's value is: ``float``, ``int``, ``text`` (any string), ``choice`` (one of
#: :attr:`Option.choices`), ``flag`` (a boolean), ``items`` (a repeatable option: a tuple of strings),
#: ``list`` (a comma-separated list on the command line: a tuple of strings) or ``pairs`` (a repeatable
#: ``KEY=NUMBER`` option: a dict of key → number, each number in the declared range).
KINDS = ("float", "int", "text", "choice", "flag", "items", "list", "pairs")

_METADATA_KEY = "styleforge.option"

C = TypeVar("C", bound="Declared")


@dataclass(frozen=True)
class Option:
    """One option's declaration.

    Attributes:
        flag: The long flag, as the command line and every error name it (``--content-weight``).
        help: One or two sentences for ``--help`` (and the docs, without :attr:`doc`).
        kind: One of :data:`KINDS`.
        metavar: What ``--help`` shows for the value (``NAME[:STEPS][@LR]``); for ``choice``, the
            choices joined by ``|`` unless given.
        choices: A ``choice`` option's values.
        minimum: The smallest valid number (``float``/``int``, each number of ``pairs``), or ``None``.
        maximum: The largest valid number, or ``None``.
        above: The value must be greater than :attr:`minimum`, not equal.
        below: The value must be less than :attr:`maximum`, not equal.
        finite: A ``float``, or each number of ``pairs``, must be finite (``inf`` is refused).
        words: Keywords a number option takes too (``--tile auto|off|PX``).
        noun: What a valid value is called in errors (``tile side in px``, ``layer name``, ``stages``;
            for ``pairs``, what an item is: ``KEY=WEIGHT``).
        note: Said in parentheses after what is valid (``inf disables the ratio check``).
        none: What ``None`` (or an empty ``pairs`` option) means, shown as the default (``per
            optimiser``).
        none_word: The word that stands for ``None`` on the command line (``--scales auto``).
        nonempty: An ``items`` or ``list`` option needs at least one item.
        parse: Checks the syntax of each item of an ``items`` option: ``parse(item, param=flag)``.
        negatable: A ``flag`` that has a ``--no-`` form.
        doc: The docs table's line, where it says more than :attr:`help` (markdown).
        origin: Where the default comes from, for a docs table that says so (markdown).
    """

    flag: str
    help: str
    kind: str = "text"
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    above: bool = False
    below: bool = False
    finite: bool = True
    words: tuple[str, ...] = ()
    noun: str = ""
    note: str = ""
    none: str = ""
    none_word: str = ""
    nonempty: bool = False
    parse: Callable[..., Any] | None = None
    negatable: bool = False
    doc: str = ""
    origin: str = ""

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind
        assert self.flag.startswith("--"), self.flag
        assert (self.kind == "choice") == bool(self.choices), self.flag

    @property
    def shown_metavar(self) -> str | None:
        """The metavar ``--help`` and the docs show (``None``: click's own, from the type)."""
        if self.metavar is None and self.kind == "choice":
            return "|".join(self.choices)
        return self.metavar

    def valid(self) -> str:
        """What a valid value is, in words (the end of an :class:`InvalidParameter` message)."""
        if self.kind == "choice":
            return "one of: " + ", ".join(self.choices)
        if self.kind == "items":
            what = f"{self.metavar} {self.noun or 'strings'}"
            text = f"one or more {what}" if self.nonempty else f"a list of {what}"
        elif self.kind == "pairs":
            text = self.noun or f"{self.metavar} pairs"
        elif self.kind == "list":
            text = f"at least one {self.noun or 'item'}"
        elif self.kind in ("float", "int"):
            text = self._range()
        else:
            text = {"flag": "true or false", "text": "a string"}[self.kind]
        keywords = [*self.words, *([self.none_word] if self.none_word else [])]
        if keywords:  # auto, off or a tile side in px >= 64
            text = f"{', '.join(keywords)} or {text}"
        return f"{text} ({self.note})" if self.note else text

    def _range(self) -> str:
        low, high = self.minimum, self.maximum
        noun = (self.noun if self.kind != "pairs" else "") or (
            "whole number"
            if self.kind == "int"
            else "finite number"
            if self.finite and high is None
            else "number"
        )
        if low is not None and high is not None:
            if self.above and self.below:
                return f"a {noun} between {low:g} and {high:g}"
            if self.below:
                return f"a {noun} from {low:g} up to (not including) {high:g}"
            if self.above:
                return f"a {noun} > {low:g} and <= {high:g}"
            return f"a {noun} from {low:g} to {high:g}"
        if low is not None:
            return f"a {noun} {'>' if self.above else '>='} {low:g}"
        if high is not None:
            return f"a {noun} {'<' if self.below else '<='} {high:g}"
        return f"a {noun}"

    def check(self, value: Any) -> None:
        """Checks one value of this option.

        Raises:
            InvalidParameter: Naming :attr:`flag`, ``value`` and :meth:`valid` (a choice's error says
                "did you mean" where a choice is close); an item's own syntax error from :attr:`parse`;
                for a number of ``pairs``, naming the flag and its key (``--loss-weight contrast``).
        """
        if value is None and (self.none or self.none_word):
            return
        if self.kind == "choice":
            if value not in self.choices:
                raise choice_error(self.flag, value, self.choices)
        elif self.kind in ("items", "list"):
            if (
                isinstance(value, str)
                or not isinstance(value, (tuple, list))
                or (self.nonempty and not value)
            ):
                joined = self.kind == "list" and isinstance(value, (tuple, list))  # shown as typed: a,b
                raise InvalidParameter(
                    self.flag, ",".join(map(str, value)) if joined else value, self.valid()
                )
            for item in value if self.parse is not None else ():
                self.parse(item, param=self.flag)
        elif self.kind == "pairs":
            if not isinstance(value, dict) or not all(isinstance(key, str) and key for key in value):
                raise InvalidParameter(self.flag, value, self.valid())
            for key, number in value.items():
                if not self._number_ok(number):
                    raise InvalidParameter(f"{self.flag} {key}", number, self._range())
        elif self.kind in ("float", "int"):
            if not self._number_ok(value):
                raise InvalidParameter(self.flag, value, self.valid())
        elif self.kind == "flag" and not isinstance(value, bool):
            raise InvalidParameter(self.flag, value, self.valid())

    def accepts(self, value: Any) -> bool:
        """Whether :meth:`check` takes ``value``."""
        try:
            self.check(value)
        except InvalidParameter:
            return False
        return True

    def _number_ok(self, value: Any) -> bool:
        if isinstance(value, str) and self.words:
            text = value.strip().lower()
            if text in self.words:
                return True
            if not text.isdigit():
                return False
            value = int(text)
        if isinstance(value, bool) or not isinstance(value, int if self.kind == "int" else (int, float)):
            return False
        if self.finite and not math.isfinite(value):
            return False
        if math.isnan(value):
            return False
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.above else value < low):
            return False
        return not (high is not None and (value >= high if self.below else value > high))


def option(default: Any = None, **declaration: Any) -> Any:
    """A dataclass field declared as an option: ``content_weight: float = option(1.0, flag=..., ...)``.

    Args:
        default: The default value: a number, a string, a tuple or ``None``; or a dict (of a ``pairs``
            option), of which each instance gets its own copy.
        **declaration: The :class:`Option`'s attributes.
    """
    metadata = {_METADATA_KEY: Option(**declaration)}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_of(cls: Any, name: str, default: Any, **changes: Any) -> Any:
    """A dataclass field declared as the field ``name`` of the configuration ``cls`` is (the same flag,
    help and checks), with its own ``default``: an option two commands share, each with the default
    its job needs.

    Args:
        cls: The configuration dataclass that declares the option.
        name: Its field there.
        default: This field's default.
        **changes: Attributes of the declaration to replace (a ``doc`` or ``origin`` that says why this
            command's default differs).
    """
    field = next(f for f, _ in declared(cls) if f.name == name)
    declaration = dataclasses.replace(field.metadata[_METADATA_KEY], **changes)
    return option(default, **{f.name: getattr(declaration, f.name) for f in dataclasses.fields(declaration)})


def declared(cls: Any) -> Iterator[tuple[dataclasses.Field[Any], Option]]:
    """Each declared field of the dataclass ``cls`` (or instance) with its :class:`Option`, in order."""
    for field in dataclasses.fields(cls):
        if _METADATA_KEY in field.metadata:
            yield field, field.metadata[_METADATA_KEY]


def shown_default(option: Option, default: Any) -> str:
    """The default as ``--help`` and the docs show it: ``1`` for 1.0, ``relu1_1,relu2_1`` for a tuple,
    ``KEY=VALUE,...`` for pairs, :attr:`Option.none` (or :attr:`Option.none_word`) for ``None`` or no
    pairs, ``on``/``off`` for a flag, "" for no default."""
    if default is None or default == {}:
        return option.none or option.none_word
    if isinstance(default, bool):
        return "on" if default else "off"
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, (tuple, list)):
        return ",".join(map(str, default))
    if isinstance(default, dict):
        return ",".join(f"{key}={value:g}" for key, value in default.items())
    return str(default)


class Declared:
    """Base of a configuration dataclass whose fields are declared with :func:`option`: the checks,
    the JSON form and its inverse, all from the declarations."""

    def check(self) -> None:
        """Checks every declared field on its own (type, range, choices, item syntax), in order.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        for field, declaration in declared(self):
            declaration.check(getattr(self, field.name))

    def validate(self) -> None:
        """Checks every value that can be checked without files or a network: :meth:`check`, then the
        rules between fields that a subclass adds.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        self.check()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists), stored in output metadata."""
        data = dataclasses.asdict(self)  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming the first one."""
        names = sorted(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise choice_error("config key", unknown[0], names)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _cell(text: str) -> str:
    """A markdown table cell: ``|`` escaped."""
    return text.replace("|", "\\|")


def markdown_table(cls: Any) -> str:
    """The docs' options table of the configuration dataclass ``cls``: one row per declared option,
    ``| option | default | meaning |``, in declaration order (ends with a newline); where any option
    says where its default comes from (:attr:`Option.origin`), a fourth column says so for each."""
    origins = any(declaration.origin for _, declaration in declared(cls))
    columns = ["option", "default", "meaning", *(["where the default comes from"] if origins else [])]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    defaults = cls()
    for field, declaration in declared(cls):
        flag = declaration.flag
        if declaration.negatable:
            flag += f"/--no-{flag[2:]}"
        metavar = declaration.shown_metavar
        name = f"`{flag} {metavar}`" if metavar else f"`{flag}`"
        default = shown_default(declaration, getattr(defaults, field.name)) or "—"
        cells = [
            name,
            default,
            declaration.doc or declaration.help,
            *([declaration.origin] if origins else []),
        ]
        rows.append("| " + " | ".join(map(_cell, cells)) + " |")
    return "\n".join(rows) + "\n"
