"""Regenerates the pictures in docs/ from the bundled samples.

    python docs/make_figures.py                 # seeded random VGG weights (runs anywhere)
    python docs/make_figures.py --weights imagenet --size 384 --iterations 300

Writes docs/images/transfer_grid.png: one row per knob that seed 002 plays with (content weight,
style-layer weight exponent, pooling, blend ratio), each cell a transfer of samples/content.jpg with
its final loss underneath.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import styleforge
from styleforge.report import contact_sheet

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SWIRL, SHAPES = str(SAMPLES / "style_swirl.jpg"), str(SAMPLES / "style_shapes.jpg")

#: (row label, [(column label, styles, options)]).
ROWS = [
    ("content weight", [(f"{w:g}", [SWIRL], {"content_weight": w}) for w in (1.0, 30.0, 300.0)]),
    ("layer weight exp", [(f"{e:g}", [SWIRL], {"style_layer_weight_exp": e}) for e in (0.2, 1.0, 2.0)]),
    ("pooling", [(p, [SWIRL], {"pooling": p}) for p in ("max", "avg")]),
    (
        "blend swirl:shapes",
        [(f"{a:g}:{1 - a:g}", [f"{SWIRL}:{a}", f"{SHAPES}:{1 - a}"], {}) for a in (0.75, 0.5, 0.25)],
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "transfer_grid.png")
    args = parser.parse_args()

    cells, captions, labels = [], [], []
    for row_label, columns in ROWS:
        row, caps = [], []
        for col_label, styles, options in columns:
            result = styleforge.transfer(
                SAMPLES / "content.jpg", styles, size=args.size, iterations=args.iterations,
                weights=args.weights, optimizer=(args.optimizer,), **options,
            )
            row.append(result.image)
            caps.append(f"{col_label} · loss {result.summary.total:.3g}")
            print(f"{row_label} = {col_label}: {result.summary.format()}", flush=True)
        cells.append(row)
        captions.append(caps)
        labels.append(row_label)
    sheet = contact_sheet(
        cells, row_labels=labels, captions=captions, cell_px=args.size,
        title=f"styleforge transfer · {args.weights} weights · {args.optimizer} x {args.iterations} · {args.size}px",
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
