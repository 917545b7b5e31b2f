"""Start-up of a transfer: from the command to its first iteration, and where the time goes.

Each measurement runs in a fresh Python process (nothing imported or cached in memory; the weights
already in the torch cache, as after a first run), ``--repeats`` times, and the medians are printed:

- **command**: ``styleforge transfer CONTENT --style STYLE --size SIZE --iterations 1 -o OUT`` timed
  from outside, end to end (process start, imports, weights, network, targets, one evaluation, the
  PNG written);
- **breakdown**, inside one process: importing torch, importing styleforge (the package and its CLI),
  the weights read from the cache, the network built, the images read and checked, the style
  statistics and content targets of the first scale, and the first evaluation (the first
  :class:`~styleforge.engine.Progress` event).

    python benchmarks/startup.py                   # 256 px, HED's VGG-16, 5 repeats
    python benchmarks/startup.py --size 512 --weights hed
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTENT, STYLE = ROOT / "samples/content.jpg", ROOT / "samples/style_swirl.jpg"

#: Runs in a fresh interpreter and prints the phases' end times (seconds since its start) as JSON.
PHASES = r"""
import json, sys, time
start = time.perf_counter()
marks = {}
import torch
marks["import torch"] = time.perf_counter()
import styleforge, styleforge.cli
from styleforge.engine import Progress
from styleforge.stylize import run as run_module
marks["import styleforge"] = time.perf_counter()
size, weights, content, style = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
resolve, network = run_module.resolve_weights, run_module.VGGFeatures
prepare, targets = run_module.Stylizer.prepare, run_module.Stylizer._targets
def timed(name, fn):
    def wrapper(*args, **kwargs):
        result = fn(*args, **kwargs)
        marks.setdefault(name, time.perf_counter())
        return result
    return wrapper
run_module.resolve_weights = timed("weights read", resolve)
run_module.VGGFeatures = timed("network built", network)
run_module.Stylizer.prepare = timed("images read and checked", prepare)
run_module.Stylizer._targets = timed("style statistics", targets)
first = []
def first_evaluation(event):
    if isinstance(event, Progress) and not first:
        first.append(time.perf_counter())
styleforge.transfer(content, [style], size=size, weights=weights, iterations=1, callbacks=[first_evaluation])
marks["first evaluation"] = first[0]
print(json.dumps({k: v - start for k, v in marks.items()}))
"""


def command_seconds(size: int, weights: str) -> float:
    """The transfer command end to end, one iteration, in a fresh process."""
    with tempfile.TemporaryDirectory() as folder:
        cmd = [
            sys.executable,
            "-m",
            "styleforge",
            "transfer",
            str(CONTENT),
            "--style",
            str(STYLE),
            "--size",
            str(size),
            "--iterations",
            "1",
            "--weights",
            weights,
            "--quiet",
            "-o",
            str(Path(folder) / "out.png"),
        ]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return time.perf_counter() - start


def phases(size: int, weights: str) -> dict[str, float]:
    """Seconds from the interpreter's start to the end of each phase, in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", PHASES, str(size), weights, str(CONTENT), str(STYLE)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--weights", default="hed")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    phases(args.size, args.weights)  # fills the weights cache and the OS's file cache
    commands = [command_seconds(args.size, args.weights) for _ in range(args.repeats)]
    runs = [phases(args.size, args.weights) for _ in range(args.repeats)]
    order = sorted(runs[0], key=runs[0].get)
    ends = {name: statistics.median(run[name] for run in runs) for name in order}
    print(f"# start-up, {args.size} px, --weights {args.weights}, median of {args.repeats} fresh processes\n")
    print(f"command to the written PNG (one iteration): {statistics.median(commands):.2f} s\n")
    print("| phase | seconds | ends at |\n|---|---|---|")
    previous = 0.0
    for name, end in ends.items():
        print(f"| {name} | {end - previous:.2f} | {end:.2f} |")
        previous = end


if __name__ == "__main__":
    main()
