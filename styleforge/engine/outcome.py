"""How a loop ends: the one vocabulary of stop reasons both loops report.

:func:`~styleforge.engine.fit.fit` (``FitResult.stop_reason``, ``FitEnded.reason``) says why it stopped
with one of :data:`STOP_REASONS`, and the pixel loop is to use the same words:

- ``completed``: every planned epoch (iteration) ran.
- ``stopped``: the stopping rule (:class:`~styleforge.engine.optimize.StopRule`) ended the run early:
  early stopping on a validation total, or a pixel loss that no longer changes.
- ``diverged``: a non-finite loss, or a total the divergence guard rejects; the best result so far is
  kept.
- ``interrupted``: Ctrl-C or SIGTERM (:func:`~styleforge.engine.interrupt.stop_signals`) or the caller's
  flag; the loop stops after the current step and keeps the best result so far. The detail says which
  (:data:`INTERRUPTED_DETAIL` for Ctrl-C, ``stopped by SIGTERM``).
"""

from __future__ import annotations

from ..signals import INTERRUPTED_DETAIL  # the sentence of a run Ctrl-C interrupted

__all__ = ["COMPLETED", "STOPPED", "DIVERGED", "INTERRUPTED", "STOP_REASONS", "INTERRUPTED_DETAIL"]

COMPLETED = "completed"
STOPPED = "stopped"
DIVERGED = "diverged"
INTERRUPTED = "interrupted"
#: Every stop reason, in the order above.
STOP_REASONS: tuple[str, ...] = (COMPLETED, STOPPED, DIVERGED, INTERRUPTED)
