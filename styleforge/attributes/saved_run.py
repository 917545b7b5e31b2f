"""The run folder :func:`~styleforge.attributes.train.train_attrs` writes and ``--resume`` reads back.

What may change on ``--resume`` (:data:`RESUME_OPTIONS`) and the check of the saved configuration
(:func:`resolve_config`); ``model.json``'s record of the best epoch; ``resume.pt`` (tensors and plain
values only, read back with ``weights_only=True``) with ``history.csv`` after every epoch; and
``curves.png`` and ``metrics.json`` at the end. ``features.safetensors`` is the frozen backbone's
feature cache (:mod:`styleforge.attributes.features`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import TrainConfig
from ..errors import InputFileError, InvalidParameter, shown
from ..files import check_new_run, write_atomic
from ..option import declared
from ..report import plot_panels, write_history
from .kinds import CategoricalAttribute
from .model import MODEL_JSON, read_model_json
from .schema import Schema

__all__ = [
    "RESUME_OPTIONS",
    "RESUME_FILE",
    "FEATURES_FILE",
    "HISTORY_FILE",
    "CURVES_FILE",
    "METRICS_FILE",
    "resolve_config",
    "json_safe",
    "epoch_record",
    "write_checkpoint",
    "write_history_csv",
    "write_metrics",
    "plot_curves",
]

#: Options that may differ when a run is resumed; the others must match the saved run.
RESUME_OPTIONS: tuple[str, ...] = (
    "epochs",
    "patience",
    "min_delta",
    "divergence_factor",
    "device",
    "feature_cache",
    "workers",
)
RESUME_FILE = "resume.pt"
FEATURES_FILE = "features.safetensors"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
METRICS_FILE = "metrics.json"


def resolve_config(
    run_dir: Path, config: TrainConfig | None, resume: bool, options: dict[str, Any]
) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The configuration of a new run, or of a resumed one checked against the saved run.

    Args:
        run_dir: The run folder (``-o``).
        config: The caller's configuration, or ``None`` (the defaults; the saved one on resume).
        resume: Continue the run in ``run_dir``.
        options: Overrides of ``config``'s fields.

    Returns:
        The configuration, and the saved ``model.json`` (``None`` for a new run).

    Raises:
        InvalidParameter: A new run in a folder that holds one already, or options outside
            :data:`RESUME_OPTIONS` that differ from the saved run (each named, with both values).
        InputFileError: ``--resume`` without ``resume.pt`` (or with an unreadable ``model.json``).
    """
    if not resume:
        check_new_run(run_dir, (MODEL_JSON, RESUME_FILE))
        return dataclasses.replace(config or TrainConfig(), **options), None
    if not (run_dir / RESUME_FILE).is_file():
        raise InputFileError(
            "--resume", run_dir, f"has no {RESUME_FILE} to resume from (no epoch of a run finished there)"
        )
    meta = read_model_json(run_dir, "--resume")
    saved = TrainConfig.from_dict(meta["training"]["config"])
    given = (
        {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)}
        if config is not None
        else {}
    )
    given.update(options)
    differ = [k for k in given if k not in RESUME_OPTIONS and given[k] != getattr(saved, k, None)]
    if differ:
        raise _mismatch(differ, given, saved)
    base = config if config is not None else saved
    return dataclasses.replace(base, **options), meta


def _flag(name: str) -> str:
    """The flag of the option ``name`` (``--loss-weight`` for ``loss_weights``), as declared."""
    return next(o.flag for f, o in declared(TrainConfig) if f.name == name)


def _as_saved(name: str, value: Any) -> str:
    """The saved run's value of an option, in words (``'none'``, ``0.01``, ``no --lr``)."""
    return f"no {_flag(name)}" if value is None else shown(value)


def _as_given(name: str, value: Any) -> str:
    """An option and its value as a command line gives them (``--lr 0.5``, ``--finetune``,
    ``no --finetune``, ``--loss-weight categorical=0.7``)."""
    flag = _flag(name)
    if value is None or value is False or value == {}:
        return f"no {flag}"
    if value is True:
        return flag
    if isinstance(value, dict):
        return " ".join(f"{flag} {k}={v:g}" for k, v in value.items())
    return f"{flag} {value}"


def _mismatch(names: Sequence[str], given: Mapping[str, Any], saved: TrainConfig) -> InvalidParameter:
    """The error for options that differ from the run being resumed: the first as an invalid value
    with the saved one, each other with both values."""
    first, rest = names[0], names[1:]
    also = [f"{_as_given(k, given[k])} (the run has {_as_given(k, getattr(saved, k, None))})" for k in rest]
    hint = (
        (f"also different: {'; '.join(also)}; " if also else "")
        + "only "
        + ", ".join(_flag(o) for o in RESUME_OPTIONS)
        + " may change on --resume"
    )
    return InvalidParameter(
        _flag(first),
        given[first],
        f"{_as_saved(first, getattr(saved, first, None))}, as in the run being resumed",
        hint,
    )


def plot_curves(run_dir: Path, schema: Schema, history: Sequence[Mapping[str, float]]) -> Path:
    """``curves.png``: one panel per attribute, its training and validation loss per epoch."""
    epochs = [row["epoch"] for row in history]
    panels = {
        a.name: {
            label: (epochs, [r.get(key) for r in history])
            for key, label in ((f"head_loss.{a.name}", "training"), (f"val_head_loss.{a.name}", "validation"))
        }
        for a in schema
    }
    ylabels = {a.name: "cross-entropy" if isinstance(a, CategoricalAttribute) else "loss" for a in schema}
    return plot_panels(run_dir / CURVES_FILE, panels, xlabel="epoch", ylabel=ylabels)


def json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def epoch_record(row: Mapping[str, float]) -> dict[str, Any]:
    """``model.json``'s record of an epoch (``best``): its history row without ``seconds``, JSON-safe.

    Args:
        row: The epoch's row of :attr:`FitResult.history <styleforge.engine.fit.FitResult.history>`
            (``epoch``, ``lr``, the losses and metrics).
    """
    return json_safe({k: v for k, v in row.items() if k != "seconds"})


def write_checkpoint(run_dir: Path, state: dict[str, Any], extra: Mapping[str, Any]) -> None:
    """After an epoch: ``resume.pt`` (``state``, from :meth:`FitCheckpoint.state
    <styleforge.engine.fit.FitCheckpoint.state>`, with ``extra`` under ``"extra"``) and ``history.csv``.

    Args:
        run_dir: The run folder.
        state: Tensors and plain values only (``torch.load(weights_only=True)`` reads it back).
        extra: What the run needs besides the loop's state (``{"initial": ...}``, ``--balance
            initial``'s divisors).
    """
    state["extra"] = dict(extra)
    write_atomic(run_dir / RESUME_FILE, lambda h: torch.save(state, h))
    write_history_csv(run_dir, state["history"])


def write_history_csv(run_dir: Path, history: Sequence[Mapping[str, float]]) -> Path:
    """``history.csv``: one row per epoch."""
    return write_history(run_dir / HISTORY_FILE, history)


def write_metrics(run_dir: Path, metrics: Mapping[str, Any]) -> Path:
    """``metrics.json`` (non-finite numbers as ``null``), atomically."""
    text = json.dumps(json_safe(metrics), indent=1)
    return write_atomic(run_dir / METRICS_FILE, lambda h: h.write(text.encode()))
