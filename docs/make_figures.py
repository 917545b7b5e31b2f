"""Regenerates the pictures in docs/ from the bundled samples, with real pretrained weights.

    python docs/make_figures.py                 # --weights auto: ImageNet VGG-19, else HED's VGG-16
    python docs/make_figures.py --weights random --size 128 --iterations 80     # a quick look anywhere

Writes docs/images/transfer_grid.jpg: one row per knob that the blog post "Playing with Image Style
Transfer" plays with (content weight, style-layer weight exponent, pooling, blend ratio) plus the
optimisers and the colour options, each cell a transfer of samples/content.jpg with styleforge's defaults
but for that knob, and its final loss underneath.

    python docs/make_figures.py --demo          # docs/images/demo.png: what `make demo` makes

    python docs/make_figures.py --guided        # docs/images/guided.png instead
    python docs/make_figures.py --guided-real   # docs/images/guided_real.png: HED network, real photographs

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

from PIL import Image

import styleforge
from styleforge.guidance.config import GuidanceConfig
from styleforge.report import contact_sheet

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
SWIRL, SHAPES = str(SAMPLES / "style_swirl.jpg"), str(SAMPLES / "style_shapes.jpg")

#: (row label, [(column label, styles, options)]); every cell is the defaults but for its options.
ROWS = [
    ("content weight", [(f"{w:g}", [SWIRL], {"content_weight": w}) for w in (0.3, 1.0, 3.0)]),
    ("layer weight exp", [(f"{e:g}", [SWIRL], {"style_layer_weight_exp": e}) for e in (0.2, 1.0, 2.0)]),
    ("pooling", [(p, [SWIRL], {"pooling": p}) for p in ("max", "avg")]),
    (
        "blend swirl:shapes",
        [(f"{a:g}:{1 - a:g}", [f"{SWIRL}:{a}", f"{SHAPES}:{1 - a}"], {}) for a in (0.75, 0.5, 0.25)],
    ),
    (
        "optimizer",
        [
            (" then ".join(o), [SWIRL], {"optimizer": o})
            for o in (("lbfgs",), ("adam",), ("adam:100", "lbfgs"))
        ],
    ),
    (
        "colour",
        [
            ("as is", [SWIRL], {}),
            ("--color-transfer histogram", [SWIRL], {"color_transfer": "histogram"}),
            ("--preserve-colors", [SWIRL], {"preserve_colors": True}),
        ],
    ),
]


#: The guided figure's columns: (label, --attr values).
GUIDED = [
    ("no --attr", ()),
    ("contrast=10", ("contrast=10",)),
    ("contrast=1", ("contrast=1",)),
    ("pri_color=red", ("pri_color=red",)),
]


def guided_figure(args: argparse.Namespace) -> None:
    """docs/images/guided.png (see the module docstring)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "synth"
        styleforge.make_dataset(data, count=96, seed=0, size=64)
        models = []
        for arch in ("resnet18", "vgg19"):
            run = Path(tmp) / arch
            styleforge.train_attrs(
                data,
                run,
                backbone=arch,
                weights="random",
                size=64,
                epochs=20,
                lr=0.05,
                val_split=0.0,
                patience=0,
                seed=0,
                device="cpu",
            )
            models.append((arch, str(run)))
        cells, captions = [], []
        for _, run in models:
            row, caps = [], []
            for label, attrs in GUIDED:
                options = {"attrs_model": run, "attrs": attrs} if attrs else {}
                result = styleforge.transfer(
                    SAMPLES / "content.jpg",
                    [SWIRL],
                    size=args.size,
                    iterations=args.iterations,
                    weights="random",
                    optimizer=(args.optimizer,),
                    score_with=run,
                    **options,
                )
                scores = result.scores
                red = next(
                    (c.probability for c in scores.categorical["pri_color"].top if c.label == "red"), 0.0
                )
                row.append(result.image)
                caps.append(
                    f"contrast {scores.numeric['contrast']:.1f} · {scores.categorical['pri_color'].label}"
                    f" · red {100 * red:.0f}%"
                )
                print(f"{run} {label}: {result.summary.format()} | {caps[-1]}", flush=True)
            cells.append(row)
            captions.append(caps)
    sheet = contact_sheet(
        cells,
        row_labels=[m[0] for m in models],
        col_labels=[c[0] for c in GUIDED],
        captions=captions,
        cell_px=args.size,
        title="styleforge transfer --attrs-model RUN --attr ... · random weights · "
        f"{args.optimizer} x {args.iterations} · {args.size}px · "
        f"--attr-weight {GuidanceConfig().attr_weight:g}",
    )
    print(_save(sheet, args.out or ROOT / "docs" / "images" / "guided.png"))


#: The real-picture guided figure's columns: (label, --attr values).
GUIDED_REAL = [
    ("no --attr", ()),
    ("contrast=1", ("contrast=1",)),
    ("contrast=10", ("contrast=10",)),
    ("contrast=1:10", ("contrast=1:10",)),
    ("contrast=10:10", ("contrast=10:10",)),
]


def guided_real_figure(args: argparse.Namespace) -> None:
    """docs/images/guided_real.png: guidance by a network on HED's VGG-16 features (default trunk),
    trained on real photographs labelled by rule (benchmarks/real_pictures.py), steering transfers of
    photographs it never saw (the held-out ones). Each caption gives the network's contrast score of
    the result and, independently of any network, the rule's contrast of its pixels."""
    import sys
    import tempfile

    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from real_pictures import HELD_OUT, label, make_real_set, sources

    from styleforge.images import load_image

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "real"
        make_real_set(data, variants=16, size=96)
        run = Path(tmp) / "model"
        styleforge.train_attrs(
            data, run, backbone="vgg16", weights="hed", size=96, batch_size=16, seed=0, workers=0
        )
        cells, captions, names = [], [], []
        for name in HELD_OUT[:2]:
            content = sources()[name]
            original = load_image(content).rgb
            row = [original]
            caps = [
                f"rule {float(label(original.permute(1, 2, 0).numpy().astype(np.float64))['contrast']):.1f}"
            ]
            for column, attrs in GUIDED_REAL:
                options = {"attrs_model": str(run), "attrs": attrs} if attrs else {}
                result = styleforge.transfer(
                    content,
                    [SWIRL],
                    size=args.size,
                    iterations=args.iterations,
                    network="vgg16",
                    weights="hed",
                    optimizer=(args.optimizer,),
                    score_with=str(run),
                    seed=0,
                    **options,
                )
                pixels = result.image.permute(1, 2, 0).numpy().astype(np.float64)
                row.append(result.image)
                caps.append(
                    f"scored {result.scores.numeric['contrast']:.1f} · "
                    f"rule {float(label(pixels)['contrast']):.1f}"
                )
                print(f"{name} {column}: {result.summary.format()} | {caps[-1]}", flush=True)
            cells.append(row)
            captions.append(caps)
            names.append(name)
    sheet = contact_sheet(
        cells,
        row_labels=names,
        col_labels=["content", *(c[0] for c in GUIDED_REAL)],
        captions=captions,
        cell_px=args.size,
        title="--attr contrast=... (HED VGG-16 network, real photographs) · "
        f"{args.optimizer} x {args.iterations}",
    )
    print(_save(sheet, args.out or ROOT / "docs" / "images" / "guided_real.png"))


def demo_figure(args: argparse.Namespace) -> None:
    """docs/images/demo.png: the content, the two styles and `make demo`'s result, side by side."""
    from styleforge.images import load_image

    result = styleforge.transfer(
        SAMPLES / "content.jpg",
        [f"{SWIRL}:0.6", f"{SHAPES}:0.4"],
        size=args.size,
        weights=args.weights,
        **_overrides(args),
    )
    inputs = [load_image(path).rgb for path in (SAMPLES / "content.jpg", SWIRL, SHAPES)]
    sheet = contact_sheet(
        [[*inputs, result.image]],
        col_labels=["content.jpg", "style_swirl.jpg:0.6", "style_shapes.jpg:0.4", "make demo"],
        cell_px=args.size,
        title=f"styleforge transfer · {result.metadata['weights_used']} weights "
        f"({result.metadata['network_used']}) · defaults · {args.size}px",
    )
    print(f"{result.summary.format()}\n{_save(sheet, args.out or ROOT / 'docs' / 'images' / 'demo.png')}")


def _save(sheet: Image.Image, out: Path) -> Path:
    """Writes a figure (its folder created) and returns where (a .jpg at quality 90: a grid of
    painted textures is over 2 MB as a PNG)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, **({"quality": 90} if out.suffix.lower() in (".jpg", ".jpeg") else {}))
    return out


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The iterations/optimizer the command line set (``None``: styleforge's defaults)."""
    options: dict[str, object] = {}
    if args.iterations is not None:
        options["iterations"] = args.iterations
    if args.optimizer is not None:
        options["optimizer"] = (args.optimizer,)
    return options


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=None, help="[default: styleforge's]")
    parser.add_argument("--optimizer", default=None, help="[default: styleforge's]")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--guided", action="store_true", help="make docs/images/guided.png (attribute-guided transfer)"
    )
    parser.add_argument("--demo", action="store_true", help="make docs/images/demo.png (make demo's result)")
    parser.add_argument(
        "--guided-real",
        action="store_true",
        help="make docs/images/guided_real.png (guidance by a HED network trained on real photographs)",
    )
    args = parser.parse_args()
    if args.guided_real:
        args.iterations = args.iterations or 100
        args.optimizer = args.optimizer or "adam"
        args.size = 128 if args.size == 256 else args.size
        guided_real_figure(args)
        return
    if args.guided:
        args.iterations = args.iterations or 80
        args.optimizer = args.optimizer or "adam"
        guided_figure(args)
        return
    if args.demo:
        demo_figure(args)
        return
    args.out = args.out or ROOT / "docs" / "images" / "transfer_grid.jpg"

    cells, captions, labels = [], [], []
    used = ""
    for row_label, columns in ROWS:
        row, caps = [], []
        for col_label, styles, options in columns:
            result = styleforge.transfer(
                SAMPLES / "content.jpg",
                styles,
                size=args.size,
                weights=args.weights,
                **{**_overrides(args), **options},
            )
            used = f"{result.metadata['weights_used']} weights ({result.metadata['network_used']})"
            row.append(result.image)
            caps.append(f"{col_label} · loss {result.summary.total:.3g}")
            print(f"{row_label} = {col_label}: {result.summary.format()}", flush=True)
        cells.append(row)
        captions.append(caps)
        labels.append(row_label)
    defaults = styleforge.TransferConfig()
    sheet = contact_sheet(
        cells,
        row_labels=labels,
        captions=captions,
        cell_px=args.size,
        title=f"styleforge transfer · {used} · "
        f"{' then '.join(_overrides(args).get('optimizer', defaults.optimizer))} x "
        f"{_overrides(args).get('iterations', defaults.iterations)} · {args.size}px",
    )
    print(_save(sheet, args.out))


if __name__ == "__main__":
    main()
