"""Debian's Chromium driven by Playwright: how the tests and docs/make_studio_screenshot.py look at the page.

Playwright's Python package is used without its own browsers (nothing is downloaded): it drives the
system's Chromium (Debian's ``chromium`` package, ``/usr/bin/chromium``; ``STYLEFORGE_CHROMIUM`` names
another), headless, with a fresh profile and none of the background connections a browser makes by
itself. Only for development: the studio itself needs no browser of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CHROMIUM_FLAGS", "browser_page", "chromium_path", "why_no_browser"]

#: Headless Chromium as root, with nothing reaching out on its own (a fresh profile is Playwright's).
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str | None:
    """The Chromium to drive: ``STYLEFORGE_CHROMIUM``, else ``chromium`` on the PATH (Debian's is
    ``/usr/bin/chromium``), else ``None``."""
    named = os.environ.get("STYLEFORGE_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    )


def why_no_browser() -> str | None:
    """Why the page cannot be driven here (a sentence), or ``None`` when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ModuleNotFoundError:
        return "Playwright's Python package is not installed (pip install -e '.[test]')"
    named = os.environ.get("STYLEFORGE_CHROMIUM")
    if named and chromium_path() is None:
        return f"STYLEFORGE_CHROMIUM={named} is not a program that can be run"
    if chromium_path() is None:
        return (
            "Debian's chromium is not installed (apt-get install chromium; make test does it as root), "
            "nor is STYLEFORGE_CHROMIUM set"
        )
    return None


@contextmanager
def browser_page(width: int = 1200, height: int = 900, **context: Any) -> Iterator[Any]:
    """A new page (``playwright.sync_api.Page``) in a fresh headless Chromium, closed afterwards.

    Args:
        width, height: The viewport in CSS pixels.
        **context: More options of ``Browser.new_context`` (``device_scale_factor``, ...).
    """
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise RuntimeError(why_no_browser())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=list(CHROMIUM_FLAGS))
        try:
            page = browser.new_context(
                viewport={"width": width, "height": height}, accept_downloads=True, **context
            ).new_page()
            yield page
        finally:
            browser.close()
