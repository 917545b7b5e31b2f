"""The finest grain of pictures that ``benchmarks/quality.py`` wrote: how much of each output's
luminance lies in the top frequencies, where a pixel grid or moiré shows.

For each ``FOLDER:METHOD`` the share (in %) of the luminance's power spectrum (Hann-windowed, mean
removed) above 0.35 cycles per pixel — the half-octave between a picture and one a sqrt(2) step smaller,
which the last scale of a coarse-to-fine run adds — per pair and on average::

    python benchmarks/grain.py out/r512/:content out/r512/:peer out/r512/:default

A photograph's foliage or a painting's hatching has such grain too; compare a method with the
content and with other methods on the same pairs, and look at the pictures: a grid shows as a few
strong peaks where natural texture spreads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

#: Cycles per pixel above which power counts as grain (1/(2·sqrt(2)): the finest pyramid step's band).
CUTOFF = 0.35


def grain(path: Path, cutoff: float = CUTOFF) -> float:
    """The share (%) of ``path``'s windowed luminance power above ``cutoff`` cycles per pixel."""
    luma = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0
    luma -= luma.mean()
    h, w = luma.shape
    power = np.abs(np.fft.fft2(luma * np.outer(np.hanning(h), np.hanning(w)))) ** 2
    radius = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    total = power.sum()
    return float(100.0 * power[radius > cutoff].sum() / total) if total > 0 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", nargs="+", metavar="FOLDER:METHOD", help="a quality.py --out folder and a label"
    )
    parser.add_argument("--cutoff", type=float, default=CUTOFF, help="cycles per pixel (default 0.35)")
    args = parser.parse_args(argv)
    for run in args.runs:
        folder, _, method = run.rpartition(":")
        paths = sorted(Path(folder, "outputs").glob(f"*_{method}.png"))
        if not folder or not paths:
            print(
                f"error: {run}: no {folder or '?'}/outputs/*_{method}.png; expected FOLDER:METHOD",
                file=sys.stderr,
            )
            return 2
        values = [grain(p, args.cutoff) for p in paths]
        pairs = " ".join(f"{p.name.split('_')[0]}:{v:.2f}" for p, v in zip(paths, values))
        print(f"{run}: mean {np.mean(values):.2f} %  ({pairs})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
