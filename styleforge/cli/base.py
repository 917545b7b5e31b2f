"""What every command shares: one-line errors and their exit codes, and which options were given."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import OutputWriteError, StyleforgeError

__all__ = ["EXIT_INTERRUPTED", "Outputs", "StyleforgeGroup", "explicit"]

#: The exit code of a run ended by Ctrl-C (128 + SIGINT), after its result was kept.
EXIT_INTERRUPTED = 130


class StyleforgeGroup(click.Group):
    """Turns user errors into one line and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StyleforgeError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # click's own checks (a missing argument, a bad choice): one line too
            option = f" (see styleforge {exc.ctx.info_name} --help)" if exc.ctx is not None and exc.ctx.info_name else ""
            click.echo(f"error: {exc.format_message()}{option}", err=True)
            ctx.exit(exc.exit_code)



def explicit(ctx: click.Context, names: Sequence[str]) -> list[str]:
    """The options given on the command line (not defaults)."""
    from click.core import ParameterSource

    return [n for n in names if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)]


class Outputs:
    """The files a command writes once its work is done.

    Each is written in turn; one that cannot be (disk full, its folder gone) was saved elsewhere by
    :func:`~styleforge.files.write_with_fallback`, and the others are still written. :meth:`finish`
    prints every path, then one ``error:`` line per failed write, and exits 1 if there was one.
    """

    def __init__(self) -> None:
        self.written: list[Path] = []
        self.failed: list[OutputWriteError] = []

    def write(self, make: Callable[[], Path | None]) -> Path | None:
        """Runs one writer; returns where its file is (``None``: nothing to write, or lost)."""
        try:
            path = make()
        except OutputWriteError as exc:
            self.failed.append(exc)
            path = exc.saved
        if path is not None:
            self.written.append(Path(path))
        return path

    def finish(self) -> None:
        """Prints the paths (stdout) and the failures (stderr); exits 1 after a failed write."""
        if self.written:
            click.echo("\n".join(map(str, self.written)))
        for exc in self.failed:
            click.echo(f"error: {exc}", err=True)
        if self.failed:
            sys.exit(1)
