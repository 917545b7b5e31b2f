"""Option values from files: ``--config run.toml`` and ``--from-image out.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import StyleforgeError

__all__ = ["read_config", "read_image_config"]


def _as_default_map(ctx: click.Context, data: dict[str, Any], source: str) -> dict[str, Any]:
    """Validates option values read from a file and shapes them as click defaults."""
    names = {p.name: p for p in ctx.command.params if p.name}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name == "styles" or name == "style":
            name = "styles"
        if name in ("attr", "style_mask", "style_image_mask"):
            name += "s"
        if name not in names or name in ("config", "from_image"):
            valid = sorted("style" if n == "styles" else n.replace("_", "-") for n in names if n not in ("config", "from_image"))
            raise StyleforgeError(f"{source}: unknown option {key!r}; valid keys: {', '.join(valid)}")
        if value is None:
            continue
        param = names[name]
        many = param.multiple or param.nargs == -1  # a repeatable option, or an argument taking several values
        if many and isinstance(value, str):
            value = [value]
        elif not many and isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        out[name] = value
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
    try:
        ctx.default_map = {**(ctx.default_map or {}), **_as_default_map(ctx, data, f"--config {value}")}
    except StyleforgeError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[1], ctx, param) from None
    return value


def read_image_config(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """``--from-image out.png``: re-run exactly what made an earlier output (from its metadata)."""
    if value is None:
        return None
    from ..images import read_metadata

    meta = read_metadata(value, param="--from-image") if Path(value).is_file() else None
    if not meta or meta.get("command") != "transfer":
        raise click.BadParameter(f"{str(value)!r} is not a PNG written by styleforge transfer", ctx, param)
    missing = [key for key in ("config", "content", "styles") if key not in meta]
    if missing or not isinstance(meta["config"], dict):
        raise click.BadParameter(f"{str(value)!r} has no {', '.join(missing) or 'usable config'} in its styleforge "
                                 "metadata (a --checkpoint-every image? use the run's final output)", ctx, param)
    # An image from before --style-loss existed was made with Gram matrices, the default then.
    data = {"style_loss": "gram", **meta["config"], "content": meta["content"], "styles": meta["styles"]}
    ctx.default_map = {**(ctx.default_map or {}), **_as_default_map(ctx, data, f"--from-image {value}")}
    return value
