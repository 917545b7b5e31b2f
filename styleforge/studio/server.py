"""The studio's web server (aiohttp): the page, its assets, and the JSON API the page uses.

docs/studio.md documents the API. In short: ``POST /api/runs`` (multipart: ``content``, ``style`` ...,
``options``) queues a run; ``GET /api/runs/ID`` is its state; ``GET /api/runs/ID/image`` its best
picture so far (the final PNG, with its metadata, once it ended); ``POST /api/runs/ID/stop`` stops it,
keeping that picture; ``GET /api/runs/ID/events`` streams its engine events (server-sent events).

What a client may do is bounded: a request body larger than ``max_upload_bytes`` is answered 413
before it is read whole; only uploaded files are read (:mod:`.options` refuses path-valued options);
an uploaded file is stored under a name of the server's making in the run's own folder; a run is
found by its number, never by a path. A request from another origin that would change something
(``POST`` from a page elsewhere) is refused, and so, on a loopback address, is a ``Host`` header that
is not a loopback name (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import errno
import importlib.resources
import ipaddress
import json
import mimetypes
import shutil
import socket
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ..config import COLOR_TRANSFERS, NETWORKS, PRECISIONS, STYLE_LOSSES, STYLE_WEIGHTS, TransferConfig
from ..errors import InvalidParameter, ResourceError, StyleforgeError, choice_error
from ..parsing import OPTIMIZERS
from ..signals import STOP_SIGNALS
from ..version import __version__
from .options import WEIGHTS_KEYWORDS, ApiError, api_error, blend_weights, option_fields, run_config
from .runs import FINISHED, Run, Studio, Upload, safe_name

try:
    from aiohttp import web
except ModuleNotFoundError as exc:  # the optional extra: one line through the CLI, not a traceback
    if exc.name != "aiohttp":
        raise
    raise ResourceError(
        "styleforge studio needs the web framework aiohttp: pip install 'styleforge[studio]'"
    ) from None

__all__ = ["DEFAULT_HOST", "MAX_UPLOAD_BYTES", "StudioServer", "exposure_warning", "url_of"]

DEFAULT_HOST = "127.0.0.1"
#: The largest request body ``POST /api/runs`` takes (all its pictures together): 413 past it.
MAX_UPLOAD_BYTES = 64 << 20
#: The page and its assets, shipped in the package (``styleforge/studio/static``): name → content type.
ASSETS: dict[str, str] = {
    "index.html": "text/html",
    "studio.js": "text/javascript",
    "studio.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
#: The page may load only what the server itself sends: no CDN, no inline script.
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
#: Seconds between the comments that keep an idle event stream open through proxies.
HEARTBEAT_SECONDS = 15.0
_FILE_FIELDS = ("content", "style")
_MASK_PREFIXES = {"mask_": "masks", "image_mask_": "image_masks"}


def _is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """A sentence for a server bound to a non-loopback address (``None`` on 127.0.0.1): anyone who
    reaches it can run transfers on this machine and see every picture."""
    if _is_loopback(host):
        return None
    return (
        f"the studio listens on {host}, not only on this machine: anyone who can reach it can upload "
        "pictures, run transfers here and see every result (there is no login); use --host 127.0.0.1 "
        "unless that is what you want"
    )


def url_of(host: str, port: int) -> str:
    """``http://HOST:PORT/`` (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def _json(data: Any, status: int = 200, **headers: str) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store", **headers})


def _answer(error: ApiError) -> web.Response:
    return _json(error.to_dict(), status=error.status)


class _Refused(Exception):
    """A request the API answers with an error (raised inside a handler, answered by the middleware)."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


def _bind_error(exc: OSError, host: str, port: int) -> StyleforgeError:
    """A one-line error for an address the server cannot listen on."""
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return InvalidParameter(
            "--port", port, "a free port, or 0 for any free one", f"{host}:{port} is in use: {reason}"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return InvalidParameter("--port", port, "a port from 1024 up, or 0", f"not allowed here: {reason}")
    return InvalidParameter(
        "--host",
        host,
        f"an address of this machine (default {DEFAULT_HOST})",
        f"cannot listen there: {reason}",
    )


class StudioServer:
    """The studio's web app over a :class:`~styleforge.studio.runs.Studio`.

    Args:
        studio: The runs and their worker.
        host: The address to listen on (127.0.0.1: this machine only).
        port: The port (0: any free one; :attr:`port` then says which).
        max_upload_bytes: The largest ``POST /api/runs`` body.
        preview: Show the runs of a command line (``transfer --preview``) and start none.
    """

    def __init__(
        self,
        studio: Studio,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
        preview: bool = False,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidParameter("--port", port, "a port number from 0 to 65535 (0: any free one)")
        self.studio, self.host, self.port = studio, host, port
        self.max_upload_bytes, self.preview = max_upload_bytes, preview
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.Event | None = None
        self._wake_pending = False
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._assets: dict[str, bytes] = {}

    # -- the application ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application (also what the tests' client serves)."""
        app = web.Application(client_max_size=self.max_upload_bytes, middlewares=[self._middleware])
        get, post = web.get, web.post
        run = r"/api/runs/{id:\d+}"
        app.add_routes(
            [
                get("/", self._index),
                get("/static/{name}", self._asset),
                get("/api/info", self._info),
                get("/api/runs", self._list),
                post("/api/runs", self._create),
                get(run, self._status),
                get(run + "/image", self._image),
                post(run + "/stop", self._stop),
                get(run + "/events", self._events),
                get(run + r"/inputs/{field:[a-z_]+\d*}", self._input),
            ]
        )
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        self._loop, self._tick, self._closing = asyncio.get_running_loop(), asyncio.Event(), False
        self.studio.listeners.append(self._changed)

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing = True
        self._wake()  # every event stream ends
        if self._changed in self.studio.listeners:
            self.studio.listeners.remove(self._changed)

    def _changed(self, run: Run) -> None:
        """A run has new events (any thread): wake the event streams once, in the server's loop."""
        if self._loop is None or self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop has closed: no stream is left to wake
            self._wake_pending = False

    def _wake(self) -> None:
        self._wake_pending = False
        if self._tick is not None:
            self._tick.set()
            self._tick = asyncio.Event()

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        api = request.path.startswith("/api/")
        refused = self._refusal(request)
        if refused is not None:
            return _answer(refused)
        try:
            response = await handler(request)
        except _Refused as exc:
            return _answer(exc.error)
        except web.HTTPRequestEntityTooLarge:
            return _answer(self._too_large())
        except web.HTTPException as exc:
            if not api or exc.status < 400:
                raise
            return _answer(ApiError(None, f"{request.method} {request.path}: {exc.reason}", exc.status))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    def _refusal(self, request: web.Request) -> ApiError | None:
        """Why a request is refused before its handler runs: another origin's POST, or on a loopback
        address a Host header that names no loopback name (a DNS-rebinding page)."""
        host = request.host.rsplit(":", 1)[0] if not request.host.endswith("]") else request.host
        if _is_loopback(self.host) and not _is_loopback(host):
            return ApiError(
                "Host", f"Host: {request.host!r} is not this machine's (the studio is local)", 403
            )
        origin = request.headers.get("Origin")
        changes = request.method not in ("GET", "HEAD", "OPTIONS")
        if changes and origin is not None and origin != f"{request.scheme}://{request.host}":
            return ApiError("Origin", f"Origin: {origin!r}: requests from other sites are refused", 403)
        return None

    def _too_large(self) -> ApiError:
        mib = self.max_upload_bytes / (1 << 20)
        return ApiError(None, f"upload: larger than the studio takes ({mib:g} MiB in all)", 413)

    # -- the page ----------------------------------------------------------------------------------

    def _asset_bytes(self, name: str) -> bytes:
        if name not in self._assets:
            self._assets[name] = importlib.resources.files(__package__).joinpath("static", name).read_bytes()
        return self._assets[name]

    async def _index(self, request: web.Request) -> web.Response:
        return self._asset_response("index.html")

    async def _asset(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS or name == "index.html":  # a fixed list: no path is ever built from a URL
            raise _Refused(ApiError(None, f"no such file: {name!r}", 404))
        return self._asset_response(name)

    def _asset_response(self, name: str) -> web.Response:
        return web.Response(
            body=self._asset_bytes(name),
            content_type=ASSETS[name],
            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"},
        )

    async def _info(self, request: web.Request) -> web.Response:
        """What the page builds its form from."""
        feedforward = self.studio.feedforward
        return _json(
            {
                "version": __version__,
                "preview": self.preview,
                "models": feedforward.models() if feedforward is not None else None,
                "max_upload_bytes": self.max_upload_bytes,
                "defaults": TransferConfig().to_dict(),
                "fields": option_fields(),
                "choices": {
                    "style_loss": list(STYLE_LOSSES),
                    "optimizer": list(OPTIMIZERS),
                    "pooling": ["max", "avg"],
                    "weights": list(WEIGHTS_KEYWORDS),
                    "network": list(NETWORKS),
                    "color_transfer": list(COLOR_TRANSFERS),
                    "precision": list(PRECISIONS),
                },
                "style_weights": STYLE_WEIGHTS,
            }
        )

    # -- runs ----------------------------------------------------------------------------------------

    def _run(self, request: web.Request) -> Run:
        run = self.studio.get(request.match_info["id"])
        if run is None:
            raise _Refused(
                ApiError("id", f"id: no run {request.match_info['id']} (it never was, or was forgotten)", 404)
            )
        return run

    def _status_of(self, run: Run) -> dict[str, Any]:
        return run.status(self.studio.position(run))

    async def _list(self, request: web.Request) -> web.Response:
        return _json([self._status_of(run) for run in self.studio.runs()])

    async def _status(self, request: web.Request) -> web.Response:
        return _json(self._status_of(self._run(request)))

    async def _stop(self, request: web.Request) -> web.Response:
        run = self._run(request)
        self.studio.stop(run)
        return _json(self._status_of(run), status=202)

    async def _image(self, request: web.Request) -> web.StreamResponse:
        run = self._run(request)
        data = await asyncio.to_thread(run.picture)
        if data is None:
            raise _Refused(ApiError(None, f"run {run.id} has no picture yet (state: {run.state})", 404))
        headers = {"Cache-Control": "no-store"}
        if request.query.get("download"):
            stem = safe_name(Path(run.content.name).stem, "styleforge")
            headers["Content-Disposition"] = f'attachment; filename="{stem}-styleforge-{run.id}.png"'
        return web.Response(body=data, content_type="image/png", headers=headers)

    async def _input(self, request: web.Request) -> web.Response:
        """An uploaded picture of the run (``content``, ``style_N``, ``mask_N``), as it was sent: found by
        its field, never by a path. A command line's run (``--preview``) shows none of its files."""
        run = self._run(request)
        field = request.match_info["field"]
        upload = None if run.external else run.upload(field)
        if upload is None:
            raise _Refused(ApiError("field", f"field: run {run.id} has no uploaded {field!r}", 404))
        kind = mimetypes.guess_type(upload.path.name)[0] or ""
        data = await asyncio.to_thread(upload.path.read_bytes)
        return web.Response(
            body=data,
            content_type=kind if kind.startswith("image/") else "application/octet-stream",
            headers={"Cache-Control": "no-store", "Content-Security-Policy": "default-src 'none'"},
        )

    async def _create(self, request: web.Request) -> web.Response:
        """``POST /api/runs``: the uploads checked and stored, the options validated, the run queued."""
        if self.preview:
            raise _Refused(
                ApiError(
                    None,
                    "this studio shows a transfer --preview run; start styleforge studio to run your own",
                    409,
                )
            )
        if request.content_length is not None and request.content_length > self.max_upload_bytes:
            return _answer(self._too_large())
        if request.content_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
            raise _Refused(
                ApiError(
                    None, f"a multipart/form-data body (the page's form), not {request.content_type!r}", 415
                )
            )
        form = await request.post()
        number, folder = self.studio.new_folder()
        try:
            run = await self._new_run(form, number, folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.studio.submit(run)
        return _json({"id": run.id, "state": run.state}, status=201, Location=f"/api/runs/{run.id}")

    async def _new_run(self, form: Any, number: str, folder: Path) -> Run:
        known = {"options", "blend", "model", "from", *_FILE_FIELDS}
        for key in form:
            if key not in known and not any(key.startswith(p) for p in _MASK_PREFIXES):
                raise _Refused(
                    ApiError(
                        key,
                        f"{key}: not a field of POST /api/runs; expected {', '.join(sorted(known))}, "
                        "mask_N or image_mask_N",
                    )
                )
        try:
            config = run_config(_text(form, "options"))
            model = self._model(_text(form, "model"))
            earlier = self._earlier(_text(form, "from"))
            content = await self._files(form, "content", folder)
            styles = await self._files(form, "style", folder)
            reuse_styles = earlier is not None and not styles
            if earlier is not None:
                content = content or [await _copy(earlier.content, folder)]
                if reuse_styles:
                    styles = [await _copy(u, folder) for u in earlier.styles]
            if len(content) != 1:
                raise InvalidParameter("content", len(content) or None, "one picture file")
            if not styles:
                raise InvalidParameter("style", None, "one or more picture files")
            blend_text = _text(form, "blend")
            if reuse_styles and blend_text is None:
                blend = list(earlier.blend)
            else:
                blend = blend_weights(blend_text, len(styles))
            masks = await self._masks(form, folder, len(styles), earlier if reuse_styles else None)
        except StyleforgeError as exc:
            raise _Refused(api_error(exc)) from None
        return Run(number, config, content[0], styles, blend, folder, model=model, **masks)

    def _model(self, name: str | None) -> str | None:
        """A feed-forward model the server has (``studio --models``), by name."""
        if not name:
            return None
        feedforward = self.studio.feedforward
        if feedforward is None:
            raise InvalidParameter("model", name, "nothing: this studio has no feed-forward models")
        names = feedforward.models()
        if name not in names:
            raise choice_error("model", name, names)
        return name

    def _earlier(self, run_id: str | None) -> Run | None:
        """``from``: an earlier run whose uploaded pictures the new one reuses where it sends none."""
        if not run_id:
            return None
        run = self.studio.get(run_id.strip())
        if run is None or run.external:
            raise InvalidParameter("from", run_id, "the id of an earlier run of this studio")
        return run

    async def _files(self, form: Any, field: str, folder: Path) -> list[Upload]:
        """The files of one form field, stored and checked to be pictures (header only)."""
        out = []
        for index, item in enumerate(form.getall(field, []), start=1):
            if not isinstance(item, web.FileField):
                raise InvalidParameter(field, str(item)[:40], "a picture file (a file upload, not text)")
            name = item.filename or field
            target = folder / f"{field}-{index}" / safe_name(name)
            upload = Upload(field, name, target)
            await asyncio.to_thread(_store, item, target)
            try:
                await asyncio.to_thread(_probe, target)
            except StyleforgeError as exc:
                raise _Refused(api_error(exc, {str(target): (field, name)})) from None
            out.append(upload)
        return out

    async def _masks(
        self, form: Any, folder: Path, styles: int, earlier: Run | None
    ) -> dict[str, dict[int, Upload]]:
        """``mask_N`` / ``image_mask_N``: a mask per style (N its position from 1); ``earlier``: the run
        whose styles are reused, whose masks are too where none is sent."""
        out: dict[str, dict[int, Upload]] = {"masks": {}, "image_masks": {}}
        for key in form:
            prefix = next((p for p in _MASK_PREFIXES if key.startswith(p)), None)
            if prefix is None:
                continue
            number = key[len(prefix) :]
            if not (number.isdigit() and 1 <= int(number) <= styles):
                raise InvalidParameter(key, key, f"{prefix}N with N a style's position from 1 to {styles}")
            files = await self._files(form, key, folder)
            if len(files) != 1:
                raise InvalidParameter(key, len(files), "one mask picture")
            out[_MASK_PREFIXES[prefix]][int(number)] = files[0]
        if earlier is not None:
            for kind in out:
                for n, upload in getattr(earlier, kind).items():
                    if n not in out[kind]:
                        out[kind][n] = await _copy(upload, folder)
        return out

    async def _events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: every event of the run from the start (or after ``Last-Event-ID``),
        then each new one as it comes, until the run has ended; 204 for a stream with nothing left."""
        run = self._run(request)
        start = min(_start_of(request), len(run.events_since(0)))
        if run.state in FINISHED and start >= len(run.events_since(0)):
            return web.Response(status=204)  # EventSource stops reconnecting
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        sent = start
        try:
            while not self._closing:
                assert self._tick is not None
                tick = self._tick  # taken before reading: an event added meanwhile sets this one
                events = run.events_since(sent)
                if events:
                    chunk = "".join(
                        f"id: {sent + i}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n"
                        for i, e in enumerate(events)
                    )
                    await response.write(chunk.encode())
                    sent += len(events)
                elif run.state in FINISHED:
                    break
                else:
                    try:
                        await asyncio.wait_for(tick.wait(), HEARTBEAT_SECONDS)
                    except asyncio.TimeoutError:
                        await response.write(b": keep-alive\n\n")
        except ConnectionResetError:  # the page went away
            return response
        return response

    # -- serving -----------------------------------------------------------------------------------

    async def start(self) -> str:
        """Starts listening; returns the URL (with the port chosen for port 0).

        Raises:
            InvalidParameter: The port is in use or not allowed, or the host is no address of this machine.
        """
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except (OSError, socket.gaierror) as exc:
            await runner.cleanup()
            raise _bind_error(exc, self.host, self.port) from None
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return url_of(self.host, self.port)

    async def stop(self) -> None:
        """Stops serving, then closes the studio (a running transfer stops, keeping nothing further)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await asyncio.to_thread(self.studio.close)

    def serve(self, ready: Callable[[str], None]) -> None:
        """Serves until SIGINT or SIGTERM (Ctrl-C), in this thread; ``ready(url)`` once listening."""
        asyncio.run(self._serve(ready))

    async def _serve(self, ready: Callable[[str], None]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            url = await self.start()
        except BaseException:
            await asyncio.to_thread(self.studio.close)  # its temporary folder
            raise
        handled = []
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, stop.set)
                handled.append(signum)
        try:
            ready(url)
            await stop.wait()
        finally:
            for signum in handled:
                loop.remove_signal_handler(signum)
            await self.stop()

    def start_in_thread(self) -> str:
        """Serves from a daemon thread of its own (``transfer --preview``); returns the URL once
        listening. The thread ends with the process."""
        ready = threading.Event()
        box: dict[str, Any] = {}

        def main() -> None:
            loop = self._thread_loop = asyncio.new_event_loop()
            try:
                box["url"] = loop.run_until_complete(self.start())
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
                ready.set()
                return
            ready.set()
            loop.run_forever()

        threading.Thread(target=main, name="styleforge-studio-server", daemon=True).start()
        ready.wait()
        if "error" in box:
            raise box["error"]
        return box["url"]

    def stop_thread(self, timeout: float = 60.0) -> None:
        """Stops a server :meth:`start_in_thread` started (and its studio), and its thread's loop."""
        loop = self._thread_loop
        if loop is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        self._thread_loop = None


def _text(form: Any, key: str) -> str | None:
    """A text field of the form (``None`` when absent)."""
    value = form.get(key)
    if value is None:
        return None
    if isinstance(value, web.FileField):
        return value.file.read().decode("utf-8", errors="replace")
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _start_of(request: web.Request) -> int:
    """Where an event stream starts: after ``Last-Event-ID`` (a reconnection), else ``?from=N``, else 0."""
    last = request.headers.get("Last-Event-ID", "")
    if last.isdigit():
        return int(last) + 1
    start = request.query.get("from", "0")
    return int(start) if start.isdigit() else 0


def _store(item: Any, target: Path) -> None:
    """Writes an uploaded file under ``target`` (a name of the server's making)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as handle:
        shutil.copyfileobj(item.file, handle)


def _probe(path: Path) -> None:
    from ..images import probe_image

    probe_image(path, param="upload")


async def _copy(upload: Upload, folder: Path) -> Upload:
    """An earlier run's upload, copied into a new run's folder (the earlier one may be forgotten)."""
    target = folder / f"{upload.field}-from" / upload.path.parent.name / upload.path.name
    await asyncio.to_thread(_copy_file, upload.path, target)
    return Upload(upload.field, upload.name, target)


def _copy_file(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
