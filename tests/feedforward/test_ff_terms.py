"""The transfer's terms over a batch: each term is the mean over the images of exactly what a transfer
of that image reports (checked against the Stylizer's own objective), for every style loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _helpers import write_image

from styleforge.config import TransferConfig
from styleforge.feedforward.terms import BatchObjective, term_layers
from styleforge.images import LoadedImage, load_image
from styleforge.nets.transformer import TransformerNet
from styleforge.nets.vgg import VGGFeatures
from styleforge.parsing import parse_style
from styleforge.stylize.run import Stylizer


def _objective(config: TransferConfig, styles: list[str]) -> BatchObjective:
    content_lw, style_lw = term_layers(config, "vgg16")
    net = VGGFeatures("vgg16", list(dict.fromkeys([*content_lw, *style_lw])), seed=config.seed)
    specs = [parse_style(s) for s in styles]
    return BatchObjective(config, net, specs, [load_image(s.path).rgb for s in specs], torch.device("cpu"))


@pytest.mark.parametrize("loss", ["gram", "w2", "sw"])
def test_each_term_is_the_mean_of_what_a_transfer_of_each_image_reports(loss: str, tmp_path: Path) -> None:
    styles = [
        str(write_image(tmp_path / "a.png", (40, 40), seed=2)) + ":0.7",
        str(write_image(tmp_path / "b.png", (36, 44), seed=3)) + ":0.3",
    ]
    config = TransferConfig(
        size=32,
        scales=1,
        weights="random",
        network="vgg16",
        style_loss=loss,
        content_layers=("relu2_2",),
        style_layers=("relu1_1", "relu2_1", "relu3_1"),
        laplacian_weight=0.5,
        tone_weight=0.3,
        tv_weight=2.0,
        seed=3,
    )
    objective = _objective(config, styles)
    generator = torch.Generator().manual_seed(0)
    photos = torch.rand((3, 3, 32, 32), generator=generator)
    outputs = torch.rand((3, 3, 32, 32), generator=generator)
    with torch.no_grad():
        batch = objective.loss(objective(outputs, photos), photos).summary()
    stylizer = Stylizer(styles, config)
    single = [stylizer.evaluate(LoadedImage(photos[i]), outputs[i]) for i in range(3)]
    assert list(batch.raw) == ["content", "style.a", "style.b", "tv", "laplacian", "tone"]
    assert batch.weighted["style.a"] == pytest.approx(
        config.resolved_style_weight() * 0.7 * batch.raw["style.a"]
    )
    for name in batch.raw:
        assert batch.raw[name] == pytest.approx(sum(s.raw[name] for s in single) / 3, rel=1e-4), name


def test_gradients_reach_every_weight_of_the_network(tmp_path: Path) -> None:
    style = str(write_image(tmp_path / "a.png", (40, 40), seed=2))
    config = TransferConfig(
        size=32, weights="random", network="vgg16", style_loss="gram", laplacian_weight=0.2
    )
    objective = _objective(config, [style])
    net = TransformerNet(4, 1)
    photos = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    objective.loss(objective(net(photos), photos), photos).total.backward()
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in net.parameters())
    assert all(p.grad is None for p in objective.net.parameters())  # the VGG stays frozen
