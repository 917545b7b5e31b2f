"""Training the attribute network on the shared engine: :func:`train_attrs`, behind ``train-attrs``.

One engine term per attribute head, named after the attribute: the numeric heads' regression loss
(``--numeric-loss``) on labels mapped to [-1, 1], the categorical heads' cross-entropy (with label
smoothing). Unlabelled cells are masked out of their head's term and metrics. ``--loss-weight``
sets each term's weight (``numeric``, ``categorical`` or an attribute name); ``--balance`` can
rescale the terms automatically:

- ``initial``: each head's loss is divided by its value on the training set before the first
  update, so every term starts near 1 (the hand-balancing seed 000's author did, done once).
- ``uncertainty``: Kendall, Gal & Cipolla (2018): each term becomes ``exp(-s)·L + s`` with a learned
  log-variance ``s`` per head (the common simplified form: the paper's ½ factors only rescale).
  The regulariser ``s`` is inside the term's value, so the printed total is still exactly the sum
  of the printed terms, and each ``s`` is logged as ``logvar.<attribute>`` in ``history.csv``.

The loop itself is :func:`styleforge.engine.fit.fit`. Images are decoded (and, with ``--finetune``,
augmented) in ``--workers`` worker processes, each image with its own seed per epoch, so the result
does not depend on the number of workers. Under ``torchrun`` every process trains on its part of
each global batch (:mod:`styleforge.engine.distributed`) and the result equals the single-process
run up to floating-point noise; only rank 0 prints and writes. The run directory receives
``model.safetensors`` + ``model.json`` (best epoch), ``history.csv``, ``curves.png``,
``metrics.json`` and, for ``--resume``, ``resume.pt`` (tensors and plain values only, read back with
``weights_only=True``) and ``features.safetensors`` (the frozen backbone's cached features).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..version import __version__
from ..config import TrainConfig
from ..device import resolve_device
from ..engine import (
    TRAIN_LR,
    Callback,
    DivergenceGuard,
    FitCheckpoint,
    Notice,
    StopRule,
    WeightedLoss,
    evaluate,
    fit,
    parse_optimizer,
    validate_weight,
)
from ..engine.distributed import Distributed, init_distributed
from ..engine.events import TaskProgress, download_events, emit
from ..errors import InputFileError, InvalidParameter, did_you_mean
from ..nets.vgg import VGG_ARCHS
from ..nets.weights import resolve_weights
from ..files import write_atomic
from ..report import plot_panels, write_history
from .augment import augment_sample, sample_seed
from .features import compute_features, read_feature_cache, write_feature_cache
from .labels import assign_splits, encode_labels, read_labels
from .preprocess import Skipped, load_images
from .model import MODEL_JSON, AttributeNet, Hypercolumn, read_model_json, save_model
from .kinds import CategoricalAttribute, NumericAttribute
from .schema import ACAN_SCHEMA, Schema, load_schema

__all__ = [
    "HEAD_LR",
    "RESUME_OPTIONS",
    "RESUME_FILE",
    "FEATURES_FILE",
    "Batch",
    "HeadLoss",
    "AttributeMetrics",
    "TrainResult",
    "parse_loss_weights",
    "head_weights",
    "build_loss",
    "auto_workers",
    "train_attrs",
]

#: Default learning rate per optimiser for the attribute heads (``--lr`` unset). The heads are linear
#: maps of an L2-normalised hypercolumn (1,472–15,104 dims of norm 1), whose logits move slowly at
#: PyTorch's defaults (``engine.fit.TRAIN_LR``): on the 400-image synthetic set (benchmarks/README.md)
#: Adam at 1e-3 is still improving after 200 epochs, at 1e-2 it reaches a lower validation loss in
#: 100. Measured there: adam/adamw 1e-2, momentum/nesterov 0.1, rmsprop 1e-3 (Keras's default),
#: adadelta 1.0; adagrad stays at PyTorch's 1e-2 (0.1 diverged with ResNet-50's 15,104 dims); plain
#: sgd 0.1 is stable but slow. With ``--finetune`` the backbone gets ``backbone_lr_scale`` × these.
HEAD_LR: dict[str, float] = {
    **TRAIN_LR,
    "adam": 1e-2,
    "adamw": 1e-2,
    "sgd": 0.1,
    "momentum": 0.1,
    "nesterov": 0.1,
    "rmsprop": 1e-3,
    "adagrad": 1e-2,
    "adadelta": 1.0,
}

#: Options that may differ when a run is resumed; the others must match the saved run.
RESUME_OPTIONS: tuple[str, ...] = ("epochs", "patience", "min_delta", "divergence_factor", "device", "feature_cache",
                                   "workers")
RESUME_FILE = "resume.pt"
FEATURES_FILE = "features.safetensors"


# --------------------------------------------------------------------------------------------------
# Loss weights


def parse_loss_weights(items: Iterable[str]) -> dict[str, float]:
    """Parses repeated ``--loss-weight KEY=W`` values (later ones win).

    Raises:
        InvalidParameter: Not ``KEY=W``, or W not a finite number >= 0.
    """
    out: dict[str, float] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidParameter("--loss-weight", item, "KEY=WEIGHT, e.g. categorical=0.7 or contrast=2")
        out[key] = validate_weight(key, value.strip(), param="--loss-weight")
    return out


def head_weights(schema: Schema, loss_weights: Mapping[str, float]) -> dict[str, float]:
    """Each head's weight: 1, then ``numeric`` / ``categorical`` for its kind, then its own name.

    Args:
        schema: The attributes.
        loss_weights: ``numeric``, ``categorical`` or attribute name → weight.

    Raises:
        InvalidParameter: An unknown key (the valid ones listed), a kind the schema does not have,
            or an invalid weight.
    """
    keys = ["numeric", "categorical", *schema.names]
    for key, value in loss_weights.items():
        if key not in keys:
            raise InvalidParameter("--loss-weight", key, "numeric, categorical or an attribute name: " + ", ".join(schema.names),
                                   did_you_mean(key, keys))
        validate_weight(key, value, param="--loss-weight")
        if key == "numeric" and not schema.numeric or key == "categorical" and not schema.categorical:
            raise InvalidParameter("--loss-weight", key, "a kind of attribute the schema has: " + ", ".join(schema.names))
    out = {}
    for attribute in schema:
        weight = loss_weights.get(attribute.kind, 1.0)
        out[attribute.name] = float(loss_weights.get(attribute.name, weight))
    return out


# --------------------------------------------------------------------------------------------------
# Batches, terms, metrics


@dataclass
class Batch:
    """A batch for :func:`fit`.

    Attributes:
        x: Features ``(B, D)`` (frozen backbone) or images ``(B, 3, S, S)`` in [0, 1] (fine-tuning).
        labels: Attribute → numeric ``(B,)`` float in [-1, 1] with NaN where unlabelled, or
            categorical ``(B,)`` int64 with -1 where unlabelled.
    """

    x: Tensor
    labels: dict[str, Tensor]

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def counts(self) -> dict[str, float]:
        """Labelled values per attribute: each term's weight in an epoch's mean."""
        return {name: float(_mask(y).sum()) for name, y in self.labels.items()}


def _mask(y: Tensor) -> Tensor:
    return ~torch.isnan(y) if y.is_floating_point() else y >= 0


class HeadLoss:
    """One head's masked loss, called as ``term(outputs, batch)`` by the engine.

    Args:
        attribute: The attribute.
        numeric_loss: ``mse``, ``smooth_l1``, ``l1`` or ``huber`` (numeric heads, on the [-1, 1] scale).
        delta: ``huber``'s delta / ``smooth_l1``'s beta.
        label_smoothing: Cross-entropy label smoothing (categorical heads).

    Returns (when called): the mean loss over the batch's labelled values, a 0-d tensor (0 with a
    gradient of 0 when none is labelled).
    """

    def __init__(self, attribute: NumericAttribute | CategoricalAttribute, numeric_loss: str = "mse",
                 delta: float = 1.0, label_smoothing: float = 0.0) -> None:
        self.attribute, self.name = attribute, attribute.name
        self.numeric = isinstance(attribute, NumericAttribute)
        self.numeric_loss, self.delta, self.label_smoothing = numeric_loss, float(delta), float(label_smoothing)

    def per_item(self, output: Tensor, target: Tensor) -> Tensor:
        """Unreduced loss of labelled values only: ``(n_labelled,)``."""
        mask = _mask(target)
        if self.numeric:
            pred, true = output[mask], target[mask].to(output.dtype)
            if self.numeric_loss == "mse":
                return (pred - true) ** 2
            if self.numeric_loss == "l1":
                return (pred - true).abs()
            if self.numeric_loss == "smooth_l1":
                return F.smooth_l1_loss(pred, true, reduction="none", beta=self.delta)
            return F.huber_loss(pred, true, reduction="none", delta=self.delta)
        return F.cross_entropy(output[mask], target[mask], reduction="none", label_smoothing=self.label_smoothing)

    def __call__(self, outputs: Mapping[str, Tensor], batch: Batch) -> Tensor:
        output = outputs[self.name]
        values = self.per_item(output, batch.labels[self.name])
        if values.numel() == 0:
            return output.sum() * 0.0
        return values.mean()


class _InitialBalanced:
    """``--balance initial``: the head's loss divided by its value before training."""

    def __init__(self, term: HeadLoss, initial: float) -> None:
        self.term, self.initial = term, float(initial)

    def __call__(self, outputs: Mapping[str, Tensor], batch: Batch) -> Tensor:
        return self.term(outputs, batch) / self.initial


class _UncertaintyBalanced:
    """``--balance uncertainty``: ``exp(-s)·L + s`` (Kendall et al. 2018), ``s`` learned."""

    def __init__(self, term: HeadLoss, log_var: nn.Parameter) -> None:
        self.term, self.log_var = term, log_var

    def __call__(self, outputs: Mapping[str, Tensor], batch: Batch) -> Tensor:
        value = self.term(outputs, batch)
        if not bool(_mask(batch.labels[self.term.name]).any()):
            return value + self.log_var * 0.0  # nothing labelled: no term, not even the regulariser
        return torch.exp(-self.log_var) * value + self.log_var


def build_loss(
    schema: Schema,
    config: TrainConfig,
    *,
    initial: Mapping[str, float] | None = None,
    log_vars: nn.ParameterDict | None = None,
) -> tuple[WeightedLoss, dict[str, HeadLoss]]:
    """The engine loss: one term per head, weighted by ``--loss-weight``, balanced by ``--balance``.

    Args:
        schema: The attributes.
        config: ``numeric_loss``, ``huber_delta``, ``label_smoothing``, ``loss_weights``, ``balance``.
        initial: ``balance == "initial"``: each head's loss before training (values <= 0 or
            non-finite divide by 1).
        log_vars: ``balance == "uncertainty"``: one learnable scalar per head.

    Returns:
        The :class:`WeightedLoss` and the plain (unbalanced) head losses.
    """
    heads = {a.name: HeadLoss(a, config.numeric_loss, config.huber_delta, config.label_smoothing) for a in schema}
    terms: dict[str, Callable[..., Tensor]] = dict(heads)
    if config.balance == "initial":
        assert initial is not None
        terms = {n: _InitialBalanced(h, v if math.isfinite(v := float(initial[n])) and v > 0 else 1.0) for n, h in heads.items()}
    elif config.balance == "uncertainty":
        assert log_vars is not None
        terms = {n: _UncertaintyBalanced(h, log_vars[n]) for n, h in heads.items()}
    return WeightedLoss(terms, head_weights(schema, config.loss_weights), param="--loss-weight"), heads


class AttributeMetrics:
    """Accumulates, per head, its plain loss (``head_loss.<name>``), the mean absolute error on the
    label scale (``mae.<name>``, numeric) or the accuracy (``acc.<name>``, categorical), over the
    labelled values of a pass. A head with no labelled value gets NaN."""

    def __init__(self, schema: Schema, heads: Mapping[str, HeadLoss]) -> None:
        self.schema, self.heads = schema, heads
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def _add(self, key: str, value: float, count: int) -> None:
        self.sums[key] = self.sums.get(key, 0.0) + value
        self.counts[key] = self.counts.get(key, 0) + count

    @torch.no_grad()
    def update(self, outputs: Mapping[str, Tensor], batch: Batch) -> None:
        for attribute in self.schema:
            name = attribute.name
            output, target = outputs[name].detach(), batch.labels[name]
            mask = _mask(target)
            count = int(mask.sum())
            self._add(f"head_loss.{name}", float(self.heads[name].per_item(output, target).sum()), count)
            if isinstance(attribute, NumericAttribute):
                error = attribute.from_unit(output[mask].double()) - attribute.from_unit(target[mask].double())
                self._add(f"mae.{name}", float(error.abs().sum()), count)
            else:
                self._add(f"acc.{name}", float((output[mask].argmax(-1) == target[mask]).sum()), count)

    def _order(self) -> list[str]:
        order = [f"head_loss.{a.name}" for a in self.schema]
        return order + [f"{'mae' if isinstance(a, NumericAttribute) else 'acc'}.{a.name}" for a in self.schema]

    def compute(self) -> dict[str, float]:
        return {k: (self.sums[k] / self.counts[k] if self.counts.get(k) else math.nan) for k in self._order() if k in self.sums}

    def all_reduce(self, reduce: Callable[[Tensor], Tensor]) -> None:
        """Replaces the sums and counts by their totals over the ranks of a distributed run.

        Args:
            reduce: Sums a tensor over the ranks (:meth:`Distributed.all_reduce`).
        """
        keys = self._order()
        state = torch.tensor([self.sums.get(k, 0.0) for k in keys] + [float(self.counts.get(k, 0)) for k in keys],
                             dtype=torch.float64)
        seen = torch.tensor([1.0 if k in self.sums else 0.0 for k in keys], dtype=torch.float64)
        total = reduce(torch.cat([state, seen])).tolist()
        n = len(keys)
        self.sums = {k: total[i] for i, k in enumerate(keys) if total[2 * n + i] > 0}
        self.counts = {k: int(round(total[n + i])) for i, k in enumerate(keys) if total[2 * n + i] > 0}


class _Batches:
    """The batches of one pass, made lazily (so augmented images are never all in memory).

    Under torchrun, each global batch (the one a single process would make) is split into
    contiguous per-rank parts and this rank gets its part. With ``augment``, one seed is drawn per
    epoch from ``generator`` (after the shuffle) and each image is augmented with
    :func:`sample_seed` of it and the image's row.

    Args:
        n: Images in the pass.
        batch_size: Images per global batch.
        make: ``(positions (b,) int64 into the pass, epoch seed or None)`` for every batch of the
            pass → the batches.
        generator: Shuffles (and seeds the augmentation); ``None``: in order.
        dist: The distributed run, or ``None``.
        augment: Draw an epoch seed.
    """

    def __init__(self, n: int, batch_size: int, make: Callable[[list[Tensor], int | None], Iterable[Batch]],
                 generator: torch.Generator | None = None, dist: Distributed | None = None, augment: bool = False) -> None:
        self.n, self.batch_size, self.make, self.generator = n, batch_size, make, generator
        self.dist, self.augment = dist, augment

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        order = torch.randperm(self.n, generator=self.generator) if self.generator is not None else torch.arange(self.n)
        epoch_seed = None
        if self.augment and self.generator is not None:
            epoch_seed = int(torch.randint(0, 2**62, (), generator=self.generator))
        parts = []
        for start in range(0, self.n, self.batch_size):
            part = order[start : start + self.batch_size]
            parts.append(part[self.dist.shard(len(part))] if self.dist is not None else part)
        return iter(self.make(parts, epoch_seed))


class _ImageSet(torch.utils.data.Dataset):
    """Key ``(row, seed or None)`` → image ``row`` as float ``(3, S, S)`` in [0, 1], augmented with
    ``seed`` (:func:`augment_sample`) when one is given."""

    def __init__(self, images: Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int | None]) -> Tensor:
        row, seed = key
        x = self.images[row].float().div_(255)
        return augment_sample(x, seed) if seed is not None else x


class _Stack:
    """Collates images ``(3, S, S)`` into ``(B, 3, S, S)`` (``B`` may be 0 on a rank with no share)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)

    def __call__(self, samples: list[Tensor]) -> Tensor:
        return torch.stack(samples) if samples else torch.empty((0, *self.shape))


class _PassSampler:
    """The batch sampler of :class:`_ImageLoader`: yields the keys of the pass it was last given."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int | None]]] = []

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[tuple[int, int | None]]]:
        return iter(self.batches)


class _ImageLoader:
    """Every pass over the decoded images (fine-tuning): one ``DataLoader`` whose ``workers``
    persistent processes convert and augment images, in pinned memory for CUDA.

    Args:
        images: uint8 ``(N, 3, S, S)``.
        workers: Worker processes; 0: in this process.
        pin_memory: Collate batches in page-locked memory.
    """

    def __init__(self, images: Tensor, workers: int, pin_memory: bool) -> None:
        self.sampler = _PassSampler()
        self.loader: torch.utils.data.DataLoader | None = torch.utils.data.DataLoader(
            _ImageSet(images), batch_sampler=self.sampler, num_workers=workers, collate_fn=_Stack(images.shape[1:]),
            pin_memory=pin_memory, persistent_workers=workers > 0,
            generator=torch.Generator(),  # its seed draw must not touch the global generator
        )

    def __call__(self, keys: list[list[tuple[int, int | None]]]) -> Iterator[Tensor]:
        """The batches ``(b, 3, S, S)`` float in [0, 1] of ``keys``' lists of ``(row, seed)``, in order."""
        assert self.loader is not None
        self.sampler.batches = keys
        return iter(self.loader)

    def close(self) -> None:
        """Stops the worker processes."""
        self.loader = None


def auto_workers(processes_on_node: int = 1) -> int:
    """``--workers``' default: ``min(4, CPU cores per process - 1)``, at least 0.

    Args:
        processes_on_node: Training processes sharing this machine's cores (torchrun's
            ``LOCAL_WORLD_SIZE``).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(0, min(4, cores // max(1, processes_on_node) - 1))


class _Trainable(nn.Module):
    """What the optimiser trains: the heads, the backbone when fine-tuning, the log-variances."""

    def __init__(self, heads: nn.ModuleDict, backbone: nn.Module | None, log_vars: nn.ParameterDict | None) -> None:
        super().__init__()
        self.heads = heads
        if backbone is not None:
            self.backbone = backbone
        if log_vars is not None:
            self.log_vars = log_vars


# --------------------------------------------------------------------------------------------------
# The run


@dataclass
class TrainResult:
    """What :func:`train_attrs` did.

    Attributes:
        run_dir: The run directory.
        history: One row per epoch (as ``history.csv``).
        best_epoch: The epoch whose weights are in ``model.safetensors`` (0: none finished).
        stop_reason: ``completed``, ``stopped`` (early stopping), ``diverged`` or ``interrupted``.
        stop_detail: A sentence for the user.
        metrics: ``metrics.json``'s content.
        skipped: Images left out with ``skip_bad``.
        config: The configuration that ran.
        files: The files written.
    """

    run_dir: Path
    history: list[dict[str, float]]
    best_epoch: int
    stop_reason: str
    stop_detail: str
    metrics: dict[str, Any]
    skipped: list[Skipped]
    config: TrainConfig
    files: list[Path] = field(default_factory=list)


def _resolve_config(run_dir: Path, config: TrainConfig | None, resume: bool, options: dict[str, Any]
                    ) -> tuple[TrainConfig, dict[str, Any] | None]:
    if not resume:
        if run_dir.exists() and not run_dir.is_dir():
            raise InvalidParameter("-o", str(run_dir), "a folder for the run (this is a file)")
        if (run_dir / MODEL_JSON).exists() or (run_dir / RESUME_FILE).exists():
            raise InvalidParameter("-o", str(run_dir), "a new or empty folder",
                                   "it holds a run already: pass --resume to continue it, or choose another folder")
        return dataclasses.replace(config or TrainConfig(), **options), None
    if not (run_dir / RESUME_FILE).is_file():
        raise InputFileError("--resume", run_dir, f"has no {RESUME_FILE} to resume from (no epoch of a run finished there)")
    meta = read_model_json(run_dir, "--resume")
    saved = TrainConfig.from_dict(meta["training"]["config"])
    if config is not None:
        for f in dataclasses.fields(TrainConfig):
            if f.name not in RESUME_OPTIONS and getattr(config, f.name) != getattr(saved, f.name):
                raise InvalidParameter(
                    "--" + f.name.replace("_", "-"), getattr(config, f.name),
                    f"{getattr(saved, f.name)!r}, as in the run being resumed",
                    "only " + ", ".join("--" + o.replace("_", "-") for o in RESUME_OPTIONS) + " may change on --resume",
                )
    base = config if config is not None else saved
    unknown = [k for k in options if k not in RESUME_OPTIONS and options[k] != getattr(saved, k, None)]
    if unknown:
        key = unknown[0]
        raise InvalidParameter("--" + key.replace("_", "-"), options[key], f"{getattr(saved, key, None)!r}, as in the run being resumed",
                               "only " + ", ".join("--" + o.replace("_", "-") for o in RESUME_OPTIONS) + " may change on --resume")
    return dataclasses.replace(base, **options), meta


def _baseline(schema: Schema, train: Mapping[str, Tensor], other: Mapping[str, Tensor]) -> dict[str, float]:
    """The trivial predictor's metrics on ``other``: the training mean (numeric), the majority class."""
    out: dict[str, float] = {}
    for attribute in schema:
        y_train, y = train[attribute.name], other[attribute.name]
        m_train, m = _mask(y_train), _mask(y)
        if not bool(m.any()) or not bool(m_train.any()):
            continue
        if isinstance(attribute, NumericAttribute):
            mean = attribute.from_unit(y_train[m_train].double()).mean()
            out[f"mae.{attribute.name}"] = float((attribute.from_unit(y[m].double()) - mean).abs().mean())
        else:
            majority = int(torch.bincount(y_train[m_train], minlength=attribute.num_classes).argmax())
            out[f"acc.{attribute.name}"] = float((y[m] == majority).double().mean())
    return out


def _plot(path: Path, schema: Schema, history: Sequence[Mapping[str, float]]) -> Path:
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
    return plot_panels(path, panels, xlabel="epoch", ylabel=ylabels)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _features(
    backbone: Hypercolumn,
    images: Tensor,
    device: torch.device,
    dist: Distributed | None,
    callbacks: Sequence[Callback],
    main: bool,
    cache: Path | None,
    key: dict[str, object],
    paths: Sequence[Path],
) -> Tensor:
    """The frozen backbone's features of ``images`` (uint8 ``(N, 3, S, S)``) → ``(N, D)`` on ``device``:
    from the cache file when it matches (rank 0 reads it and sends it to the others), else computed
    (each rank its contiguous share, then gathered) and cached by rank 0."""
    backbone.eval()
    stored = read_feature_cache(cache, key, paths) if main else None
    hit = dist.broadcast_object(stored is not None) if dist is not None else stored is not None
    if hit:
        if dist is not None:
            stored = dist.broadcast(stored if stored is not None else torch.empty((len(images), backbone.dims)))
        emit(callbacks, Notice(f"features of {len(images)} images read from {cache}"))
        return stored.to(device)
    if dist is None:
        features = compute_features(backbone, images, device=device, batch_size=16, callbacks=callbacks)
    else:
        share, total = images[dist.shard(len(images))], len(images)

        def progress(event: Any) -> None:  # this rank's share, shown as a share of all images
            if isinstance(event, TaskProgress) and event.done < event.total:
                emit(callbacks, TaskProgress(event.task, event.done * total // max(1, event.total), total))

        features = dist.all_gather_rows(compute_features(backbone, share, device=device, batch_size=16,
                                                         callbacks=[progress]))
        emit(callbacks, TaskProgress("features", total, total))
    if main and cache is not None:
        write_feature_cache(cache, key, paths, features)
    return features


def train_attrs(
    data: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    **options: Any,
) -> TrainResult:
    """Trains the attribute network on a labelled image folder and writes the run directory.

    Args:
        data: The folder with the images and the labels CSV (``--data``); with ``resume``, ``None``
            means the folder the run was started with.
        output: The run directory (``-o``); created if missing. Without ``resume`` it must not hold
            a run already.
        config: Options (``None``: the defaults, or the saved run's with ``resume``).
        resume: Continue the run in ``output`` exactly where it stopped; only
            :data:`RESUME_OPTIONS` may differ from the saved configuration.
        callbacks: Receive engine events (:class:`~styleforge.engine.events.EpochEnded`, ...).
        **options: Overrides of ``config``'s fields (``epochs=5``).

    Returns:
        A :class:`TrainResult`. An interrupted (Ctrl-C) or diverged run still writes the best
        epoch's model and returns normally; check ``stop_reason``.

    Raises:
        StyleforgeError: Invalid options, bad data (naming file, row and column), unavailable
            weights or device.
    """
    if output is None:
        raise InvalidParameter("-o", None, "a folder for the run")
    run_dir = Path(output)
    config, saved_meta = _resolve_config(run_dir, config, resume, dict(options))
    config.validate()
    schema = load_schema(config.schema) if config.schema else ACAN_SCHEMA
    weights = head_weights(schema, config.loss_weights)  # before any slow work
    spec = parse_optimizer(config.optimizer if config.lr is None else f"{config.optimizer.split('@')[0]}@{config.lr!r}")
    lr = spec.lr if spec.lr is not None else HEAD_LR[spec.name]
    if data is None:
        if saved_meta is None:
            raise InvalidParameter("--data", None, "a folder with images and a labels CSV")
        data = saved_meta["data"]["folder"]
    # Under torchrun: join the process group (gloo/nccl by --device); every rank runs what follows
    # on the same data, only rank 0 prints (its callbacks) and writes files.
    dist = init_distributed(config.device)
    device = dist.device if dist is not None else resolve_device(config.device)
    main = dist is None or dist.is_main
    if not main:
        callbacks = ()
    workers = config.workers if config.workers is not None else auto_workers(dist.local_world_size if dist else 1)
    pin = device.type == "cuda"

    table = read_labels(data, schema, config.labels)  # the CSV only: images are opened below
    if saved_meta is not None and table.sha256 != saved_meta["data"]["sha256"]:
        raise InputFileError("--resume", table.csv_path, "changed since the run started (its labels would not be the "
                             "same); start a new run in another folder")
    # Weights before the images: an offline --weights imagenet fails before any image is decoded. A
    # resumed run resolves the weights it actually used, for the network it actually built (``auto``
    # may resolve differently now, and may have switched a VGG-19 to HED's VGG-16).
    if saved_meta is not None:
        used = saved_meta["backbone"]
        choice = resolve_weights(used["weights"], used["arch"], on_download=download_events(callbacks))
        if choice.arch and choice.arch != used["arch"]:
            raise InputFileError("--resume", run_dir / MODEL_JSON, f"names the weights {used['weights']!r}, which now "
                                 f"resolve to {choice.arch} weights, not the run's {used['arch']}")
    else:
        choice = resolve_weights(config.weights, config.backbone, on_download=download_events(callbacks))
    # The network the weights are for: --backbone, or vgg16 where ``auto`` fell back to hed for a vgg19.
    arch = choice.arch or config.backbone
    notice = choice.notice
    if saved_meta is None and arch != config.backbone:
        if config.backbone not in VGG_ARCHS:  # a HED file for a ResNet: never swap the kind of network
            raise InvalidParameter("--weights", str(config.weights), f"weights for {config.backbone}: they are "
                                   f"{arch} weights ({choice.source}); use them with --backbone {arch}")
        notice = notice or (f"--weights {config.weights}: {choice.source} holds {arch} weights, so the backbone is "
                            f"{arch}, not {config.backbone}")
    if notice:
        emit(callbacks, Notice(notice))
    images, kept, skipped = load_images(table.items, config.size, skip_bad=config.skip_bad, csv_path=table.csv_path,
                                        callbacks=callbacks, workers=workers, dist=dist,
                                        pin_memory=pin and not config.finetune)  # fine-tuning pins each batch
    if skipped:
        emit(callbacks, Notice(f"skipped {len(skipped)} bad image(s) (--skip-bad); first: {skipped[0]}"))
    splits = assign_splits(table, config.val_split, config.test_split, config.seed, keep=kept)
    position = {item: k for k, item in enumerate(kept)}
    all_labels = encode_labels(schema, table.items)
    for attribute in schema:
        if not bool(_mask(all_labels[attribute.name][splits["train"]]).any()):
            emit(callbacks, Notice(f"no training image has a {attribute.name} label: that head will not learn"))

    backbone = Hypercolumn(arch, choice.state_dict, seed=config.seed, source=choice.source,
                           trainable=config.finetune).to(device)
    net = AttributeNet(schema, backbone, seed=config.seed).to(device)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)

    loader: _ImageLoader | None = None
    if config.finetune:
        # uint8, CPU; each batch is converted (and augmented) on the fly, in the worker processes.
        loader = _ImageLoader(images, workers, pin)
        forward: Callable[[Batch], Any] = lambda batch: net(batch.x)
    else:
        inputs = _features(backbone, images, device, dist, callbacks, main,
                           run_dir / FEATURES_FILE if config.feature_cache else None,
                           {"backbone": arch, "weights": choice.kind, "source": choice.source,
                            "seed": config.seed, "size": config.size, "styleforge": __version__},
                           [table.items[i].path for i in kept])
        forward = lambda batch: net.heads_forward(batch.x)
    do_augment = config.finetune and config.augment in ("auto", "standard")

    def maker(split: str) -> Callable[[list[Tensor], int | None], Iterable[Batch]]:
        items = splits[split]
        rows = torch.tensor([position[i] for i in items], dtype=torch.long)
        labels = {k: v[items].to(device) for k, v in all_labels.items()}

        def label(order: Tensor) -> dict[str, Tensor]:
            return {k: v[order.to(v.device)] for k, v in labels.items()}

        def make(parts: list[Tensor], epoch_seed: int | None) -> Iterable[Batch]:
            if loader is None:  # cached features, already on the device
                return (Batch(inputs[rows[order].to(inputs.device)], label(order)) for order in parts)
            keys = [[(int(r), sample_seed(epoch_seed, int(r)) if epoch_seed is not None else None) for r in rows[order]]
                    for order in parts]
            return (Batch(x.to(device, non_blocking=True), label(order)) for x, order in zip(loader(keys), parts))

        return make

    def batches(split: str, generator: torch.Generator | None = None, train: bool = False) -> _Batches:
        return _Batches(len(splits[split]), config.batch_size, maker(split), generator, dist, augment=train and do_augment)

    resume_state: dict[str, Any] | None = None
    if resume:  # every rank reads it: the run folder is on storage they share
        resume_state = torch.load(run_dir / RESUME_FILE, map_location=device, weights_only=True)
    log_vars = nn.ParameterDict({a.name: nn.Parameter(torch.zeros((), device=device)) for a in schema}) \
        if config.balance == "uncertainty" else None
    trainable = _Trainable(net.heads, net.backbone if config.finetune else None, log_vars)
    plain = WeightedLoss(dict(build_loss(schema, dataclasses.replace(config, balance="none"))[1]))
    initial: dict[str, float] | None = None
    if config.balance == "initial":
        if resume_state is not None:
            initial = {k: float(v) for k, v in resume_state["extra"]["initial"].items()}
        else:
            summary, _ = evaluate(trainable, forward, plain, batches("train"), counts=Batch.counts, dist=dist)
            initial = dict(summary.raw)
    loss, heads = build_loss(schema, config, initial=initial, log_vars=log_vars)

    groups: list[dict[str, Any]] = [{"params": list(net.heads.parameters())}]
    if log_vars is not None:
        groups.append({"params": list(log_vars.parameters()), "weight_decay": 0.0})
    if config.finetune:
        groups.append({"params": [p for p in net.backbone.parameters() if p.requires_grad], "lr_scale": config.backbone_lr_scale})
    stop = StopRule(config.min_delta, config.patience, mode="improvement") if config.patience > 0 else None
    has_val = bool(splits["val"])
    if not has_val:
        emit(callbacks, Notice("no validation images: early stopping and the best epoch use the training loss"))

    meta: dict[str, Any] = {
        # What was built and used, so loading gives the same features: ``auto`` is resolved here, and
        # ``arch`` is the network the weights are for (``--backbone vgg19 --weights auto`` may be vgg16 + hed).
        "backbone": {"arch": arch,
                     "weights": str(Path(choice.source).resolve()) if choice.kind == "file" else choice.kind,
                     "source": choice.source, "seed": config.seed,
                     # Why ``arch`` or the weights differ from what was asked (kept on --resume).
                     "notice": notice or (saved_meta["backbone"].get("notice", "") if saved_meta else ""),
                     "finetuned": config.finetune, "feature_dims": net.dims},
        "preprocessing": {"size": config.size, "resize": "squash to size x size (bicubic, antialiased)",
                          "input": "RGB in [0, 1]", "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                          "features": "global average pool of every residual block (vgg: relu*_1), concatenated, "
                                      "L2-normalised per image"},
        "data": {"folder": str(Path(data).resolve()), "labels": str(table.csv_path.resolve()), "layout": table.layout,
                 "sha256": table.sha256, "images": {s: len(v) for s, v in splits.items()}, "skipped": len(skipped)},
        "training": {"config": config.to_dict(), "optimizer": spec.name, "lr": lr, "loss_weights": weights,
                     "balance_initial": initial},
        "best": None,
    }

    history_path = run_dir / "history.csv"

    def checkpoint(cp: FitCheckpoint) -> None:
        if not main:
            return
        if cp.is_best:
            meta["best"] = _json_safe({"epoch": cp.epoch, **{k: v for k, v in cp.row.items() if k != "seconds"}})
            save_model(run_dir, net, meta, with_backbone=config.finetune)
        state = cp.state()
        state["extra"] = {"initial": dict(initial) if initial is not None else {}}
        write_atomic(run_dir / RESUME_FILE, lambda h: torch.save(state, h))
        write_history(history_path, state["history"])

    def epoch_values() -> dict[str, float]:
        return {f"logvar.{n}": float(p.detach()) for n, p in log_vars.items()} if log_vars is not None else {}

    result = fit(
        trainable,
        forward,
        loss,
        lambda generator: batches("train", generator, train=True),
        (lambda: batches("val")) if has_val else None,
        epochs=config.epochs,
        optimizer=spec,
        default_lr=HEAD_LR,
        params=groups,
        weight_decay=config.weight_decay,
        schedule=config.lr_schedule,
        plateau_factor=config.plateau_factor,
        plateau_patience=config.plateau_patience,
        stop=stop,
        guard=DivergenceGuard(config.divergence_factor),
        counts=Batch.counts,
        metrics=lambda: AttributeMetrics(schema, heads),
        epoch_values=epoch_values if log_vars is not None else None,
        seed=config.seed,
        resume=resume_state,
        checkpoint=checkpoint,
        callbacks=callbacks,
        dist=dist,
    )

    # The best epoch's weights are back in the network: score every split once with them.
    scores: dict[str, Any] = {}
    if result.best_epoch:
        for split in ("train", "val", "test"):
            if splits[split]:
                summary, values = evaluate(trainable, forward, loss, batches(split), counts=Batch.counts,
                                           metrics=lambda: AttributeMetrics(schema, heads), dist=dist)
                scores[split] = {"loss": summary.total, **{f"loss.{k}": v for k, v in summary.weighted.items()}, **values}
    train_labels = {k: v[splits["train"]] for k, v in all_labels.items()}
    baseline = {s: _baseline(schema, train_labels, {k: v[splits[s]] for k, v in all_labels.items()})
                for s in ("val", "test") if splits[s]}
    metrics: dict[str, Any] = {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "stop_detail": result.stop_detail,
        "images": {**{s: len(v) for s, v in splits.items()}, "skipped": len(skipped)},
        "skipped": [str(s) for s in skipped],
        **scores,
        "baseline": baseline,
    }
    if initial is not None:
        metrics["balance_initial"] = initial
    if log_vars is not None:
        metrics["log_variance"] = {n: float(p.detach()) for n, p in log_vars.items()}
    if loader is not None:
        loader.close()
    files: list[Path] = []
    if not main:  # rank 0 writes the run folder
        return TrainResult(run_dir, result.history, result.best_epoch, result.stop_reason, result.stop_detail, metrics,
                           skipped, config, files)
    if result.best_epoch:
        meta["best"] = _json_safe({**(meta["best"] or {}), "stop_reason": result.stop_reason, "epochs_run": result.epochs_run,
                                   "test": scores.get("test")})
        files += list(save_model(run_dir, net, meta, with_backbone=config.finetune))
    if result.history:
        files.append(write_history(history_path, result.history))
        files.append(_plot(run_dir / "curves.png", schema, result.history))
    import json

    text = json.dumps(_json_safe(metrics), indent=1)
    files.append(write_atomic(run_dir / "metrics.json", lambda h: h.write(text.encode())))
    return TrainResult(run_dir, result.history, result.best_epoch, result.stop_reason, result.stop_detail, metrics,
                       skipped, config, files)
