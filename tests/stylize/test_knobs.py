"""Each transfer knob changes what it should (issue: every knob leaves a trace you can compare)."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch
from _helpers import child_env
from click.testing import CliRunner
from PIL import Image

import styleforge
from styleforge.cli import cli
from styleforge.images import load_image, read_metadata, resize_long_side
from styleforge.stylize import objective
from styleforge.stylize.color import MAX_TONE_GAIN, luma, match_histogram, match_luminance, rgb_to_ycbcr
from styleforge.stylize.objective import layer_weights, parse_layers

FAST = dict(size=32, iterations=3, weights="random", optimizer=("adam",))


def run(images: dict[str, Path], **options: object) -> styleforge.TransferResult:
    return styleforge.transfer(images["content"], [str(images["a"]), str(images["b"])], **{**FAST, **options})


def test_layer_weight_exponent_follows_the_formula() -> None:
    weights = layer_weights(["relu1_1", "relu2_1", "relu3_1", "relu4_1"], 0.5)
    raw = [1, 0.5, 0.25, 0.125]
    assert list(weights.values()) == pytest.approx([r / sum(raw) for r in raw])
    explicit = layer_weights(parse_layers(["relu1_1:2,relu2_1"], "vgg19", param="--style-layers"), 3.0)
    assert explicit == pytest.approx({"relu1_1": 2 / 5, "relu2_1": 3 / 5})


@pytest.mark.parametrize("loss", ["gram", "w2", "sw"])
def test_exponent_reaches_the_style_terms(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch, loss: str
) -> None:
    from styleforge.stylize import run as run_module

    seen: list[dict[str, float]] = []
    original = run_module.style_terms

    def spy(loss, names, shares, targets, weights: dict, regions, **keywords):
        seen.append(dict(weights))
        return original(loss, names, shares, targets, weights, regions, **keywords)

    monkeypatch.setattr(run_module, "style_terms", spy)
    run(
        images,
        iterations=1,
        style_loss=loss,
        style_layer_weight_exp=2.0,
        style_layers=("relu1_1", "relu2_1", "relu3_1"),
    )
    assert seen and seen[0] == pytest.approx({"relu1_1": 1 / 7, "relu2_1": 2 / 7, "relu3_1": 4 / 7})


def test_unknown_layer_lists_valid_ones(images: dict[str, Path]) -> None:
    with pytest.raises(styleforge.StyleforgeError, match="relu4_2") as info:
        run(images, style_layers=("relu9_9",))
    assert "--style-layers" in str(info.value) and "conv1_1" in str(info.value)


def test_avg_pooling_changes_the_result(images: dict[str, Path]) -> None:
    a = run(images, pooling="max").image
    b = run(images, pooling="avg").image
    assert not torch.allclose(a, b)


def test_chain_runs_each_optimizer_for_its_steps(images: dict[str, Path]) -> None:
    result = run(images, optimizer=("adam:2", "sgd:3", "lbfgs"), iterations=1)
    assert [e.optimizer for e in result.history] == ["adam", "adam", "sgd", "sgd", "sgd", "lbfgs"]
    assert [e.stage for e in result.history] == [0, 0, 1, 1, 1, 2]


def test_stop_delta_stops_on_a_plateau_after_patience(images: dict[str, Path]) -> None:
    # Every relative change is below 10, so the count rises from the 2nd iteration: stop at 1 + patience.
    result = run(images, iterations=50, stop_delta=10.0, patience=3)
    assert result.stop_reason == "stopped" and len(result.history) == 4
    never = run(images, iterations=6, stop_delta=1e-12, patience=3)
    assert never.stop_reason == "completed" and len(never.history) == 6


def test_injected_nan_triggers_the_guard_and_keeps_the_best(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = {"n": 0}
    original = objective.TVTerm.__call__

    def poisoned(self: objective.TVTerm, ctx: objective.FeatureContext) -> torch.Tensor:
        calls["n"] += 1
        value = original(self, ctx)
        return value * math.nan if calls["n"] == 4 else value

    monkeypatch.setattr(objective.TVTerm, "__call__", poisoned)
    snapshots: dict[int, torch.Tensor] = {}

    def keep(event: object) -> None:
        if isinstance(event, styleforge.engine.Progress):
            snapshots[event.iteration] = event.image.detach().clone()

    out = tmp_path / "guarded.png"
    result = CliRunner().invoke(
        cli,
        [
            "transfer",
            str(images["content"]),
            "--style",
            str(images["a"]),
            "-o",
            str(out),
            "--size",
            "32",
            "--iterations",
            "10",
            "--weights",
            "random",
            "--optimizer",
            "adam",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "stopped" in result.output and "nan" in result.output.lower()
    meta = read_metadata(out)
    assert meta["stop_reason"] == "diverged" and meta["iteration"] == 3
    calls["n"] = 0
    api = styleforge.transfer(
        images["content"], [str(images["a"])], **{**FAST, "iterations": 10}, callbacks=[keep]
    )
    assert api.stop_reason == "diverged" and len(api.history) == 4
    assert torch.equal(api.image, snapshots[3][0].cpu())


def test_init_options(images: dict[str, Path], tmp_path: Path) -> None:
    first = {}

    def grab(event: object) -> None:
        if isinstance(event, styleforge.engine.Progress) and event.iteration == 1:
            first["x"] = event.image.detach().clone()

    content = resize_long_side(load_image(images["content"]).rgb, 32)
    run(images, init="content", iterations=1, callbacks=[grab])
    assert torch.allclose(first["x"][0], content)
    run(images, init="noise", iterations=1, callbacks=[grab])
    noise = first["x"].clone()
    run(images, init="noise", iterations=1, seed=1, callbacks=[grab])
    assert not torch.allclose(noise, first["x"])
    run(images, init="content", init_noise_blend=0.5, iterations=1, callbacks=[grab])
    assert torch.allclose(first["x"][0], 0.5 * content + 0.5 * noise[0], atol=1e-6)
    run(images, init=str(images["a"]), iterations=1, callbacks=[grab])
    assert first["x"].shape[-2:] == content.shape[-2:]
    with pytest.raises(styleforge.StyleforgeError, match="--init"):
        run(images, init="nowhere.png")


def test_preserve_colors_keeps_the_content_chroma(images: dict[str, Path]) -> None:
    result = run(images, preserve_colors=True)
    content = resize_long_side(load_image(images["content"]).rgb, 32)
    chroma_out = rgb_to_ycbcr(result.image)[1:]
    chroma_in = rgb_to_ycbcr(content)[1:]
    # Clamping to [0, 1] can move out-of-gamut pixels; all others must match exactly.
    inside = ((result.image > 1e-4) & (result.image < 1 - 1e-4)).all(0)
    assert inside.float().mean() > 0.5
    assert torch.allclose(chroma_out[:, inside], chroma_in[:, inside], atol=1e-4)
    plain = run(images)
    assert (rgb_to_ycbcr(plain.image)[1:] - chroma_in).abs().mean() > 10 * (
        chroma_out - chroma_in
    ).abs().mean()


def test_histogram_matching_moves_colour_statistics_to_the_target() -> None:
    g = torch.Generator().manual_seed(0)
    source = torch.rand(3, 20, 24, generator=g) * 0.3
    target = 0.5 + torch.rand(3, 16, 16, generator=g) * 0.5
    out = match_histogram(source, target)
    assert torch.allclose(out.mean(dim=(1, 2)), target.mean(dim=(1, 2)), atol=0.02)
    assert torch.allclose(
        out.reshape(3, -1).quantile(0.5, dim=1), target.reshape(3, -1).quantile(0.5, dim=1), atol=0.03
    )
    # Order is kept: the brightest source pixel stays the brightest.
    assert out[0].argmax() == source[0].argmax()


def test_luminance_matching_moves_the_tone_and_keeps_the_colours() -> None:
    g = torch.Generator().manual_seed(3)
    # A dark, low-contrast source with colour; a bright, contrasty target of another size.
    source = (0.15 + 0.4 * torch.rand(3, 20, 30, generator=g)) * torch.tensor([1.0, 0.7, 0.5]).view(3, 1, 1)
    target = 0.1 + 0.8 * torch.rand(3, 16, 16, generator=g) ** 0.5
    out = match_luminance(source, target)
    assert out.shape == source.shape
    y_out, y_target = rgb_to_ycbcr(out)[0], rgb_to_ycbcr(target)[0]
    assert y_out.mean() == pytest.approx(y_target.mean().item(), abs=2e-3)
    assert y_out.std() == pytest.approx(y_target.std().item(), rel=2e-2)
    # The chroma is the source's wherever clamping left the pixel alone.
    inside = ((out > 0.001) & (out < 0.999)).all(dim=0)
    assert inside.float().mean() > 0.5
    assert torch.allclose(rgb_to_ycbcr(out)[1:, inside], rgb_to_ycbcr(source)[1:, inside], atol=1e-4)
    # The tone's order is kept, and a flat source is only shifted to the target's mean.
    y_source = rgb_to_ycbcr(source)[0]
    assert y_out.flatten().argmax() == y_source.flatten().argmax()
    flat = match_luminance(torch.full((3, 4, 4), 0.2), target)
    assert rgb_to_ycbcr(flat)[0].std() < 1e-5
    assert rgb_to_ycbcr(flat)[0].mean() == pytest.approx(y_target.mean().item(), abs=1e-4)
    # A nearly flat one (a dark painting's 8-bit noise) is stretched at most MAX_TONE_GAIN times.
    noisy = 0.1 + torch.randint(-1, 2, (3, 20, 30), generator=g) / 255
    y_noisy = rgb_to_ycbcr(match_luminance(noisy, target))[0]
    spread = rgb_to_ycbcr(noisy)[0].std(unbiased=False)
    assert y_noisy.std(unbiased=False) == pytest.approx(MAX_TONE_GAIN * spread.item(), rel=1e-3)


@pytest.mark.parametrize("color_transfer", ["histogram", "luminance"])
def test_color_transfer_changes_the_style_targets(images: dict[str, Path], color_transfer: str) -> None:
    plain = run(images, iterations=1)
    matched = run(images, iterations=1, color_transfer=color_transfer)
    assert plain.history[0].summary.raw["style.a"] != pytest.approx(matched.history[0].summary.raw["style.a"])


def test_style_scale_global_and_per_style(images: dict[str, Path]) -> None:
    # gram: one distance per style, so each style's own scale shows in its own term (w2 and sw
    # report one distance to the blend for both)
    base = run(images, iterations=1, style_loss="gram").history[0].summary.raw
    scaled = run(images, iterations=1, style_loss="gram", style_scale=2.0).history[0].summary.raw
    assert scaled["style.a"] != pytest.approx(base["style.a"])
    per = styleforge.transfer(
        images["content"],
        [f"{images['a']}@2", str(images["b"])],
        **{**FAST, "iterations": 1, "style_loss": "gram"},
    )
    raw = per.history[0].summary.raw
    assert raw["style.a"] == pytest.approx(scaled["style.a"]) and raw["style.b"] == pytest.approx(
        base["style.b"]
    )
    assert per.metadata["styles"][0].endswith("@2")


def test_keep_last_returns_the_last_iterate(images: dict[str, Path]) -> None:
    last = run(images, keep_last=True, iterations=4)
    assert last.metadata["iteration"] == 4


def _cli(*args: str) -> object:
    return CliRunner().invoke(cli, ["transfer", *args])


def test_watch_outputs(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run" / "out.png"
    result = _cli(
        str(images["content"]),
        "--style",
        f"{images['a']}:0.75",
        "--style",
        str(images["b"]),
        "-o",
        str(out),
        "--size",
        "32",
        "--iterations",
        "4",
        "--weights",
        "random",
        "--optimizer",
        "adam",
        "--checkpoint-every",
        "2",
        "--progress-gif",
        str(tmp_path / "run.gif"),
        "--gif-every",
        "1",
        "--history",
        str(tmp_path / "h.csv"),
        "--plot",
        str(tmp_path / "loss.png"),
    )
    assert result.exit_code == 0, result.output
    checkpoints = sorted(p.name for p in out.parent.glob("out_*.png"))
    assert checkpoints == ["out_0002.png", "out_0004.png"]
    meta = read_metadata(out.parent / "out_0002.png")
    assert meta["iteration"] == 2 and set(meta["losses"]) >= {"total", "content", "style.a", "style.b", "tv"}
    frames = iio.imread(tmp_path / "run.gif", index=None)
    assert frames.shape[0] == 4
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["iteration", "stage", "optimizer", "total"] and len(lines) == 5
    assert Image.open(tmp_path / "loss.png").size[0] > 100
    as_json = tmp_path / "h.json"
    assert (
        _cli(
            str(images["content"]),
            "--style",
            str(images["a"]),
            "-o",
            str(tmp_path / "j.png"),
            "--size",
            "32",
            "--iterations",
            "2",
            "--weights",
            "random",
            "--history",
            str(as_json),
            "--quiet",
        ).exit_code
        == 0
    )
    rows = json.loads(as_json.read_text())
    assert len(rows) == 2 and math.isclose(
        rows[0]["total"], sum(rows[0][k] for k in ("content", "style.a", "tv"))
    )


def test_bad_watch_paths_fail_before_running(images: dict[str, Path], tmp_path: Path) -> None:
    for flag, value in (("--history", "h.txt"), ("--progress-gif", "g.png"), ("--plot", "p.txt")):
        out = tmp_path / f"{flag[2:]}.png"
        result = _cli(
            str(images["content"]),
            "--style",
            str(images["a"]),
            "-o",
            str(out),
            "--size",
            "32",
            "--weights",
            "random",
            flag,
            str(tmp_path / value),
        )
        assert result.exit_code == 2 and flag in result.output and not out.exists()


def test_toml_config_and_flag_precedence(images: dict[str, Path], tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        f'content = "{images["content"]}"\nstyle = ["{images["a"]}:0.75", "{images["b"]}"]\n'
        'size = 40\niterations = 5\nweights = "random"\noptimizer = ["adam"]\nstyle-layer-weight-exp = 0.5\n'
    )
    out = tmp_path / "c.png"
    result = _cli("--config", str(config), "--iterations", "2", "--size", "32", "-o", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    meta = read_metadata(out)
    assert meta["config"]["iterations"] == 2 and meta["config"]["size"] == 32
    assert meta["config"]["style_layer_weight_exp"] == 0.5 and meta["config"]["optimizer"] == ["adam"]
    assert Image.open(out).size == (32, 21)
    config.write_text("bogus = 1\n")
    bad = _cli("--config", str(config), "-o", str(tmp_path / "bad.png"))
    assert bad.exit_code == 2 and "bogus" in bad.output and "style-weight" in bad.output


def test_from_image_reproduces_the_run(images: dict[str, Path], tmp_path: Path) -> None:
    first = tmp_path / "first.png"
    assert (
        _cli(
            str(images["content"]),
            "--style",
            f"{images['a']}:0.6@1.5",
            "--style",
            str(images["b"]),
            "-o",
            str(first),
            "--size",
            "32",
            "--iterations",
            "3",
            "--weights",
            "random",
            "--optimizer",
            "adam:2",
            "--optimizer",
            "lbfgs:1",
            "--pooling",
            "avg",
            "--quiet",
        ).exit_code
        == 0
    )
    again = tmp_path / "again.png"
    assert _cli("--from-image", str(first), "-o", str(again), "--quiet").exit_code == 0
    a, b = read_metadata(first), read_metadata(again)
    assert a["config"] == b["config"] and a["styles"] == b["styles"] and a["losses"] == b["losses"]
    assert Image.open(first).tobytes() == Image.open(again).tobytes()
    override = tmp_path / "override.png"
    assert _cli("--from-image", str(first), "-o", str(override), "--pooling", "max", "--quiet").exit_code == 0
    assert read_metadata(override)["config"]["pooling"] == "max"
    not_ours = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(not_ours)
    result = _cli("--from-image", str(not_ours), "-o", str(tmp_path / "x.png"))
    assert result.exit_code == 2 and "--from-image" in result.output


def test_ctrl_c_keeps_the_best_image_and_history(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    history = tmp_path / "h.csv"
    env = child_env()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "styleforge",
            "transfer",
            str(images["content"]),
            "--style",
            str(images["a"]),
            "-o",
            str(out),
            "--size",
            "32",
            "--iterations",
            "100000",
            "--weights",
            "random",
            "--optimizer",
            "adam",
            "--checkpoint-every",
            "1",
            "--history",
            str(history),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # A runner started in the background by a non-interactive shell ignores SIGINT, and so would
        # the child: give it the default disposition, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "out_0003.png").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never reached iteration 3"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()  # never leave a run behind
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and str(out) in stdout
    assert read_metadata(out)["stop_reason"] == "interrupted"
    assert len(history.read_text().splitlines()) >= 4


# --- the laplacian term ---------------------------------------------------------------------------


def test_the_laplacian_term_is_zero_at_the_content_and_counts_edges_and_flat_areas() -> None:
    g = torch.Generator().manual_seed(0)
    content = torch.zeros(1, 3, 24, 24)
    content[..., 12:] = 1.0  # a flat field with one edge
    term = objective.LaplacianTerm(content, sigma=1.0)
    ctx = lambda image: objective.FeatureContext(image, {})
    assert term(ctx(content)).item() == 0.0
    textured = content + 0.05 * torch.rand(content.shape, generator=g)  # texture over the flat areas
    shifted = torch.roll(content, 3, dims=-1)  # the edge moved
    assert term(ctx(textured)).item() > 0 and term(ctx(shifted)).item() > 0
    x = textured.clone().requires_grad_(True)
    term(ctx(x)).backward()
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    ("name", "term_class"), [("laplacian", objective.LaplacianTerm), ("tone", objective.ToneTerm)]
)
def test_a_luminance_terms_weight_keeps_what_it_measures_of_the_content(
    images: dict[str, Path], name: str, term_class: type
) -> None:
    """The laplacian term keeps the content's edges, the tone term its light and dark: each weight,
    raised, brings the picture nearer the content by its own measure."""
    plain = run(images, iterations=30, **{f"{name}_weight": 0.0})
    kept = run(images, iterations=30, **{f"{name}_weight": 100.0})
    content = resize_long_side(load_image(images["content"]).rgb, 32)[None]
    term = term_class(content)
    error = lambda result: term(objective.FeatureContext(result.image[None], {})).item()
    assert name in kept.summary.raw and name not in plain.summary.raw  # only when asked for
    assert error(kept) < 0.5 * error(plain)


def test_laplacian_options_on_the_command_line(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = CliRunner().invoke(
        cli,
        [
            "transfer",
            str(images["content"]),
            "--style",
            str(images["a"]),
            "-o",
            str(out),
            "--size",
            "32",
            "--iterations",
            "2",
            "--weights",
            "random",
            "--quiet",
            "--laplacian-weight",
            "2",
            "--laplacian-sigma",
            "1.5",
        ],
    )
    assert result.exit_code == 0, result.output
    config = read_metadata(out)["config"]
    assert config["laplacian_weight"] == 2.0 and config["laplacian_sigma"] == 1.5
    bad = CliRunner().invoke(
        cli,
        [
            "transfer",
            str(images["content"]),
            "--style",
            str(images["a"]),
            "-o",
            str(out),
            "--laplacian-sigma",
            "0",
        ],
    )
    assert bad.exit_code == 2 and "--laplacian-sigma" in bad.output and "Traceback" not in bad.output


# --- the tone term --------------------------------------------------------------------------------


def test_the_tone_term_is_zero_at_the_content_counts_tones_and_leaves_fine_texture_free() -> None:
    content = torch.full((1, 3, 24, 24), 0.5)
    content[..., :, 12:] = 0.8  # a light half and a darker one
    term = objective.ToneTerm(content, sigma=1.0)
    ctx = lambda image: objective.FeatureContext(image, {})
    assert term(ctx(content)).item() == 0.0
    checker = (torch.arange(24)[:, None] + torch.arange(24)[None, :]) % 2 * 2.0 - 1.0
    textured = content + 0.1 * checker  # 1-px texture: the blur averages it away
    darker = content - 0.1  # the same energy per pixel as the texture, in the tone
    assert 0 < term(ctx(textured)).item() < 0.05 * term(ctx(darker)).item()
    # relative to the content's tonal spread: the same error weighs more on a flatter content
    flatter = objective.ToneTerm(0.5 + (content - 0.5) / 2, sigma=1.0)
    assert flatter(ctx(0.5 + (content - 0.5) / 2 - 0.1)).item() == pytest.approx(4 * term(ctx(darker)).item())
    x = textured.clone().requires_grad_(True)
    term(ctx(x)).backward()
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    flat = objective.ToneTerm(torch.full((1, 3, 8, 8), 0.3))  # no spread: the floor keeps it finite
    assert math.isfinite(flat(ctx(torch.full((1, 3, 8, 8), 0.6))).item())
    # relative to a given measure (a tile's term, to the whole picture's spread): the same error scaled
    given = objective.ToneTerm(content, sigma=1.0, magnitude=2 * term.magnitude)
    assert given(ctx(darker)).item() == pytest.approx(term(ctx(darker)).item() / 2)


def test_tone_options_on_the_command_line(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    common = ["transfer", str(images["content"]), "--style", str(images["a"]), "-o", str(out)]
    fast = ["--size", "32", "--iterations", "2", "--weights", "random", "--quiet"]
    result = CliRunner().invoke(cli, [*common, *fast, "--tone-weight", "2", "--tone-sigma", "1.5"])
    assert result.exit_code == 0, result.output
    config = read_metadata(out)["config"]
    assert config["tone_weight"] == 2.0 and config["tone_sigma"] == 1.5
    for flag, value in (("--tone-sigma", "0"), ("--tone-weight", "-1")):
        bad = CliRunner().invoke(cli, [*common, flag, value])
        assert bad.exit_code == 2 and flag in bad.output and "Traceback" not in bad.output


def test_luma_is_the_y_of_ycbcr_for_one_image_and_a_batch() -> None:
    rgb = torch.rand((2, 3, 5, 7), generator=torch.Generator().manual_seed(3))
    assert luma(rgb).shape == (2, 1, 5, 7) and luma(rgb[0]).shape == (1, 5, 7)
    assert torch.allclose(luma(rgb), rgb_to_ycbcr(rgb)[:, :1], atol=1e-6)
    assert torch.allclose(luma(torch.ones(3, 2, 2)), torch.ones(1, 2, 2))  # the weights sum to 1
