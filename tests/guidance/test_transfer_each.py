"""Tests of styleforge.guidance.run.transfer_each: several content images, one network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _helpers import write_image, write_samples

from styleforge.errors import InputFileError
from styleforge.guidance.run import transfer, transfer_each

FAST = dict(size=32, iterations=3, weights="random", device="cpu")


@pytest.fixture()
def images(tmp_path: Path) -> dict[str, Path]:
    samples = write_samples(tmp_path)
    samples["other"] = write_image(tmp_path / "other.png", (32, 40), seed=7)
    return samples


def test_each_result_equals_its_own_run_and_the_network_is_built_once(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.stylize import run as run_module

    contents, styles = [images["content"], images["other"]], [str(images["a"]), str(images["b"])]
    alone = [transfer(c, styles, **FAST) for c in contents]
    builds: list[str] = []
    real_net = run_module.VGGFeatures

    class Counting(real_net):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            builds.append("net")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(run_module, "VGGFeatures", Counting)
    runs = list(transfer_each(contents, styles, **FAST))
    assert builds == ["net"]
    assert [r.content for r in runs] == contents and all(r.error is None for r in runs)
    for run, single in zip(runs, alone):
        assert run.result is not None and run.result.image.shape == single.image.shape
        assert torch.allclose(run.result.image, single.image, atol=1e-6)
        assert run.result.metadata["content"] == single.metadata["content"]
    assert runs[0].result.image.shape != runs[1].result.image.shape  # each at its own aspect


def test_inputs_are_checked_before_any_work_and_a_later_broken_file_is_skipped(
    images: dict[str, Path], tmp_path: Path
) -> None:
    styles = [str(images["a"])]
    with pytest.raises(InputFileError, match="CONTENT: .*missing.png' does not exist"):
        next(transfer_each([images["content"], tmp_path / "missing.png"], styles, **FAST))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InputFileError, match="is not an image"):
        next(transfer_each([images["content"], text], styles, **FAST))
    # A file whose header reads but whose pixels do not: found when its turn comes, and skipped.
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(images["other"].read_bytes()[:80])
    runs = list(transfer_each([images["content"], truncated, images["other"]], styles, **FAST))
    assert [r.error is None for r in runs] == [True, False, True]
    assert runs[1].error is not None and runs[1].error.param == "CONTENT" and runs[1].result is None


class _Flag:
    requested = False


def test_a_ctrl_c_ends_the_current_image_with_its_best_so_far_and_stops(images: dict[str, Path]) -> None:
    from styleforge.engine import Progress

    flag = _Flag()
    seen: list[int] = []

    def press(event: object) -> None:  # Ctrl-C during the second image's second iteration
        if isinstance(event, Progress):
            seen.append(event.iteration)
            if len(seen) == 5:
                flag.requested = True

    contents = [images["content"], images["other"], images["content"]]
    runs = list(transfer_each(contents, [str(images["a"])], callbacks=[press], interrupt=flag, **FAST))
    assert len(runs) == 2  # the third never started
    assert runs[0].result.stop_reason == "completed" and runs[1].result.stop_reason == "interrupted"
    assert 0 < len(runs[1].result.history) < 3
