"""The ``styleforge`` command line: a thin click layer over the Python API.

The CLI owns what the core never does: progress bars, files and exit codes. A
:class:`~styleforge.errors.StyleforgeError` becomes one ``error: …`` line and its exit code (2 for
a usage error, 1 for a runtime failure); anything else is a bug and keeps its traceback.

One module per command (:mod:`.transfer`, :mod:`.video`, :mod:`.train`, :mod:`.stylizer`, :mod:`.score`,
:mod:`.sweep`; :mod:`.model` for ``--model``), the
progress displays apart (:mod:`.display`). The modules import only click, the configuration and the
option parsers at import time — the heavy parts (torch, the networks) are imported by a command
when it runs — so ``styleforge --help`` and every argument error are answered without torch.
"""

from __future__ import annotations

import click

from ..version import __version__
from .base import StyleforgeGroup
from .score import score_command
from .studio import studio_command
from .stylizer import train_stylizer_command
from .sweep import sweep
from .train import make_dataset_command, train_attrs_command
from .transfer import transfer
from .video import video

__all__ = ["main", "cli"]


@click.group(
    cls=StyleforgeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="styleforge")
def cli() -> None:
    """styleforge: tunable neural style transfer and art-composition attribute networks."""


for _command in (
    transfer,
    video,
    make_dataset_command,
    train_attrs_command,
    train_stylizer_command,
    sweep,
    score_command,
    studio_command,
):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="styleforge")
