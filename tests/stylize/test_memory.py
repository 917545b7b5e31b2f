"""The memory estimate and the refusal before a run that would not fit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from _helpers import invoke, one_line_error

import styleforge
from styleforge.engine import parse_optimizer
from styleforge.errors import ResourceError
from styleforge.stylize import memory
from styleforge.stylize import plan as plan_module
from styleforge.stylize import run as run_module  # bound now: its own ``available_bytes`` is the real one
from styleforge.stylize.memory import activation_elements, check_memory, estimate_bytes

LAYERS = ["relu4_2", "relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
LBFGS, ADAM = [parse_optimizer("lbfgs")], [parse_optimizer("adam")]


def test_activations_follow_the_network() -> None:
    acts, weights = activation_elements("vgg19", ["relu1_1"], 10, 10)
    assert (acts, weights) == (64 * 100, 64 * (3 * 9 + 1))
    acts, _ = activation_elements("vgg19", ["pool1"], 10, 10)
    assert acts == 2 * 64 * 100 + 64 * 25
    deep, _ = activation_elements("vgg19", LAYERS, 64, 64)
    assert deep > activation_elements("vgg19", ["relu3_1"], 64, 64)[0]


def test_estimate_scales_with_pixels_and_counts_lbfgs_history() -> None:
    small, large = (
        estimate_bytes("vgg19", LAYERS, h, w, LBFGS) - memory.FIXED_BYTES for h, w in ((192, 256), (384, 512))
    )
    assert 3.5 < large / small < 4.1  # weights do not grow with the image
    assert (
        estimate_bytes("vgg19", LAYERS, 384, 512, LBFGS) - estimate_bytes("vgg19", LAYERS, 384, 512, ADAM)
        > 4 * 2 * 90 * 3 * 384 * 512
    )


def test_refusal_names_both_figures_and_a_size_that_fits() -> None:
    need = estimate_bytes("vgg19", LAYERS, 384, 512, LBFGS)
    assert check_memory("vgg19", LAYERS, (384, 512), 512, LBFGS, torch.device("cpu"), available=need) == need
    with pytest.raises(ResourceError, match="--size 512") as info:
        check_memory("vgg19", LAYERS, (384, 512), 512, LBFGS, torch.device("cpu"), available=need // 2)
    assert "try --tile auto (tiles that fit), --size" in str(info.value)
    suggested = int(re.search(r", --size (\d+)", str(info.value))[1])
    assert suggested < 512
    h, w = round(384 * suggested / 512), round(512 * suggested / 512)
    assert estimate_bytes("vgg19", LAYERS, h, w, LBFGS) <= need // 2


def test_transfer_refuses_before_starting_and_can_be_told_not_to(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 1)
    out = tmp_path / "out.png"
    args = [
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "32",
        "--iterations",
        "1",
        "--weights",
        "random",
        "--optimizer",
        "adam",
        "--quiet",
    ]
    line = one_line_error(invoke("transfer", *args), code=1)
    assert "--size 32" in line and "GiB" in line and not out.exists()
    with pytest.raises(ResourceError):
        styleforge.transfer(images["content"], [str(images["a"])], size=32, iterations=1, weights="random")
    assert invoke("transfer", *args, "--no-memory-check").exit_code == 0 and out.exists()


@pytest.mark.parametrize("tile", ["auto", "off", "512"])
def test_a_huge_size_is_refused_before_any_image_is_resized(
    images: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tile: str
) -> None:
    """``--size 100000`` used to resize the content first and be killed at ~23 GB: every tile choice
    is now checked on the shapes alone, and nothing large is allocated."""
    real = plan_module.resize_long_side

    def small_only(image: torch.Tensor, size: int) -> torch.Tensor:
        assert size <= 4096, f"resized to {size} px before the memory check"
        return real(image, size)

    monkeypatch.setattr(plan_module, "resize_long_side", small_only)
    monkeypatch.setattr(run_module, "available_bytes", lambda device: 8 * 2**30)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 * 2**30)
    out = tmp_path / "out.png"
    line = one_line_error(
        invoke(
            "transfer",
            images["content"],
            "--style",
            images["a"],
            "-o",
            out,
            "--size",
            "100000",
            "--tile",
            tile,
            "--weights",
            "random",
            "--quiet",
        ),
        code=1,
    )
    assert line.startswith("error: --size 100000") and "GiB" in line and "8.0 GiB is available" in line
    assert ("--style-scale" in line) or ("--tile auto" in line)
    assert not out.exists()


def test_video_checks_its_size_before_the_first_frame(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from _helpers import clip_frames, write_frames, write_image

    frames = tmp_path / "clip"
    write_frames(frames, clip_frames(3))
    style = write_image(tmp_path / "style.png", (40, 40), seed=3)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 * 2**30)
    monkeypatch.setattr(run_module, "available_bytes", lambda device: 8 * 2**30)
    out = tmp_path / "out.mp4"
    line = one_line_error(
        invoke(
            "video", frames, "--style", style, "-o", out, "--size", "100000", "--weights", "random", "--quiet"
        ),
        code=1,
    )
    assert line.startswith("error: --size 100000") and "GiB" in line
    assert not out.exists() and not (tmp_path / "out.mp4.frames").exists()


def test_cuda_memory_counts_the_allocators_cached_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks PyTorch holds cached are free to this run though the card reports them taken: without
    them a second image would see only what the first one left."""
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (10 * gib, 80 * gib))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device: 30 * gib)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device: 4 * gib)
    assert memory.available_bytes(torch.device("cuda", 0)) == 36 * gib
