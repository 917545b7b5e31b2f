"""Fixtures of the cluster tests: one intra-op thread, and a local Ray instance of two workers for each
test module (started once: it takes seconds), shut down at its end (the sweep's tests start their own)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from _helpers import one_thread  # noqa: F401  (autouse)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    """A local Ray instance with 2 CPUs (2 workers of 1 thread each), no dashboard; skipped without Ray."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'styleforge[ray]')")
    address = os.environ.pop("RAY_ADDRESS", None)
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
        for signum, handler in handlers.items():  # ray.init replaces SIGTERM's
            signal.signal(signum, handler)
        if address is not None:
            os.environ["RAY_ADDRESS"] = address
