"""What every command shares: one-line errors and their exit codes, and which options were given."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from ..errors import StyleforgeError

__all__ = ["EXIT_INTERRUPTED", "StyleforgeGroup", "explicit"]

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
