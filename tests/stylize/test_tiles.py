"""Tiles: the grid, the windows, the automatic choice, and a tiled run against an untiled one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _helpers import invoke, one_line_error

import styleforge
from styleforge.config import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS
from styleforge.errors import InvalidParameter, ResourceError
from styleforge.images import load_image, read_metadata, resize_long_side
from styleforge.parsing import parse_optimizer
from styleforge.stylize import memory
from styleforge.stylize import run as run_module
from styleforge.stylize.memory import estimate_bytes, held_whole, style_pass
from styleforge.stylize.objective import LaplacianTerm, ToneTerm
from styleforge.stylize.run import Stylizer
from styleforge.stylize.tiles import Tile, choose_tile, feather, pass_offsets, tile_grid

LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1"]
ADAM = [parse_optimizer("adam")]
FAST = dict(weights="random", optimizer=("adam",), scales=1, size=96)


def _coverage(shape: tuple[int, int], tiles: list[Tile]) -> torch.Tensor:
    count = torch.zeros(shape)
    for t in tiles:
        count[t.y : t.y + t.h, t.x : t.x + t.w] += 1
    return count


@pytest.mark.parametrize("shape", [(64, 96), (100, 100), (130, 257), (64, 64)])
@pytest.mark.parametrize("offset", [(0, 0), (17, 5)])
def test_the_grid_covers_the_image_with_overlapping_tiles_inside_it(
    shape: tuple[int, int], offset: tuple[int, int]
) -> None:
    tiles = tile_grid(shape, 64, 16, offset)
    assert (_coverage(shape, tiles) >= 1).all()
    assert all(t.y >= 0 and t.y + t.h <= shape[0] and t.x >= 0 and t.x + t.w <= shape[1] for t in tiles)
    assert all(t.h == min(64, shape[0]) and t.w == min(64, shape[1]) for t in tiles)
    xs = sorted({t.x for t in tiles})
    assert all(b - a <= 64 - 16 for a, b in zip(xs, xs[1:]))  # neighbours share at least the overlap


def test_later_passes_shift_the_grid_at_seeded_random_offsets() -> None:
    offsets = pass_offsets(3, 48, seed=7)
    assert (
        offsets[0] == (0, 0)
        and offsets == pass_offsets(3, 48, seed=7)
        and offsets != pass_offsets(3, 48, seed=8)
    )
    assert all(0 <= d < 48 for o in offsets for d in o)
    first = {t.x for t in tile_grid((64, 256), 64, 16, offsets[0])}
    second = {t.x for t in tile_grid((64, 256), 64, 16, offsets[1])}
    assert first != second  # the borders move


def test_the_window_ramps_only_where_a_neighbour_blends_in() -> None:
    shape = (64, 160)
    left, middle = Tile(0, 0, 64, 64), Tile(0, 48, 64, 64)
    w = feather(left, shape, 16)[0, 0]
    assert w.shape == (64, 64) and torch.all(w[:, :48] == 1)  # the image's own border stays 1
    assert w[:, -1].max() < 0.1 and torch.all(w[:, -16:].diff(dim=1) < 0)  # fades out towards the neighbour
    m = feather(middle, shape, 16)[0, 0]
    assert m[:, 0].max() < 0.1 and m[:, -1].max() < 0.1 and torch.all(m[:, 16:48] == 1)


def test_auto_tiles_only_what_does_not_fit_and_picks_the_largest_tile_that_does() -> None:
    need = estimate_bytes("vgg16", LAYERS, 512, 512, ADAM)
    args = dict(
        arch="vgg16",
        layers=LAYERS,
        shape=(512, 512),
        style_shapes=[(128, 128)],
        chain=ADAM,
        auto=True,
        size=512,
    )
    assert choose_tile(free=need, requested=None, **args) is None
    held, styles = held_whole((512, 512)), style_pass("vgg16", LAYERS, [(128, 128)])
    free = held + estimate_bytes("vgg16", LAYERS, 256, 256, ADAM) + 1
    assert styles < free < need
    assert choose_tile(free=free, requested=None, **args) == 256  # the largest multiple of 64 that fits
    assert choose_tile(free=free, requested=None, **{**args, "auto": False}) is None  # --tile off
    assert (
        choose_tile(free=None, requested=128, **args) == 128
        and choose_tile(free=None, requested=600, **args) is None
    )
    with pytest.raises(ResourceError, match="even 64 px tiles"):
        choose_tile(free=held + styles, requested=None, **args)
    with pytest.raises(ResourceError, match="style images' statistics"):  # tiles do not shrink the style pass
        choose_tile(free=free, requested=None, **{**args, "style_shapes": [(1024, 1024)]})


def test_inference_peak_counts_the_kept_layers_and_the_largest_pass() -> None:
    small, large = (memory.inference_bytes("vgg16", LAYERS, n, n) for n in (128, 256))
    assert 3.5 < large / small <= 4.0
    assert small > 4 * 64 * 128 * 128 * 3  # at least conv1_1's input, conv and ReLU outputs


def test_a_tiled_run_gets_close_to_the_untiled_one(images: dict[str, Path]) -> None:
    """Tiled and untiled results of an image small enough for both, judged by the same whole-image
    objective: the tiled one improves on the content image about as much as the untiled one."""
    whole = styleforge.transfer(images["content"], [str(images["a"])], tile="off", iterations=30, **FAST)
    tiled = styleforge.transfer(
        images["content"], [str(images["a"])], tile="64", tile_overlap=16, iterations=30, **FAST
    )
    assert tiled.image.shape == whole.image.shape == (3, 64, 96)
    assert tiled.metadata["tiles"]["tile"] == 64 and tiled.metadata["tiles"]["optimised"] >= 4
    judge = Stylizer([str(images["a"])], tile="off", iterations=1, **FAST)
    content = resize_long_side(load_image(images["content"]).rgb, 96)
    start = judge.evaluate(images["content"], content).total
    untiled_total = judge.evaluate(images["content"], whole.image).total
    tiled_total = judge.evaluate(images["content"], tiled.image).total
    assert untiled_total < start and tiled_total < start
    assert (start - tiled_total) > 0.5 * (start - untiled_total)


def test_tiles_leave_no_seam(images: dict[str, Path]) -> None:
    """The gradient across the first pass's tile borders is no larger than elsewhere."""
    tiled = styleforge.transfer(
        images["content"],
        [str(images["a"])],
        tile="64",
        tile_overlap=16,
        iterations=20,
        tile_passes=1,
        **FAST,
    )
    image = tiled.image
    jumps = (
        (image[:, :, 1:] - image[:, :, :-1]).abs().mean(dim=(0, 1))
    )  # (W - 1,) between columns x and x + 1
    borders = {t.x + t.w - 1 for t in tile_grid((64, 96), 64, 16)} - {95}
    at_borders = torch.stack([jumps[b] for b in borders]).mean()
    assert at_borders < 2 * jumps.mean()


def test_the_memory_check_suggests_tiles_and_auto_uses_them(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    layers = [*DEFAULT_CONTENT_LAYERS, *DEFAULT_STYLE_LAYERS]
    # At small sizes the style image's own pass outweighs what tiles save: --style-scale 0.5 keeps it small.
    assert memory.inference_bytes("vgg19", layers, 96, 96) < estimate_bytes("vgg19", layers, 128, 128, ADAM)
    free = estimate_bytes("vgg19", layers, 128, 128, ADAM) + held_whole((128, 192)) + 1
    assert free < estimate_bytes("vgg19", layers, 128, 192, ADAM)
    monkeypatch.setattr(run_module, "available_bytes", lambda device: free)
    monkeypatch.setattr(memory, "available_bytes", lambda device: free)
    out = tmp_path / "out.png"
    args = [
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "192",
        "--iterations",
        "2",
        "--weights",
        "random",
        "--optimizer",
        "adam",
        "--scales",
        "1",
        "--style-scale",
        "0.5",
        "--quiet",
    ]
    line = one_line_error(invoke("transfer", *args, "--tile", "off"), code=1)
    assert "try --tile auto" in line and not out.exists()
    result = styleforge.transfer(
        images["content"], [str(images["a"])], iterations=2, style_scale=0.5, **{**FAST, "size": 192}
    )
    assert result.metadata["tiles"]["tile"] == 128 and result.image.shape == (3, 128, 192)


@pytest.mark.parametrize("value", ["32", "big", "-1"])
def test_bad_tile_options_are_one_line_errors(images: dict[str, Path], tmp_path: Path, value: str) -> None:
    line = one_line_error(
        invoke(
            "transfer", images["content"], "--style", images["a"], "-o", tmp_path / "o.png", "--tile", value
        )
    )
    assert line.startswith("error: --tile: ") and "auto, off or a tile side in px >= 64" in line
    line = one_line_error(
        invoke(
            "transfer",
            images["content"],
            "--style",
            images["a"],
            "-o",
            tmp_path / "o.png",
            "--tile",
            "128",
            "--tile-overlap",
            "64",
        )
    )
    assert line.startswith("error: --tile-overlap: ")


def test_tiles_refuse_what_needs_the_whole_image(images: dict[str, Path], tmp_path: Path) -> None:
    mask = tmp_path / "mask.png"
    from PIL import Image

    Image.new("L", (48, 32), 255).save(mask)
    with pytest.raises(InvalidParameter, match="--style-mask"):
        styleforge.transfer(
            images["content"],
            [str(images["a"]), str(images["b"])],
            tile="64",
            iterations=1,
            style_masks=(f"a={mask}",),
            **FAST,
        )


def test_the_passes_share_the_steps_exactly_and_keep_two_each() -> None:
    from styleforge.stylize.tiles import pass_steps

    assert pass_steps([10], 2) == [[5], [5]] and pass_steps([5], 2) == [[3], [2]]
    assert pass_steps([3], 2) == [[3]] and pass_steps([1], 3) == [[1]]  # one evaluation cannot show progress
    assert pass_steps([4, 1], 2) == [[2, 1], [2, 0]]  # a stage shorter than the passes skips the later ones
    assert all(
        sum(map(sum, pass_steps([n, m], p))) == n + m
        for n in range(1, 9)
        for m in range(1, 5)
        for p in (1, 2, 3)
    )


@pytest.mark.parametrize("iterations", [2, 3, 7])
def test_a_tiled_runs_counter_never_passes_its_budget(
    images: dict[str, Path], tmp_path: Path, iterations: int
) -> None:
    """Through the command line: the progress lines, the history and the final line count the
    scale's iterations (each one step of every tile), never more than --iterations; and a budget
    too small for two evaluations in every pass still ends with a changed picture, not "no progress"."""
    out, history = tmp_path / "out.png", tmp_path / "h.csv"
    result = invoke(
        "transfer",
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "96",
        "--scales",
        "1",
        "--tile",
        "64",
        "--tile-overlap",
        "16",
        "--iterations",
        iterations,
        "--weights",
        "random",
        "--optimizer",
        "adam",
        "--history",
        history,
    )
    assert result.exit_code == 0, result.output
    counted = [
        int(line.split()[1].split("/")[0]) for line in result.output.splitlines() if line.startswith("iter ")
    ]
    assert counted and max(counted) == iterations and counted == sorted(counted)
    assert all(f"/{iterations} " in line for line in result.output.splitlines() if line.startswith("iter "))
    rows = history.read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in rows] == list(range(1, iterations + 1))
    assert f"after {iterations} iterations" in result.output and "no progress" not in result.output
    meta = read_metadata(out)
    assert meta["iteration"] <= iterations and meta["tiles"]["optimised"] >= 2
    content = resize_long_side(load_image(images["content"]).rgb, 96)
    assert (load_image(out).rgb - content).abs().max() > 0.01  # the picture changed


def test_a_tiles_style_terms_are_divided_by_the_whole_contents_magnitude(images: dict[str, Path]) -> None:
    """``--style-norm balanced`` measures the content once per scale over the whole picture: a tile
    (here a flat corner would have a smaller magnitude) gets the whole's, measured tile by tile (as
    the scale is optimised) within the tiles' borders of one pass over the whole."""
    stylizer = Stylizer([str(images["a"])], tile="64", iterations=1, style_norm="balanced", **FAST)
    scale = stylizer.prepare(images["content"]).scales[-1]
    assert scale.tile == 64
    tiled = stylizer._content_magnitudes(scale)
    corner = scale.crop(Tile(0, 0, 64, 64))
    assert stylizer._content_magnitudes(corner) is tiled  # measured once, shared by the tiles
    whole = Stylizer([str(images["a"])], tile="off", iterations=1, style_norm="balanced", **FAST)
    untiled = whole._content_magnitudes(whole.prepare(images["content"]).scales[-1])
    assert set(tiled) == set(untiled) == set(DEFAULT_STYLE_LAYERS)
    for layer in tiled:
        assert tiled[layer].item() == pytest.approx(untiled[layer].item(), rel=0.1)
    assert not tiled[DEFAULT_STYLE_LAYERS[0]].is_inference()
    gram = Stylizer(
        [str(images["a"])], tile="64", iterations=1, style_norm="balanced", style_loss="gram", **FAST
    )
    theirs = gram._content_magnitudes(scale)  # the first Stylizer's plan: measured anew, as gram measures
    assert theirs is not tiled and theirs["relu1_1"].item() != pytest.approx(tiled["relu1_1"].item(), rel=0.1)
    off = Stylizer([str(images["a"])], tile="64", iterations=1, **FAST)  # --style-norm style
    assert off._content_magnitudes(off.prepare(images["content"]).scales[-1]) is None


def test_a_tiles_laplacian_and_tone_errors_are_relative_to_the_whole_content(images: dict[str, Path]) -> None:
    """A tile's targets are its own, but what the errors are divided by is the whole picture's: a
    tile of flat sky alone has a Laplacian and a tonal spread near zero, and would weigh its error
    that many times more than the untiled run does."""
    stylizer = Stylizer([str(images["a"])], tile="64", iterations=1, **FAST)
    scale = stylizer.prepare(images["content"]).scales[-1]
    corner = scale.crop(Tile(0, 0, 64, 64))
    tiled, _ = stylizer._objective(corner, [])
    untiled, _ = stylizer._objective(scale, [])
    for name in ("laplacian", "tone"):
        tile_term, whole_term = tiled.loss.terms[name], untiled.loss.terms[name]
        assert tile_term.target.shape[-2:] == (64, 64)  # the tile's own target
        assert tile_term.magnitude.item() == pytest.approx(whole_term.magnitude.item(), rel=1e-6), name
    # the corner alone measures otherwise, so the equality above is the whole's, not a coincidence
    own = {"laplacian": LaplacianTerm(corner.target[None]), "tone": ToneTerm(corner.target[None])}
    for name, term in own.items():
        assert term.magnitude.item() != pytest.approx(untiled.loss.terms[name].magnitude.item(), rel=1e-3)
    assert stylizer._whole_luminance_magnitudes(corner) is stylizer._whole_luminance_magnitudes(
        scale.crop(Tile(32, 0, 64, 64))
    )  # measured once per scale, shared by its tiles
    assert stylizer._whole_luminance_magnitudes(scale) is None  # a whole scale measures itself
