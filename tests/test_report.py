"""Contact sheets, histories and plots."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.errors import InvalidParameter
from styleforge.report import contact_sheet, plot_curves, plot_panels, write_history


def _image(h: int, w: int, seed: int) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))


def test_contact_sheet_grows_with_the_grid() -> None:
    one = contact_sheet([[_image(32, 48, 0)]], cell_px=48)
    grid = contact_sheet([[_image(32, 48, 0), _image(32, 48, 1)], [_image(32, 48, 2), None]], cell_px=48)
    assert grid.size[0] > 1.8 * one.size[0] - 20 and grid.size[1] > 1.8 * one.size[1] - 20
    labelled = contact_sheet(
        [[_image(32, 48, 0)]],
        row_labels=["content weight"],
        col_labels=["1"],
        captions=[["loss 0.1"]],
        title="t",
        cell_px=48,
    )
    assert labelled.size[0] > one.size[0] and labelled.size[1] > one.size[1]


def test_contact_sheet_pastes_each_image_where_it_belongs() -> None:
    red = torch.zeros(3, 40, 40)
    red[0] = 1
    blue = torch.zeros(3, 40, 40)
    blue[2] = 1
    sheet = contact_sheet([[red, blue]], cell_px=40)
    left = sheet.getpixel((6 + 20, 6 + 20))
    right = sheet.getpixel((6 + 40 + 6 + 20, 6 + 20))
    assert left[0] > 200 and left[2] < 50 and right[2] > 200 and right[0] < 50


def test_failed_cell_is_marked() -> None:
    sheet = contact_sheet([[None]], cell_px=40)
    pixels = np.asarray(sheet).reshape(-1, 3)
    assert ((pixels[:, 0] > 200) & (pixels[:, 1] < 80)).any()


def test_history_csv_and_json(tmp_path: Path) -> None:
    rows = [{"iteration": 1, "total": 1.5, "a": 1.0}, {"iteration": 2, "total": math.nan, "a": 0.5, "b": 2.0}]
    lines = write_history(tmp_path / "h.csv", rows).read_text().splitlines()
    assert lines[0] == "iteration,total,a,b" and lines[2].startswith("2,nan,0.5,2.0")
    data = json.loads(write_history(tmp_path / "h.json", rows).read_text())
    assert data[1]["total"] is None and data[0]["a"] == 1.0
    with pytest.raises(InvalidParameter, match="--history"):
        write_history(tmp_path / "h.txt", rows)


def test_plot_skips_non_positive_values_on_a_log_scale(tmp_path: Path) -> None:
    path = plot_curves(
        tmp_path / "p.png", [1, 2, 3], {"total": [3.0, 0.0, 1.0], "tv": [0.0, 0.0, 0.0]}, markers=[2]
    )
    assert Image.open(path).size == (800, 450)


def test_panels_share_one_legend_even_when_the_first_panel_is_empty(tmp_path: Path) -> None:
    # An attribute with no labels has no validation curve: its panel is empty, and the legend must
    # move to the next panel instead of matplotlib warning "No artists with labels".
    import warnings

    panels = {
        "contrast": {"train": ([1, 2], [None, None])},
        "pri_color": {"train": ([1, 2], [0.5, 0.4]), "validation": ([1, 2], [0.6, 0.5])},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = plot_panels(tmp_path / "p.png", panels)
    assert Image.open(path).size == (720, 280)
