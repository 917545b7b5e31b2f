"""Video flicker: the temporal term against independent frames, with HED's pretrained VGG-16.

The clip is a slow pan with a gentle zoom over a real photograph (``skimage.data``), ``--frames``
frames at ``--size`` px. Each variant stylises it with styleforge's defaults plus the variant's:

- ``independent``: every frame an ordinary transfer from its own content (what a loop over
  ``styleforge transfer`` gives), ``--iterations`` each;
- ``temporal W``: ``styleforge video`` with ``--temporal-weight W`` (0: only the start from the
  previous output warped), the first frame ``--iterations``, the others ``--frame-iterations``.

Measures, per variant:

- **flicker**: the mean warping error between consecutive output frames (mean squared difference
  of frame t and frame t-1 warped by the *input's* optical flow, over the pixels where that flow is
  reliable; Lai et al. 2018), and the same ratio to the input clip's own warping error (what the
  flow cannot explain even without stylisation);
- **s/frame**: seconds per frame after the first;
- **content, style**: the mean raw content and style terms of the frames after the first (what the
  temporal term costs the transfer itself; raw values are the unweighted terms).

``--strip`` writes a picture (rows: input, independent, then every temporal weight run, the default's
marked in the printed legend; every other frame), and beside it ``<strip>_flicker`` (the same
format): for the same rows and frames, where each frame differs from the one before it warped by the
input's motion (the absolute difference where that motion is reliable, ×4, white = 0.25 or more; the
first frame has no previous one and stays black). A ``.jpg`` path gives JPEGs (quality 90).

    python benchmarks/video.py                  # 8 frames at 192 px, weights 0 10 30 100
    python benchmarks/video.py --photo astronaut --weights 30 100 300 --strip docs/images/video_strip.jpg

Needs scikit-image (``pip install -e '.[bench]'``) for the photograph.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def pan_clip(name: str, frames: int, size: int) -> list[np.ndarray]:
    """A pan left to right with a 10 % zoom over ``skimage.data.<name>``, (H, W, 3) uint8 frames
    with long side ``size``."""
    import skimage.data
    from PIL import Image

    photo = Image.fromarray(np.asarray(getattr(skimage.data, name)())[..., :3])
    w, h = photo.size
    shape = (size, round(h * size / w)) if w >= h else (round(w * size / h), size)
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        window = 0.8 - 0.08 * t  # the window shrinks: a zoom in
        cw, ch = w * window, h * window
        x0 = (w - cw) * (0.15 + 0.5 * t)
        y0 = (h - ch) * 0.5
        out.append(np.asarray(photo.resize(shape, Image.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))))
    return out


def motions(inputs: list) -> list:
    """The input clip's motion between each frame (3, H, W) and the next, computed once per clip."""
    from styleforge.video.flow import motion

    return [motion(x, y) for x, y in zip(inputs, inputs[1:])]


def flicker(frames: list, moves: list) -> float:
    """Mean warping error between consecutive frames (3, H, W) by the input's motion (:func:`motions`)."""
    from styleforge.video.flow import warping_error

    errors = [warping_error(a, b, move) for a, b, move in zip(frames, frames[1:], moves)]
    return sum(errors) / len(errors)


def _flicker_map(previous_out: Any, current_out: Any, move: Any) -> np.ndarray:
    """Where ``current_out`` differs from ``previous_out`` warped by the input's motion: (H, W) uint8,
    the mean absolute difference over channels ×4 where the motion is reliable, 0 elsewhere."""
    from styleforge.video.flow import warping_difference

    difference = warping_difference(previous_out, current_out, move).abs().mean(0)
    return (difference.clamp(0, 0.25) * 4 * 255).round().byte().numpy()


def _label(weight: float) -> str:
    """A temporal variant's name in the table, the JSON and the strip."""
    return f"temporal {weight:g}"


def _terms(summaries: list) -> tuple[float, float]:
    content = [s.raw["content"] for s in summaries]
    style = [sum(v for k, v in s.raw.items() if k.startswith("style.")) for s in summaries]
    return float(np.mean(content)), float(np.mean(style))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", default="chelsea", help="skimage.data photograph")
    parser.add_argument("--style", type=Path, default=ROOT / "samples/style_swirl.jpg")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument(
        "--iterations", type=int, default=200, help="first frame (and every independent frame)"
    )
    parser.add_argument("--frame-iterations", type=int, default=100)
    parser.add_argument("--weights", type=float, nargs="+", default=[0, 10, 30, 100], help="temporal weights")
    parser.add_argument(
        "--default-weight",
        type=float,
        default=None,
        help="the weight the strip's printed legend marks as the default [default: the config's]",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--strip", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    return parser


def main() -> None:
    args = _parser().parse_args()

    import torch
    from PIL import Image

    from styleforge.config import TransferConfig
    from styleforge.video import open_frames

    if args.threads:
        torch.set_num_threads(args.threads)
    config = TransferConfig(weights="hed", size=args.size, iterations=args.iterations, memory_check=False)
    work = Path(tempfile.mkdtemp(prefix="styleforge-video-"))
    (work / "in").mkdir()
    for i, frame in enumerate(pan_clip(args.photo, args.frames, args.size), start=1):
        Image.fromarray(frame).save(work / "in" / f"{i:03d}.png")
    source = open_frames(work / "in")
    inputs = [f.rgb for f in source]
    moves = motions(inputs)
    base = flicker(inputs, moves)
    outputs: dict[str, list] = {}
    rows = [_independent(args, config, source, moves, outputs)]
    for weight in args.weights:
        rows.append(_temporal(args, config, weight, source, moves, outputs, work))
    _print_table(args, config, base, rows)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"input_flicker": base, "rows": rows, "args": {k: str(v) for k, v in vars(args).items()}},
                indent=2,
            )
        )
    if args.strip:
        _write_strip(args, inputs, moves, outputs)


def _row(variant: str, frames: list, moves: list, seconds: list[float], summaries: list) -> dict:
    """One variant's row: its flicker, seconds per frame and raw terms after the first frame."""
    content, style = _terms(summaries)
    return {
        "variant": variant,
        "flicker": flicker(frames, moves),
        "s_per_frame": float(np.mean(seconds)),
        "content": content,
        "style": style,
    }


def _independent(args: argparse.Namespace, config: Any, source: Any, moves: list, outputs: dict) -> dict:
    """Every frame an ordinary transfer from its own content; its frames go into ``outputs``."""
    from styleforge.stylize.run import Stylizer

    stylizer = Stylizer([str(args.style)], config)
    start, times, frames, summaries = time.perf_counter(), [], [], []
    for frame in source:
        t = time.perf_counter()
        result = stylizer.run(frame)
        times.append(time.perf_counter() - t)
        frames.append(result.image)
        summaries.append(result.summary)
    outputs["independent"] = frames
    row = _row("independent", frames, moves, times[1:], summaries[1:])
    print(f"independent done in {time.perf_counter() - start:.0f} s", flush=True)
    return row


def _temporal(
    args: argparse.Namespace,
    config: Any,
    weight: float,
    source: Any,
    moves: list,
    outputs: dict,
    work: Path,
) -> dict:
    """``styleforge video`` with the temporal weight ``weight``; its frames go into ``outputs``."""
    from styleforge.config import VideoConfig
    from styleforge.images import load_image
    from styleforge.video import stylize_video

    video = VideoConfig(temporal_weight=weight, frame_iterations=args.frame_iterations)
    t = time.perf_counter()
    result = stylize_video(source, [str(args.style)], config, video, folder=work / f"w{weight:g}")
    frames = [load_image(p).rgb for p in result.paths]
    outputs[_label(weight)] = frames
    later = result.frames[1:]
    row = _row(_label(weight), frames, moves, [r.seconds for r in later], [r.summary for r in later])
    print(f"{_label(weight)} done in {time.perf_counter() - t:.0f} s", flush=True)
    return row


def _print_table(args: argparse.Namespace, config: Any, base: float, rows: list[dict]) -> None:
    print(
        f"\n{args.frames} frames of skimage.data.{args.photo} panned, {args.size} px, "
        f"style {args.style.name}, HED VGG-16, {config.optimizer[0]}: {args.iterations} iterations "
        f"for independent frames and the first, {args.frame_iterations} after; the input's own "
        f"warping error {base:.5f}\n"
    )
    print("| variant | flicker | × input's | s/frame | content (raw) | style (raw) |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['variant']} | {row['flicker']:.5f} | {row['flicker'] / base:.2f} | "
            f"{row['s_per_frame']:.1f} | {row['content']:.4f} | {row['style']:.4f} |"
        )


def _write_strip(args: argparse.Namespace, inputs: list, moves: list, outputs: dict) -> None:
    """Rows: the input, the independent frames and every temporal weight's; every other frame. Beside
    it, the same grid of :func:`_flicker_map` (black for the first frame)."""
    from PIL import Image

    from styleforge.config import VideoConfig

    default = args.default_weight if args.default_weight is not None else VideoConfig().temporal_weight
    picks = list(range(0, args.frames, 2))
    chosen = [("input", inputs)] + [
        (f"{name} (default)" if name == _label(default) else name, frames) for name, frames in outputs.items()
    ]
    h, w = inputs[0].shape[-2:]

    def grid(mode: str, tile: Any) -> Any:
        """One picture of ``tile(frames, k)`` (an (H, W[, 3]) uint8 array, or None: left black) for
        every chosen row and picked frame."""
        sheet = Image.new(mode, (w * len(picks), h * len(chosen)), 0)
        for r, (_, frames) in enumerate(chosen):
            for c, k in enumerate(picks):
                array = tile(frames, k)
                if array is not None:
                    sheet.paste(Image.fromarray(array), (c * w, r * h))
        return sheet

    def frame(frames: list, k: int) -> np.ndarray:
        return (frames[k].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    def change(frames: list, k: int) -> np.ndarray | None:
        return _flicker_map(frames[k - 1], frames[k], moves[k - 1]) if k > 0 else None

    args.strip.parent.mkdir(parents=True, exist_ok=True)
    grid("RGB", frame).save(args.strip, quality=90)  # quality: for a .jpg path
    grid("L", change).save(args.strip.with_name(f"{args.strip.stem}_flicker{args.strip.suffix}"), quality=90)
    print(
        f"\nstrip: rows {', '.join(n for n, _ in chosen)}; "
        f"frames {', '.join(str(k + 1) for k in picks)} -> {args.strip}"
    )


if __name__ == "__main__":
    main()
