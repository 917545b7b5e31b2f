"""``styleforge transfer``: restyle an image."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import COLOR_TRANSFERS, NETWORKS, PRECISIONS, STYLE_LOSSES, STYLE_WEIGHTS, TransferConfig
from ..errors import InputFileError, InvalidParameter, NoProgressError
from ..parsing import parse_optimizer, parse_style
from .base import Outputs, stop_flag, stopped, stopped_words
from .model import MODEL_OPTIONS, pop_model, transfer_with_model
from .options import read_config, read_image_config

__all__ = [
    "ATTR_OPTIONS",
    "CONFIG_OPTIONS",
    "check_inputs",
    "config_option",
    "style_option",
    "transfer",
    "transfer_config",
    "with_options",
]

_T = TransferConfig()


def _scales(value: Any) -> int | None:
    """``--scales``: ``auto`` (``None``) or a whole number >= 1."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise InvalidParameter("--scales", value, "auto or a whole number >= 1")


def check_inputs(content: Sequence[Path | str] | None, styles: Sequence[str], config: TransferConfig) -> None:
    """Every input file a transfer names, checked from its header before any work (and before a
    sweep's first cell): the content images (files or folders; ``None``: a video's frames, checked
    by their own reader), the style images, an ``--init`` image, the masks, and the attribute model
    folders.

    Raises:
        click.UsageError: No content (when expected) or no style.
        InputFileError: A file that is missing, a folder where an image is expected, or not an image.
        InvalidParameter: A bad ``--style`` or mask argument, or an ``--init`` that is neither a
            keyword nor a file.
    """
    from ..config import INITS
    from ..images import probe_image
    from ..parsing import parse_region

    if content is not None and not content:
        raise click.UsageError(
            "Missing argument 'CONTENT' (or give --from-image / a --config with 'content')."
        )
    if not styles:
        raise click.UsageError("Missing option '--style' (or give --from-image / a --config with 'style').")
    for path in map(Path, content or ()):
        if not path.exists():
            raise InputFileError("CONTENT", path, "does not exist")
        if not path.is_dir():
            probe_image(path, param="CONTENT")
    for style in styles:
        probe_image(parse_style(style).path, param="--style")
    if config.init not in INITS:
        if not Path(config.init).is_file():
            raise InvalidParameter(
                "--init", config.init, "content, noise, style, or the path of an image file"
            )
        probe_image(config.init, param="--init")
    for param, items in (
        ("--style-mask", config.style_masks),
        ("--style-image-mask", config.style_image_masks),
    ):
        for item in items:
            probe_image(parse_region(item, param=param)[1], param=param)
    for param, folder in (("--attrs-model", config.attrs_model), ("--score-with", config.score_with)):
        if folder and not Path(folder).is_dir():
            raise InputFileError(
                param,
                folder,
                "is not a folder; expected the -o folder of styleforge train-attrs"
                if Path(folder).exists()
                else "does not exist",
            )


def input_files(
    content: Sequence[Path | str], styles: Sequence[str], config: TransferConfig
) -> list[tuple[str, Path]]:
    """``(parameter, path)`` of every input file of a transfer (content, styles, ``--init``, masks): the
    files its outputs must never be."""
    from ..parsing import parse_region

    files = [("CONTENT", Path(c)) for c in content] + [("--style", parse_style(s).path) for s in styles]
    if Path(config.init).is_file():
        files.append(("--init", Path(config.init)))
    files += [
        (param, parse_region(item, param=param)[1])
        for param, items in (
            ("--style-mask", config.style_masks),
            ("--style-image-mask", config.style_image_masks),
        )
        for item in items
    ]
    return files


def transfer_config(options: dict[str, Any]) -> TransferConfig:
    """The validated :class:`TransferConfig` for the transfer command's config options."""
    options = dict(options)
    options["optimizer"] = tuple(options["optimizer"])
    for key in ("content_layers", "style_layers"):
        options[key] = tuple(part.strip() for part in options[key].split(",") if part.strip())
    options["scales"] = _scales(options["scales"])
    config = TransferConfig(**options)
    config.validate()
    return config


#: The options that make a :class:`TransferConfig` (the style transfer itself): shared by every
#: command that runs transfers (``transfer``, ``video``).
CONFIG_OPTIONS = [
    click.option(
        "--content-weight",
        type=float,
        default=_T.content_weight,
        show_default=True,
        help="Weight of the content term.",
    ),
    click.option(
        "--style-weight",
        type=float,
        default=_T.style_weight,
        help="Total weight of the style terms [default: by --style-loss: "
        + ", ".join(f"{k} {v:g}" for k, v in STYLE_WEIGHTS.items())
        + "].",
    ),
    click.option(
        "--tv-weight",
        type=float,
        default=_T.tv_weight,
        show_default=True,
        help="Weight of the total-variation term.",
    ),
    click.option(
        "--laplacian-weight",
        type=float,
        default=_T.laplacian_weight,
        show_default=True,
        help="Weight of the laplacian term: keep the content's fine structure (edges; flat skies stay flat).",
    ),
    click.option(
        "--laplacian-sigma",
        type=float,
        default=_T.laplacian_sigma,
        show_default=True,
        help="Blur in px before the laplacian term's Laplacian: the scale of the structure it keeps.",
    ),
    click.option(
        "--iterations",
        type=int,
        default=_T.iterations,
        show_default=True,
        help="Iterations of a stage without :STEPS (L-BFGS: function evaluations).",
    ),
    click.option("--size", type=int, default=_T.size, show_default=True, help="Output long side in pixels."),
    click.option(
        "--optimizer",
        "optimizer",
        multiple=True,
        default=_T.optimizer,
        show_default=True,
        metavar="NAME[:STEPS][@LR]",
        help="lbfgs adam adamw sgd momentum nesterov rmsprop adagrad adadelta; "
        "repeat for a chain (adam:200 then lbfgs:300).",
    ),
    click.option(
        "--lr",
        type=float,
        default=None,
        help="Learning rate for stages without @LR [default: per optimiser].",
    ),
    click.option(
        "--stop-delta",
        type=float,
        default=None,
        help="Stop when the total's relative change stays below this for --patience iterations.",
    ),
    click.option(
        "--patience", type=int, default=_T.patience, show_default=True, help="Iterations for --stop-delta."
    ),
    click.option(
        "--divergence-factor",
        type=float,
        default=_T.divergence_factor,
        show_default=True,
        help="A total above this x the best is divergence: stop and keep the best (inf: NaN/inf only).",
    ),
    click.option(
        "--seed", type=int, default=_T.seed, show_default=True, help="Seed of random weights and noise."
    ),
    click.option("--device", default=_T.device, show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
    click.option(
        "--weights",
        default=_T.weights,
        show_default=True,
        metavar="auto|imagenet|hed|random|PATH",
        help="VGG weights: auto (ImageNet if cached or downloadable, else HED's VGG-16, else random), "
        "torchvision's ImageNet file, HED's pretrained VGG-16 (from the package registry), seeded random, "
        "or a file.",
    ),
    click.option(
        "--network",
        default=_T.network,
        show_default=True,
        metavar="|".join(NETWORKS),
        help="vgg19 or vgg16; auto: the weights' network (vgg16 for hed, else vgg19).",
    ),
    click.option(
        "--content-layers",
        default=",".join(_T.content_layers),
        show_default=True,
        metavar="LAYER[:W],...",
        help="Content layers with optional weights.",
    ),
    click.option(
        "--style-layers",
        default=",".join(_T.style_layers),
        show_default=True,
        metavar="LAYER[:W],...",
        help="Style layers with optional weights.",
    ),
    click.option(
        "--style-layer-weight-exp",
        type=float,
        default=_T.style_layer_weight_exp,
        show_default=True,
        help="Layer n+1 weighs EXP x layer n (<1: fine texture, >1: coarse).",
    ),
    click.option(
        "--style-loss",
        default=_T.style_loss,
        show_default=True,
        metavar="|".join(STYLE_LOSSES),
        help="gram: Gram matrices; w2: Wasserstein-2 between Gaussians of the features; "
        "sw: sliced Wasserstein (sorted random projections).",
    ),
    click.option(
        "--style-mask",
        "style_masks",
        multiple=True,
        metavar="NAME=MASK",
        help="Style NAME (a for a.jpg, or its position) only where the grey MASK is white in the output; "
        "repeatable; styles without one share the rest.",
    ),
    click.option(
        "--style-image-mask",
        "style_image_masks",
        multiple=True,
        metavar="NAME=MASK",
        help="Take style NAME's statistics only from where MASK is white in its own image; repeatable.",
    ),
    click.option(
        "--pooling",
        default=_T.pooling,
        show_default=True,
        metavar="max|avg",
        help="Pooling of the frozen VGG.",
    ),
    click.option(
        "--init",
        default=_T.init,
        show_default=True,
        metavar="content|noise|style|PATH",
        help="Starting image.",
    ),
    click.option(
        "--init-noise-blend",
        type=float,
        default=_T.init_noise_blend,
        show_default=True,
        help="Share of seeded noise mixed into the starting image (0..1).",
    ),
    click.option(
        "--style-scale",
        type=float,
        default=_T.style_scale,
        show_default=True,
        help="Style images are sized to --size x this before their statistics are taken.",
    ),
    click.option(
        "--color-transfer",
        default=_T.color_transfer,
        show_default=True,
        metavar="|".join(COLOR_TRANSFERS),
        help="histogram: recolour the style images to the content's colour histogram first.",
    ),
    click.option(
        "--preserve-colors",
        is_flag=True,
        default=_T.preserve_colors,
        help="Keep the content's colours (luminance-only transfer).",
    ),
    click.option(
        "--keep-last",
        is_flag=True,
        default=_T.keep_last,
        help="Write the last iterate, not the lowest-loss one.",
    ),
    click.option(
        "--scales",
        default="auto",
        show_default=True,
        metavar="N|auto",
        help="Coarse-to-fine: optimise at N sizes growing to --size, each from the last one upsampled, "
        "sharing the iterations; auto: sqrt(2) steps from 256 px (one size up to 256).",
    ),
    click.option(
        "--min-size",
        type=int,
        default=None,
        metavar="PX",
        help="First scale's long side [default: sqrt(2) steps].",
    ),
    click.option(
        "--scale-split",
        type=float,
        default=_T.scale_split,
        show_default=True,
        help="Each scale runs this many times the iterations of the next finer one (1: evenly).",
    ),
    click.option(
        "--tile",
        default=_T.tile,
        show_default=True,
        metavar="auto|off|PX",
        help="Optimise a scale tile by tile: auto when it does not fit in memory (tiles that do), "
        "PX for scales larger than PX px, off never.",
    ),
    click.option(
        "--tile-overlap",
        type=int,
        default=_T.tile_overlap,
        metavar="PX",
        help="Overlap of neighbouring tiles [default: a quarter of the tile].",
    ),
    click.option(
        "--tile-passes",
        type=int,
        default=_T.tile_passes,
        show_default=True,
        help="Passes over a tiled scale, each at new random tile offsets.",
    ),
    click.option(
        "--memory-check/--no-memory-check",
        default=_T.memory_check,
        show_default=True,
        help="Refuse a run whose estimated memory exceeds what is available (and suggest a --size).",
    ),
    click.option(
        "--precision",
        default=_T.precision,
        show_default=True,
        metavar="|".join(PRECISIONS),
        help="Convolutions in bf16 (autocast; loss arithmetic stays fp32), fp32, or tf32 (CUDA); "
        "auto: bf16 where the device has it natively (CUDA Ampere+, CPUs with AVX512-BF16/AMX), else fp32.",
    ),
    click.option(
        "--compile/--no-compile",
        default=_T.compile,
        show_default=True,
        help="torch.compile the network (pays a compilation first; for GPUs).",
    ),
]
#: Attribute guidance and scoring (:mod:`styleforge.guidance`), for ``transfer``.
ATTR_OPTIONS = [
    click.option(
        "--attrs-model",
        default=_T.attrs_model,
        metavar="MODEL_DIR",
        help="A train-attrs run folder whose network steers the transfer towards the --attr targets.",
    ),
    click.option(
        "--attr",
        "attrs",
        multiple=True,
        metavar="NAME=VALUE[:WEIGHT]",
        help="Attribute target, repeatable: one attr.NAME term each "
        "(contrast=9, pri_color=blue, harmony=triadic:2).",
    ),
    click.option(
        "--attr-weight",
        type=float,
        default=_T.attr_weight,
        show_default=True,
        help="Weight of an --attr without :WEIGHT.",
    ),
    click.option(
        "--score-with",
        default=_T.score_with,
        metavar="MODEL_DIR",
        help="Score the result with this train-attrs network: printed, "
        "and stored in the PNG and the history.",
    ),
]


def with_options(options: Sequence[Any]) -> Any:
    """A decorator that adds ``options`` to a command, in their order on ``--help``."""

    def decorate(command: Any) -> Any:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def style_option(command: Any) -> Any:
    """``--style PATH[:WEIGHT][@SCALE]``, repeatable."""
    return click.option(
        "--style",
        "styles",
        multiple=True,
        metavar="PATH[:WEIGHT][@SCALE]",
        help="Style image, repeatable; weights are normalised to sum 1 (omitted: equal shares); "
        "@SCALE sets this style's scale.",
    )(command)


def config_option(command: Any) -> Any:
    """``--config run.toml`` (its ``[COMMAND]`` table, else its top level)."""
    return click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=read_config,
        help="TOML file of options (keys as the long flags); flags override it.",
    )(command)


@click.command()
@click.argument("content", nargs=-1, type=click.Path(path_type=Path))
@style_option
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output image (format from the extension); with several CONTENT images or a folder, a folder.",
)
@config_option
@click.option(
    "--from-image",
    type=click.Path(path_type=Path, dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=read_image_config,
    help="Re-run what made an earlier styleforge PNG; flags override it.",
)
@with_options(CONFIG_OPTIONS)
@with_options(ATTR_OPTIONS)
@with_options(MODEL_OPTIONS)
@click.option(
    "--checkpoint-every",
    type=int,
    default=None,
    metavar="N",
    help="Write OUT_0100.png ... every N iterations.",
)
@click.option(
    "--progress-gif", type=click.Path(path_type=Path), default=None, help="Animated GIF of the optimisation."
)
@click.option(
    "--gif-every", type=int, default=None, metavar="N", help="GIF frame interval [default: ~50 frames]."
)
@click.option(
    "--history",
    type=click.Path(path_type=Path),
    default=None,
    help="Every term at every iteration, .csv or .json.",
)
@click.option(
    "--plot", type=click.Path(path_type=Path), default=None, help="Loss curves per term (log scale), .png."
)
@click.option("--quiet", is_flag=True, help="No progress output.")
def transfer(
    content: tuple[Path, ...],
    styles: Sequence[str],
    output: Path,
    checkpoint_every: int | None,
    progress_gif: Path | None,
    gif_every: int | None,
    history: Path | None,
    plot: Path | None,
    quiet: bool,
    **options: Any,
) -> None:
    """Restyle CONTENT with one or more --style images and write -o OUTPUT.

    CONTENT may be several images or folders: each image is written into the -o folder under its own
    name (.png), with its own metadata; the network and the style statistics are set up once.

    \b
    Examples:
      styleforge transfer photo.jpg --style starry.jpg:0.75 --style dora.jpg:0.25 -o out/blend.png
      styleforge transfer holiday/ a.jpg --style starry.jpg -o out/starry/
      styleforge transfer holiday/ --model models/starry -o out/starry/   # a train-stylizer network
    """
    if (chosen := pop_model(options)) is not None:  # one pass of a trained network: styleforge.cli.model
        return transfer_with_model(content, output, chosen["model"], options, quiet)
    if not content:
        raise click.UsageError(
            "Missing argument 'CONTENT' (or give --from-image / a --config with 'content')."
        )
    if not styles:
        raise click.UsageError("Missing option '--style' (or give --from-image / a --config with 'style').")
    for style in styles:  # the options' checks need no torch: they come first
        parse_style(style)
    config = transfer_config(options)
    if gif_every is not None and gif_every < 1:
        raise InvalidParameter("--gif-every", gif_every, "a whole number >= 1")
    if checkpoint_every is not None and checkpoint_every < 1:
        raise InvalidParameter("--checkpoint-every", checkpoint_every, "a whole number >= 1")
    check_inputs(content, styles, config)  # before -o, whose kind (file or folder) depends on what CONTENT is
    if len(content) > 1 or content[0].is_dir():
        for name, value in (("--history", history), ("--plot", plot), ("--progress-gif", progress_gif)):
            if value is not None:
                raise InvalidParameter(
                    name,
                    value,
                    "a single CONTENT image (with several, each run's history is in its PNG's metadata)",
                )
        _transfer_many(content, styles, output, config, checkpoint_every, quiet)
        return

    content_path = content[0]
    from ..files import check_not_input
    from ..guidance.run import transfer as run_transfer
    from ..images import check_output_path
    from ..report import CheckpointWriter, GifRecorder, check_history_path, plot_curves, write_history
    from .display import ProgressDisplay

    inputs = input_files(content, styles, config)
    check_output_path(output)
    check_not_input(output, inputs)
    if history is not None:
        check_history_path(history)
        check_not_input(history, inputs, param="--history")
    if plot is not None:
        check_output_path(plot, param="--plot")
        check_not_input(plot, inputs, param="--plot")
    if progress_gif is not None:
        check_not_input(progress_gif, inputs, param="--progress-gif")
    callbacks: list[Any] = [ProgressDisplay(quiet=quiet)]
    if checkpoint_every is not None:
        callbacks.append(
            CheckpointWriter(output, checkpoint_every, {"command": "transfer", "config": config.to_dict()})
        )
    gif = None
    if progress_gif is not None:
        planned = sum(parse_optimizer(s).steps or config.iterations for s in config.optimizer)
        gif = GifRecorder(progress_gif, gif_every if gif_every is not None else max(1, planned // 50))
        callbacks.append(gif)
    flag = stop_flag()
    try:
        result = run_transfer(content_path, list(styles), config, callbacks=callbacks)
    finally:
        callbacks[0].close()
    interrupted = result.stop_reason == "interrupted"
    if interrupted and not result.history:  # the signal came before the first iteration: nothing to keep
        click.echo(f"{stopped_words(flag.signum)} before the first iteration; nothing was written", err=True)
        stopped(flag)
    problem = _no_progress(result, config, output)
    if problem:
        raise NoProgressError(problem)
    outputs = Outputs()
    with flag.keeping():  # a signal now waits for the outputs: they are what the run was for
        path = outputs.write(lambda: result.save(output, fallback=True))
        rows = [entry.as_row() for entry in result.history]
        if history is not None:
            outputs.write(lambda: write_history(history, result.history_rows()))
        if plot is not None and rows:
            series = {
                name: [r[name] for r in rows] for name in ["total", *result.history[0].summary.weighted]
            }
            stages = [e.iteration for a, e in zip(result.history, result.history[1:]) if e.stage != a.stage]
            outputs.write(
                lambda: plot_curves(
                    plot, [r["iteration"] for r in rows], series, markers=stages, title="styleforge transfer"
                )
            )
        if gif is not None:
            outputs.write(gif.write)
    for callback in callbacks:
        for failure in getattr(callback, "failed", ()):
            click.echo(f"note: a checkpoint could not be written: {failure}", err=True)
    if result.summary is not None:
        click.echo(
            f"done: {result.stop_reason} after {len(result.history)} iterations; "
            f"image from iteration {result.metadata['iteration']}, loss {result.summary.format()}",
            err=True,
        )
    if result.scores is not None:
        from ..attributes.score_format import format_score_line

        click.echo(f"scores ({result.config.score_with}): {format_score_line(result.scores)}", err=True)
    if interrupted and path is not None:
        click.echo(f"{stopped_words(flag.signum)}: the best image so far is in {path}", err=True)
    outputs.finish()
    if interrupted:
        stopped(flag)


def _no_progress(result: Any, config: TransferConfig, output: Path) -> str:
    """Why ``result`` is not written (a run no better than its start, without ``--keep-last``), or ""."""
    if result.improved or config.keep_last or result.stop_reason == "interrupted":
        return ""
    why = f" ({result.stop_detail})" if result.stop_detail and result.stop_reason != "completed" else ""
    return (
        f"the transfer made no progress: no iteration lowered the loss below the starting image's{why}, so "
        f"{output} was not written; try another --optimizer or --lr"
    )


def _outputs_for(paths: Sequence[str], folder: Path) -> list[Path]:
    """``FOLDER/<name>.png`` for each content image, refusing two images that would share a name."""
    outs: dict[Path, str] = {}
    for path in paths:
        out = folder / (Path(path).stem + ".png")
        if out in outs:
            raise InvalidParameter(
                "CONTENT",
                path,
                f"images with different names: it would be written to {out}, as {outs[out]} is",
            )
        outs[out] = path
    return list(outs)


def _transfer_many(
    content: Sequence[Path],
    styles: Sequence[str],
    output: Path,
    config: TransferConfig,
    checkpoint_every: int | None,
    quiet: bool,
) -> None:
    """Several content images (files and folders) into the folder ``output``, one after the other."""
    from ..files import check_not_input, check_writable
    from ..guidance.run import transfer_each
    from ..images import IMAGE_EXTENSIONS, find_images
    from ..report import CheckpointWriter
    from .display import ProgressDisplay

    found = find_images(content)
    for path, problem in found:
        if problem is not None:
            raise InvalidParameter("CONTENT", path, f"an image file or a folder of images; it {problem}")
    paths = [path for path, _ in found]
    if output.suffix.lower() in IMAGE_EXTENSIONS:
        raise InvalidParameter(
            "-o",
            str(output),
            f"a folder, for {len(paths)} content image(s): each is written as FOLDER/<name>.png",
        )
    outs = _outputs_for(paths, output)
    inputs = input_files(paths, styles, config)
    for out in outs:  # a folder of photos written into itself would lose them
        check_not_input(out, inputs)
    check_writable(outs[0], param="-o")
    display = ProgressDisplay(quiet=quiet)
    writers = (
        {
            out: CheckpointWriter(out, checkpoint_every, {"command": "transfer", "config": config.to_dict()})
            for out in outs
        }
        if checkpoint_every is not None
        else {}
    )
    current: dict[str, Any] = {}

    def checkpoints(event: Any) -> None:
        if "writer" in current:
            current["writer"](event)

    outputs, skipped, interrupted = Outputs(), [], False
    flag = stop_flag()
    try:
        runs = transfer_each(paths, list(styles), config, callbacks=[display, checkpoints])
        for number, (path, out) in enumerate(zip(paths, outs), start=1):
            if out in writers:
                current["writer"] = writers[out]
            run = next(runs, None)
            if run is None:  # a Ctrl-C between two images
                interrupted = True
                click.echo(
                    f"{stopped_words(flag.signum)} before {path}: {number - 1} of {len(paths)} image(s) were "
                    "finished",
                    err=True,
                )
                break
            if run.error is not None:
                click.echo(f"error: {run.error}; skipped", err=True)
                skipped.append(path)
                continue
            result = run.result
            assert result is not None
            if result.stop_reason == "interrupted" and not result.history:  # before its first iteration
                interrupted = True
                click.echo(
                    f"{stopped_words(flag.signum)} before {path}'s first iteration: {number - 1} of "
                    f"{len(paths)} image(s) were finished",
                    err=True,
                )
                break
            problem = _no_progress(result, config, out)
            if problem:
                click.echo(f"error: {path}: {problem}", err=True)
                skipped.append(path)
                continue
            with flag.keeping():  # a signal now waits for the image to be written
                written = outputs.write(lambda: result.save(out, fallback=True))
            if result.summary is not None:
                click.echo(
                    f"done {number}/{len(paths)}: {path} -> {written}: {result.stop_reason} after "
                    f"{len(result.history)} iterations, loss {result.summary.format()}",
                    err=True,
                )
            if result.stop_reason == "interrupted":
                interrupted = True
                click.echo(
                    f"{stopped_words(flag.signum)}: the best image so far of {path} is in {written}; "
                    f"{number - 1} of {len(paths)} image(s) were finished before it",
                    err=True,
                )
                break
    finally:
        display.close()
    for writer in writers.values():
        for failure in writer.failed:
            click.echo(f"note: a checkpoint could not be written: {failure}", err=True)
    outputs.finish()
    if interrupted:
        stopped(flag)
    if skipped:
        click.echo(
            f"error: {len(skipped)} of {len(paths)} image(s) were not written: "
            f"{', '.join(map(str, skipped))}",
            err=True,
        )
        sys.exit(1)
