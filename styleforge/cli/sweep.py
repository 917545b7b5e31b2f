"""``styleforge sweep transfer|train-attrs``: every combination of a grid of options, side by side."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import TrainConfig, TransferConfig
from ..errors import InvalidParameter, InvalidUsage, StyleforgeError
from ..files import check_writable
from ..guidance.config import GuidanceConfig
from .base import Outputs, stop_flag, stopped, stopped_words
from .flags import from_flags
from .train import train_attrs_command
from .transfer import check_inputs, transfer

__all__ = ["sweep"]


@click.group()
def sweep() -> None:
    """Run every combination of a grid of options and compare the results side by side."""


_SWEEP_SETTINGS = {
    "ignore_unknown_options": True,
    "allow_extra_args": True,
    "help_option_names": ["-h", "--help"],
}


def _grid_options(command: click.Command, exclude: set[str]) -> dict[str, str]:
    """The command's long option names (without dashes) → ``single``, ``multiple`` or ``keyed``."""
    out = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.expose_value:
            names = [o[2:] for o in param.opts if o.startswith("--")]
            if names and names[0] not in exclude:
                keyed = param.multiple and "=" in (param.metavar or "")
                out[names[0]] = "keyed" if keyed else "multiple" if param.multiple else "single"
    return out


def _run_sweep(
    ctx: click.Context,
    command: click.Command,
    grid: Sequence[str],
    out_dir: Path,
    jobs: int,
    backend: str,
    *,
    outputs: Any,
    collect: Any,
    check: Any,
) -> tuple[list[Any], list[Any], Outputs]:
    """Plans, validates and runs a sweep of ``command``; returns the axes, the cell results and the
    sweep's own files (``results.csv`` written, the command's sheets to add)."""
    from ..sweep import parse_grid, plan_cells, run_cells, write_results

    check_writable(out_dir / "results.csv", param="-o")
    if jobs < 1:
        raise InvalidParameter("--jobs", jobs, "a whole number >= 1")
    options = _grid_options(command, {"output", "config", "from-image", "quiet", "history"})
    axes = parse_grid(grid, options)
    base = list(ctx.args)
    cells = plan_cells(axes, base, options, out_dir, outputs)
    problems = []
    for cell in cells:  # every cell's arguments and inputs are checked before any cell runs
        try:
            sub = command.make_context(command.name or "", list(cell.args), parent=ctx.parent)
            check(sub.params)
        except click.ClickException as exc:
            problems.append((cell, exc.format_message()))
        except StyleforgeError as exc:
            problems.append((cell, str(exc)))
    if problems:
        cell, problem = problems[0]
        settings = " ".join(f"{k}={v}" for k, v in cell.settings.items())
        more = f" (and {len(problems) - 1} more of the {len(cells)} cells)" if len(problems) > 1 else ""
        raise InvalidUsage(f"--grid cell {settings}{more}: {problem.rstrip('.')}; no cell was run")
    done = [0]

    def on_result(result: Any) -> None:
        done[0] += 1
        word = {
            "ok": "done",
            "skipped": "skipped (finished earlier)",
            "failed": f"FAILED: {result.error}",
            "interrupted": f"{result.error}",
            "not run": "not run",
        }[result.status]
        click.echo(
            f"cell {done[0]}/{len(cells)} {result.cell.name}: {word} ({result.seconds:.1f}s)", err=True
        )

    flag = stop_flag()
    results = run_cells(
        command.name or "",
        cells,
        out_dir,
        collect,
        jobs=jobs,
        backend=backend,
        on_result=on_result,
        interrupt=flag,
    )
    files = Outputs()
    with flag.keeping():  # a signal now waits for the sweep's own files
        files.write(lambda: write_results(out_dir / "results.csv", axes, results))
    return axes, results, files


def _finish(out_dir: Path, results: Sequence[Any], files: Outputs) -> None:
    """Says how the sweep ended and exits: 1 when a cell failed (naming them), 130 or 143 when a signal
    stopped it (naming the cells not finished), 0 when every cell is done."""
    flag = stop_flag()
    failed = [r for r in results if r.status == "failed"]
    unfinished = [r for r in results if r.status in ("interrupted", "not run")]
    counts = ", ".join(
        f"{n} {status}"
        for status in ("failed", "interrupted", "not run")
        if (n := sum(r.status == status for r in results))
    )
    click.echo(
        f"{len(results)} cells"
        + (f", {counts}" if counts else "")
        + ": "
        + ", ".join(str(path) for path in files.written),
        err=True,
    )
    click.echo(str(out_dir))
    if unfinished:
        click.echo(
            f"{stopped_words(flag.signum)}: {len(unfinished)} of {len(results)} cells did not finish "
            f"({', '.join(r.cell.name for r in unfinished)}); run the same sweep again to do them",
            err=True,
        )
    if failed:
        click.echo(
            f"error: {len(failed)} of {len(results)} cells failed: {', '.join(r.cell.name for r in failed)} "
            f"(each one's error is in {out_dir / 'results.csv'} and its cells/NAME/log.txt)",
            err=True,
        )
    files.finish()
    if unfinished:
        stopped(flag)
    if failed:
        sys.exit(1)


def _collect_transfer(folder: Path) -> dict[str, Any]:
    """A transfer cell's final loss terms, from its output's metadata."""
    from ..images import read_metadata

    meta = read_metadata(folder / "out.png") or {}
    losses = meta.get("losses") or {}
    return {
        "total": losses.get("total"),
        **losses,
        "iteration": meta.get("iteration"),
        "stop_reason": meta.get("stop_reason"),
    }


def _transfer_outputs(folder: Path) -> list[str]:
    return ["-o", str(folder / "out.png"), "--history", str(folder / "history.csv")]


def _sweep_command(name: str, metavar: str, grid_help: str, outputs: str) -> Any:
    """Declares a ``sweep NAME`` command with the options every sweep has."""

    def decorate(function: Any) -> Any:
        for option in reversed(
            [
                click.option("--grid", multiple=True, required=True, metavar=metavar, help=grid_help),
                click.option(
                    "-o",
                    "--output",
                    "out_dir",
                    type=click.Path(path_type=Path, file_okay=False),
                    required=True,
                    help=f"Sweep folder: {outputs}.",
                ),
                click.option(
                    "--jobs",
                    type=int,
                    default=1,
                    show_default=True,
                    help="Cells run at once (local processes).",
                ),
                click.option(
                    "--backend",
                    type=click.Choice(["local", "ray"]),
                    default="local",
                    show_default=True,
                    help="ray: cells as Ray tasks (RAY_ADDRESS or a local instance); needs styleforge[ray].",
                ),
            ]
        ):
            function = option(function)
        return sweep.command(name, context_settings=_SWEEP_SETTINGS)(click.pass_context(function))

    return decorate


@_sweep_command(
    "transfer",
    "OPTION=V1,V2,...",
    "An axis: any transfer option and its values (';' separates values that contain commas; "
    "'+' joins repeats, e.g. style=a.jpg:0.75+b.jpg:0.25). Repeatable.",
    "cells/, results.csv, sheet.png, curves.png",
)
def sweep_transfer(ctx: click.Context, grid: Sequence[str], out_dir: Path, jobs: int, backend: str) -> None:
    """Run `styleforge transfer` for every combination of --grid values.

    Every argument that is not a sweep option is passed to each cell's transfer.

    \b
    Example:
      styleforge sweep transfer photo.jpg --style starry.jpg --size 256 \\
          --grid content-weight=1,5,20 --grid pooling=max,avg -o out/sweep
    """

    from ..files import write_with_fallback
    from ..report import plot_curves

    def check(params: dict[str, Any]) -> None:
        config, guidance = from_flags(TransferConfig, params), from_flags(GuidanceConfig, params)
        check_inputs(params.get("content") or (), params.get("styles") or (), config, guidance)

    axes, results, files = _run_sweep(
        ctx,
        transfer,
        grid,
        out_dir,
        jobs,
        backend,
        outputs=_transfer_outputs,
        collect=_collect_transfer,
        check=check,
    )
    sheet = _transfer_sheet(out_dir, axes, results)
    curves = _transfer_curves(out_dir, results)
    with stop_flag().keeping():  # a signal now waits for the sheets
        files.write(lambda: write_with_fallback(out_dir / "sheet.png", lambda h: sheet.save(h, format="PNG")))
        if curves:
            length = max(len(v) for v in curves.values())
            padded = {k: v + [float("nan")] * (length - len(v)) for k, v in curves.items()}
            files.write(
                lambda: plot_curves(
                    out_dir / "curves.png", list(range(1, length + 1)), padded, title="total loss per cell"
                )
            )
    _finish(out_dir, results, files)


def _transfer_sheet(out_dir: Path, axes: Sequence[Any], results: Sequence[Any]) -> Any:
    """The contact sheet of a transfer sweep: a column per value of the last axis, a row per
    combination of the others, each cell's image and final loss (or why it has none)."""
    from ..images import load_image
    from ..report import contact_sheet

    last, rest = axes[-1], axes[:-1]
    n_cols = len(last.values)
    cells, captions, row_labels = [], [], []
    for start in range(0, len(results), n_cols):
        row, caps = [], []
        for r in results[start : start + n_cols]:
            image = None
            made = out_dir / "cells" / r.cell.name / "out.png"
            if r.status in ("ok", "skipped", "interrupted") and made.is_file():
                image = load_image(made).rgb
            row.append(image)
            if image is not None and "total" in r.metrics:
                caps.append(f"loss {r.metrics['total']:.4g}")
            else:
                caps.append({"interrupted": "interrupted", "not run": "not run"}.get(r.status, "failed"))
        cells.append(row)
        captions.append(caps)
        first = results[start].cell.settings
        row_labels.append(", ".join(f"{a.name}={first[a.name]}" for a in rest))
    return contact_sheet(
        cells,
        row_labels=row_labels if rest else [],
        col_labels=[f"{last.name}={v}" for v in last.values],
        captions=captions,
        title="sweep: " + " x ".join(f"{a.name}" for a in axes),
    )


def _transfer_curves(out_dir: Path, results: Sequence[Any]) -> dict[str, list[float]]:
    """Each finished cell's total loss per iteration, from its history, by its settings."""
    import csv

    curves = {}
    for r in results:
        history = out_dir / "cells" / r.cell.name / "history.csv"
        if r.status in ("ok", "skipped") and history.is_file():
            with history.open(newline="") as stream:
                rows = list(csv.DictReader(stream))
            curves[", ".join(f"{k}={v}" for k, v in r.cell.settings.items())] = [
                float(row["total"]) for row in rows
            ]
    return curves


def _collect_training(folder: Path) -> dict[str, Any]:
    """A train-attrs cell's best validation (else training) metrics, from its metrics.json."""
    import json

    data = json.loads((folder / "run" / "metrics.json").read_text())
    split = "val" if data.get("val") else "train"
    best = {f"{split}.{k}": v for k, v in (data.get(split) or {}).items() if not k.startswith("loss.")}
    return {
        "best_epoch": data.get("best_epoch"),
        "epochs_run": data.get("epochs_run"),
        "stop_reason": data.get("stop_reason"),
        **best,
    }


def _training_outputs(folder: Path) -> list[str]:
    return ["-o", str(folder / "run")]


@_sweep_command(
    "train-attrs",
    "OPTION[.KEY]=V1,V2,...",
    "An axis: any train-attrs option and its values; KEY=VALUE options per key "
    "(loss-weight.categorical=1,0.85,0.7,0.5). Repeatable.",
    "cells/, results.csv, curves.png",
)
def sweep_train_attrs(
    ctx: click.Context, grid: Sequence[str], out_dir: Path, jobs: int, backend: str
) -> None:
    """Run `styleforge train-attrs` for every combination of --grid values.

    Writes results.csv (each setting's best validation metrics) and curves.png (one panel per
    attribute, one validation-loss curve per setting: the charts of Holly Grimm's loss-weight study).

    \b
    Example:
      styleforge sweep train-attrs --data data/synth --epochs 200 \\
          --grid loss-weight.categorical=1,0.85,0.7,0.5 -o out/catweights
    """
    import csv as _csv

    from ..attributes.labels import read_labels
    from ..attributes.losses import head_weights
    from ..attributes.schema import ACAN_SCHEMA, load_schema
    from ..report import plot_panels

    def check(params: dict[str, Any]) -> None:
        config = from_flags(TrainConfig, params)
        schema = load_schema(config.schema) if config.schema else ACAN_SCHEMA
        head_weights(schema, config.loss_weights)
        if params.get("data") is not None:  # the labels CSV, checked whole (the images are opened by the run)
            read_labels(params["data"], schema, config.labels)

    axes, results, files = _run_sweep(
        ctx,
        train_attrs_command,
        grid,
        out_dir,
        jobs,
        backend,
        outputs=_training_outputs,
        collect=_collect_training,
        check=check,
    )
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for r in results:
        history = out_dir / "cells" / r.cell.name / "run" / "history.csv"
        if r.status not in ("ok", "skipped") or not history.is_file():
            continue
        rows = list(_csv.DictReader(history.open()))
        label = ", ".join(f"{k}={v}" for k, v in r.cell.settings.items())
        for column in rows[0] if rows else []:
            if column.startswith("val_head_loss."):
                epochs = [float(row["epoch"]) for row in rows]
                values = [float(row[column]) if row[column] not in ("", "nan") else None for row in rows]
                panels.setdefault(column.split(".", 1)[1], {})[label] = (epochs, values)
    if panels:
        with stop_flag().keeping():  # a signal now waits for the curves
            files.write(
                lambda: plot_panels(out_dir / "curves.png", panels, xlabel="epoch", ylabel="validation loss")
            )
    _finish(out_dir, results, files)
