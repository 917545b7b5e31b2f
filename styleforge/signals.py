"""Ctrl-C and SIGTERM as a flag that a loop checks between iterations, rather than an exception anywhere.

A run can end in many ways besides finishing: Ctrl-C (SIGINT), or SIGTERM from ``timeout``, ``kill``,
``docker stop`` or a batch scheduler (Slurm) at the end of a job's time. Both are handled alike: the
first one sets a flag, the loop that is running stops after its current step and keeps its best
result, and the caller learns which signal it was (:attr:`Interrupt.signum`, :attr:`Interrupt.exit_code`:
130 for SIGINT, 143 for SIGTERM, as a shell reports a process those signals ended).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from types import FrameType

__all__ = [
    "INTERRUPTED_DETAIL",
    "STOP_SIGNALS",
    "Interrupt",
    "Terminated",
    "exit_code_of",
    "installed",
    "sigint_flag",
    "keeping",
    "signal_name",
    "stop_detail",
    "stop_signals",
    "stopped_words",
    "watch",
]

#: The signals a run stops on, keeping its result.
STOP_SIGNALS: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
#: How a run Ctrl-C stopped says so (its ``stop_detail``).
INTERRUPTED_DETAIL = "interrupted by the user"


def signal_name(signum: int | None) -> str:
    """``SIGINT``, ``SIGTERM``, ... (``SIGINT`` for ``None``: a Ctrl-C the caller raised itself)."""
    return signal.Signals(signum).name if signum is not None else "SIGINT"


def stopped_words(signum: int | None) -> str:
    """How a message about a stopped run begins: ``interrupted`` (Ctrl-C) or ``stopped by SIGTERM``."""
    return "interrupted" if signum is None or signum == signal.SIGINT else f"stopped by {signal_name(signum)}"


def exit_code_of(signum: int | None) -> int:
    """The exit status of a run a signal ended after its result was kept: 128 + the signal's number
    (130 for Ctrl-C, 143 for SIGTERM), as a shell reports a process the signal killed."""
    return 128 + (signum if signum is not None else signal.SIGINT)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived where no loop could stop cleanly (before the run's loop, or a second time).

    It derives from :class:`KeyboardInterrupt` so that every place that ends a run on Ctrl-C (keeping
    what it has) ends it on SIGTERM too.
    """

    signum = signal.SIGTERM


class Interrupt:
    """Set by the first stop signal while it is installed (:func:`stop_signals`) and a loop listens.

    Attributes:
        requested: A stop was asked for; the loop ends after its current step.
        signum: The signal that asked (``None``: set by the caller, or not yet).
        on_request: Called with the signal's number whenever one arrives (e.g. to pass it on to child
            processes); run inside the signal handler, so they must be quick.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self.on_request: list[Callable[[int], None]] = []
        self._listening = 0
        self._keeping = 0

    def request(self, signum: int | None = None) -> None:
        """Asks the listening loop to stop (the first request's signal is the one kept)."""
        if not self.requested:
            self.requested, self.signum = True, signum

    @property
    def exit_code(self) -> int:
        """:func:`exit_code_of` the signal that asked (130 when none did)."""
        return exit_code_of(self.signum)

    @property
    def detail(self) -> str:
        """How the run was stopped, in words: ``interrupted by the user`` (Ctrl-C) or
        ``stopped by SIGTERM``."""
        return INTERRUPTED_DETAIL if self.signum in (None, signal.SIGINT) else stopped_words(self.signum)

    @contextmanager
    def listening(self) -> Iterator[Interrupt]:
        """While active, a loop checks :attr:`requested` between its steps, so the first signal only sets
        it. Outside every such block a signal acts at once (Ctrl-C raises :class:`KeyboardInterrupt`,
        SIGTERM :class:`Terminated`): a run still preparing has nothing to keep."""
        self._listening += 1
        try:
            yield self
        finally:
            self._listening -= 1

    @contextmanager
    def keeping(self) -> Iterator[Interrupt]:
        """While active (a run's results being written), every signal only sets the flag, a second
        one too: the files are what the run was for, and their writing is short."""
        self._keeping += 1
        try:
            yield self
        finally:
            self._keeping -= 1

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        for forward in list(self.on_request):
            forward(signum)
        if self._keeping:
            self.request(signum)
            return
        if self.requested or not self._listening:
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self.request(signum)


def stop_detail(flag: object, stop: BaseException | None = None) -> str:
    """The sentence (``stop_detail``) of a run that ``flag`` stopped, or the exception a second signal
    raised (``stop``, recorded on the flag): :attr:`Interrupt.detail`. A caller's own flag of another
    kind (anything with ``requested``) reads as Ctrl-C."""
    if stop is not None:
        request = getattr(flag, "request", None)
        if request is not None:
            request(getattr(stop, "signum", signal.SIGINT))
        elif isinstance(stop, Terminated):
            return stopped_words(signal.SIGTERM)
    return getattr(flag, "detail", INTERRUPTED_DETAIL)


def _ours_to_take(signum: int) -> bool:
    """Whether the signal has the disposition a process starts with, which styleforge may replace.

    Python's own Ctrl-C handler for SIGINT, the default action for the others. A signal that is
    ignored (a background job, ``cmd &`` or ``nohup cmd &`` in a script, starts with SIGINT ignored)
    or has a handler of the caller's keeps it: the choice was made on purpose.
    """
    current = signal.getsignal(signum)
    return current is signal.default_int_handler if signum == signal.SIGINT else current == signal.SIG_DFL


def installed() -> Interrupt | None:
    """The flag whose handler :func:`stop_signals` installed and is still in place, else ``None``."""
    if threading.current_thread() is not threading.main_thread():
        return None
    for signum in STOP_SIGNALS:
        owner = getattr(signal.getsignal(signum), "__self__", None)
        if isinstance(owner, Interrupt):
            return owner
    return None


@contextmanager
def stop_signals(*, listen: bool = True) -> Iterator[Interrupt]:
    """Installs the stop signals' handler (SIGINT, SIGTERM) for the block and yields its flag.

    The first signal while a loop listens only sets the flag; a second one raises
    :class:`KeyboardInterrupt` (:class:`Terminated` for SIGTERM) as usual, so a stuck run can still be
    stopped. A ``KeyboardInterrupt`` raised wherever the main thread happens to be (inside the autograd
    engine's call into a Python backward, a file being written, a library holding a lock) can leave
    that code half-done; a loop that checks the flag after each step stops at a clean point, keeping
    its best result.

    Where a block of this kind is active already (a command installed it for its whole run), its
    flag is the one yielded, so the command learns what stopped the loops inside it. Outside the
    main thread nothing is changed and the flag stays unset; a signal whose disposition is not the
    one a process starts with (ignored, or the caller's own handler) is left as it is.

    Args:
        listen: The block is itself a loop that checks the flag (``False``: a caller that installs the
            handler for longer, e.g. a whole command, and lets the loops inside listen).
    """
    outer = installed()
    if outer is not None:
        with outer.listening() if listen else nullcontext(outer):
            yield outer
        return
    flag = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS if _ours_to_take(signum)}
    for signum in previous:
        signal.signal(signum, flag._handle)
    try:
        with flag.listening() if listen else nullcontext(flag):
            yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def sigint_flag() -> AbstractContextManager[Interrupt]:
    """:func:`stop_signals` for a loop (the name it had when it handled Ctrl-C alone)."""
    return stop_signals()


def keeping(flag: object) -> AbstractContextManager[object]:
    """``flag.keeping()`` (:meth:`Interrupt.keeping`), or nothing for a caller's flag of another kind."""
    keep = getattr(flag, "keeping", None)
    return keep() if keep is not None else nullcontext(flag)


def watch(interrupt: Interrupt | None) -> AbstractContextManager[Interrupt]:
    """The flag a loop checks: the caller's (``interrupt``), listened to for the block, or else the
    one :func:`stop_signals` gives."""
    if interrupt is None:
        return stop_signals()
    listening = getattr(interrupt, "listening", None)
    return listening() if listening is not None else nullcontext(interrupt)
