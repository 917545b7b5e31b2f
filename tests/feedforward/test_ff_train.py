"""Training a stylizer: the loss falls, the run folder is complete, --resume continues exactly, Ctrl-C
keeps the best report, and a saved model stylises as the trained network did."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import pytest
import torch
from _ff_helpers import FAST
from _helpers import deliver, stop_signals_as_at_start  # noqa: F401
from safetensors.torch import load_file

from styleforge.engine import BatchProgress, EpochEnded
from styleforge.errors import InputFileError, InvalidParameter
from styleforge.feedforward.model import load_stylizer, save_stylizer
from styleforge.feedforward.train import train_stylizer
from styleforge.nets.transformer import TransformerNet


def _history(run: Path) -> list[dict[str, float]]:
    with open(run / "history.csv", newline="") as stream:
        return [{k: float(v) for k, v in row.items() if k != "seconds"} for row in csv.DictReader(stream)]


def test_a_few_iterations_lower_the_loss_and_write_the_run(photos: Path, style: Path, tmp_path: Path) -> None:
    events: list[EpochEnded] = []
    result = train_stylizer(
        photos,
        tmp_path / "run",
        [str(style)],
        callbacks=[lambda e: events.append(e) if isinstance(e, EpochEnded) else None],
        **{**FAST, "iterations": 12, "report_every": 3, "sheet_every": 2},
    )
    assert result.stop_reason == "completed" and len(result.history) == 4
    assert [row["iteration"] for row in result.history] == [3, 6, 9, 12]
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    val = [row["val_loss"] for row in result.history]  # the best report is the lowest validation total
    assert result.best_iteration == result.history[val.index(min(val))]["iteration"]
    # every reported total is exactly the sum of its weighted parts
    for event in events:
        assert event.train.total == pytest.approx(sum(event.train.weighted.values()), abs=0)
    run = tmp_path / "run"
    names = {
        "model.safetensors",
        "model.json",
        "history.csv",
        "curves.png",
        "sheet.png",
        "resume.pt",
        "sheets",
    }
    assert {p.name for p in run.iterdir()} == names
    assert sorted(p.name for p in (run / "sheets").iterdir()) == ["iter_000006.png", "iter_000012.png"]
    meta = json.loads((run / "model.json").read_text())
    assert meta["format"] == "styleforge.stylizer/1" and meta["network"] == {"width": 4, "blocks": 1}
    assert meta["best"]["iteration"] == result.best_iteration and meta["training"]["config"]["size"] == 32
    assert len(meta["training"]["photos"]) == 7 and len(meta["training"]["val_photos"]) == 1
    assert _history(run)[-1]["loss"] == pytest.approx(losses[-1])


def test_resume_continues_exactly_as_an_uninterrupted_run(photos: Path, style: Path, tmp_path: Path) -> None:
    whole = train_stylizer(photos, tmp_path / "whole", [str(style)], **{**FAST, "iterations": 6})
    part = train_stylizer(photos, tmp_path / "part", [str(style)], **{**FAST, "iterations": 4})
    assert len(part.history) == 2
    resumed = train_stylizer(None, tmp_path / "part", resume=True, iterations=6)
    assert resumed.stop_reason == "completed"
    assert _history(tmp_path / "part") == _history(tmp_path / "whole")
    a, b = (
        load_file(str(tmp_path / "part" / "model.safetensors")),
        load_file(str(tmp_path / "whole" / "model.safetensors")),
    )
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.best_iteration == whole.best_iteration
    again = train_stylizer(None, tmp_path / "part", resume=True)
    assert again.history == resumed.history and "ask for more --iterations" in again.stop_detail


def test_ctrl_c_keeps_the_best_report_and_resume_finishes_the_run(
    photos: Path, style: Path, tmp_path: Path, stop_signals_as_at_start: None
) -> None:
    def press(event: object) -> None:
        if isinstance(event, BatchProgress) and event.epoch == 2 and event.batch == 1:
            deliver(signal.SIGINT)

    run = tmp_path / "run"
    stopped = train_stylizer(photos, run, [str(style)], callbacks=[press], **{**FAST, "iterations": 6})
    assert stopped.stop_reason == "interrupted" and len(stopped.history) == 1 and stopped.best_iteration == 2
    kept = load_file(str(run / "model.safetensors"))
    state = torch.load(run / "resume.pt", weights_only=True)
    assert state["epoch"] == 1 and all(torch.equal(kept[k], state["best_state"][k]) for k in kept)
    assert json.loads((run / "model.json").read_text())["best"]["iteration"] == 2
    train_stylizer(None, run, resume=True)
    whole = train_stylizer(photos, tmp_path / "whole", [str(style)], **{**FAST, "iterations": 6})
    assert _history(run) == _history(tmp_path / "whole") and len(whole.history) == 3


def test_a_blend_of_two_styles_and_validation_photos(
    photos: Path, style: Path, style_b: Path, tmp_path: Path
) -> None:
    val = tmp_path / "val"
    (val / "x").mkdir(parents=True)
    for p in sorted(photos.glob("*.png"))[:2]:
        (val / "x" / p.name).write_bytes(p.read_bytes())
    result = train_stylizer(photos, tmp_path / "run", [f"{style}:3", f"{style_b}:1"], val=val, **FAST)
    row = result.history[-1]
    assert row["loss.style.style"] == pytest.approx(10 * 0.75 * row["loss.style.style.raw"])
    assert row["loss.style.b"] == pytest.approx(10 * 0.25 * row["loss.style.b.raw"])
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    assert [s["share"] for s in meta["styles"]] == [0.75, 0.25] and len(meta["training"]["photos"]) == 8
    assert meta["training"]["val_photos"] == [str(val / "x" / "p0.png"), str(val / "x" / "p3.png")]


def test_a_new_run_in_a_run_folder_and_changed_options_on_resume_are_refused(
    photos: Path, style: Path, style_b: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train_stylizer(photos, run, [str(style)], **FAST)
    with pytest.raises(InvalidParameter, match="it holds a run already: pass --resume"):
        train_stylizer(photos, run, [str(style)], **FAST)
    with pytest.raises(InvalidParameter) as caught:
        train_stylizer(None, run, resume=True, lr=0.5, width=8, iterations=8)
    assert str(caught.value) == (
        "--lr: 0.5 is not valid; expected 0.01, as in the run being resumed (also different: --width 8 "
        "(the run has 4); only --iterations, --device, --sheet-every may change on --resume)"
    )
    with pytest.raises(InvalidParameter, match="--style: .* as in the run being resumed"):
        train_stylizer(None, run, [str(style_b)], resume=True)
    with pytest.raises(InputFileError, match="has no resume.pt to resume from"):
        train_stylizer(None, tmp_path / "nothing", resume=True)


def test_a_saved_model_stylises_as_the_network_did(tmp_path: Path) -> None:
    net = TransformerNet(4, 2, seed=5)
    save_stylizer(tmp_path / "m", net, {"styles": [{"style": "a.png"}], "best": {"iteration": 7}})
    model = load_stylizer(tmp_path / "m")
    x = torch.rand((2, 3, 20, 28), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)
    assert model.styles == ["a.png"] and model.meta["best"] == {"iteration": 7}
    assert model.meta["network"] == {"width": 4, "blocks": 2}
