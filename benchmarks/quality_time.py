"""Judged quality against seconds: one curve per family of ``benchmarks/quality.py`` variants.

Reads the ``results.json`` of one or more quality runs (the same pairs), averages each variant's
measures over the pairs, groups the variants into families by ``FAMILY=LABEL,LABEL,...`` (in the
order of their budgets) and plots the style distance, the EfficientNet style distance and SSIM
against the mean seconds per pair, with the peer as a point. Prints the points as a Markdown table.

    python benchmarks/quality_time.py out/q256_new/results.json out/q256_old/results.json \\
        --family new=new50,new100,new150,new300 --family old=old50,old100,old200 \\
        -o docs/images/quality_time.png \\
        --sheet benchmarks/images/quality_report_256.jpg --columns content,style,peer,old200,new150

``--sheet`` also lays the pictures of ``--columns`` side by side, one row per pair (the methods may come
from different runs of the same pairs), with each one's measures, as a JPEG for the docs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/quality.py: the sheet and its labels

MEASURES = (
    ("style_distance", "style distance (peer's vector) ↓"),
    ("style_dist_eff", "style distance (EfficientNet) ↓"),
    ("ssim", "SSIM with the content ↑"),
)


def means(paths: list[Path]) -> dict[str, dict[str, float]]:
    """Method → its measures and seconds averaged over the pairs (the peer from the first file)."""
    rows: list[dict[str, Any]] = []
    for i, path in enumerate(paths):
        rows += [r for r in json.loads(path.read_text())["rows"] if i == 0 or r["method"] != "peer"]
    out: dict[str, dict[str, float]] = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out[method] = {
            key: float(np.mean([r[key] for r in mine])) for key in (*(m for m, _ in MEASURES), "seconds")
        }
        out[method]["pairs"] = len(mine)
    return out


def sheet(paths: list[Path], columns: list[str], out: Path) -> Path:
    """The pictures of ``columns`` (methods, from whichever results file has them), a row per pair."""
    import quality
    from PIL import Image

    found: dict[tuple[int, str], dict[str, Any]] = {}
    pairs: dict[int, Any] = {}
    for path in paths:
        for row in json.loads(path.read_text())["rows"]:
            found.setdefault((row["pair"], row["method"]), {**row, "file": path.parent / row["image"]})
            pairs[row["pair"]] = quality.Pair(
                row["pair"], row.get("set", ""), row["content"], row["style"], Path(), Path()
            )
    order = sorted(pairs)
    images = [{m: Image.open(found[(p, m)]["file"]).convert("RGB") for m in columns} for p in order]
    rows = [found[(p, m)] for p in order for m in columns]
    return quality.save_jpeg(out, quality.contact_sheet([pairs[p] for p in order], images, rows, tile=180))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("--family", action="append", default=[], metavar="NAME=LABEL,LABEL,...")
    parser.add_argument("-o", "--out", type=Path, required=True)
    parser.add_argument("--sheet", type=Path, default=None, help="a contact sheet of --columns (JPEG)")
    parser.add_argument(
        "--columns", default="content,style,peer", help="methods of the sheet, comma-separated"
    )
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = means(args.results)
    families = {name: labels.split(",") for name, labels in (f.split("=", 1) for f in args.family)}
    print(
        "| family | variant | s / pair | style dist ↓ | style dist eff ↓ | SSIM ↑ |\n"
        "|---|---|---|---|---|---|"
    )
    for name, labels in {**families, "peer": ["peer"]}.items():
        for label in labels:
            d = data[label]
            print(
                f"| {name} | {label} | {d['seconds']:.1f} | {d['style_distance']:.3f} | "
                f"{d['style_dist_eff']:.3f} | "
                f"{d['ssim']:.3f} |"
            )
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(4.2 * len(MEASURES), 3.6))
    for ax, (key, title) in zip(axes, MEASURES):
        for name, labels in families.items():
            xs, ys = [data[label]["seconds"] for label in labels], [data[label][key] for label in labels]
            ax.plot(xs, ys, marker="o", label=name)
            for label, x, y in zip(labels, xs, ys):
                ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        peer = data["peer"]
        ax.scatter(
            [max(peer["seconds"], 0.1)], [peer[key]], marker="*", s=120, color="black", label="peer", zorder=3
        )
        ax.set_xscale("log")
        ax.set_xlabel("seconds per pair (log)")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"\nwrote {args.out}")
    if args.sheet is not None:
        print(f"wrote {sheet(args.results, args.columns.split(','), args.sheet)}")


if __name__ == "__main__":
    main()
