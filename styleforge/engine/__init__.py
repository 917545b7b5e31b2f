"""The shared weighted-loss engine and optimiser tools used by both the transfer and training loops."""

from .events import Callback, Event, Notice, Progress, StageEnded, StageStarted
from .optimize import (
    OPTIMIZERS,
    PIXEL_LR,
    DivergenceGuard,
    HistoryEntry,
    OptimizerSpec,
    PixelResult,
    StopRule,
    make_optimizer,
    optimise_pixels,
    parse_optimizer,
)
from .terms import LossReport, LossSummary, LossTerm, WeightedLoss, validate_weight
from .events import BatchProgress, Download, EpochEnded, EpochStarted, FitEnded, FrameProgress, TaskProgress, download_events
from .fit import SCHEDULES, TRAIN_LR, FitCheckpoint, FitResult, evaluate, fit
from .distributed import Distributed, init_distributed

__all__ = [
    "Callback", "Event", "Notice", "Progress", "StageEnded", "StageStarted",
    "OPTIMIZERS", "PIXEL_LR", "DivergenceGuard", "HistoryEntry", "OptimizerSpec", "PixelResult",
    "StopRule", "make_optimizer", "optimise_pixels", "parse_optimizer",
    "LossReport", "LossSummary", "LossTerm", "WeightedLoss", "validate_weight",
    "BatchProgress", "Download", "EpochEnded", "EpochStarted", "FitEnded", "FrameProgress", "TaskProgress",
    "download_events",
    "SCHEDULES", "TRAIN_LR", "FitCheckpoint", "FitResult", "evaluate", "fit",
    "Distributed", "init_distributed",
]
