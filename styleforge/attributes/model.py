"""The attribute network: a backbone's hypercolumn and one head per attribute; saving and loading it.

As in Holly Grimm's Art Composition Attributes Network (ACAN, 2018): the global average pool of every
residual block's output of a ResNet (of each ``relu*_1`` for a VGG-19 or VGG-16), concatenated (the
*hypercolumn*) and normalised (:class:`FeatureNorm`: L2 per image as in the original, which normalised
over the batch axis by mistake, or ``standard``: per feature, by the training set's statistics), then one
linear head per attribute: ``tanh`` for a numeric attribute (its labels mapped [min, max] → [-1, 1]),
logits for a categorical one. Between the two, styleforge adds a shared trainable *trunk* (``--trunk N``
layers of ``Linear(·, W) + LayerNorm + ReLU``; 0: the original's independent heads): with a frozen
backbone it is what makes the loss weights trade the attributes off against each other (an adaptive
optimiser is invariant to a constant scale of a parameter's gradient, so a head with parameters of its
own does not feel its weight).

A run directory holds ``model.safetensors`` (the trunk, the heads, and the backbone when it was
fine-tuned) and ``model.json`` (schema, backbone and where its weights come from, the trunk's shape,
preprocessing, label scaling, training configuration, best metrics). A ``model.json`` without a ``trunk``
table (written before the trunk existed) is a model without one. A frozen backbone is not copied:
``model.json`` names the network actually built (``backbone.arch``: ``--weights auto`` may have switched
a VGG-19 to HED's VGG-16) and its weights (torchvision's ImageNet file, ``hed``, the seeded init, or a
file), which :func:`load_model` resolves again for that network. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import FEATURE_NORMS
from ..errors import InputFileError, InvalidParameter, WeightsError, choice_error
from ..files import write_atomic
from ..nets.resnet import RESNET_ARCHS, block_channels, build_resnet
from ..nets.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG_ARCHS, VGGFeatures
from ..nets.weights import WeightsChoice, load_checked, resolve_weights
from ..version import __version__
from .kinds import NumericAttribute
from .schema import Schema

__all__ = [
    "BACKBONE_ARCHS",
    "VGG_HYPERCOLUMN_LAYERS",
    "MODEL_FILE",
    "TRUNK_LAYER",
    "MODEL_JSON",
    "FEATURE_NORMS",
    "Hypercolumn",
    "FeatureNorm",
    "TrunkShape",
    "AttributeNet",
    "LoadedModel",
    "feature_dims",
    "NET_PARTS",
    "save_model",
    "load_model",
]

BACKBONE_ARCHS: tuple[str, ...] = ("resnet50", "resnet18", "vgg19", "vgg16")
#: The VGG layers whose pooled activations form its hypercolumn (the style layers of transfer); the
#: same names, and channels, in VGG-19 and VGG-16.
VGG_HYPERCOLUMN_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
MODEL_FILE = "model.safetensors"
#: The trunk's one kind of layer, as ``model.json`` names it.
TRUNK_LAYER = "linear+layernorm+relu"
MODEL_JSON = "model.json"
_VGG_CHANNELS = (64, 128, 256, 512, 512)


def feature_dims(arch: str) -> int:
    """Length of ``arch``'s hypercolumn: 1,920 (resnet18), 15,104 (resnet50), 1,472 (vgg19, vgg16)."""
    if arch in VGG_ARCHS:
        return sum(_VGG_CHANNELS)
    if arch not in RESNET_ARCHS:
        raise choice_error("--backbone", arch, BACKBONE_ARCHS)
    return sum(block_channels(arch))


class Hypercolumn(nn.Module):
    """A backbone that maps images to their hypercolumn (not normalised: :class:`FeatureNorm` does that).

    Batch-norm statistics always stay as loaded (the module's ``train()`` keeps the network in eval
    mode): fine-tuning batches of 2–32 images are too small to re-estimate them, and a frozen
    backbone must give the same features in training and in scoring.

    Args:
        arch: ``resnet50``, ``resnet18``, ``vgg19`` or ``vgg16``.
        state_dict: torchvision-keyed weights for ``arch``, or ``None`` for the seeded random init.
        seed: Seed of the random init.
        source: Where ``state_dict`` came from, for error messages.
        trainable: Whether the backbone's parameters get gradients (``--finetune``).

    Input: RGB ``(B, 3, H, W)`` in [0, 1]; ImageNet normalisation happens inside.
    Output: ``(B, D)`` float, every entry >= 0 (pooled ReLU outputs), ``D = feature_dims(arch)``.
    """

    def __init__(
        self,
        arch: str,
        state_dict: dict[str, Tensor] | None = None,
        *,
        seed: int = 0,
        source: str = "state dict",
        trainable: bool = False,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.dims = feature_dims(arch)
        if arch in VGG_ARCHS:
            self.net: nn.Module = VGGFeatures(
                arch, VGG_HYPERCOLUMN_LAYERS, state_dict=state_dict, seed=seed, source=source
            )
        else:
            net = build_resnet(arch, generator=torch.Generator().manual_seed(int(seed)))
            if state_dict is not None:
                load_checked(net, state_dict, source=source)
            net.fc = nn.Identity()  # the ImageNet classifier is not part of the hypercolumn
            self.net = net
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.net.requires_grad_(trainable)
        self.net.eval()

    def train(self, mode: bool = True) -> Hypercolumn:
        """Batch-norm statistics stay frozen: the network itself is always in eval mode."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        """Images ``(B, 3, H, W)`` in [0, 1] → hypercolumns ``(B, D)``."""
        if self.arch in VGG_ARCHS:
            acts = self.net(images, VGG_HYPERCOLUMN_LAYERS)
            return hypercolumn_of([acts[name] for name in VGG_HYPERCOLUMN_LAYERS])
        return hypercolumn_of(self.net.block_outputs((images - self.mean) / self.std))


def hypercolumn_of(activations: Sequence[Tensor]) -> Tensor:
    """Activations ``(B, C_i, H_i, W_i)`` → their global average pools, concatenated: ``(B, Σ C_i)``.
    (Guided transfer calls it on the transfer's own VGG activations when they are the attribute
    backbone's: same arch, same weights.)"""
    return torch.cat([act.mean(dim=(2, 3)) for act in activations], dim=1)


__all__.append("hypercolumn_of")


class FeatureNorm(nn.Module):
    """How the heads see the hypercolumn ``(B, D)``: ``--feature-norm``.

    - ``l2``: each image's vector scaled to unit L2 norm, as Holly Grimm's ACAN (per image: the
      original normalised over the batch axis by mistake). That divides out the overall magnitude
      of the activations, which is where most of an image's contrast lives (the first layers are
      close to linear in the pixels): on held-out real photographs a ridge regression of contrast
      on the L2-normalised HED features has a mean error of 2.47 (the training mean: 2.83), on the
      same features standardised 0.74. It keeps the direction, where colour and texture are: the
      default, measured (benchmarks/README.md, "the feature norm").
    - ``standard``: each feature centred and divided by its spread over the training images
      (:meth:`fit`; stored with the model), then the vector by √D so that its expected norm is 1,
      as with ``l2``: the heads' learning rates hold for both.

    Args:
        dims: ``D``.
        kind: One of :data:`FEATURE_NORMS`.
    """

    def __init__(self, dims: int, kind: str = "l2") -> None:
        super().__init__()
        if kind not in FEATURE_NORMS:
            raise choice_error("--feature-norm", kind, FEATURE_NORMS)
        self.kind = kind
        self.scale = 1.0 / math.sqrt(dims)
        if kind == "standard":
            self.register_buffer("mean", torch.zeros(dims))
            self.register_buffer("std", torch.ones(dims))

    @torch.no_grad()
    def fit(self, features: Tensor) -> None:
        """``standard``: takes the mean and spread of each feature from ``(N, D)`` training features
        (``l2``: nothing to fit). A feature that hardly varies (a channel that never fires on the
        training images) gets a floor of 1 % of the mean spread, so it cannot blow up on a new image."""
        if self.kind != "standard" or len(features) == 0:
            return
        features = features.to(self.mean.device, torch.float32)
        std = features.std(dim=0, unbiased=False)
        floor = 0.01 * float(std.mean())
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_(
            std.clamp_min(floor) if floor > 0 else torch.ones_like(std)
        )  # one image: no spread at all

    def forward(self, x: Tensor) -> Tensor:
        if self.kind == "l2":
            return F.normalize(x, p=2.0, dim=1)
        return (x - self.mean) / self.std * self.scale


@dataclass(frozen=True)
class TrunkShape:
    """The shared trunk between the hypercolumn and the heads: ``layers`` × (``Linear(·, width)``,
    ``LayerNorm``, ``ReLU``) (:func:`build_trunk`).

    ``layers == 0`` is no trunk (each head reads the hypercolumn itself, as in the original).
    ``model.json`` stores it as its ``trunk`` table (:meth:`to_dict`).
    """

    layers: int = 0
    width: int = 256

    def to_dict(self) -> dict[str, Any]:
        """``model.json``'s ``trunk`` table."""
        return {"layers": self.layers, "width": self.width, "layer": TRUNK_LAYER}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TrunkShape:
        """The trunk a ``model.json`` describes; none when it has no ``trunk`` table (older models)."""
        table = meta.get("trunk") or {}
        return cls(int(table.get("layers", 0)), int(table.get("width", cls.width)))


def _seeded_linear(fan_in: int, fan_out: int, generator: torch.Generator) -> nn.Linear:
    """``nn.Linear(fan_in, fan_out)`` with PyTorch's default init drawn from ``generator`` (the global
    random state is untouched)."""
    with torch.device("meta"):  # no draw from the global generator
        layer = nn.Linear(fan_in, fan_out)
    layer = layer.to_empty(device="cpu")
    with torch.no_grad():
        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


class UnitNorm(nn.Module):
    """Scales each row of ``(B, W)`` to unit L2 norm (no parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2.0, dim=1)


def build_trunk(dims: int, trunk: TrunkShape, generator: torch.Generator | None = None) -> nn.Sequential:
    """The trunk's layers for ``dims`` input features: ``trunk.layers`` × (``Linear``, ``LayerNorm``,
    ``ReLU``), then :class:`UnitNorm` (none of these when ``trunk.layers == 0``).

    The ``l2`` hypercolumn is unit-norm and every entry positive: its pooled channels differ little
    between images next to their common level, and a plain ``Linear + ReLU`` on it dies in the first Adam
    steps at the heads' learning rate (each step moves every pre-activation by about ``lr × ‖x‖₁``,
    thirty times their spread at 1,920 dims; measured: constant predictions). The layer norm keeps each
    image's units centred and of unit spread whatever that step, so about half of them stay active. The
    last :class:`UnitNorm` gives the heads a unit-norm vector, as the normalised hypercolumn is
    (``standard``: in expectation), so the heads' learning rates (``HEAD_LR``) hold with and without a
    trunk (on the layer norm's unit-spread output a head's logits moved √width times further per step,
    and saturated its ``tanh`` within an epoch).
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    layers: list[nn.Module] = []
    width = dims
    for _ in range(trunk.layers):
        layers += [_seeded_linear(width, trunk.width, generator), nn.LayerNorm(trunk.width), nn.ReLU()]
        width = trunk.width
    return nn.Sequential(*layers, UnitNorm()) if layers else nn.Sequential()


__all__ += ["UnitNorm", "build_trunk"]


class AttributeNet(nn.Module):
    """Hypercolumn backbone, an optional shared trunk, and one linear head per attribute.

    Args:
        schema: The attributes (one head each, in order).
        backbone: The feature extractor, or ``None`` for trunk and heads only (features come from a
            cache).
        dims: Feature length; ``backbone.dims`` when a backbone is given.
        seed: Seed of the trunk's and heads' init (PyTorch's default ``nn.Linear`` init, drawn from
            a generator so the global random state is untouched; the trunk draws first, so a net
            without a trunk has the heads it had before the trunk existed).
        trunk: The shared trunk (default: none).
        norm: How the heads see the features (:class:`FeatureNorm`; default ``l2``, the original's).

    Attributes:
        head_dims: Length of what the heads read: ``dims`` without a trunk, else ``trunk.width``.
    """

    def __init__(
        self,
        schema: Schema,
        backbone: Hypercolumn | None = None,
        *,
        dims: int | None = None,
        seed: int = 0,
        trunk: TrunkShape = TrunkShape(),
        norm: str = "l2",
    ) -> None:
        super().__init__()
        self.schema = schema
        self.backbone = backbone
        dims = backbone.dims if backbone is not None else dims
        if dims is None:
            raise InvalidParameter("dims", dims, "the feature length when no backbone is given")
        self.dims = int(dims)
        self.trunk_shape = trunk
        self.norm = FeatureNorm(self.dims, norm)  # no parameters: draws nothing from the generator
        generator = torch.Generator().manual_seed(int(seed))
        self.trunk = build_trunk(self.dims, trunk, generator)  # empty: the identity, and no tensors
        width = self.head_dims = trunk.width if trunk.layers else self.dims
        self.heads = nn.ModuleDict(
            {
                a.name: _seeded_linear(
                    width, 1 if isinstance(a, NumericAttribute) else a.num_classes, generator
                )
                for a in schema
            }
        )

    def heads_forward(self, features: Tensor) -> dict[str, Tensor]:
        """Hypercolumns ``(B, D)`` → the norm, the trunk, then each head's output: numeric ``(B,)``
        in [-1, 1] (tanh), categorical ``(B, C)`` logits."""
        shared = self.trunk(self.norm(features))
        out: dict[str, Tensor] = {}
        for attribute in self.schema:
            y = self.heads[attribute.name](shared)
            out[attribute.name] = torch.tanh(y[:, 0]) if isinstance(attribute, NumericAttribute) else y
        return out

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Images ``(B, 3, H, W)`` in [0, 1] → :meth:`heads_forward` of their hypercolumns."""
        if self.backbone is None:
            raise InvalidParameter(
                "backbone", None, "a backbone to run images through (this net has heads only)"
            )
        return self.heads_forward(self.backbone(images))

    @torch.no_grad()
    def predict(self, images: Tensor) -> dict[str, Tensor]:
        """Ratings and class probabilities for images ``(B, 3, H, W)`` in [0, 1].

        Returns:
            Numeric: ``(B,)`` ratings on the attribute's scale. Categorical: ``(B, C)`` softmax
            probabilities in the schema's class order.
        """
        was = self.training
        self.eval()
        try:
            outputs = self(images)
        finally:
            self.train(was)
        return {
            a.name: a.from_unit(outputs[a.name])
            if isinstance(a, NumericAttribute)
            else outputs[a.name].softmax(-1)
            for a in self.schema
        }


#: The parts of an :class:`AttributeNet` that ``model.safetensors`` always holds (those without
#: tensors add nothing), as ``<part>.<state-dict key>``.
NET_PARTS: tuple[str, ...] = ("norm", "trunk", "heads")


def save_model(
    run_dir: str | os.PathLike[str], net: AttributeNet, meta: dict[str, Any], *, with_backbone: bool
) -> tuple[Path, Path]:
    """Writes ``model.safetensors`` and ``model.json`` atomically.

    Args:
        run_dir: The run directory.
        net: The network.
        meta: Everything ``model.json`` records besides what this function adds (``format``,
            ``styleforge`` version, ``schema``, ``label_scaling``, ``tensors``).
        with_backbone: Store the backbone's tensors too (fine-tuned runs).

    Returns:
        The two paths.
    """
    from safetensors.torch import save

    run_dir = Path(run_dir)
    tensors = {
        f"{part}.{k}": v.detach().cpu().contiguous()
        for part in NET_PARTS
        for k, v in getattr(net, part).state_dict().items()
    }
    if with_backbone and net.backbone is not None:
        tensors.update(
            {f"backbone.{k}": v.detach().cpu().contiguous() for k, v in net.backbone.state_dict().items()}
        )
    data = save(tensors, metadata={"format": "styleforge.attributes/1"})
    scaling = {
        a.name: {"min": a.min, "max": a.max, "unit": "2 * (v - min) / (max - min) - 1"}
        for a in net.schema.numeric
    }
    document = {
        "format": "styleforge.attributes/1",
        "styleforge": __version__,
        **meta,
        "schema": net.schema.to_dict(),
        "trunk": net.trunk_shape.to_dict(),
        "feature_norm": net.norm.kind,
        "label_scaling": scaling,
        "tensors": {
            "norm": net.norm.kind == "standard",
            "trunk": net.trunk_shape.layers > 0,
            "heads": True,
            "backbone": bool(with_backbone),
        },
    }
    text = json.dumps(document, indent=1, default=str, allow_nan=True)
    model_path = write_atomic(run_dir / MODEL_FILE, lambda h: h.write(data))
    json_path = write_atomic(run_dir / MODEL_JSON, lambda h: h.write(text.encode()))
    return model_path, json_path


@dataclass
class LoadedModel:
    """A network read back from a run directory.

    Attributes:
        net: The network, in eval mode, with its backbone.
        meta: ``model.json``.
        size: The input side the network was trained at (images are resized to ``size × size``).
        weights: How the backbone's weights were resolved (a notice may say imagenet fell back).
    """

    net: AttributeNet
    meta: dict[str, Any]
    size: int
    weights: WeightsChoice | None


def read_model_json(run_dir: str | os.PathLike[str], param: str = "RUN_DIR") -> dict[str, Any]:
    """``model.json`` of a run directory.

    Raises:
        InputFileError: Missing or not a styleforge attribute model.
    """
    path = Path(run_dir) / MODEL_JSON
    if not path.is_file():
        raise InputFileError(
            param, run_dir, f"has no {MODEL_JSON}; expected the -o folder of styleforge train-attrs"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(param, path, f"is not readable JSON ({exc})") from None
    if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith("styleforge.attributes/"):
        raise InputFileError(param, path, "is not a styleforge attribute model description")
    return meta


def load_model(
    run_dir: str | os.PathLike[str], *, device: torch.device | str = "cpu", param: str = "RUN_DIR"
) -> LoadedModel:
    """Reads a trained network from a run directory.

    Args:
        run_dir: The ``-o`` folder of ``train-attrs``.
        device: Where to put the network.
        param: The parameter named in errors.

    Raises:
        InputFileError: Missing or unreadable files.
        WeightsError: A frozen backbone whose weights cannot be resolved again, or resolve to
            weights for another network than ``backbone.arch``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    meta = read_model_json(run_dir, param)
    schema = Schema.from_dict(meta["schema"], param=f"{param} {MODEL_JSON} schema")
    backbone_meta = meta["backbone"]
    arch, seed = backbone_meta["arch"], int(backbone_meta.get("seed", 0))
    try:
        tensors = load_file(str(run_dir / MODEL_FILE))
    except (OSError, SafetensorError) as exc:
        raise InputFileError(param, run_dir / MODEL_FILE, f"cannot be read ({exc})") from None
    stored = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")}
    choice = None
    if stored:
        backbone = Hypercolumn(arch, None, seed=seed)
        backbone.load_state_dict(stored)
    else:
        # ``arch`` is the network training built, so a recorded ``hed`` resolves for the vgg16 it is.
        choice = resolve_weights(backbone_meta["weights"], arch)
        if choice.arch and choice.arch != arch:  # e.g. a hand-written ``auto`` that now falls back to hed
            raise WeightsError(
                f"{param}: {MODEL_JSON}'s backbone weights {backbone_meta['weights']!r} resolve to "
                f"{choice.arch} weights ({choice.kind}: {choice.source}), but the backbone is {arch}; "
                f"name the weights the model was trained with"
            )
        backbone = Hypercolumn(arch, choice.state_dict, seed=seed, source=choice.source)
    # A model written before --feature-norm existed has no such key: it was trained on l2.
    norm = str(meta.get("feature_norm", "l2"))
    if norm not in FEATURE_NORMS:
        raise InputFileError(
            param,
            run_dir / MODEL_JSON,
            f"names an unknown feature_norm {norm!r}; expected one of: " + ", ".join(FEATURE_NORMS),
        )
    net = AttributeNet(schema, backbone, seed=seed, trunk=TrunkShape.from_meta(meta), norm=norm)
    for part in NET_PARTS:
        try:
            getattr(net, part).load_state_dict(
                {k[len(part) + 1 :]: v for k, v in tensors.items() if k.startswith(part + ".")}
            )
        except RuntimeError as exc:  # missing, extra or misshapen tensors
            reason = str(exc).splitlines()[0].rstrip(":")
            raise InputFileError(
                param,
                run_dir / MODEL_FILE,
                f"does not hold the {part} that {MODEL_JSON} describes ({reason})",
            ) from None
    net.eval()
    return LoadedModel(net.to(device), meta, int(meta["preprocessing"]["size"]), choice)


__all__.append("read_model_json")
