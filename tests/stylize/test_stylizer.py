"""The Stylizer: one network and one set of style statistics for many content images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import styleforge
from styleforge.errors import InvalidParameter, StyleforgeError
from styleforge.images import load_image
from styleforge.stylize import run as run_module
from styleforge.stylize.extension import ExtraTerms, Finished
from styleforge.stylize.losses import StyleLoss
from styleforge.stylize.run import Stylizer

FAST = dict(iterations=3, weights="random", optimizer=("adam",), size=48)


def test_runs_on_many_contents_equal_single_transfers(images: dict[str, Path]) -> None:
    stylizer = Stylizer([str(images["a"])], **FAST)
    first = stylizer.run(images["content"])
    second = stylizer.run(images["b"])  # another content image, of another aspect
    alone = styleforge.transfer(images["b"], [str(images["a"])], **FAST)
    assert torch.allclose(second.image, alone.image, atol=1e-5)
    assert second.metadata["content"] == str(images["b"]) and first.metadata["content"] == str(
        images["content"]
    )
    assert [e.summary.total for e in second.history] == pytest.approx(
        [e.summary.total for e in alone.history], rel=1e-5
    )


def test_style_statistics_are_taken_once_per_size(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = StyleLoss.targets

    def counting(self, *args, **kwargs):
        calls.append("style")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StyleLoss, "targets", counting)
    stylizer = Stylizer([str(images["a"]), str(images["b"])], **FAST)
    for _ in range(3):
        stylizer.run(images["content"])
    layers = len(stylizer.style_lw)  # the statistics are taken layer by layer
    assert len(calls) == 2 * layers  # two styles, once each, for three runs
    # A colour or tone transfer makes the statistics depend on the content: taken every run.
    for color_transfer in ("histogram", "luminance"):
        calls.clear()
        stylizer = Stylizer([str(images["a"])], color_transfer=color_transfer, **FAST)
        stylizer.run(images["content"])
        stylizer.run(images["content"])
        assert len(calls) == 2 * layers


def test_the_first_content_is_checked_before_the_network_is_built(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    monkeypatch.setattr(run_module, "resolve_weights", lambda *a, **k: built.append("weights"))
    with pytest.raises(StyleforgeError, match="CONTENT"):
        Stylizer([str(images["a"])], content=tmp_path / "missing.png", **FAST)
    assert built == []
    monkeypatch.undo()
    with pytest.raises(InvalidParameter, match="CONTENT"):  # run() without a content anywhere says so
        Stylizer([str(images["a"])], **FAST).run()


class _Pull:
    """A per-run extension: a term pulling the pixels towards a fixed image."""

    def __init__(self, towards: torch.Tensor, weight: float) -> None:
        self.towards, self.weight, self.opened = towards, weight, 0

    def open(self, device, callbacks) -> None:
        self.opened += 1

    def layers(self, network, pooling):
        return ()

    def terms(self, scale) -> ExtraTerms:
        towards = torch.nn.functional.interpolate(self.towards[None], size=scale.shape, mode="bilinear")
        return ExtraTerms(
            terms={"pull": lambda ctx: (ctx.image - towards.to(ctx.image.device)).pow(2).mean()},
            weights={"pull": self.weight},
            metadata={"pull": self.weight},
        )

    def finish(self, image, last) -> Finished:
        return Finished(metadata=dict(last.metadata))


def test_a_per_run_extension_adds_a_term_to_that_run_only(images: dict[str, Path]) -> None:
    stylizer = Stylizer([str(images["a"])], **{**FAST, "iterations": 20})
    grey = torch.full((3, 48, 48), 0.5)
    pull = _Pull(grey, 1e4)
    pulled = stylizer.run(images["content"], extensions=[pull])
    plain = stylizer.run(images["content"])
    assert pull.opened == 1 and pulled.metadata["pull"] == 1e4 and "pull" not in plain.metadata
    assert "pull" in pulled.history[-1].summary.weighted and "pull" not in plain.history[-1].summary.weighted
    content = load_image(images["content"]).rgb
    distance = lambda r: (
        (r.image - torch.nn.functional.interpolate(grey[None], size=r.image.shape[-2:])[0]).abs().mean()
    )
    assert distance(pulled) < distance(plain) and content.shape[0] == 3
