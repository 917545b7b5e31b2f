"""``styleforge studio``: the local web app; and the ``transfer --preview`` live view.

The work is in :mod:`styleforge.studio` (imported when the command runs: aiohttp and torch are not
needed for ``--help``); this module announces the address, warns about a non-local one and opens the
browser.
"""

from __future__ import annotations

import os
import webbrowser
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

__all__ = ["open_preview", "studio_command"]


def _announce(url: str, host: str, *, browser: bool, label: str, err: bool = False) -> None:
    """The address line, a warning for a non-local host, and the browser opened on it."""
    from ..studio.server import exposure_warning

    click.echo(f"{label}: {url}", err=err)
    warning = exposure_warning(host)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    if browser:
        webbrowser.open(url)


@click.command("studio")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; anything but a loopback address lets other machines in (a warning says so).",
)
@click.option("--port", type=int, default=0, show_default=True, help="Port to listen on (0: any free one).")
@click.option(
    "--no-browser", is_flag=True, help="Do not open the page in a browser (nor does STYLEFORGE_NO_BROWSER=1)."
)
@click.option(
    "--models",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder of train-stylizer model folders: offered on the page for an instant result.",
)
def studio_command(host: str, port: int, no_browser: bool, models: Path | None) -> None:
    """A local web app to tune a transfer by looking at it: upload a content picture and styles, set
    the knobs, watch the picture and each loss term's curve change live, stop, download the PNG,
    and start again from any earlier result's settings.

    The first line on stdout is the address (studio: http://HOST:PORT/). One transfer runs at a time;
    the others wait in a queue. Ctrl-C ends the server. Needs the studio extra
    (pip install 'styleforge[studio]'); its JSON API is documented in docs/studio.md.
    """
    from ..studio.feedforward import find_feedforward
    from ..studio.runs import Studio
    from ..studio.server import StudioServer

    server = StudioServer(Studio(feedforward=find_feedforward(models)), host, port)
    browser = not (no_browser or os.environ.get("STYLEFORGE_NO_BROWSER"))
    server.serve(lambda url: _announce(url, host, browser=browser, label="studio"))
    click.echo("studio: stopped", err=True)


def open_preview(content: Any, styles: Sequence[str], config: Any, flag: Any) -> Any:
    """``transfer --preview``: serves the live view of this run, says where on stderr and opens the
    browser (not where ``STYLEFORGE_NO_BROWSER`` is set); returns the engine callback that feeds it."""
    from ..studio.preview import start_preview
    from ..studio.server import DEFAULT_HOST

    url, recorder = start_preview(content, styles, config, flag)
    browser = not os.environ.get("STYLEFORGE_NO_BROWSER")
    _announce(url, DEFAULT_HOST, browser=browser, label="preview", err=True)
    return recorder
