"""Click options made from the configurations' declarations (:mod:`styleforge.option`), and back.

Every option of a transfer, its guidance and a video, of ``make-dataset``, ``train-attrs`` and
``score`` is declared once, in the configuration dataclass; this module turns each declaration into
its click option (flag, type, metavar, default shown, help) and the values click parsed into the
validated configuration. Nothing here names an option of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import click

from ..errors import InvalidParameter
from ..option import Declared, Option, declared, shown_default
from ..parsing import as_number

__all__ = ["click_option", "click_options", "flag_values", "from_flags", "with_options"]

D = TypeVar("D", bound=Declared)

_TYPES: dict[str, Any] = {"float": float, "int": int}


def click_option(name: str, declaration: Option, default: Any) -> Any:
    """The click option (a decorator) of the field ``name`` declared by ``declaration``, whose default
    is ``default``."""
    flag = declaration.flag
    text = declaration.help
    shown = shown_default(declaration, default)
    kwargs: dict[str, Any] = {"metavar": declaration.shown_metavar}
    if declaration.kind == "flag" and declaration.negatable:
        flag = f"{flag}/--no-{flag[2:]}"
        kwargs["show_default"] = True
    elif declaration.kind == "flag":
        kwargs["is_flag"] = True
    elif declaration.kind in ("items", "pairs"):
        kwargs["multiple"] = True
        kwargs["show_default"] = bool(default)
        if not default and shown:
            text += f"  [default: {shown}]"  # what no item means (every term 1)
        if declaration.kind == "pairs":
            default = tuple(shown_default(declaration, {key: value}) for key, value in default.items())
    else:
        # A number that takes words too (--tile auto|off|PX, --scales N|auto) is text to click.
        words = declaration.words or declaration.none_word
        kwargs["type"] = None if words else _TYPES.get(declaration.kind)
        kwargs["show_default"] = default is not None or bool(declaration.none_word)
        if default is None and not declaration.none_word and shown:
            text += f"  [default: {shown}]"  # click would put a text default in parentheses
    if declaration.kind == "list" or (default is None and declaration.none_word):
        default = shown
    return click.option(flag, name, default=default, help=text, **kwargs)


def click_options(cls: type[Declared]) -> list[Any]:
    """The click options of every declared field of the configuration class ``cls``, in order."""
    defaults = cls()
    return [click_option(field.name, o, getattr(defaults, field.name)) for field, o in declared(cls)]


def with_options(options: Sequence[Any]) -> Any:
    """A decorator that adds ``options`` to a command, in their order on ``--help``."""

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _value(declaration: Option, value: Any) -> Any:
    """A value as click gives it → as the configuration holds it."""
    if declaration.kind == "items":
        return tuple(value)
    if declaration.kind == "pairs" and not isinstance(value, dict):
        return _pairs(declaration, value)
    if declaration.kind == "list" and isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if declaration.none_word and isinstance(value, str):
        text = value.strip().lower()
        if text == declaration.none_word:
            return None
        # a number out of range stays as it was typed, which is what its error then shows ('0')
        return int(text) if text.isdigit() and declaration.accepts(int(text)) else value
    return value


def _pairs(declaration: Option, items: Sequence[str]) -> dict[str, Any]:
    """A ``pairs`` option's ``KEY=NUMBER`` items → ``{key: number}``, later ones winning; a number that
    is not valid stays as it was typed, which is what its error then shows (``'-1'``, ``'abc'``).

    Raises:
        InvalidParameter: An item without ``=`` or without a key.
    """
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise InvalidParameter(declaration.flag, item, declaration.valid())
        number = as_number(text)
        pairs[key] = number if number is not None and declaration.accepts({key: number}) else text
    return pairs


def flag_values(
    cls: type[Declared], values: dict[str, Any], names: Sequence[str] | None = None
) -> dict[str, Any]:
    """The command's option ``values`` (click's parameters by name) that are ``cls``'s fields, as the
    configuration holds them: all of them, or those of ``names`` (the options given on the command
    line, say), in the order of ``names``. Nothing is checked but the syntax of a ``pairs`` item.

    Raises:
        InvalidParameter: A ``pairs`` item that is not ``KEY=NUMBER``.
    """
    declarations = {field.name: declaration for field, declaration in declared(cls)}
    return {
        name: _value(declarations[name], values[name])
        for name in (values if names is None else names)
        if name in declarations and name in values
    }


def from_flags(cls: type[D], values: dict[str, Any]) -> D:
    """The validated configuration ``cls`` of the command's option ``values`` (click's parameters by
    name; those that are not ``cls``'s fields are left alone).

    Raises:
        InvalidParameter: The first invalid option, named as on the command line.
    """
    config = cls(**flag_values(cls, values))
    config.validate()
    return config
