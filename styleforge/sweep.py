"""Parameter sweeps: run every combination of a grid of options of a styleforge command.

A cell is one ordinary ``styleforge <command> ...`` run, in its own process, with the sweep's base
arguments plus one value per grid axis, writing into ``SWEEP_DIR/cells/<name>/``. Running cells as
the real command keeps one code path (parsing, validation, defaults, outputs) and isolates failures:
a failed cell is recorded with its error and the sweep goes on. A cell whose ``cell.json`` exists
and records the same arguments is finished and is skipped when the sweep runs again.

Where cells run: ``jobs`` local processes (default), or Ray tasks (``backend="ray"``) on the cluster
``RAY_ADDRESS`` names, or a local Ray instance when none does. Local cells share the machine: each
gets ``cores // jobs`` threads (``OMP_NUM_THREADS``, unless the environment sets it) and counts on
its share of the memory (:data:`~styleforge.machine.PROCESSES_ENV`). A Ctrl-C or SIGTERM sent to the
sweep is passed on to the cells running (each keeps its best result, as a run of its own would) and
no further cell starts.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import InvalidParameter, ResourceError, StyleforgeError, choice_error
from .files import write_atomic
from .machine import PROCESSES_ENV, sharing_processes, usable_cores
from .signals import STOP_SIGNALS, Interrupt, exit_code_of, stopped_words, watch

__all__ = [
    "Axis",
    "Cell",
    "CellResult",
    "BACKENDS",
    "STATUSES",
    "cell_environment",
    "connect_ray",
    "parse_grid",
    "plan_cells",
    "run_cells",
    "write_results",
]

BACKENDS = ("local", "ray")


@dataclass(frozen=True)
class Axis:
    """One ``--grid NAME=V1,V2,...`` axis.

    Attributes:
        name: The command's long option name without dashes (``content-weight``), or a sweep-level
            alias the command understands.
        values: The values, as the command line would spell them. For an option that may be
            repeated (``style``, ``optimizer``), ``+`` joins the repeats of one value
            (``a.jpg:0.75+b.jpg:0.25``).
    """

    name: str
    values: tuple[str, ...]


def parse_grid(items: Sequence[str], options: Mapping[str, bool]) -> list[Axis]:
    """Parses ``NAME=V1,V2,...`` items.

    Values are split on ``,``; when a value itself needs commas (``style-layers``), separate the
    values with ``;`` instead (``style-layers=relu1_1,relu2_1;relu3_1``). An option that takes
    ``KEY=VALUE`` (kind ``keyed``) is swept one key at a time: ``loss-weight.categorical=1,0.7``.

    Args:
        items: The ``--grid`` arguments.
        options: The command's option names (without dashes) → ``single``, ``multiple`` (may
            repeat) or ``keyed`` (repeatable ``KEY=VALUE``).

    Raises:
        InvalidParameter: Malformed item, unknown option (valid ones listed), empty or repeated
            values, or an axis given twice.
    """
    axes: list[Axis] = []
    for item in items:
        name, sep, rest = str(item).partition("=")
        name = name.strip().lstrip("-")
        if not sep or not name:
            raise InvalidParameter("--grid", item, "NAME=V1,V2,... (e.g. content-weight=1,5,20)")
        option, dot, key = name.partition(".")
        if option not in options or bool(dot) != (options[option] == "keyed") or (dot and not key):
            valid = sorted(f"{n}.KEY" if kind == "keyed" else n for n, kind in options.items())
            raise choice_error("--grid", name, valid)
        values = tuple(v.strip() for v in rest.split(";" if ";" in rest else ","))
        if not values or any(not v for v in values):
            raise InvalidParameter("--grid", item, f"non-empty values for {name}, e.g. {name}=a,b")
        if len(set(values)) != len(values):
            raise InvalidParameter("--grid", item, f"distinct values for {name}")
        if any(a.name == name for a in axes):
            raise InvalidParameter("--grid", item, f"each option at most once ({name} is already an axis)")
        axes.append(Axis(name, values))
    if not axes:
        raise InvalidParameter("--grid", "(none)", "at least one NAME=V1,V2,... axis")
    return axes


@dataclass(frozen=True)
class Cell:
    """One combination of the grid.

    Attributes:
        index: 0-based position in row-major order of the axes.
        settings: Axis name → value.
        name: Folder name under ``cells/`` (readable and unique).
        args: The command-line arguments of this cell (base arguments + axis flags + outputs).
    """

    index: int
    settings: dict[str, str]
    name: str
    args: tuple[str, ...]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text)[:60]


def plan_cells(
    axes: Sequence[Axis],
    base_args: Sequence[str],
    options: Mapping[str, bool],
    out_dir: Path,
    outputs: Callable[[Path], list[str]],
) -> list[Cell]:
    """Every combination of the axes, in row-major order (the last axis varies fastest).

    Args:
        axes: The grid.
        base_args: Arguments shared by every cell.
        options: As for :func:`parse_grid`.
        out_dir: The sweep folder.
        outputs: Cell folder → the output arguments of the command (``["-o", ".../out.png"]``).
    """
    cells = []
    for index, combo in enumerate(itertools.product(*(axis.values for axis in axes))):
        settings = {axis.name: value for axis, value in zip(axes, combo)}
        name = f"{index:03d}-" + "__".join(
            _slug(f"{k}={Path(v).name if '/' in v else v}") for k, v in settings.items()
        )
        args = list(base_args)
        for key, value in settings.items():
            option, _, sub = key.partition(".")
            if sub:
                args += [f"--{option}", f"{sub}={value}"]
            else:
                for part in value.split("+") if options[option] == "multiple" else [value]:
                    args += [f"--{option}", part]
        cells.append(Cell(index, settings, name[:120], tuple(args + outputs(out_dir / "cells" / name[:120]))))
    return cells


#: How a cell ended (:attr:`CellResult.status`).
STATUSES: tuple[str, ...] = ("ok", "failed", "skipped", "interrupted", "not run")


@dataclass
class CellResult:
    """What one cell produced.

    Attributes:
        cell: The cell.
        status: One of :data:`STATUSES`: ``ok``, ``failed``, ``skipped`` (finished by an earlier run),
            ``interrupted`` (a Ctrl-C or SIGTERM stopped it; its best result so far is in its folder)
            or ``not run`` (the sweep was stopped before it started).
        seconds: Wall time of the cell's process.
        error: The cell's last error line when it failed (or how it was stopped).
        metrics: Final figures read from the cell's outputs (loss terms, validation metrics, …).
    """

    cell: Cell
    status: str
    seconds: float = 0.0
    error: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


def _cell_dir(cell: Cell, out_dir: Path) -> Path:
    return out_dir / "cells" / cell.name


def cell_environment(jobs: int, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a cell's process when ``jobs`` run at once: each gets ``cores // jobs``
    threads (``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS``, unless the environment sets them: torch
    reads them at start) and is told how many processes share the machine
    (:data:`~styleforge.machine.PROCESSES_ENV`, times any share this process has itself), which the
    memory checks and the data loaders' default worker count divide by."""
    env = dict(os.environ if environ is None else environ)
    sharing = sharing_processes(env) * max(1, jobs)
    threads = str(max(1, usable_cores() // sharing))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(name, threads)
    env[PROCESSES_ENV] = str(sharing)
    return env


def run_one(
    command: str,
    cell: Cell,
    out_dir: str,
    collect: Callable[[Path], dict[str, Any]],
    *,
    env: Mapping[str, str] | None = None,
    started: Callable[[subprocess.Popen], None] | None = None,
    ended: Callable[[subprocess.Popen], None] | None = None,
) -> CellResult:
    """Runs one cell as ``python -m styleforge COMMAND ARGS`` and records ``cell.json`` on success.

    Args:
        command: The styleforge command.
        cell: The cell.
        out_dir: The sweep folder.
        collect: Cell folder → metrics, after success.
        env: The process's environment (default: this one's).
        started: Called with the process once it runs (to pass signals on to it).
        ended: Called with the process once it has ended.
    """
    folder = _cell_dir(cell, Path(out_dir))
    if folder.exists():  # a failed or outdated attempt: the cell starts clean (the folder is the sweep's own)
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    # Its own session: a Ctrl-C at the terminal reaches the sweep alone, which passes it on once.
    proc = subprocess.Popen(
        [sys.executable, "-m", "styleforge", command, *cell.args, "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=dict(env) if env is not None else None,
        start_new_session=True,
    )
    try:
        if started is not None:
            started(proc)
        stdout, stderr = proc.communicate()
    finally:
        if ended is not None:
            ended(proc)
    seconds = time.perf_counter() - start
    write_atomic(folder / "log.txt", (stdout + stderr).encode())
    if proc.returncode != 0:
        return _unfinished(cell, proc.returncode, stderr, seconds)
    try:
        metrics = collect(folder)
    except (
        StyleforgeError,
        OSError,
        ValueError,
        KeyError,
    ) as exc:  # its outputs are unreadable: this cell failed
        return CellResult(cell, "failed", seconds, f"its results could not be read ({exc})")
    result = CellResult(cell, "ok", seconds, metrics=metrics)
    write_atomic(folder / "cell.json", json.dumps(asdict(result), indent=1, default=str).encode())
    return result


def _unfinished(cell: Cell, returncode: int, stderr: str, seconds: float) -> CellResult:
    """The result of a cell whose process ended with a non-zero ``returncode``: ``interrupted`` by a
    stop signal (after keeping its best result, or before it had one), else ``failed`` with the last
    ``error:`` line of its ``stderr`` (or its last line, or the exit code)."""
    stops = {exit_code_of(signum): signum for signum in (signal.SIGINT, signal.SIGTERM)}
    if returncode in stops:  # it kept its best result so far, as a run of its own does
        return CellResult(
            cell,
            "interrupted",
            seconds,
            f"{stopped_words(stops[returncode])}; its best result so far is kept",
        )
    if -returncode in stops.values():  # the signal came before it could keep anything
        return CellResult(
            cell, "interrupted", seconds, f"{stopped_words(-returncode)} before it had a result"
        )
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("error:", "Error:"))]
    return CellResult(cell, "failed", seconds, (errors or lines or [f"exit code {returncode}"])[-1])


def _finished(cell: Cell, out_dir: Path) -> CellResult | None:
    path = _cell_dir(cell, out_dir) / "cell.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if list(data.get("cell", {}).get("args", [])) != list(cell.args):
        return None  # same settings but other base arguments: the earlier result does not apply
    return CellResult(cell, "skipped", float(data.get("seconds", 0.0)), metrics=data.get("metrics", {}))


def run_cells(
    command: str,
    cells: Sequence[Cell],
    out_dir: Path,
    collect: Callable[[Path], dict[str, Any]],
    *,
    jobs: int = 1,
    backend: str = "local",
    on_result: Callable[[CellResult], None] | None = None,
    interrupt: Interrupt | None = None,
) -> list[CellResult]:
    """Runs the unfinished cells and returns every cell's result, in cell order.

    Args:
        command: The styleforge command (``transfer``).
        cells: From :func:`plan_cells`.
        out_dir: The sweep folder.
        collect: Cell folder → metrics, run in the cell's worker after success.
        jobs: Cells run at once (local backend), each with its share of the cores and memory
            (:func:`cell_environment`).
        backend: ``local`` or ``ray``.
        on_result: Called with each result as it arrives (progress).
        interrupt: The caller's stop flag (:func:`~styleforge.signals.stop_signals`); ``None``: this
            call installs its own. Local cells: a signal is passed on to the running cells, which
            end ``interrupted`` keeping their best result, and the cells not started end ``not run``.
    """
    if backend not in BACKENDS:
        raise choice_error("--backend", backend, BACKENDS)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidParameter("--jobs", jobs, "a whole number >= 1")
    results: dict[int, CellResult] = {}

    def record(result: CellResult) -> None:
        results[result.cell.index] = result
        if on_result:
            on_result(result)

    todo = []
    for cell in cells:
        done = _finished(cell, out_dir)
        if done is not None:
            record(done)
        else:
            todo.append(cell)
    if backend == "ray":
        for result in _run_ray(command, todo, out_dir, collect):
            record(result)
    else:
        _run_local(command, todo, out_dir, collect, jobs, record, interrupt)
    return [results[cell.index] for cell in cells]


def _run_local(
    command: str,
    cells: Sequence[Cell],
    out_dir: Path,
    collect: Callable[[Path], dict[str, Any]],
    jobs: int,
    record: Callable[[CellResult], None],
    interrupt: Interrupt | None,
) -> None:
    """Runs ``cells`` as ``jobs`` processes at a time and passes each result to ``record``, in cell
    order. A stop signal is passed on to the running cells (they keep their best result); the cells
    not started then end ``not run``."""
    env = cell_environment(jobs)
    running: set[subprocess.Popen] = set()

    def forward(signum: int) -> None:  # inside the signal handler: quick
        for proc in list(running):
            with contextlib.suppress(ProcessLookupError, OSError):
                proc.send_signal(signum)

    def one(cell: Cell) -> CellResult:
        if flag.requested:
            return CellResult(cell, "not run", error=f"{stopped_words(flag.signum)} before it started")
        return run_one(command, cell, str(out_dir), collect, env=env, started=started, ended=running.discard)

    def started(proc: subprocess.Popen) -> None:
        running.add(proc)
        if flag.requested:  # the signal came while it was starting: it stops too
            proc.send_signal(flag.signum or signal.SIGINT)

    with watch(interrupt) as flag:
        flag.on_request.append(forward)
        try:
            # Threads only wait on the cells' processes; the work happens in those processes.
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                futures = [pool.submit(one, cell) for cell in cells]
                for future in futures:
                    record(future.result())
        finally:
            flag.on_request.remove(forward)


def connect_ray() -> tuple[Any, bool]:
    """Ray, connected: to the cluster ``RAY_ADDRESS`` names, else to a local instance started here; a
    connection this process has already made is used as it is.

    ``ray.init`` replaces the SIGTERM handler with an exit; the stop signals' handlers in place
    before it (:func:`~styleforge.signals.stop_signals`) are put back, so that SIGTERM still stops a
    run keeping its results.

    Returns:
        The ``ray`` module, and whether this call connected it (the caller may then shut it down).

    Raises:
        ResourceError: Ray is not installed (one line, naming the extra to install).
    """
    try:
        import ray
    except ImportError:
        raise ResourceError("--backend ray: Ray is not installed; pip install 'styleforge[ray]'") from None
    if ray.is_initialized():
        return ray, False
    main = threading.current_thread() is threading.main_thread()
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} if main else {}
    try:
        # RAY_ADDRESS (if set) names an existing cluster; otherwise a local instance starts.
        ray.init(address=os.environ.get("RAY_ADDRESS") or None, ignore_reinit_error=True, log_to_driver=False)
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)
    return ray, True


def _run_ray(
    command: str, cells: Sequence[Cell], out_dir: Path, collect: Callable[[Path], dict[str, Any]]
) -> list[CellResult]:
    ray, _ = connect_ray()
    task = ray.remote(run_one)
    return ray.get([task.remote(command, cell, str(out_dir), collect) for cell in cells])


def write_results(path: Path, axes: Sequence[Axis], results: Sequence[CellResult]) -> Path:
    """Writes ``results.csv``: one row per cell (settings, status, seconds, metrics, error)."""
    metric_keys: list[str] = []
    for result in results:
        metric_keys += [k for k in result.metrics if k not in metric_keys]
    columns = ["cell", *(a.name for a in axes), "status", "seconds", *metric_keys, "error"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow(
            {
                "cell": r.cell.name,
                **r.cell.settings,
                "status": r.status,
                "seconds": f"{r.seconds:.2f}",
                **r.metrics,
                "error": r.error,
            }
        )
    return write_atomic(path, text.getvalue().encode())
