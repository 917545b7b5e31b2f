"""Optical flow between frames, warping by it, and where it can be trusted.

Flow comes from OpenCV's DIS (dense inverse search, Kroeger et al. 2016): no weights to download, a
few milliseconds a frame at video sizes. The reliability test is Ruder et al.'s (2016, "Artistic
style transfer for videos", eq. 3-4): a pixel of frame t is trusted when following the backward
flow to frame t-1 and the forward flow back lands near where it started (no occlusion), it is not on
a motion boundary, and it does not come from outside the frame. A pixel that does come from outside
(the edge a pan brings in) has no previous output to start from: :func:`start_image` starts it from
the current input frame instead of smearing the previous frame's border across it.

Conventions: frames are (3, H, W) float tensors in [0, 1]; a flow is an (H, W, 2) float32 array of
(dx, dy) in pixels; ``flow_to_previous[y, x]`` says where pixel (x, y) of frame t was in frame t-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from ..stylize.color import luma

__all__ = [
    "Motion",
    "flow",
    "motion",
    "warp",
    "entering",
    "reliable",
    "start_image",
    "warping_difference",
    "warping_error",
]


def _gray(frame: Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> (H, W) uint8 luminance (ITU-R BT.601, as OpenCV's own conversion)."""
    rgb = frame.detach().float().clamp(0, 1).cpu()
    y = luma(rgb)[0]
    return (y * 255 + 0.5).to(torch.uint8).numpy()


def flow(source: Tensor, target: Tensor) -> np.ndarray:
    """The dense flow from ``source`` to ``target``: ``flow[y, x]`` is how far pixel (x, y) of
    ``source`` moved to reach ``target``, (H, W, 2) float32 (DIS, medium preset)."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray(source), _gray(target), None)


def _grid(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.stack([xs, ys], axis=-1)


def _sample(array: np.ndarray, displacement: np.ndarray) -> np.ndarray:
    """``array`` (H, W, C) float32 read at (x, y) + ``displacement`` (bilinear, edges replicated)."""
    where = _grid(array.shape[:2]) + displacement
    out = cv2.remap(
        array, where[..., 0], where[..., 1], interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return out.reshape(array.shape)


def warp(image: Tensor, flow_to_previous: np.ndarray) -> Tensor:
    """The previous frame's ``image`` (3, H, W) moved into the current frame: each pixel of the
    result is read where ``flow_to_previous`` says it was (bilinear)."""
    array = np.ascontiguousarray(image.detach().float().cpu().permute(1, 2, 0).numpy())
    return torch.from_numpy(_sample(array, flow_to_previous)).permute(2, 0, 1).clamp(0, 1)


def entering(flow_to_previous: np.ndarray) -> Tensor:
    """Where the current frame shows what was outside the previous one, (1, H, W) in {0, 1}: the
    pixels whose flow points beyond the previous frame's edges."""
    h, w = flow_to_previous.shape[:2]
    where = _grid((h, w)) + flow_to_previous
    inside = (where[..., 0] >= 0) & (where[..., 0] <= w - 1) & (where[..., 1] >= 0) & (where[..., 1] <= h - 1)
    return torch.from_numpy((~inside).astype(np.float32))[None]


def reliable(
    flow_to_previous: np.ndarray, flow_from_previous: np.ndarray, new: Tensor | None = None
) -> Tensor:
    """Where the flow into the current frame can be trusted, (1, H, W) in {0, 1}.

    Args:
        flow_to_previous: Current frame -> previous (H, W, 2).
        flow_from_previous: Previous frame -> current (H, W, 2).
        new: :func:`entering` of ``flow_to_previous`` when the caller has it already.
    """
    back = flow_to_previous
    forth = _sample(
        np.ascontiguousarray(flow_from_previous), back
    )  # the forward flow where each pixel came from
    # Disocclusion: there and back again should cancel (Ruder et al., eq. 3).
    consistent = ((back + forth) ** 2).sum(-1) <= 0.01 * ((back**2).sum(-1) + (forth**2).sum(-1)) + 0.5
    # Motion boundaries: a steep flow gradient (eq. 4).
    du = np.gradient(back[..., 0])
    dv = np.gradient(back[..., 1])
    steep = du[0] ** 2 + du[1] ** 2 + dv[0] ** 2 + dv[1] ** 2 > 0.01 * (back**2).sum(-1) + 0.002
    # Pixels that come from outside the previous frame have nothing to keep.
    outside = (entering(back) if new is None else new)[0].numpy() > 0
    return torch.from_numpy((consistent & ~steep & ~outside).astype(np.float32))[None]


@dataclass(frozen=True)
class Motion:
    """What the temporal term needs between one input frame and the one before it.

    Attributes:
        to_previous: The flow current -> previous, (H, W, 2).
        mask: Where it is reliable, (1, H, W) in {0, 1}.
        entering: Where the frame shows what was outside the previous one, (1, H, W) in {0, 1}
            (:func:`entering`; a subset of where ``mask`` is 0).
    """

    to_previous: np.ndarray
    mask: Tensor
    entering: Tensor


def motion(previous: Tensor, current: Tensor) -> Motion:
    """The flows both ways between two input frames (3, H, W) and where they agree."""
    to_previous = flow(current, previous)
    new = entering(to_previous)
    return Motion(to_previous, reliable(to_previous, flow(previous, current), new), new)


def start_image(warped: Tensor, current_in: Tensor, move: Motion) -> Tensor:
    """Where a frame's optimisation starts: ``warped``, the previous output warped into this frame
    by ``move`` (:func:`warp`, (3, H, W)), except where the frame shows what was outside the previous
    one; there, the current input frame (3, H, W), as the first frame starts from its content.
    (Warping alone repeats the previous output's edge pixels across the strip a pan brings in, and
    that streak survives the frame's few iterations.)"""
    new = move.entering
    return warped * (1 - new) + current_in.detach().float().cpu() * new


def warping_difference(previous_out: Tensor, current_out: Tensor, move: Motion) -> Tensor:
    """``current_out`` minus ``previous_out`` warped by the *input's* motion, where that motion is
    reliable and 0 elsewhere: (3, H, W) on the CPU, frames (3, H, W) in [0, 1]."""
    warped = warp(previous_out, move.to_previous)
    return move.mask * (current_out.detach().float().cpu() - warped)


def warping_error(previous_out: Tensor, current_out: Tensor, move: Motion) -> float:
    """Flicker between two output frames: the mean squared difference between ``current_out`` and
    ``previous_out`` warped by the *input's* motion, over the pixels where that motion is reliable
    (the measure of Lai et al. 2018 and of Ruder et al.'s evaluation). Frames (3, H, W) in [0, 1]."""
    total = float(move.mask.sum()) * 3
    if total == 0:
        return 0.0
    return float((warping_difference(previous_out, current_out, move) ** 2).sum()) / total
