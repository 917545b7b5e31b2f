"""Colour control: luminance-only transfer (``--preserve-colors``) and histogram matching.

``--preserve-colors`` follows anishathalye/neural-style and jcjohnson/neural-style: the result's
luminance (Y of full-range BT.601 YCbCr) is kept and the content's chroma (Cb, Cr) is put back.

``--color-transfer histogram`` goes the other way round, before optimising: each style image is
recoloured so that every RGB channel has the content's histogram (exact quantile matching), so the
style's brush strokes and texture are learnt in the content's palette (Gatys et al., 2016,
"Preserving colour in neural artistic style transfer", colour-histogram variant).

``--color-transfer luminance`` matches only the tone: each style image's luminance is shifted and
scaled to the content's mean and standard deviation, its chroma kept (the same paper's
luminance-only variant matches the style's luminance this way before transferring it). A dark or
pale painting then no longer asks the picture for its narrow range of tones, while its colours and
strokes are learnt as they are.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["luma", "rgb_to_ycbcr", "ycbcr_to_rgb", "preserve_colors", "match_histogram", "match_luminance"]

# Full-range BT.601 (JPEG) matrices, RGB in [0, 1].
_TO_YCBCR = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
_OFFSET = torch.tensor([0.0, 0.5, 0.5])


def luma(rgb: Tensor) -> Tensor:
    """(…, 3, H, W) RGB in [0, 1] → (…, 1, H, W): the BT.601 luma, Y of :func:`rgb_to_ycbcr`."""
    return torch.einsum("j,...jhw->...hw", _TO_YCBCR[0].to(rgb), rgb).unsqueeze(-3)


def rgb_to_ycbcr(rgb: Tensor) -> Tensor:
    """(…, 3, H, W) RGB in [0, 1] → YCbCr with Y in [0, 1] and Cb, Cr centred on 0.5."""
    m = _TO_YCBCR.to(rgb)
    return torch.einsum("ij,...jhw->...ihw", m, rgb) + _OFFSET.to(rgb).view(3, 1, 1)


def ycbcr_to_rgb(ycbcr: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    m = torch.linalg.inv(_TO_YCBCR.double()).to(ycbcr)
    return torch.einsum("ij,...jhw->...ihw", m, ycbcr - _OFFSET.to(ycbcr).view(3, 1, 1))


def preserve_colors(result: Tensor, content: Tensor) -> Tensor:
    """The result's luminance with the content's chroma.

    Args:
        result: (…, 3, H, W) in [0, 1].
        content: Same shape, in [0, 1].

    Returns:
        (…, 3, H, W) in [0, 1]. Where clamping to [0, 1] is not needed, its Cb/Cr equal the content's.
    """
    y = rgb_to_ycbcr(result)[..., :1, :, :]
    chroma = rgb_to_ycbcr(content)[..., 1:, :, :]
    return ycbcr_to_rgb(torch.cat([y, chroma], dim=-3)).clamp(0.0, 1.0)


def match_histogram(source: Tensor, target: Tensor) -> Tensor:
    """Recolours ``source`` so each channel's histogram equals ``target``'s (quantile mapping).

    Args:
        source: (C, H, W) in [0, 1], the image to recolour.
        target: (C, h, w) in [0, 1], whose colour distribution is wanted; any size.

    Returns:
        (C, H, W): each source pixel gets the target value at the same rank (quantile).
    """
    c = source.shape[0]
    src = source.reshape(c, -1)
    tgt, _ = target.reshape(c, -1).sort(dim=1)
    ranks = src.argsort(dim=1).argsort(dim=1).to(source.dtype)
    n, m = src.shape[1], tgt.shape[1]
    # Position of each rank on the target's sorted values, linearly interpolated.
    pos = ranks * (m - 1) / max(n - 1, 1)
    lo = pos.floor().long().clamp_(0, m - 1)
    hi = (lo + 1).clamp_(max=m - 1)
    frac = pos - lo.to(pos.dtype)
    out = tgt.gather(1, lo) * (1 - frac) + tgt.gather(1, hi) * frac
    return out.reshape(source.shape)


#: The most ``match_luminance`` stretches a style's luminance (a dark painting's spread × 4 is a
#: photograph's typical one; more would turn its noise and 8-bit steps into texture).
MAX_TONE_GAIN = 4.0


def match_luminance(source: Tensor, target: Tensor) -> Tensor:
    """``source`` with its luminance's mean and standard deviation set to ``target``'s.

    Args:
        source: (3, H, W) RGB in [0, 1], the image whose tone changes.
        target: (3, h, w) RGB in [0, 1], whose tone is wanted; any size.

    Returns:
        (3, H, W) in [0, 1]: Y ← (Y − μₛ)·g + μₜ (BT.601 luma) with g = σₜ/σₛ at most
        :data:`MAX_TONE_GAIN`, Cb and Cr unchanged, clamped. A nearly flat source is stretched no
        more than that, so that its noise and 8-bit steps do not become texture; a flat one is
        only shifted.
    """
    ycc = rgb_to_ycbcr(source)
    y = ycc[:1]
    wanted = luma(target)[0]
    # a flat source has nothing to stretch (y − μₛ = 0): only its mean moves
    gain = (wanted.std(unbiased=False) / y.std(unbiased=False).clamp_min(1e-12)).clamp(max=MAX_TONE_GAIN)
    toned = (y - y.mean()) * gain + wanted.mean()
    return ycbcr_to_rgb(torch.cat([toned, ycc[1:]])).clamp(0.0, 1.0)
