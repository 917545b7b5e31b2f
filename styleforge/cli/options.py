"""Option values from files: ``--config run.toml`` and ``--from-image out.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import InvalidUsage, did_you_mean, shown

__all__ = ["read_config", "read_image_config"]


def _key_of(param: click.Parameter) -> str:
    """The key a file names ``param`` by: its first long flag without dashes (``style-mask``), or an
    argument's name (``content``)."""
    if isinstance(param, click.Option):
        longs = [o[2:] for o in param.opts if o.startswith("--")]
        if longs:
            return longs[0]
    return (param.name or "").replace("_", "-")


def _keys(ctx: click.Context) -> dict[str, click.Parameter]:
    """Every spelling a file may use for each option: its long flags (``style-mask``), with ``_`` for
    ``-`` (``style_mask``), and the parameter's own name (``style_masks``, as output metadata has it)."""
    keys: dict[str, click.Parameter] = {}
    for param in ctx.command.params:
        if not param.name or param.name in ("config", "from_image") or not param.expose_value:
            continue
        spellings = [_key_of(param), param.name]
        if isinstance(param, click.Option):
            spellings += [o[2:] for o in param.opts if o.startswith("--")]
        for spelling in spellings:
            keys.setdefault(spelling, param)
            keys.setdefault(spelling.replace("-", "_"), param)
    return keys


def _allows_whole_numbers(param: click.Parameter) -> bool:
    """A text option one of whose forms is a number (``--tile auto|off|PX``, ``--scales N|auto``)."""
    metavar = getattr(param, "metavar", None) or ""
    return any(form in ("N", "PX") for form in metavar.split("|"))


def _checked_value(key: str, value: Any, param: click.Parameter, source: str) -> Any:
    """One value, type-checked as strictly as the command line checks its text: a whole number
    where one is expected (never a fraction or a boolean), a number, text, or ``true``/``false``
    for a flag. Returns it as click's default for ``param``.

    Raises:
        InvalidUsage: Naming the file, the key, the value and what is valid.
    """

    def bad(expected: str) -> InvalidUsage:
        return InvalidUsage(f"{source}: {key} = {shown(value)} is not valid; expected {expected}")

    metavar = getattr(param, "metavar", None)
    many = param.multiple or param.nargs == -1  # a repeatable option, or an argument taking several values
    text_kind = f"a string ({metavar})" if metavar else "a string"
    if many:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise bad(f"{text_kind} or a list of strings")
        return items
    if isinstance(param, click.Option) and param.is_flag:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    kind = param.type
    if isinstance(kind, click.types.IntParamType):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise bad("a whole number")
        return value
    if isinstance(kind, click.types.FloatParamType):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise bad("a number")
        return value
    if isinstance(value, list) and "," in (metavar or "") and all(isinstance(v, str) for v in value):
        return ",".join(value)  # a comma-separated list option (--style-layers) written as a TOML list
    if isinstance(value, int) and not isinstance(value, bool) and _allows_whole_numbers(param):
        return str(value)
    if not isinstance(value, str):
        raise bad(text_kind)
    return value


def _as_default_map(ctx: click.Context, data: dict[str, Any], source: str) -> dict[str, Any]:
    """Validates option values read from a file and shapes them as click defaults.

    Raises:
        InvalidUsage: An unknown key (with the valid ones), or a value of the wrong type.
    """
    keys = _keys(ctx)
    out: dict[str, Any] = {}
    for key, value in data.items():
        param = keys.get(str(key))
        if param is None:
            valid = sorted({_key_of(p) for p in keys.values()})
            hint = did_you_mean(str(key), valid)
            raise InvalidUsage(
                f"{source}: unknown key {str(key)!r}"
                + (f" ({hint})" if hint else "")
                + f"; valid keys: {', '.join(valid)}"
            )
        if value is None:
            continue
        assert param.name is not None
        out[param.name] = _checked_value(str(key), value, param, source)
    return out


def read_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--config run.toml``: every option may come from a TOML file; flags on the command line win."""
    if value is None:
        return None
    from ..files import TOMLDecodeError, loads_toml

    try:
        data = loads_toml(Path(value).read_text())
    except FileNotFoundError:
        raise click.BadParameter(f"{str(value)!r} does not exist", ctx, param) from None
    except (OSError, UnicodeDecodeError, TOMLDecodeError) as exc:
        raise click.BadParameter(f"{str(value)!r} is not a readable TOML file ({exc})", ctx, param) from None
    data = data.get(ctx.command.name or "transfer", data)
    if not isinstance(data, dict):
        raise InvalidUsage(
            f"--config {value}: [{ctx.command.name}] = {shown(data)} is not valid; "
            "expected a table of options"
        )
    ctx.default_map = {**(ctx.default_map or {}), **_as_default_map(ctx, data, f"--config {value}")}
    return value


def read_image_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--from-image out.png``: re-run exactly what made an earlier output (from its metadata)."""
    if value is None:
        return None
    from ..config import recorded_config
    from ..images import read_metadata

    meta = read_metadata(value, param="--from-image") if Path(value).is_file() else None
    if not meta or meta.get("command") != "transfer":
        raise click.BadParameter(f"{str(value)!r} is not a PNG written by styleforge transfer", ctx, param)
    missing = [key for key in ("config", "content", "styles") if key not in meta]
    if missing or not isinstance(meta["config"], dict):
        raise click.BadParameter(
            f"{str(value)!r} has no {', '.join(missing) or 'usable config'} in its styleforge "
            "metadata (a --checkpoint-every image? use the run's final output)",
            ctx,
            param,
        )
    # An image from before an option existed was made with what recorded_config fills in. The
    # guidance options are under "guidance" (an older image has them in its "config").
    guidance = meta.get("guidance") if isinstance(meta.get("guidance"), dict) else {}
    data = {
        **recorded_config(meta["config"]),
        **guidance,
        "content": meta["content"],
        "styles": meta["styles"],
    }
    ctx.default_map = {**(ctx.default_map or {}), **_as_default_map(ctx, data, f"--from-image {value}")}
    return value
