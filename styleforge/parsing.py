"""The option mini-languages of a transfer, parsed without importing torch.

``--style PATH[:WEIGHT][@SCALE]`` (:func:`parse_style`), the blend weights and term names it gives,
and ``--style-mask NAME=MASK`` (:func:`parse_region`). The CLI and the configuration check these
before any heavy import; the transfer resolves them against its inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InvalidParameter

__all__ = ["as_number", "StyleSpec", "parse_style", "normalise_blend", "style_term_names", "parse_region", "resolve_style_name"]


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


def style_term_names(specs: Sequence[StyleSpec]) -> list[str]:
    """``style.<stem>`` per style, made unique (``style.a``, ``style.a_2``) and safe for CSV columns."""
    names: list[str] = []
    for spec in specs:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", spec.path.stem) or "style"
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
        raise InvalidParameter(param, text, "NAME=MASK, NAME a style's name (a for a.jpg) or position (1, 2, ...)")
    return name.strip(), Path(path.strip())


def resolve_style_name(name: str, names: Sequence[str], *, param: str, whole: str) -> int:
    """The index of the style ``name`` refers to among the term names ``names`` (``style.a``, ...):
    its name without ``style.`` or its 1-based position.

    Raises:
        InvalidParameter: No such style (the message lists the valid names).
    """
    short = [n.removeprefix("style.") for n in names]
    if name in short:
        return short.index(name)
    if name.isdigit() and 1 <= int(name) <= len(names):
        return int(name) - 1
    valid = ", ".join(short) + f" or a position 1..{len(names)}"
    raise InvalidParameter(param, whole, f"NAME=MASK with NAME one of the styles: {valid}")
