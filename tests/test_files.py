"""Tests of styleforge.files: the output-path probe (every reason a path cannot be written, found
before any work, nothing left behind) and the fallback writer (a final write that fails anyway is
saved elsewhere and said so). Failures are made with a parent that is a file or a monkeypatched
OSError, never chmod: tests may run as root, where a read-only folder still takes files."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

import pytest
import torch

from styleforge.errors import InvalidParameter, OutputWriteError, StyleforgeError
from styleforge.files import check_writable, write_with_fallback
from styleforge.images import check_output_path, load_image, read_metadata, save_image


def _tree(folder: Path) -> list[str]:
    """Every file and folder below ``folder``, relative, sorted (hidden temp files included)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- check_writable / check_output_path ------------------------------------------------------------


def test_a_writable_path_passes_and_nothing_is_left(tmp_path: Path) -> None:
    (tmp_path / "old.png").write_bytes(b"old")
    before = _tree(tmp_path)
    for path in (tmp_path / "new.png", tmp_path / "old.png", tmp_path / "a" / "b" / "c" / "out.png"):
        assert check_writable(path) == path
        assert check_output_path(path) == path
    assert _tree(tmp_path) == before  # folders made for the probe are gone, the probe file too
    assert (tmp_path / "old.png").read_bytes() == b"old"


def test_a_relative_path_in_the_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert check_output_path("out.png") == Path("out.png")
    assert _tree(tmp_path) == []


@pytest.mark.parametrize("relative", ["file.png/out.png", "file.png/a/b/out.png"])
def test_a_parent_that_is_a_file_is_named(tmp_path: Path, relative: str) -> None:
    (tmp_path / "file.png").write_bytes(b"an image, not a folder")
    path = tmp_path / relative
    with pytest.raises(InvalidParameter) as info:
        check_output_path(path, param="-o")
    message = str(info.value)
    assert message.startswith("-o: ") and str(path) in message and "\n" not in message
    assert f"{str(tmp_path / 'file.png')!r} is a file, not a folder" in message
    assert info.value.exit_code == 2
    assert _tree(tmp_path) == ["file.png"]


def test_a_broken_link_as_a_parent_is_named(tmp_path: Path) -> None:
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(InvalidParameter) as info:
        check_writable(tmp_path / "gone" / "out.png", param="--history")
    assert str(info.value).startswith(
        "--history: "
    ) and f"{str(tmp_path / 'gone')!r} is a broken link, not a folder" in str(info.value)


def test_an_existing_folder_is_named_whatever_its_name(tmp_path: Path) -> None:
    for name in ("folder.png", "folder"):
        (tmp_path / name).mkdir()
        with pytest.raises(InvalidParameter) as info:
            check_output_path(tmp_path / name, param="--plot")
        assert str(info.value).startswith("--plot: ") and "it is an existing folder" in str(info.value)


def test_an_unknown_extension_is_still_refused_first(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as info:
        check_output_path(tmp_path / "new" / "x.abc")
    assert ".png" in str(info.value) and "x.abc" in str(info.value)
    assert _tree(tmp_path) == []


def test_a_folder_that_cannot_be_created_is_named_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_mkdir = os.mkdir
    refused = tmp_path / "a" / "b" / "c"

    def mkdir(path: object, *args: object, **kwargs: object) -> None:
        if Path(os.fspath(path)) == refused:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(InvalidParameter) as info:
        check_output_path(refused / "d" / "out.png")
    message = str(info.value)
    assert message.startswith("-o: ") and message.endswith(
        f"(cannot create {str(refused)!r}: Permission denied)"
    )
    assert "\n" not in message
    assert _tree(tmp_path) == []  # a and b, created on the way, are removed again


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS, errno.ENOSPC])
def test_a_folder_that_takes_no_file_is_named_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    def mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    for path in (tmp_path / "out.png", tmp_path / "new" / "deeper" / "out.png"):
        with pytest.raises(InvalidParameter) as info:
            check_output_path(path)
        message = str(info.value)
        assert f"cannot create a file in {str(path.parent)!r}: {os.strerror(code)}" in message
        assert message.startswith("-o: ") and "\n" not in message
    assert _tree(tmp_path) == []


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders"
)
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(InvalidParameter, match="cannot create a file in"):
            check_output_path(locked / "out.png")
    finally:
        locked.chmod(0o755)


# --- write_with_fallback ---------------------------------------------------------------------------


def _disk_full_for(calls: int, data: bytes):
    """A write callback whose first ``calls`` calls write part of the file and then fail as a full
    disk does; later calls (the fallback folders) write ``data``."""
    count = [0]

    def write(handle: BinaryIO) -> None:
        count[0] += 1
        if count[0] <= calls:
            handle.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        handle.write(data)

    return write


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A working folder and a system temp folder of the test's own: (cwd, temp)."""
    cwd, temp = tmp_path / "cwd", tmp_path / "temp"
    cwd.mkdir()
    temp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return cwd, temp


def test_a_write_that_works_is_just_write_atomic(tmp_path: Path, elsewhere: tuple[Path, Path]) -> None:
    out = tmp_path / "new" / "x.bin"
    assert write_with_fallback(out, b"data") == out and out.read_bytes() == b"data"
    assert _tree(elsewhere[0]) == [] and _tree(elsewhere[1]) == []


def test_a_full_disk_saves_the_result_in_the_working_folder(
    tmp_path: Path, elsewhere: tuple[Path, Path]
) -> None:
    cwd, temp = elsewhere
    target = tmp_path / "results"
    target.mkdir()
    (target / "out.png").write_bytes(b"the previous result")
    with pytest.raises(OutputWriteError) as info:
        write_with_fallback(target / "out.png", _disk_full_for(1, b"new result"), param="-o")
    error = info.value
    assert isinstance(error, StyleforgeError) and error.exit_code == 1
    assert error.saved == cwd / "out.recovered.png" and error.saved.read_bytes() == b"new result"
    assert error.path == target / "out.png" and error.reason == "No space left on device"
    assert str(error) == (
        f"-o: could not write {str(target / 'out.png')!r} (No space left on device); "
        f"the result was saved to {str(cwd / 'out.recovered.png')!r}"
    )
    assert (target / "out.png").read_bytes() == b"the previous result"  # untouched
    assert _tree(target) == ["out.png"] and _tree(cwd) == ["out.recovered.png"] and _tree(temp) == []


def test_a_folder_replaced_by_a_file_after_the_probe(tmp_path: Path, elsewhere: tuple[Path, Path]) -> None:
    # The probe passed; then the output folder was removed and a file took its name.
    out = tmp_path / "run" / "out.png"
    check_output_path(out)
    (tmp_path / "run").write_bytes(b"not a folder")
    with pytest.raises(OutputWriteError) as info:
        write_with_fallback(out, b"result")
    assert "File exists" in info.value.reason and str(tmp_path / "run") in info.value.reason
    assert info.value.saved is not None and info.value.saved.read_bytes() == b"result"
    assert info.value.saved.parent == elsewhere[0]


def test_taken_names_are_not_overwritten(tmp_path: Path, elsewhere: tuple[Path, Path]) -> None:
    cwd, _ = elsewhere
    (cwd / "out.recovered.png").write_bytes(b"an earlier rescue")
    (cwd / "out.recovered-2.png").write_bytes(b"another one")
    (tmp_path / "file").write_bytes(b"")  # out.png's would-be folder is a file: the write fails
    with pytest.raises(OutputWriteError) as info:
        write_with_fallback(tmp_path / "file" / "out.png", b"x")
    assert info.value.saved == cwd / "out.recovered-3.png" and info.value.saved.read_bytes() == b"x"
    assert (cwd / "out.recovered.png").read_bytes() == b"an earlier rescue"
    assert (cwd / "out.recovered-2.png").read_bytes() == b"another one"


def test_the_temp_folder_when_the_working_folder_fails_too(
    tmp_path: Path, elsewhere: tuple[Path, Path]
) -> None:
    cwd, temp = elsewhere
    target = tmp_path / "results"
    target.mkdir()
    with pytest.raises(OutputWriteError) as info:
        write_with_fallback(target / "history.csv", _disk_full_for(2, b"result"), param="--history")
    assert info.value.saved == temp / "history.recovered.csv" and info.value.saved.read_bytes() == b"result"
    assert info.value.failures == [f"{cwd}: No space left on device"]
    assert str(info.value).startswith("--history: could not write") and "\n" not in str(info.value)
    assert _tree(cwd) == [] and _tree(target) == []  # no reserved name or temp file left


def test_when_nothing_takes_it_the_error_says_so(tmp_path: Path, elsewhere: tuple[Path, Path]) -> None:
    def never(handle: BinaryIO) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputWriteError) as info:
        write_with_fallback(tmp_path / "out.png", never)
    error = info.value
    assert error.saved is None and len(error.failures) == 2
    message = str(error)
    assert (
        "no copy could be saved either" in message
        and str(elsewhere[0]) in message
        and str(elsewhere[1]) in message
    )
    assert "\n" not in message
    assert _tree(tmp_path) == ["cwd", "temp"]


def test_other_exceptions_are_not_rescued(tmp_path: Path, elsewhere: tuple[Path, Path]) -> None:
    def bug(handle: BinaryIO) -> None:
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        write_with_fallback(tmp_path / "out.png", bug)
    interrupted = [0]

    def ctrl_c_in_the_fallback(handle: BinaryIO) -> None:
        interrupted[0] += 1
        raise OSError(errno.ENOSPC, "full") if interrupted[0] == 1 else KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_with_fallback(tmp_path / "out.png", ctrl_c_in_the_fallback)
    assert _tree(elsewhere[0]) == [] and not (tmp_path / "out.png").exists()


def test_save_image_with_fallback_keeps_the_image_and_its_metadata(
    tmp_path: Path, elsewhere: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out"
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:
        if dir is not None and Path(os.fspath(dir)) == target:  # the output's disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    rgb = torch.rand(3, 8, 12, generator=torch.Generator().manual_seed(0))
    with pytest.raises(OutputWriteError) as info:
        save_image(target / "out.png", rgb, metadata={"command": "transfer"}, fallback=True)
    saved = info.value.saved
    assert saved == elsewhere[0] / "out.recovered.png"
    assert torch.allclose(load_image(saved).rgb, rgb, atol=1 / 255) and read_metadata(saved) == {
        "command": "transfer"
    }
    # Without fallback (the default), the OSError is the caller's, as before.
    with pytest.raises(OSError):
        save_image(target / "out.png", rgb)


def test_a_folder_another_process_removes_under_the_probe_is_checked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two torchrun ranks check the same new -o at once: one finds the folder the other made for its
    probe, and the other removes it before the first one's probe."""
    from styleforge import files

    folder = tmp_path / "ddp"
    folder.mkdir()  # the other rank's, found here
    real, calls = tempfile.mkstemp, []

    def racing(*args: object, **kwargs: object) -> tuple[int, str]:
        calls.append(1)
        if len(calls) == 1:
            folder.rmdir()  # the other rank is done with it
            raise FileNotFoundError(2, "No such file or directory")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files.tempfile, "mkstemp", racing)
    assert check_writable(folder / "model.json") == folder / "model.json"
    assert len(calls) == 2 and not folder.exists()  # made again for the probe, and removed
