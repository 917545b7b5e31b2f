"""What this machine lets a run use, found without torch: its cores, and the memory left to the process.

The system's available memory (``MemAvailable``) is not all a process may take: a container's
``--memory``, a batch job's allocation (both memory cgroups) and ``ulimit -v`` set lower limits that
``MemAvailable`` does not show, and a process over them is killed or fails to allocate. Each command
checks its estimate against the least of them (:func:`check_fits`) before its first large tensor.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .errors import ResourceError

__all__ = ["PROCESSES_ENV", "check_fits", "cpu_memory_available", "gib", "sharing_processes", "usable_cores"]

#: Set by ``styleforge sweep`` for the cells it runs at once (``--jobs``): how many styleforge processes
#: share this machine's cores and memory. The memory checks count on that share of the memory
#: available, and the default worker counts on that share of the cores.
PROCESSES_ENV = "STYLEFORGE_PROCESSES"


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity, where the system says; else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def sharing_processes(environ: Mapping[str, str] | None = None) -> int:
    """How many processes share the machine (:data:`PROCESSES_ENV`; 1 when unset or not a whole
    number >= 1)."""
    text = (os.environ if environ is None else environ).get(PROCESSES_ENV, "")
    return int(text) if text.isdigit() and int(text) >= 1 else 1


def _read_int(path: str) -> int | None:
    """The whole number a one-line system file holds (``None``: missing, unreadable or ``max``)."""
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available() -> int | None:
    """The system's ``MemAvailable`` in bytes (``None`` where there is no ``/proc/meminfo``)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """Bytes this process's memory cgroup (a container's ``--memory``, a batch job's allocation) still
    lets it take: its limit less its usage; ``None`` without a limit."""
    rooms = []
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # cgroup v1
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if (
            limit is not None and usage is not None and limit < 1 << 60
        ):  # v1 writes "no limit" as a huge number
            rooms.append(max(0, limit - usage))
    return min(rooms) if rooms else None


def _address_space_room() -> int | None:
    """Bytes ``ulimit -v`` (RLIMIT_AS) still lets this process map; ``None`` without a limit."""
    try:
        import resource
    except ImportError:  # not on a Unix
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as handle:
            mapped = int(handle.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return None
    return max(0, soft - mapped)


def cpu_memory_available() -> int | None:
    """Bytes this process may still allocate on the CPU, or ``None`` when it cannot be known.

    The least of the system's available memory (divided between the processes that share the
    machine: :func:`sharing_processes`), what this process's memory cgroup still allows and what
    ``ulimit -v`` leaves.
    """
    system = _meminfo_available()
    rooms = [
        room
        for room in (
            system // sharing_processes() if system is not None else None,
            _cgroup_room(),
            _address_space_room(),
        )
        if room is not None
    ]
    return min(rooms) if rooms else None


def gib(n: float) -> str:
    """Bytes as GiB in words (``1.5 GiB``; two significant digits below 1 GiB)."""
    value = n / 2**30
    return f"{value:.1f} GiB" if value >= 0.95 else f"{value:.2g} GiB"


def check_fits(need: int, free: int | None, what: str, fix: str, *, where: str = "cpu") -> int:
    """Refuses work whose estimated memory ``need`` exceeds ``free`` (``None``: unknown, allowed).

    Args:
        need: The estimate in bytes.
        free: Bytes available (:func:`cpu_memory_available`, or a device's).
        what: The choice that sets the need, as the user wrote it (``--size 4096``).
        fix: What to try instead, in words (``a smaller --size``).
        where: The device, in words.

    Returns:
        ``need``.

    Raises:
        ResourceError: The estimate does not fit; the message gives both figures and ``fix``.
    """
    if free is None or need <= free:
        return need
    raise ResourceError(
        f"{what}: this needs about {gib(need)} of memory on {where} and {gib(free)} is available; try {fix}"
    )
