"""Every way a run ends keeps its result: SIGTERM as Ctrl-C in every command (exit 143, the result
written and where it is said), a signal before any work (one line, nothing written), and a SIGINT
that was ignored at start staying ignored.

In-process tests deliver a signal by calling the handler styleforge installed, from a progress
event (:func:`_helpers.deliver`), so the moment it lands is fixed; the subprocess tests send a real
signal from outside once the run has shown it is under way (a checkpoint file), and their
assertions hold whenever after that it lands.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _helpers import child_env, deliver, invoke, stop_signals_as_at_start, write_image, write_samples  # noqa: F401

from styleforge.images import read_metadata

FAST = ["--size", "32", "--weights", "random", "--optimizer", "adam", "--device", "cpu", "--quiet"]


@pytest.fixture(autouse=True)
def default_dispositions(stop_signals_as_at_start: None) -> None:
    """SIGINT and SIGTERM as at a terminal, whatever the runner inherited."""


def _signal_at(
    module: object, name: str, event_type: type, when: object, signum: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Makes the display ``module.name`` deliver ``signum`` on the first event of ``event_type`` for
    which ``when(event)`` holds."""
    real = getattr(module, name).__call__
    sent = []

    def show(self: object, event: object) -> None:
        real(self, event)
        if isinstance(event, event_type) and not sent and when(event):
            sent.append(event)
            deliver(signum)

    monkeypatch.setattr(getattr(module, name), "__call__", show)


# --- transfer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signum, code, words", [(signal.SIGTERM, 143, "stopped by SIGTERM"), (signal.SIGINT, 130, "interrupted")]
)
def test_transfer_keeps_the_best_image_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int, code: int, words: str
) -> None:
    from styleforge.cli import display
    from styleforge.engine import Progress

    samples = write_samples(tmp_path)
    _signal_at(display, "ProgressDisplay", Progress, lambda e: e.iteration == 3, signum, monkeypatch)
    out, history = tmp_path / "out.png", tmp_path / "h.csv"
    result = invoke(
        "transfer",
        samples["content"],
        "--style",
        samples["a"],
        "-o",
        out,
        "--iterations",
        50,
        "--history",
        history,
        *FAST,
    )
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert f"{words}: the best image so far is in {out}" in result.output
    meta = read_metadata(out)
    assert meta["stop_reason"] == "interrupted" and meta["iteration"] <= 3
    assert len(list(csv.DictReader(history.open()))) == 3  # the step it came in finished, no other began


def test_a_signal_before_the_run_starts_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.nets import weights as weights_module
    from styleforge.stylize import run as run_module

    samples = write_samples(tmp_path)
    real = weights_module.resolve_weights

    def resolve_then_sigterm(*args: object, **kwargs: object) -> object:  # while the weights load
        choice = real(*args, **kwargs)
        deliver(signal.SIGTERM)
        return choice

    monkeypatch.setattr(run_module, "resolve_weights", resolve_then_sigterm)
    out = tmp_path / "out.png"
    result = invoke(
        "transfer", samples["content"], "--style", samples["a"], "-o", out, "--iterations", 5, *FAST
    )
    assert result.exit_code == 143, result.output
    assert result.output.splitlines() == [
        "stopped by SIGTERM before anything was finished; nothing was written"
    ]
    assert not out.exists()


def test_transfer_of_many_images_stops_on_sigterm_keeping_the_finished_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.cli import display
    from styleforge.engine import Progress

    samples = write_samples(tmp_path)
    contents = [write_image(tmp_path / "in" / f"{n}.png", (40, 32), seed=i) for i, n in enumerate("abc")]
    seen: list[int] = []

    def second_image(event: Progress) -> bool:
        seen.append(event.iteration)
        return len(seen) == 5  # the second image's second iteration (3 each)

    _signal_at(display, "ProgressDisplay", Progress, second_image, signal.SIGTERM, monkeypatch)
    out = tmp_path / "out"
    result = invoke("transfer", *contents, "--style", samples["a"], "-o", out, "--iterations", 3, *FAST)
    assert result.exit_code == 143, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]  # c never started
    assert read_metadata(out / "b.png")["stop_reason"] == "interrupted"
    assert (
        f"stopped by SIGTERM: the best image so far of {contents[1]} is in {out / 'b.png'}" in result.output
    )


def _run_until(args: list[str], ready: Path, **popen: object) -> subprocess.Popen:
    """Starts ``python -m styleforge ARGS`` and returns once ``ready`` exists (the run is under way)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "styleforge", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        **popen,
    )
    deadline = time.monotonic() + 300  # a guard against a hung run, not a measurement
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the run never reached {ready.name}: {proc.communicate()}")
        time.sleep(0.1)
    return proc


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=300)
    finally:
        proc.kill()  # never leave a run behind


def test_a_real_sigterm_from_outside_keeps_the_best_image(tmp_path: Path) -> None:
    """``timeout``, ``kill`` and ``docker stop`` send SIGTERM to the process: the run ends as a Ctrl-C
    would, with exit code 143."""
    samples = write_samples(tmp_path)
    out = tmp_path / "out.png"
    proc = _run_until(
        [
            "transfer",
            str(samples["content"]),
            "--style",
            str(samples["a"]),
            "-o",
            str(out),
            "--iterations",
            "100000",
            "--checkpoint-every",
            "1",
            *FAST,
        ],
        tmp_path / "out_0002.png",
        preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL),
    )
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = _finish(proc)
    assert proc.returncode == 143, stderr
    assert f"stopped by SIGTERM: the best image so far is in {out}" in stderr and str(out) in stdout
    assert read_metadata(out)["stop_reason"] == "interrupted"


def test_a_sigint_ignored_at_start_stays_ignored(tmp_path: Path) -> None:
    """A run started in the background of a script (``cmd &``, ``nohup cmd &``) ignores SIGINT: it
    keeps doing so, and SIGTERM still stops it cleanly. (Both signals are pending together when the
    handlers run, SIGINT first: had it been handled, the exit code would be 130.)"""
    samples = write_samples(tmp_path)
    out = tmp_path / "out.png"

    def background() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    proc = _run_until(
        [
            "transfer",
            str(samples["content"]),
            "--style",
            str(samples["a"]),
            "-o",
            str(out),
            "--iterations",
            "100000",
            "--checkpoint-every",
            "1",
            *FAST,
        ],
        tmp_path / "out_0002.png",
        preexec_fn=background,
    )
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = _finish(proc)
    assert proc.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and read_metadata(out)["stop_reason"] == "interrupted"


def test_an_ignored_sigint_stays_ignored_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from styleforge.cli import display
    from styleforge.engine import Progress

    samples = write_samples(tmp_path)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handlers: list[object] = []
    real = display.ProgressDisplay.__call__

    def show(self: object, event: object) -> None:
        real(self, event)
        if isinstance(event, Progress):
            handlers.append(signal.getsignal(signal.SIGINT))
            deliver(signal.SIGINT)  # ignored: nothing happens

    monkeypatch.setattr(display.ProgressDisplay, "__call__", show)
    out = tmp_path / "out.png"
    result = invoke(
        "transfer", samples["content"], "--style", samples["a"], "-o", out, "--iterations", 4, *FAST
    )
    assert result.exit_code == 0, result.output
    assert read_metadata(out)["stop_reason"] == "completed"
    assert handlers and all(h == signal.SIG_IGN for h in handlers)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN


# --- make-dataset, score, sweep -------------------------------------------------------------------


def test_make_dataset_lists_the_images_it_finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from styleforge.attributes import synthetic

    real, made = synthetic.make_image, []

    def make_image(*args: object, **kwargs: object) -> object:
        made.append(1)
        if len(made) == 3:
            deliver(signal.SIGTERM)  # while the third picture is drawn: it is still written
        return real(*args, **kwargs)

    monkeypatch.setattr(synthetic, "make_image", make_image)
    result = invoke("make-dataset", tmp_path / "set", "--count", 10, "--size", 32)
    assert result.exit_code == 143, result.output
    rows = list(csv.DictReader((tmp_path / "set" / "labels.csv").open()))
    assert [r["image"] for r in rows] == ["images/0000.png", "images/0001.png", "images/0002.png"]
    assert sorted(p.name for p in (tmp_path / "set" / "images").iterdir()) == [
        "0000.png",
        "0001.png",
        "0002.png",
    ]
    assert (
        f"stopped by SIGTERM: 3 of 10 images were written; {tmp_path / 'set' / 'labels.csv'} lists them"
        in result.output
    )


def test_score_keeps_the_scores_so_far(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from styleforge.attributes import score as score_module
    from styleforge.attributes.synthetic import make_dataset

    data = make_dataset(tmp_path / "data", count=8, seed=0, size=32).parent
    run = tmp_path / "run"
    trained = invoke(
        "train-attrs",
        "--data",
        data,
        "-o",
        run,
        "--backbone",
        "resnet18",
        "--weights",
        "random",
        "--size",
        "32",
        "--epochs",
        1,
        "--device",
        "cpu",
        "--workers",
        0,
        "--quiet",
    )
    assert trained.exit_code == 0, trained.output
    real, read = score_module.load_image, []

    def load_image(*args: object, **kwargs: object) -> object:
        read.append(1)
        if len(read) == 3:
            deliver(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(score_module, "load_image", load_image)
    out = tmp_path / "scores.csv"
    result = invoke("score", run, data / "images", "-o", out, "--batch-size", 2)
    assert result.exit_code == 143, result.output
    assert len(list(csv.DictReader(out.open()))) == 3  # the image being read when it came is scored too
    assert "stopped by SIGTERM: the scores of the first 3 image(s) were kept" in result.output


def test_a_sweep_passes_sigterm_on_and_names_the_cells_it_did_not_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge import sweep as sweep_module

    samples = write_samples(tmp_path)
    real, started = sweep_module.run_one, []

    def run_one(command, cell, out_dir, collect, **kwargs):
        def begun(proc: subprocess.Popen) -> None:  # the sweep gets SIGTERM once the first cell is under way
            kwargs["started"](proc)
            started.append(proc)
            if len(started) == 1:
                checkpoint = Path(out_dir) / "cells" / cell.name / "out_0001.png"
                deadline = time.monotonic() + 300  # a guard against a hung cell, not a measurement
                while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                deliver(signal.SIGTERM)

        return real(command, cell, out_dir, collect, **{**kwargs, "started": begun})

    monkeypatch.setattr(sweep_module, "run_one", run_one)
    out = tmp_path / "sweep"
    result = invoke(
        "sweep",
        "transfer",
        samples["content"],
        "--style",
        samples["a"],
        "--size",
        "32",
        "--iterations",
        "100000",
        "--weights",
        "random",
        "--optimizer",
        "adam",
        "--checkpoint-every",
        "1",
        "--grid",
        "content-weight=1,2,3",
        "-o",
        out,
    )
    assert result.exit_code == 143, result.output
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [r["status"] for r in rows] == ["interrupted", "not run", "not run"]
    assert len(started) == 1
    kept = out / "cells" / rows[0]["cell"] / "out.png"
    assert read_metadata(kept)["stop_reason"] == "interrupted"  # the cell kept its best image
    assert "its best result so far is kept" in rows[0]["error"]
    assert "stopped by SIGTERM: 3 of 3 cells did not finish" in result.output


def test_a_signal_before_the_first_iteration_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the run prepares its objective (the style statistics) it listens already; stopped there,
    it has no image better than the content, and writes none."""
    from styleforge.stylize import run as run_module

    samples = write_samples(tmp_path)
    real = run_module.Stylizer._objective

    def objective_then_sigterm(self, *args, **kwargs):
        built = real(self, *args, **kwargs)
        deliver(signal.SIGTERM)
        return built

    monkeypatch.setattr(run_module.Stylizer, "_objective", objective_then_sigterm)
    out = tmp_path / "out.png"
    result = invoke(
        "transfer", samples["content"], "--style", samples["a"], "-o", out, "--iterations", 5, *FAST
    )
    assert result.exit_code == 143, result.output
    assert "stopped by SIGTERM before the first iteration; nothing was written" in result.output
    assert not out.exists()
