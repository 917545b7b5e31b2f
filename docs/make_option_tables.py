"""Writes the options tables of the docs from the options' declarations.

    python docs/make_option_tables.py            # rewrites the tables in docs/*.md
    python docs/make_option_tables.py --check    # exits 1 when a committed table differs

Each option is declared once, in its configuration class (styleforge/config.py,
styleforge/guidance/config.py, styleforge/feedforward/config.py); a table between the lines
``<!-- options NAME ... -->`` and ``<!-- end of options -->`` of a docs page is that class's
:func:`styleforge.option.markdown_table`. tests/test_options.py holds the committed pages equal to
what this writes.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from styleforge.config import DatasetConfig, ScoreConfig, TrainConfig, TransferConfig, VideoConfig
from styleforge.feedforward.config import StylizerConfig
from styleforge.guidance.config import GuidanceConfig
from styleforge.option import markdown_table

ROOT = Path(__file__).resolve().parents[1]
#: The name a marker gives → the configuration whose table goes there.
TABLES = {
    "transfer": TransferConfig,
    "guidance": GuidanceConfig,
    "video": VideoConfig,
    "make-dataset": DatasetConfig,
    "train-attrs": TrainConfig,
    "train-stylizer": StylizerConfig,
    "score": ScoreConfig,
}
#: The pages that hold tables.
PAGES = [ROOT / "docs" / name for name in ("transfer.md", "video.md", "attributes.md", "feedforward.md")]

_BLOCK = re.compile(r"(<!-- options ([\w-]+) [^\n]*-->\n)(.*?)(<!-- end of options -->)", re.DOTALL)


def render(text: str) -> str:
    """``text`` (a docs page) with every marked table written from its declarations.

    Raises:
        KeyError: A marker names no configuration of :data:`TABLES`.
    """
    return _BLOCK.sub(lambda m: m.group(1) + markdown_table(TABLES[m.group(2)]) + m.group(4), text)


def marked(text: str) -> list[str]:
    """The names of the tables a docs page marks, in order."""
    return [m.group(2) for m in _BLOCK.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which pages differ (exit 1)")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text()
        new = render(text)
        if new != text:
            stale.append(page)
            if not args.check:
                page.write_text(new)
    for page in stale:
        print(f"{page.relative_to(ROOT)}: {'differs' if args.check else 'rewritten'}")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
