"""Attribute-guided transfer on real photographs: does ``--attr contrast=...`` move the contrast of
the pixels, or only the score of the network that steers it?

Two attribute networks are trained on the labelled real-photograph set of ``real_pictures.py``
(HED's VGG-16, frozen, the default trunk; seeds 0 and 1, so they differ in their trunk and head
initialisation and their shuffle). Each held-out photograph (never seen in training) is then
transferred with ``samples/style_swirl.jpg`` without guidance and with ``--attr contrast=1`` and
``--attr contrast=10`` at each ``--attr-weight``, guided by the seed-0 network. Each result is
measured three ways:

- ``guide``: the contrast the guiding network scores it (what the term optimises);
- ``other``: the contrast the seed-1 network scores it (a judge the optimisation never saw: a score
  that moves only for the guide is an adversarial change, not a change of the picture);
- ``rule``: the contrast of its pixels by the rule the labels were made with (no network at all).

    python benchmarks/guided_real.py --threads 1                 # 3 photographs x 7 runs at 128 px
    python benchmarks/guided_real.py --threads 1 --feature-norm standard
    python benchmarks/guided_real.py --attr-weights 1 100 --photos coffee
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from real_pictures import HELD_OUT, label, make_real_set, sources  # benchmarks/ is on sys.path
from train_attrs_speed import run_and_report

from styleforge.config import FEATURE_NORMS, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
STYLE = ROOT / "samples" / "style_swirl.jpg"


def _rule(image: Any) -> float:
    """The rule's contrast of a (3, H, W) image in [0, 1]."""
    return float(label(image.permute(1, 2, 0).numpy().astype(np.float64))["contrast"])


def run(args: argparse.Namespace) -> dict[str, Any]:
    import styleforge
    from styleforge.images import load_image, save_image

    work = Path(args.work or tempfile.mkdtemp(prefix="sf-guided-real-"))
    data = work / "real"
    if not (data / "labels.csv").is_file():
        make_real_set(data, variants=args.variants, size=args.train_size)
    models = []
    for seed in (0, 1):
        out = work / f"model-{args.feature_norm}-seed{seed}"
        if not (out / "model.json").is_file():
            styleforge.train_attrs(
                data,
                out,
                backbone="vgg16",
                weights="hed",
                size=args.train_size,
                batch_size=16,
                seed=seed,
                workers=0,
                device=args.device,
                feature_norm=args.feature_norm,
            )
        models.append(out)
    guide, other = models
    cases = [("none", None, None)] + [(f"contrast={t}", t, w) for w in args.attr_weights for t in (1, 10)]
    results: dict[str, Any] = {
        "size": args.size,
        "iterations": args.iterations,
        "optimizer": args.optimizer,
        "feature_norm": args.feature_norm,
        "runs": [],
    }
    for name in args.photos:
        content = sources()[name]
        for case, target, weight in cases:
            options: dict[str, Any] = {}
            if target is not None:
                options = {"attrs_model": str(guide), "attrs": (f"contrast={target}",), "attr_weight": weight}
            result = styleforge.transfer(
                content,
                [STYLE],
                size=args.size,
                iterations=args.iterations,
                network="vgg16",
                weights="hed",
                optimizer=(args.optimizer,),
                score_with=str(guide),
                seed=0,
                device=args.device,
                **options,
            )
            saved = save_image(work / f"{args.feature_norm}-{name}-{case}-{weight}.png", result.image)
            judged = styleforge.score_images(other, [saved], device=args.device)[0]
            row = {
                "photo": name,
                "case": case,
                "target": target,
                "attr_weight": weight,
                "content_rule": _rule(load_image(content).rgb),
                "guide": result.scores.numeric["contrast"],
                "other": judged.numeric["contrast"],
                "rule": _rule(result.image),
                "content": result.summary.raw["content"],
                "total": result.summary.total,
            }
            results["runs"].append(row)
            print(row, flush=True)
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"--feature-norm {results['feature_norm']}, {results['optimizer']} x {results['iterations']}, "
        f"{results['size']} px, style_swirl; guided by the "
        "seed-0 network, judged by it (guide), by the seed-1 network (other) and by the pixel rule (rule):",
        "",
        "| photo (its rule contrast) | --attr | --attr-weight | guide | other | rule | content (raw) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        weight = "" if r["attr_weight"] is None else f"{r['attr_weight']:g}"
        lines.append(
            f"| {r['photo']} ({r['content_rule']:.1f}) | {r['case']} | {weight} | {r['guide']:.1f} | "
            f"{r['other']:.1f} | {r['rule']:.1f} | {r['content']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", nargs="+", default=list(HELD_OUT), choices=HELD_OUT)
    parser.add_argument("--attr-weights", nargs="+", type=float, default=[1.0, 10.0, 100.0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument(
        "--variants", type=int, default=16, help="pictures made from each training photograph"
    )
    parser.add_argument("--train-size", type=int, default=96)
    parser.add_argument(
        "--feature-norm", default=TrainConfig().feature_norm, choices=FEATURE_NORMS, help="of both networks"
    )
    run_and_report(parser, run, markdown)


if __name__ == "__main__":
    main()
