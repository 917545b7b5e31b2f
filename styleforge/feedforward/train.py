"""Training a feed-forward stylizer on the engine's loop: :func:`train_stylizer`, behind ``train-stylizer``.

The objective is the transfer's (:mod:`.terms`: ``content``, ``style.<name>`` per style with their
blend, ``tv``, ``laplacian``), evaluated per image of each batch of random crops (:mod:`.data`) of
the network's output (:class:`~styleforge.nets.transformer.TransformerNet`) through the frozen VGG,
as Johnson et al. (2016) train theirs. The loop is :func:`styleforge.engine.fit.fit`, as for the
attribute network: each of its epochs is one report period of ``report_every`` steps, after which
the validation photos are scored (the lowest validation total is the best checkpoint), a history row
is written, and the run folder is checkpointed so that ``--resume`` continues exactly.

The run folder (``-o``) is the model: ``model.safetensors`` + ``model.json`` (the best report's
weights, rewritten whenever the validation total improves), ``history.csv`` and ``resume.pt`` (after
every report), ``sheets/iter_NNNNNN.png`` (the validation photos through the network every
``sheet_every`` reports), and at the end ``curves.png`` and ``sheet.png`` (the best weights).
Ctrl-C or SIGTERM stops after the current step and keeps the best; a run killed at any moment
resumes from its last report. Under ``torchrun`` every process trains on its part of each global
batch (:mod:`styleforge.engine.distributed`) and only rank 0 prints and writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..device import resolve_device
from ..engine import Callback, DivergenceGuard, FitCheckpoint, Notice, fit
from ..engine.distributed import Distributed, init_distributed
from ..engine.events import download_events, emit
from ..engine.interrupt import Interrupt, keeping, watch
from ..errors import InputFileError, InvalidParameter, StyleforgeError, shown
from ..files import check_new_run, write_atomic
from ..images import load_image
from ..nets.transformer import TransformerNet
from ..nets.vgg import VGGFeatures
from ..nets.weights import resolve_weights
from ..parsing import StyleSpec, normalise_blend, parse_style, style_term_names
from ..report import contact_sheet, plot_panels, write_history
from .config import RESUME_OPTIONS, StylizerConfig
from .data import Photos, centre_squares, random_crops, read_photos, skipped_words, split_photos
from .memory import check_training_memory
from .model import MODEL_JSON, save_stylizer
from .terms import BatchObjective, term_layers

__all__ = [
    "CURVES_FILE",
    "HISTORY_FILE",
    "RESUME_FILE",
    "SHEET_FILE",
    "SHEETS_FOLDER",
    "StylizerTrainResult",
    "resolve_run_config",
    "train_stylizer",
]

RESUME_FILE = "resume.pt"
HISTORY_FILE = "history.csv"
CURVES_FILE = "curves.png"
SHEET_FILE = "sheet.png"
SHEETS_FOLDER = "sheets"
#: Validation photos a contact sheet shows.
SHEET_PHOTOS = 8


@dataclass
class StylizerTrainResult:
    """What :func:`train_stylizer` did.

    Attributes:
        run_dir: The run folder, which is the model (:func:`~styleforge.feedforward.model.load_stylizer`).
        history: One row per report (``epoch``, ``iteration``, ``lr``, ``loss``, ``loss.<term>``,
            ``loss.<term>.raw``, the same with ``val_``, ``seconds``).
        best_iteration: The step whose weights are in ``model.safetensors`` (0: no report finished).
        stop_reason: ``completed``, ``diverged`` or ``interrupted``.
        stop_detail: A sentence for the user.
        skipped: ``(path, why)`` of each unreadable photo.
        config: The configuration that ran.
        files: The files written at the end.
    """

    run_dir: Path
    history: list[dict[str, float]]
    best_iteration: int
    stop_reason: str
    stop_detail: str
    skipped: list[tuple[Path, str]]
    config: StylizerConfig
    files: list[Path] = field(default_factory=list)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def resolve_run_config(
    run_dir: Path, config: StylizerConfig | None, resume: bool, options: dict[str, Any]
) -> tuple[StylizerConfig, dict[str, Any] | None]:
    """The configuration of a new run, or of a resumed one checked against the saved run (the
    options outside :data:`RESUME_OPTIONS` must be the same), and the saved ``model.json``."""
    if not resume:
        check_new_run(run_dir, (MODEL_JSON, RESUME_FILE))
        return dataclasses.replace(config or StylizerConfig(), **options), None
    if not (run_dir / RESUME_FILE).is_file() or not (run_dir / MODEL_JSON).is_file():
        raise InputFileError(
            "--resume", run_dir, f"has no {RESUME_FILE} to resume from (no report of a run finished there)"
        )
    try:
        meta = json.loads((run_dir / MODEL_JSON).read_text(encoding="utf-8"))
        saved = StylizerConfig.from_dict(meta["training"]["config"])
    except (OSError, ValueError, KeyError, TypeError, StyleforgeError) as exc:
        raise InputFileError(
            "--resume", run_dir / MODEL_JSON, f"is not a readable run record ({exc})"
        ) from None
    given = dataclasses.asdict(config) if config is not None else {}
    given.update(options)
    differ = [k for k in given if k not in RESUME_OPTIONS and given[k] != getattr(saved, k)]
    if differ:
        first = differ[0]
        also = "; ".join(
            f"{_flag(k)} {shown(given[k])} (the run has {shown(getattr(saved, k))})" for k in differ[1:]
        )
        raise InvalidParameter(
            _flag(first),
            given[first],
            f"{shown(getattr(saved, first))}, as in the run being resumed",
            (f"also different: {also}; " if also else "")
            + "only "
            + ", ".join(_flag(o) for o in RESUME_OPTIONS)
            + " may change on --resume",
        )
    return dataclasses.replace(saved, **{k: v for k, v in given.items() if k in RESUME_OPTIONS}), meta


class _Crops:
    """One report period's training batches, drawn lazily from the run's generator (a rank's part of
    each global batch under torchrun), on ``device``."""

    def __init__(
        self,
        photos: Photos,
        steps: int,
        config: StylizerConfig,
        generator: torch.Generator,
        dist: Distributed | None,
        device: torch.device,
    ) -> None:
        self.photos, self.steps, self.config, self.generator = photos, steps, config, generator
        self.keep = dist.shard(config.batch_size) if dist is not None else None
        self.device = device

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Tensor]:
        for _ in range(self.steps):
            crops = random_crops(
                self.photos, self.config.batch_size, self.config.size, self.generator, self.keep
            )
            yield crops.to(self.device)


def _val_batches(
    images: Tensor, batch_size: int, dist: Distributed | None, device: torch.device
) -> list[Tensor]:
    """The validation squares in global batches of ``batch_size`` (a last one smaller than the
    number of processes joins the one before), each rank's part of each, on ``device``."""
    world = dist.world_size if dist is not None else 1
    bounds = list(range(0, len(images), batch_size))
    if len(bounds) > 1 and len(images) - bounds[-1] < world:
        bounds.pop()
    chunks = [images[a:b] for a, b in zip(bounds, [*bounds[1:], len(images)])]
    return [(chunk if dist is None else chunk[dist.shard(len(chunk))]).to(device) for chunk in chunks]


def _style_record(specs: Sequence[StyleSpec]) -> list[dict[str, Any]]:
    """``model.json``'s styles: each as ``--style`` gave it, its term name, blend share and scale."""
    return [
        {
            "style": str(spec),
            "path": str(spec.path.resolve()),
            "name": name,
            "share": share,
            "scale": spec.scale,
        }
        for spec, name, share in zip(specs, style_term_names(specs), normalise_blend(specs))
    ]


def _sheet(net: TransformerNet, photos: Tensor, device: torch.device, title: str) -> Any:
    """A contact sheet: each validation photo beside its stylised version."""
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            outs = [net(p[None].to(device))[0].cpu() for p in photos[:SHEET_PHOTOS]]
    finally:
        net.train(was)
    return contact_sheet(
        [[p, o] for p, o in zip(photos, outs)], col_labels=["photo", "stylised"], title=title, cell_px=160
    )


def _save_png(path: Path, image: Any) -> Path:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return write_atomic(path, buffer.getvalue())


def plot_training(path: Path, history: Sequence[dict[str, float]]) -> Path:
    """``curves.png``: the total and each weighted term per step, training and validation."""
    steps = [row["iteration"] for row in history]
    names = ["loss"] + sorted(
        {k for row in history for k in row if k.startswith("loss.") and not k.endswith(".raw")}
    )
    panels = {
        ("total" if name == "loss" else name[len("loss.") :]): {
            "training": (steps, [row.get(name) for row in history]),
            "validation": (steps, [row.get(f"val_{name}") for row in history]),
        }
        for name in names
    }
    return plot_panels(path, panels, xlabel="iteration", ylabel="weighted loss", log=True)


def _inputs(
    styles: Sequence[str | os.PathLike[str] | StyleSpec],
    data: str | os.PathLike[str] | None,
    val: str | os.PathLike[str] | None,
    saved: dict[str, Any] | None,
) -> tuple[list[StyleSpec], str | os.PathLike[str], str | os.PathLike[str] | None]:
    """The styles, the photos folder and the validation folder: as given, or a resumed run's own
    (styles given on resume must be the run's)."""
    specs = [s if isinstance(s, StyleSpec) else parse_style(os.fspath(s)) for s in styles]
    if saved is not None:
        recorded = [s["style"] for s in saved["styles"]]
        if specs and [str(s) for s in specs] != recorded:
            raise InvalidParameter(
                "--style", [str(s) for s in specs], f"{shown(recorded)}, as in the run being resumed"
            )
        specs = [parse_style(s) for s in recorded]
        data = data if data is not None else saved["training"]["data"]
        val = val if val is not None else saved["training"]["val"]
    if not specs:
        raise InvalidParameter("--style", "(none)", "at least one style image")
    if data is None:
        raise InvalidParameter("--data", None, "a folder of photos")
    return specs, data, val


def _names(photos: Photos, folder: str | os.PathLike[str]) -> list[str]:
    """The photos' paths as the folder holds them (relative, with ``/``)."""
    return [Path(os.path.relpath(p, folder)).as_posix() for p in photos.paths]


def _photos(
    config: StylizerConfig,
    data: str | os.PathLike[str],
    val: str | os.PathLike[str] | None,
    saved: dict[str, Any] | None,
    callbacks: Sequence[Callback],
) -> tuple[Photos, Photos, list[tuple[Path, str]]]:
    """The training and validation photos (``val``, or ``val_count`` of ``data`` held out) and the
    unreadable files (a notice names them); a resumed run's training photos must be the same."""
    if val is not None:
        train_photos = read_photos(data, config.size, callbacks=callbacks)
        val_photos = read_photos(val, config.size, param="--val", callbacks=callbacks)
        skipped = train_photos.skipped + val_photos.skipped
    else:
        photos = read_photos(data, config.size, minimum=2, callbacks=callbacks)
        generator = torch.Generator().manual_seed(config.seed)
        train_photos, val_photos = split_photos(photos, config.val_count, generator)
        skipped = photos.skipped
    if skipped:
        emit(callbacks, Notice(f"skipped {len(skipped)} unreadable image(s): {skipped_words(skipped)}"))
    names = _names(train_photos, data)
    if saved is not None and names != saved["training"]["photos"]:
        raise InputFileError(
            "--resume",
            data,
            f"holds other readable photos than when the run started ({len(names)} now, "
            f"{len(saved['training']['photos'])} then); start a new run in another folder",
        )
    return train_photos, val_photos, skipped


def _finish(
    run_dir: Path,
    net: TransformerNet,
    meta: dict[str, Any],
    result: Any,
    best: dict[str, float],
    val_images: Tensor,
    device: torch.device,
) -> list[Path]:
    """At the end of a run (the ``best`` report's weights in ``net``): the model with that report's
    record, ``history.csv``, ``curves.png`` and ``sheet.png``; returns the files."""
    meta["best"] = {k: v for k, v in best.items() if k != "seconds"}
    meta["stop_reason"] = result.stop_reason
    sheet = _sheet(net, val_images, device, f"best: iteration {int(best['iteration'])}")
    return [
        *save_stylizer(run_dir, net, meta),
        write_history(run_dir / HISTORY_FILE, result.history, param="-o"),
        plot_training(run_dir / CURVES_FILE, result.history),
        _save_png(run_dir / SHEET_FILE, sheet),
    ]


def train_stylizer(
    data: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    styles: Sequence[str | os.PathLike[str] | StyleSpec] = (),
    config: StylizerConfig | None = None,
    *,
    val: str | os.PathLike[str] | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    interrupt: Interrupt | None = None,
    **options: Any,
) -> StylizerTrainResult:
    """Trains a feed-forward stylizer on the photos in ``data`` and writes the run folder ``output``.

    Args:
        data: A folder of photos (recursive; any format :func:`~styleforge.images.load_image`
            reads); with ``resume``, ``None`` is the run's own.
        output: The run folder (created); it is the model. Without ``resume`` it must not hold a run.
        styles: ``"path[:weight][@scale]"`` strings or :class:`StyleSpec` (blend weights normalised to
            sum 1); with ``resume``, empty is the run's own.
        config: Options (``None``: the defaults, or the saved run's with ``resume``).
        val: A folder of validation photos; ``None``: ``val_count`` photos of ``data`` are held out.
        resume: Continue the run in ``output`` exactly; only :data:`RESUME_OPTIONS` may differ.
        callbacks: Receive engine events (:class:`~styleforge.engine.events.EpochEnded` per report, ...).
        interrupt: The flag of a :func:`~styleforge.engine.interrupt.stop_signals` the caller holds;
            ``None``: training installs its own (Ctrl-C and SIGTERM stop it after the current step).
        **options: Overrides of ``config``'s fields (``iterations=500``).

    Returns:
        A :class:`StylizerTrainResult`; an interrupted or diverged run still writes the best report's
        model and returns normally (check ``stop_reason``).

    Raises:
        StyleforgeError: Invalid options, too few readable photos, unreadable styles, unavailable
            weights or device.
    """
    if output is None:
        raise InvalidParameter("-o", None, "a folder for the run")
    run_dir = Path(output)
    config, saved = resolve_run_config(run_dir, config, resume, dict(options))
    config.validate()
    specs, data, val = _inputs(styles, data, val, saved)
    style_images = [load_image(spec.path, param="--style").rgb for spec in specs]
    terms_config = config.transfer_config()

    dist = init_distributed(config.device)
    device = dist.device if dist is not None else resolve_device(config.device)
    main = dist is None or dist.is_main
    if not main:
        callbacks = ()
    if dist is not None and config.batch_size < dist.world_size:
        raise InvalidParameter(
            "--batch-size", config.batch_size, f"at least the number of processes ({dist.world_size})"
        )
    # The weights before the photos: an unavailable --weights fails before any photo is decoded.
    used = saved["vgg"] if saved is not None else None
    choice = resolve_weights(
        used["weights"] if used else config.weights,
        used["arch"] if used else terms_config.requested_network(),
        on_download=download_events(callbacks),
    )
    if choice.notice:
        emit(callbacks, Notice(choice.notice))
    arch = choice.arch or terms_config.requested_network()
    processes = dist.world_size if dist is not None else 1
    check_training_memory(config.size, config.batch_size, config.width, device, processes=processes)
    train_photos, val_photos, skipped = _photos(config, data, val, saved, callbacks)
    val_images = centre_squares(val_photos, config.size)
    if dist is not None and len(val_images) < dist.world_size:
        raise InvalidParameter(
            "--val", str(val or data), f"at least {dist.world_size} photos (one per process)"
        )

    content_lw, style_lw = term_layers(terms_config, arch)
    vgg = VGGFeatures(
        arch,
        list(dict.fromkeys([*content_lw, *style_lw])),
        state_dict=choice.state_dict,
        seed=config.seed,
        pooling=config.pooling,
        source=choice.source,
    ).to(device)
    vgg_record = {
        "arch": arch,
        "weights": str(Path(choice.source).resolve()) if choice.kind == "file" else choice.kind,
        "source": choice.source,
        "pooling": config.pooling,
    }
    del choice  # the network holds its copy of the weights
    objective = BatchObjective(terms_config, vgg, specs, style_images, device)
    net = TransformerNet(config.width, config.blocks, seed=config.seed).to(device)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)

    resume_state = (
        torch.load(run_dir / RESUME_FILE, map_location=device, weights_only=True) if resume else None
    )
    period = [int(resume_state["epoch"]) if resume_state is not None else 0]

    def train_batches(generator: torch.Generator) -> _Crops:
        period[0] += 1
        return _Crops(train_photos, config.steps_in(period[0]), config, generator, dist, device)

    def epoch_values() -> dict[str, float]:
        return {"iteration": float(min(period[0] * config.report_every, config.iterations))}

    val_batches = _val_batches(val_images, config.batch_size, dist, device)
    meta: dict[str, Any] = {
        "styles": _style_record(specs),
        "input": "RGB in [0, 1], any size (reflection-padded to a multiple of 4 inside)",
        "vgg": vgg_record,
        "training": {
            "config": config.to_dict(),
            "data": str(Path(data).resolve()),
            "val": str(Path(val).resolve()) if val is not None else None,
            "photos": _names(train_photos, data),
            "val_photos": [str(p) for p in val_photos.paths],
            "skipped": [[str(p), why] for p, why in skipped],
            "loss_weights": objective.loss.weights,
        },
        "best": saved.get("best") if saved is not None else None,
    }

    def checkpoint(cp: FitCheckpoint) -> None:
        if not main:
            return
        step = int(cp.row["iteration"])
        try:
            if cp.is_best:
                meta["best"] = {k: v for k, v in cp.row.items() if k != "seconds"}
                save_stylizer(run_dir, net, meta)
            state = cp.state()
            write_atomic(run_dir / RESUME_FILE, lambda h: torch.save(state, h))
            write_history(run_dir / HISTORY_FILE, state["history"], param="-o")
            if config.sheet_every and cp.epoch % config.sheet_every == 0:
                sheet = _sheet(net, val_images, device, f"iteration {step}")
                _save_png(run_dir / SHEETS_FOLDER / f"iter_{step:06d}.png", sheet)
        except OSError as exc:  # a full disk: every file is whole or absent, so the last ones stand
            where = f" ({exc.filename})" if exc.filename else ""
            raise StyleforgeError(
                f"-o: could not write the run at iteration {step} in {run_dir}{where}: "
                f"{exc.strerror or exc}; continue with --resume once there is room"
            ) from None

    with watch(interrupt) as flag:
        result = fit(
            net,
            lambda batch: objective(net(batch), batch),
            objective.loss,
            train_batches,
            lambda: val_batches,
            epochs=config.epochs(),
            optimizer=f"adam@{config.lr!r}",
            guard=DivergenceGuard(),
            epoch_values=epoch_values,
            seed=config.seed,
            resume=resume_state,
            checkpoint=checkpoint,
            callbacks=callbacks,
            dist=dist,
            interrupt=flag,
        )
        with keeping(flag):  # what the run has is written whatever comes: a signal now only sets the flag
            best = next((row for row in result.history if int(row["epoch"]) == result.best_epoch), None)
            files = _finish(run_dir, net, meta, result, best, val_images, device) if main and best else []
    detail = result.stop_detail
    if resume_state is not None and int(resume_state["epoch"]) >= config.epochs():  # nothing left to run
        detail = f"the run already finished its {config.iterations} iterations; ask for more --iterations"
    return StylizerTrainResult(
        run_dir,
        result.history,
        int(best["iteration"]) if best is not None else 0,
        result.stop_reason,
        detail,
        skipped,
        config,
        files,
    )
