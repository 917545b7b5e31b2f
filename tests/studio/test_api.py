"""The studio's JSON API through aiohttp's test client: a run from upload to PNG, its live events,
Stop keeping the best picture, the queue, every refusal (options, pictures, paths, sizes, origins),
re-running from an earlier run, and the feed-forward hook."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _studio_helpers import (
    ENDLESS,
    QUICK,
    create,
    error_of,
    run_form,
    status,
    wait_for,
    wait_state,
    with_client,
)
from PIL import Image

from styleforge.images import read_metadata


def _png_metadata(data: bytes, folder: Path) -> dict:
    path = folder / "downloaded.png"
    path.write_bytes(data)
    meta = read_metadata(path)
    assert meta is not None
    return meta


async def _events(client, run_id: str, headers: dict | None = None) -> list[tuple[int, dict]]:
    """The whole event stream of a run, to its end: (id, event) pairs."""
    out, current = [], None
    async with client.get(f"/api/runs/{run_id}/events", headers=headers or {}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("id: "):
                current = int(line[4:])
            elif line.startswith("data: "):
                out.append((current, json.loads(line[6:])))
    return out


def test_a_run_from_upload_to_png_with_its_events(images: dict[str, Path], tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        run_id = await create(client, run_form(images, QUICK, blend=[3, 1]))
        events = await _events(client, run_id)
        kinds = [e["type"] for _, e in events]
        assert [i for i, _ in events] == list(range(len(events)))  # ids count every event, for reconnection
        assert kinds[0] == "state" and events[0][1]["state"] == "queued"
        assert kinds.count("stage") == 1 and "image" in kinds
        progress = [e for _, e in events if e["type"] == "progress"]
        assert [e["iteration"] for e in progress] == list(range(1, 7))
        assert all(e["total"] == 6 for e in progress)
        terms = set(progress[0]["losses"])
        assert {"total", "content", "style.a", "style.b", "style.a.raw"} <= terms
        assert events[-1][1]["type"] == "state" and events[-1][1]["state"] == "done"

        final = await status(client, run_id)
        assert final["state"] == "done" and final["error"] is None
        assert final["iteration"] == final["total"] == 6
        assert final["losses"] == progress[-1]["losses"]
        assert final["content"] == "content.png" and final["styles"] == ["a.png", "b.png"]
        assert "iteration" in final["detail"]

        response = await client.get(f"/api/runs/{run_id}/image?download=1")
        assert response.status == 200 and response.content_type == "image/png"
        assert 'filename="content-styleforge-' in response.headers["Content-Disposition"]
        data = await response.read()
        assert Image.open(io.BytesIO(data)).size == (32, 21)
        meta = _png_metadata(data, tmp_path)
        # as styleforge transfer writes it, with the client's names: --from-image re-runs it beside them
        assert meta["command"] == "transfer" and meta["content"] == "content.png"
        assert meta["styles"] == ["a.png:3", "b.png:1"]
        assert meta["blend"] == {"style.a": 0.75, "style.b": 0.25}
        assert meta["config"]["size"] == 32 and meta["config"]["weights"] == "random"
        assert meta["stop_reason"] == "completed" and meta["studio"] == {"run": run_id}

        # A finished run's stream has nothing more after its last event: 204 stops EventSource.
        last = events[-1][0]
        response = await client.get(f"/api/runs/{run_id}/events", headers={"Last-Event-ID": str(last)})
        assert response.status == 204
        resumed = await _events(client, run_id, {"Last-Event-ID": str(last - 2)})
        assert resumed == events[-2:]

        listed = await (await client.get("/api/runs")).json()
        assert [r["id"] for r in listed] == [run_id]

    with_client(check, tmp_path / "studio")


def test_stop_keeps_the_best_picture_so_far(images: dict[str, Path], tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        run_id = await create(client, run_form(images, ENDLESS))
        await wait_for(client, run_id, lambda s: s["iteration"] >= 3, "iteration 3")
        response = await client.post(f"/api/runs/{run_id}/stop")
        assert response.status == 202
        final = await wait_state(client, run_id, "done", "stopped", "failed")
        assert final["state"] == "stopped", final
        assert "interrupted" in final["detail"] and 3 <= final["iteration"] < final["total"]
        data = await (await client.get(f"/api/runs/{run_id}/image")).read()
        meta = _png_metadata(data, tmp_path)
        assert meta["stop_reason"] == "interrupted"
        assert 1 <= meta["iteration"] <= final["iteration"]
        # Stopping again changes nothing
        assert (await client.post(f"/api/runs/{run_id}/stop")).status == 202
        assert (await status(client, run_id))["state"] == "stopped"

    with_client(check, tmp_path / "studio")


def test_one_run_at_a_time_the_others_wait_in_line(images: dict[str, Path], tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        first = await create(client, run_form(images, ENDLESS))
        second = await create(client, run_form(images, QUICK))
        third = await create(client, run_form(images, QUICK))
        await wait_state(client, first, "running")
        assert (await status(client, second))["state"] == "queued"
        assert (await status(client, second))["position"] == 1
        assert (await status(client, third))["position"] == 2
        # a queued run that is stopped never starts, and has no picture
        await client.post(f"/api/runs/{third}/stop")
        assert (await status(client, third))["state"] == "stopped"
        response = await client.get(f"/api/runs/{third}/image")
        assert (await error_of(response, 404))[0] is None
        assert (await status(client, second))["state"] == "queued"  # still waiting for the first
        await client.post(f"/api/runs/{first}/stop")
        assert (await wait_state(client, second, "done", "failed"))["state"] == "done"
        assert (await status(client, first))["state"] == "stopped"
        assert (await status(client, third))["iteration"] == 0

    with_client(check, tmp_path / "studio")


def test_bad_options_are_refused_naming_the_field(images: dict[str, Path], tmp_path: Path) -> None:
    cases = [
        ({"size": 0}, "size", "size: 0 is not valid; expected a whole number >= 1"),
        ({"size": "big"}, "size", "size: 'big' is not valid; expected a whole number"),
        ({"iterations": 2.5}, "iterations", "iterations: 2.5 is not valid"),
        ({"preserve_colors": "yes"}, "preserve_colors", "expected true or false"),
        ({"style_loss": "grma"}, "style_loss", "did you mean 'gram'?"),
        ({"optimizer": ["adam:0"]}, "optimizer", "optimizer"),
        ({"itrations": 5}, "options", "did you mean 'iterations'?"),
        ({"init": "/etc/passwd"}, "init", "the studio reads no file on the server"),
        ({"weights": "/tmp/vgg19.pth"}, "weights", "one of: auto, imagenet, hed, random"),
        ({"style_masks": ["1=/etc/mask.png"]}, "style_masks", "mask_N"),
        ({"attrs_model": "/srv/runs/cat"}, "attrs_model", "styleforge transfer --attrs-model"),
        ([1, 2], "options", "a JSON object"),
    ]

    async def check(client, studio) -> None:
        for options, field, words in cases:
            response = await client.post("/api/runs", data=run_form(images, options))
            got_field, message = await error_of(response, 400)
            assert got_field == field, (options, message)
            assert message.startswith(f"{field}: ") and words in message, (options, message)
        response = await client.post("/api/runs", data=run_form(images, "{size: 3"))
        assert (await error_of(response, 400))[0] == "options"
        assert studio.runs() == [] and not any((tmp_path / "studio").iterdir())  # nothing kept of them

    with_client(check, tmp_path / "studio")


def test_bad_pictures_and_fields_are_refused_naming_the_field(
    images: dict[str, Path], tmp_path: Path
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")

    async def check(client, studio) -> None:
        form = run_form(images, QUICK, styles=("a",))
        form.add_field("style", text.read_bytes(), filename="notes.png")
        field, message = await error_of(await client.post("/api/runs", data=form), 400)
        assert field == "style" and message.startswith("style: 'notes.png' is not an image")
        assert str(tmp_path) not in message  # the client's name, never the server's path

        form = run_form(images, QUICK, styles=())
        field, message = await error_of(await client.post("/api/runs", data=form), 400)
        assert field == "style" and "one or more picture files" in message

        form = run_form(images, QUICK, content=False)
        field, message = await error_of(await client.post("/api/runs", data=form), 400)
        assert field == "content" and "one picture file" in message

        for extra, field in [
            ({"blend": [1]}, "blend"),
            ({"blend": [1, -1]}, "blend"),
            ({"mask_3": images["a"]}, "mask_3"),
            ({"pictures": "x"}, "pictures"),
            ({"model": "fast"}, "model"),
            ({"from": "99"}, "from"),
        ]:
            response = await client.post("/api/runs", data=run_form(images, QUICK, **extra))
            assert (await error_of(response, 400))[0] == field, extra

        form = run_form(images, QUICK, content=False)
        form.add_field("content", "just text")
        field, message = await error_of(await client.post("/api/runs", data=form), 400)
        assert field == "content" and "a picture file (a file upload, not text)" in message

        response = await client.post("/api/runs", json={"size": 32})
        assert (await error_of(response, 415))[0] is None
        assert studio.runs() == []

    with_client(check, tmp_path / "studio")


def test_a_run_that_fails_says_why_naming_the_field(images: dict[str, Path], tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        run_id = await create(client, run_form(images, {**QUICK, "size": 8}))
        final = await wait_state(client, run_id, "done", "stopped", "failed")
        assert final["state"] == "failed" and final["field"] == "size"
        assert final["error"].startswith("size: 8 is not valid; expected a size at which")
        # the studio goes on
        assert (await wait_state(client, await create(client, run_form(images, QUICK)), "done", "failed"))[
            "state"
        ] == "done"

    with_client(check, tmp_path / "studio")


def test_uploads_cannot_reach_outside_the_run_folder(images: dict[str, Path], tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        # the raw name, as a client other than a browser may send it (aiohttp's own quotes the slashes)
        boundary = "b0undary"
        parts = [
            ("options", None, json.dumps(QUICK).encode()),
            ("content", "c.png", images["content"].read_bytes()),
        ]
        parts.append(("style", "../../../outside.png", images["a"].read_bytes()))
        body = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
            + (f'; filename="{filename}"'.encode() if filename else b"")
            + b"\r\n\r\n"
            + data
            + b"\r\n"
            for name, filename, data in parts
        )
        body += f"--{boundary}--\r\n".encode()
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        response = await client.post("/api/runs", data=body, headers=headers)
        assert response.status == 201, await response.text()
        run_id = (await response.json())["id"]
        run = studio.get(run_id)
        root = (tmp_path / "studio").resolve()
        for upload in run.uploads:
            assert upload.path.resolve().is_relative_to(root / f"run-{run_id}")
        assert run.styles[0].path.name == "outside.png" and run.styles[0].name == "../../../outside.png"
        assert not (tmp_path / "outside.png").exists()
        for path in [
            "/static/..%2F..%2Fruns.py",
            "/static/%2e%2e/server.py",
            "/static/index.html/../../server.py",
            f"/api/runs/..%2F{run_id}/image",
            "/api/runs/abc",
            "/api/runs/999",
            "/api/nothing",
        ]:
            response = await client.get(path)
            assert response.status == 404, path
        response = await client.get("/api/runs/999")
        assert (await error_of(response, 404))[0] == "id"
        await wait_state(client, run_id, "done", "failed")

    with_client(check, tmp_path / "studio")


def test_an_upload_past_the_limit_is_413(images: dict[str, Path], tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    Image.effect_noise((200, 200), 64).convert("RGB").save(big)  # ~100 KB of noise: PNG cannot shrink it

    async def check(client, studio) -> None:
        form = run_form(images, QUICK, styles=())
        form.add_field("style", big.read_bytes(), filename="big.png")
        field, message = await error_of(await client.post("/api/runs", data=form), 413)
        assert field is None and "larger than the studio takes" in message

        # No Content-Length (a chunked body): the limit holds while the body is read.
        payload = run_form(images, QUICK, styles=("a", "a", "a"), style=big)()
        writer = _Collect()
        await payload.write(writer)

        async def chunks():
            for start in range(0, len(writer.data), 8192):
                yield writer.data[start : start + 8192]

        headers = {"Content-Type": payload.content_type}
        field, message = await error_of(await client.post("/api/runs", data=chunks(), headers=headers), 413)
        assert "larger than the studio takes" in message
        small = run_form(images, QUICK)
        assert (await client.post("/api/runs", data=small)).status == 201  # under the limit

    with_client(check, tmp_path / "studio", max_upload_bytes=50_000)


class _Collect:
    """A writer that collects what a multipart payload writes."""

    def __init__(self) -> None:
        self.data = b""

    async def write(self, chunk: bytes) -> None:
        self.data += bytes(chunk)


def test_requests_from_other_sites_are_refused(images: dict[str, Path], tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        response = await client.post(
            "/api/runs", data=run_form(images, QUICK), headers={"Origin": "http://evil.example"}
        )
        assert (await error_of(response, 403))[0] == "Origin"
        response = await client.get("/api/runs", headers={"Host": "evil.example"})  # DNS rebinding
        assert (await error_of(response, 403))[0] == "Host"
        own = f"http://{client.host}:{client.port}"
        response = await client.post("/api/runs", data=run_form(images, QUICK), headers={"Origin": own})
        assert response.status == 201
        page = await client.get("/")
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert studio.get("1") is not None and len(studio.runs()) == 1

    with_client(check, tmp_path / "studio")


def test_a_run_from_an_earlier_runs_pictures(images: dict[str, Path], tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        mask = tmp_path / "left.png"
        left = Image.new("L", (48, 32), 0)
        left.paste(255, (0, 0, 24, 32))
        left.save(mask)
        first = await create(client, run_form(images, QUICK, blend=[1, 2], mask_1=mask))
        await wait_state(client, first, "done")
        form = run_form(images, {**QUICK, "content_weight": 3}, content=False, styles=(), **{"from": first})
        again = await create(client, form)
        final = await wait_state(client, again, "done", "failed")
        assert final["state"] == "done", final
        assert final["content"] == "content.png" and final["styles"] == ["a.png", "b.png"]
        assert final["blend"] == [1.0, 2.0] and final["masks"] == {"1": "left.png"}
        assert final["options"]["content_weight"] == 3
        meta = _png_metadata(await (await client.get(f"/api/runs/{again}/image")).read(), tmp_path)
        assert meta["config"]["style_masks"] == ["1=left.png"]
        # its files are its own: the earlier run may be forgotten
        assert all(f"run-{again}" in str(u.path) for u in studio.get(again).uploads)
        # the page shows an earlier run's pictures: each by its field, as sent
        for field, sent in [("content", images["content"]), ("style_2", images["b"]), ("mask_1", mask)]:
            response = await client.get(f"/api/runs/{again}/inputs/{field}")
            assert response.status == 200 and response.content_type == "image/png", field
            assert await response.read() == sent.read_bytes()
        for field in ["style_3", "mask_2", "style_0", "options", "content%2F..%2F..%2Fx"]:
            assert (await client.get(f"/api/runs/{again}/inputs/{field}")).status == 404, field

    with_client(check, tmp_path / "studio")


class _FakeModels:
    """A feed-forward stand-in: its "model" paints the content grey."""

    def models(self) -> list[str]:
        return ["grey"]

    def stylize(self, model, content, styles, config):
        return torch.full((3, 20, 30), 0.5)


def test_the_feed_forward_hook(images: dict[str, Path], tmp_path: Path) -> None:
    async def without(client, studio) -> None:
        assert (await (await client.get("/api/info")).json())["models"] is None

    with_client(without, tmp_path / "a")

    async def check(client, studio) -> None:
        info = await (await client.get("/api/info")).json()
        assert info["models"] == ["grey"]
        response = await client.post("/api/runs", data=run_form(images, QUICK, model="gray"))
        field, message = await error_of(response, 400)
        assert field == "model" and "did you mean 'grey'?" in message
        run_id = await create(client, run_form(images, QUICK, model="grey"))
        final = await wait_state(client, run_id, "done", "failed")
        assert final["state"] == "done" and final["model"] == "grey"
        data = await (await client.get(f"/api/runs/{run_id}/image")).read()
        assert Image.open(io.BytesIO(data)).getpixel((0, 0)) == (128, 128, 128)
        assert _png_metadata(data, tmp_path)["studio"] == {"run": run_id, "model": "grey"}

    with_client(check, tmp_path / "b", studio={"feedforward": _FakeModels()})


def test_the_page_and_its_assets_come_from_the_package(tmp_path: Path) -> None:
    async def check(client, studio) -> None:
        page = await client.get("/")
        html = await page.text()
        assert page.status == 200 and "/static/studio.js" in html and "http" not in html.split("<body>")[1]
        script = await (await client.get("/static/studio.js")).text()
        assert "EventSource" in script and "https://" not in script and "http://" not in script
        assert (await client.get("/static/studio.css")).status == 200
        info = await (await client.get("/api/info")).json()
        assert info["defaults"]["size"] == 512 and "gram" in info["choices"]["style_loss"]
        assert "init" in info["fields"] and "style_masks" not in info["fields"]

    with_client(check, tmp_path / "studio")


def test_a_folder_of_trained_models_runs_through_the_studio(images: dict[str, Path], tmp_path: Path) -> None:
    """``studio --models FOLDER``: the real model files, chosen by name, one pass of the network."""
    from styleforge.errors import InputFileError
    from styleforge.feedforward.model import load_stylizer, save_stylizer
    from styleforge.nets.transformer import TransformerNet
    from styleforge.studio.feedforward import find_feedforward

    save_stylizer(
        tmp_path / "models" / "swirl", TransformerNet(4, 1, seed=2), {"styles": [{"style": "a.png"}]}
    )
    (tmp_path / "models" / "notes").mkdir()  # not a model: not offered
    models = find_feedforward(tmp_path / "models", device="cpu")
    assert find_feedforward(None) is None
    with pytest.raises(InputFileError, match="--models"):
        find_feedforward(tmp_path / "missing")

    async def check(client, studio) -> None:
        assert (await (await client.get("/api/info")).json())["models"] == ["swirl"]
        run_id = await create(client, run_form(images, QUICK, model="swirl"))
        final = await wait_state(client, run_id, "done", "failed")
        assert final["state"] == "done", final
        data = await (await client.get(f"/api/runs/{run_id}/image")).read()
        got = torch.from_numpy(np.array(Image.open(io.BytesIO(data)).convert("RGB"))).permute(2, 0, 1)
        expected = load_stylizer(tmp_path / "models" / "swirl").stylize_image(
            images["content"], size=QUICK["size"]
        )
        assert got.shape[-2:] == expected.image.shape[-2:]
        assert (got.float() / 255 - expected.image).abs().max() <= 1 / 255 + 1e-6

    with_client(check, tmp_path / "studio", studio={"feedforward": models})
