"""``styleforge transfer ... --preview``: the studio's live view of a run the command line makes.

The command line runs its transfer as usual, in its own thread; :func:`start_preview` serves the
studio's page from a daemon thread in preview mode (it shows that run and starts none) and returns the
callback that records the run's events for it. Stop on the page is Ctrl-C: it sets the command's own
stop flag, and the command writes the best image so far. The server ends with the command.
"""

from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..config import TransferConfig
from ..parsing import parse_style
from ..signals import Interrupt
from .runs import Recorder, Run, Studio, Upload
from .server import DEFAULT_HOST, StudioServer

__all__ = ["start_preview"]


def start_preview(
    content: str | os.PathLike[str],
    styles: Sequence[str],
    config: TransferConfig,
    flag: Interrupt,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
) -> tuple[str, Recorder]:
    """Serves the live view of one command-line transfer.

    Args:
        content: The content image, as given.
        styles: The ``--style`` arguments.
        config: The run's configuration.
        flag: The command's stop flag: the page's Stop button sets it.
        host: Where to listen (this machine only by default).
        port: The port (0: any free one).

    Returns:
        The page's address for this run, and the engine callback that feeds it.

    Raises:
        InvalidParameter: The address cannot be listened on.
    """
    studio = Studio()
    atexit.register(shutil.rmtree, studio.folder, ignore_errors=True)
    number, folder = studio.new_folder()
    specs = [parse_style(text) for text in styles]
    run = Run(
        number,
        config,
        Upload("content", os.fspath(content), Path(content)),
        [Upload("style", str(spec.path), spec.path) for spec in specs],
        [spec.weight for spec in specs],
        folder,
        flag=flag,
    )
    recorder = studio.attach(run)
    url = StudioServer(studio, host, port, preview=True).start_in_thread()
    return f"{url}#run={run.id}", recorder
