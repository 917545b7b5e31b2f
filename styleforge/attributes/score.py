"""Scoring images with a trained attribute network: :func:`score_images`, behind ``styleforge score``.

Each image is read and preprocessed exactly as in training (``model.json``'s ``preprocessing``:
:func:`styleforge.attributes.preprocess.preprocess_image`, squash to ``size × size``, 8-bit), then run
through the network in batches. A numeric attribute is reported on its label scale (1..10 for
ACAN); a categorical one as its most probable class, that probability, and the three most probable
classes. An image that cannot be read is a failure (path and reason) among the results, not an
exception, so one bad file does not stop the others.

The results are formatted as a table, JSON or CSV (and read back) by
:mod:`styleforge.attributes.score_format`.

:func:`open_model` is the checked loader that ``score``, ``--score-with`` and guided transfer share:
it refuses a folder without ``model.json`` and a model whose files disagree with it, with one line
that says what is wrong.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..config import FEATURE_NORMS, ScoreConfig
from ..device import resolve_device
from ..engine.events import Callback, Notice, TaskProgress, emit
from ..engine.interrupt import Interrupt, watch
from ..errors import InputFileError, shown
from ..images import IMAGE_EXTENSIONS, find_images, load_image
from ..nets.vgg import IMAGENET_MEAN, IMAGENET_STD
from .kinds import CategoricalAttribute, NumericAttribute
from .memory import check_scoring
from .model import (
    BACKBONE_ARCHS,
    MODEL_FILE,
    MODEL_JSON,
    TRUNK_LAYER,
    FeatureNorm,
    Hypercolumn,
    LoadedModel,
    TrunkShape,
    build_trunk,
    feature_dims,
    load_model,
    read_model_json,
)
from .preprocess import preprocess_image
from .schema import Schema

__all__ = [
    "IMAGE_EXTENSIONS",
    "TOP_K",
    "ModelFileError",
    "ClassProbability",
    "CategoricalScore",
    "ImageScore",
    "open_model",
    "find_images",
    "score_images",
    "score_tensors",
]

#: How many of the most probable classes are reported per categorical attribute.
TOP_K = 3


class ModelFileError(InputFileError):
    """An attribute model folder whose files are missing, unreadable, or disagree with ``model.json``."""


# --------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class ClassProbability:
    """One class and its softmax probability."""

    label: str
    probability: float


@dataclass(frozen=True)
class CategoricalScore:
    """A categorical attribute's prediction.

    Attributes:
        label: The most probable class.
        probability: Its probability, in [0, 1].
        top: The :data:`TOP_K` most probable classes (fewer if the attribute has fewer), best first;
            ``top[0]`` is ``label``.
    """

    label: str
    probability: float
    top: tuple[ClassProbability, ...]


@dataclass
class ImageScore:
    """The scores of one image, or why it could not be scored.

    Attributes:
        path: The image as found (as given, or the folder joined with the file's relative path).
        numeric: Attribute → rating on its scale (``[min, max]``; 1..10 for ACAN). Empty on failure.
        categorical: Attribute → :class:`CategoricalScore`. Empty on failure.
        error: Why the image could not be scored, or ``None``.
    """

    path: str
    numeric: dict[str, float] = field(default_factory=dict)
    categorical: dict[str, CategoricalScore] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the image was scored."""
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON entry: ``{"path", "error", "numeric", "categorical"}`` (see the module docstring)."""
        return {
            "path": self.path,
            "error": self.error,
            "numeric": dict(self.numeric),
            "categorical": {
                name: {
                    "class": c.label,
                    "probability": c.probability,
                    "top3": [{"class": t.label, "probability": t.probability} for t in c.top],
                }
                for name, c in self.categorical.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ImageScore:
        """Inverse of :meth:`to_dict`."""
        categorical = {
            name: CategoricalScore(
                str(c["class"]),
                float(c["probability"]),
                tuple(ClassProbability(str(t["class"]), float(t["probability"])) for t in c["top3"]),
            )
            for name, c in (data.get("categorical") or {}).items()
        }
        numeric = {name: float(v) for name, v in (data.get("numeric") or {}).items()}
        return cls(str(data["path"]), numeric, categorical, data.get("error"))

    def history_row(self, prefix: str = "score.") -> dict[str, float | str]:
        """Flat ``{"score.<numeric>": rating, "score.<cat>": class, "score.<cat>.probability": p}``."""
        row: dict[str, float | str] = {f"{prefix}{name}": value for name, value in self.numeric.items()}
        for name, c in self.categorical.items():
            row[f"{prefix}{name}"] = c.label
            row[f"{prefix}{name}.probability"] = c.probability
        return row


# --------------------------------------------------------------------------------------------------
# The model


def _bad(param: str, path: Path, problem: str) -> ModelFileError:
    return ModelFileError(param, path, problem)


def _check_meta(run_dir: Path, meta: dict[str, Any], param: str) -> tuple[Schema, str, int]:
    """Checks the parts of ``model.json`` that loading and preprocessing rely on."""
    json_path = run_dir / MODEL_JSON
    for key in ("schema", "backbone", "preprocessing"):
        if not isinstance(meta.get(key), dict):
            raise _bad(
                param, json_path, f"has no {key!r} table; it is not a complete styleforge attribute model"
            )
    schema = Schema.from_dict(meta["schema"], param=f"{param} {MODEL_JSON} schema")
    backbone, prep = meta["backbone"], meta["preprocessing"]
    arch = backbone.get("arch")
    if arch not in BACKBONE_ARCHS:
        raise _bad(
            param, json_path, f"names the backbone {arch!r}; expected one of: {', '.join(BACKBONE_ARCHS)}"
        )
    if "weights" not in backbone:
        raise _bad(param, json_path, "does not say which backbone weights it uses ('backbone.weights')")
    dims = feature_dims(arch)
    if "feature_dims" in backbone and backbone["feature_dims"] != dims:
        raise _bad(
            param,
            json_path,
            f"says the {arch} hypercolumn has {backbone['feature_dims']} values; it has {dims}",
        )
    size = prep.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise _bad(
            param, json_path, f"has preprocessing.size {shown(size)}; expected a whole number of px >= 1"
        )
    resize = str(prep.get("resize", "squash"))
    if not resize.startswith("squash"):
        raise _bad(
            param,
            json_path,
            f"asks for the resize {resize!r}, which styleforge does not know (it squashes to size x size)",
        )
    norm = prep.get("normalisation")
    if isinstance(norm, dict):
        for key, expected in (("mean", IMAGENET_MEAN), ("std", IMAGENET_STD)):
            given = norm.get(key)
            if not (
                isinstance(given, list)
                and len(given) == 3
                and all(
                    isinstance(g, (int, float)) and math.isclose(g, e, abs_tol=1e-6)
                    for g, e in zip(given, expected)
                )
            ):
                raise _bad(
                    param,
                    json_path,
                    f"asks for the input normalisation {key} {shown(given)}; "
                    f"the backbones use ImageNet's {shown(list(expected))}",
                )
    return schema, arch, dims


def _check_trunk(run_dir: Path, meta: dict[str, Any], param: str) -> TrunkShape:
    """The trunk ``model.json`` describes (none without a ``trunk`` table: a model from before it)."""
    table = meta.get("trunk")
    if table is None:
        return TrunkShape()

    def whole(value: Any, low: int) -> bool:
        return not isinstance(value, bool) and isinstance(value, int) and value >= low

    if not (
        isinstance(table, dict)
        and whole(table.get("layers"), 0)
        and whole(table.get("width", 1), 1)
        and table.get("layer", TRUNK_LAYER) == TRUNK_LAYER
    ):
        raise _bad(
            param,
            run_dir / MODEL_JSON,
            f'has the trunk {shown(table)}; expected {{"layers": N >= 0, '
            f'"width": W >= 1, "layer": "{TRUNK_LAYER}"}}',
        )
    return TrunkShape.from_meta(meta)


def _check_tensors(
    run_dir: Path, meta: dict[str, Any], schema: Schema, arch: str, dims: int, param: str
) -> None:
    """Checks that ``model.safetensors`` holds exactly the heads (and backbone) ``model.json`` describes."""
    stored = _StoredTensors(run_dir, param, _tensor_shapes(run_dir, param))
    norm = meta.get("feature_norm", "l2")  # a model from before --feature-norm: l2
    if norm not in FEATURE_NORMS:
        raise _bad(
            param,
            run_dir / MODEL_JSON,
            f"has the feature_norm {norm!r}; expected one of: {', '.join(FEATURE_NORMS)}",
        )
    stored.check_part(
        "norm",
        FeatureNorm(dims, norm),
        f"the feature norm {norm!r} on {dims} features",
        "no tensors" if norm == "l2" else "2 tensors (mean, std)",
    )
    trunk = _check_trunk(run_dir, meta, param)
    stored.check_part(
        "trunk",
        build_trunk(dims, trunk),
        f"a {trunk.layers}-layer trunk of width {trunk.width} on {dims} features",
        f"{trunk.layers} layer(s)",
    )
    reads = f"{arch}: {dims} features" if not trunk.layers else f"a trunk of width {trunk.width}"
    stored.check_heads(schema, trunk.width if trunk.layers else dims, reads)
    stored.check_backbone(arch, (meta.get("tensors") or {}).get("backbone"))


def _tensor_shapes(run_dir: Path, param: str) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor in ``model.safetensors`` (read from its header, not loaded)."""
    from safetensors import SafetensorError, safe_open

    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise _bad(param, run_dir, f"has {MODEL_JSON} but no {MODEL_FILE} (the network's weights)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except (OSError, SafetensorError) as exc:
        raise _bad(param, path, f"cannot be read ({exc})") from None


@dataclass
class _StoredTensors:
    """The tensor shapes of ``model.safetensors``, checked part by part against what ``model.json``
    describes; each disagreement is a :class:`ModelFileError` naming the tensor and both files."""

    run_dir: Path
    param: str
    shapes: dict[str, tuple[int, ...]]

    def _disagree(self, problem: str) -> ModelFileError:
        return _bad(self.param, self.run_dir, f"{MODEL_FILE} and {MODEL_JSON} disagree: {problem}")

    def check_part(self, part: str, module: torch.nn.Module, described: str, count: str) -> None:
        """``<part>.*`` in the file must be exactly ``module``'s tensors, which ``model.json``
        describes as ``described`` (with ``count`` tensors or layers)."""
        shapes = self.shapes
        expected = {f"{part}.{k}": tuple(v.shape) for k, v in module.state_dict().items()}
        for key, shape in expected.items():
            if shapes.get(key) != shape:
                got = f"no {key}" if key not in shapes else f"{key} of shape {list(shapes[key])}"
                raise self._disagree(
                    f"{MODEL_JSON} has {described}, which needs {key} {list(shape)}; {MODEL_FILE} has {got}"
                )
        extra = sorted(k for k in shapes if k.startswith(part + ".") and k not in expected)
        if extra:
            raise self._disagree(f"{MODEL_FILE} has {extra[0]}, but {MODEL_JSON}'s {part} has {count}")

    def check_heads(self, schema: Schema, fan_in: int, reads: str) -> None:
        """One linear head per attribute of ``schema`` on ``fan_in`` inputs (``reads`` says what
        they are), and no other head."""
        shapes = self.shapes
        for attribute in schema:
            width = 1 if isinstance(attribute, NumericAttribute) else attribute.num_classes
            for key, shape in (
                (f"heads.{attribute.name}.weight", (width, fan_in)),
                (f"heads.{attribute.name}.bias", (width,)),
            ):
                if key not in shapes:
                    raise self._disagree(
                        f"{MODEL_JSON} has the attribute {attribute.name!r} but {MODEL_FILE} has no {key}"
                    )
                if shapes[key] != shape:
                    what = (
                        f"{attribute.num_classes} classes"
                        if isinstance(attribute, CategoricalAttribute)
                        else "1 output"
                    )
                    raise self._disagree(
                        f"{key} has shape {list(shapes[key])}; {MODEL_JSON} ({attribute.name}: {what}, "
                        f"{reads}) needs {list(shape)}"
                    )
        known = {f"heads.{a.name}.{p}" for a in schema for p in ("weight", "bias")}
        extra = sorted(k for k in shapes if k.startswith("heads.") and k not in known)
        if extra:
            raise self._disagree(
                f"{MODEL_FILE} has {extra[0]}, an attribute {MODEL_JSON}'s schema does not have "
                f"(its attributes: {', '.join(schema.names)})"
            )

    def check_backbone(self, arch: str, declared: object) -> None:
        """A fine-tuned backbone's tensors are exactly an ``arch`` backbone's; ``declared``:
        whether ``model.json`` says it is stored (``None``: a model from before it said so)."""
        stored = {k[len("backbone.") :]: s for k, s in self.shapes.items() if k.startswith("backbone.")}
        if declared is not None and bool(declared) != bool(stored):
            raise self._disagree(
                f"{MODEL_JSON} says the backbone is {'' if declared else 'not '}stored, "
                f"{MODEL_FILE} has {len(stored)} backbone tensors"
            )
        if not stored:
            return
        expected = {k: tuple(v.shape) for k, v in Hypercolumn(arch).state_dict().items()}
        for key, shape in expected.items():
            if stored.get(key) != shape:
                got = "no" if key not in stored else f"shape {list(stored[key])} for"
                raise self._disagree(
                    f"{MODEL_FILE} has {got} backbone.{key}; a {arch} backbone needs {list(shape)}"
                )
        unknown = sorted(set(stored) - set(expected))
        if unknown:
            raise self._disagree(
                f"{MODEL_FILE} has backbone.{unknown[0]}, which a {arch} backbone does not have"
            )


def open_model(
    model_dir: str | os.PathLike[str] | LoadedModel,
    *,
    device: torch.device | str = "cpu",
    param: str = "MODEL_DIR",
    callbacks: Sequence[Callback] = (),
) -> LoadedModel:
    """Loads a trained attribute network after checking that its files agree with ``model.json``.

    The network is frozen: ``eval()`` and ``requires_grad_(False)``, heads included.

    Args:
        model_dir: The ``-o`` folder of ``train-attrs`` (a :class:`LoadedModel` is returned as is).
        device: Where to put the network.
        param: The parameter named in errors (``MODEL_DIR``, ``--attrs-model``, ``--score-with``).
        callbacks: Receive a :class:`~styleforge.engine.events.Notice` when the backbone's weights
            fell back (``auto``).

    Raises:
        InputFileError: The folder does not exist, is a file, or has no ``model.json``.
        ModelFileError: ``model.json`` is incomplete or asks for preprocessing styleforge does not
            know, or ``model.safetensors`` is missing, unreadable, or disagrees with it (a head's
            shape, a missing or extra head, the backbone's tensors).
        WeightsError: A frozen backbone whose weights cannot be resolved again.
    """
    if isinstance(model_dir, LoadedModel):
        return model_dir
    run_dir = Path(model_dir)
    if not run_dir.exists():
        raise InputFileError(
            param, run_dir, "does not exist; expected the -o folder of styleforge train-attrs"
        )
    if not run_dir.is_dir():
        raise InputFileError(param, run_dir, "is a file; expected the -o folder of styleforge train-attrs")
    meta = read_model_json(run_dir, param)
    schema, arch, dims = _check_meta(run_dir, meta, param)
    _check_tensors(run_dir, meta, schema, arch, dims, param)
    model = load_model(run_dir, device=device, param=param)
    model.net.eval().requires_grad_(False)
    if model.weights is not None and model.weights.notice:
        emit(callbacks, Notice(f"{param}: {model.weights.notice}"))
    return model


# --------------------------------------------------------------------------------------------------
# Finding and scoring images


def _scores_of(model: LoadedModel, batch: Tensor, names: Sequence[str]) -> list[ImageScore]:
    """Runs uint8 ``(B, 3, S, S)`` through the network and packs the results per image."""
    device = next(model.net.parameters()).device
    with torch.inference_mode():
        predictions = model.net.predict(batch.to(device).float().div_(255))
    schema: Schema = model.net.schema
    numeric = {a.name: predictions[a.name].cpu().double().tolist() for a in schema.numeric}
    categorical: dict[str, tuple[list[list[float]], list[list[int]]]] = {}
    for a in schema.categorical:
        probs = predictions[a.name].cpu().double()
        top = probs.topk(min(TOP_K, a.num_classes), dim=-1)
        categorical[a.name] = (top.values.tolist(), top.indices.tolist())
    out = []
    for i, name in enumerate(names):
        cats = {}
        for a in schema.categorical:
            values, indices = categorical[a.name]
            top_i = tuple(ClassProbability(a.classes[k], float(p)) for p, k in zip(values[i], indices[i]))
            cats[a.name] = CategoricalScore(top_i[0].label, top_i[0].probability, top_i)
        out.append(ImageScore(name, {a.name: float(numeric[a.name][i]) for a in schema.numeric}, cats))
    return out


def score_tensors(model: LoadedModel, images: Sequence[Tensor], names: Sequence[str]) -> list[ImageScore]:
    """Scores images already in memory, exactly as :func:`score_images` would score them saved as
    8-bit files (each is quantised to 8 bits first).

    Args:
        model: From :func:`open_model`.
        images: ``(3, H, W)`` float in [0, 1] each (e.g. a transfer's result).
        names: What to call each in the results.

    Returns:
        One :class:`ImageScore` per image.
    """
    size = model.size
    batch = torch.stack(
        [
            preprocess_image(rgb.detach().float().cpu().clamp(0, 1).mul(255).round().div(255), size)
            for rgb in images
        ]
    )
    return _scores_of(model, batch, list(names))


def _scoring_model(
    model_dir_or_loaded: str | os.PathLike[str] | LoadedModel,
    batch_size: int,
    device: str | torch.device,
    callbacks: Sequence[Callback],
) -> LoadedModel:
    """The model :func:`score_images` scores with, after checking ``batch_size`` and that a batch at
    the model's size fits in memory (before any image is decoded)."""
    ScoreConfig(batch_size=batch_size).check()
    if isinstance(model_dir_or_loaded, LoadedModel):
        model = model_dir_or_loaded
    else:
        model = open_model(model_dir_or_loaded, device=resolve_device(str(device)), callbacks=callbacks)
    check_scoring(
        str(model.meta.get("backbone", {}).get("arch", "")),
        model.size,
        batch_size,
        next(model.net.parameters()).device,
    )
    return model


def score_images(
    model_dir_or_loaded: str | os.PathLike[str] | LoadedModel,
    paths: Iterable[str | os.PathLike[str]],
    *,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    callbacks: Sequence[Callback] = (),
    interrupt: Interrupt | None = None,
) -> list[ImageScore]:
    """Scores images and folders of images with a trained attribute network. Never prints.

    Args:
        model_dir_or_loaded: The ``-o`` folder of ``train-attrs``, or a model from :func:`open_model`.
        paths: Image files and folders (walked recursively; see :func:`find_images`).
        batch_size: Images per forward pass (only this many are decoded at a time).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (ignored for a loaded model).
        callbacks: Receive :class:`~styleforge.engine.events.TaskProgress` (task ``scoring``) and
            :class:`~styleforge.engine.events.Notice`.
        interrupt: The caller's stop flag (:func:`~styleforge.engine.interrupt.stop_signals`);
            ``None``: this call installs its own (Ctrl-C and SIGTERM).

    Returns:
        One :class:`ImageScore` per image found, in :func:`find_images`'s order; an unreadable or
        missing one has ``error`` set and no scores. After a Ctrl-C or SIGTERM, those of the images
        before it (the batch being read is scored first).

    Raises:
        InvalidParameter: ``batch_size`` is not a whole number >= 1, or a bad ``device``.
        InputFileError: A model folder that is missing, has no ``model.json`` or whose files
            disagree with it (:class:`ModelFileError`).
        ResourceError: A batch of ``batch_size`` images at the model's size would not fit in the
            memory available.
    """
    model = _scoring_model(model_dir_or_loaded, batch_size, device, callbacks)
    found = find_images(paths)
    results: list[ImageScore | None] = [None] * len(found)
    pending: list[tuple[int, Tensor]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        if pending:
            scores = _scores_of(
                model, torch.stack([x for _, x in pending]), [found[i][0] for i, _ in pending]
            )
            for (i, _), score in zip(pending, scores):
                results[i] = score
            done += len(pending)
            pending.clear()
        emit(callbacks, TaskProgress("scoring", done, len(found)))

    with watch(interrupt) as flag:  # Ctrl-C or SIGTERM: the images scored so far are returned
        for i, (path, problem) in enumerate(found):
            if flag.requested:
                break
            if problem is not None:
                results[i] = ImageScore(path, error=problem)
                done += 1
                continue
            try:
                rgb = load_image(path, param="image").rgb
            except InputFileError as exc:
                results[i] = ImageScore(path, error=exc.problem)
                done += 1
                continue
            pending.append((i, preprocess_image(rgb, model.size)))
            if len(pending) >= batch_size:
                flush()
        flush()
    return [r for r in results if r is not None]
