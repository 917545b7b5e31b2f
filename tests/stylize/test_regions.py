"""Tests of style regions (``--style-mask``, ``--style-image-mask``) and of ``--style-loss`` in a
whole transfer: masks read, resized and checked; each style lands in its own region; every loss
runs through the API, coarse-to-fine and the CLI; bad masks give one-line errors."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from _helpers import invoke, one_line_error
from PIL import Image

import styleforge
from styleforge.config import TransferConfig
from styleforge.errors import InputFileError, InvalidParameter
from styleforge.images import read_metadata
from styleforge.parsing import parse_region
from styleforge.stylize.regions import load_mask, output_regions

FAST = {"size": 32, "iterations": 3, "weights": "random", "device": "cpu"}


def _mask(path: Path, array: np.ndarray, mode: str = "L") -> Path:
    Image.fromarray(array.astype(np.uint8), mode).save(path)
    return path


@pytest.fixture
def halves(tmp_path: Path) -> dict[str, Path]:
    """Top-half and bottom-half masks (40×60), an all-black one and a text file."""
    top = np.zeros((40, 60))
    top[:20] = 255
    (tmp_path / "notes.txt").write_text("not an image")
    return {
        "top": _mask(tmp_path / "top.png", top),
        "bottom": _mask(tmp_path / "bottom.png", 255 - top),
        "black": _mask(tmp_path / "black.png", np.zeros((40, 60))),
        "text": tmp_path / "notes.txt",
    }


# --- reading and resolving ------------------------------------------------------------------------


def test_parse_region() -> None:
    assert parse_region("sky=masks/sky.png") == ("sky", Path("masks/sky.png"))
    for bad in ("sky.png", "=sky.png", "a="):
        with pytest.raises(InvalidParameter, match="--style-mask.*NAME=MASK"):
            parse_region(bad)


def test_a_mask_is_resized_and_its_alpha_counts(tmp_path: Path, halves: dict[str, Path]) -> None:
    mask = load_mask(halves["top"], (10, 12), param="--style-mask", whole="a=top.png")
    assert mask.shape == (10, 12) and mask[:4].min() > 0.99 and mask[6:].max() < 0.01
    rgba = np.full((8, 8, 4), 255)
    rgba[:, :4, 3] = 0  # the left half transparent
    mask = load_mask(
        _mask(tmp_path / "alpha.png", rgba, "RGBA"), (8, 8), param="--style-mask", whole="a=alpha.png"
    )
    assert mask[:, :4].max() == 0 and mask[:, 4:].min() == 1


def test_unmasked_styles_share_what_the_masks_leave(halves: dict[str, Path]) -> None:
    regions = output_regions([f"a={halves['top']}"], ["style.a", "style.b", "style.c"], (8, 8))
    assert regions[1] is regions[2]  # one shared region
    assert torch.allclose(regions[0].mask + regions[1].mask, torch.ones(8, 8), atol=1e-6)
    assert output_regions([], ["style.a"], (8, 8)) == [None]


def test_styles_given_the_same_mask_share_a_region_and_positions_name_styles(halves: dict[str, Path]) -> None:
    regions = output_regions([f"1={halves['top']}", f"b={halves['top']}"], ["style.a", "style.b"], (8, 8))
    assert regions[0] is regions[1]


@pytest.mark.parametrize(
    "items, match",
    [
        (["z={top}"], r"--style-mask: 'z=.*NAME one of the styles: a, b or a position 1\.\.2"),
        (["3={top}"], "a position 1..2"),
        (["a={top}", "a={bottom}"], "one mask per style"),
        (["a={black}"], "empty"),
        (["a={top}", "b={bottom}", "c={top}"], None),  # fine: c shares a's region
    ],
)
def test_bad_masks_are_named(halves: dict[str, Path], items: list[str], match: str | None) -> None:
    items = [i.format(**halves) for i in items]
    if match is None:
        assert len(output_regions(items, ["style.a", "style.b", "style.c"], (8, 8))) == 3
        return
    with pytest.raises(InvalidParameter, match=match):
        output_regions(items, ["style.a", "style.b"], (8, 8))


def test_masks_that_leave_nothing_for_an_unmasked_style_are_an_error(halves: dict[str, Path]) -> None:
    with pytest.raises(InvalidParameter, match="leave some of the image to style.c"):
        output_regions(
            [f"a={halves['top']}", f"b={halves['bottom']}"], ["style.a", "style.b", "style.c"], (8, 8)
        )


@pytest.mark.parametrize("which, problem", [("text", "not an image"), ("missing", "does not exist")])
def test_an_unreadable_mask_is_an_input_error(halves: dict[str, Path], which: str, problem: str) -> None:
    path = halves.get(which, Path("nowhere/mask.png"))
    with pytest.raises(InputFileError, match=f"--style-mask: .*{problem}"):
        output_regions([f"a={path}"], ["style.a"], (8, 8))


def test_config_checks_the_mask_syntax_and_the_loss_name() -> None:
    with pytest.raises(InvalidParameter, match="--style-image-mask"):
        TransferConfig(style_image_masks=("nosign",)).validate()
    with pytest.raises(InvalidParameter, match="--style-loss: 'w3'.*gram, w2, sw"):
        TransferConfig(style_loss="w3").validate()


# --- in a transfer --------------------------------------------------------------------------------


def _flat(path: Path, rgb: tuple[int, int, int], size: int = 40) -> Path:
    Image.new("RGB", (size, size), rgb).save(path)
    return path


@pytest.mark.parametrize("loss", ["gram", "w2", "sw"])
def test_each_style_lands_in_its_own_region(tmp_path: Path, halves: dict[str, Path], loss: str) -> None:
    """A red style on the top half and a blue one on the bottom: the top ends redder than the
    bottom, and the bottom bluer (seeded random weights still see colour)."""
    content = _flat(tmp_path / "grey.png", (128, 128, 128), 48)
    red, blue = _flat(tmp_path / "red.png", (220, 30, 30)), _flat(tmp_path / "blue.png", (30, 30, 220))
    result = styleforge.transfer(
        content,
        [red, blue],
        style_loss=loss,
        style_masks=(f"red={halves['top']}", f"blue={halves['bottom']}"),
        size=32,
        iterations=40,
        weights="random",
        device="cpu",
        optimizer=("adam",),
        content_weight=0.1,
    )
    image = result.image
    h = image.shape[1]
    top, bottom = image[:, : h // 2 - 2], image[:, h // 2 + 2 :]
    assert top[0].mean() - top[2].mean() > bottom[0].mean() - bottom[2].mean() + 0.05
    assert result.metadata["config"]["style_masks"] == [f"red={halves['top']}", f"blue={halves['bottom']}"]


@pytest.mark.parametrize("loss", ["w2", "sw"])
def test_each_loss_runs_a_two_style_transfer_whose_parts_add_up(images: dict[str, Path], loss: str) -> None:
    result = styleforge.transfer(
        images["content"], [f"{images['a']}:0.75", f"{images['b']}:0.25"], style_loss=loss, **FAST
    )
    summary = result.summary
    assert set(summary.raw) == {"content", "style.a", "style.b", "tv", "laplacian", "tone"}
    assert summary.raw["style.a"] == summary.raw["style.b"]  # one distance, to the blend
    assert summary.weighted["style.a"] == pytest.approx(3 * summary.weighted["style.b"])
    assert result.history[-1].summary.total < result.history[0].summary.total


def test_masks_and_style_image_masks_work_coarse_to_fine(
    images: dict[str, Path], halves: dict[str, Path]
) -> None:
    result = styleforge.transfer(
        images["content"],
        [images["a"], images["b"]],
        style_loss="sw",
        scales=2,
        style_masks=(f"a={halves['top']}",),
        style_image_masks=(f"b={halves['bottom']}",),
        **{**FAST, "size": 48},
    )
    assert result.metadata["scales"] == [34, 48] and result.improved


def test_a_style_image_mask_changes_the_style_target(
    images: dict[str, Path], halves: dict[str, Path]
) -> None:
    plain = styleforge.transfer(images["content"], [images["a"]], **{**FAST, "iterations": 1})
    masked = styleforge.transfer(
        images["content"],
        [images["a"]],
        style_image_masks=(f"a={halves['top']}",),
        **{**FAST, "iterations": 1},
    )
    assert masked.history[0].summary.raw["style.a"] != pytest.approx(plain.history[0].summary.raw["style.a"])


def test_the_cli_takes_the_loss_and_masks_and_records_them(
    tmp_path: Path, images: dict[str, Path], halves: dict[str, Path]
) -> None:
    out = tmp_path / "out.png"
    result = invoke(
        "transfer",
        images["content"],
        "--style",
        images["a"],
        "--style",
        images["b"],
        "--style-loss",
        "w2",
        "--style-mask",
        f"a={halves['top']}",
        "--size",
        32,
        "--iterations",
        2,
        "--weights",
        "random",
        "-o",
        out,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    config = read_metadata(out)["config"]
    assert config["style_loss"] == "w2" and config["style_masks"] == [f"a={halves['top']}"]
    again = invoke("transfer", "--from-image", out, "-o", tmp_path / "again.png", "--quiet")
    assert again.exit_code == 0, again.output
    assert read_metadata(tmp_path / "again.png")["config"]["style_masks"] == config["style_masks"]


@pytest.mark.parametrize(
    "args, match",
    [
        (
            ["--style-loss", "wasserstein"],
            "--style-loss: 'wasserstein' is not valid; expected one of: gram, w2, sw",
        ),
        (["--style-mask", "c={top}"], "--style-mask: 'c=.*NAME one of the styles: a"),
        (["--style-mask", "a={black}"], "--style-mask: 'a=.*empty"),
        (["--style-mask", "a={text}"], "--style-mask: .*notes.txt' is not an image"),
        (["--style-image-mask", "a"], "--style-image-mask: 'a' is not valid; expected NAME=MASK"),
    ],
)
def test_bad_loss_or_masks_on_the_cli_are_one_line_errors(
    tmp_path: Path, images: dict[str, Path], halves: dict[str, Path], args: list[str], match: str
) -> None:
    out = tmp_path / "out.png"
    result = invoke(
        "transfer",
        images["content"],
        "--style",
        images["a"],
        *[a.format(**halves) for a in args],
        "--size",
        32,
        "--weights",
        "random",
        "-o",
        out,
    )
    assert re.search(match, one_line_error(result)), result.output
    assert not out.exists()


def test_toml_config_takes_the_mask_keys(
    tmp_path: Path, images: dict[str, Path], halves: dict[str, Path]
) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'style-loss = "sw"\nstyle-mask = ["a={halves["top"]}"]\n'.replace("\\", "/"))
    out = tmp_path / "out.png"
    result = invoke(
        "transfer",
        images["content"],
        "--style",
        images["a"],
        "--style",
        images["b"],
        "--config",
        config,
        "--size",
        32,
        "--iterations",
        2,
        "--weights",
        "random",
        "-o",
        out,
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    meta = read_metadata(out)["config"]
    assert meta["style_loss"] == "sw" and meta["style_masks"] == [f"a={halves['top']}".replace("\\", "/")]


def test_an_image_from_before_style_losses_reruns_with_gram(tmp_path: Path, images: dict[str, Path]) -> None:
    """Its metadata has no style_loss: it was made with Gram matrices, so --from-image keeps them; nor
    the options added since, each rerun as it was before them (no Laplacian term, an even split, no
    tiles, float32, the style's own magnitude, no content detail at a scale's start, no tone term)."""
    from styleforge.images import save_image

    config = TransferConfig(size=32, iterations=2, weights="random").to_dict()
    del config["style_loss"], config["style_masks"], config["style_image_masks"], config["style_norm"]
    for key in ("laplacian_weight", "scale_split", "tile", "precision", "scale_detail", "tone_weight"):
        del config[key]
    old = tmp_path / "old.png"
    save_image(
        old,
        torch.rand(3, 8, 8),
        metadata={
            "command": "transfer",
            "config": config,
            "content": str(images["content"]),
            "styles": [str(images["a"])],
        },
    )
    result = invoke("transfer", "--from-image", old, "-o", tmp_path / "again.png", "--quiet")
    assert result.exit_code == 0, result.output
    again = read_metadata(tmp_path / "again.png")["config"]
    assert again["style_loss"] == "gram" and again["style_norm"] == "style"
    assert again["laplacian_weight"] == 0.0 and again["scale_split"] == 1.0
    assert again["tile"] == "off" and again["precision"] == "fp32" and again["scale_detail"] == 0.0
    assert again["tone_weight"] == 0.0


def test_a_style_whose_name_is_not_ascii_keeps_its_name_and_takes_a_mask(
    tmp_path: Path, images: dict[str, Path], halves: dict[str, Path]
) -> None:
    """風.png is ``style.風`` (it was ``style._``, which no --style-mask NAME could name), and a name
    stored decomposed (as some file systems keep ``é``) matches the name as typed."""
    import shutil
    import unicodedata

    from styleforge.parsing import parse_style, style_term_names

    wind = Path(shutil.copy(images["a"], tmp_path / "風.png"))
    cafe = Path(shutil.copy(images["b"], tmp_path / unicodedata.normalize("NFD", "café.png")))
    assert style_term_names(
        [parse_style(str(wind)), parse_style(str(cafe)), parse_style("my style.jpg")]
    ) == ["style.風", "style.café", "style.my_style"]
    out, history = tmp_path / "out.png", tmp_path / "h.csv"
    result = invoke(
        "transfer",
        images["content"],
        "--style",
        wind,
        "--style",
        cafe,
        "-o",
        out,
        "--history",
        history,
        "--style-mask",
        f"風={halves['top']}",
        "--style-mask",
        f"café={halves['bottom']}",
        "--size",
        32,
        "--iterations",
        2,
        "--weights",
        "random",
        "--optimizer",
        "adam",
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    assert "style.風" in history.read_text(encoding="utf-8").splitlines()[0]
    meta = read_metadata(out)
    assert set(meta["blend"]) == {"style.風", "style.café"} and "style.風" in meta["losses"]
    line = one_line_error(
        invoke(
            "transfer",
            images["content"],
            "--style",
            wind,
            "-o",
            tmp_path / "x.png",
            "--style-mask",
            f"雨={halves['top']}",
            "--size",
            32,
            "--weights",
            "random",
        )
    )
    assert "'雨=" in line and "風" in line  # the valid names listed as they are
