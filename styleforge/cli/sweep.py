"""``styleforge sweep transfer|train-attrs``: every combination of a grid of options, side by side."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import TrainConfig, TransferConfig
from ..errors import InvalidUsage
from ..files import check_writable
from .train import train_attrs_command
from .transfer import transfer, transfer_config

__all__ = ["sweep"]


@click.group()
def sweep() -> None:
    """Run every combination of a grid of options and compare the results side by side."""


_SWEEP_SETTINGS = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}


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
) -> list[Any]:
    """Plans, validates and runs a sweep of ``command``; returns the cell results."""
    from ..sweep import parse_grid, plan_cells, run_cells, write_results

    check_writable(out_dir / "results.csv", param="-o")
    options = _grid_options(command, {"output", "config", "from-image", "quiet", "history"})
    axes = parse_grid(grid, options)
    base = list(ctx.args)
    cells = plan_cells(axes, base, options, out_dir, outputs)
    for cell in cells:  # every cell's arguments are checked before any cell runs
        try:
            sub = command.make_context(command.name or "", list(cell.args), parent=ctx.parent)
        except click.ClickException as exc:
            settings = " ".join(f"{k}={v}" for k, v in cell.settings.items())
            raise InvalidUsage(f"--grid cell {settings}: {exc.format_message()}") from None
        check(sub.params)
    done = [0]

    def on_result(result: Any) -> None:
        done[0] += 1
        word = {"ok": "done", "skipped": "skipped (finished earlier)", "failed": f"FAILED: {result.error}"}[result.status]
        click.echo(f"cell {done[0]}/{len(cells)} {result.cell.name}: {word} ({result.seconds:.1f}s)", err=True)

    results = run_cells(command.name or "", cells, out_dir, collect, jobs=jobs, backend=backend, on_result=on_result)
    write_results(out_dir / "results.csv", axes, results)
    return [axes, results]


def _collect_transfer(folder: Path) -> dict[str, Any]:
    """A transfer cell's final loss terms, from its output's metadata."""
    from ..images import read_metadata

    meta = read_metadata(folder / "out.png") or {}
    losses = meta.get("losses") or {}
    return {"total": losses.get("total"), **losses, "iteration": meta.get("iteration"), "stop_reason": meta.get("stop_reason")}


def _transfer_outputs(folder: Path) -> list[str]:
    return ["-o", str(folder / "out.png"), "--history", str(folder / "history.csv")]


def _sweep_command(name: str, metavar: str, grid_help: str, outputs: str) -> Any:
    """Declares a ``sweep NAME`` command with the options every sweep has."""

    def decorate(function: Any) -> Any:
        for option in reversed([
            click.option("--grid", multiple=True, required=True, metavar=metavar, help=grid_help),
            click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
                         help=f"Sweep folder: {outputs}."),
            click.option("--jobs", type=int, default=1, show_default=True, help="Cells run at once (local processes)."),
            click.option("--backend", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                         help="ray: cells as Ray tasks (RAY_ADDRESS or a local instance); needs styleforge[ray]."),
        ]):
            function = option(function)
        return sweep.command(name, context_settings=_SWEEP_SETTINGS)(click.pass_context(function))

    return decorate


@_sweep_command("transfer", "OPTION=V1,V2,...",
                "An axis: any transfer option and its values (';' separates values that contain commas; "
                "'+' joins repeats, e.g. style=a.jpg:0.75+b.jpg:0.25). Repeatable.",
                "cells/, results.csv, sheet.png, curves.png")
def sweep_transfer(ctx: click.Context, grid: Sequence[str], out_dir: Path, jobs: int, backend: str) -> None:
    """Run `styleforge transfer` for every combination of --grid values.

    Every argument that is not a sweep option is passed to each cell's transfer.

    \b
    Example:
      styleforge sweep transfer photo.jpg --style starry.jpg --size 256 \\
          --grid content-weight=1,5,20 --grid pooling=max,avg -o out/sweep
    """
    import csv as _csv

    from ..files import write_atomic
    from ..images import load_image
    from ..report import contact_sheet, plot_curves

    def check(params: dict[str, Any]) -> None:
        keep = {k: v for k, v in params.items() if k in {f.name for f in dataclasses.fields(TransferConfig)}}
        transfer_config(keep)

    axes, results = _run_sweep(ctx, transfer, grid, out_dir, jobs, backend,
                               outputs=_transfer_outputs, collect=_collect_transfer, check=check)
    last = axes[-1]
    rest = axes[:-1]
    n_cols = len(last.values)
    cells, captions, row_labels = [], [], []
    for start in range(0, len(results), n_cols):
        row, caps = [], []
        for r in results[start : start + n_cols]:
            image = None
            if r.status != "failed":
                image = load_image(out_dir / "cells" / r.cell.name / "out.png").rgb
            row.append(image)
            caps.append(f"loss {r.metrics['total']:.4g}" if image is not None and "total" in r.metrics else "failed")
        cells.append(row)
        captions.append(caps)
        first = results[start].cell.settings
        row_labels.append(", ".join(f"{a.name}={first[a.name]}" for a in rest))
    title = "sweep: " + " x ".join(f"{a.name}" for a in axes)
    sheet = contact_sheet(cells, row_labels=row_labels if rest else [], col_labels=[f"{last.name}={v}" for v in last.values],
                          captions=captions, title=title)
    write_atomic(out_dir / "sheet.png", lambda h: sheet.save(h, format="PNG"))
    curves, xs = {}, []
    for r in results:
        history = out_dir / "cells" / r.cell.name / "history.csv"
        if r.status != "failed" and history.is_file():
            rows = list(_csv.DictReader(history.open()))
            xs = xs if len(xs) >= len(rows) else [int(row["iteration"]) for row in rows]
            curves[", ".join(f"{k}={v}" for k, v in r.cell.settings.items())] = [float(row["total"]) for row in rows]
    if curves:
        length = max(len(v) for v in curves.values())
        padded = {k: v + [float("nan")] * (length - len(v)) for k, v in curves.items()}
        plot_curves(out_dir / "curves.png", list(range(1, length + 1)), padded, title="total loss per cell")
    failed = sum(r.status == "failed" for r in results)
    click.echo(f"{len(results)} cells, {failed} failed: {out_dir / 'results.csv'}, {out_dir / 'sheet.png'}, {out_dir / 'curves.png'}", err=True)
    click.echo(str(out_dir))




def _collect_training(folder: Path) -> dict[str, Any]:
    """A train-attrs cell's best validation (else training) metrics, from its metrics.json."""
    import json

    data = json.loads((folder / "run" / "metrics.json").read_text())
    split = "val" if data.get("val") else "train"
    best = {f"{split}.{k}": v for k, v in (data.get(split) or {}).items() if not k.startswith("loss.")}
    return {"best_epoch": data.get("best_epoch"), "epochs_run": data.get("epochs_run"), "stop_reason": data.get("stop_reason"), **best}


def _training_outputs(folder: Path) -> list[str]:
    return ["-o", str(folder / "run")]


@_sweep_command("train-attrs", "OPTION[.KEY]=V1,V2,...",
                "An axis: any train-attrs option and its values; KEY=VALUE options per key "
                "(loss-weight.categorical=1,0.85,0.7,0.5). Repeatable.",
                "cells/, results.csv, curves.png")
def sweep_train_attrs(ctx: click.Context, grid: Sequence[str], out_dir: Path, jobs: int, backend: str) -> None:
    """Run `styleforge train-attrs` for every combination of --grid values.

    Writes results.csv (each setting's best validation metrics) and curves.png (one panel per
    attribute, one validation-loss curve per setting: seed 000's charts).

    \b
    Example:
      styleforge sweep train-attrs --data data/synth --epochs 200 \\
          --grid loss-weight.categorical=1,0.85,0.7,0.5 -o out/catweights
    """
    import csv as _csv

    from ..attributes.losses import parse_loss_weights
    from ..report import plot_panels

    def check(params: dict[str, Any]) -> None:
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        options = {k: v for k, v in params.items() if k in fields}
        options["loss_weights"] = parse_loss_weights(params.get("loss_weight") or ())
        TrainConfig(**options).validate()

    axes, results = _run_sweep(ctx, train_attrs_command, grid, out_dir, jobs, backend,
                               outputs=_training_outputs, collect=_collect_training, check=check)
    panels: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for r in results:
        history = out_dir / "cells" / r.cell.name / "run" / "history.csv"
        if r.status == "failed" or not history.is_file():
            continue
        rows = list(_csv.DictReader(history.open()))
        label = ", ".join(f"{k}={v}" for k, v in r.cell.settings.items())
        for column in rows[0] if rows else []:
            if column.startswith("val_head_loss."):
                epochs = [float(row["epoch"]) for row in rows]
                values = [float(row[column]) if row[column] not in ("", "nan") else None for row in rows]
                panels.setdefault(column.split(".", 1)[1], {})[label] = (epochs, values)
    if panels:
        plot_panels(out_dir / "curves.png", panels, xlabel="epoch", ylabel="validation loss")
    failed = sum(r.status == "failed" for r in results)
    click.echo(f"{len(results)} cells, {failed} failed: {out_dir / 'results.csv'}, {out_dir / 'curves.png'}", err=True)
    click.echo(str(out_dir))

