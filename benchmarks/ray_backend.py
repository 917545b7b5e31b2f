"""``--backend ray`` against one process: many pictures, and a video in chunks.

A local Ray instance of ``--workers`` CPUs is started here (one worker a core, one thread each) and the
commands connect to it through ``RAY_ADDRESS``, as they would to a cluster; the time it takes to
start is reported apart. Every command runs as a user runs it (``python -m styleforge`` in a
subprocess: start-up, weights, networks, writes).

- **Pictures**: ``styleforge transfer PICTURES... -o FOLDER`` in one process (its default threads, and
  one thread), and with ``--backend ray``; wall time, and the largest pixel difference between the
  local run's outputs and the cluster's (0: the same pixels).
- **Video**: ``styleforge video CLIP -o FOLDER --history`` in one process and with ``--backend ray``
  (the clip cut into chunks that share frames, the default plan for the workers); the flicker of each
  frame from the one before (the warping error by the input's flow) at the joins against elsewhere,
  and against the unchunked run, and the wall times.

With ``--model DIR`` (a ``train-stylizer`` folder) both run the pictures and the frames through that
model instead (``transfer --model``, ``video --model``): the time a cluster saves, or costs, when each
picture takes a few hundredths of a second.

The pictures are crops of the bundled samples (a landscape photograph-like picture and two
paintings' textures); the clip is a slow pan with a zoom over ``samples/content.jpg``.

    python benchmarks/ray_backend.py                                  # random weights, 64 px: pixels, joins
    python benchmarks/ray_backend.py --weights hed --size 128 --iterations 50 --skip-video   # the timing
    python benchmarks/ray_backend.py --model out/ff/model_vangogh --pictures 32 --size 512 --frames 96
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def crops(count: int, size: int, folder: Path) -> list[Path]:
    """``count`` pictures cut from the samples at different places, long side ``size``, as PNGs."""
    from PIL import Image

    sources = [Image.open(SAMPLES / name).convert("RGB") for name in ("content.jpg", "style_shapes.jpg")]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = sources[i % 2]
        w, h = image.size
        x0, y0 = (i * 37) % (w // 3), (i * 23) % (h // 3)
        crop = image.crop((x0, y0, x0 + 2 * w // 3, y0 + 2 * h // 3))
        crop.thumbnail((size, size))
        paths.append(folder / f"picture{i:02d}.png")
        crop.save(paths[-1])
    return paths


def pan(frames: int, size: int, folder: Path) -> Path:
    """A pan left to right with a 10 % zoom over ``samples/content.jpg``: ``frames`` PNGs, long side
    ``size``."""
    from PIL import Image

    photo = Image.open(SAMPLES / "content.jpg").convert("RGB")
    w, h = photo.size
    shape = (size, round(h * size / w))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        t = i / max(1, frames - 1)
        scale = 0.8 - 0.08 * t
        x0, y0 = (w - w * scale) * (0.15 + 0.5 * t), (h - h * scale) * 0.5
        box = (x0, y0, x0 + w * scale, y0 + h * scale)
        photo.resize(shape, Image.LANCZOS, box=box).save(folder / f"{i + 1:04d}.png")
    return folder


def styleforge(args: list[object], env: dict[str, str]) -> float:
    """Runs ``python -m styleforge ARGS``; its wall time."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "styleforge", *map(str, args)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"styleforge {' '.join(map(str, args[:2]))} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def differences(a: Path, b: Path, names: list[str]) -> tuple[int, float]:
    """The largest and the mean absolute pixel difference (0..255) between the pictures ``names`` of
    folders ``a`` and ``b``."""
    from PIL import Image

    diffs = [
        np.abs(np.asarray(Image.open(a / n), np.int16) - np.asarray(Image.open(b / n), np.int16))
        for n in names
    ]
    return max(int(d.max()) for d in diffs), float(np.mean([d.mean() for d in diffs]))


def flicker_column(history: Path) -> list[float | None]:
    with history.open() as handle:
        return [float(r["flicker"]) if r["flicker"] else None for r in csv.DictReader(handle)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--weights", default="random")
    parser.add_argument("--precision", default="auto", help="auto: bf16 on a CPU that has it natively")
    parser.add_argument("--pictures", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--video-size", type=int, default=64)
    parser.add_argument("--video-iterations", type=int, default=40, help="the first frame of each chunk")
    parser.add_argument("--frame-iterations", type=int, default=20)
    parser.add_argument("--skip-pictures", action="store_true")
    parser.add_argument("--skip-video", action="store_true")
    parser.add_argument("--model", type=Path, default=None, help="a train-stylizer folder: --model runs")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import ray

    work = Path(tempfile.mkdtemp(prefix="sf-ray-"))
    start = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    env.pop("OMP_NUM_THREADS", None)  # one process: torch's default threads (the cores); a worker: Ray's 1
    one_thread = {**env, "OMP_NUM_THREADS": "1"}
    if args.model is not None:
        common: list[object] = ["--model", args.model, "--device", "cpu", "--quiet"]
        optimised: list[object] = []
    else:
        common = ["--style", SAMPLES / "style_swirl.jpg", "--weights", args.weights, "--device", "cpu"]
        common += ["--quiet", "--precision", args.precision]
        optimised = ["--optimizer", "adam"]
    report: dict[str, object] = {"ray_start_s": ray_start, "args": {k: str(v) for k, v in vars(args).items()}}
    print(
        f"local Ray instance of {args.workers} CPUs started in {ray_start:.1f} s; weights {args.weights}, "
        f"precision {args.precision}"
    )

    if not args.skip_pictures:
        pictures = crops(args.pictures, 2 * args.size, work / "pictures")
        options = [*common, "--size", args.size, *optimised]
        options += ["--iterations", args.iterations] if optimised else []
        local = styleforge(["transfer", *pictures, "-o", work / "local", *options], env)
        local_1 = styleforge(["transfer", *pictures, "-o", work / "local1", *options], one_thread)
        spread = styleforge(["transfer", *pictures, "-o", work / "ray", *options, "--backend", "ray"], env)
        again = styleforge(["transfer", *pictures, "-o", work / "ray", *options, "--backend", "ray"], env)
        names = [p.stem + ".png" for p in pictures]
        diff = differences(work / "local", work / "ray", names)
        diff_1 = differences(work / "local1", work / "ray", names)
        report["pictures"] = {
            "local_s": local,
            "local_1_thread_s": local_1,
            "ray_s": spread,
            "ray_again_s": again,
            "difference": diff,
            "difference_1_thread": diff_1,
        }
        how = f"through {args.model}" if args.model else f"Adam x {args.iterations}"
        print(f"\n{args.pictures} pictures, {args.size} px, {how}\n")
        print("| run (torch threads) | wall (s) | s / picture | pixel difference to the Ray run: max, mean |")
        print("|---|---|---|---|")
        rows = [
            (f"one process ({os.cpu_count()})", local, f"{diff[0]}, {diff[1]:.2f}"),
            ("one process (1)", local_1, f"{diff_1[0]}, {diff_1[1]:.2f}"),
            (f"--backend ray, {args.workers} workers (1 each)", spread, "—"),
        ]
        for name, seconds, diff_text in rows:
            print(f"| {name} | {seconds:.1f} | {seconds / args.pictures:.1f} | {diff_text} |")
        print(f"| --backend ray again (all finished: skipped) | {again:.1f} | — | — |")

    if not args.skip_video:
        clip = pan(args.frames, 2 * args.video_size, work / "clip")
        options = [*common, "--size", args.video_size, *optimised]
        if optimised:
            options += ["--iterations", args.video_iterations, "--frame-iterations", args.frame_iterations]
            options += ["--temporal-weight", 30]  # the weight benchmarks/README.md's table was measured at

        def video(name: str, run_env: dict[str, str], *extra: str) -> float:
            out = ["-o", work / name, "--history", work / f"{name}.csv"]
            return styleforge(["video", clip, *out, *options, *extra], run_env)

        local, local_1 = video("vlocal", env), video("vlocal1", one_thread)
        spread = video("vray", env, "--backend", "ray")
        from styleforge.images import read_metadata

        plan = read_metadata(work / "vray" / "frame_00001.png")["video"]["run"]["chunks"]
        joins = {f for first, last, shared in plan if shared for f in range(first, first + shared + 1)}
        ours, theirs = flicker_column(work / "vray.csv"), flicker_column(work / "vlocal1.csv")
        at_joins = [ours[f - 1] for f in sorted(joins)]
        elsewhere = [v for f, v in enumerate(ours, start=1) if f not in joins and v is not None]
        unchunked = [v for v in theirs if v is not None]
        report["video"] = {
            "local_s": local,
            "local_1_thread_s": local_1,
            "ray_s": spread,
            "chunks": plan,
            "flicker_ray": ours,
            "flicker_local": theirs,
        }
        how = (
            f"through {args.model} (--frame-blend 0.5)"
            if args.model
            else f"Adam x {args.video_iterations} (a chunk's first frame) / x {args.frame_iterations} "
            "(the others)"
        )
        print(
            f"\n{args.frames}-frame pan, {args.video_size} px, {how}; chunks {plan} (first, last, shared)\n"
        )
        print("| run (torch threads) | wall (s) | flicker: mean | max | at the joins: mean | max |")
        print("|---|---|---|---|---|---|")
        rows = [
            (f"one process ({os.cpu_count()})", local, "—", "—", "—", "—"),
            ("one process (1)", local_1, np.mean(unchunked), max(unchunked), "—", "—"),
            (
                f"--backend ray, {args.workers} workers (1 each)",
                spread,
                f"{np.mean(elsewhere):.5f} (elsewhere)",
                max(elsewhere),
                f"{np.mean(at_joins):.5f}",
                f"{max(at_joins):.5f}",
            ),
        ]
        for name, seconds, *figures in rows:
            cells = " | ".join(f if isinstance(f, str) else f"{f:.5f}" for f in figures)
            print(f"| {name} | {seconds:.1f} | {cells} |")
    ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
