"""Options declared once: the click options, the checks and the docs' tables are the declarations'.

Every option of a transfer (``TransferConfig``), its guidance (``GuidanceConfig``), a video
(``VideoConfig``), ``make-dataset`` (``DatasetConfig``), ``train-attrs`` (``TrainConfig``),
``train-stylizer`` (``StylizerConfig``) and ``score`` (``ScoreConfig``) is a declared dataclass
field; these tests hold each thing made from the declarations equal to them, and the guidance
options out of the transfer's configuration.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import click
import pytest
from _helpers import invoke, one_line_error, write_samples

from styleforge.cli import cli
from styleforge.cli.flags import from_flags
from styleforge.config import (
    GUIDANCE_KEYS,
    DatasetConfig,
    ScoreConfig,
    TrainConfig,
    TransferConfig,
    VideoConfig,
)
from styleforge.errors import InvalidParameter
from styleforge.feedforward.config import TERM_FIELDS, StylizerConfig
from styleforge.guidance.config import GuidanceConfig
from styleforge.option import declared, shown_default

ROOT = Path(__file__).resolve().parents[1]

#: Each command and the configurations whose options it takes.
COMMANDS = {
    "transfer": (TransferConfig, GuidanceConfig),
    "video": (TransferConfig, VideoConfig),
    "make-dataset": (DatasetConfig,),
    "train-attrs": (TrainConfig,),
    "train-stylizer": (StylizerConfig,),
    "score": (ScoreConfig,),
}


def _params(command: str) -> dict[str, click.Parameter]:
    return {p.name: p for p in cli.commands[command].params if p.name}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_click_option_is_its_declaration(command: str) -> None:
    params = _params(command)
    ctx = click.Context(cli.commands[command])
    for cls in COMMANDS[command]:
        defaults = cls()
        for field, declaration in declared(cls):
            param = params[field.name]
            assert isinstance(param, click.Option), field.name
            assert param.opts == [declaration.flag], field.name
            assert param.secondary_opts == (
                [f"--no-{declaration.flag[2:]}"] if declaration.negatable else []
            ), field.name
            assert param.multiple == (declaration.kind in ("items", "pairs")), field.name
            record = param.get_help_record(ctx)
            assert record is not None
            names, text = record
            assert text.startswith(declaration.help), field.name
            if declaration.shown_metavar:
                assert names == f"{declaration.flag} {declaration.shown_metavar}", field.name
            default = getattr(defaults, field.name)
            if (default is None or default == {}) and shown_default(declaration, default):  # "auto"
                assert text.endswith(f"[default: {shown_default(declaration, default)}]"), field.name
            elif not (default is None or default == () or default is False) or declaration.negatable:
                assert "[default: " in text, field.name  # click shows the value itself
            else:
                assert "[default: " not in text, field.name
        # click's defaults, read back, are the declared defaults
        assert from_flags(cls, {name: p.default for name, p in params.items()}) == defaults


def test_no_command_declares_a_configuration_option_by_hand() -> None:
    """Every option of transfer and video that is a configuration field comes from its declaration,
    and every declaration has its option (the same flag never declared twice)."""
    for command, classes in COMMANDS.items():
        fields = {field.name for cls in classes for field, _ in declared(cls)}
        assert fields == {f.name for cls in classes for f in dataclasses.fields(cls)}  # all declared
        options = {p.name for p in cli.commands[command].params if isinstance(p, click.Option)}
        assert fields <= options
        every = [o.flag for cls in classes for _, o in declared(cls)]
        assert len(every) == len(set(every)), command


def test_the_stylizers_term_options_are_the_transfers_with_their_own_defaults() -> None:
    transfer = {field.name: declaration for field, declaration in declared(TransferConfig)}
    stylizer = {field.name: declaration for field, declaration in declared(StylizerConfig)}
    assert set(TERM_FIELDS) <= set(stylizer)
    for name in TERM_FIELDS:
        ours, theirs = stylizer[name], transfer[name]
        for key in ("flag", "kind", "choices", "minimum", "maximum", "above", "metavar", "parse"):
            assert getattr(ours, key) == getattr(theirs, key), (name, key)
    # its own defaults where a network trained on crops needs them
    assert (StylizerConfig().style_loss, TransferConfig().style_loss) == ("gram", "w2")
    assert StylizerConfig().content_layers == ("relu2_2",) != TransferConfig().content_layers


#: Each command's arguments before the option (files that need not exist).
BASE = {
    "transfer": ("transfer", "c.jpg", "--style", "s.jpg", "-o", "o.png"),
    "video": ("video", "clip.mp4", "--style", "s.jpg", "-o", "out.mp4"),
    "make-dataset": ("make-dataset", "set"),
    "train-attrs": ("train-attrs", "--data", "data", "-o", "run"),
    "train-stylizer": ("train-stylizer", "--data", "data", "--style", "s.jpg", "-o", "run"),
    "score": ("score", "run", "a.png"),
}


#: An out-of-range (or mistyped) value of each kind of declared option, and the whole error line.
BAD = [
    ("--content-weight", "-1", "-1.0", "a finite number >= 0"),
    ("--tv-weight", "inf", "inf", "a finite number >= 0"),
    ("--style-scale", "0", "0.0", "a finite number > 0"),
    ("--lr", "0", "0.0", "a finite number > 0"),
    ("--init-noise-blend", "1.5", "1.5", "a number from 0 to 1"),
    ("--divergence-factor", "1", "1.0", "a number > 1 (inf disables the ratio check)"),
    ("--iterations", "0", "0", "a whole number >= 1"),
    ("--min-size", "8", "8", "a whole number >= 16"),
    ("--tile", "32", "'32'", "auto, off or a tile side in px >= 64"),
    ("--tile", "big", "'big'", "auto, off or a tile side in px >= 64"),
    ("--scales", "0", "'0'", "auto or a whole number >= 1"),
    ("--scales", "many", "'many'", "auto or a whole number >= 1"),
    ("--style-loss", "w3", "'w3'", "one of: gram, w2, sw"),
    ("--content-layers", ",", "''", "at least one layer name"),
    ("--attr-weight", "-2", "-2.0", "a finite number >= 0"),
]
#: The same for the attribute network's commands.
BAD_ATTRIBUTES = [
    ("make-dataset", "--count", "0", "0", "a whole number >= 1"),
    ("make-dataset", "--seed", "-1", "-1", "a whole number >= 0"),
    ("make-dataset", "--size", "8", "8", "a whole number of pixels >= 16"),
    ("train-attrs", "--backbone", "nope", "'nope'", "one of: resnet50, resnet18, vgg19, vgg16"),
    ("train-attrs", "--size", "16", "16", "a whole number >= 32"),
    ("train-attrs", "--trunk", "-1", "-1", "a whole number >= 0"),
    ("train-attrs", "--workers", "-1", "-1", "a whole number >= 0"),
    ("train-attrs", "--backbone-lr-scale", "-1", "-1.0", "a finite number >= 0"),
    ("train-attrs", "--huber-delta", "0", "0.0", "a finite number > 0"),
    ("train-attrs", "--lr", "0", "0.0", "a finite number > 0"),
    ("train-attrs", "--label-smoothing", "1", "1.0", "a number from 0 up to (not including) 1"),
    ("train-attrs", "--plateau-factor", "1", "1.0", "a number between 0 and 1"),
    ("train-attrs", "--val-split", "1", "1.0", "a share from 0 up to (not including) 1"),
    ("train-attrs", "--divergence-factor", "1", "1.0", "a number > 1 (inf disables the ratio check)"),
    ("train-attrs", "--lr-schedule", "steps", "'steps'", "one of: none, cosine, plateau"),
    (
        "train-attrs",
        "--loss-weight",
        "contrast",
        "'contrast'",
        "KEY=WEIGHT (e.g. categorical=0.7 or contrast=2)",
    ),
    ("score", "--batch-size", "0", "0", "a whole number >= 1"),
    ("score", "--format", "xml", "'xml'", "one of: table, json, csv"),
    # train-stylizer: its own options, and a term option checked as the transfer checks it
    ("train-stylizer", "--size", "8", "8", "a whole number >= 16"),
    ("train-stylizer", "--lr", "0", "0.0", "a finite number > 0"),
    ("train-stylizer", "--sheet-every", "-1", "-1", "a whole number >= 0"),
    ("train-stylizer", "--blocks", "-1", "-1", "a whole number >= 0"),
    ("train-stylizer", "--style-loss", "w3", "'w3'", "one of: gram, w2, sw"),
    ("train-stylizer", "--style-scale", "0", "0.0", "a finite number > 0"),
]


@pytest.mark.parametrize(
    "command, flag, value, shown, valid", [("transfer", *b) for b in BAD] + BAD_ATTRIBUTES
)
def test_an_out_of_range_value_names_the_flag_the_value_and_what_is_valid(
    command: str, flag: str, value: str, shown: str, valid: str
) -> None:
    """The files need not exist: the options are checked before any input is opened."""
    line = one_line_error(invoke(*BASE[command], flag, value))
    assert line == f"error: {flag}: {shown} is not valid; expected {valid}"


@pytest.mark.parametrize(
    "command, flag, value, expected",
    [  # an item's syntax, checked by its declared parser
        ("transfer", "--optimizer", "adam:0", "--optimizer: 'adam:0' is not valid"),
        ("transfer", "--style-mask", "nosign", "--style-mask: 'nosign' is not valid"),
        ("transfer", "--attr", "contrast", "--attr: 'contrast' is not valid; expected NAME=VALUE[:WEIGHT]"),
        # the video's own options
        (
            "video",
            "--temporal-weight",
            "-1",
            "--temporal-weight: -1.0 is not valid; expected a finite number >= 0",
        ),
        (
            "video",
            "--frame-iterations",
            "0",
            "--frame-iterations: 0 is not valid; expected a whole number >= 1",
        ),
        ("video", "--fps", "0", "--fps: 0.0 is not valid; expected a finite number > 0"),
        # one number of a KEY=NUMBER option, named by its key; a rule between two options
        (
            "train-attrs",
            "--loss-weight",
            "contrast=-1",
            "--loss-weight contrast: '-1' is not valid; expected a finite number >= 0",
        ),
        ("train-attrs", "--augment", "standard", "--augment: 'standard' is not valid; expected none"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_flag(command: str, flag: str, value: str, expected: str) -> None:
    line = one_line_error(invoke(*BASE[command], flag, value))
    assert line.startswith(f"error: {expected}")


def test_the_python_api_gets_the_same_checks() -> None:
    with pytest.raises(InvalidParameter, match=r"^--size: 0 is not valid; expected a whole number >= 1$"):
        TransferConfig(size=0).validate()
    with pytest.raises(InvalidParameter, match="expected one or more NAME.*stages"):
        TransferConfig(optimizer="adam").validate()  # type: ignore[arg-type]
    with pytest.raises(
        InvalidParameter, match="--preserve-colors: 'yes' is not valid; expected true or false"
    ):
        TransferConfig(preserve_colors="yes").validate()  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match="--attr: 'contrast=9' is not valid; expected --attrs-model"):
        GuidanceConfig(attrs=("contrast=9",)).validate()
    with pytest.raises(InvalidParameter, match="--tile-overlap: 40 is not valid; expected less than half"):
        TransferConfig(tile="64", tile_overlap=40).validate()  # a rule between two options
    TransferConfig(tile=512, scales=None, divergence_factor=float("inf")).validate()
    with pytest.raises(
        InvalidParameter, match=r"^--loss-weight contrast: -1 is not valid; expected a finite"
    ):
        TrainConfig(loss_weights={"contrast": -1}).validate()
    with pytest.raises(InvalidParameter, match=r"^--loss-weight: 'x' is not valid; expected KEY=WEIGHT"):
        TrainConfig(loss_weights="x").validate()  # type: ignore[arg-type]
    with pytest.raises(InvalidParameter, match=r"^--test-split: 0.5 is not valid; expected a share that"):
        TrainConfig(val_split=0.6, test_split=0.5).validate()  # a rule between two options
    with pytest.raises(
        InvalidParameter, match=r"^--batch-size: 0 is not valid; expected a whole number >= 1$"
    ):
        ScoreConfig(batch_size=0).validate()
    TrainConfig(
        lr=0.5, workers=0, loss_weights={"categorical": 0.7}, divergence_factor=float("inf")
    ).validate()
    ScoreConfig(format="csv").validate()
    assert TrainConfig().loss_weights is not TrainConfig().loss_weights  # each its own


def test_resume_checks_the_options_given_before_reading_the_run(tmp_path: Path) -> None:
    """Each option given is checked as declared (the run folder need not exist); the rules between
    options wait for the saved run's values (its --finetune may allow --augment standard)."""
    line = one_line_error(invoke("train-attrs", "-o", tmp_path / "run", "--resume", "--size", "8"))
    assert line == "error: --size: 8 is not valid; expected a whole number >= 32"
    line = one_line_error(invoke("train-attrs", "-o", tmp_path / "run", "--resume", "--augment", "standard"))
    assert line.startswith("error: --resume: ") and "has no resume.pt" in line


def test_the_training_configuration_round_trips_through_json() -> None:
    """``model.json`` keeps it; older runs without the trunk or feature_norm read as they trained."""
    config = TrainConfig(loss_weights={"categorical": 0.7}, lr=0.5, divergence_factor=float("inf"))
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = {k: v for k, v in TrainConfig().to_dict().items() if k not in ("trunk", "feature_norm")}
    assert (TrainConfig.from_dict(old).trunk, TrainConfig.from_dict(old).feature_norm) == (0, "l2")
    with pytest.raises(InvalidParameter, match="config key: 'trunks' is not valid; expected one of"):
        TrainConfig.from_dict({"trunks": 2})


def _docs_script():
    spec = importlib.util.spec_from_file_location(
        "make_option_tables", ROOT / "docs" / "make_option_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_tables_are_the_declarations() -> None:
    """docs/make_option_tables.py writes them; a declaration changed without it fails here."""
    script = _docs_script()
    marked = []
    for page in script.PAGES:
        text = page.read_text()
        assert script.render(text) == text, f"{page}: run python docs/make_option_tables.py"
        marked += script.marked(text)
    assert sorted(marked) == sorted(script.TABLES)
    for page, classes in (
        ("transfer.md", (TransferConfig, GuidanceConfig)),
        ("attributes.md", (DatasetConfig, TrainConfig, ScoreConfig)),
    ):
        text = (ROOT / "docs" / page).read_text()
        for cls in classes:
            for _, declaration in declared(cls):
                assert f"| `{declaration.flag}" in text, (page, declaration.flag)


def test_the_docs_table_changes_with_a_declaration() -> None:
    script = _docs_script()
    text = "<!-- options video (made by a script) -->\nstale\n<!-- end of options -->\n"
    table = script.render(text)
    assert "stale" not in table
    assert "| `--temporal-weight` | 100 | Weight of the temporal term" in table
    assert "| `--fps` | the input video's; 24 for a folder of frames | Output frame rate. |" in table
    # where an option says where its default comes from, the table has a column for it
    table = script.render(text.replace("video", "train-attrs"))
    assert table.splitlines()[1] == "| option | default | meaning | where the default comes from |"
    assert "| `--loss-weight KEY=W` | every term 1 | " in table
    assert "| Keras's default; ACAN's final run: `categorical=0.7` |" in table


def test_the_transfer_configuration_has_no_guidance_options() -> None:
    names = {field.name for field in dataclasses.fields(TransferConfig)}
    assert not names & set(GUIDANCE_KEYS)
    assert tuple(field.name for field in dataclasses.fields(GuidanceConfig)) == GUIDANCE_KEYS
    for path in (ROOT / "styleforge" / "stylize").rglob("*.py"):
        text = path.read_text()
        assert "attrs_model" not in text and "score_with" not in text, path


def test_older_configurations_with_the_guidance_options_are_read() -> None:
    """Output metadata of a version whose transfer options held the guidance's."""
    old = {**TransferConfig(size=64).to_dict(), "attrs_model": "runs/a", "attrs": ["contrast=9"]}
    old.update(attr_weight=2.0, score_with=None)
    assert TransferConfig.from_dict(old) == TransferConfig(size=64)
    guidance = GuidanceConfig(attrs_model="runs/a", attrs=("contrast=9",), attr_weight=2.0)
    assert GuidanceConfig.from_metadata({"config": old}) == guidance
    assert GuidanceConfig.from_metadata({"config": old, "guidance": GuidanceConfig().to_dict()}) == (
        GuidanceConfig()
    )
    assert GuidanceConfig.from_metadata({"config": TransferConfig().to_dict()}) == GuidanceConfig()
    with pytest.raises(InvalidParameter, match="config key: 'sizes' is not valid"):
        TransferConfig.from_dict({"sizes": 3})


def _png_with(path: Path, metadata: dict) -> Path:
    """A PNG whose styleforge metadata is ``metadata``."""
    from PIL import Image, PngImagePlugin

    from styleforge.images import METADATA_KEY

    info = PngImagePlugin.PngInfo()
    info.add_itxt(METADATA_KEY, json.dumps(metadata))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_from_image_reads_the_guidance_options_of_an_older_png(tmp_path: Path) -> None:
    """The keys reach --score-with, whose folder is checked (and missing here) before any work; the
    new place, ``guidance``, wins over an older PNG's ``config``."""
    samples = write_samples(tmp_path)
    config = {**TransferConfig(size=32).to_dict(), "attrs_model": None, "attrs": [], "score_with": "gone"}
    meta = {"command": "transfer", "config": config, "content": str(samples["content"])}
    meta["styles"] = [str(samples["a"])]
    old = _png_with(tmp_path / "old.png", meta)
    line = one_line_error(invoke("transfer", "--from-image", old, "-o", tmp_path / "again.png"))
    assert line.startswith("error: --score-with: 'gone'") and "does not exist" in line
    new = _png_with(tmp_path / "new.png", {**meta, "guidance": {"score_with": "elsewhere"}})
    line = one_line_error(invoke("transfer", "--from-image", new, "-o", tmp_path / "again.png"))
    assert line.startswith("error: --score-with: 'elsewhere'") and "does not exist" in line
    assert not (tmp_path / "again.png").exists()
