"""``styleforge studio`` and ``transfer --preview`` on the command line: the address line, Ctrl-C, one-line
errors for an address that cannot be had, the warning for a non-local one, a start without torch or the
web framework, the core free of click, and a command-line run shown live and stopped from its page."""

from __future__ import annotations

import ast
import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from _helpers import child_env, invoke, one_line_error, stop_signals_as_at_start  # noqa: F401

import styleforge.studio
from styleforge.engine.events import Progress
from styleforge.images import read_metadata

ROOT = Path(__file__).resolve().parents[2]
STUDIO = Path(styleforge.studio.__file__).parent
TINY = ["--size", "32", "--weights", "random", "--style-loss", "gram", "--optimizer", "adam"]


def _transfer(images: dict[str, Path], out: Path, iterations: int):
    """``styleforge transfer CONTENT --style A -o OUT --preview``, tiny, with seeded random weights."""
    args = [images["content"], "--style", images["a"], "-o", out, *TINY, "--iterations", iterations]
    return invoke("transfer", *args, "--preview")


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def test_the_core_imports_neither_click_nor_the_cli() -> None:
    for path in STUDIO.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        names |= {
            ("." * node.level) + (node.module or "")
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not {n for n in names if n.split(".")[0] == "click" or n.startswith("..cli")}, path
        if path.name != "server.py":  # the web framework is the server's alone
            assert "aiohttp" not in {n.split(".")[0] for n in names}, path


def _cli_in_a_child(code: str) -> list[str]:
    """The lines a fresh Python prints running ``code`` after ``from styleforge.cli import cli`` (and
    click's test runner) were imported: what the command's start imports is its own."""
    start = "import sys; from click.testing import CliRunner\n"
    done = subprocess.run(
        [sys.executable, "-c", start + code], capture_output=True, text=True, env=child_env(), timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split("\n")


def test_help_needs_neither_torch_nor_the_web_framework() -> None:
    lines = _cli_in_a_child(
        "from styleforge.cli import cli\n"
        "for args in (['--help'], ['studio', '--help'], ['transfer', '--help']):\n"
        "    r = CliRunner().invoke(cli, args)\n"
        "    print(r.exit_code, 'studio: http://HOST:PORT/' in r.output, '--preview' in r.output)\n"
        "print(sorted(m for m in ('torch', 'aiohttp', 'numpy') if m in sys.modules))\n"
    )
    assert lines == ["0 False False", "0 True False", "0 False True", "[]"]


def test_without_the_web_framework_the_command_says_how_to_get_it() -> None:
    lines = _cli_in_a_child(
        "sys.modules['aiohttp'] = None  # as if it were not installed\n"
        "from styleforge.cli import cli\n"
        "r = CliRunner().invoke(cli, ['studio', '--no-browser']); print(r.exit_code, r.output.strip())\n"
    )
    assert lines == [
        "1 error: styleforge studio needs the web framework aiohttp: pip install 'styleforge[studio]'"
    ]


def test_studio_prints_its_address_first_and_ends_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "styleforge", "studio", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=ROOT,
    )
    try:
        first = [""]
        reader = threading.Thread(target=lambda: first.__setitem__(0, process.stdout.readline()))
        reader.start()
        reader.join(120)
        match = re.fullmatch(r"studio: (http://127\.0\.0\.1:(\d+)/)\n", first[0])
        assert match, first[0]
        info = _get(match.group(1) + "api/info")
        assert info["preview"] is False and info["models"] is None
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "studio: stopped" in err and "Traceback" not in err and "warning" not in err


def test_a_port_in_use_is_one_line() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(invoke("studio", "--port", port, "--no-browser"))
    assert line.startswith(
        f"error: --port: {port} is not valid; expected a free port, or 0 for any free one ("
    )
    assert "is in use" in line


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (
            ["--host", "192.0.2.1"],
            "error: --host: '192.0.2.1' is not valid; expected an address of this machine",
        ),
        (["--port", "70000"], "error: --port: 70000 is not valid; expected a port number from 0 to 65535"),
    ],
)
def test_an_address_that_cannot_be_had_is_one_line(args: list[str], start: str) -> None:
    assert one_line_error(invoke("studio", *args, "--no-browser")).startswith(start)


def test_a_non_local_address_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    from styleforge.cli.studio import _announce

    _announce("http://0.0.0.0:8765/", "0.0.0.0", browser=False, label="studio")
    out, err = capsys.readouterr()
    assert out == "studio: http://0.0.0.0:8765/\n"
    assert err.startswith("warning: the studio listens on 0.0.0.0, not only on this machine")


def _preview(monkeypatch: pytest.MonkeyPatch, stop_at: int | None = None) -> list[str]:
    """Records the browser's address instead of opening it; with ``stop_at``, presses the page's Stop
    (``POST /api/runs/1/stop``) when the run reaches that iteration. Returns the opened addresses."""
    import styleforge.studio.preview as preview

    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    monkeypatch.delenv("STYLEFORGE_NO_BROWSER", raising=False)
    real = preview.start_preview

    def start(*args, **kwargs):
        url, recorder = real(*args, **kwargs)

        def callback(event) -> None:
            recorder(event)
            if stop_at is not None and isinstance(event, Progress) and event.iteration == stop_at:
                request = urllib.request.Request(url.split("#")[0] + "api/runs/1/stop", method="POST")
                urllib.request.urlopen(request, timeout=30).close()

        return url, callback

    monkeypatch.setattr(preview, "start_preview", start)
    return opened


def test_transfer_preview_shows_the_run_live(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = _preview(monkeypatch)
    out = tmp_path / "out.png"
    result = _transfer(images, out, 4)
    assert result.exit_code == 0, result.output
    match = re.search(r"^preview: (http://127\.0\.0\.1:\d+/)#run=1$", result.output, re.M)
    assert match and opened == [match.group(0)[len("preview: ") :]]
    base = match.group(1)
    run = _get(base + "api/runs/1")  # the server lives as long as the command's process
    assert run["state"] == "done" and run["iteration"] == run["total"] == 4 and run["external"]
    assert run["content"] == str(images["content"])
    with urllib.request.urlopen(base + "api/runs/1/image", timeout=30) as response:
        assert response.headers["Content-Type"] == "image/png"
    request = urllib.request.Request(base + "api/runs", data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 409
    assert read_metadata(out)["stop_reason"] == "completed"


@pytest.mark.usefixtures("stop_signals_as_at_start")
def test_stop_on_the_preview_page_is_ctrl_c(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _preview(monkeypatch, stop_at=3)
    out = tmp_path / "out.png"
    result = _transfer(images, out, 500)
    assert result.exit_code == 130, result.output
    assert f"interrupted: the best image so far is in {out}" in result.output
    meta = read_metadata(out)
    assert meta["stop_reason"] == "interrupted" and meta["iteration"] <= 3


def test_stop_on_the_preview_page_when_signals_were_ignored(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command started with its stop signals ignored (``nohup cmd &``) holds no flag of its own: the
    page's Stop still ends the run, keeping its best image."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _preview(monkeypatch, stop_at=3)
        out = tmp_path / "out.png"
        result = _transfer(images, out, 500)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert result.exit_code == 130, result.output
    assert read_metadata(out)["stop_reason"] == "interrupted"


def test_preview_wants_one_content_image(images: dict[str, Path], tmp_path: Path) -> None:
    result = invoke(
        "transfer", images["content"], images["b"], "--style", images["a"], "-o", tmp_path, "--preview"
    )
    assert "--preview" in one_line_error(result)
