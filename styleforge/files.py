"""Files: atomic writes (every file styleforge writes appears whole or not at all) and TOML reading."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib's origin, a dependency there (pyproject.toml)
    import tomli as tomllib

__all__ = ["TOMLDecodeError", "loads_toml", "write_atomic"]

TOMLDecodeError = tomllib.TOMLDecodeError


def loads_toml(text: str) -> dict[str, Any]:
    """Parses TOML text (``tomllib``, or ``tomli`` on Python 3.10).

    Raises:
        TOMLDecodeError: The text is not valid TOML.
    """
    return tomllib.loads(text)


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object] | bytes) -> Path:
    """Writes a file through a temporary file in the same folder, then renames it into place.

    Missing parent folders are created; an existing file is replaced; on any failure (including
    Ctrl-C) the temporary file is removed and ``path`` is untouched. The file gets the permissions a
    plain ``open()`` would give (``mkstemp`` creates 0600).

    Args:
        path: Destination.
        write: ``bytes`` to write, or a function that writes to the binary handle it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(write, bytes):
                handle.write(write)
            else:
                write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
