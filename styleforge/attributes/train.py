"""Training the attribute network on the shared engine: :func:`train_attrs`, behind ``train-attrs``.

The run reads the labels (:mod:`~styleforge.attributes.labels`) and the images
(:mod:`~styleforge.attributes.preprocess`), builds the network, computes the frozen backbone's
features once (:mod:`~styleforge.attributes.features`) or, with ``--finetune``, feeds augmented
images, and trains with :func:`styleforge.engine.fit.fit` on the objective of
:mod:`~styleforge.attributes.losses` (one term per head), measuring the heads with
:mod:`~styleforge.attributes.metrics`. With ``--balance uncertainty`` each learned log-variance is
logged as ``logvar.<attribute>`` in ``history.csv``.

Images are decoded (and, with ``--finetune``, augmented) in ``--workers`` worker processes, each image
with its own seed per epoch, so the result does not depend on the number of workers. Under
``torchrun`` every process trains on its part of each global batch
(:mod:`styleforge.engine.distributed`) and the result equals the single-process run up to
floating-point noise; only rank 0 prints and writes. The run directory
(:mod:`~styleforge.attributes.saved_run`) receives ``model.safetensors`` + ``model.json`` (best epoch),
``history.csv``, ``curves.png``, ``metrics.json`` and, for ``--resume``, ``resume.pt`` and
``features.safetensors``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..config import TrainConfig
from ..device import resolve_device
from ..engine import (
    TRAIN_LR,
    Callback,
    DivergenceGuard,
    FitCheckpoint,
    FitResult,
    Notice,
    OptimizerSpec,
    StopRule,
    WeightedLoss,
    evaluate,
    fit,
    parse_optimizer,
)
from ..engine.distributed import Distributed, init_distributed
from ..engine.events import TaskProgress, download_events, emit
from ..engine.interrupt import Interrupt, keeping, watch
from ..errors import InputFileError, InvalidParameter, StyleforgeError
from ..machine import sharing_processes, usable_cores
from ..nets.vgg import VGG_ARCHS
from ..nets.weights import WeightsChoice, resolve_weights
from ..version import __version__
from .augment import sample_seed
from .batches import Batch, Batches, ImageLoader
from .features import compute_features, read_feature_cache, write_feature_cache
from .labels import LabelTable, assign_splits, encode_labels, label_mask, read_labels
from .losses import HeadLoss, build_loss, head_weights
from .memory import check_training
from .metrics import AttributeMetrics, baseline_metrics
from .model import MODEL_JSON, AttributeNet, Hypercolumn, TrunkShape, save_model
from .preprocess import Skipped, load_images
from .saved_run import (
    FEATURES_FILE,
    RESUME_FILE,
    epoch_record,
    json_safe,
    plot_curves,
    resolve_config,
    write_checkpoint,
    write_history_csv,
    write_metrics,
)
from .schema import ACAN_SCHEMA, Schema, load_schema

__all__ = ["HEAD_LR", "TrainResult", "auto_workers", "train_attrs"]

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


def auto_workers(processes_on_node: int = 1) -> int:
    """``--workers``' default: ``min(4, CPU cores per process - 1)``, at least 0.

    Args:
        processes_on_node: Training processes sharing this machine's cores (torchrun's
            ``LOCAL_WORLD_SIZE``); times the processes a sweep runs at once
            (:func:`styleforge.machine.sharing_processes`).
    """
    return max(0, min(4, usable_cores() // (max(1, processes_on_node) * sharing_processes()) - 1))


class _Trainable(nn.Module):
    """What the optimiser trains: the trunk (no tensors when it has no layers), the heads, the
    backbone when fine-tuning, the log-variances; and the feature norm, which it does not train."""

    def __init__(
        self,
        norm: nn.Module,
        trunk: nn.Module,
        heads: nn.ModuleDict,
        backbone: nn.Module | None,
        log_vars: nn.ParameterDict | None,
    ) -> None:
        super().__init__()
        self.norm = norm  # no parameters; its statistics (``standard``) travel with the resume state
        self.trunk = trunk
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
        stop_reason: ``completed``, ``stopped`` (early stopping), ``diverged`` or ``interrupted``
            (:data:`styleforge.engine.outcome.STOP_REASONS`).
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


@dataclass
class _Run:
    """What every part of one training run shares.

    Attributes:
        config: The resolved configuration.
        schema: The attributes trained.
        run_dir: The run directory (``-o``).
        dist: The process group under torchrun, else ``None``.
        device: Where the network trains.
        callbacks: This process's callbacks (none on the ranks that do not print).
        workers: Worker processes that decode (and augment) the images.
    """

    config: TrainConfig
    schema: Schema
    run_dir: Path
    dist: Distributed | None
    device: torch.device
    callbacks: Sequence[Callback]
    workers: int

    @property
    def main(self) -> bool:
        """Whether this process prints and writes: rank 0, or the only process."""
        return self.dist is None or self.dist.is_main

    @property
    def pin(self) -> bool:
        """Whether batches go through pinned memory (to a CUDA device)."""
        return self.device.type == "cuda"


@dataclass
class _Data:
    """The labelled images of a run.

    Attributes:
        table: The labels CSV.
        images: The decoded images, uint8 ``(N, 3, S, S)`` on the CPU, one per row of ``kept``.
        kept: The rows of ``table.items`` whose image was decoded (``--skip-bad`` leaves some out).
        skipped: The images left out.
        splits: ``train``, ``val``, ``test`` → rows of ``table.items``.
        labels: Every row's labels in the heads' units (:func:`encode_labels`), one tensor per attribute.
    """

    table: LabelTable
    images: Tensor
    kept: list[int]
    skipped: list[Skipped]
    splits: dict[str, list[int]]
    labels: dict[str, Tensor]

    def __post_init__(self) -> None:
        self._position = {item: k for k, item in enumerate(self.kept)}

    def rows(self, split: str) -> list[int]:
        """The split's images as rows of :attr:`images`."""
        return [self._position[i] for i in self.splits[split]]


def _features(
    backbone: Hypercolumn,
    images: Tensor,
    run: _Run,
    cache: Path | None,
    key: dict[str, object],
    paths: Sequence[Path],
) -> Tensor:
    """The frozen backbone's features of ``images`` (uint8 ``(N, 3, S, S)``) → ``(N, D)`` on the run's
    device: from the cache file when it matches (rank 0 reads it and sends it to the others), else
    computed (each rank its contiguous share, then gathered) and cached by rank 0."""
    dist, device, callbacks = run.dist, run.device, run.callbacks
    backbone.eval()
    stored = read_feature_cache(cache, key, paths) if run.main else None
    hit = dist.broadcast_object(stored is not None) if dist is not None else stored is not None
    if hit:
        if dist is not None:
            stored = dist.broadcast(
                stored if stored is not None else torch.empty((len(images), backbone.dims))
            )
        emit(callbacks, Notice(f"features of {len(images)} images read from {cache}"))
        return stored.to(device)
    if dist is None:
        features = compute_features(backbone, images, device=device, batch_size=16, callbacks=callbacks)
    else:
        share, total = images[dist.shard(len(images))], len(images)

        def progress(event: Any) -> None:  # this rank's share, shown as a share of all images
            if isinstance(event, TaskProgress) and event.done < event.total:
                emit(callbacks, TaskProgress(event.task, event.done * total // max(1, event.total), total))

        features = dist.all_gather_rows(
            compute_features(backbone, share, device=device, batch_size=16, callbacks=[progress])
        )
        emit(callbacks, TaskProgress("features", total, total))
    if run.main and cache is not None:
        write_feature_cache(cache, key, paths, features)
    return features


def train_attrs(
    data: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    interrupt: Interrupt | None = None,
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
        interrupt: The flag of a :func:`~styleforge.engine.interrupt.stop_signals` the caller holds;
            ``None``: training installs its own, so a Ctrl-C or SIGTERM while it runs stops it
            after the current step (before it, while images are read and features computed, Ctrl-C
            raises ``KeyboardInterrupt`` as usual).
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
    config, saved_meta = resolve_config(Path(output), config, resume, dict(options))
    config.validate()
    schema = load_schema(config.schema) if config.schema else ACAN_SCHEMA
    weights = head_weights(schema, config.loss_weights)  # before any slow work
    spec = parse_optimizer(
        config.optimizer if config.lr is None else f"{config.optimizer.split('@')[0]}@{config.lr!r}"
    )
    data = _data_folder(data, saved_meta)
    run = _join_run(config, schema, Path(output), callbacks)
    table = _read_table(run, data, saved_meta)
    choice, arch, notice = _backbone_weights(run, saved_meta, len(table.items))
    found = _load_data(run, table)
    net, forward, batches, loader = _build_network(run, arch, choice, found, resume)
    resume_state: dict[str, Any] | None = None
    if resume:  # every rank reads it: the run folder is on storage they share
        resume_state = torch.load(run.run_dir / RESUME_FILE, map_location=run.device, weights_only=True)
    objective = _objective(run, net, forward, batches, resume_state)
    meta = _run_meta(
        run, data, found, choice, arch, notice, saved_meta, net, spec, weights, objective.initial
    )
    # From here on a stop signal ends the loop cleanly.
    with watch(interrupt) as flag:
        result = _fit(run, net, objective, batches, found, spec, meta, resume_state, flag)
        # What the run has is written whatever comes: a signal now only sets the flag.
        with keeping(flag):
            # The best epoch's weights are back in the network: score every split once with them.
            scores = _scores(run, objective, batches, found) if result.best_epoch else {}
            metrics = _run_metrics(run, result, found, scores, objective)
            if loader is not None:
                loader.close()
            files = _write_run(run, result, net, meta, scores, metrics) if run.main else []  # rank 0 writes
            return TrainResult(
                run.run_dir,
                result.history,
                result.best_epoch,
                result.stop_reason,
                result.stop_detail,
                metrics,
                found.skipped,
                config,
                files,
            )


def _data_folder(
    data: str | os.PathLike[str] | None, saved_meta: dict[str, Any] | None
) -> str | os.PathLike[str]:
    """``--data``, or, resuming without it, the folder the run was started with."""
    if data is not None:
        return data
    if saved_meta is None:
        raise InvalidParameter("--data", None, "a folder with images and a labels CSV")
    return saved_meta["data"]["folder"]


def _join_run(config: TrainConfig, schema: Schema, run_dir: Path, callbacks: Sequence[Callback]) -> _Run:
    """Joins the process group under torchrun (gloo/nccl by ``--device``) and picks the device and
    the decoding workers; every rank runs what follows on the same data, only rank 0 prints (its
    callbacks) and writes files."""
    dist = init_distributed(config.device)
    device = dist.device if dist is not None else resolve_device(config.device)
    main = dist is None or dist.is_main
    workers = (
        config.workers if config.workers is not None else auto_workers(dist.local_world_size if dist else 1)
    )
    return _Run(config, schema, run_dir, dist, device, callbacks if main else (), workers)


def _read_table(run: _Run, data: str | os.PathLike[str], saved_meta: dict[str, Any] | None) -> LabelTable:
    """The labels CSV (the images are opened later); a resumed run's must not have changed."""
    table = read_labels(data, run.schema, run.config.labels)
    if saved_meta is not None and table.sha256 != saved_meta["data"]["sha256"]:
        raise InputFileError(
            "--resume",
            table.csv_path,
            "changed since the run started (its labels would not be the "
            "same); start a new run in another folder",
        )
    return table


def _backbone_weights(
    run: _Run, saved_meta: dict[str, Any] | None, n_images: int
) -> tuple[WeightsChoice, str, str]:
    """Checks the memory the run needs, then resolves the backbone's weights.

    Every image decoded at ``--size``, and the backbone's largest pass: checked before the weights
    are fetched and any image is decoded (``auto`` may only switch to a smaller network). Weights
    before the images: an offline ``--weights imagenet`` fails before any image is decoded. A
    resumed run resolves the weights it actually used, for the network it actually built (``auto``
    may resolve differently now, and may have switched a VGG-19 to HED's VGG-16).

    Returns:
        ``(choice, arch, notice)``: the weights, the network they are for, and why that network or
        those weights differ from what was asked (``""`` when they do not; emitted as a
        :class:`Notice`).
    """
    config = run.config
    check_training(
        saved_meta["backbone"]["arch"] if saved_meta is not None else config.backbone,
        n_images,
        config.size,
        config.batch_size,
        config.finetune,
        run.device,
    )
    on_download = download_events(run.callbacks)
    if saved_meta is not None:
        used = saved_meta["backbone"]
        choice = resolve_weights(used["weights"], used["arch"], on_download=on_download)
        if choice.arch and choice.arch != used["arch"]:
            raise InputFileError(
                "--resume",
                run.run_dir / MODEL_JSON,
                f"names the weights {used['weights']!r}, which now "
                f"resolve to {choice.arch} weights, not the run's {used['arch']}",
            )
    else:
        choice = resolve_weights(config.weights, config.backbone, on_download=on_download)
    arch, notice = _backbone_arch(config, choice, saved_meta is not None)
    if notice:
        emit(run.callbacks, Notice(notice))
    return choice, arch, notice


def _backbone_arch(config: TrainConfig, choice: WeightsChoice, resumed: bool) -> tuple[str, str]:
    """The network the weights are for: ``--backbone``, or vgg16 where ``auto`` fell back to HED's
    weights for a vgg19; and the notice that says why (``""``: none).

    Raises:
        InvalidParameter: A new run's ``--weights`` hold another kind of network (HED's VGG-16 for
            a ResNet): the kind of network is never swapped.
    """
    arch = choice.arch or config.backbone
    notice = choice.notice
    if not resumed and arch != config.backbone:
        if config.backbone not in VGG_ARCHS:  # a HED file for a ResNet: never swap the kind of network
            raise InvalidParameter(
                "--weights",
                str(config.weights),
                f"weights for {config.backbone}: they are "
                f"{arch} weights ({choice.source}); use them with --backbone {arch}",
            )
        notice = notice or (
            f"--weights {config.weights}: {choice.source} holds {arch} weights, so the backbone is "
            f"{arch}, not {config.backbone}"
        )
    return arch, notice


def _load_data(run: _Run, table: LabelTable) -> _Data:
    """Decodes the images (``--workers`` processes; every rank its share), splits the rows and
    encodes the labels; says which images were skipped and which heads have no training label."""
    config = run.config
    images, kept, skipped = load_images(
        table.items,
        config.size,
        skip_bad=config.skip_bad,
        csv_path=table.csv_path,
        callbacks=run.callbacks,
        workers=run.workers,
        dist=run.dist,
        pin_memory=run.pin and not config.finetune,
    )  # fine-tuning pins each batch
    if skipped:
        emit(run.callbacks, Notice(f"skipped {len(skipped)} bad image(s) (--skip-bad); first: {skipped[0]}"))
    splits = assign_splits(table, config.val_split, config.test_split, config.seed, keep=kept)
    labels = encode_labels(run.schema, table.items)
    for attribute in run.schema:
        if not bool(label_mask(labels[attribute.name][splits["train"]]).any()):
            emit(
                run.callbacks,
                Notice(f"no training image has a {attribute.name} label: that head will not learn"),
            )
    return _Data(table, images, kept, skipped, splits, labels)


class _SplitBatches:
    """The batches of each split: cached features already on the device, or (``--finetune``) images
    converted and augmented on the fly by ``loader``'s worker processes, each image with its own seed
    per epoch."""

    def __init__(self, run: _Run, data: _Data, inputs: Tensor | None, loader: ImageLoader | None) -> None:
        self.run, self.data, self.inputs, self.loader = run, data, inputs, loader
        self.augment = run.config.finetune and run.config.augment in ("auto", "standard")

    def __call__(self, split: str, generator: torch.Generator | None = None, train: bool = False) -> Batches:
        """The batches of ``split``; shuffled with ``generator`` when given, augmented when ``train``
        and the run augments."""
        return Batches(
            len(self.data.splits[split]),
            self.run.config.batch_size,
            self._maker(split),
            generator,
            self.run.dist,
            augment=train and self.augment,
        )

    def _maker(self, split: str) -> Callable[[list[Tensor], int | None], Iterable[Batch]]:
        """The function :class:`Batches` calls with one pass's index tensors (positions in the
        split) and the epoch's augmentation seed (``None``: no augmentation)."""
        device, inputs, loader = self.run.device, self.inputs, self.loader
        items = self.data.splits[split]
        rows = torch.tensor(self.data.rows(split), dtype=torch.long)
        labels = {k: v[items].to(device) for k, v in self.data.labels.items()}

        def label(order: Tensor) -> dict[str, Tensor]:
            return {k: v[order.to(v.device)] for k, v in labels.items()}

        def make(parts: list[Tensor], epoch_seed: int | None) -> Iterable[Batch]:
            if loader is None:  # cached features, already on the device
                assert inputs is not None
                return (Batch(inputs[rows[order].to(inputs.device)], label(order)) for order in parts)
            keys = [
                [
                    (int(r), sample_seed(epoch_seed, int(r)) if epoch_seed is not None else None)
                    for r in rows[order]
                ]
                for order in parts
            ]
            return (
                Batch(x.to(device, non_blocking=True), label(order)) for x, order in zip(loader(keys), parts)
            )

        return make


def _build_network(
    run: _Run, arch: str, choice: WeightsChoice, data: _Data, resume: bool
) -> tuple[AttributeNet, Callable[[Batch], Any], _SplitBatches, ImageLoader | None]:
    """Builds the network and what feeds it, and creates the run folder (rank 0).

    Without ``--finetune`` the frozen backbone's features are computed once (or read from
    ``features.safetensors``) and the heads are trained on them; the feature norm is fitted on the
    training images' features. With it, images are fed through the backbone in every step; a
    ``standard`` norm is fitted on the features before fine-tuning (a resumed run's statistics
    come with its state).

    Returns:
        ``(net, forward, batches, loader)``: ``forward`` maps a :class:`Batch` to the heads'
        outputs, ``batches`` gives each split's batches, ``loader`` is the worker pool to close
        (``None`` with cached features).
    """
    config, device = run.config, run.device
    backbone = Hypercolumn(
        arch, choice.state_dict, seed=config.seed, source=choice.source, trainable=config.finetune
    ).to(device)
    net = AttributeNet(
        run.schema,
        backbone,
        seed=config.seed,
        trunk=TrunkShape(config.trunk, config.trunk_width),
        norm=config.feature_norm,
    ).to(device)
    if run.main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
    if config.finetune:
        # uint8, CPU; each batch is converted (and augmented) on the fly, in the worker processes.
        loader = ImageLoader(data.images, run.workers, run.pin)
        if net.norm.kind == "standard" and not resume:  # on resume the statistics come with the state
            # The statistics of the training images' features before fine-tuning (not cached: the
            # backbone will change).
            net.norm.fit(_features(backbone, data.images[data.rows("train")], run, None, {}, []))
        return net, lambda batch: net(batch.x), _SplitBatches(run, data, None, loader), loader
    inputs = _features(
        backbone,
        data.images,
        run,
        run.run_dir / FEATURES_FILE if config.feature_cache else None,
        {
            "backbone": arch,
            "weights": choice.kind,
            "source": choice.source,
            "seed": config.seed,
            "size": config.size,
            "styleforge": __version__,
            "features": "pooled, not normalised",
        },
        [data.table.items[i].path for i in data.kept],
    )
    net.norm.fit(inputs[data.rows("train")])
    return net, lambda batch: net.heads_forward(batch.x), _SplitBatches(run, data, inputs, None), None


@dataclass
class _Objective:
    """What the optimiser trains and on what.

    Attributes:
        trainable: The modules trained (and the feature norm, saved with them).
        forward: A batch → the heads' outputs.
        loss: The engine loss, one term per head.
        heads: Each head's loss (what the metrics measure).
        initial: ``--balance initial``: each term's raw value before training, else ``None``.
        log_vars: ``--balance uncertainty``: the learned log-variances, else ``None``.
    """

    trainable: _Trainable
    forward: Callable[[Batch], Any]
    loss: WeightedLoss
    heads: dict[str, HeadLoss]
    initial: dict[str, float] | None
    log_vars: nn.ParameterDict | None


def _objective(
    run: _Run,
    net: AttributeNet,
    forward: Callable[[Batch], Any],
    batches: _SplitBatches,
    resume_state: dict[str, Any] | None,
) -> _Objective:
    """The loss and what it trains; ``--balance initial`` measures the terms on the training set
    first (a resumed run reads them from its state)."""
    config, schema = run.config, run.schema
    log_vars = (
        nn.ParameterDict({a.name: nn.Parameter(torch.zeros((), device=run.device)) for a in schema})
        if config.balance == "uncertainty"
        else None
    )
    trainable = _Trainable(
        net.norm, net.trunk, net.heads, net.backbone if config.finetune else None, log_vars
    )
    plain = WeightedLoss(dict(build_loss(schema, dataclasses.replace(config, balance="none"))[1]))
    initial: dict[str, float] | None = None
    if config.balance == "initial":
        if resume_state is not None:
            initial = {k: float(v) for k, v in resume_state["extra"]["initial"].items()}
        else:
            summary, _ = evaluate(
                trainable, forward, plain, batches("train"), counts=Batch.counts, dist=run.dist
            )
            initial = dict(summary.raw)
    loss, heads = build_loss(schema, config, initial=initial, log_vars=log_vars)
    return _Objective(trainable, forward, loss, heads, initial, log_vars)


def _optimised_groups(net: AttributeNet, objective: _Objective, config: TrainConfig) -> list[dict[str, Any]]:
    """The optimiser's parameter groups: the trunk and the heads; the log-variances (without weight
    decay); with ``--finetune``, the backbone at ``--backbone-lr-scale`` × the learning rate."""
    groups: list[dict[str, Any]] = [{"params": [*net.trunk.parameters(), *net.heads.parameters()]}]
    if objective.log_vars is not None:
        groups.append({"params": list(objective.log_vars.parameters()), "weight_decay": 0.0})
    if config.finetune:
        groups.append(
            {
                "params": [p for p in net.backbone.parameters() if p.requires_grad],
                "lr_scale": config.backbone_lr_scale,
            }
        )
    return groups


def _run_meta(
    run: _Run,
    data: str | os.PathLike[str],
    found: _Data,
    choice: WeightsChoice,
    arch: str,
    notice: str,
    saved_meta: dict[str, Any] | None,
    net: AttributeNet,
    spec: OptimizerSpec,
    weights: dict[str, float],
    initial: dict[str, float] | None,
) -> dict[str, Any]:
    """``model.json``'s description of the run (its ``best`` is filled in as epochs improve)."""
    config, table = run.config, found.table
    return {
        # What was built and used, so loading gives the same features: ``auto`` is resolved here, and
        # ``arch`` is the network the weights are for (``--backbone vgg19 --weights auto`` may be
        # vgg16 + hed).
        "backbone": {
            "arch": arch,
            "weights": str(Path(choice.source).resolve()) if choice.kind == "file" else choice.kind,
            "source": choice.source,
            "seed": config.seed,
            # Why ``arch`` or the weights differ from what was asked (kept on --resume).
            "notice": notice or (saved_meta["backbone"].get("notice", "") if saved_meta else ""),
            "finetuned": config.finetune,
            "feature_dims": net.dims,
        },
        "preprocessing": _preprocessing_meta(config),
        "data": {
            "folder": str(Path(data).resolve()),
            "labels": str(table.csv_path.resolve()),
            "layout": table.layout,
            "sha256": table.sha256,
            "images": {s: len(v) for s, v in found.splits.items()},
            "skipped": len(found.skipped),
        },
        "training": {
            "config": config.to_dict(),
            "optimizer": spec.name,
            "lr": spec.lr if spec.lr is not None else HEAD_LR[spec.name],
            "loss_weights": weights,
            "balance_initial": initial,
        },
        "best": None,
    }


def _preprocessing_meta(config: TrainConfig) -> dict[str, Any]:
    """``model.json``'s ``preprocessing``: how an image becomes the heads' input."""
    return {
        "size": config.size,
        "resize": "squash to size x size (bicubic, antialiased)",
        "input": "RGB in [0, 1]",
        "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "features": "global average pool of every residual block (vgg: relu*_1), concatenated, "
        + (
            "L2-normalised per image"
            if config.feature_norm == "l2"
            else "each standardised by the training images' mean and std (norm.* tensors), "
            "divided by sqrt(dims)"
        ),
    }


class _Checkpoints:
    """After every epoch (rank 0): the model when the epoch is the best so far, and the resume state.

    A failed write (disk full) raises a :class:`StyleforgeError` that says which epoch the run folder
    still holds: every file is written whole or not at all, so the last ones stand.
    """

    def __init__(
        self, run: _Run, net: AttributeNet, meta: dict[str, Any], initial: dict[str, float] | None, epoch: int
    ) -> None:
        self.run, self.net, self.meta, self.initial = run, net, meta, initial
        self.saved_epoch = epoch  # the last epoch the run folder holds (0: none)

    def __call__(self, cp: FitCheckpoint) -> None:
        if not self.run.main:
            return
        run_dir = self.run.run_dir
        try:
            if cp.is_best:
                self.meta["best"] = epoch_record(cp.row)
                save_model(run_dir, self.net, self.meta, with_backbone=self.run.config.finetune)
            extra = {"initial": dict(self.initial) if self.initial is not None else {}}
            write_checkpoint(run_dir, cp.state(), extra)
        except OSError as exc:  # disk full: every file is written whole or not at all, so the last ones stand
            kept = (
                f"the run folder keeps epoch {self.saved_epoch}; continue with --resume once there is room"
                if self.saved_epoch
                else "no epoch was saved"
            )
            where = f" ({exc.filename})" if exc.filename else ""
            raise StyleforgeError(
                f"-o: could not write the run of epoch {cp.epoch} in {run_dir}{where}: "
                f"{exc.strerror or exc}; {kept}"
            ) from None
        self.saved_epoch = cp.epoch


def _fit(
    run: _Run,
    net: AttributeNet,
    objective: _Objective,
    batches: _SplitBatches,
    found: _Data,
    spec: OptimizerSpec,
    meta: dict[str, Any],
    resume_state: dict[str, Any] | None,
    flag: Interrupt,
) -> FitResult:
    """Trains with the engine's :func:`~styleforge.engine.fit.fit`; without validation images the
    training loss picks the best epoch and stops early."""
    config, log_vars = run.config, objective.log_vars
    stop = StopRule(config.min_delta, config.patience, mode="improvement") if config.patience > 0 else None
    has_val = bool(found.splits["val"])
    if not has_val:
        emit(
            run.callbacks,
            Notice("no validation images: early stopping and the best epoch use the training loss"),
        )
    saved = int(resume_state["epoch"]) if resume_state is not None and "epoch" in resume_state else 0

    def epoch_values() -> dict[str, float]:
        return {f"logvar.{n}": float(p.detach()) for n, p in log_vars.items()} if log_vars is not None else {}

    return fit(
        objective.trainable,
        objective.forward,
        objective.loss,
        lambda generator: batches("train", generator, train=True),
        (lambda: batches("val")) if has_val else None,
        epochs=config.epochs,
        optimizer=spec,
        default_lr=HEAD_LR,
        params=_optimised_groups(net, objective, config),
        weight_decay=config.weight_decay,
        schedule=config.lr_schedule,
        plateau_factor=config.plateau_factor,
        plateau_patience=config.plateau_patience,
        stop=stop,
        guard=DivergenceGuard(config.divergence_factor),
        counts=Batch.counts,
        metrics=lambda: AttributeMetrics(run.schema, objective.heads),
        epoch_values=epoch_values if log_vars is not None else None,
        seed=config.seed,
        resume=resume_state,
        checkpoint=_Checkpoints(run, net, meta, objective.initial, saved),
        callbacks=run.callbacks,
        dist=run.dist,
        interrupt=flag,
    )


def _scores(run: _Run, objective: _Objective, batches: _SplitBatches, found: _Data) -> dict[str, Any]:
    """Each split's loss terms and metrics with the weights now in the network (the best epoch's)."""
    scores: dict[str, Any] = {}
    for split in ("train", "val", "test"):
        if found.splits[split]:
            summary, values = evaluate(
                objective.trainable,
                objective.forward,
                objective.loss,
                batches(split),
                counts=Batch.counts,
                metrics=lambda: AttributeMetrics(run.schema, objective.heads),
                dist=run.dist,
            )
            scores[split] = {
                "loss": summary.total,
                **{f"loss.{k}": v for k, v in summary.weighted.items()},
                **values,
            }
    return scores


def _run_metrics(
    run: _Run, result: FitResult, found: _Data, scores: dict[str, Any], objective: _Objective
) -> dict[str, Any]:
    """``metrics.json``'s content: how the run ended, the images, each split's scores and the
    baseline (predicting the training labels' mean or most common class) on val and test."""
    splits, labels = found.splits, found.labels
    train_labels = {k: v[splits["train"]] for k, v in labels.items()}
    baseline = {
        s: baseline_metrics(run.schema, train_labels, {k: v[splits[s]] for k, v in labels.items()})
        for s in ("val", "test")
        if splits[s]
    }
    metrics: dict[str, Any] = {
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stop_reason": result.stop_reason,
        "stop_detail": result.stop_detail,
        "images": {**{s: len(v) for s, v in splits.items()}, "skipped": len(found.skipped)},
        "skipped": [str(s) for s in found.skipped],
        **scores,
        "baseline": baseline,
    }
    if objective.initial is not None:
        metrics["balance_initial"] = objective.initial
    if objective.log_vars is not None:
        metrics["log_variance"] = {n: float(p.detach()) for n, p in objective.log_vars.items()}
    return metrics


def _write_run(
    run: _Run,
    result: FitResult,
    net: AttributeNet,
    meta: dict[str, Any],
    scores: dict[str, Any],
    metrics: dict[str, Any],
) -> list[Path]:
    """Writes the run folder's final files (rank 0): the best epoch's model, ``history.csv``,
    ``curves.png`` and ``metrics.json``; returns them."""
    files: list[Path] = []
    if result.best_epoch:
        # From the history, not from this call's checkpoints: after --resume the best epoch may be one
        # the earlier run trained (no later epoch improved on it).
        best_row = next(row for row in result.history if int(row["epoch"]) == result.best_epoch)
        meta["best"] = json_safe(
            {
                **epoch_record(best_row),
                "stop_reason": result.stop_reason,
                "epochs_run": result.epochs_run,
                "test": scores.get("test"),
            }
        )
        files += list(save_model(run.run_dir, net, meta, with_backbone=run.config.finetune))
    if result.history:
        files.append(write_history_csv(run.run_dir, result.history))
        files.append(plot_curves(run.run_dir, run.schema, result.history))
    files.append(write_metrics(run.run_dir, metrics))
    return files
