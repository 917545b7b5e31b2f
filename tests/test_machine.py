"""The memory a process may use: the least of the system's, its cgroup's and its address space's, and
its share when a sweep runs several processes at once."""

from __future__ import annotations

import pytest

from styleforge import machine
from styleforge.errors import ResourceError


def test_the_least_of_the_limits_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(machine.PROCESSES_ENV, raising=False)
    monkeypatch.setattr(machine, "_meminfo_available", lambda: 64 * 2**30)
    monkeypatch.setattr(machine, "_address_space_room", lambda: None)
    files = {"/sys/fs/cgroup/memory.max": 8 * 2**30, "/sys/fs/cgroup/memory.current": 3 * 2**30}
    monkeypatch.setattr(machine, "_read_int", files.get)
    assert (
        machine.cpu_memory_available() == 5 * 2**30
    )  # a container's limit, which MemAvailable does not show
    monkeypatch.setattr(machine, "_read_int", {}.get)
    assert machine.cpu_memory_available() == 64 * 2**30
    monkeypatch.setattr(machine, "_address_space_room", lambda: 2**30)  # ulimit -v
    assert machine.cpu_memory_available() == 2**30


def test_a_sweeps_cells_share_the_system_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "_meminfo_available", lambda: 64 * 2**30)
    monkeypatch.setattr(machine, "_cgroup_room", lambda: None)
    monkeypatch.setattr(machine, "_address_space_room", lambda: None)
    monkeypatch.setenv(machine.PROCESSES_ENV, "4")
    assert machine.sharing_processes() == 4 and machine.cpu_memory_available() == 16 * 2**30
    monkeypatch.setenv(machine.PROCESSES_ENV, "zero")
    assert machine.sharing_processes() == 1


def test_a_need_above_what_is_free_names_the_choice_both_figures_and_the_fix() -> None:
    assert machine.check_fits(10, None, "--size 64", "a smaller --size") == 10  # unknown: allowed
    with pytest.raises(ResourceError) as info:
        machine.check_fits(3 * 2**30, 2**30, "--size 4096", "a smaller --size")
    assert str(info.value) == (
        "--size 4096: this needs about 3.0 GiB of memory on cpu and 1.0 GiB is available; "
        "try a smaller --size"
    )
