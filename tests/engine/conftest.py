"""The engine tests run many tiny ops: one intra-op thread for them."""

from _helpers import one_thread  # noqa: F401  (autouse)
