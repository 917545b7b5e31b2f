"""Run configurations: the single home of every default (the CLI reads its defaults from here).

Each option of a transfer or a video, of ``make-dataset``, ``train-attrs`` and ``score`` is declared
once, as a field (:func:`styleforge.option.option`): its default, type, range or choices, help and
docs line. The checks, the click options and the docs' options tables are made from those
declarations; only the rules between options are written by hand. Where each transfer default comes
from is documented in docs/transfer.md, each attribute-network default in docs/attributes.md.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidParameter
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
    "BEFORE_OPTIONS",
    "recorded_config",
    "recorded_transfer_config",
]
__all__ += ["NETWORKS", "STYLE_LOSSES", "STYLE_NORMS", "STYLE_WEIGHTS"]
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
    "SCORE_FORMATS",
    "AUTO_MIN_SIZE",
    "auto_scales",
    "VideoConfig",
    "DEFAULT_FPS",
]

DEFAULT_CONTENT_LAYERS: tuple[str, ...] = ("relu2_2", "relu4_2")
DEFAULT_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


#: Where ``--scales auto`` starts: outputs up to this long side run at one size.
AUTO_MIN_SIZE = 128


def auto_scales(size: int, min_size: int | None = None) -> int:
    """``--scales auto``: √2 steps from ``min_size`` (default :data:`AUTO_MIN_SIZE`) up to ``size``.

    1 up to that size, then 2 at 181 px, 3 at 256 px, 5 at 512 px. Coarse-to-fine is the default
    because it reached a lower loss sooner in every measurement (benchmarks/README.md).
    """
    first = min_size if min_size is not None else AUTO_MIN_SIZE
    return 1 + max(0, round(2 * math.log2(size / first)))


COLOR_TRANSFERS: tuple[str, ...] = ("none", "histogram", "luminance")
#: ``--style-loss`` values (styleforge.stylize.losses; docs/transfer.md compares them).
STYLE_LOSSES: tuple[str, ...] = ("gram", "w2", "sw")
#: ``--style-norm`` values: the denominator of the relative style distances (styleforge.stylize.losses).
STYLE_NORMS: tuple[str, ...] = ("style", "balanced")
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
#: Options that records of older versions (output metadata, video frames) lack, with the value every
#: such record was made with, where today's default differs: Gram matrices before ``--style-loss``,
#: no Laplacian term before ``--laplacian-weight``, an even split before ``--scale-split``, no tiles
#: before ``--tile``, float32 before ``--precision``, the style's own magnitude before ``--style-norm``,
#: no content detail at a scale's start before ``--scale-detail``, no tone term before ``--tone-weight``.
BEFORE_OPTIONS: dict[str, Any] = {
    "style_loss": "gram",
    "laplacian_weight": 0.0,
    "scale_split": 1.0,
    "tile": "off",
    "precision": "fp32",
    "style_norm": "style",
    "scale_detail": 0.0,
    "tone_weight": 0.0,
}


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
    tone_weight: float = option(
        0.7,
        flag="--tone-weight",
        kind="float",
        minimum=0,
        help="Weight of the tone term: keep where the content is light and where dark (its luminance, "
        "blurred by --tone-sigma), whatever the painting's tones; 0: no such term.",
    )
    tone_sigma: float = option(
        1.0,
        flag="--tone-sigma",
        kind="float",
        minimum=0,
        above=True,
        help="Blur in px of both luminances the tone term compares: texture finer than this is free.",
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
    style_norm: str = option(
        "style",
        flag="--style-norm",
        kind="choice",
        choices=STYLE_NORMS,
        help="What each style distance is divided by: style: the style's magnitude; balanced: the mean of "
        "the style's and the content's (a flat or dark painting then outweighs the photo less).",
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
        1.25,
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
        help="histogram: recolour the style images to the content's colour histogram first; luminance: "
        "match only their tone (the luminance's mean and spread) to the content's, keeping their colours.",
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
        help="Coarse-to-fine: optimise at N sizes growing to --size, each from the last one upsampled "
        "(plus the content's detail: --scale-detail), "
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
    scale_detail: float = option(
        1.0,
        flag="--scale-detail",
        kind="float",
        minimum=0,
        help="How much of the content's fine detail, which a coarser scale cannot hold, is added to each "
        "finer scale's starting image (0: the coarser result only, enlarged).",
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


def recorded_config(record: dict[str, Any]) -> dict[str, Any]:
    """A transfer configuration as a record holds it (a PNG's or a frame's metadata), in this version's
    terms: each option an older version lacked filled in with the value it was made with
    (:data:`BEFORE_OPTIONS`)."""
    return {**BEFORE_OPTIONS, **record}


def recorded_transfer_config(record: dict[str, Any]) -> dict[str, Any]:
    """:func:`recorded_config` of a record's transfer options alone: the guidance's, which an older
    version kept among them (:data:`GUIDANCE_KEYS`), left out."""
    return recorded_config({k: v for k, v in record.items() if k not in GUIDANCE_KEYS})


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
class TrainConfig(Declared):
    """Every option of ``styleforge train-attrs``, each declared once: its flag, default, type, range or
    choices, help and docs line (docs/attributes.md's options table says where each default comes
    from). :meth:`validate` checks them as declared, then the rules between them.
    """

    schema: str | None = option(
        None,
        flag="--schema",
        none="the 8 ACAN attributes",
        help="TOML/JSON file of attributes.",
        doc="TOML/JSON file of attributes (see [Schema](#other-attributes---schema)).",
        origin="ACAN",
    )
    labels: str | None = option(
        None,
        flag="--labels",
        none="DATA/labels.csv, else DATA's only .csv",
        help="The labels CSV (relative to --data, or absolute).",
    )
    backbone: str = option(
        "resnet50",
        flag="--backbone",
        kind="choice",
        choices=BACKBONES,
        help="Network whose features the heads see (a VGG: its relu*_1 hypercolumn).",
        doc="Network whose features the heads see (a VGG: its 1,472-dim `relu*_1` hypercolumn); `auto` "
        "weights may switch vgg19 to HED's VGG-16, and `model.json` records the one built.",
        origin="ACAN (ImageNet ResNet-50)",
    )
    weights: str = option(
        "imagenet",
        flag="--weights",
        metavar="imagenet|hed|random|auto|PATH",
        help="Backbone weights, as in transfer (hed: with --backbone vgg16; auto may switch vgg19 to "
        "vgg16+hed).",
        doc="As in `transfer`: `imagenet`, `hed` (HED's pretrained VGG-16, `--backbone vgg16` only), "
        "`random`, `auto` (imagenet, else hed for a VGG, switching vgg19 to vgg16, else random; each "
        "with a notice), or a state-dict file.",
        origin="ACAN",
    )
    size: int = option(
        256,
        flag="--size",
        kind="int",
        minimum=32,
        help="Images are resized to SIZE x SIZE px.",
        doc="Images are squashed to SIZE × SIZE px, as her Keras loader did.",
        origin="ACAN (256×256 input)",
    )
    finetune: bool = option(
        False,
        flag="--finetune",
        kind="flag",
        help="Train the backbone too (end to end, with augmentation).",
        doc="Train the backbone too (end to end, with augmentation); without it the backbone is frozen "
        "and each image's features are computed once.",
        origin="ACAN trained the heads only",
    )
    backbone_lr_scale: float = option(
        0.01,
        flag="--backbone-lr-scale",
        kind="float",
        minimum=0,
        help="--finetune: the backbone's learning rate is --lr times this.",
        origin="Adam 1e-4 for the backbone, the usual fine-tuning rate, 1e-2 for the heads",
    )
    trunk: int = option(
        1,
        flag="--trunk",
        kind="int",
        minimum=0,
        help="Shared trainable layers between the features and the heads (0: independent heads); "
        "through them the loss weights trade attributes off.",
        doc="Shared trainable layers between the features and the heads, each `Linear(·, "
        "--trunk-width) + LayerNorm + ReLU`; through them the loss weights trade the attributes off "
        "even with a frozen backbone. 0: independent linear heads.",
        origin="styleforge, measured (see [The network](#the-network)); 0 is ACAN's independent heads",
    )
    trunk_width: int = option(
        256,
        flag="--trunk-width",
        kind="int",
        minimum=1,
        help="Width of each trunk layer.",
        origin="measured on the synthetic set: 64 no better, 2 × 256 slightly worse",
    )
    feature_norm: str = option(
        "l2",
        flag="--feature-norm",
        kind="choice",
        choices=FEATURE_NORMS,
        help="standard: each feature scaled by the training images' statistics; l2: each image's vector "
        "to unit length, as the original (it divides out most of the contrast).",
        doc="`standard`: each feature centred and scaled by the training images' statistics (stored with "
        "the model); `l2`: each image's vector scaled to unit length, as the original (it divides out "
        "most of an image's contrast).",
        origin="ACAN (per image; measured against `standard`, see [The network](#the-network))",
    )
    augment: str = option(
        "auto",
        flag="--augment",
        kind="choice",
        choices=AUGMENTS,
        help="standard: pad+crop, small rotation, flip (never colour); auto: standard with --finetune.",
        origin='"Hard training works in deep learning" (pad + crop, rotation, flip), only where it can '
        "act (`--finetune`)",
    )
    numeric_loss: str = option(
        "mse",
        flag="--numeric-loss",
        kind="choice",
        choices=NUMERIC_LOSSES,
        help="Loss of the numeric heads, on labels mapped to [-1, 1].",
        origin="ACAN (MSE); Popescu Andrei-George's early-stopping report compares smooth L1",
    )
    huber_delta: float = option(
        1.0,
        flag="--huber-delta",
        kind="float",
        minimum=0,
        above=True,
        help="huber's delta, smooth_l1's beta.",
        origin="PyTorch's default",
    )
    label_smoothing: float = option(
        0.0,
        flag="--label-smoothing",
        kind="float",
        minimum=0,
        maximum=1,
        below=True,
        help="Label smoothing of the categorical heads' cross-entropy.",
        origin="ACAN (plain cross-entropy)",
    )
    loss_weights: dict[str, float] = option(
        {},
        flag="--loss-weight",
        kind="pairs",
        metavar="KEY=W",
        minimum=0,
        noun="KEY=WEIGHT",
        note="e.g. categorical=0.7 or contrast=2",
        none="every term 1",
        help="Weight of numeric, categorical or one attribute's term; repeatable "
        "(Holly Grimm's ACAN: categorical=0.7).",
        doc="Weight of the `numeric` or `categorical` terms, or of one attribute's (which beats its "
        "kind's); repeatable.",
        origin="Keras's default; ACAN's final run: `categorical=0.7`",
    )
    balance: str = option(
        "none",
        flag="--balance",
        kind="choice",
        choices=BALANCES,
        help="initial: divide each term by its starting value; uncertainty: learned log-variances "
        "(Kendall 2018).",
        origin="ACAN was balanced by hand",
    )
    optimizer: str = option(
        "adam",
        flag="--optimizer",
        metavar="NAME[@LR]",
        help="adam adamw sgd momentum nesterov rmsprop adagrad adadelta lbfgs.",
        origin="see [Optimisation and stopping](#optimisation-and-stopping) (ACAN: adagrad)",
    )
    lr: float | None = option(
        None,
        flag="--lr",
        kind="float",
        minimum=0,
        above=True,
        none="per optimiser; adam 0.01",
        help="Learning rate (each optimiser's default: see docs/attributes.md).",
        doc="Learning rate.",
        origin="`HEAD_LR`, measured on the synthetic set (ACAN: 1e-4)",
    )
    weight_decay: float = option(
        0.0,
        flag="--weight-decay",
        kind="float",
        minimum=0,
        help="L2 penalty (decoupled for adamw).",
        origin='PyTorch\'s default; "Hard training works in deep learning" found it helps',
    )
    lr_schedule: str = option(
        "none",
        flag="--lr-schedule",
        kind="choice",
        choices=_LR_SCHEDULES,
        help="cosine: anneal to 0 over --epochs; plateau: multiply by --plateau-factor after "
        "--plateau-patience epochs without a better validation total.",
        origin="ACAN (constant rate)",
    )
    plateau_factor: float = option(
        0.1,
        flag="--plateau-factor",
        kind="float",
        minimum=0,
        maximum=1,
        above=True,
        below=True,
        help="--lr-schedule plateau: the learning rate's factor.",
        origin="PyTorch's `ReduceLROnPlateau` default",
    )
    plateau_patience: int = option(
        10,
        flag="--plateau-patience",
        kind="int",
        minimum=0,
        help="--lr-schedule plateau: epochs without improvement before the rate drops.",
        origin="PyTorch's `ReduceLROnPlateau` default",
    )
    batch_size: int = option(
        32,
        flag="--batch-size",
        kind="int",
        minimum=1,
        help="Images per optimiser step.",
        origin="Keras's `fit` default (ACAN: 2)",
    )
    epochs: int = option(
        200,
        flag="--epochs",
        kind="int",
        minimum=1,
        help="Most epochs to run.",
        origin="ACAN ran 200–1000; early stopping ends most runs sooner",
    )
    seed: int = option(
        0,
        flag="--seed",
        kind="int",
        minimum=0,
        help="Split, heads' init, shuffling, augmentation.",
        doc="Seeds the split, the trunk's and heads' init, the shuffling, the augmentation and random "
        "backbone weights.",
    )
    val_split: float = option(
        0.1,
        flag="--val-split",
        kind="float",
        minimum=0,
        maximum=1,
        below=True,
        noun="share",
        help="Share held out for validation (unless the CSV has split/in_train).",
        doc="Share held out for validation (unless the CSV has `split`/`in_train`); 0: no validation, "
        "early stopping then follows the training total.",
        origin="ACAN (last 10 % of rows)",
    )
    test_split: float = option(
        0.0,
        flag="--test-split",
        kind="float",
        minimum=0,
        maximum=1,
        below=True,
        noun="share",
        help="Share held out for a final test.",
        origin="ACAN had none",
    )
    patience: int = option(
        20,
        flag="--patience",
        kind="int",
        minimum=0,
        help="Stop after this many epochs without a better validation total (0: never).",
        origin="styleforge (Popescu Andrei-George's idea: wait a while before stopping)",
    )
    min_delta: float = option(
        0.0,
        flag="--min-delta",
        kind="float",
        minimum=0,
        help="Relative improvement that counts.",
        origin="Keras's and Lightning's `EarlyStopping`",
    )
    divergence_factor: float = option(
        10.0,
        flag="--divergence-factor",
        kind="float",
        minimum=1,
        above=True,
        finite=False,
        note="inf disables the ratio check",
        help="A validation total above this x the best stops the run.",
        doc="A validation total above this × the best stops the run (`inf`: only NaN/inf do).",
        origin="as `transfer`",
    )
    skip_bad: bool = option(
        False,
        flag="--skip-bad",
        kind="flag",
        help="Skip missing or unreadable images (and count them).",
        origin="errors by default",
    )
    feature_cache: bool = option(
        True,
        flag="--feature-cache",
        kind="flag",
        negatable=True,
        help="Keep the frozen backbone's features in RUN/features.safetensors.",
        doc="Keep the frozen backbone's features in `RUN_DIR/features.safetensors` too, so that a resumed "
        "or repeated run does not compute them again.",
    )
    device: str = option(
        "auto",
        flag="--device",
        help="auto, cpu, cuda, cuda:N or mps (under torchrun: auto, cpu or cuda, one GPU per process).",
        doc="`auto` (CUDA, then MPS, then CPU; under `torchrun`: `cuda:LOCAL_RANK`, else CPU), `cpu`, "
        "`cuda`, `cuda:N` or `mps`.",
    )
    workers: int | None = option(
        None,
        flag="--workers",
        kind="int",
        minimum=0,
        none="min(4, CPU cores per process - 1)",
        help="Processes that decode (and with --finetune augment) images; 0: none. Results do not "
        "depend on it.",
        doc="Processes that decode (and with `--finetune` augment) images; 0: none (see "
        "[below](#worker-processes-and-several-processes---workers-torchrun)). Results do not depend "
        "on it.",
    )

    def validate(self) -> None:
        """Checks every value that can be checked without files or a network: each option as declared,
        then the rules between options.

        Raises:
            InvalidParameter: The first invalid option, named as on the command line.
        """
        self.check()
        if self.augment == "standard" and not self.finetune:
            raise InvalidParameter(
                "--augment",
                self.augment,
                "none without --finetune",
                "a frozen backbone's features are computed once per image, without augmentation",
            )
        if self.val_split + self.test_split >= 1:
            raise InvalidParameter(
                "--test-split",
                self.test_split,
                f"a share that leaves images to train on with --val-split {self.val_split:g}",
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (stored in ``model.json``); unknown keys are an error naming the
        first one. A configuration saved before the trunk existed (no ``trunk`` key) trained without
        one, and one saved before ``feature_norm`` existed trained on ``l2``."""
        return super().from_dict({"trunk": 0, "feature_norm": "l2", **data})


@dataclass
class DatasetConfig(Declared):
    """The options of ``styleforge make-dataset``, each declared once; the defaults are the
    original's data-set size (500 hand-labelled images) and input size (256 px)."""

    count: int = option(
        500,
        flag="--count",
        kind="int",
        minimum=1,
        help="Number of images.",
        origin="the original's data set: 500 hand-labelled images",
    )
    seed: int = option(
        0,
        flag="--seed",
        kind="int",
        minimum=0,
        help="Random seed; the same seed gives the same files.",
    )
    size: int = option(
        256,
        flag="--size",
        kind="int",
        minimum=16,
        noun="whole number of pixels",
        help="Side of each square image in px.",
        origin="the original's input size",
    )


#: ``styleforge score --format`` values; the first is the one where ``-o``'s extension names none.
SCORE_FORMATS: tuple[str, ...] = ("table", "json", "csv")


@dataclass
class ScoreConfig(Declared):
    """The options of ``styleforge score``, each declared once: images per forward pass, device,
    output format."""

    format: str | None = option(
        None,
        flag="--format",
        kind="choice",
        choices=SCORE_FORMATS,
        none=f"from -o's extension (.json, .csv), else {SCORE_FORMATS[0]}",
        help="Output format.",
    )
    batch_size: int = option(16, flag="--batch-size", kind="int", minimum=1, help="Images per forward pass.")
    device: str = option("auto", flag="--device", help="auto, cpu, cuda, cuda:N or mps.")

    def resolved_format(self, output: str | os.PathLike[str] | None) -> str:
        """``format``, or for ``None`` the one ``output``'s extension names (``.json``, ``.csv``), else
        ``table`` (also without ``-o``)."""
        if self.format is not None:
            return self.format
        suffix = Path(output).suffix.lower() if output is not None else ""
        return {".json": "json", ".csv": "csv"}.get(suffix, SCORE_FORMATS[0])


#: Frame rate of a video made from a folder of frames when ``--fps`` is not given.
DEFAULT_FPS = 24.0


@dataclass
class VideoConfig(Declared):
    """What ``styleforge video`` adds to a transfer's options, each declared once (docs/video.md; the
    defaults come from benchmarks/video.py, whose figures are in benchmarks/README.md)."""

    temporal_weight: float = option(
        100.0,
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
