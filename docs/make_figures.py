"""Regenerates the pictures in docs/ from the bundled samples.

    python docs/make_figures.py                 # seeded random VGG weights (runs anywhere)
    python docs/make_figures.py --weights imagenet --size 384 --iterations 300

Writes docs/images/transfer_grid.png: one row per knob that seed 002 plays with (content weight,
style-layer weight exponent, pooling, blend ratio), each cell a transfer of samples/content.jpg with
its final loss underneath.

    python docs/make_figures.py --guided        # docs/images/guided.png instead

Writes docs/images/guided.png: attribute-guided transfer. Two tiny attribute networks are trained on
a synthetic data set (make-dataset, seeded random weights), then the same seeded transfer runs
without --attr and with --attr contrast=10, contrast=1 and a pri_color target at the default
--attr-weight; each cell is captioned with the network's scores of the result (--score-with).
Row 1: a ResNet-18 network; row 2: a VGG-19 network with the transfer's own weights. Both run their
backbone on the image squashed to the model's 64 px (the transfer's image is not square at that
size, so the VGG-19 network does not share the transfer's pass: see docs/attributes.md).
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


#: The guided figure's columns: (label, --attr values).
GUIDED = [("no --attr", ()), ("contrast=10", ("contrast=10",)), ("contrast=1", ("contrast=1",)),
          ("pri_color=red", ("pri_color=red",))]


def guided_figure(args: argparse.Namespace) -> None:
    """docs/images/guided.png (see the module docstring)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth"
        styleforge.make_dataset(data, count=96, seed=0, size=64)
        models = []
        for arch in ("resnet18", "vgg19"):
            run = Path(tmp) / arch
            styleforge.train_attrs(data, run, backbone=arch, weights="random", size=64, epochs=20, lr=0.05,
                                   val_split=0.0, patience=0, seed=0, device="cpu")
            models.append((arch, str(run)))
        cells, captions = [], []
        for _, run in models:
            row, caps = [], []
            for label, attrs in GUIDED:
                options = {"attrs_model": run, "attrs": attrs} if attrs else {}
                result = styleforge.transfer(
                    SAMPLES / "content.jpg", [SWIRL], size=args.size, iterations=args.iterations, weights="random",
                    optimizer=(args.optimizer,), score_with=run, **options,
                )
                scores = result.scores
                red = next((c.probability for c in scores.categorical["pri_color"].top if c.label == "red"), 0.0)
                row.append(result.image)
                caps.append(f"contrast {scores.numeric['contrast']:.1f} · {scores.categorical['pri_color'].label}"
                            f" · red {100 * red:.0f}%")
                print(f"{run} {label}: {result.summary.format()} | {caps[-1]}", flush=True)
            cells.append(row)
            captions.append(caps)
    sheet = contact_sheet(
        cells, row_labels=[m[0] for m in models], col_labels=[c[0] for c in GUIDED], captions=captions, cell_px=args.size,
        title=f"styleforge transfer --attrs-model RUN --attr ... · random weights · {args.optimizer} x {args.iterations} · "
              f"{args.size}px · --attr-weight {styleforge.TransferConfig().attr_weight:g}",
    )
    out = args.out or ROOT / "docs" / "images" / "guided.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="random")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=80)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--guided", action="store_true", help="make docs/images/guided.png (attribute-guided transfer)")
    args = parser.parse_args()
    if args.guided:
        guided_figure(args)
        return
    args.out = args.out or ROOT / "docs" / "images" / "transfer_grid.png"

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
