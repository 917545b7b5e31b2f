"""The option mini-languages, parsed without importing torch.

``--style PATH[:WEIGHT][@SCALE]`` (:func:`parse_style`), the blend weights and term names it gives,
``--style-mask NAME=MASK`` (:func:`parse_region`), ``--optimizer NAME[:STEPS][@LR]``
(:func:`parse_optimizer`) and ``--attr NAME=VALUE[:WEIGHT]`` (:func:`parse_attr`). The CLI and the
configuration check these before any heavy import; the runs resolve them against their inputs.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidParameter, choice_error

__all__ = [
    "as_number",
    "StyleSpec",
    "parse_style",
    "normalise_blend",
    "style_term_names",
    "parse_region",
    "resolve_style_name",
    "OPTIMIZERS",
    "OptimizerSpec",
    "parse_optimizer",
    "ATTR_SYNTAX",
    "AttrSpec",
    "parse_attr",
]


def as_number(text: str) -> float | None:
    """``float(text)``, or ``None`` when ``text`` is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class StyleSpec:
    """One ``--style`` argument, ``PATH[:WEIGHT][@SCALE]``.

    Attributes:
        path: The style image.
        weight: Its blend weight before normalisation (``None``: an equal share).
        scale: Its own style scale (``None``: the run's ``style_scale``).
    """

    path: Path
    weight: float | None = None
    scale: float | None = None

    def __str__(self) -> str:
        text = str(self.path)
        if self.weight is not None:
            text += f":{self.weight:g}"
        if self.scale is not None:
            text += f"@{self.scale:g}"
        return text


def _split_number(text: str, sep: str, param: str, whole: str, valid: str) -> tuple[str, float | None]:
    """Splits a trailing ``<sep><number>`` off ``text``; only a number counts, so paths keep colons."""
    head, found, tail = text.rpartition(sep)
    if not (found and head):
        return text, None
    value = as_number(tail)
    if value is None:
        if Path(head).is_file() and not Path(text).exists():
            raise InvalidParameter(param, whole, valid)
        return text, None
    if not (math.isfinite(value) and value > 0):
        raise InvalidParameter(param, whole, valid)
    return head, value


def parse_style(text: str, *, param: str = "--style") -> StyleSpec:
    """Parses ``PATH[:WEIGHT][@SCALE]`` (``a.jpg``, ``a.jpg:0.75``, ``a.jpg:0.75@1.5``, ``a.jpg@0.5``).

    Only a number after the last colon is a weight and only a number after the last ``@`` is a scale,
    so ``C:\\art\\x.jpg``, ``my:file.png`` and ``me@home.png`` are paths. ``a.jpg:abc`` is a bad
    weight when ``a.jpg`` exists and ``a.jpg:abc`` does not.

    Raises:
        InvalidParameter: A weight or scale that is not a finite number > 0.
    """
    valid = "PATH[:WEIGHT][@SCALE] with WEIGHT and SCALE finite numbers > 0"
    text = str(text)
    rest, scale = _split_number(text, "@", param, text, valid)
    rest, weight = _split_number(rest, ":", param, text, valid)
    return StyleSpec(Path(rest), weight, scale)


def normalise_blend(specs: Sequence[StyleSpec]) -> list[float]:
    """Blend weights summing to 1; styles without a weight share equally what the others leave.

    With no weight given anywhere each style gets ``1/n``. With some given, an unweighted style
    counts as weight 1 before normalisation (``a.jpg:3 b.jpg`` → 0.75, 0.25).
    """
    raw = [1.0 if s.weight is None else s.weight for s in specs]
    total = sum(raw)
    return [w / total for w in raw]


def _term_stem(text: str) -> str:
    """A file stem as a term name's part: letters and digits of any script kept (``風``, ``café``),
    in one Unicode form (a name typed and a name a file system stored compare equal), every run of
    other characters (spaces, dots, punctuation) one ``_``."""
    return re.sub(r"[^\w-]+", "_", unicodedata.normalize("NFC", text))


def style_term_names(specs: Sequence[StyleSpec]) -> list[str]:
    """``style.<stem>`` per style, made unique (``style.a``, ``style.a_2``) and safe for CSV columns
    (:func:`_term_stem`: ``風.png`` is ``style.風``, ``my style.jpg`` is ``style.my_style``)."""
    names: list[str] = []
    for spec in specs:
        stem = _term_stem(spec.path.stem) or "style"
        name, n = f"style.{stem}", 2
        while name in names:
            name, n = f"style.{stem}_{n}", n + 1
        names.append(name)
    return names


def parse_region(text: str, *, param: str = "--style-mask") -> tuple[str, Path]:
    """Parses ``NAME=MASK``: the style ``NAME`` (its term name without ``style.``, e.g. ``a`` for
    ``a.jpg``, or its 1-based position) and a mask image path.

    Raises:
        InvalidParameter: No ``=``, or an empty name or path.
    """
    name, sep, path = str(text).partition("=")
    if not (sep and name.strip() and path.strip()):
        raise InvalidParameter(
            param, text, "NAME=MASK, NAME a style's name (a for a.jpg) or position (1, 2, ...)"
        )
    return name.strip(), Path(path.strip())


def resolve_style_name(name: str, names: Sequence[str], *, param: str, whole: str) -> int:
    """The index of the style ``name`` refers to among the term names ``names`` (``style.a``, ...):
    its name without ``style.`` (or the file's stem as written: ``my style`` for ``style.my_style``)
    or its 1-based position.

    Raises:
        InvalidParameter: No such style (the message lists the valid names).
    """
    short = [n.removeprefix("style.") for n in names]
    for key in (name, _term_stem(name)):
        if key in short:
            return short.index(key)
    if name.isdigit() and 1 <= int(name) <= len(names):
        return int(name) - 1
    valid = ", ".join(short) + f" or a position 1..{len(names)}"
    raise InvalidParameter(param, whole, f"NAME=MASK with NAME one of the styles: {valid}")


# --------------------------------------------------------------------------------------------------
# --optimizer NAME[:STEPS][@LR]

#: The optimisers of the engine's factory (:func:`styleforge.engine.make_optimizer`), in the order
#: the help lists them.
OPTIMIZERS: tuple[str, ...] = (
    "lbfgs",
    "adam",
    "adamw",
    "sgd",
    "momentum",
    "nesterov",
    "rmsprop",
    "adagrad",
    "adadelta",
)

_SPEC = re.compile(r"^(?P<name>[A-Za-z_]+)(?::(?P<steps>[^@]*))?(?:@(?P<lr>.*))?$")


@dataclass(frozen=True)
class OptimizerSpec:
    """One stage of an optimiser chain.

    Attributes:
        name: One of :data:`OPTIMIZERS`.
        steps: Iterations of this stage; ``None`` means "the run's ``iterations``".
        lr: Learning rate; ``None`` means the loop's default for ``name``.
    """

    name: str
    steps: int | None = None
    lr: float | None = None

    def __str__(self) -> str:
        text = self.name
        if self.steps is not None:
            text += f":{self.steps}"
        if self.lr is not None:
            text += f"@{self.lr:g}"
        return text


def parse_optimizer(text: str | OptimizerSpec, *, param: str = "--optimizer") -> OptimizerSpec:
    """Parses ``NAME[:STEPS][@LR]`` (``adam``, ``adam:200``, ``adam:200@0.05``, ``lbfgs@0.8``).

    Raises:
        InvalidParameter: Unknown name, steps not a whole number ≥ 1, lr not a finite number > 0.
    """
    if isinstance(text, OptimizerSpec):
        return text
    match = _SPEC.match(str(text).strip())
    if not match:
        raise InvalidParameter(param, text, "NAME[:STEPS][@LR], e.g. adam:200@0.02")
    name = match["name"].lower()
    if name not in OPTIMIZERS:
        raise choice_error(param, match["name"], OPTIMIZERS)
    steps: int | None = None
    if match["steps"] is not None:
        try:
            steps = int(match["steps"])
        except ValueError:
            steps = 0
        if steps < 1:
            raise InvalidParameter(param, text, "a whole number of steps >= 1 after ':', e.g. adam:200")
    lr: float | None = None
    if match["lr"] is not None:
        try:
            lr = float(match["lr"])
        except ValueError:
            lr = -1.0
        if not math.isfinite(lr) or lr <= 0:
            raise InvalidParameter(param, text, "a finite learning rate > 0 after '@', e.g. adam@0.02")
    return OptimizerSpec(name, steps, lr)


# --------------------------------------------------------------------------------------------------
# --attr NAME=VALUE[:WEIGHT]

ATTR_SYNTAX = "NAME=VALUE[:WEIGHT], e.g. contrast=9 or harmony=complementary:2 (WEIGHT a finite number >= 0)"


@dataclass(frozen=True)
class AttrSpec:
    """One ``--attr NAME=VALUE[:WEIGHT]`` as written, checked for syntax only.

    Attributes:
        name: The attribute.
        value: The target as text (a rating or a class name).
        weight: The term's weight, or ``None`` for ``--attr-weight``.
        text: The argument.
    """

    name: str
    value: str
    weight: float | None
    text: str


def parse_attr(text: str, *, param: str = "--attr") -> AttrSpec:
    """Parses ``NAME=VALUE[:WEIGHT]``. Everything after the last ``:`` is the weight.

    Raises:
        InvalidParameter: No ``=``, an empty name or value, or a weight that is not a finite
            number >= 0.
    """
    text = str(text)
    name, sep, rest = text.partition("=")
    name, rest = name.strip(), rest.strip()
    if not sep or not name or not rest:
        raise InvalidParameter(param, text, ATTR_SYNTAX)
    weight: float | None = None
    value, colon, tail = rest.rpartition(":")
    if colon:
        try:
            weight = float(tail)
        except ValueError:
            raise InvalidParameter(
                param, text, ATTR_SYNTAX, f"the weight {tail.strip()!r} is not a number"
            ) from None
        if not (math.isfinite(weight) and weight >= 0):
            raise InvalidParameter(
                param, text, ATTR_SYNTAX, f"the weight {tail.strip()!r} is not a finite number >= 0"
            )
        if not value.strip():
            raise InvalidParameter(param, text, ATTR_SYNTAX)
    else:
        value = rest
    return AttrSpec(name, value.strip(), weight, text)
