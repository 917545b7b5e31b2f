"""Coarse-to-fine: sizes, continuity across scales, numbering, outputs."""

from __future__ import annotations

import signal
from pathlib import Path

import imageio.v3 as iio
import pytest
import torch
from _helpers import deliver, invoke, stop_signals_as_at_start  # noqa: F401

import styleforge
from styleforge.config import auto_scales
from styleforge.engine import Progress, StageEnded, StageStarted
from styleforge.errors import InvalidParameter
from styleforge.images import read_metadata
from styleforge.stylize.plan import scale_sizes

FAST = dict(iterations=2, weights="random", optimizer=("adam",))


def test_scale_sizes() -> None:
    assert scale_sizes(512, 5) == [128, 181, 256, 362, 512]
    assert scale_sizes(512, 3, 200) == [200, 320, 512]
    assert scale_sizes(512, 1) == [512]


def test_auto_scales_take_sqrt2_steps_from_128_px() -> None:
    assert [auto_scales(s) for s in (32, 128, 150, 181, 256, 362, 512, 1024)] == [1, 1, 1, 2, 3, 4, 5, 7]
    assert auto_scales(512, 256) == 3 and auto_scales(64, 32) == 3
    assert scale_sizes(256, auto_scales(256)) == [128, 181, 256]
    assert scale_sizes(512, auto_scales(512)) == [128, 181, 256, 362, 512]


def test_the_iteration_budget_is_split_between_the_scales(images: dict[str, Path]) -> None:
    events: list[object] = []
    chain = ("adam:3", "sgd")  # 3 and 5 iterations in all: 2 + 1 and 3 + 2, the budget exactly
    result = styleforge.transfer(
        images["content"],
        [str(images["a"])],
        size=64,
        scales=2,
        min_size=32,
        scale_split=1.0,
        callbacks=[events.append],
        **{**FAST, "iterations": 5, "optimizer": chain},
    )
    starts = [(e.name, e.steps) for e in events if isinstance(e, StageStarted)]
    assert starts == [("adam", 2), ("sgd", 3), ("adam", 1), ("sgd", 2)]
    assert len(result.history) == 8 and {e.total_iterations for e in events if isinstance(e, Progress)} == {8}
    assert result.metadata["config"]["optimizer"] == list(chain)  # the run's own chain is what is recorded


def test_scale_split_gives_the_coarse_scales_more_iterations(images: dict[str, Path]) -> None:
    from styleforge.stylize.plan import scale_shares

    assert scale_shares(300, 3, 1.0) == [100, 100, 100] and scale_shares(175, 3, 2.0) == [100, 50, 25]
    assert scale_shares(10, 3, 1.0) == [4, 3, 3] and sum(scale_shares(97, 4, 1.7)) == 97
    assert scale_shares(2, 3, 1.0) == [1, 1, 1]  # each scale runs at least once
    result = styleforge.transfer(
        images["content"],
        [str(images["a"])],
        size=64,
        scales=3,
        min_size=32,
        scale_split=2.0,
        **{**FAST, "iterations": 7},
    )
    assert [sum(1 for h in result.history if h.stage == k) for k in range(3)] == [4, 2, 1]
    with pytest.raises(InvalidParameter, match="--scale-split"):
        styleforge.transfer(images["content"], [str(images["a"])], size=64, scale_split=0, **FAST)


def test_the_default_is_coarse_to_fine_above_the_auto_size(images: dict[str, Path]) -> None:
    result = styleforge.transfer(
        images["content"], [str(images["a"])], size=64, min_size=32, **{**FAST, "iterations": 3}
    )
    assert result.config.scales is None and result.metadata["scales"] == [32, 45, 64]
    assert [h.iteration for h in result.history] == [1, 2, 3] and result.image.shape[-1] == 64
    single = styleforge.transfer(images["content"], [str(images["a"])], size=64, **FAST)
    assert "scales" not in single.metadata  # at most 256 px: one size


def test_scales_run_in_order_and_hand_on_their_image(images: dict[str, Path]) -> None:
    events: list[object] = []
    seen: list[torch.Tensor] = []

    def record(event: object) -> None:
        events.append(event)
        if isinstance(event, Progress):
            seen.append(event.image.detach().clone())  # the live tensor changes after the event

    result = styleforge.transfer(
        images["content"],
        [str(images["a"])],
        size=64,
        scales=2,
        min_size=32,
        scale_detail=0.0,  # the enlarged image alone (with the content's detail: test_pyramid.py)
        callbacks=[record],
        **{**FAST, "iterations": 4},
    )  # 2 per scale
    progress = [e for e in events if isinstance(e, Progress)]
    assert [e.iteration for e in progress] == [1, 2, 3, 4] and {e.total_iterations for e in progress} == {4}
    assert [t.shape[-1] for t in seen] == [32, 32, 64, 64]
    assert [e.index for e in events if isinstance(e, StageStarted)] == [0, 1]
    assert [h.iteration for h in result.history] == [1, 2, 3, 4] and [h.stage for h in result.history] == [
        0,
        0,
        1,
        1,
    ]
    # The fine scale starts from the coarse scale's best image, upsampled, not from the content.
    coarse = [h.summary.total for h in result.history[:2]]
    coarse_best = seen[coarse.index(min(coarse))]
    upsampled = torch.nn.functional.interpolate(
        coarse_best, size=seen[2].shape[-2:], mode="bicubic", align_corners=False
    ).clamp(0, 1)
    assert torch.allclose(seen[2], upsampled, atol=1e-6)
    assert result.image.shape[-1] == 64
    assert result.metadata["scales"] == [32, 64] and result.metadata["config"]["scales"] == 2


def test_min_size_is_validated(images: dict[str, Path]) -> None:
    with pytest.raises(InvalidParameter, match="--min-size"):
        styleforge.transfer(images["content"], [str(images["a"])], size=64, scales=2, min_size=128, **FAST)
    with pytest.raises(InvalidParameter, match="--scales"):
        styleforge.transfer(images["content"], [str(images["a"])], size=64, scales=0, **FAST)


def test_cli_outputs_across_scales(images: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = invoke(
        "transfer",
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--size",
        "64",
        "--scales",
        "2",
        "--min-size",
        "32",
        "--iterations",
        "4",
        "--weights",
        "random",
        "--optimizer",
        "adam",
        "--quiet",
        "--checkpoint-every",
        "1",
        "--progress-gif",
        tmp_path / "run.gif",
        "--gif-every",
        "1",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("out_*.png")) == [f"out_000{i}.png" for i in range(1, 5)]
    frames = iio.imread(tmp_path / "run.gif", index=None)
    assert frames.shape[0] == 4 and frames.shape[1:3] == iio.imread(out).shape[:2]
    assert read_metadata(out)["iteration"] in (3, 4)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_cli_rejects_a_bad_scales_value(images: dict[str, Path], tmp_path: Path, value: str) -> None:
    from _helpers import one_line_error

    out = tmp_path / "out.png"
    result = invoke(
        "transfer",
        images["content"],
        "--style",
        images["a"],
        "-o",
        out,
        "--scales",
        value,
        "--weights",
        "random",
    )
    line = one_line_error(result)
    assert "--scales" in line and repr(value) in line and "auto" in line
    assert not out.exists()


# --- one pyramid ----------------------------------------------------------------------------------


def test_the_pyramid_builds_the_network_and_resolves_the_weights_once(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.stylize import run as run_module

    builds: list[str] = []
    resolves: list[str] = []
    real_net, real_resolve = run_module.VGGFeatures, run_module.resolve_weights

    class Counting(real_net):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            builds.append("net")
            super().__init__(*args, **kwargs)

    def resolve(*args: object, **kwargs: object):
        resolves.append("weights")
        return real_resolve(*args, **kwargs)

    monkeypatch.setattr(run_module, "VGGFeatures", Counting)
    monkeypatch.setattr(run_module, "resolve_weights", resolve)
    result = styleforge.transfer(
        images["content"], [str(images["a"])], size=64, scales=3, min_size=32, **{**FAST, "iterations": 3}
    )
    assert result.metadata["scales"] == [32, 45, 64] and len(result.history) == 3
    assert builds == ["net"] and resolves == ["weights"]


def test_ctrl_c_between_scales_keeps_the_best_image_so_far(
    images: dict[str, Path], stop_signals_as_at_start: None
) -> None:
    """A Ctrl-C that lands after the first scale's last step (here: as its stage ends) stops the run
    there, with that scale's best image, instead of a traceback between the scales."""

    def ctrl_c_after_the_first_scale(event: object) -> None:
        if isinstance(event, StageEnded) and event.index == 0:
            deliver(signal.SIGINT)

    result = styleforge.transfer(
        images["content"],
        [str(images["a"])],
        size=64,
        scales=2,
        min_size=32,
        callbacks=[ctrl_c_after_the_first_scale],
        **{**FAST, "iterations": 4},
    )
    assert (
        result.stop_reason == "interrupted"
        and result.stop_detail == "interrupted by the user between two scales"
    )
    assert result.metadata["scales"] == [32] and result.image.shape[-1] == 32
    assert len(result.history) == 2 and result.improved


def test_preserve_colors_is_applied_once_to_the_final_image(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.stylize import run as run_module

    calls: list[tuple[int, ...]] = []
    real = run_module.preserve_colors

    def counting(image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(image.shape))
        return real(image, content)

    monkeypatch.setattr(run_module, "preserve_colors", counting)
    result = styleforge.transfer(
        images["content"],
        [str(images["a"])],
        size=64,
        scales=2,
        min_size=32,
        preserve_colors=True,
        **{**FAST, "iterations": 2},
    )
    assert calls == [tuple(result.image.shape)] and result.image.shape[-1] == 64
