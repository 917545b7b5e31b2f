"""The progress displays: engine events shown as tqdm bars on a terminal and as lines otherwise.

Imported by a command when it runs (the engine's event types bring torch).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..engine import Download, Event, Notice, Progress, StageEnded, StageStarted

__all__ = ["PicturesDisplay", "ProgressDisplay", "TrainDisplay", "VideoDisplay", "format_duration"]


class _Display:
    """What every progress display shares: notices, a tqdm bar on a terminal, lines written around it."""

    def __init__(self, *, quiet: bool = False, stream: Any = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interactive = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar: Any = None
        self.downloading: str | None = None  # the download shown last

    def _echo(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            click.echo(text, file=self.stream)

    def _bar(self, total: int, desc: str | None = None) -> None:
        """Replaces the current bar (if any) by a new one of ``total`` steps."""
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=desc, file=self.stream, dynamic_ncols=True, leave=False)

    def __call__(self, event: Event) -> None:
        if isinstance(event, Notice):
            self._echo(f"note: {event.message}")
        elif isinstance(event, Download):
            self._download(event)
        if not self.quiet:
            self.show(event)

    def _download(self, event: Download) -> None:
        """A byte-counting bar on a terminal, one line otherwise, when a download starts (shown even
        with ``--quiet``: minutes of silence would look like a hang)."""
        if event.what != self.downloading:
            self.close()
            self.downloading = event.what
            if not self.interactive:
                size = f" ({event.total / 1e6:.0f} MB)" if event.total else ""
                self._echo(f"downloading {event.what}{size} ...")
                return
            from tqdm import tqdm

            self.bar = tqdm(
                total=event.total,
                desc=event.what,
                file=self.stream,
                unit="B",
                unit_scale=True,
                dynamic_ncols=True,
                leave=False,
            )
        if self.bar is not None:
            if event.total is not None:
                self.bar.total = event.total
            self.bar.n = event.done
            self.bar.refresh()
            if event.total is not None and event.done >= event.total:
                self.close()

    def show(self, event: Event) -> None:
        """Displays one event (not called with ``quiet``)."""

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class ProgressDisplay(_Display):
    """Shows transfer events: a tqdm bar on a terminal, a line every ~10% otherwise.

    Each line shows the iteration, the total and every weighted term, formatted so that the printed
    parts add up exactly to the printed total.
    """

    def show(self, event: Event) -> None:
        if isinstance(event, StageStarted):
            self._echo(
                f"stage {event.index + 1}: {event.name} for {event.steps} iterations (lr {event.lr:g})"
            )
            if self.interactive and self.bar is None:
                self._bar(event.total_iterations)
        elif isinstance(event, Progress):
            line = f"loss {event.summary.format()}"
            if self.bar is not None:
                self.bar.n = event.iteration
                self.bar.set_postfix_str(line, refresh=True)
            else:
                every = max(1, event.total_iterations // 10)
                if event.iteration % every == 0 or event.iteration in (1, event.total_iterations):
                    self._echo(f"iter {event.iteration}/{event.total_iterations} · {line}")
        elif isinstance(event, StageEnded) and event.reason != "completed":
            self._echo(f"stage {event.index + 1} stopped: {event.detail}")


class TrainDisplay(_Display):
    """Shows training events: one Keras-style line per epoch, and on a terminal a tqdm bar within
    each epoch (and while images are read and features computed)."""

    task = ""

    def show(self, event: Event) -> None:
        from ..attributes.metrics import format_epoch_line
        from ..engine import BatchProgress, EpochEnded, EpochStarted, FitEnded, TaskProgress

        if isinstance(event, TaskProgress):
            if self.interactive:
                if self.bar is None or self.task != event.task:
                    self._bar(event.total, event.task)
                    self.task = event.task
                self.bar.n = event.done
                self.bar.refresh()
                if event.done >= event.total:
                    self.close()
            elif event.done >= event.total:
                self._echo(f"{event.task}: {event.done}/{event.total}")
        elif isinstance(event, EpochStarted) and self.interactive:
            self._bar(event.batches, f"epoch {event.epoch}/{event.epochs}")
            self.task = "epoch"
        elif isinstance(event, BatchProgress) and self.bar is not None:
            self.bar.n = event.batch
            self.bar.set_postfix_str(f"loss {event.summary.total:.4g}", refresh=True)
        elif isinstance(event, EpochEnded):
            self.close()
            self._echo(format_epoch_line(event))
        elif isinstance(event, FitEnded) and event.reason != "completed":
            # "interrupted: interrupted by the user" for Ctrl-C; a signal's detail ("stopped by SIGTERM")
            # says it all
            self._echo(
                event.detail if event.detail.startswith("stopped by ") else f"{event.reason}: {event.detail}"
            )


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class VideoDisplay(ProgressDisplay):
    """Shows a video's progress: one line per frame with its time and the ETA of the rest; on a
    terminal, each frame's iterations as a bar as well."""

    def show(self, event: Event) -> None:
        from ..engine import FrameProgress

        if isinstance(event, FrameProgress):
            self.close()
            if event.skipped:
                self._echo(f"frame {event.frame}/{event.frames}: done already (--resume)")
                return
            eta = (
                f" · ETA {format_duration(event.remaining)}"
                if event.remaining is not None and event.frame < event.frames
                else ""
            )
            loss = f" · loss {event.summary.format()}" if event.summary is not None else ""
            self._echo(f"frame {event.frame}/{event.frames} in {format_duration(event.seconds)}{eta}{loss}")
        elif self.interactive and not isinstance(event, StageEnded):
            super().show(event)
        elif isinstance(event, StageEnded) and event.reason not in ("completed", "stopped"):
            self._echo(f"frame stage {event.index + 1} {event.reason}: {event.detail}")


class PicturesDisplay(ProgressDisplay):
    """Shows a run of many pictures on a cluster's workers as one display: on a terminal one bar over
    the pictures, each running one counting by its share of iterations done; the notices and each
    finished picture's line (:meth:`echo`) above it.

    Args:
        total: Pictures in the run.
    """

    def __init__(self, total: int, *, quiet: bool = False, stream: Any = None) -> None:
        super().__init__(quiet=quiet, stream=stream)
        self.total, self.finished = total, 0
        self.running: dict[int, float] = {}

    def show(self, event: Event) -> None:
        from ..cluster.pictures import PictureProgress

        if isinstance(event, PictureProgress):
            self.running[event.number] = event.iteration / max(1, event.total_iterations)
            self._update()

    def done(self, number: int) -> None:
        """Picture ``number`` came back."""
        self.running.pop(number, None)
        self.finished += 1
        self._update()

    def echo(self, text: str) -> None:
        """A line above the bar."""
        self._echo(text)

    def _update(self) -> None:
        if not self.interactive or self.quiet:
            return
        if self.bar is None:
            self._bar(self.total, "pictures")
        self.bar.n = round(self.finished + sum(self.running.values()), 2)
        self.bar.set_postfix_str(f"{len(self.running)} running", refresh=True)
