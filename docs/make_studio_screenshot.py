"""Makes docs/images/studio.png, the README's picture of ``styleforge studio``, through the page itself.

    python docs/make_studio_screenshot.py                 # --weights auto: ImageNet VGG-19, else HED's VGG-16
    python docs/make_studio_screenshot.py --weights random --iterations 30    # a quick look anywhere

A studio is served on 127.0.0.1 and driven in Debian's Chromium with Playwright's Python package
(styleforge.studio.browser: no browser is downloaded), as a person would use it: the bundled samples
uploaded, the two styles blended 60:40 on their sliders, Run; then "use settings" on that result,
a higher content weight, Run again, and the picture is taken while the second run goes, its curves
drawn and the first result beside it. The PNG is reduced to 256 colours to stay small.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

from PIL import Image

from styleforge.studio.browser import browser_page, why_no_browser
from styleforge.studio.runs import Studio
from styleforge.studio.server import StudioServer

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def _until(check, what: str, seconds: float = 600.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"the page never showed {what}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="auto", help="network weights (default: auto)")
    parser.add_argument("--size", type=int, default=192, help="output long side in px (default: 192)")
    parser.add_argument("--iterations", type=int, default=60, help="iterations of each run (default: 60)")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "images" / "studio.png")
    args = parser.parse_args()
    reason = why_no_browser()
    if reason is not None:
        raise SystemExit(f"cannot drive a browser here: {reason}")

    with tempfile.TemporaryDirectory() as folder:
        server = StudioServer(Studio(Path(folder)))
        url = server.start_in_thread()
        try:
            with browser_page(1200, 940) as page:
                page.goto(url)
                page.set_input_files("#content-file", str(SAMPLES / "content.jpg"))
                page.set_input_files(
                    "#style-files", [str(SAMPLES / "style_swirl.jpg"), str(SAMPLES / "style_shapes.jpg")]
                )
                sliders = page.locator("#style-list input.blend")
                sliders.nth(0).fill("0.6")
                sliders.nth(1).fill("0.4")
                page.fill("[name=size]", str(args.size))
                page.fill("[name=iterations]", str(args.iterations))
                page.select_option("[name=weights]", args.weights)
                page.click("#run")
                _until(lambda: "state-done" in (page.get_attribute("#status", "class") or ""), "run 1 done")

                page.locator(".card button", has_text="use settings").first.click()
                page.fill("[name=content_weight]", "3")
                page.click("#run")
                _until(lambda: "Run 2: running" in page.inner_text("#status"), "run 2 running")
                most = max(2, args.iterations * 6 // 10)
                progress = "() => document.getElementById('progress').value"
                _until(lambda: page.evaluate(progress) >= most, f"run 2 at iteration {most}")
                page.wait_for_timeout(300)  # the latest picture
                shot = page.screenshot(full_page=True)
        finally:
            server.stop_thread()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(args.output, optimize=True)
    print(f"{args.output} ({args.output.stat().st_size // 1024} KB, {image.width}x{image.height})")


if __name__ == "__main__":
    main()
