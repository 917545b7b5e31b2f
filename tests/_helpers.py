"""Test helpers: seeded random images written to disk, and CLI invocation checks."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from PIL import Image

from styleforge.config import TransferConfig


def write_image(path: Path, size: tuple[int, int] = (48, 32), seed: int = 0, mode: str = "RGB") -> Path:
    """Writes a seeded random image (width, height) in ``mode`` and returns its path."""
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    data = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    image = Image.fromarray(data[..., 0] if channels == 1 else data, mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def write_samples(folder: Path) -> dict[str, Path]:
    """A content image (48×32) and two style images (40×40), seeded PNGs, keyed content/a/b."""
    return {
        "content": write_image(folder / "content.png", (48, 32), seed=1),
        "a": write_image(folder / "a.png", (40, 40), seed=2),
        "b": write_image(folder / "b.png", (40, 40), seed=3),
    }


def rewrite_metadata(path: Path, metadata: dict) -> None:
    """Replaces the styleforge metadata of the PNG at ``path`` (its pixels kept): a file as an older
    version wrote it."""
    import json

    from PIL import PngImagePlugin

    from styleforge.images import METADATA_KEY

    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, json.dumps(metadata))
    with Image.open(path) as image:
        image.load()
        image.save(path, pnginfo=info)


def invoke(*args: object) -> Result:
    """Runs the styleforge CLI in-process with ``args`` (converted to strings)."""
    from styleforge.cli import cli

    return CliRunner().invoke(cli, [*map(str, args)])


def one_line_error(result: Result, code: int = 2) -> str:
    """Asserts a user-error exit: ``code``, no traceback, exactly one ``error:`` line; returns it."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread, restored afterwards: for folders of tests that run many tiny ops, which
    extra threads only slow down on a busy machine (spin-waiting). A conftest.py opts in by importing it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_video_config(**changes: object) -> TransferConfig:
    """A video's transfer options for tests: seeded random VGG-16, 48 px, Adam x 8 from noise, two style
    layers, on the CPU; ``changes`` override fields."""
    config = TransferConfig(
        weights="random",
        network="vgg16",
        size=48,
        optimizer=("adam",),
        iterations=8,
        init="noise",
        device="cpu",
        content_layers=("relu2_2",),
        style_layers=("relu1_1", "relu2_1"),
    )
    return dataclasses.replace(config, **changes)


#: How far the square of :func:`clip_frames` moves per frame, in pixels (to the right).
STEP = 2


def clip_frames(
    count: int = 8, size: tuple[int, int] = (64, 48), step: int = STEP, seed: int = 0
) -> list[np.ndarray]:
    """A tiny clip: a textured square moving ``step`` px right per frame over a fixed gradient with
    seeded noise, ``count`` frames of (height, width, 3) uint8 at ``size`` (width, height)."""
    w, h = size
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w]
    background = np.stack([xs / w, ys / h, 0.5 + 0 * xs], axis=-1) * 200 + rng.integers(0, 30, size=(h, w, 3))
    square = rng.integers(0, 256, size=(h // 3, h // 3, 3))
    frames = []
    for i in range(count):
        frame = background.copy()
        x0, y0 = 4 + i * step, h // 3
        frame[y0 : y0 + square.shape[0], x0 : x0 + square.shape[1]] = square
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return frames


def write_frames(folder: Path, frames: list[np.ndarray], name: str = "f{}.png") -> list[Path]:
    """Writes ``frames`` as PNGs ``name.format(i)`` (i from 1) into ``folder``; returns the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames, start=1):
        path = folder / name.format(i)
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def stop_signals_as_at_start() -> Iterator[None]:
    """SIGINT and SIGTERM as a process started from a terminal has them (Python's Ctrl-C handler, the
    default action), whatever the test runner inherited (a background job ignores SIGINT), so that
    styleforge installs its handler; restored afterwards. A test module opts in by importing it."""
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    }
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def deliver(signum: int = signal.SIGINT) -> None:
    """Does what the arrival of ``signum`` does at this point of the run: calls the handler installed
    for it, in this thread, now. A real signal sent with ``os.kill`` may be taken by another thread and
    handled later, after the code that should see it ran; this is that handler's effect, without the
    timing. An ignored signal does nothing."""
    handler = signal.getsignal(signum)
    if handler == signal.SIG_IGN:  # an ignored signal does nothing
        return
    assert callable(handler), f"no Python handler for {signal.Signals(signum).name} ({handler!r})"
    handler(signum, None)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a process a test starts: one thread for its torch (the test runner, and
    maybe other tests' processes, use the other cores: more threads than cores would only make
    each of them wait), unbuffered output, and ``extra``."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a process group's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 -m styleforge ARGS`` (2 CPU processes, one thread each, gloo on
    127.0.0.1) in ``cwd``; asserts that it succeeded and returns what it printed."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={free_port()}",
        "-m",
        "styleforge",
        *args,
    ]
    done = subprocess.run(command, cwd=cwd, env=child_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done
