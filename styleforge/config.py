"""Run configurations: the single home of every default (the CLI reads its defaults from here).

Each option of a transfer or a video is declared once, as a field (:func:`styleforge.option.option`):
its default, type, range or choices, help and docs line. The checks, the click options and the
docs' options tables are made from those declarations. Where each transfer default comes from is
documented in docs/transfer.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParameter, choice_error
from .option import Declared, option
from .parsing import parse_optimizer, parse_region

__all__ = [
    "TransferConfig",
    "DEFAULT_STYLE_LAYERS",
    "DEFAULT_CONTENT_LAYERS",
    "COLOR_TRANSFERS",
    "INITS",
    "PRECISIONS",
    "POOLINGS",
    "GUIDANCE_KEYS",
]
__all__ += ["NETWORKS", "STYLE_LOSSES", "STYLE_WEIGHTS"]
__all__ += [
    "TrainConfig",
    "DatasetConfig",
    "BACKBONES",
    "NUMERIC_LOSSES",
    "BALANCES",
    "AUGMENTS",
    "FEATURE_NORMS",
]
__all__ += [
    "ScoreConfig",
    "AUTO_MIN_SIZE",
    "auto_scales",
    "VideoConfig",
    "DEFAULT_FPS",
]

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu2_2", "relu4_2")
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


def _check_number(param: str, value: float, *, minimum: float = 0.0, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        raise InvalidParameter(param, value, f"a finite number {'>' if strict else '>='} {minimum:g}")


def _known_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` if every key is a field of the dataclass ``cls``; else an error naming the first
    unknown key."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise choice_error("config key", unknown[0], sorted(names))
    return data


def _check_int(param: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameter(param, value, f"a whole number >= {minimum}")


#: Where ``--scales auto`` starts: outputs up to this long side run at one size.
AUTO_MIN_SIZE = 128


def auto_scales(size: int, min_size: int | None = None) -> int:
    """``--scales auto``: √2 steps from ``min_size`` (default :data:`AUTO_MIN_SIZE`) up to ``size``.

    1 up to that size, then 2 at 181 px, 3 at 256 px, 5 at 512 px. Coarse-to-fine is the default
    because it reached a lower loss sooner in every measurement (benchmarks/README.md).
    """
    first = min_size if min_size is not None else AUTO_MIN_SIZE
    return 1 + max(0, round(2 * math.log2(size / first)))


COLOR_TRANSFERS: tuple[str, ...] = ("none", "histogram")
#: ``--style-loss`` values (styleforge.stylize.losses; docs/transfer.md compares them).
STYLE_LOSSES: tuple[str, ...] = ("gram", "w2", "sw")
#: ``--style-weight`` when none is given, per ``--style-loss``: each loss's relative value has its own
#: scale (a Gram error squares second moments), so each has its own balance with the content term.
#: Measured with HED's VGG-16 (docs/transfer.md, "Style losses and regions"; benchmarks/README.md).
STYLE_WEIGHTS: dict[str, float] = {"gram": 10.0, "w2": 100.0, "sw": 10.0}
#: ``--network`` values: ``auto`` is the network the weights are for (vgg16 for HED's, else vgg19).
NETWORKS: tuple[str, ...] = ("auto", "vgg19", "vgg16")
INITS: tuple[str, ...] = ("content", "noise", "style")
POOLINGS: tuple[str, ...] = ("max", "avg")
#: ``--precision`` values: ``auto`` is bf16 autocast where the device computes in bf16 natively (CUDA
#: from Ampere on, CPUs with AVX512-BF16 or AMX), else fp32; ``tf32`` is CUDA's TF32 (styleforge.device).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")

#: The smallest ``--tile``: smaller tiles leave the deep style layers a few pixels each.
MIN_TILE = 64

#: The attribute-guidance options (``styleforge.guidance.config.GuidanceConfig``) that a transfer's
#: configuration held before they moved there: output metadata and video frames of older versions
#: still have them under ``config``.
GUIDANCE_KEYS: tuple[str, ...] = ("attrs_model", "attrs", "attr_weight", "score_with")


@dataclass
class TransferConfig(Declared):
    """Every option of a style transfer, with its default (docs/transfer.md says where each comes from).

    Each field is declared once: its flag, default, type, range or choices and help are what
    :meth:`validate` checks, what ``styleforge transfer --help`` shows and what docs/transfer.md's
    options table lists. Attribute guidance has its own options
    (``styleforge.guidance.config.GuidanceConfig``).
    """

    content_weight: float = option(
        1.0, flag="--content-weight", kind="float", minimum=0, help="Weight of the content term."
    )
    style_weight: float | None = option(
        None,
        flag="--style-weight",
        kind="float",
        minimum=0,
        none="by --style-loss: " + ", ".join(f"{k} {v:g}" for k, v in STYLE_WEIGHTS.items()),
        help="Total weight of the style terms, split between the styles by their blend weights.",
    )
    tv_weight: float = option(
        0.0, flag="--tv-weight", kind="float", minimum=0, help="Weight of the total-variation term."
    )
    laplacian_weight: float = option(
        0.2,
        flag="--laplacian-weight",
        kind="float",
        minimum=0,
        help="Weight of the laplacian term: keep the content's fine structure (edges; flat skies stay "
        "flat); 0: no such term.",
    )
    laplacian_sigma: float = option(
        1.0,
        flag="--laplacian-sigma",
        kind="float",
        minimum=0,
        above=True,
        help="Blur in px before the laplacian term's Laplacian: the scale of the structure it keeps.",
    )
    iterations: int = option(
        150,
        flag="--iterations",
        kind="int",
        minimum=1,
        help="Iterations of a stage without :STEPS (L-BFGS: function evaluations).",
    )
    size: int = option(512, flag="--size", kind="int", minimum=1, help="Output long side in pixels.")
    optimizer: tuple[str, ...] = option(
        ("lbfgs",),
        flag="--optimizer",
        kind="items",
        metavar="NAME[:STEPS][@LR]",
        noun="stages",
        nonempty=True,
        parse=parse_optimizer,
        help="lbfgs adam adamw sgd momentum nesterov rmsprop adagrad adadelta; repeat for a chain "
        "(adam:200 then lbfgs:300).",
    )
    lr: float | None = option(
        None,
        flag="--lr",
        kind="float",
        minimum=0,
        above=True,
        none="per optimiser",
        help="Learning rate for stages without @LR.",
    )
    stop_delta: float | None = option(
        None,
        flag="--stop-delta",
        kind="float",
        minimum=0,
        none="off",
        help="Stop when the total's relative change stays below this for --patience iterations.",
        doc="Early stopping: stop when the total's relative change stays below this for `--patience` "
        "consecutive iterations.",
    )
    patience: int = option(10, flag="--patience", kind="int", minimum=1, help="Iterations for --stop-delta.")
    divergence_factor: float = option(
        10.0,
        flag="--divergence-factor",
        kind="float",
        minimum=1,
        above=True,
        finite=False,
        note="inf disables the ratio check",
        help="A total above this x the best is divergence: stop and keep the best (inf: NaN/inf only).",
        doc="A NaN/inf total, or a total above this × the best so far, stops the run and restores the best "
        "image (`inf`: only NaN/inf).",
    )
    seed: int = option(0, flag="--seed", kind="int", minimum=0, help="Seed of random weights and noise.")
    device: str = option(
        "auto",
        flag="--device",
        help="auto, cpu, cuda, cuda:N or mps.",
        doc="`auto` (CUDA, then MPS, then CPU), `cpu`, `cuda`, `cuda:N` or `mps`.",
    )
    weights: str = option(
        "auto",
        flag="--weights",
        metavar="auto|imagenet|hed|random|PATH",
        help="VGG weights: auto (ImageNet if cached or downloadable, else HED's VGG-16, else random), "
        "torchvision's ImageNet file, HED's pretrained VGG-16 (from the package registry), seeded "
        "random, or a file.",
    )
    network: str = option(
        "auto",
        flag="--network",
        kind="choice",
        choices=NETWORKS,
        help="vgg19 or vgg16; auto: the weights' network (vgg16 for hed, else vgg19).",
    )
    content_layers: tuple[str, ...] = option(
        DEFAULT_CONTENT_LAYERS,
        flag="--content-layers",
        kind="list",
        metavar="LAYER[:W],...",
        noun="layer name",
        nonempty=True,
        help="Content layers with optional weights (normalised to sum 1).",
    )
    style_layers: tuple[str, ...] = option(
        DEFAULT_STYLE_LAYERS,
        flag="--style-layers",
        kind="list",
        metavar="LAYER[:W],...",
        noun="layer name",
        nonempty=True,
        help="Style layers with optional weights.",
    )
    style_layer_weight_exp: float = option(
        0.7,
        flag="--style-layer-weight-exp",
        kind="float",
        minimum=0,
        above=True,
        help="Layer n+1 weighs EXP x layer n (<1: fine texture, >1: coarse).",
    )
    style_loss: str = option(
        "w2",
        flag="--style-loss",
        kind="choice",
        choices=STYLE_LOSSES,
        help="gram: Gram matrices; w2: Wasserstein-2 between Gaussians of the features; "
        "sw: sliced Wasserstein (sorted random projections).",
    )
    style_masks: tuple[str, ...] = option(
        (),
        flag="--style-mask",
        kind="items",
        metavar="NAME=MASK",
        parse=parse_region,
        help="Style NAME (a for a.jpg, or its position) only where the grey MASK is white in the output; "
        "repeatable; styles without one share the rest.",
    )
    style_image_masks: tuple[str, ...] = option(
        (),
        flag="--style-image-mask",
        kind="items",
        metavar="NAME=MASK",
        parse=parse_region,
        help="Take style NAME's statistics only from where MASK is white in its own image; repeatable.",
    )
    pooling: str = option(
        "max", flag="--pooling", kind="choice", choices=POOLINGS, help="Pooling of the frozen VGG."
    )
    init: str = option(
        "content",
        flag="--init",
        metavar="|".join(INITS) + "|PATH",
        help="Starting image: the content, seeded noise, the first style image, or an image file.",
    )
    init_noise_blend: float = option(
        0.0,
        flag="--init-noise-blend",
        kind="float",
        minimum=0,
        maximum=1,
        help="Share of seeded noise mixed into the starting image (0..1).",
    )
    style_scale: float = option(
        1.5,
        flag="--style-scale",
        kind="float",
        minimum=0,
        above=True,
        help="Style images are sized to --size x this before their statistics are taken.",
    )
    color_transfer: str = option(
        "none",
        flag="--color-transfer",
        kind="choice",
        choices=COLOR_TRANSFERS,
        help="histogram: recolour the style images to the content's colour histogram first.",
    )
    preserve_colors: bool = option(
        False,
        flag="--preserve-colors",
        kind="flag",
        help="Keep the content's colours (luminance-only transfer).",
    )
    keep_last: bool = option(
        False, flag="--keep-last", kind="flag", help="Write the last iterate, not the lowest-loss one."
    )
    scales: int | None = option(
        None,
        flag="--scales",
        kind="int",
        minimum=1,
        none_word="auto",
        metavar="N|auto",
        help="Coarse-to-fine: optimise at N sizes growing to --size, each from the last one upsampled, "
        f"sharing the iterations; auto: sqrt(2) steps from {AUTO_MIN_SIZE} px (one size up to "
        f"{AUTO_MIN_SIZE}).",
    )
    min_size: int | None = option(
        None,
        flag="--min-size",
        kind="int",
        minimum=16,
        metavar="PX",
        none="sqrt(2) steps",
        help="First scale's long side.",
    )
    scale_split: float = option(
        1.41,
        flag="--scale-split",
        kind="float",
        minimum=0,
        above=True,
        help="Each scale runs this many times the iterations of the next finer one (1: evenly).",
    )
    tile: str = option(
        "auto",
        flag="--tile",
        kind="int",
        minimum=MIN_TILE,
        words=("auto", "off"),
        noun="tile side in px",
        metavar="auto|off|PX",
        help="Optimise a scale tile by tile: auto when it does not fit in memory (tiles that do), "
        "PX for scales larger than PX px, off never.",
    )
    tile_overlap: int | None = option(
        None,
        flag="--tile-overlap",
        kind="int",
        minimum=0,
        metavar="PX",
        none="a quarter of the tile",
        help="Overlap of neighbouring tiles.",
    )
    tile_passes: int = option(
        2,
        flag="--tile-passes",
        kind="int",
        minimum=1,
        help="Passes over a tiled scale, each at new random tile offsets.",
    )
    memory_check: bool = option(
        True,
        flag="--memory-check",
        kind="flag",
        negatable=True,
        help="Refuse a run whose estimated memory exceeds what is available (and suggest a --size).",
    )
    precision: str = option(
        "auto",
        flag="--precision",
        kind="choice",
        choices=PRECISIONS,
        help="Convolutions in bf16 (autocast; loss arithmetic stays fp32), fp32, or tf32 (CUDA); "
        "auto: bf16 where the device has it natively (CUDA Ampere+, CPUs with AVX512-BF16/AMX), else fp32.",
    )
    compile: bool = option(
        False,
        flag="--compile",
        kind="flag",
        negatable=True,
        help="torch.compile the network (pays a compilation first; for GPUs).",
    )

    def requested_network(self) -> str:
        """The network to ask the weights for: ``network``, or for ``auto`` vgg16 where the weights are
        HED's (``hed``, a ``.h5`` or ``.whl`` file) and vgg19 otherwise. ``--weights auto`` may still
        switch vgg19 to vgg16 when it falls back to HED (:func:`styleforge.nets.weights.resolve_weights`)."""
        if self.network != "auto":
            return self.network
        hed = self.weights == "hed" or str(self.weights).endswith((".h5", ".whl"))
        return "vgg16" if hed else "vgg19"

    def resolved_style_weight(self) -> float:
        """``style_weight``, or for ``None`` the style loss's default (:data:`STYLE_WEIGHTS`)."""
        return self.style_weight if self.style_weight is not None else STYLE_WEIGHTS[self.style_loss]

    def tile_side(self) -> int | None:
        """``tile`` as a side in px; ``None`` for ``auto`` and ``off``."""
        text = str(self.tile).strip().lower()
        return int(text) if text.isdigit() else None

    def resolved_scales(self) -> int:
        """How many sizes the run optimises at: ``scales``, or :func:`auto_scales` for ``None``."""
        return self.scales if self.scales is not None else auto_scales(self.size, self.min_size)

    def validate(self) -> None:
        """Checks every value that can be checked without files or a network: each option as declared,
        then the rules between options.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        self.check()
        if self.min_size is not None and self.min_size > self.size:
            raise InvalidParameter("--min-size", self.min_size, f"a size from 16 to --size ({self.size})")
        side = self.tile_side()
        if self.tile_overlap is not None and side is not None and 2 * self.tile_overlap >= side:
            raise InvalidParameter(
                "--tile-overlap", self.tile_overlap, f"less than half the tile ({side // 2} px)"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransferConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming the first one. The guidance
        options an older version kept here (:data:`GUIDANCE_KEYS`) are left out: they are
        ``GuidanceConfig``'s, which reads them from the same place."""
        return super().from_dict({k: v for k, v in data.items() if k not in GUIDANCE_KEYS})


# --------------------------------------------------------------------------------------------------
# styleforge train-attrs (docs/attributes.md says where each default comes from)

BACKBONES: tuple[str, ...] = ("resnet50", "resnet18", "vgg19", "vgg16")
NUMERIC_LOSSES: tuple[str, ...] = ("mse", "smooth_l1", "l1", "huber")
BALANCES: tuple[str, ...] = ("none", "initial", "uncertainty")
AUGMENTS: tuple[str, ...] = ("auto", "none", "standard")
#: How the attribute heads see the backbone's features (``attributes.model.FeatureNorm``).
FEATURE_NORMS: tuple[str, ...] = ("l2", "standard")
_LR_SCHEDULES: tuple[str, ...] = ("none", "cosine", "plateau")  # = styleforge.engine.fit.SCHEDULES


@dataclass
class TrainConfig:
    """Every option of ``styleforge train-attrs``, with its default (see docs/attributes.md).

    Attributes:
        schema: A TOML/JSON schema file, or ``None`` for the 8 ACAN attributes.
        labels: The labels CSV (relative to the data folder or absolute); ``None``: ``labels.csv``,
            else the folder's only ``.csv``.
        backbone: ``resnet50``, ``resnet18``, ``vgg19`` or ``vgg16``: the network asked for (``auto``
            weights may switch a VGG-19 to HED's VGG-16; ``model.json`` records the one built).
        weights: ``imagenet``, ``hed`` (VGG-16 only), ``random``, ``auto`` or a state-dict path, as
            in transfer.
        size: Images are resized to ``size × size`` px (the original's 256×256).
        finetune: Train the backbone too (end to end, with augmentation); otherwise it is frozen and
            each image's features are computed once and cached.
        backbone_lr_scale: ``finetune``: the backbone's learning rate is the heads' times this.
        trunk: Layers of the shared trainable trunk between the backbone's features and the heads
            (each ``Linear(·, trunk_width) + LayerNorm + ReLU``); 0: independent linear heads, as the
            original. Through it the loss weights trade the attributes off against each other even with a
            frozen backbone (docs/attributes.md gives the measurements behind the default).
        trunk_width: Width of each trunk layer.
        feature_norm: How the heads see the backbone's pooled features: ``standard`` (each feature
            centred and scaled by the training images' statistics, stored with the model) or ``l2``
            (each image's vector scaled to unit length, as the original; it divides out most of an
            image's contrast). docs/attributes.md gives the measurements behind the default.
        augment: ``auto`` (``standard`` with ``finetune``, else ``none``), ``none`` or ``standard``
            (random pad + crop, small rotation, horizontal flip; never colour jitter).
        numeric_loss: ``mse``, ``smooth_l1``, ``l1`` or ``huber``, on labels mapped to [-1, 1].
        huber_delta: ``huber``'s delta and ``smooth_l1``'s beta.
        label_smoothing: Cross-entropy label smoothing of the categorical heads, in [0, 1).
        loss_weights: ``numeric``, ``categorical`` or an attribute name → weight (attribute names
            override the kind); unnamed heads weigh 1.
        balance: ``none``, ``initial`` (each term divided by its value before training) or
            ``uncertainty`` (learned per-term log-variances, Kendall et al. 2018).
        optimizer: ``NAME[@LR]`` from the shared factory.
        lr: Learning rate (``None``: the optimiser's entry in ``attributes.train.HEAD_LR``).
        weight_decay: L2 penalty (decoupled for adamw).
        lr_schedule: ``none``, ``cosine`` or ``plateau``.
        plateau_factor: ``plateau``: learning-rate factor.
        plateau_patience: ``plateau``: epochs without improvement before the rate drops.
        batch_size: Images per optimiser step.
        epochs: Most epochs to run.
        seed: Seeds the split, the heads' init, the shuffling and the augmentation (and random
            backbone weights).
        val_split: Share of the images held out for validation when the CSV has no split column
            (0: no validation; early stopping then watches the training total).
        test_split: Share held out for a final test, scored once with the best weights.
        patience: Early stopping: epochs without an improvement of the validation total by more
            than ``min_delta`` (relative) before the run stops; 0 never stops early.
        min_delta: Relative improvement that counts, >= 0.
        divergence_factor: A validation total above this × the best stops the run (``inf``: only
            NaN/inf do).
        skip_bad: Skip (and count) missing or unreadable images instead of stopping.
        feature_cache: Keep the frozen backbone's features in ``RUN_DIR/features.safetensors`` too,
            so a resumed or repeated run does not recompute them.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        workers: Worker processes that decode (and, with ``finetune``, augment) images; 0: in the
            main process; ``None``: ``min(4, CPU cores per process - 1)``. Results do not depend on it.
    """

    schema: str | None = None
    labels: str | None = None
    backbone: str = "resnet50"
    weights: str = "imagenet"
    size: int = 256
    finetune: bool = False
    backbone_lr_scale: float = 0.01
    trunk: int = 1
    trunk_width: int = 256
    feature_norm: str = "l2"
    augment: str = "auto"
    numeric_loss: str = "mse"
    huber_delta: float = 1.0
    label_smoothing: float = 0.0
    loss_weights: dict[str, float] = dataclasses.field(default_factory=dict)
    balance: str = "none"
    optimizer: str = "adam"
    lr: float | None = None
    weight_decay: float = 0.0
    lr_schedule: str = "none"
    plateau_factor: float = 0.1
    plateau_patience: int = 10
    batch_size: int = 32
    epochs: int = 200
    seed: int = 0
    val_split: float = 0.1
    test_split: float = 0.0
    patience: int = 20
    min_delta: float = 0.0
    divergence_factor: float = 10.0
    skip_bad: bool = False
    feature_cache: bool = True
    device: str = "auto"
    workers: int | None = None

    def validate(self) -> None:
        """Checks every value that can be checked without files or a network.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        if self.backbone not in BACKBONES:
            raise choice_error("--backbone", self.backbone, BACKBONES)
        _check_int("--size", self.size, 32)
        _check_number("--backbone-lr-scale", self.backbone_lr_scale)
        _check_int("--trunk", self.trunk, 0)
        _check_int("--trunk-width", self.trunk_width, 1)
        if self.feature_norm not in FEATURE_NORMS:
            raise choice_error("--feature-norm", self.feature_norm, FEATURE_NORMS)
        if self.augment not in AUGMENTS:
            raise choice_error("--augment", self.augment, AUGMENTS)
        if self.augment == "standard" and not self.finetune:
            raise InvalidParameter(
                "--augment",
                self.augment,
                "none without --finetune",
                "a frozen backbone's features are computed once per image, without augmentation",
            )
        if self.numeric_loss not in NUMERIC_LOSSES:
            raise choice_error("--numeric-loss", self.numeric_loss, NUMERIC_LOSSES)
        _check_number("--huber-delta", self.huber_delta, strict=True)
        if not (isinstance(self.label_smoothing, (int, float)) and 0 <= self.label_smoothing < 1):
            raise InvalidParameter(
                "--label-smoothing", self.label_smoothing, "a number from 0 up to (not including) 1"
            )
        if not isinstance(self.loss_weights, dict):
            raise InvalidParameter("--loss-weight", self.loss_weights, "KEY=WEIGHT pairs")
        if self.balance not in BALANCES:
            raise choice_error("--balance", self.balance, BALANCES)
        if self.lr is not None:
            _check_number("--lr", self.lr, strict=True)
        _check_number("--weight-decay", self.weight_decay)
        if self.lr_schedule not in _LR_SCHEDULES:
            raise choice_error("--lr-schedule", self.lr_schedule, _LR_SCHEDULES)
        if not (isinstance(self.plateau_factor, (int, float)) and 0 < self.plateau_factor < 1):
            raise InvalidParameter("--plateau-factor", self.plateau_factor, "a number between 0 and 1")
        _check_int("--plateau-patience", self.plateau_patience, 0)
        _check_int("--batch-size", self.batch_size, 1)
        _check_int("--epochs", self.epochs, 1)
        _check_int("--seed", self.seed, 0)
        for param, value in (("--val-split", self.val_split), ("--test-split", self.test_split)):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
                raise InvalidParameter(param, value, "a share from 0 up to (not including) 1")
        if self.val_split + self.test_split >= 1:
            raise InvalidParameter(
                "--test-split",
                self.test_split,
                f"a share that leaves images to train on with --val-split {self.val_split:g}",
            )
        _check_int("--patience", self.patience, 0)
        _check_number("--min-delta", self.min_delta)
        if not (isinstance(self.divergence_factor, (int, float)) and self.divergence_factor > 1):
            raise InvalidParameter(
                "--divergence-factor", self.divergence_factor, "a number > 1 (inf disables the ratio check)"
            )
        if self.workers is not None:
            _check_int("--workers", self.workers, 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, stored in ``model.json``."""
        return {
            f.name: (dict(v) if isinstance(v := getattr(self, f.name), dict) else v)
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them. A configuration saved
        before the trunk existed (no ``trunk`` key) trained without one, and one saved before
        ``feature_norm`` existed trained on ``l2``."""
        return cls(**_known_fields(cls, {"trunk": 0, "feature_norm": "l2", **data}))


@dataclass
class DatasetConfig:
    """Defaults of ``styleforge make-dataset``: the original's data-set size (500 hand-labelled
    images) and input size (256 px)."""

    count: int = 500
    seed: int = 0
    size: int = 256


@dataclass
class ScoreConfig:
    """Defaults of ``styleforge score``: images per forward pass, device, output format."""

    batch_size: int = 16
    device: str = "auto"
    format: str = "table"


#: Frame rate of a video made from a folder of frames when ``--fps`` is not given.
DEFAULT_FPS = 24.0


@dataclass
class VideoConfig(Declared):
    """What ``styleforge video`` adds to a transfer's options, each declared once (docs/video.md; the
    defaults come from benchmarks/video.py, whose figures are in benchmarks/README.md)."""

    temporal_weight: float = option(
        30.0,
        flag="--temporal-weight",
        kind="float",
        minimum=0,
        help="Weight of the temporal term: change from the previous output frame warped by the optical "
        "flow, where the flow is reliable (0: the warped start only).",
    )
    frame_iterations: int | None = option(
        100,
        flag="--frame-iterations",
        kind="int",
        minimum=1,
        none="--iterations",
        help="Iterations of every frame after the first (which runs --iterations and the --scales): "
        "they start from the previous output warped, already close.",
    )
    fps: float | None = option(
        None,
        flag="--fps",
        kind="float",
        minimum=0,
        above=True,
        none=f"the input video's; {DEFAULT_FPS:g} for a folder of frames",
        help="Output frame rate.",
    )
