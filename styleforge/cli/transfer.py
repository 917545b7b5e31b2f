"""``styleforge transfer``: restyle an image."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..config import INITS, TransferConfig
from ..errors import InputFileError, InvalidParameter, NoProgressError
from ..guidance.config import GuidanceConfig
from ..parsing import parse_optimizer, parse_region, parse_style
from .base import Outputs, stop_flag, stopped, stopped_words
from .cluster import backend_option
from .flags import click_options, from_flags, with_options
from .model import MODEL_OPTIONS, pop_model, transfer_with_model
from .options import read_config, read_image_config

__all__ = [
    "GUIDANCE_OPTIONS",
    "CONFIG_OPTIONS",
    "check_inputs",
    "check_styles",
    "config_option",
    "style_option",
    "content_outputs",
    "many_outputs",
    "transfer",
]

#: The options that make a :class:`TransferConfig` (the style transfer itself): shared by every
#: command that runs transfers (``transfer``, ``video``).
CONFIG_OPTIONS = click_options(TransferConfig)
#: Attribute guidance and scoring (:class:`GuidanceConfig`), for ``transfer``.
GUIDANCE_OPTIONS = click_options(GuidanceConfig)

_NO_CONTENT = "Missing argument 'CONTENT' (or give --from-image / a --config with 'content')."


def check_styles(styles: Sequence[str], missing: str) -> None:
    """The ``--style`` arguments' syntax (no file is opened), before any heavy import.

    Raises:
        click.UsageError: No style (``missing`` says how to give one).
        InvalidParameter: A bad ``PATH[:WEIGHT][@SCALE]``.
    """
    if not styles:
        raise click.UsageError(missing)
    for style in styles:
        parse_style(style)


def check_inputs(
    content: Sequence[Path | str] | None,
    styles: Sequence[str],
    config: TransferConfig,
    guidance: GuidanceConfig | None = None,
) -> None:
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
    from ..images import probe_image

    if content is not None and not content:
        raise click.UsageError(_NO_CONTENT)
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
    for param, item in _mask_items(config):
        probe_image(parse_region(item, param=param)[1], param=param)
    if guidance is not None:
        _check_model_folders(guidance)


def _mask_items(config: TransferConfig) -> list[tuple[str, str]]:
    """``(flag, NAME=MASK)`` of every mask option's item."""
    return [("--style-mask", item) for item in config.style_masks] + [
        ("--style-image-mask", item) for item in config.style_image_masks
    ]


def _check_model_folders(guidance: GuidanceConfig) -> None:
    """``--attrs-model`` and ``--score-with`` name folders (their files are read by the run)."""
    for param, folder in (("--attrs-model", guidance.attrs_model), ("--score-with", guidance.score_with)):
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
    files = [("CONTENT", Path(c)) for c in content] + [("--style", parse_style(s).path) for s in styles]
    if Path(config.init).is_file():
        files.append(("--init", Path(config.init)))
    return files + [(param, parse_region(item, param=param)[1]) for param, item in _mask_items(config)]


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


def _run_metadata(config: TransferConfig, guidance: GuidanceConfig) -> dict[str, Any]:
    """What every checkpoint image records of the run."""
    meta = {"command": "transfer", "config": config.to_dict()}
    return {**meta, "guidance": guidance.to_dict()} if guidance.active else meta


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
@with_options(GUIDANCE_OPTIONS)
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
@click.option("--preview", is_flag=True, help="Watch the run live in a browser (the studio's page).")
@with_options(MODEL_OPTIONS)
@backend_option(
    "ray: the pictures on a Ray cluster's workers (RAY_ADDRESS, else a local instance), each written as it "
    "finishes; run again, the finished ones are skipped. Needs styleforge[ray]."
)
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
    preview: bool,
    backend: str,
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
        return transfer_with_model(content, output, chosen, options, quiet, backend)
    if not content:
        raise click.UsageError(_NO_CONTENT)
    check_styles(styles, "Missing option '--style' (or give --from-image / a --config with 'style').")
    config = from_flags(TransferConfig, options)  # the options' checks need no torch: they come first
    guidance = from_flags(GuidanceConfig, options)
    for name, value in (("--gif-every", gif_every), ("--checkpoint-every", checkpoint_every)):
        if value is not None and value < 1:
            raise InvalidParameter(name, value, "a whole number >= 1")
    check_inputs(content, styles, config, guidance)  # before -o, whose kind depends on what CONTENT is
    if backend == "ray":
        from .cluster import transfer_on_cluster

        refused = {"--history": history, "--plot": plot, "--progress-gif": progress_gif}
        refused.update({"--checkpoint-every": checkpoint_every, "--preview": preview or None})
        refused.update({"--attrs-model": guidance.attrs_model, "--score-with": guidance.score_with})
        transfer_on_cluster(content, styles, output, config, quiet=quiet, refused=refused)
        return
    run = _Run(content, styles, output, config, guidance, checkpoint_every, quiet)
    if len(content) > 1 or content[0].is_dir():
        for name, value in (
            ("--history", history),
            ("--plot", plot),
            ("--progress-gif", progress_gif),
            ("--preview", preview or None),
        ):
            if value is not None:
                raise InvalidParameter(
                    name,
                    value,
                    "a single CONTENT image (with several, each run's history is in its PNG's metadata)",
                )
        _transfer_many(run)
    else:
        _transfer_one(run, history, plot, progress_gif, gif_every, preview)


class _Run:
    """What every transfer the command runs shares: its inputs, options and output."""

    def __init__(
        self,
        content: Sequence[Path],
        styles: Sequence[str],
        output: Path,
        config: TransferConfig,
        guidance: GuidanceConfig,
        checkpoint_every: int | None,
        quiet: bool,
    ) -> None:
        self.content, self.styles, self.output = list(content), list(styles), output
        self.config, self.guidance = config, guidance
        self.checkpoint_every, self.quiet = checkpoint_every, quiet

    def checkpoints(self, output: Path) -> Any:
        """The checkpoint writer beside ``output``, or ``None`` without ``--checkpoint-every``."""
        from ..report import CheckpointWriter

        if self.checkpoint_every is None:
            return None
        return CheckpointWriter(output, self.checkpoint_every, _run_metadata(self.config, self.guidance))


def _check_outputs(run: _Run, history: Path | None, plot: Path | None, progress_gif: Path | None) -> None:
    """Every output of a single transfer, probed before the work; none may be one of its inputs."""
    from ..files import check_not_input
    from ..images import check_output_path
    from ..report import check_history_path

    inputs = input_files(run.content, run.styles, run.config)
    check_output_path(run.output)
    check_not_input(run.output, inputs)
    if history is not None:
        check_history_path(history)
        check_not_input(history, inputs, param="--history")
    if plot is not None:
        check_output_path(plot, param="--plot")
        check_not_input(plot, inputs, param="--plot")
    if progress_gif is not None:
        check_not_input(progress_gif, inputs, param="--progress-gif")


def _gif(run: _Run, progress_gif: Path | None, gif_every: int | None) -> Any:
    """The ``--progress-gif`` recorder (about 50 frames unless ``--gif-every``), or ``None``."""
    from ..report import GifRecorder

    if progress_gif is None:
        return None
    planned = sum(parse_optimizer(s).steps or run.config.iterations for s in run.config.optimizer)
    return GifRecorder(progress_gif, gif_every if gif_every is not None else max(1, planned // 50))


def _transfer_one(
    run: _Run,
    history: Path | None,
    plot: Path | None,
    progress_gif: Path | None,
    gif_every: int | None,
    preview: bool = False,
) -> None:
    """One content image into the file ``run.output``, with its history, plot and GIF, and with
    ``preview`` the live view in a browser."""
    from ..guidance.run import transfer as run_transfer
    from .display import ProgressDisplay

    _check_outputs(run, history, plot, progress_gif)
    display = ProgressDisplay(quiet=run.quiet)
    gif = _gif(run, progress_gif, gif_every)
    callbacks = [c for c in (display, run.checkpoints(run.output), gif) if c is not None]
    flag = stop_flag()
    if preview:  # the live view in a browser: its Stop button sets this command's stop flag
        from .studio import open_preview

        callbacks.append(open_preview(run.content[0], run.styles, run.config, flag))
    try:
        result = run_transfer(
            run.content[0], run.styles, run.config, guidance=run.guidance, callbacks=callbacks
        )
    finally:
        display.close()
    interrupted = result.stop_reason == "interrupted"
    if interrupted and not result.history:  # the signal came before the first iteration: nothing to keep
        click.echo(f"{stopped_words(flag.signum)} before the first iteration; nothing was written", err=True)
        stopped(flag)
    problem = _no_progress(result, run.config, run.output)
    if problem:
        raise NoProgressError(problem)
    outputs = Outputs()
    with flag.keeping():  # a signal now waits for the outputs: they are what the run was for
        path = outputs.write(lambda: result.save(run.output, fallback=True))
        _write_records(outputs, result, history, plot, gif)
    _report_checkpoints(callbacks)
    _report_result(run, result)
    if interrupted and path is not None:
        click.echo(f"{stopped_words(flag.signum)}: the best image so far is in {path}", err=True)
    outputs.finish()
    if interrupted:
        stopped(flag)


def _write_records(outputs: Outputs, result: Any, history: Path | None, plot: Path | None, gif: Any) -> None:
    """The run's ``--history``, ``--plot`` and ``--progress-gif`` files."""
    from ..report import plot_curves, write_history

    if history is not None:
        outputs.write(lambda: write_history(history, result.history_rows()))
    rows = [entry.as_row() for entry in result.history]
    if plot is not None and rows:
        series = {name: [r[name] for r in rows] for name in ["total", *result.history[0].summary.weighted]}
        stages = [e.iteration for a, e in zip(result.history, result.history[1:]) if e.stage != a.stage]
        outputs.write(
            lambda: plot_curves(
                plot, [r["iteration"] for r in rows], series, markers=stages, title="styleforge transfer"
            )
        )
    if gif is not None:
        outputs.write(gif.write)


def _report_checkpoints(writers: Sequence[Any]) -> None:
    """One note per checkpoint that could not be written (the run went on without it)."""
    for writer in writers:
        for failure in getattr(writer, "failed", ()):
            click.echo(f"note: a checkpoint could not be written: {failure}", err=True)


def _report_result(run: _Run, result: Any) -> None:
    """How the run ended and its loss, and the ``--score-with`` scores."""
    if result.summary is not None:
        click.echo(
            f"done: {result.stop_reason} after {len(result.history)} iterations; "
            f"image from iteration {result.metadata['iteration']}, loss {result.summary.format()}",
            err=True,
        )
    if result.scores is not None:
        from ..attributes.score_format import format_score_line

        click.echo(f"scores ({run.guidance.score_with}): {format_score_line(result.scores)}", err=True)


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


def _plan_many(run: _Run) -> tuple[list[Any], list[Path]]:
    """:func:`many_outputs` of the command's run."""
    return many_outputs(run.content, run.styles, run.output, run.config)


def content_outputs(content: Sequence[Path], output: Path) -> tuple[list[str], list[Path]]:
    """The content images of several files and folders and the output of each in the folder
    ``output`` (``<name>.png``), checked before the work: no unreadable entry, no image output, no
    shared name, a writable folder. (Shared by ``transfer`` on any backend and ``transfer --model``.)"""
    from ..files import check_writable
    from ..images import IMAGE_EXTENSIONS, find_images

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
    check_writable(outs[0], param="-o")
    return paths, outs


def many_outputs(
    content: Sequence[Path], styles: Sequence[str], output: Path, config: TransferConfig
) -> tuple[list[str], list[Path]]:
    """:func:`content_outputs`, and no output that is one of the transfer's inputs."""
    from ..files import check_not_input

    paths, outs = content_outputs(content, output)
    inputs = input_files(paths, styles, config)
    for out in outs:  # a folder of photos written into itself would lose them
        check_not_input(out, inputs)
    return paths, outs


class _Many:
    """The state of several content images run one after the other: the outputs written, the images
    skipped, whether a signal ended the run, and the checkpoint writer of the image running."""

    def __init__(self, run: _Run, paths: Sequence[Any], outs: Sequence[Path]) -> None:
        self.run, self.paths, self.outs = run, list(paths), list(outs)
        self.writers = {out: run.checkpoints(out) for out in outs} if run.checkpoint_every else {}
        self.writer: Any = None
        self.outputs, self.skipped, self.interrupted = Outputs(), [], False

    def checkpoint(self, event: Any) -> None:
        """The engine's events, to the checkpoint writer of the image running."""
        if self.writer is not None:
            self.writer(event)

    def stop(self, where: str) -> None:
        """A signal ended the run: says which and ``where``."""
        self.interrupted = True
        click.echo(stopped_words(stop_flag().signum) + where, err=True)

    def take(self, number: int, path: Any, out: Path, content_run: Any) -> bool:
        """Writes one content image's result, or says why not; ``False`` when the run stops here."""
        total = len(self.paths)
        if content_run is None:  # a Ctrl-C between two images
            self.stop(f" before {path}: {number - 1} of {total} image(s) were finished")
            return False
        if content_run.error is not None:
            click.echo(f"error: {content_run.error}; skipped", err=True)
            self.skipped.append(path)
            return True
        result = content_run.result
        if result.stop_reason == "interrupted" and not result.history:  # before its first iteration
            self.stop(f" before {path}'s first iteration: {number - 1} of {total} image(s) were finished")
            return False
        problem = _no_progress(result, self.run.config, out)
        if problem:
            click.echo(f"error: {path}: {problem}", err=True)
            self.skipped.append(path)
            return True
        with stop_flag().keeping():  # a signal now waits for the image to be written
            written = self.outputs.write(lambda: result.save(out, fallback=True))
        if result.summary is not None:
            click.echo(
                f"done {number}/{total}: {path} -> {written}: {result.stop_reason} after "
                f"{len(result.history)} iterations, loss {result.summary.format()}",
                err=True,
            )
        if result.stop_reason == "interrupted":
            self.stop(
                f": the best image so far of {path} is in {written}; "
                f"{number - 1} of {total} image(s) were finished before it"
            )
            return False
        return True


def _transfer_many(run: _Run) -> None:
    """Several content images (files and folders) into the folder ``run.output``, one after the other."""
    from ..guidance.run import transfer_each
    from .display import ProgressDisplay

    many = _Many(run, *_plan_many(run))
    display = ProgressDisplay(quiet=run.quiet)
    flag = stop_flag()
    try:
        runs = transfer_each(
            many.paths, run.styles, run.config, guidance=run.guidance, callbacks=[display, many.checkpoint]
        )
        for number, (path, out) in enumerate(zip(many.paths, many.outs), start=1):
            many.writer = many.writers.get(out)
            if not many.take(number, path, out, next(runs, None)):
                break
    finally:
        display.close()
    _report_checkpoints(list(many.writers.values()))
    many.outputs.finish()
    if many.interrupted:
        stopped(flag)
    if many.skipped:
        click.echo(
            f"error: {len(many.skipped)} of {len(many.paths)} image(s) were not written: "
            f"{', '.join(map(str, many.skipped))}",
            err=True,
        )
        sys.exit(1)
