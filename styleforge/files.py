"""Files: atomic writes (every file styleforge writes appears whole or not at all), output paths
checked before any work, a fallback for a final write that fails anyway, SHA-256 digests of large
files remembered, and TOML reading."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

from .errors import InvalidParameter, OutputWriteError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: tomllib's origin, a dependency there (pyproject.toml)
    import tomli as tomllib

__all__ = [
    "IMAGE_EXTENSIONS",
    "TOMLDecodeError",
    "REMEMBER_SHA256_FROM",
    "atomic_path",
    "SHA256_MEMO",
    "check_new_run",
    "check_not_input",
    "check_writable",
    "loads_toml",
    "remember_sha256",
    "remembered_sha256",
    "save_with_fallback",
    "sha256_of",
    "write_atomic",
    "write_with_fallback",
]

TOMLDecodeError = tomllib.TOMLDecodeError
#: Image files taken from a folder (``score DIR``, ``transfer DIR``), and those a data set's folder holds.
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")
#: The ending of :func:`write_atomic`'s temporary files (and :func:`check_writable`'s probe).
_TMP_SUFFIX = ".tmp"
#: Where :func:`remembered_sha256` keeps digests: a JSON file in the folder of the files it hashed.
SHA256_MEMO = "styleforge-sha256.json"
#: Files from this size on have their SHA-256 remembered: a 548 MB VGG-19 file takes 0.4 s to hash
#: here (1.4 GB/s with the CPU's SHA instructions), 1-2 s without them. Smaller files (HED's 59 MB
#: takes 0.04 s) are hashed each time and leave no memo beside them.
REMEMBER_SHA256_FROM = 100 << 20


def loads_toml(text: str) -> dict[str, Any]:
    """Parses TOML text (``tomllib``, or ``tomli`` on Python 3.10).

    Raises:
        TOMLDecodeError: The text is not valid TOML.
    """
    return tomllib.loads(text)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, keep_suffix: bool = False) -> Iterator[Path]:
    """A temporary path in ``path``'s folder, renamed into place when the block ends without an
    error: for a writer that wants a file name rather than a handle. ``keep_suffix``: the temporary
    name ends with ``path``'s suffix too (ffmpeg chooses the container by it).

    Missing parent folders are created; an existing file is replaced; on any failure (including
    Ctrl-C) the temporary file is removed and ``path`` is untouched. The file gets the permissions a
    plain ``open()`` would give (``mkstemp`` creates 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=_TMP_SUFFIX + (path.suffix if keep_suffix else ""), dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object] | bytes) -> Path:
    """Writes a file through a temporary file in the same folder, then renames it into place
    (:func:`atomic_path`).

    Args:
        path: Destination.
        write: ``bytes`` to write, or a function that writes to the binary handle it is given.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        if isinstance(write, bytes):
            handle.write(write)
        else:
            write(handle)
    return Path(path)


def _reason(exc: OSError, *, with_file: bool = False) -> str:
    """An OSError in words (``No space left on device``); ``with_file`` adds the file it concerns
    (``File exists: 'out'``) unless that is :func:`write_atomic`'s temporary file."""
    text = exc.strerror or str(exc) or type(exc).__name__
    if (
        with_file
        and exc.strerror
        and exc.filename is not None
        and _TMP_SUFFIX not in Path(os.fspath(exc.filename)).name
    ):
        text += f": {os.fspath(exc.filename)!r}"
    return text


def check_writable(path: str | os.PathLike[str], *, param: str = "-o") -> Path:
    """Finds, before any work is done, every reason a file could not be written at ``path``.

    Missing folders are created for a probe file in the would-be folder and removed again with the
    probe, so the tree is left as it was found (:func:`write_atomic` creates them when it writes).

    Args:
        path: Where a file will be written (an existing file there will be replaced).
        param: The parameter it was given as (``-o``, ``--history``), named in errors.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        InvalidParameter: ``path`` is an existing folder; one of its parents is a file (or a broken
            link); a missing folder cannot be created; or the folder does not take a new file (no
            permission, read-only file system, a name too long).
    """
    path = Path(path)
    if path.is_dir():
        raise InvalidParameter(param, str(path), "a file path", "it is an existing folder")
    # Another process checking the same path at once (the ranks of a torchrun) may remove a missing
    # folder it made for its own probe just after this one found it there: then check again.
    for _ in range(_RACES):
        if _probe_folder(path, param):
            break
    return path


#: How many times :func:`check_writable` checks again when another process removed a folder it found.
_RACES = 5


def _probe_folder(path: Path, param: str) -> bool:
    """One check of :func:`check_writable`: ``True`` when done, ``False`` when a folder it found was
    removed under it by someone else before its probe (check again)."""
    folder = path.parent
    missing: list[Path] = []
    ancestor = folder
    while not ancestor.is_dir() and ancestor != ancestor.parent:
        if os.path.lexists(ancestor):
            kind = "a broken link" if ancestor.is_symlink() else "a file"
            raise InvalidParameter(
                param, str(path), "a path inside a folder", f"{str(ancestor)!r} is {kind}, not a folder"
            )
        missing.append(ancestor)
        ancestor = ancestor.parent
    created: list[Path] = []
    try:
        for new in reversed(missing):
            try:
                os.mkdir(new)
            except FileExistsError:
                if new.is_dir():  # made by someone else meanwhile: theirs, not removed below
                    continue
                raise InvalidParameter(
                    param, str(path), "a path inside a folder", f"{str(new)!r} is a file, not a folder"
                ) from None
            except OSError as exc:
                raise InvalidParameter(
                    param,
                    str(path),
                    "a path whose folder can be created",
                    f"cannot create {str(new)!r}: {_reason(exc)}",
                ) from None
            created.append(new)
        try:
            fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=_TMP_SUFFIX, dir=folder)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and folder not in created and not folder.is_dir():
                return False  # found there, then removed by someone else: check again
            raise InvalidParameter(
                param,
                str(path),
                "a path in a folder that can be written",
                f"cannot create a file in {str(folder)!r}: {_reason(exc)}",
            ) from None
        os.close(fd)
        os.unlink(probe)
    finally:
        for new in reversed(created):
            try:
                os.rmdir(new)
            except OSError:  # something else wrote there meanwhile: it is no longer only ours to remove
                break
    return True


def check_new_run(run_dir: Path, markers: Iterable[str], *, param: str = "-o") -> None:
    """Refuses to start a new training run in ``run_dir`` when it is a file, or a folder that holds a
    run already (any of the files ``markers`` names).

    Raises:
        InvalidParameter: Naming ``param`` and the folder, and suggesting ``--resume``.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise InvalidParameter(param, str(run_dir), "a folder for the run (this is a file)")
    if any((run_dir / name).exists() for name in markers):
        raise InvalidParameter(
            param,
            str(run_dir),
            "a new or empty folder",
            "it holds a run already: pass --resume to continue it, or choose another folder",
        )


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (or would: the same absolute path)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def check_not_input(
    path: str | os.PathLike[str], inputs: Iterable[tuple[str, str | os.PathLike[str]]], *, param: str = "-o"
) -> Path:
    """Refuses an output that is one of the run's inputs: writing it would destroy the user's file.

    Args:
        path: Where an output will be written.
        inputs: ``(parameter, path)`` of each input (``("CONTENT", "photo.png")``).
        param: The parameter ``path`` was given as.

    Raises:
        InvalidParameter: Naming ``param``, the path, and the input it is.
    """
    path = Path(path)
    for given, source in inputs:
        if _same_file(path, Path(source)):
            raise InvalidParameter(
                param,
                str(path),
                "a path that is not one of the inputs",
                f"it is the {given} {str(source)!r}, which the run would overwrite",
            )
    return path


def _fallback_folders() -> list[Path]:
    """The current working folder, then the system temp folder (each once)."""
    folders: list[Path] = []
    with contextlib.suppress(OSError):  # the working folder may have been deleted
        folders.append(Path.cwd())
    temp = Path(tempfile.gettempdir())
    if temp not in folders:
        folders.append(temp)
    return folders


def _reserve_name(folder: Path, path: Path) -> Path:
    """Creates an empty ``<stem>.recovered[-N]<suffix>`` in ``folder`` that did not exist (``O_EXCL``,
    so two processes rescuing ``out.png`` at once get different names) and returns it."""
    for n in range(1, 1000):
        target = folder / f"{path.stem}.recovered{'' if n == 1 else f'-{n}'}{path.suffix}"
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return target
    raise FileExistsError(f"{folder / path.stem}.recovered-1..999{path.suffix} all exist")


def write_with_fallback(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object] | bytes,
    *,
    param: str = "-o",
    folders: Iterable[str | os.PathLike[str]] | None = None,
) -> Path:
    """:func:`write_atomic`, and where that fails with an OSError, the same content saved elsewhere.

    For a final result that must not be lost: when ``path`` cannot be written (disk full, its folder
    removed or replaced by a file since :func:`check_writable`), the content goes to the first of
    ``folders`` that takes it, as ``<stem>.recovered<suffix>`` (``-2``, ``-3``, … when taken), and
    :class:`OutputWriteError` says where. Other exceptions (a bug in ``write``, Ctrl-C) propagate
    as from :func:`write_atomic`; no temporary or reserved file is left behind.

    Args:
        path: Destination.
        write: ``bytes``, or a function that writes to the binary handle it is given; it may be
            called once per folder tried, so it must write the same content each time.
        param: The parameter ``path`` was given as, named in the error.
        folders: Where to save a copy, in order [default: the current working folder, then the
            system temp folder].

    Returns:
        ``path``, when it was written.

    Raises:
        OutputWriteError: ``path`` could not be written (exit code 1); :attr:`~OutputWriteError.saved`
            is the copy, or ``None`` if every fallback folder failed too.
    """
    return save_with_fallback(path, lambda target: write_atomic(target, write), param=param, folders=folders)


def save_with_fallback(
    path: str | os.PathLike[str],
    save: Callable[[Path], object],
    *,
    param: str = "-o",
    folders: Iterable[str | os.PathLike[str]] | None = None,
) -> Path:
    """:func:`write_with_fallback` for a writer that wants a file name (a video encoder): ``save(target)``
    writes the whole file at ``target`` (atomically, e.g. through :func:`atomic_path`), first at
    ``path``, then as ``<stem>.recovered<suffix>`` in each fallback folder until one takes it.

    Raises:
        OutputWriteError: As :func:`write_with_fallback`.
    """
    path = Path(path)
    try:
        save(path)
        return path
    except OSError as exc:
        reason = _reason(exc, with_file=True)
    failures = []
    for folder in [Path(f) for f in folders] if folders is not None else _fallback_folders():
        target: Path | None = None
        try:
            target = _reserve_name(folder, path)
            save(target)
        except BaseException as exc:
            if target is not None:
                target.unlink(missing_ok=True)
            if not isinstance(exc, OSError):
                raise
            failures.append(f"{folder}: {_reason(exc)}")
            continue
        raise OutputWriteError(param, path, reason, target, failures)
    raise OutputWriteError(param, path, reason, None, failures)


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stamp(path: Path) -> dict[str, int]:
    """What changes whenever a file's bytes may have: size, mtime, ctime (set by every write, rename
    or utime, and never settable to an old value) and inode."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns, "inode": st.st_ino}


def _read_memo(memo: Path) -> dict[str, Any]:
    """The memo's entries by file name; ``{}`` when it is missing, unreadable or not the memo's shape."""
    try:
        data = json.loads(memo.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # ValueError: not JSON, or not UTF-8
        return {}
    entries = data.get("files") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


def remember_sha256(path: str | os.PathLike[str], digest: str, stamp: dict[str, int] | None = None) -> None:
    """Records ``digest`` as the SHA-256 of ``path`` as it is now (``stamp``: as it was when hashed)
    in :data:`SHA256_MEMO` beside it, for a file of :data:`REMEMBER_SHA256_FROM` bytes or more.

    Best effort: the memo is written atomically, and where it cannot be (a read-only shared cache)
    files are simply hashed again next time. Entries of files no longer there are dropped.
    """
    path = Path(path)
    stamp = stamp or _stamp(path)
    if stamp["size"] < REMEMBER_SHA256_FROM:
        return
    memo = path.parent / SHA256_MEMO
    entries = {name: entry for name, entry in _read_memo(memo).items() if (path.parent / name).exists()}
    entries[path.name] = {**stamp, "sha256": digest}
    with suppress(OSError):
        write_atomic(memo, json.dumps({"version": 1, "files": entries}, indent=1, sort_keys=True).encode())


def remembered_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file, computed once per version of a large file (:func:`remember_sha256`).

    A remembered digest is used while the file's size, mtime, ctime and inode are those it was
    hashed at; a file rewritten even with its old mtime put back has a new ctime and is hashed again.
    """
    path = Path(path)
    stamp = _stamp(path)
    if stamp["size"] >= REMEMBER_SHA256_FROM:
        entry = _read_memo(path.parent / SHA256_MEMO).get(path.name)
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("sha256"), str)
            and all(entry.get(k) == v for k, v in stamp.items())
        ):
            return entry["sha256"]
    digest = sha256_of(path)
    if _stamp(path) == stamp:  # not changed while it was read
        remember_sha256(path, digest, stamp)
    return digest
