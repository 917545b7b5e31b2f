"""The studio's tests run tiny transfers in the studio's worker thread: one intra-op thread for them."""

import pytest

pytest.importorskip("aiohttp", reason="the studio needs aiohttp: pip install -e '.[test]'")

from _helpers import one_thread  # noqa: F401  (autouse)
