"""Tests of styleforge.transfer (the Python API): a tiny multi-style run on seeded random VGG
weights, its history and weights, the saved output, alpha, and the shared defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _helpers import write_image, write_samples
from PIL import Image

import styleforge
from styleforge.config import DEFAULT_CONTENT_LAYERS, DEFAULT_STYLE_LAYERS, TransferConfig
from styleforge.engine import Notice, Progress, StageEnded, StageStarted
from styleforge.errors import InputFileError, InvalidParameter
from styleforge.images import load_image, read_metadata
from styleforge.parsing import StyleSpec

FAST = {"size": 32, "iterations": 3, "weights": "random", "device": "cpu"}


@pytest.fixture(scope="module")
def two_style_run(tmp_path_factory: pytest.TempPathFactory):
    """One 3-iteration run with styles a:0.75 and b:0.25, shared by the tests that inspect it."""
    folder = tmp_path_factory.mktemp("run")
    content, a, b = write_samples(folder).values()
    events: list = []
    result = styleforge.transfer(
        content, [f"{a}:0.75", f"{b}:0.25"], optimizer=("adam",), callbacks=[events.append], **FAST
    )
    return result, events


def test_returns_the_image_and_history(two_style_run) -> None:
    result, events = two_style_run
    # content 48×32 at --size 32 -> 32×21 (width × height)
    assert result.image.shape == (3, 21, 32)
    assert result.image.dtype == torch.float32 and result.image.device.type == "cpu"
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert len(result.history) == 3
    assert [entry.iteration for entry in result.history] == [1, 2, 3]
    for entry in result.history:
        assert list(entry.summary.weighted) == ["content", "style.a", "style.b", "tv", "laplacian", "tone"]
        assert set(entry.summary.raw) == {"content", "style.a", "style.b", "tv", "laplacian", "tone"}
    assert result.stop_reason == "completed"
    assert result.summary is not None
    assert result.summary.total == min(entry.summary.total for entry in result.history)
    assert result.alpha is None


def test_style_weights_are_style_weight_times_the_blend(two_style_run) -> None:
    result, _ = two_style_run
    style_weight = TransferConfig().resolved_style_weight()
    for entry in result.history:
        raw, weighted = entry.summary.raw, entry.summary.weighted
        assert raw["style.a"] > 0 and raw["style.b"] > 0
        assert weighted["style.a"] / raw["style.a"] == pytest.approx(style_weight * 0.75, rel=1e-5)
        assert weighted["style.b"] / raw["style.b"] == pytest.approx(style_weight * 0.25, rel=1e-5)
        assert weighted["content"] == pytest.approx(
            raw["content"] * TransferConfig().content_weight, rel=1e-5, abs=1e-12
        )
        assert weighted["tv"] == pytest.approx(raw["tv"] * TransferConfig().tv_weight, rel=1e-5, abs=1e-12)
        assert entry.summary.total == pytest.approx(sum(weighted.values()), rel=1e-12)


def test_events(two_style_run) -> None:
    _, events = two_style_run
    assert not any(isinstance(e, Notice) for e in events)  # random weights: nothing to say
    starts = [e for e in events if isinstance(e, StageStarted)]
    assert [(s.name, s.steps, s.total_iterations) for s in starts] == [("adam", 3, 3)]
    assert [e.iteration for e in events if isinstance(e, Progress)] == [1, 2, 3]
    assert [e.reason for e in events if isinstance(e, StageEnded)] == ["completed"]


def test_save_writes_a_png_with_metadata(two_style_run, tmp_path: Path) -> None:
    result, _ = two_style_run
    out = result.save(tmp_path / "out" / "result.png")
    assert out.is_file()
    with Image.open(out) as saved:
        assert saved.format == "PNG" and saved.size == (32, 21) and saved.mode == "RGB"
    metadata = read_metadata(out)
    assert metadata is not None
    assert metadata["config"] == result.config.to_dict()
    assert metadata["config"]["size"] == 32 and metadata["config"]["weights"] == "random"
    assert TransferConfig.from_dict(metadata["config"]) == result.config  # reproducible
    losses = metadata["losses"]
    assert losses["total"] == pytest.approx(result.summary.total)
    assert {"content", "style.a", "style.b", "tv", "style.a.raw"} <= set(losses)
    reloaded = load_image(out).rgb
    assert torch.allclose(reloaded, result.image, atol=0.5 / 255 + 1e-6)


def test_equal_shares_when_no_weights_are_given(images: dict[str, Path]) -> None:
    result = styleforge.transfer(
        images["content"],
        [images["a"], StyleSpec(images["b"])],
        optimizer=("adam",),
        **{**FAST, "iterations": 1},
    )
    weighted, raw = result.history[0].summary.weighted, result.history[0].summary.raw
    half = TransferConfig().resolved_style_weight() / 2
    assert weighted["style.a"] / raw["style.a"] == pytest.approx(half, rel=1e-5)
    assert weighted["style.b"] / raw["style.b"] == pytest.approx(half, rel=1e-5)


def test_rgba_content_keeps_alpha(tmp_path: Path, images: dict[str, Path]) -> None:
    content = write_image(tmp_path / "rgba.png", (48, 32), seed=9, mode="RGBA")
    result = styleforge.transfer(content, [images["a"]], optimizer=("adam",), **{**FAST, "iterations": 1})
    assert result.alpha is not None and result.alpha.shape == (1, 21, 32)
    out = result.save(tmp_path / "out.png")
    with Image.open(out) as saved:
        assert saved.mode == "RGBA" and saved.size == (32, 21)
        alpha = torch.from_numpy(np.asarray(saved)[..., 3].astype(np.float32) / 255)
    assert alpha.min() < 0.5 < alpha.max()  # the random alpha survives
    assert torch.allclose(alpha, result.alpha[0], atol=0.5 / 255 + 1e-6)


def test_config_defaults() -> None:
    config = TransferConfig()
    assert config.content_layers == DEFAULT_CONTENT_LAYERS == ("relu2_2", "relu4_2")
    assert config.style_layers == DEFAULT_STYLE_LAYERS == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    assert config.optimizer == ("lbfgs",)
    assert config.size == 512
    assert config.weights == "auto" and config.network == "auto"
    assert config.requested_network() == "vgg19"
    assert TransferConfig(weights="hed").requested_network() == "vgg16"
    assert config.pooling == "max"
    # relative terms (each divided by its target's magnitude): weights of the same order
    assert 1 <= config.resolved_style_weight() / config.content_weight <= 100
    config.validate()


def test_defaults_start_from_the_content_image(
    images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Default config (L-BFGS, init from the content image) apart from size/iterations/weights.
    result = styleforge.transfer(images["content"], [images["a"]], **{**FAST, "iterations": 2})
    assert capsys.readouterr() == ("", "")  # the core never prints
    first = result.history[0]
    assert first.optimizer == "lbfgs"
    assert first.summary.raw["content"] == 0.0
    assert first.summary.raw["style.a"] > 0
    assert list(first.summary.weighted) == ["content", "style.a", "tv", "laplacian", "tone"]
    assert first.summary.raw["tone"] == 0.0  # the content's own tones


def test_config_object_and_options_combine(images: dict[str, Path]) -> None:
    config = TransferConfig(size=32, iterations=1, weights="random", device="cpu", optimizer=("adam",))
    result = styleforge.transfer(
        images["content"], [images["a"]], config, style_weight=10.0, content_weight=2.0
    )
    assert result.config.style_weight == 10.0 and result.config.content_weight == 2.0
    assert config.style_weight == TransferConfig().style_weight  # the caller's config is not modified
    summary = result.history[0].summary
    assert summary.weighted["style.a"] == pytest.approx(10.0 * summary.raw["style.a"], rel=1e-5)


def test_api_errors(images: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="^--iterations:"):
        styleforge.transfer(images["content"], [images["a"]], **{**FAST, "iterations": 0})
    with pytest.raises(InvalidParameter, match="^--style:"):
        styleforge.transfer(images["content"], [], **FAST)
    with pytest.raises(InvalidParameter, match="^--style:"):
        styleforge.transfer(images["content"], [f"{images['a']}:0"], **FAST)
    with pytest.raises(InputFileError, match="^CONTENT:"):
        styleforge.transfer(tmp_path / "nope.png", [images["a"]], **FAST)
    with pytest.raises(InputFileError, match="^--style:"):
        styleforge.transfer(images["content"], [tmp_path / "nope.png"], **FAST)
    with pytest.raises(InvalidParameter) as info:
        styleforge.transfer(images["content"], [images["a"]], **{**FAST, "size": 4})
    assert str(info.value).startswith("--size:") and "at least 8 px" in str(info.value)


# --- --precision and --compile -------------------------------------------------------------------


def _final_total(result) -> float:
    return result.history[-1].summary.total


def test_bf16_precision_keeps_the_loss_close_to_fp32(tmp_path: Path) -> None:
    content, a, _ = write_samples(tmp_path).values()
    runs = {
        p: styleforge.transfer(content, [a], optimizer=("adam",), precision=p, **{**FAST, "iterations": 15})
        for p in ("fp32", "bf16")
    }
    fp32, bf16 = (_final_total(runs[p]) for p in ("fp32", "bf16"))
    assert fp32 != bf16  # the convolutions really ran in bf16 ...
    assert abs(bf16 - fp32) / fp32 < 0.05  # ... and the loss it reaches stays close (benchmarks: within 1 %)
    assert runs["bf16"].metadata["config"]["precision"] == "bf16"
    assert runs["bf16"].image.dtype == torch.float32


def test_compile_runs_the_objective_through_torch_compile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    content, a, _ = write_samples(tmp_path).values()
    compiled: list[torch.nn.Module] = []
    calls = []

    def fake_compile(module: torch.nn.Module) -> object:
        compiled.append(module)
        return lambda *args: calls.append(1) or module(*args)

    monkeypatch.setattr(torch, "compile", fake_compile)
    eager = styleforge.transfer(content, [a], optimizer=("adam",), **FAST)
    assert not compiled
    result = styleforge.transfer(content, [a], optimizer=("adam",), compile=True, **FAST)
    assert len(compiled) == 1 and len(calls) == 1 + FAST["iterations"]  # the probe, then one per iteration
    assert torch.equal(result.image, eager.image)


def test_a_failing_compile_is_one_line_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch._dynamo

    content, a, _ = write_samples(tmp_path).values()

    def broken(*args: object) -> None:
        raise torch._dynamo.exc.TorchDynamoException(
            "InvalidCxxCompiler: no working C++ compiler found\nmore detail"
        )

    monkeypatch.setattr(torch, "compile", lambda module: broken)
    events: list = []
    with pytest.raises(styleforge.StyleforgeError) as info:
        styleforge.transfer(content, [a], compile=True, callbacks=[events.append], **FAST)
    message = str(info.value)
    assert message.startswith("--compile: torch.compile failed") and "InvalidCxxCompiler" in message
    assert "\n" not in message and "without --compile" in message
    assert not any(isinstance(e, Progress) for e in events)


@pytest.mark.slow
def test_compile_for_real_gives_the_eager_losses(tmp_path: Path) -> None:
    content, a, _ = write_samples(tmp_path).values()
    eager = styleforge.transfer(content, [a], optimizer=("adam",), **FAST)
    compiled = styleforge.transfer(content, [a], optimizer=("adam",), compile=True, **FAST)
    for e, c in zip(eager.history, compiled.history):
        assert c.summary.total == pytest.approx(e.summary.total, rel=1e-3)


def test_real_weights_default_transfer_moves_from_the_content_towards_the_style(
    tmp_path: Path, hed_weights
) -> None:
    """With HED's pretrained VGG-16 and every default (L-BFGS, relative terms), a small transfer really
    stylises: the picture moves away from the content, its Gram matrices towards the style's, and
    both terms are visible in the printed parts (the old defaults diverged here and printed content 0)."""
    from styleforge.images import resize_long_side
    from styleforge.nets.vgg import VGGFeatures
    from styleforge.stylize.features import gram

    samples = Path(__file__).resolve().parents[2] / "samples"
    content, style = samples / "content.jpg", samples / "style_swirl.jpg"
    result = styleforge.transfer(content, [style], size=64, iterations=30, weights="hed", device="cpu")
    assert result.improved and result.stop_reason == "completed", result.stop_detail
    assert result.metadata["weights_used"] == "hed" and result.metadata["network_used"] == "vgg16"
    start, end = result.history[0].summary, result.summary
    assert end.total < 0.5 * start.total
    assert end.weighted["content"] > 1e-3 * end.total  # the balance is visible: no "content 0"
    base = load_image(content).rgb
    moved = (result.image - resize_long_side(base, 64)).abs().mean().item()
    assert moved > 0.03  # in [0, 1]: about 8 grey levels on average
    net = VGGFeatures("vgg16", ("relu1_1", "relu3_1"), state_dict=hed_weights.state_dict)
    with torch.no_grad():
        s = net(resize_long_side(load_image(style).rgb, 64)[None], ("relu1_1", "relu3_1"))
        for layer in ("relu1_1", "relu3_1"):
            before = (gram(net(resize_long_side(base, 64)[None], (layer,))[layer]) - gram(s[layer])).norm()
            after = (gram(net(result.image[None], (layer,))[layer]) - gram(s[layer])).norm()
            assert after < 0.7 * before, layer


def test_real_weights_bf16_and_fp32_transfers_are_close(hed_weights) -> None:
    """bf16 convolutions and statistics from bf16 products (the default on CPUs with bf16 instructions)
    reach the loss float32 reaches, with HED's pretrained VGG-16, and a picture as near float32's as
    float32's own is to a run started 1e-4 away: L-BFGS's path depends on the last bits of every
    gradient, so no two runs are equal, and bf16 moves it no more than that."""
    samples = Path(__file__).resolve().parents[2] / "samples"

    def run(**options: Any) -> Any:
        return styleforge.transfer(
            samples / "content.jpg",
            [samples / "style_swirl.jpg"],
            size=64,
            iterations=40,
            weights="hed",
            device="cpu",
            **options,
        )

    fp32, bf16, nudged = (
        run(precision="fp32"),
        run(precision="bf16"),
        run(precision="fp32", init_noise_blend=1e-4),
    )
    assert fp32.improved and bf16.improved
    # At 64 px bf16's L-BFGS levels off after about 40 iterations (the loss's rounding noise is then
    # the size of its steps' gains), a few per cent above float32 (benchmarks/README.md, bf16); at
    # 256 px the judged pictures of the two agree.
    assert abs(bf16.summary.total - fp32.summary.total) / fp32.summary.total < 0.03
    assert (
        bf16.summary.total < 0.6 * fp32.history[0].summary.total
    )  # it stylised as much, not merely as little
    apart = (bf16.image - fp32.image).abs().mean().item()
    spread = (nudged.image - fp32.image).abs().mean().item()
    assert apart < 1.5 * spread, (apart * 255, spread * 255)


def test_real_weights_balanced_norm_weighs_a_flat_painting_as_much_as_a_busy_one(
    tmp_path: Path, hed_weights
) -> None:
    """A flat, low-contrast painting's HED features are many times fainter than a photo's, so divided
    by its own magnitude (``--style-norm style``) its distance outweighs the content by that ratio;
    ``balanced`` divides by the mean of the two magnitudes, and the style term starts that much
    smaller."""
    from PIL import ImageFilter

    from styleforge.stylize.run import Stylizer

    samples = Path(__file__).resolve().parents[2] / "samples"
    flat = tmp_path / "flat.png"
    painting = Image.open(samples / "style_swirl.jpg").convert("RGB").filter(ImageFilter.GaussianBlur(3))
    Image.eval(painting, lambda v: 100 + v // 8).save(flat)
    stylizer = Stylizer([flat], size=64, weights="hed", device="cpu", style_norm="balanced")
    scale = stylizer.prepare(samples / "content.jpg").scales[-1]
    content, style = stylizer._content_magnitudes(scale), stylizer._targets(scale)[0]
    assert all(content[layer] > 4 * style[layer].magnitude for layer in DEFAULT_STYLE_LAYERS)

    def first_style_value(norm: str) -> float:
        result = styleforge.transfer(
            samples / "content.jpg",
            [flat],
            size=64,
            iterations=2,
            weights="hed",
            device="cpu",
            style_norm=norm,
        )
        assert result.metadata["config"]["style_norm"] == norm
        return result.history[0].summary.raw["style.flat"]

    assert first_style_value("balanced") < 0.5 * first_style_value("style")
