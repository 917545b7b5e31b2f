"""Attribute-guided transfer: a trained attribute network as more weighted terms of the objective.

``--attrs-model RUN_DIR --attr contrast=9 --attr harmony=complementary:2`` adds one engine term
``attr.<name>`` per attribute, weighted like the content and style terms (Holly Grimm steered a
CycleGAN the same way):

- numeric: ``(tanh output − target)²`` with the target mapped from its scale to [−1, 1]
  (:meth:`~styleforge.attributes.kinds.NumericAttribute.to_unit`), the head's training loss;
- categorical: the cross-entropy of the head's logits to the target class.

The network is frozen (``eval()``, no parameter gradients); gradients flow to the pixels only.
When its backbone is the transfer's own VGG (the same arch, VGG-19 or VGG-16, with the same
weights, and max pooling), the hypercolumn is pooled from the activations the transfer computes
anyway (:class:`FeatureContext`), so no second network runs; that is done only when the transfer's
image is square at the model's input size, so the shared pass sees exactly what training and
scoring see. Otherwise the attribute backbone sees the image squashed to the model's input size,
exactly as in training and scoring.
Every term of one evaluation shares one pass of the attribute heads (:meth:`FeatureContext.memo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..attributes.kinds import NumericAttribute
from ..attributes.model import VGG_HYPERCOLUMN_LAYERS, LoadedModel, hypercolumn_of
from ..attributes.preprocess import squash_resize
from ..attributes.schema import Schema
from ..errors import InvalidParameter, choice_error
from ..nets.vgg import VGG_ARCHS, VGGFeatures
from ..parsing import parse_attr
from ..stylize.features import FeatureContext

__all__ = [
    "AttrTarget",
    "resolve_targets",
    "AttributeGuide",
    "AttributeTerm",
    "can_share_forward",
    "same_vgg_weights",
]


@dataclass(frozen=True)
class AttrTarget:
    """A checked target of one ``attr.<name>`` term.

    Attributes:
        name: The attribute.
        kind: ``numeric`` or ``categorical``.
        value: The rating (on the attribute's scale) or the class name (as the schema spells it).
        unit: Numeric: the rating mapped to [-1, 1], the ``tanh`` head's range.
        index: Categorical: the class index.
        weight: The term's weight.
    """

    name: str
    kind: str
    value: float | str
    unit: float | None
    index: int | None
    weight: float

    @property
    def term(self) -> str:
        """The engine term's name, ``attr.<name>``."""
        return f"attr.{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """``{"target", "weight"}`` for output metadata."""
        return {"target": self.value, "weight": self.weight}


def resolve_targets(
    items: Sequence[str], schema: Schema, default_weight: float, *, param: str = "--attr"
) -> list[AttrTarget]:
    """Checks every ``--attr`` against the model's schema.

    Args:
        items: ``NAME=VALUE[:WEIGHT]`` strings.
        schema: The attribute model's schema.
        default_weight: The weight of an item without ``:WEIGHT`` (``--attr-weight``).
        param: The parameter named in errors.

    Raises:
        InvalidParameter: Bad syntax or weight; an unknown attribute (listing the model's, with a
            "did you mean"); a numeric target outside the attribute's range; an unknown class
            (listing the classes, with a "did you mean"); an attribute given twice.
    """
    out: list[AttrTarget] = []
    for item in items:
        spec = parse_attr(item, param=param)
        if spec.name not in schema:
            raise choice_error(param, spec.name, schema.names)
        if any(t.name == spec.name for t in out):
            raise InvalidParameter(param, spec.text, "each attribute at most once")
        attribute = schema[spec.name]
        weight = default_weight if spec.weight is None else spec.weight
        if isinstance(attribute, NumericAttribute):
            rating = attribute.parse(spec.value, param=f"{param} {spec.name}")
            out.append(
                AttrTarget(spec.name, "numeric", rating, float(attribute.to_unit(rating)), None, weight)
            )
        else:
            try:
                index = attribute.index(spec.value)
            except InvalidParameter as exc:
                raise InvalidParameter(f"{param} {spec.name}", spec.value, exc.valid, exc.hint) from None
            out.append(AttrTarget(spec.name, "categorical", attribute.classes[index], None, index, weight))
    return out


def can_share_forward(model: LoadedModel, network: str, pooling: str) -> bool:
    """Whether the model's backbone could be the transfer's VGG: a frozen VGG (never fine-tuned: its
    weights are named, not stored) of the same arch as the transfer's max-pooling network.

    Args:
        model: The attribute model.
        network: The VGG the transfer builds (``vgg19`` or ``vgg16``; after ``--weights auto`` fell
            back to HED, the ``vgg16`` it actually builds, not the configured name).
        pooling: The transfer's ``--pooling``.

    The weights themselves are compared by :func:`same_vgg_weights` once the transfer's network is
    built."""
    backbone = model.meta.get("backbone", {})
    arch = backbone.get("arch")
    return (
        arch in VGG_ARCHS
        and network == arch
        and not backbone.get("finetuned", False)
        and model.weights is not None
        and pooling == "max"
    )


def same_vgg_weights(model: LoadedModel, net: VGGFeatures) -> bool:
    """Whether the model's VGG trunk is of ``net``'s arch and every one of its tensors equals the
    transfer network's."""
    backbone = model.net.backbone
    if (
        backbone is None
        or not isinstance(backbone.net, VGGFeatures)
        or backbone.net.pooling != net.pooling
        or backbone.net.arch != net.arch
    ):
        return False
    theirs = net.state_dict()
    for key, value in backbone.net.state_dict().items():
        other = theirs.get(key)
        if other is None or other.shape != value.shape or not torch.equal(other, value.to(other.device)):
            return False
    return True


class AttributeGuide:
    """The attribute network's outputs on the image being optimised, once per evaluation.

    Args:
        model: The frozen network (:func:`styleforge.attributes.score.open_model`).
        shared: Pool the hypercolumn from the transfer's own VGG activations (they must include
            :data:`~styleforge.attributes.model.VGG_HYPERCOLUMN_LAYERS`) instead of running the
            model's backbone.
    """

    def __init__(self, model: LoadedModel, *, shared: bool) -> None:
        self.net, self.size, self.shared = model.net, model.size, shared

    def outputs(self, ctx: FeatureContext) -> dict[str, Tensor]:
        """Numeric ``(1,)`` in [-1, 1] (tanh) and categorical ``(1, C)`` logits for ``ctx.image``."""
        return ctx.memo("attr.outputs", lambda: self._outputs(ctx))

    def _outputs(self, ctx: FeatureContext) -> dict[str, Tensor]:
        if self.shared:
            features = hypercolumn_of([ctx.features[name].float() for name in VGG_HYPERCOLUMN_LAYERS])
        else:
            assert self.net.backbone is not None
            features = self.net.backbone(squash_resize(ctx.image, self.size))
        return self.net.heads_forward(features)


class AttributeTerm:
    """``attr.<name>``: the squared error of a numeric head to its target in [-1, 1], or the
    cross-entropy of a categorical head to its target class. Called on a :class:`FeatureContext`."""

    def __init__(self, guide: AttributeGuide, target: AttrTarget) -> None:
        self.guide, self.target = guide, target

    def __call__(self, ctx: FeatureContext) -> Tensor:
        output = self.guide.outputs(ctx)[self.target.name]
        if self.target.kind == "numeric":
            return (output - self.target.unit).pow(2).mean()
        labels = torch.full(
            (output.shape[0],), int(self.target.index), dtype=torch.long, device=output.device
        )  # type: ignore[arg-type]
        return F.cross_entropy(output, labels)
