"""Ctrl-C as a flag: the pixel loop stops at a clean point between steps."""

from __future__ import annotations

import os
import signal
import threading

import pytest
import torch

from styleforge.engine import Progress, WeightedLoss, optimise_pixels, parse_optimizer
from styleforge.engine.interrupt import sigint_flag


@pytest.fixture(autouse=True)
def python_sigint() -> object:
    """Python's own SIGINT handler for the test, whatever the runner inherited (a background job
    started by a non-interactive shell ignores SIGINT, and Python then keeps it ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_first_ctrl_c_sets_the_flag_second_raises_and_the_handler_is_restored() -> None:
    with sigint_flag() as flag:
        assert not flag.requested
        os.kill(os.getpid(), signal.SIGINT)
        assert flag.requested  # no exception: the loop decides when to stop
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_outside_the_main_thread_nothing_changes() -> None:
    seen = []

    def worker() -> None:
        with sigint_flag() as flag:
            seen.append((flag.requested, signal.getsignal(signal.SIGINT) is signal.default_int_handler))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [(False, True)]


def test_ctrl_c_during_a_step_ends_the_run_after_it_with_the_best_image() -> None:
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    loss = WeightedLoss({"mse": lambda x: (x - target).pow(2).mean()})

    def on_event(event: object) -> None:
        if isinstance(event, Progress) and event.iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)  # arrives inside the step, as a real Ctrl-C would

    result = optimise_pixels(torch.full((1, 3, 8, 8), 0.5), loss, [parse_optimizer("adam:50@0.05")], iterations=1,
                             callbacks=[on_event])
    assert result.stop_reason == "interrupted" and len(result.history) == 3
    assert result.best_summary is not None and result.best_summary.total == min(e.summary.total for e in result.history)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with sigint_flag() as flag:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)
    assert not flag.requested and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
