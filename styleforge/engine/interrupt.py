"""Ctrl-C as a flag that a loop checks between iterations, rather than an exception anywhere."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Interrupt", "sigint_flag"]


class Interrupt:
    """Set by the first Ctrl-C while :func:`sigint_flag` is active."""

    def __init__(self) -> None:
        self.requested = False


@contextmanager
def sigint_flag() -> Iterator[Interrupt]:
    """While active, the first Ctrl-C (SIGINT) only sets ``requested``; a second one raises
    ``KeyboardInterrupt`` as usual, so a stuck run can still be stopped.

    A ``KeyboardInterrupt`` raised wherever the main thread happens to be (inside the autograd
    engine's call into a Python backward, a file being written, a library holding a lock) can leave
    that code half-done; a loop that checks the flag after each step stops at a clean point, keeping
    its best result. Outside the main thread, or when SIGINT is not Python's default handler (the
    caller installed its own, or ignores it), nothing is changed and ``requested`` stays False.
    """
    flag = Interrupt()
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield flag
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
