"""Coarse-to-fine: sizes, continuity across scales, numbering, outputs."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import pytest
import torch

import styleforge
from styleforge.engine import Progress, StageStarted
from styleforge.errors import InvalidParameter
from styleforge.images import read_metadata
from styleforge.transfer.run import scale_sizes

from _helpers import invoke

FAST = dict(iterations=2, weights="random", optimizer=("adam",))


def test_scale_sizes() -> None:
    assert scale_sizes(512, 5) == [128, 181, 256, 362, 512]
    assert scale_sizes(512, 3, 200) == [200, 320, 512]
    assert scale_sizes(512, 1) == [512]


def test_scales_run_in_order_and_hand_on_their_image(images: dict[str, Path]) -> None:
    events: list[object] = []
    seen: list[torch.Tensor] = []

    def record(event: object) -> None:
        events.append(event)
        if isinstance(event, Progress):
            seen.append(event.image.detach().clone())  # the live tensor changes after the event

    result = styleforge.transfer(images["content"], [str(images["a"])], size=64, scales=2, min_size=32,
                                 callbacks=[record], **FAST)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [e.iteration for e in progress] == [1, 2, 3, 4] and {e.total_iterations for e in progress} == {4}
    assert [t.shape[-1] for t in seen] == [32, 32, 64, 64]
    assert [e.index for e in events if isinstance(e, StageStarted)] == [0, 1]
    assert [h.iteration for h in result.history] == [1, 2, 3, 4] and [h.stage for h in result.history] == [0, 0, 1, 1]
    # The fine scale starts from the coarse scale's best image, upsampled, not from the content.
    coarse = [h.summary.total for h in result.history[:2]]
    coarse_best = seen[coarse.index(min(coarse))]
    upsampled = torch.nn.functional.interpolate(coarse_best, size=seen[2].shape[-2:], mode="bicubic",
                                                align_corners=False).clamp(0, 1)
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
    result = invoke("transfer", images["content"], "--style", images["a"], "-o", out, "--size", "64", "--scales", "2",
                    "--min-size", "32", "--iterations", "2", "--weights", "random", "--optimizer", "adam", "--quiet",
                    "--checkpoint-every", "1", "--progress-gif", tmp_path / "run.gif", "--gif-every", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("out_*.png")) == [f"out_000{i}.png" for i in range(1, 5)]
    frames = iio.imread(tmp_path / "run.gif", index=None)
    assert frames.shape[0] == 4 and frames.shape[1:3] == iio.imread(out).shape[:2]
    assert read_metadata(out)["iteration"] in (3, 4)
