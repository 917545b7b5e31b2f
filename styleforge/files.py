"""Atomic file writes: every file styleforge writes appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomic"]


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
