"""Sweeps: grid parsing, planning, running cells, resuming, failures, sheets and the Ray backend."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from _helpers import stop_signals_as_at_start  # noqa: F401  (a fixture)
from click.testing import CliRunner
from PIL import Image

from styleforge.cli import cli
from styleforge.errors import InvalidParameter
from styleforge.sweep import Axis, parse_grid, plan_cells

OPTIONS = {
    "content-weight": "single",
    "pooling": "single",
    "style": "multiple",
    "style-layers": "single",
    "optimizer": "multiple",
    "loss-weight": "keyed",
}
BASE = ["--size", "32", "--iterations", "3", "--optimizer", "adam", "--weights", "random"]


def test_parse_grid() -> None:
    axes = parse_grid(
        ["content-weight=1,5,20", "--pooling=max,avg", "style-layers=relu1_1,relu2_1;relu3_1"], OPTIONS
    )
    assert axes == [
        Axis("content-weight", ("1", "5", "20")),
        Axis("pooling", ("max", "avg")),
        Axis("style-layers", ("relu1_1,relu2_1", "relu3_1")),
    ]


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("contentweight=1,2", "content-weight"),
        ("loss-weight=1,2", "loss-weight.KEY"),
        ("pooling.x=1", "pooling"),
        ("pooling", "NAME=V1,V2"),
        ("pooling=max,", "non-empty"),
        ("pooling=max,max", "distinct"),
        ("=1", "NAME=V1,V2"),
    ],
)
def test_parse_grid_errors(item: str, needle: str) -> None:
    with pytest.raises(InvalidParameter, match="--grid") as info:
        parse_grid([item], OPTIONS)
    assert needle in str(info.value)


def test_keyed_axes_become_key_value_flags(tmp_path: Path) -> None:
    axes = parse_grid(["loss-weight.categorical=1,0.7"], OPTIONS)
    cells = plan_cells(axes, [], OPTIONS, tmp_path, lambda d: [])
    assert [c.args for c in cells] == [
        ("--loss-weight", "categorical=1"),
        ("--loss-weight", "categorical=0.7"),
    ]


def test_an_axis_at_most_once_and_at_least_one() -> None:
    with pytest.raises(InvalidParameter, match="at most once"):
        parse_grid(["pooling=max", "pooling=avg"], OPTIONS)
    with pytest.raises(InvalidParameter, match="at least one"):
        parse_grid([], OPTIONS)


def test_plan_cells_expands_repeats_in_row_major_order(tmp_path: Path) -> None:
    axes = parse_grid(["style=a.jpg:0.75+b.jpg:0.25,a.jpg", "pooling=max,avg"], OPTIONS)
    cells = plan_cells(axes, ["c.jpg"], OPTIONS, tmp_path, lambda d: ["-o", str(d / "out.png")])
    assert len(cells) == 4 and [c.settings["pooling"] for c in cells] == ["max", "avg", "max", "avg"]
    first = cells[0].args
    assert first[:5] == ("c.jpg", "--style", "a.jpg:0.75", "--style", "b.jpg:0.25")
    assert first[5:7] == ("--pooling", "max") and first[-2] == "-o"
    assert len({c.name for c in cells}) == 4


def _results(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open()))


def _truncated_png(path: Path) -> Path:
    """A PNG whose header is whole and whose pixels are cut off: found only when it is decoded."""
    Image.new("RGB", (48, 32), (200, 30, 60)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_sweep_runs_records_failures_and_resumes(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    damaged = _truncated_png(tmp_path / "damaged.png")
    args = [
        "sweep",
        "transfer",
        str(images["content"]),
        "--style",
        str(images["a"]),
        *BASE,
        "--grid",
        "content-weight=1,3",
        "--grid",
        f"init=content,{damaged}",
        "-o",
        str(out),
        "--jobs",
        "2",
    ]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 1, first.output  # some cells failed: the sweep says so
    rows = _results(out / "results.csv")
    assert len(rows) == 4
    assert [r["status"] for r in rows] == ["ok", "failed", "ok", "failed"]
    assert all("--init" in r["error"] for r in rows if r["status"] == "failed")
    failed_line = [line for line in first.output.splitlines() if line.startswith("error:")]
    assert len(failed_line) == 1 and failed_line[0].startswith("error: 2 of 4 cells failed: ")
    assert (
        rows[1]["cell"] in failed_line[0]
        and rows[3]["cell"] in failed_line[0]
        and rows[0]["cell"] not in failed_line[0]
    )
    assert float(rows[2]["content"]) > float(rows[0]["content"])  # the weight reached the cell
    sheet = Image.open(out / "sheet.png")
    one = Image.open(out / "cells" / rows[0]["cell"] / "out.png")
    assert one.size == (32, 21)
    assert sheet.size[0] > 2 * 160 and sheet.size[1] > 2 * 100  # 2 × 2 cells of 160 px (long side)
    assert (out / "curves.png").is_file()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1
    assert again.output.count("skipped (finished earlier)") == 2
    assert [r["status"] for r in _results(out / "results.csv")] == ["skipped", "failed", "skipped", "failed"]
    changed = CliRunner().invoke(
        cli,
        [
            *args[:-8],
            "--grid",
            "content-weight=1",
            "--grid",
            "init=content",
            "-o",
            str(out),
            "--tv-weight",
            "1",
        ],
    )
    assert changed.exit_code == 0 and "skipped" not in changed.output  # other base arguments: run again


def test_every_cell_is_checked_before_the_first_runs(images: dict[str, Path], tmp_path: Path) -> None:
    """A value that only one cell has (a missing --init file, a style that is not an image) stops the
    sweep before any cell runs, naming the cell and the option."""
    out = tmp_path / "sweep"
    (tmp_path / "notes.txt").write_text("not an image")
    for style, grid, needle in (
        (["--style", str(images["a"])], f"init=content,{tmp_path / 'missing.png'}", "--init"),
        ([], f"style={images['a']},{tmp_path / 'notes.txt'}", "--style"),
        ([], f"style={images['a']},{tmp_path / 'gone.png'}", "does not exist"),
    ):
        result = CliRunner().invoke(
            cli, ["sweep", "transfer", str(images["content"]), *style, *BASE, "--grid", grid, "-o", str(out)]
        )
        assert result.exit_code == 2, result.output
        line = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(line) == 1 and line[0].startswith("error: --grid cell ") and needle in line[0]
        assert "no cell was run" in line[0] and not (out / "cells").exists()


def test_a_rerun_with_other_arguments_starts_the_training_cell_clean(tmp_path: Path) -> None:
    from styleforge.attributes.synthetic import make_dataset

    make_dataset(tmp_path / "data", count=8, seed=0, size=32)
    out = tmp_path / "sweep"
    base = [
        "sweep",
        "train-attrs",
        "--data",
        str(tmp_path / "data"),
        "--backbone",
        "resnet18",
        "--weights",
        "random",
        "--size",
        "32",
        "--val-split",
        "0.25",
        "--grid",
        "epochs=1",
        "-o",
        str(out),
    ]
    assert CliRunner().invoke(cli, base).exit_code == 0
    again = CliRunner().invoke(cli, [*base, "--seed", "3"])  # a run folder already exists in the cell
    assert again.exit_code == 0, again.output
    assert _results(out / "results.csv")[0]["status"] == "ok"


def test_bad_grid_values_fail_before_any_cell_runs(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    for grid, needle in (
        ("pooling=max,foo", "foo"),
        ("content-weight=1,-5", "--content-weight"),
        ("bogus=1,2", "content-weight"),
    ):
        result = CliRunner().invoke(
            cli,
            [
                "sweep",
                "transfer",
                str(images["content"]),
                "--style",
                str(images["a"]),
                *BASE,
                "--grid",
                grid,
                "-o",
                str(out),
            ],
        )
        assert result.exit_code == 2, result.output
        assert needle in result.output
        assert not (out / "cells").exists()


def test_sweep_train_attrs_writes_results_and_seed_000_curves(tmp_path: Path) -> None:
    from styleforge.attributes.synthetic import make_dataset

    make_dataset(tmp_path / "data", count=16, seed=0, size=32)
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        cli,
        [
            "sweep",
            "train-attrs",
            "--data",
            str(tmp_path / "data"),
            "--backbone",
            "resnet18",
            "--weights",
            "random",
            "--size",
            "32",
            "--epochs",
            "2",
            "--val-split",
            "0.25",
            "--grid",
            "loss-weight.categorical=1,0.5",
            "-o",
            str(out),
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = _results(out / "results.csv")
    assert [r["loss-weight.categorical"] for r in rows] == ["1", "0.5"] and all(
        r["status"] == "ok" for r in rows
    )
    # The same seeded run with half the categorical weight has a smaller weighted validation total.
    assert float(rows[1]["val.loss"]) < float(rows[0]["val.loss"])
    assert Image.open(out / "curves.png").size[0] >= 4 * 300  # one panel per attribute, 4 per row


def test_ray_backend_with_a_local_instance(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'styleforge[ray]')")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        out = tmp_path / "sweep"
        result = CliRunner().invoke(
            cli,
            [
                "sweep",
                "transfer",
                str(images["content"]),
                "--style",
                str(images["a"]),
                *BASE,
                "--grid",
                "pooling=avg",
                "-o",
                str(out),
                "--backend",
                "ray",
            ],
        )
        assert result.exit_code == 0, result.output
        rows = _results(out / "results.csv")
        assert [(r["pooling"], r["status"]) for r in rows] == [("avg", "ok")] and float(rows[0]["total"]) > 0
    finally:
        ray.shutdown()


def test_cells_run_at_once_share_the_cores_and_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from styleforge.machine import PROCESSES_ENV
    from styleforge.sweep import cell_environment

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    env = cell_environment(4, {"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "2" and env[PROCESSES_ENV] == "4"
    assert cell_environment(16, {})["OMP_NUM_THREADS"] == "1"  # more cells than cores: one thread each
    assert (
        cell_environment(2, {"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"
    )  # the user's own choice stands
    assert cell_environment(2, {PROCESSES_ENV: "2"})[PROCESSES_ENV] == "4"  # a sweep inside a sweep's cell


def test_every_local_cell_gets_that_environment(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge import sweep as sweep_module
    from styleforge.machine import PROCESSES_ENV

    real, seen = sweep_module.run_one, []

    def run_one(command, cell, out_dir, collect, **kwargs):
        seen.append(kwargs["env"])
        return real(command, cell, out_dir, collect, **kwargs)

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(sweep_module, "run_one", run_one)
    result = CliRunner().invoke(
        cli,
        [
            "sweep",
            "transfer",
            str(images["content"]),
            "--style",
            str(images["a"]),
            *BASE,
            "--grid",
            "pooling=max,avg",
            "-o",
            str(tmp_path / "sweep"),
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(seen) == 2 and all(
        env[PROCESSES_ENV] == "2" and int(env["OMP_NUM_THREADS"]) >= 1 for env in seen
    )


def test_connecting_to_ray_keeps_the_stop_signals_handlers(
    monkeypatch: pytest.MonkeyPatch,
    stop_signals_as_at_start: None,
) -> None:
    """ray.init replaces SIGTERM's handler with an exit: the one that keeps a run's results is put back."""
    import signal

    from styleforge.signals import stop_signals
    from styleforge.sweep import connect_ray

    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'styleforge[ray]')")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    start = ray.init  # a small local instance, as the other Ray tests start
    monkeypatch.setattr(ray, "init", lambda **kw: start(num_cpus=1, include_dashboard=False, **kw))
    with stop_signals(listen=False) as flag:
        handler = signal.getsignal(signal.SIGTERM)
        assert getattr(handler, "__self__", None) is flag
        connected, started = connect_ray()
        try:
            assert connected is ray and started and ray.is_initialized()
            assert signal.getsignal(signal.SIGTERM) == handler
            assert connect_ray() == (ray, False)  # connected already: as it is
        finally:
            ray.shutdown()
