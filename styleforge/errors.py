"""Errors a user can cause, each with a one-line message that says what was wrong and what is valid.

Every error meant for the user derives from :class:`StyleforgeError`. The CLI prints such an error as
one line and exits with :attr:`StyleforgeError.exit_code` (2 for a usage error, 1 for a runtime
failure); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "StyleforgeError",
    "InvalidParameter",
    "InvalidUsage",
    "InputFileError",
    "WeightsError",
    "ResourceError",
    "NoProgressError",
    "OutputWriteError",
    "did_you_mean",
    "choice_error",
    "shown",
]


def shown(value: object) -> str:
    """A value as a message shows it: in the words a user writes on the command line or in a TOML
    file, never Python's (``None``, ``True``, ``PosixPath(...)``).

    Text and paths are quoted (``'a.jpg'``), numbers and booleans written plainly (``0.5``, ``true``),
    lists and tables in TOML's spelling, and a missing value is ``nothing``.
    """
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, os.PathLike)):
        return repr(os.fspath(value))
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)  # inf, nan
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return "[" + ", ".join(shown(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {shown(v)}" for k, v in value.items()) + "}"
    return str(value)


class StyleforgeError(Exception):
    """Base class of the errors a user's input or environment can cause."""

    exit_code: int = 1


class InvalidParameter(StyleforgeError):
    """A parameter has a value that is not valid.

    Args:
        param: The parameter's name as the user wrote it (``--style``, ``content_weight``).
        value: The offending value.
        valid: What would be valid, in words (``"a finite number > 0"``, ``"one of: a, b"``).
        hint: Optional extra sentence (a suggestion, a "did you mean").
    """

    exit_code = 2

    def __init__(self, param: str, value: object, valid: str, hint: str = "") -> None:
        self.param, self.value, self.valid, self.hint = param, value, valid, hint
        message = (
            f"{param}: {shown(value)} is not valid; expected {valid}"
            if value is not None
            else f"{param}: missing; expected {valid}"
        )
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class InvalidUsage(StyleforgeError):
    """A combination of arguments that cannot work, said in one sentence (exit code 2)."""

    exit_code = 2


class InputFileError(StyleforgeError):
    """An input file is missing, is a folder, or is not a readable image / data file."""

    exit_code = 2

    def __init__(self, param: str, path: object, problem: str) -> None:
        self.param, self.path, self.problem = param, path, problem
        super().__init__(f"{param}: {str(path)!r} {problem}")


class WeightsError(StyleforgeError):
    """Network weights cannot be obtained or do not fit the network."""


class ResourceError(StyleforgeError):
    """The machine cannot do what was asked (device missing, not enough memory)."""


class NoProgressError(StyleforgeError):
    """A run ended with nothing better than where it started (e.g. an optimiser that diverged at once)."""


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """Returns ``"did you mean 'x'?"`` for the closest option, or ``""`` when none is close."""
    match = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else ""


def choice_error(param: str, value: object, options: Iterable[str]) -> InvalidParameter:
    """An :class:`InvalidParameter` for a value that must be one of ``options``."""
    options = list(options)
    return InvalidParameter(param, value, "one of: " + ", ".join(options), did_you_mean(str(value), options))


class OutputWriteError(StyleforgeError):
    """The final write of an output failed (disk full, folder gone); maybe it was saved elsewhere.

    Attributes:
        param: The parameter the path was given as.
        path: The file that could not be written.
        reason: Why, in words (``No space left on device``).
        saved: Where the content was saved instead, or ``None`` when no fallback folder took it.
        failures: ``"folder: reason"`` for each fallback folder that failed too.
    """

    exit_code = 1

    def __init__(
        self, param: str, path: Path, reason: str, saved: Path | None, failures: Iterable[str] = ()
    ) -> None:
        self.param, self.path, self.reason, self.saved, self.failures = (
            param,
            path,
            reason,
            saved,
            list(failures),
        )
        message = f"{param}: could not write {str(path)!r} ({reason}); "
        if saved is not None:
            message += f"the result was saved to {str(saved)!r}"
        else:
            message += (
                "no copy could be saved either (" + "; ".join(self.failures or ["no fallback folder"]) + ")"
            )
        super().__init__(message)
