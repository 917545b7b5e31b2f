"""The stop signals' flag, for the loops of the engine: :mod:`styleforge.signals` (which needs no torch,
so that the command line can install it before anything heavy is imported)."""

from __future__ import annotations

from ..signals import Interrupt, Terminated, keeping, sigint_flag, stop_detail, stop_signals, watch

__all__ = ["Interrupt", "Terminated", "keeping", "sigint_flag", "stop_detail", "stop_signals", "watch"]
