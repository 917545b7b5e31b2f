"""Tests of styleforge.stylize.pyramid: the run's one numbering of iterations and stages across scales
and tile passes, and its one stop on Ctrl-C. The scales are planned by hand and their objective is a
pull on the pixels (no network), so that many scales, tiles and passes run in a moment."""

from __future__ import annotations

import pytest
import torch

from styleforge.config import TransferConfig
from styleforge.engine import HistoryEntry, Progress, StageEnded, StageStarted, WeightedLoss
from styleforge.images import resize_long_side
from styleforge.signals import Interrupt
from styleforge.stylize import pyramid as pyramid_module
from styleforge.stylize.features import FeatureContext
from styleforge.stylize.filters import blur, gaussian_taps
from styleforge.stylize.plan import ScalePlan, scale_chains
from styleforge.stylize.pyramid import (
    FINEST_DETAIL_SIGMA,
    Numbering,
    Pyramid,
    initial_image,
    planned_iterations,
)

#: adam 4 then sgd 2 at each of three scales (18 iterations); a tiled scale's two passes run 2 + 1 each.
CONFIG = TransferConfig(
    optimizer=("adam:12", "sgd:6"), scale_split=1.0, tile_passes=2, tile_overlap=4, scales=3, device="cpu"
)


def _scales(tiles: tuple[int | None, ...]) -> list[ScalePlan]:
    """Three scales of a 32 × 48 picture (16, 32 and 48 px long sides)."""
    picture = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(0))
    return [
        ScalePlan(size, resize_long_side(picture, size), [], [], [], tile)
        for size, tile in zip((16, 32, 48), tiles)
    ]


def _objective(scale: ScalePlan, extensions: object) -> tuple[object, list]:
    """A pull of the pixels towards grey and towards the scale's (or tile's) picture."""
    target = scale.target[None]
    loss = WeightedLoss(
        {
            "grey": lambda ctx: (ctx.image - 0.5).square().mean(),
            "content": lambda ctx: (ctx.image - target).square().mean(),
        },
        {"grey": 1.0, "content": 3.0},
    )
    return (lambda x: loss(FeatureContext(x, {}))), []


def _run(tiles: tuple[int | None, ...]):
    chains = scale_chains(CONFIG, 3)
    events: list[object] = []
    result = Pyramid(CONFIG, _objective, [], torch.device("cpu")).run(
        _scales(tiles), chains, Interrupt(), callbacks=[events.append]
    )
    return result, events, planned_iterations(chains, CONFIG.iterations)


@pytest.mark.parametrize("tiles", [(None, None, None), (None, 16, 16), (16, 16, 24)], ids=str)
def test_a_three_scale_run_numbers_its_iterations_1_to_n_without_gaps_or_repeats(
    tiles: tuple[int | None, ...],
) -> None:
    """Whole scales and tiled ones (two passes each, several tiles a pass): the events and the history
    count the run's iterations once each, in order, and its stages across the scales."""
    result, events, planned = _run(tiles)
    progress = [e for e in events if isinstance(e, Progress)]
    assert planned == 18 and [e.iteration for e in progress] == list(range(1, planned + 1))
    assert [h.iteration for h in result.history] == list(range(1, planned + 1))
    assert {e.total_iterations for e in events if isinstance(e, (Progress, StageStarted))} == {planned}
    for k in range(3):  # scale k's six iterations: four of its adam (stage 2k), two of its sgd (2k + 1)
        stages = sorted(h.stage for h in result.history[6 * k : 6 * k + 6])
        assert stages == [2 * k] * 4 + [2 * k + 1] * 2
    # a whole scale's stage starts at the next iteration shown (a tiled pass's when its first tile
    # starts it, ahead of the pass's count: within the pass, never before it)
    shown, first_of_scale = 0, 0
    for event in events:
        if isinstance(event, StageStarted):
            whole = tiles[event.index // 2] is None
            assert event.first_iteration == shown + 1 if whole else event.first_iteration > first_of_scale
            first_of_scale = shown if event.index % 2 == 0 else first_of_scale
        elif isinstance(event, Progress):
            shown = event.iteration
    starts = [e.index for e in events if isinstance(e, StageStarted)]
    ends = [e.index for e in events if isinstance(e, StageEnded)]
    assert starts == ends and set(starts) == set(range(6))
    assert all(a <= b for a, b in zip(starts, starts[1:])) or any(t is not None for t in tiles)
    assert result.sizes == [16, 32, 48] and result.image.shape == (3, 32, 48)
    assert 1 <= result.iteration <= planned and result.stop_reason == "completed"


def test_the_history_and_the_events_number_alike() -> None:
    result, events, _ = _run((None, 16, 16))
    progress = [e for e in events if isinstance(e, Progress)]
    assert [e.iteration for e in progress] == [h.iteration for h in result.history]
    # each iteration's stage is one of its scale's two
    assert all(
        e.stage // 2 == h.stage // 2 == (h.iteration - 1) // 6 for e, h in zip(progress, result.history)
    )


def test_numbering_places_each_optimisation_after_the_ones_before() -> None:
    events: list[object] = []
    numbering = Numbering([events.append], total=7)
    numbering.start_scale(2)
    first = numbering.record([HistoryEntry(1, 0, "adam", None), HistoryEntry(2, 1, "sgd", None)])
    numbering(StageStarted(0, "adam", 3, 0.1, 1, 3))
    second = numbering.record([HistoryEntry(1, 0, "adam", None)])
    assert [(h.iteration, h.stage) for h in first + second] == [(1, 2), (2, 3), (3, 2)]
    assert numbering.history == first + second
    (started,) = events
    assert (started.index, started.first_iteration, started.total_iterations) == (2, 3, 7)


def test_a_stop_during_a_scale_ends_the_run_there_with_that_scales_best_image() -> None:
    flag = Interrupt()
    seen: list[int] = []

    def stop_at_the_second_scale(event: object) -> None:
        if isinstance(event, Progress):
            seen.append(event.iteration)
            if event.iteration == 8:
                flag.request()

    chains = scale_chains(CONFIG, 3)
    result = Pyramid(CONFIG, _objective, [], torch.device("cpu")).run(
        _scales((None, 16, 16)), chains, flag, callbacks=[stop_at_the_second_scale]
    )
    assert result.stop_reason == "interrupted" and "between two scales" not in result.stop_detail
    assert result.sizes == [16, 32] and result.image.shape == (3, 21, 32)
    assert [h.iteration for h in result.history] == list(range(1, len(result.history) + 1))
    assert seen == list(range(1, 9)) and 8 <= len(result.history) < 12


def test_a_stop_after_a_scales_last_step_ends_the_run_between_two_scales() -> None:
    flag = Interrupt()

    def stop_as_the_first_scale_ends(event: object) -> None:
        if isinstance(event, StageEnded) and event.index == 1:
            flag.request()

    result = Pyramid(CONFIG, _objective, [], torch.device("cpu")).run(
        _scales((None, None, None)), scale_chains(CONFIG, 3), flag, callbacks=[stop_as_the_first_scale_ends]
    )
    assert result.stop_reason == "interrupted" and result.stop_detail.endswith("between two scales")
    assert result.sizes == [16] and len(result.history) == 6 and result.improved
    assert result.image.shape == (3, 11, 16)


def test_a_finer_scale_starts_from_the_coarser_result_plus_the_contents_missing_detail() -> None:
    g = torch.Generator().manual_seed(1)
    content = torch.rand(3, 32, 48, generator=g)
    coarse_content = resize_long_side(content, 24)
    coarse_result = (coarse_content * 0.5 + 0.25)[None]  # a coarser scale's picture: the content, toned down
    enlarged = initial_image(
        TransferConfig(scale_detail=0.0), content[None], [], coarse_result, coarse_content
    )
    detailed = initial_image(TransferConfig(), content[None], [], coarse_result, coarse_content)
    assert enlarged.shape == detailed.shape == (1, 3, 32, 48)
    # Without the detail: the coarser result, enlarged (blurred). With it: the content's fine band
    # comes back, so the start is the coarser result's tone with the content's edges.
    enlarged_content = torch.nn.functional.interpolate(
        coarse_content[None], size=(32, 48), mode="bicubic", align_corners=False
    )  # not clamped: the band keeps the overshoot
    band = content[None] - enlarged_content
    assert torch.allclose(detailed, (enlarged + band).clamp(0, 1), atol=1e-6)
    assert (detailed - content[None]).abs().mean() < (enlarged - content[None]).abs().mean()
    # A coarser result that is the coarser content gives back the content itself.
    same = initial_image(TransferConfig(), content[None], [], coarse_content[None], coarse_content)
    assert torch.allclose(same, content[None].clamp(0, 1), atol=1e-5)
    # Half the detail, half the band.
    half = initial_image(TransferConfig(scale_detail=0.5), content[None], [], coarse_result, coarse_content)
    assert torch.allclose(half, (enlarged + 0.5 * band).clamp(0, 1), atol=1e-6)
    # At the finest scale the band is softened: its pixel-to-pixel part mostly goes, its mean stays.
    finest = initial_image(TransferConfig(), content[None], [], coarse_result, coarse_content, finest=True)
    soft = blur(band, gaussian_taps(FINEST_DETAIL_SIGMA))
    assert torch.allclose(finest, (enlarged + soft).clamp(0, 1), atol=1e-6)
    assert _pixel_grain(soft) < 0.5 * _pixel_grain(band)
    assert abs(float(soft.mean() - band.mean())) < 1e-3


def test_blur_keeps_the_mean_and_takes_images_narrower_than_its_taps() -> None:
    """Reflected edges where the image is wide enough, repeated ones where it is not (a 1 × N or
    3 × 3 image with a 7-tap blur): the same shape, the mean kept, a constant image unchanged."""
    taps = gaussian_taps(1.0)
    assert taps.numel() == 7 and float(taps.sum()) == pytest.approx(1.0)
    for shape in ((1, 2, 1, 9), (1, 3, 3, 3), (2, 3, 16, 12)):
        image = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        out = blur(image, taps)
        assert out.shape == image.shape
        assert float(out.std()) < float(image.std())
        assert torch.allclose(blur(torch.full(shape, 0.3), taps), torch.full(shape, 0.3), atol=1e-6)
    wide = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    assert float(blur(wide, taps).mean()) == pytest.approx(float(wide.mean()), abs=0.02)


def _pixel_grain(image: torch.Tensor) -> float:
    """Mean square of the 2 × 2 checkerboard response: the energy of a one-pixel grid."""
    d = image[..., :-1, :-1] - image[..., 1:, :-1] - image[..., :-1, 1:] + image[..., 1:, 1:]
    return float(d.square().mean())


def test_the_run_gives_each_finer_scale_the_coarser_scales_content(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, tuple[int, ...] | None, bool]] = []
    original = pyramid_module.initial_image

    def spy(config, content, styles, init_image=None, coarser_content=None, finest=False):
        shape = None if coarser_content is None else tuple(coarser_content.shape)
        seen.append((init_image is not None, shape, finest))
        return original(config, content, styles, init_image, coarser_content, finest)

    monkeypatch.setattr(pyramid_module, "initial_image", spy)
    _run((None, None, None))
    # The first scale from --init; the second and third from the scale before, with its content; the
    # third is the finest.
    assert seen == [(False, None, False), (True, (3, 11, 16), False), (True, (3, 21, 32), True)]
