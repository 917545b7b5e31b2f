"""Ctrl-C as a flag: the pixel loop and the training loop stop at a clean point between steps, keeping
their best result."""

from __future__ import annotations

import signal
import threading

import pytest
import torch
from _helpers import deliver, stop_signals_as_at_start  # noqa: F401

from styleforge.engine import (
    BatchProgress,
    EpochEnded,
    Progress,
    WeightedLoss,
    evaluate,
    fit,
    optimise_pixels,
    parse_optimizer,
)
from styleforge.engine.interrupt import Interrupt, Terminated, sigint_flag, stop_signals


@pytest.fixture(autouse=True)
def python_sigint(stop_signals_as_at_start: None) -> object:
    """Python's own SIGINT handler and SIGTERM's default for each test, whatever the runner inherited
    (a background job started by a non-interactive shell ignores SIGINT, and Python then keeps it
    ignored)."""
    yield


def test_first_ctrl_c_sets_the_flag_second_raises_and_the_handler_is_restored() -> None:
    with sigint_flag() as flag:
        assert not flag.requested
        deliver(signal.SIGINT)
        assert flag.requested  # no exception: the loop decides when to stop
        with pytest.raises(KeyboardInterrupt):
            deliver(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_is_handled_like_ctrl_c_and_remembered() -> None:
    with stop_signals() as flag:
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN)
        deliver(signal.SIGTERM)
        assert flag.requested and flag.signum == signal.SIGTERM
        assert flag.exit_code == 143 and flag.detail == "stopped by SIGTERM"
        with pytest.raises(Terminated):  # a second one stops at once, as a second Ctrl-C does
            deliver(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_signal_where_no_loop_listens_acts_at_once_and_inner_loops_share_the_flag() -> None:
    forwarded: list[int] = []
    with stop_signals(listen=False) as outer:  # a command: it holds the handler while it prepares
        outer.on_request.append(forwarded.append)
        with pytest.raises(Terminated):
            deliver(signal.SIGTERM)
        assert not outer.requested
        with stop_signals() as inner:  # a loop inside the command listens to the command's flag
            assert inner is outer
            deliver(signal.SIGINT)
        assert outer.requested and outer.exit_code == 130
    assert forwarded == [signal.SIGTERM, signal.SIGINT]
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
            deliver(signal.SIGINT)  # arrives inside the step, as a real Ctrl-C would

    result = optimise_pixels(
        torch.full((1, 3, 8, 8), 0.5),
        loss,
        [parse_optimizer("adam:50@0.05")],
        iterations=1,
        callbacks=[on_event],
    )
    assert result.stop_reason == "interrupted" and len(result.history) == 3
    assert result.best_summary is not None and result.best_summary.total == min(
        e.summary.total for e in result.history
    )
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_ignored_sigint_stays_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with sigint_flag() as flag:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        deliver(signal.SIGINT)
    assert not flag.requested and signal.getsignal(signal.SIGINT) is signal.SIG_IGN


# --- the training loop ---------------------------------------------------------------------------------

_X = torch.randn(24, 3, generator=torch.Generator().manual_seed(0))
_Y = _X @ torch.tensor([1.0, -2.0, 0.5])


def _fit(on_event, ctrl_c_at_step: int = 0, **options: object):
    """4 batches an epoch, 4 epochs; SIGINT inside the forward pass of training step ``ctrl_c_at_step``.
    Returns the result, the model, the training steps begun, and what evaluates the model."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    steps = {"n": 0}

    def forward(batch: tuple) -> torch.Tensor:
        if model.training:
            steps["n"] += 1
            if steps["n"] == ctrl_c_at_step:
                deliver(signal.SIGINT)  # arrives inside the step, as a real Ctrl-C would
        return model(batch[0])[:, 0]

    loss = WeightedLoss({"mse": lambda out, batch: ((out - batch[1]) ** 2).mean()})
    train = lambda generator: [(_X[i : i + 4], _Y[i : i + 4]) for i in range(0, 16, 4)]
    val = lambda: [(_X[16:], _Y[16:])]
    result = fit(
        model, forward, loss, train, val, epochs=4, optimizer="sgd@0.05", callbacks=[on_event], **options
    )
    return result, model, steps["n"], lambda: evaluate(model, forward, loss, val())[0].total


def test_ctrl_c_during_a_step_ends_the_fit_after_it_with_the_best_epoch() -> None:
    done: list[tuple[int, int]] = []
    handlers = []

    def on_event(event: object) -> None:
        if isinstance(event, BatchProgress):
            done.append((event.epoch, event.batch))
            handlers.append(signal.getsignal(signal.SIGINT))

    result, model, steps, evaluated = _fit(on_event, ctrl_c_at_step=2 * 4 + 2)
    assert result.stop_reason == "interrupted" and result.stop_detail == "interrupted by the user"
    assert steps == 10 and done[-1] == (3, 2)  # the step it came in finished, and no other began
    assert result.epochs_run == 2 and [row["epoch"] for row in result.history] == [1, 2]  # epoch 3 unrecorded
    assert result.best_epoch == 2  # the loss falls: the best so far is the last finished epoch
    assert evaluated() == pytest.approx(result.best_value, rel=1e-6)  # and its weights are back in the model
    assert all(h is not signal.default_int_handler for h in handlers)  # fit held its own flag
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_callers_flag_stops_the_fit_and_leaves_sigint_alone() -> None:
    flag = Interrupt()

    def on_event(event: object) -> None:
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        if isinstance(event, EpochEnded) and event.epoch == 2:
            flag.requested = True  # between epochs (during validation, say): the epoch is kept

    result, _, steps, _ = _fit(on_event, interrupt=flag)
    assert result.stop_reason == "interrupted" and steps == 2 * 4 and result.epochs_run == 2
