"""A studio run's options, from the JSON a client sends, checked as ``styleforge transfer`` checks them.

The options are :class:`~styleforge.config.TransferConfig`'s fields by their Python names
(``{"size": 256, "iterations": 100}``), each type-checked against the field, then the whole
configuration is validated by :meth:`TransferConfig.validate`. The studio reads no file it was not
sent: an option that would name a path on the server (an ``init`` image, masks by path, ``weights``
from a file, an attribute network's folder) is refused, and the pictures come as uploads instead.

Errors keep styleforge's one-line messages but name the API's field (``size: 0 is not valid; expected
a whole number >= 1``): :func:`api_error` turns any :class:`~styleforge.errors.StyleforgeError` into
the field and message a client is answered with. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import INITS, TransferConfig
from ..errors import InputFileError, InvalidParameter, StyleforgeError, did_you_mean
from ..guidance.config import GuidanceConfig
from ..option import declared

__all__ = [
    "PATH_OPTIONS",
    "WEIGHTS_KEYWORDS",
    "ApiError",
    "api_error",
    "api_field",
    "blend_weights",
    "option_fields",
    "run_config",
]

#: Options that name a file or folder on the server, and what to do instead: the studio reads only
#: what was uploaded to it.
PATH_OPTIONS: dict[str, str] = {
    "style_masks": "upload each style's mask as the form field mask_N (N: the style's position, from 1)",
    "style_image_masks": "upload a mask of style N's own picture as the form field image_mask_N",
    "attrs_model": "attribute guidance reads a train-attrs folder: use styleforge transfer --attrs-model",
    "score_with": "scoring reads a train-attrs folder: use styleforge transfer --score-with",
    "attrs": "attribute guidance needs a train-attrs folder: use styleforge transfer --attr",
}
#: The ``weights`` values that name no file (anything else would be a path on the server). The same
#: words as :data:`styleforge.nets.weights.WEIGHTS_CHOICES`, which imports torch.
WEIGHTS_KEYWORDS: tuple[str, ...] = ("auto", "imagenet", "hed", "random")


@dataclass(frozen=True)
class ApiError:
    """What a client is told about a request it got wrong.

    Attributes:
        field: The form field or option the error is about (``size``, ``style``, ``mask_1``), or
            ``None`` when it is about no single field.
        message: One line, starting with the field's name where there is one.
        status: The HTTP status (400, 404, 409, 413, ...).
    """

    field: str | None
    message: str
    status: int = 400

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the answer: ``{"error": message, "field": field}``."""
        return {"error": self.message, "field": self.field}


def option_fields() -> dict[str, str]:
    """Each :class:`TransferConfig` field the studio accepts, with its type as written in the class
    (``"float | None"``): the path-valued ones (:data:`PATH_OPTIONS`) left out."""
    return {f.name: str(f.type) for f in dataclasses.fields(TransferConfig) if f.name not in PATH_OPTIONS}


def _type_ok(value: Any, kind: str) -> bool:
    """Whether a JSON value fits one part of a field's annotation (``float``, ``int``, ``None``, ...)."""
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # JSON true is no number
        return False
    if kind == "float":
        return isinstance(value, (int, float))
    if kind == "int":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("tuple["):
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return False


_KIND_WORDS = {
    "float": "a number",
    "int": "a whole number",
    "bool": "true or false",
    "str": "a string",
    "None": "null (the default)",
}


def _converted(name: str, value: Any, annotation: str) -> Any:
    """``value`` as the field ``name`` holds it, once its JSON type fits ``annotation``.

    A list field (``optimizer``, ``content_layers``) also takes one string of comma-separated items.

    Raises:
        InvalidParameter: Naming the field, the value and the types it takes.
    """
    kinds = [part.strip() for part in annotation.split("|")]
    if isinstance(value, str) and any(k.startswith("tuple[") for k in kinds):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not any(_type_ok(value, kind) for kind in kinds):
        words = [
            "a list of strings" if k.startswith("tuple[") else _KIND_WORDS.get(k, k)
            for k in kinds  # every annotation of TransferConfig is one of these
        ]
        raise InvalidParameter(name, value, " or ".join(words))
    if isinstance(value, list):
        return tuple(value)
    if "int" in kinds and isinstance(value, float):
        return int(value)
    return value


def _check_paths(options: Mapping[str, Any]) -> None:
    """Refuses every option that would make the server read a file it was not sent."""
    for name, value in options.items():
        if name in PATH_OPTIONS and value not in (None, (), [], ""):
            raise InvalidParameter(name, value, "nothing in the studio", PATH_OPTIONS[name])
    # The options that are a keyword or else a path: only the keywords are taken.
    for name, keywords, hint in (
        ("init", INITS, "the studio reads no file on the server: upload pictures"),
        (
            "weights",
            WEIGHTS_KEYWORDS,
            "weights from a file on the server are for styleforge transfer --weights PATH",
        ),
    ):
        value = options.get(name)
        if value is not None and value not in keywords:
            raise InvalidParameter(name, value, "one of: " + ", ".join(keywords), hint)


def run_config(options: Mapping[str, Any] | str | bytes | None) -> TransferConfig:
    """The validated configuration of a run from its ``options`` (a JSON object, or its text).

    Args:
        options: :class:`TransferConfig` field names and values; ``None`` or ``{}``: every default.

    Raises:
        InvalidParameter: Not a JSON object, an unknown name (with a "did you mean"), a value of the
            wrong type, a path-valued option, or any value :meth:`TransferConfig.validate` refuses;
            each names the field (``--size`` becomes ``size``: :func:`api_error`).
    """
    if isinstance(options, (str, bytes)):
        try:
            options = json.loads(options) if options.strip() else {}
        except (ValueError, RecursionError) as exc:
            raise InvalidParameter(
                "options", "(not JSON)", "a JSON object of transfer options", str(exc)
            ) from None
    options = {} if options is None else options
    if not isinstance(options, Mapping):
        raise InvalidParameter("options", options, 'a JSON object of transfer options ({"size": 256})')
    _check_paths(options)
    fields = option_fields()
    values = {}
    for name, value in options.items():
        if name not in fields:
            raise InvalidParameter(
                "options", name, "TransferConfig field names (see docs/studio.md)", did_you_mean(name, fields)
            )
        values[name] = _converted(name, value, fields[name])
    config = TransferConfig(**values)
    config.validate()
    return config


def blend_weights(text: str | None, count: int) -> list[float | None]:
    """The ``blend`` form field: one blend weight per style (a JSON list of numbers > 0, or ``null``
    for an equal share), normalised later as ``--style PATH:WEIGHT`` weights are.

    Raises:
        InvalidParameter: Not such a list, or not one entry per style.
    """
    if text is None or not text.strip():
        return [None] * count
    valid = f"a JSON list of {count} blend weight(s), numbers > 0 (or null for an equal share)"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidParameter("blend", text, valid) from None
    ok = isinstance(data, list) and len(data) == count
    ok = ok and all(
        w is None or (isinstance(w, (int, float)) and not isinstance(w, bool) and 0 < w < float("inf"))
        for w in data
    )
    if not ok:
        raise InvalidParameter("blend", data, valid)
    return [None if w is None else float(w) for w in data]


def api_field(param: str) -> str:
    """The API's name for a parameter an error names: ``--content-weight`` is ``content_weight``,
    ``--style-mask`` the field ``style_masks``, ``CONTENT`` the form field ``content``."""
    by_flag = {opt.flag: f.name for cls in (TransferConfig, GuidanceConfig) for f, opt in declared(cls)}
    return by_flag.get(param, param.lstrip("-").replace("-", "_").lower())


def api_error(exc: StyleforgeError, uploads: Mapping[str, tuple[str, str]] | None = None) -> ApiError:
    """The answer to a client for ``exc``, with the field it is about.

    Args:
        exc: What styleforge raised (for options, uploads, or the run itself).
        uploads: The stored path of each uploaded file → ``(form field, file name as sent)``: an
            error about a stored file names the field and the client's name for it, never the
            server's path.
    """
    uploads = uploads or {}
    if isinstance(exc, InputFileError):
        field, name = uploads.get(str(exc.path), (api_field(exc.param), str(exc.path)))
        return ApiError(field, str(InputFileError(field, name, exc.problem)))
    if isinstance(exc, InvalidParameter):
        field = api_field(exc.param)
        value = exc.value
        for stored, (_, name) in uploads.items():  # a stored path inside the value: the client's name
            if isinstance(value, str) and stored in value:
                value = value.replace(stored, name)
        return ApiError(field, str(InvalidParameter(field, value, exc.valid, exc.hint)))
    text = str(exc)
    for stored, (_, name) in uploads.items():
        text = text.replace(stored, name)
    return ApiError(None, text)
