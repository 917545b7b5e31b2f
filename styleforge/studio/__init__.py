"""styleforge studio: a local web app that shows a transfer's engine events live, and runs transfers.

``styleforge studio`` serves it; ``styleforge transfer ... --preview`` shows one command line's run in
it. The layers, bottom to top:

- :mod:`.options`: a run's options from the JSON a client sends, checked as the command line checks
  them, path-valued ones refused; the API's errors (no torch);
- :mod:`.feedforward`: the hook for trained feed-forward models (none yet);
- :mod:`.runs`: the runs, their queue and the worker thread, engine events as JSON, pictures;
- :mod:`.server`: the aiohttp application, the JSON API and the page (``static/``);
- :mod:`.preview`: a server in a thread of its own for ``transfer --preview``.

The API is documented in docs/studio.md. Nothing here prints or imports click: the command line
(``styleforge.cli.studio``) announces the address and opens the browser.
"""

from __future__ import annotations

__all__: list[str] = []
