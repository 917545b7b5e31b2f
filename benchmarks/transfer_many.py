"""``styleforge transfer`` over several content images: one command against one command per image.

Each configuration is timed end to end as a user runs it (``python -m styleforge transfer ...`` in a
subprocess: start-up, weights, network, style statistics, the optimisation, the writes):

- ``one at a time``: one command per content image;
- ``one command``: ``transfer IMG1 IMG2 ... -o FOLDER`` (the network and the style statistics once).

The outputs of the two are compared pixel by pixel (they must be the same images).

    python benchmarks/transfer_many.py                        # 4 photographs, 256 px, Adam x 50, HED weights
    python benchmarks/transfer_many.py --count 8 --size 128 --iterations 100

Needs scikit-image (``pip install -e '.[bench]'``) for the photographs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "hubble_deep_field", "retina", "ihc")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=4, choices=range(1, len(PHOTOS) + 1))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--weights", default="hed")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads of each command (OMP_NUM_THREADS)"
    )
    return parser


def main() -> None:
    args = _parser().parse_args()

    import os

    import skimage.data
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="sf-many-"))
    contents = []
    for name in PHOTOS[: args.count]:
        path = work / "in" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(getattr(skimage.data, name)())[..., :3]).save(path)
        contents.append(path)
    common = [
        "--style",
        str(ROOT / "samples" / "style_swirl.jpg"),
        "--size",
        str(args.size),
        "--iterations",
        str(args.iterations),
        "--optimizer",
        "adam",
        "--network",
        "vgg16",
        "--weights",
        args.weights,
        "--device",
        "cpu",
        "--quiet",
    ]
    env = {**os.environ, **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}

    def run(*extra: object) -> float:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "styleforge", "transfer", *map(str, extra), *common],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        return time.perf_counter() - t

    single = sum(run(c, "-o", work / "single" / f"{c.stem}.png") for c in contents)
    many = run(*contents, "-o", work / "many")
    diffs = [
        float(
            np.abs(
                np.asarray(Image.open(work / "single" / f"{c.stem}.png"), dtype=np.int16)
                - np.asarray(Image.open(work / "many" / f"{c.stem}.png"), dtype=np.int16)
            ).max()
        )
        for c in contents
    ]
    print(
        f"\n{args.count} photographs, {args.size} px, Adam x {args.iterations}, --weights {args.weights}, "
        f"threads {args.threads or 'default'}\n"
    )
    print("| run | seconds | s / image |\n|---|---|---|")
    print(f"| one command per image | {single:.1f} | {single / args.count:.1f} |")
    print(f"| one command, {args.count} images | {many:.1f} | {many / args.count:.1f} |")
    print(f"\nlargest pixel difference between the two outputs of an image (0..255): {max(diffs):.0f}")


if __name__ == "__main__":
    main()
