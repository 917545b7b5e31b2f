"""The GPU benchmark's dry run: the code that fills benchmarks/README.md's GPU table runs end to end on
the CPU at tiny sizes, so that a GPU session only has to run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_dry_run_fills_every_row(tmp_path: Path, hed_weights) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/gpu.py"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "1", **_env()},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {(r["mode"], r["size"]) for r in rows} == {(m, s) for m in ("fp32", "bf16") for s in (32, 48)}
    for row in rows:
        assert row["s_per_iter"] > 0 and row["bare_s"] > 0 and row["peak_mb"] > 0
    assert out.stdout.count("\n| fp32 |") == 2 and out.stdout.count("\n| bf16 |") == 2


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


def test_grain_counts_a_pixel_grid_and_not_a_smooth_picture(tmp_path: Path) -> None:
    """benchmarks/grain.py: a one-pixel checkerboard is all grain, a smooth gradient almost none, and a
    folder without the method's outputs is a one-line error."""
    import numpy as np
    from PIL import Image

    outputs = tmp_path / "run" / "outputs"
    outputs.mkdir(parents=True)
    yy, xx = np.mgrid[:48, :64]
    checker = ((yy + xx) % 2 * 255).astype(np.uint8)
    smooth = (xx * 4).astype(np.uint8)
    Image.fromarray(checker).save(outputs / "1_a_b_grid.png")
    Image.fromarray(smooth).save(outputs / "1_a_b_smooth.png")
    script = str(ROOT / "benchmarks/grain.py")
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, script, f"{run}:grid", f"{run}:smooth"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    grid, flat = (float(line.split("mean ")[1].split(" %")[0]) for line in out.stdout.splitlines())
    assert grid > 90 and flat < 1
    missing = subprocess.run(
        [sys.executable, script, f"{run}:nothing"], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "nothing" in missing.stderr
