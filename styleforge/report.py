"""Traces of a run a user can compare: loss histories (CSV/JSON), loss plots, checkpoints, GIFs.

These are written only where the user asks. The checkpoint and GIF recorders are engine callbacks;
the history writers and the plot take the history a loop returns. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image
from torch import Tensor

from .engine import Event, Progress
from .errors import InvalidParameter
from .files import check_writable, write_with_fallback
from .images import save_image

__all__ = [
    "HISTORY_FORMATS",
    "check_history_path",
    "write_history",
    "plot_curves",
    "plot_panels",
    "CheckpointWriter",
    "GifRecorder",
    "contact_sheet",
]

HISTORY_FORMATS = (".csv", ".json")


def check_history_path(path: str | os.PathLike[str], *, param: str = "--history") -> Path:
    """Validates a history path before the run starts: its extension, and that it can be written."""
    path = Path(path)
    if path.suffix.lower() not in HISTORY_FORMATS or path.is_dir():
        raise InvalidParameter(param, str(path), "a file ending in .csv or .json")
    return check_writable(path, param=param)


def write_history(
    path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]], *, param: str = "--history"
) -> Path:
    """Writes history rows as CSV (one column per key, first row's order) or JSON (a list of objects).

    Non-finite numbers are written as ``nan``/``inf`` in CSV and ``null`` in JSON.

    Raises:
        OutputWriteError: The file could not be written; a copy was saved elsewhere if possible.
    """
    path = Path(path)
    if path.suffix.lower() not in HISTORY_FORMATS or path.is_dir():
        raise InvalidParameter(param, str(path), "a file ending in .csv or .json")
    if path.suffix.lower() == ".json":
        clean = [
            {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in r.items()}
            for r in rows
        ]
        return write_with_fallback(path, json.dumps(clean, indent=1).encode(), param=param)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]

    def write(handle: io.BufferedWriter) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        handle.write(text.getvalue().encode())

    return write_with_fallback(path, write, param=param)


def plot_curves(
    path: str | os.PathLike[str],
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    xlabel: str = "iteration",
    ylabel: str = "loss",
    title: str = "",
    log: bool = True,
    markers: Sequence[float] = (),
    param: str = "--plot",
) -> Path:
    """Plots curves sharing one x axis (one line per series) to a PNG.

    Args:
        path: Output PNG.
        x: Shared x values.
        series: Label → y values (same length as ``x``); non-finite values, and non-positive ones on
            a log scale, are dropped.
        markers: x positions of vertical dotted lines (e.g. optimiser stage boundaries).
        param: The option the path came from, named if it cannot be written.
    """
    panel = {label: (x, ys) for label, ys in series.items()}
    return plot_panels(
        path,
        {title: panel},
        xlabel=xlabel,
        ylabel=ylabel,
        log=log,
        markers=markers,
        size=(8, 4.5),
        param=param,
    )


def plot_panels(
    path: str | os.PathLike[str],
    panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float | None]]]],
    *,
    xlabel: str = "epoch",
    ylabel: str | Mapping[str, str] = "loss",
    log: bool = False,
    markers: Sequence[float] = (),
    size: tuple[float, float] | None = None,
    param: str = "-o",
) -> Path:
    """Plots a grid of panels (up to 4 per row), each with its own curves, to a PNG.

    Uses matplotlib's Agg canvas directly: no pyplot, no global state.

    Args:
        path: Output PNG.
        panels: Panel title → curve label → (x values, y values).
        xlabel: Shared x label.
        ylabel: y label, or panel title → y label.
        log: Log-scale y axes.
        markers: x positions of vertical dotted lines on every panel.
        size: Figure size in inches (default: 3.6 × 2.8 per panel).
        param: The option the path came from, named if it cannot be written (a copy is then saved
            elsewhere: :func:`~styleforge.files.write_with_fallback`).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = max(1, len(panels))
    cols = min(4, n)
    rows = -(-n // cols)
    figure = Figure(figsize=size or (3.6 * cols, 2.8 * rows), dpi=100)
    FigureCanvasAgg(figure)
    small = len(panels) > 1
    legend_shown = False
    for i, (title, curves) in enumerate(panels.items()):
        axes = figure.add_subplot(rows, cols, i + 1)
        plotted = _plot_curves(axes, curves, log)
        for m in markers:
            axes.axvline(m, color="grey", linestyle=":", linewidth=1)
        if log:
            axes.set_yscale("log")
        if title:
            axes.set_title(title, fontsize=10 if small else 12)
        axes.set_xlabel(xlabel, fontsize=8 if small else 10)
        axes.set_ylabel(
            ylabel if isinstance(ylabel, str) else ylabel.get(title, ""), fontsize=8 if small else 10
        )
        if small:
            axes.tick_params(labelsize=7)
        axes.grid(True, which="both", alpha=0.3)
        # Several panels share one legend, on the first panel with a curve (a panel can be empty: an
        # attribute with no labels has no validation curve).
        if plotted and not (small and legend_shown):
            axes.legend(fontsize=7 if small else 8)
            legend_shown = True

    def save(handle: BinaryIO) -> None:
        # A label in a script the font lacks (a style named 風) is drawn as boxes, and the names are
        # in the history: no warning for it on the user's terminal.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Glyph .* missing from font")
            figure.tight_layout()
            figure.savefig(handle, format="png")

    return write_with_fallback(path, save, param=param)


def _plot_curves(
    axes: Any, curves: Mapping[str, tuple[Sequence[float], Sequence[float | None]]], log: bool
) -> bool:
    """Draws each curve's finite points (positive ones on a log scale); returns whether any was drawn."""
    plotted = False
    for label, (xs, ys) in curves.items():
        points = [(a, b) for a, b in zip(xs, ys) if b is not None and math.isfinite(b) and (b > 0 or not log)]
        if points:
            axes.plot(*zip(*points), label=label, linewidth=1.3)
            plotted = True
    return plotted


class CheckpointWriter:
    """Writes ``<stem>_<iteration>.png`` beside the output every ``every`` iterations.

    Each PNG carries the iteration and its losses (plus ``metadata``) in its text chunk.

    Args:
        output: The run's output path; checkpoints go beside it as ``OUT_0100.png``.
        every: Interval in iterations, ≥ 1.
        metadata: Extra JSON-able data stored in every checkpoint.
        transform: Optional function applied to the image before saving (e.g. colour preservation).
    """

    def __init__(
        self,
        output: str | os.PathLike[str],
        every: int,
        metadata: Mapping[str, Any] | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        if every < 1:
            raise InvalidParameter("--checkpoint-every", every, "a whole number >= 1")
        output = Path(output)
        self.pattern = str(output.with_name(f"{output.stem}_{{:04d}}{output.suffix}"))
        self.every, self.metadata, self.transform = every, dict(metadata or {}), transform
        self.written: list[Path] = []
        self.failed: list[str] = []  # "path (reason)" of checkpoints that could not be written

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress) and event.iteration % self.every == 0:
            image = event.image[0].detach()
            if self.transform is not None:
                image = self.transform(image)
            meta = {**self.metadata, "iteration": event.iteration, "losses": event.summary.as_row()}
            path = self.pattern.format(event.iteration)
            try:
                self.written.append(save_image(path, image, metadata=meta))
            except (
                OSError
            ) as exc:  # a checkpoint is not the result: the run goes on, the CLI says so at the end
                self.failed.append(f"{path} ({exc.strerror or exc})")


class GifRecorder:
    """Keeps a frame every ``every`` iterations and writes them as an animated GIF.

    Args:
        path: Output ``.gif``.
        every: Interval in iterations, ≥ 1.
        duration_ms: Display time of each frame.
    """

    def __init__(self, path: str | os.PathLike[str], every: int, duration_ms: int = 100) -> None:
        if every < 1:
            raise InvalidParameter("--gif-every", every, "a whole number >= 1")
        self.path, self.every, self.duration_ms = Path(path), every, duration_ms
        if self.path.suffix.lower() != ".gif" or self.path.is_dir():
            raise InvalidParameter("--progress-gif", str(path), "a file ending in .gif")
        check_writable(self.path, param="--progress-gif")
        self.frames: list[np.ndarray] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, Progress) and (event.iteration % self.every == 0 or event.iteration == 1):
            frame = event.image[0].detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
            self.frames.append(frame)

    def write(self) -> Path | None:
        """Writes the GIF (looping forever); ``None`` when no frame was recorded."""
        if not self.frames:
            return None
        import imageio.v3 as iio

        size = self.frames[-1].shape[1::-1]  # coarse-to-fine frames grow: show all at the final size
        frames = [
            f
            if f.shape[:2] == self.frames[-1].shape[:2]
            else np.asarray(Image.fromarray(f).resize(size, Image.Resampling.NEAREST))
            for f in self.frames
        ]
        data = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=self.duration_ms, loop=0)
        return write_with_fallback(self.path, data, param="--progress-gif")


def contact_sheet(
    cells: Sequence[Sequence[Tensor | None]],
    *,
    row_labels: Sequence[str] = (),
    col_labels: Sequence[str] = (),
    captions: Sequence[Sequence[str]] = (),
    title: str = "",
    cell_px: int = 160,
) -> Image.Image:
    """Lays images out in a labelled grid.

    Args:
        cells: Rows of (3, H, W) images in [0, 1]; ``None`` leaves a cell blank (e.g. a failed run).
        row_labels: One label per row, written left of it.
        col_labels: One label per column, written above it.
        captions: Per-cell text written under each image (e.g. its final loss).
        title: Written across the top.
        cell_px: Long side of each cell's image.

    Returns:
        A Pillow RGB image.
    """
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=13)
    cols = max((len(r) for r in cells), default=0)
    label_w = (max((int(font.getlength(t)) for t in row_labels), default=0) + 12) if row_labels else 0
    title_h = 24 if title else 0
    head_h = 20 if col_labels else 0
    cap_h = 18 if captions else 0
    pad = 6
    col_w = max(
        [cell_px]
        + [int(font.getlength(t)) + 4 for row in captions for t in row]
        + [int(font.getlength(t)) + 4 for t in col_labels]
    )
    row_h = [
        max(
            [cell_px * min(1.0, im.shape[-2] / max(im.shape[-2:])) for im in row if im is not None]
            or [cell_px]
        )
        for row in cells
    ]
    row_h = [int(round(h)) for h in row_h]
    width = label_w + cols * (col_w + pad) + pad
    height = title_h + head_h + sum(h + cap_h + pad for h in row_h) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 4), title, fill="black", font=ImageFont.load_default(size=16))
    for c, text in enumerate(col_labels):
        draw.text((label_w + pad + c * (col_w + pad), title_h + 2), text, fill="black", font=font)
    top = title_h + head_h + pad
    for r, row in enumerate(cells):
        if r < len(row_labels):
            draw.text((4, top + row_h[r] // 2 - 7), row_labels[r], fill="black", font=font)
        for c, image in enumerate(row):
            left = label_w + pad + c * (col_w + pad)
            if image is None:
                draw.rectangle([left, top, left + cell_px - 1, top + row_h[r] - 1], outline="red")
                draw.text((left + 6, top + 6), "failed", fill="red", font=font)
            else:
                sheet.paste(_tile(image, cell_px), (left, top))
            if r < len(captions) and c < len(captions[r]):
                draw.text((left, top + row_h[r] + 2), captions[r][c], fill="dimgray", font=font)
        top += row_h[r] + cap_h + pad
    return sheet


def _tile(image: Tensor, cell_px: int) -> Image.Image:
    """A contact sheet's picture of ``image`` ((3, H, W) in [0, 1]), its long side ``cell_px``: small
    images are enlarged (pixelated), large ones reduced."""
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    tile = Image.fromarray(array, "RGB")
    zoom = cell_px / max(tile.size)
    fit = (max(1, round(tile.width * zoom)), max(1, round(tile.height * zoom)))
    return tile.resize(fit, Image.Resampling.NEAREST if zoom > 1 else Image.Resampling.LANCZOS)
