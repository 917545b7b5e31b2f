"""Optical flow, warping and the reliability mask on a clip whose motion is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import STEP, clip_frames

from styleforge.video.flow import (
    Motion,
    entering,
    motion,
    reliable,
    start_image,
    warp,
    warping_difference,
    warping_error,
)


def _tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frame).permute(2, 0, 1).float() / 255


def test_flow_finds_the_known_shift_of_the_square() -> None:
    frames = [_tensor(f) for f in clip_frames(2)]
    move = motion(frames[0], frames[1])
    h, w = frames[0].shape[-2:]
    # Inside the square (which moved STEP px right), the flow back to the previous frame is -STEP in x.
    y0, x0, side = h // 3, 4 + STEP, h // 3
    inner = move.to_previous[y0 + 3 : y0 + side - 3, x0 + 3 : x0 + side - 3]
    assert np.median(inner[..., 0]) == np.float32(-STEP) or abs(float(np.median(inner[..., 0])) + STEP) < 0.25
    assert abs(float(np.median(inner[..., 1]))) < 0.25
    # The static background does not move.
    assert abs(float(np.median(move.to_previous[:, -10:, 0]))) < 0.25


def test_warp_by_the_flow_reproduces_the_next_frame() -> None:
    frames = [_tensor(f) for f in clip_frames(2)]
    move = motion(frames[0], frames[1])
    warped = warp(frames[0], move.to_previous)
    mask = move.mask.bool().expand_as(warped)
    before = float(((frames[0] - frames[1])[mask] ** 2).mean())
    after = float(((warped - frames[1])[mask] ** 2).mean())
    assert after < before / 10


def test_warp_of_a_pure_shift_is_exact() -> None:
    image = torch.rand(3, 16, 20, generator=torch.Generator().manual_seed(0))
    flow = np.zeros((16, 20, 2), np.float32)
    flow[..., 0] = -3  # every pixel was 3 px to the left
    warped = warp(image, flow)
    assert torch.allclose(warped[:, :, 3:], image[:, :, :-3], atol=1e-6)


def test_mask_keeps_consistent_motion_and_drops_occlusions_and_the_outside() -> None:
    back = np.zeros((16, 20, 2), np.float32)
    back[..., 0] = -3  # every pixel came from 3 px to its left...
    forth = np.zeros_like(back)
    forth[..., 0] = 3  # ...and the forward flow agrees
    mask = reliable(back, forth)
    assert mask.shape == (1, 16, 20)
    assert float(mask[0, :, :3].max()) == 0  # from outside the previous frame
    assert float(mask[0, :, 3:].min()) == 1
    forth[4:8, :, 0] = 0  # rows whose forward flow disagrees: occluded in one direction
    mask = reliable(back, forth)
    assert float(mask[0, 4:8, 4:].max()) == 0 and float(mask[0, 10:, 4:].min()) == 1


def test_mask_of_a_real_pair_keeps_most_pixels() -> None:
    frames = [_tensor(f) for f in clip_frames(2)]
    move = motion(frames[0], frames[1])
    assert move.mask.shape == (1, *frames[0].shape[-2:])
    assert 0.7 < float(move.mask.mean()) <= 1


def test_warping_error_is_zero_for_identical_motion_and_grows_with_flicker() -> None:
    frames = [_tensor(f) for f in clip_frames(2)]
    move = motion(frames[0], frames[1])
    steady = warping_error(frames[0], warp(frames[0], move.to_previous), move)
    noisy = warping_error(frames[0], (frames[1] + 0.1 * torch.randn_like(frames[1])).clamp(0, 1), move)
    assert steady < 1e-6
    assert noisy > 10 * max(steady, 1e-6)


def test_warping_difference_is_masked_and_squares_to_the_warping_error() -> None:
    frames = [_tensor(f) for f in clip_frames(2)]
    move = motion(frames[0], frames[1])
    noise = torch.randn(frames[1].shape, generator=torch.Generator().manual_seed(0))
    noisy = (frames[1] + 0.1 * noise).clamp(0, 1)
    difference = warping_difference(frames[0], noisy, move)
    assert difference.shape == frames[1].shape
    assert float(difference.abs().sum()) > 0
    assert float((difference * (1 - move.mask)).abs().max()) == 0  # nothing where the flow is unreliable
    expected = float((difference**2).sum()) / (3 * float(move.mask.sum()))
    assert warping_error(frames[0], noisy, move) == pytest.approx(expected, rel=1e-6)


def test_entering_marks_the_strip_a_pan_brings_in() -> None:
    back = np.zeros((16, 20, 2), np.float32)
    back[..., 0] = 3  # every pixel was 3 px to its right: the view moved right, new pixels at the right edge
    new = entering(back)
    assert new.shape == (1, 16, 20)
    assert float(new[0, :, -3:].min()) == 1 and float(new[0, :, :-3].max()) == 0
    back[..., 1] = -2  # and 2 px down: the top rows are new as well
    assert float(entering(back)[0, :2].min()) == 1 and float(entering(back)[0, 2:, :-3].max()) == 0


def test_start_image_takes_the_new_strip_from_the_current_frame_not_the_old_border() -> None:
    g = torch.Generator().manual_seed(0)
    previous_out, current_in = torch.rand(3, 16, 20, generator=g), torch.rand(3, 16, 20, generator=g)
    back = np.zeros((16, 20, 2), np.float32)
    back[..., 0] = 3
    move = Motion(back, reliable(back, -back), entering(back))
    start = start_image(warp(previous_out, back), current_in, move)
    assert torch.allclose(start[:, :, -3:], current_in[:, :, -3:])
    assert torch.allclose(start[:, :, :-3], previous_out[:, :, 3:], atol=1e-6)
    # Warping alone would repeat the previous output's last column across the strip.
    border = warp(previous_out, back)[:, :, -3:]
    assert torch.allclose(border, previous_out[:, :, -1:].expand_as(border), atol=1e-6)
    assert not torch.allclose(start[:, :, -3:], border, atol=1e-2)
