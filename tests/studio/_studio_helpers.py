"""Helpers of the studio's tests: a server over a fresh studio with aiohttp's test client, the run form,
and bounded waits for a run's state (never a timed assert: a wait only bounds how long a test may hang)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from styleforge.studio.runs import Studio
from styleforge.studio.server import StudioServer

#: A run that finishes in a second or two on 2 busy cores: seeded random VGG weights, Gram matrices
#: (the default W2 loss's eigendecompositions cost 0.5 s an evaluation at any size), one scale.
QUICK = {"size": 32, "iterations": 6, "weights": "random", "style_loss": "gram", "optimizer": ["adam"]}
#: A run that goes on until it is stopped.
ENDLESS = {**QUICK, "iterations": 100000}
#: How long a wait may take before the test fails rather than hangs (seconds).
PATIENCE = 180.0

Check = Callable[[TestClient, Studio], Awaitable[None]]


def with_client(check: Check, folder: Path, **server: Any) -> None:
    """Runs ``check(client, studio)`` against a :class:`StudioServer` over a new studio in ``folder``."""

    async def main() -> None:
        studio = Studio(folder, **server.pop("studio", {}))
        app = StudioServer(studio, **server).app()
        try:
            async with TestClient(TestServer(app)) as client:
                await check(client, studio)
        finally:
            await asyncio.to_thread(studio.close)

    asyncio.run(main())


def run_form(
    images: dict[str, Path],
    options: Any = None,
    *,
    content: bool = True,
    styles: tuple[str, ...] = ("a", "b"),
    **fields: Any,
) -> FormData:
    """The multipart form of ``POST /api/runs``: the content (unless not ``content``), the styles (keys
    of ``images``), the options as JSON, and any other field (a Path is uploaded as a file)."""
    form = FormData()
    if content:
        form.add_field("content", images["content"].read_bytes(), filename=images["content"].name)
    for key in styles:
        form.add_field("style", images[key].read_bytes(), filename=images[key].name)
    if options is not None:
        form.add_field("options", options if isinstance(options, str) else json.dumps(options))
    for name, value in fields.items():
        if isinstance(value, Path):
            form.add_field(name, value.read_bytes(), filename=value.name)
        else:
            form.add_field(name, value if isinstance(value, str) else json.dumps(value))
    return form


async def create(client: TestClient, form: FormData) -> str:
    """Posts a run; asserts 201 and returns its id."""
    response = await client.post("/api/runs", data=form)
    body = await response.json()
    assert response.status == 201, body
    assert response.headers["Location"] == f"/api/runs/{body['id']}"
    return body["id"]


async def status(client: TestClient, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/runs/{run_id}")
    assert response.status == 200
    return await response.json()


async def wait_for(
    client: TestClient, run_id: str, done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """Polls the run's status until ``done(status)``; fails after :data:`PATIENCE` seconds."""
    deadline = time.monotonic() + PATIENCE
    while True:
        current = await status(client, run_id)
        if done(current):
            return current
        assert time.monotonic() < deadline, f"run {run_id} never reached {what}: {current}"
        await asyncio.sleep(0.05)


async def wait_state(client: TestClient, run_id: str, *states: str) -> dict[str, Any]:
    return await wait_for(client, run_id, lambda s: s["state"] in states, " or ".join(states))


async def error_of(response: Any, status: int) -> tuple[str | None, str]:
    """Asserts an error answer: ``status``, a JSON body with one line; returns (field, message)."""
    body = await response.json()
    assert response.status == status, body
    assert isinstance(body["error"], str) and "\n" not in body["error"], body
    return body["field"], body["error"]
