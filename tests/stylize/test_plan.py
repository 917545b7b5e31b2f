"""Tests of styleforge.stylize.plan: a content image's pyramid planned from the options and the images
alone (no network), its shapes known before any image is resized, and the plan the run then uses."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from PIL import Image

from styleforge.config import TransferConfig
from styleforge.errors import InvalidParameter
from styleforge.images import load_image
from styleforge.parsing import parse_style, style_term_names
from styleforge.stylize import run as run_module
from styleforge.stylize.objective import term_layers
from styleforge.stylize.plan import ContentPlan, Planner, ScalePlan, scale_chains, scale_sizes
from styleforge.stylize.run import Stylizer

FAST = dict(iterations=3, weights="random", optimizer=("adam",), device="cpu")


def _planner(config: TransferConfig, styles: list[str]) -> Planner:
    """The planning stage built from the options and the style images alone."""
    specs = [parse_style(s) for s in styles]
    count = config.resolved_scales()
    network = config.requested_network()
    content_lw, style_lw = term_layers(config, network)
    return Planner(
        config=config,
        sizes=scale_sizes(config.size, count, config.min_size),
        network=network,
        layers=list(dict.fromkeys([*content_lw, *style_lw])),
        style_layers=list(style_lw),
        chain=scale_chains(config, count)[-1],
        specs=specs,
        style_images=[load_image(s.path) for s in specs],
        names=style_term_names(specs),
    )


def _same(a: ContentPlan, b: ContentPlan) -> None:
    assert [s.size for s in a.scales] == [s.size for s in b.scales]
    assert [s.tile for s in a.scales] == [s.tile for s in b.scales]
    for x, y in zip(a.scales, b.scales):
        assert torch.equal(x.target, y.target)
        assert all(torch.equal(p, q) for p, q in zip(x.style_rgbs, y.style_rgbs, strict=True))
        masks = [(p is None, q is None) for p, q in zip(x.style_masks, y.style_masks, strict=True)]
        assert all(p == q for p, q in masks)
        assert all(torch.equal(p.mask, q.mask) for p, q in zip(x.style_masks, y.style_masks) if p and q)


@pytest.fixture
def half_mask(tmp_path: Path) -> Path:
    array = Image.new("L", (40, 40), 0)
    array.paste(255, (0, 0, 20, 40))
    array.save(tmp_path / "half.png")
    return tmp_path / "half.png"


def test_the_plan_is_made_without_a_network_and_is_the_one_the_run_uses(
    images: dict[str, Path], half_mask: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    styles = [f"{images['a']}@2", str(images["b"])]  # a's own style scale, b's from --style-scale
    config = TransferConfig(
        size=64, scales=3, min_size=32, style_scale=0.75, style_image_masks=(f"b={half_mask}",), **FAST
    )

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("planning built a network")

    monkeypatch.setattr(run_module, "VGGFeatures", no_network)
    planner = _planner(config, styles)
    content = load_image(images["content"])
    shapes = planner.shapes(content.size)
    planned = planner.plan(content, shapes)
    assert shapes.sizes == (32, 45, 64) and shapes.contents == ((21, 32), (30, 45), (43, 64))
    assert shapes.styles[-1] == ((128, 128), (48, 48)) and shapes.tiles == (None, None, None)
    for scale, content_shape, style_shapes in zip(planned.scales, shapes.contents, shapes.styles):
        assert tuple(scale.target.shape[-2:]) == content_shape
        assert tuple(tuple(rgb.shape[-2:]) for rgb in scale.style_rgbs) == style_shapes
        assert scale.style_masks[0] is None and scale.style_masks[1].mask.shape == style_shapes[1]
    monkeypatch.undo()

    used: list[ScalePlan] = []
    real = Stylizer._objective

    def spy(self: Stylizer, scale: ScalePlan, extensions: object) -> object:
        used.append(scale)
        return real(self, scale, extensions)

    monkeypatch.setattr(Stylizer, "_objective", spy)
    stylizer = Stylizer(styles, config)
    _same(stylizer.prepare(images["content"]), planned)
    stylizer.run(images["content"])
    _same(ContentPlan(content, used), planned)


def test_the_shapes_and_tiles_are_known_before_any_image_is_resized(images: dict[str, Path]) -> None:
    planner = _planner(TransferConfig(size=96, scales=2, min_size=64, tile="64", **FAST), [str(images["a"])])
    shapes = planner.shapes((32, 48))  # the content's (height, width): no image at all
    assert shapes.contents == ((43, 64), (64, 96)) and shapes.tiles == (None, 64)
    assert shapes.optimised() == (64, 64)
    assert _planner(TransferConfig(size=96, scales=1, **FAST), [str(images["a"])]).shapes(
        (32, 48)
    ).optimised() == (64, 96)


def test_the_plan_refuses_what_the_network_cannot_take_and_tiles_the_options_cannot(
    images: dict[str, Path], half_mask: Path
) -> None:
    with pytest.raises(InvalidParameter, match="--size") as info:
        _planner(TransferConfig(size=8, scales=1, **FAST), [str(images["a"])]).shapes((32, 48))
    assert "this image needs --size" in str(info.value)
    tiled = TransferConfig(size=96, scales=1, tile="64", style_masks=(f"a={half_mask}",), **FAST)
    with pytest.raises(InvalidParameter, match="--tile.*--style-mask"):
        _planner(tiled, [str(images["a"]), str(images["b"])]).shapes((32, 48))
    planner = _planner(TransferConfig(size=96, scales=1, tile="64", **FAST), [str(images["a"])])
    guided = dataclasses.replace(planner, whole_image_terms=True)
    with pytest.raises(InvalidParameter, match="--tile.*attribute network"):
        guided.shapes((32, 48))
