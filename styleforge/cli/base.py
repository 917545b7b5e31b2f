"""What every command shares: one-line errors and their exit codes, and which options were given."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from ..errors import OutputWriteError, StyleforgeError
from ..signals import Interrupt, exit_code_of, installed, stop_signals, stopped_words

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "Outputs",
    "StyleforgeGroup",
    "explicit",
    "finish_training",
    "stop_flag",
    "stopped",
    "stopped_words",
    "training_errors",
]

#: The exit code of a run ended by Ctrl-C (128 + SIGINT), after its result was kept.
EXIT_INTERRUPTED = 130
#: The exit code of a run ended by SIGTERM (128 + SIGTERM: ``timeout``, ``kill``, ``docker stop``,
#: a batch scheduler), after its result was kept.
EXIT_TERMINATED = 143


def _help_hint(ctx: click.Context | None) -> str:
    """`` (see styleforge COMMAND --help)`` for the command (or group) a usage error is about."""
    if ctx is None:
        return ""
    words = ctx.command_path.split()[1:]  # the program's own name as the user typed it is not ours to trust
    return f" (see {' '.join(['styleforge', *words])} --help)"


class StyleforgeGroup(click.Group):
    """Turns user errors into one line and an exit code instead of a traceback, and holds the stop
    signals' flag (Ctrl-C, SIGTERM) for the whole command: the loops inside it listen to it, and a
    signal that comes before any of them (or a second one) ends the command with its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with stop_signals(listen=False):
                return super().invoke(ctx)
        except StyleforgeError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except click.UsageError as exc:  # click's own checks (a missing argument, a bad choice): one line too
            click.echo(f"error: {exc.format_message()}{_help_hint(exc.ctx)}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:  # a signal where no loop could stop cleanly: nothing was kept
            signum = getattr(exc, "signum", None)
            click.echo(f"{stopped_words(signum)} before anything was finished; nothing was written", err=True)
            ctx.exit(exit_code_of(signum))


def stop_flag() -> Interrupt:
    """The flag of the stop signals the running command holds (an unset one outside a command)."""
    return installed() or Interrupt()


def stopped(flag: Interrupt) -> NoReturn:
    """Exits with the status of the signal that stopped the run (130 for Ctrl-C, 143 for SIGTERM)."""
    sys.exit(flag.exit_code)


def finish_training(result: Any, flag: Interrupt, command: str, output: Path, nothing: str) -> None:
    """The end of a training command: the files it wrote on stdout and, when a signal stopped it, how
    to go on (``nothing`` where no report finished) and the signal's exit code.

    Args:
        result: The run's result (``files``, ``history``, ``stop_reason``).
        flag: The command's stop flag.
        command: The command's name (``train-attrs``).
        output: Its run folder.
        nothing: What to say when no report finished.
    """
    click.echo("\n".join(str(p) for p in result.files))
    if result.stop_reason == "interrupted":
        hint = f"continue with styleforge {command} -o {output} --resume" if result.history else nothing
        click.echo(f"{stopped_words(flag.signum)}: {hint}", err=True)
        stopped(flag)


def explicit(ctx: click.Context, names: Sequence[str]) -> list[str]:
    """The options given on the command line (not defaults)."""
    from click.core import ParameterSource

    return [
        n
        for n in names
        if ctx.get_parameter_source(n) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    ]


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


@contextmanager
def training_errors(ctx: click.Context, rank: int, display: Any) -> Iterator[None]:
    """Around a training run (``train-attrs``, ``train-stylizer``): a signal before training started
    ends the command with one line and its exit code; under torchrun a user's error is said by rank 0
    alone, and another rank's own failure (a file missing on its node) names the rank. The display
    is closed in every case."""
    try:
        yield
    except KeyboardInterrupt as exc:  # before the first step (reading the data, preparing)
        display.close()
        signum = getattr(exc, "signum", None)
        if rank == 0:
            click.echo(f"{stopped_words(signum)} before training started; nothing was trained", err=True)
        sys.exit(exit_code_of(signum))
    except StyleforgeError as exc:
        if rank == 0:
            raise
        # Another rank: a usage error is the same on every rank (rank 0 says it); anything else may
        # be this rank's alone (a file missing on its node), so it says which rank it is.
        if exc.exit_code != 2:
            click.echo(f"error (rank {rank}): {exc}", err=True)
        ctx.exit(exc.exit_code)
    finally:
        display.close()
