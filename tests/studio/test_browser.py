"""The page in a real browser (Debian's Chromium, driven by Playwright's Python package; no browser is
downloaded): two tiny pictures uploaded through the page, a few iterations with seeded random weights,
the picture seen changing and a loss curve drawn, Stop, and the PNG downloaded with its metadata.
Skipped, saying why, where Playwright or Chromium is missing (``make test`` installs both as root)."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from styleforge.images import read_metadata
from styleforge.studio.browser import browser_page, why_no_browser
from styleforge.studio.runs import Studio
from styleforge.studio.server import StudioServer

#: How long a wait in the page may take before the test fails rather than hangs (seconds).
PATIENCE = 180.0
#: The chart's pixels a drawn curve darkens (the empty chart has only its grid and labels).
DRAWN = """() => {
  const canvas = document.getElementById("chart");
  const data = canvas.getContext("2d").getImageData(52, 10, canvas.width - 62, canvas.height - 36).data;
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
    const ink = Math.max(r, g, b) - Math.min(r, g, b) > 60 || Math.max(r, g, b) < 90;
    if (data[i + 3] > 0 && ink) coloured++;
  }
  return coloured;
}"""


def _until(check, what: str):
    deadline = time.monotonic() + PATIENCE
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"the page never showed {what}"
        time.sleep(0.1)


def _version(page) -> int:
    return int(page.get_attribute("#picture", "data-version") or 0)


def test_the_page_uploads_watches_stops_and_downloads(images: dict[str, Path], tmp_path: Path) -> None:
    reason = why_no_browser()
    if reason is not None:
        pytest.skip(reason)
    server = StudioServer(Studio(tmp_path / "studio"))
    url = server.start_in_thread()
    problems: list[str] = []
    try:
        with browser_page(1100, 900) as page:
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.set_input_files("#content-file", str(images["content"]))
            page.set_input_files("#style-files", str(images["a"]))
            assert page.locator("#style-list li").count() == 1
            page.fill("[name=size]", "32")
            page.fill("[name=iterations]", "100000")  # it runs until Stop
            page.fill("[name=optimizer]", "adam")
            page.select_option("[name=weights]", "random")
            page.select_option("[name=style_loss]", "gram")
            assert page.evaluate(DRAWN) == 0
            page.click("#run")

            _until(lambda: _version(page) >= 1, "a first picture")
            first = Image.open(io.BytesIO(page.locator("#picture").screenshot())).convert("RGB")
            shown = _version(page)
            _until(lambda: _version(page) >= shown + 5, "a newer picture")
            later = Image.open(io.BytesIO(page.locator("#picture").screenshot())).convert("RGB")
            change = ImageStat.Stat(ImageChops.difference(first, later)).mean
            assert first.size == later.size and max(change) > 0.5, change  # the picture changed

            _until(lambda: int(page.get_attribute("#chart", "data-points") or 0) > 20, "a loss curve")
            assert page.evaluate(DRAWN) > 200  # the curves are drawn on the canvas
            legend = page.inner_text("#legend")
            assert "total" in legend and "style.a" in legend and "content" in legend
            assert "Run 1: running · iteration" in page.inner_text("#status")

            page.click("#stop")
            _until(
                lambda: "state-stopped" in (page.get_attribute("#status", "class") or ""), "the run stopped"
            )
            assert "interrupted by the user" in page.inner_text("#status")
            with page.expect_download() as download:
                page.click("#download")
            saved = tmp_path / "downloaded.png"
            download.value.save_as(saved)
            assert download.value.suggested_filename == "content-styleforge-1.png"
            meta = read_metadata(saved)
            assert meta["command"] == "transfer" and meta["stop_reason"] == "interrupted"
            assert meta["content"] == "content.png" and meta["styles"] == ["a.png:1"]
            assert meta["config"]["weights"] == "random" and meta["config"]["size"] == 32
            assert Image.open(saved).size == (32, 21)
            _until(lambda: page.locator(".card").count() == 1, "the result among the results")
            assert "#1 stopped" in page.inner_text(".card")
    finally:
        server.stop_thread()
    assert not problems, problems
