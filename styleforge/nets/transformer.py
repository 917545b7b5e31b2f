"""The feed-forward transformation network: one pass from a photo to its stylised version.

The architecture is Johnson et al.'s (2016, "Perceptual losses for real-time style transfer and
super-resolution", supplementary material) with the changes that later work made standard:

- **instance normalisation** instead of batch normalisation (Ulyanov et al. 2017, "Improved texture
  networks"): each image is normalised by its own statistics, so a picture's result does not depend
  on the others in its batch, and a network trained on small crops stylises any size;
- **nearest-neighbour upsampling followed by a convolution** instead of the transposed
  (fractionally strided) convolutions, whose uneven overlap paints a checkerboard (Odena et al. 2016,
  "Deconvolution and checkerboard artifacts");
- **reflection padding** everywhere instead of zeros, so the borders get no dark frame, and no
  ReLU after the residual sum (Gross & Wilber's "Training and investigating residual nets");
- no parameter that a normalisation cancels (see :func:`_conv` and :class:`_Residual`).

Layout (``w`` = :attr:`TransformerNet.width`, 32 in Johnson et al.): a 9×9 convolution to ``w``
channels, two stride-2 3×3 convolutions to ``2w`` and ``4w``, :attr:`TransformerNet.blocks` residual
blocks at a quarter of the resolution, two ×2 upsamplings with 3×3 convolutions back to ``w``
channels, and a 9×9 convolution to RGB. Johnson et al. end in ``tanh`` scaled to pixel values; here
``(tanh + 1) / 2`` maps the output to [0, 1], the range every styleforge network takes and gives.

Instance normalisation can also use statistics taken elsewhere: :meth:`TransformerNet.statistics`
records each normalisation's mean and variance for a picture (e.g. a smaller copy of a large image)
and :meth:`TransformerNet.fixed_statistics` runs the network with them, so the tiles of a picture too
large to run whole are normalised alike and meet without seams.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InvalidParameter

__all__ = ["DEFAULT_BLOCKS", "DEFAULT_WIDTH", "InstanceNorm", "TransformerNet", "Statistics"]

#: Channels of the first layer in Johnson et al.'s network.
DEFAULT_WIDTH = 32
#: Residual blocks in Johnson et al.'s network.
DEFAULT_BLOCKS = 5
#: The network halves the picture twice: inputs are padded to a multiple of this ...
MULTIPLE = 4
#: ... and to this side at least (the quarter-resolution layers' 3×3 reflection needs 2 px).
MIN_SIDE = 8

#: Each normalisation's per-channel (mean, variance), (1, C, 1, 1) each, in the network's order.
Statistics = list[tuple[Tensor, Tensor]]


class InstanceNorm(nn.Module):
    """Affine instance normalisation of (B, C, H, W) activations (parameters ``weight`` and, unless
    ``bias`` is false, ``bias``).

    Attributes:
        record: When a list, each call appends its input's (mean, variance) (a batch of one).
        fixed: When set, (mean, variance) to normalise with instead of the input's own.
    """

    def __init__(self, channels: int, eps: float = 1e-5, *, bias: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None
        self.record: Statistics | None = None
        self.fixed: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.fixed is None and self.record is None:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        shift = self.bias.view(1, -1, 1, 1) if self.bias is not None else 0
        if self.fixed is not None:
            mean, var = self.fixed
        else:
            var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
            assert self.record is not None
            self.record.append((mean.detach(), var.detach()))
        scale = self.weight.view(1, -1, 1, 1) * torch.rsqrt(var + self.eps)
        return (x - mean) * scale + shift


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, bias: bool = False) -> nn.Sequential:
    """Reflection padding and a convolution (keys ``<i>.1.weight``, and ``<i>.1.bias`` with ``bias``).

    A convolution followed by an instance normalisation has no bias: the normalisation subtracts
    each channel's mean, so a bias would get no gradient (only rounding noise, which Adam's
    normalised steps would turn into random moves)."""
    return nn.Sequential(nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride, bias=bias))


class _Up(nn.Module):
    """×2 nearest-neighbour upsampling, then a padded convolution (no checkerboard)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = _conv(c_in, c_out, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class _Residual(nn.Module):
    """conv-norm-ReLU-conv-norm, added to the input (no ReLU after the sum).

    The second normalisation has no bias: a per-channel constant added to the residual stream meets
    only convolutions followed by instance normalisations, which remove it, so it would get no
    gradient (only rounding noise, which Adam turns into random moves)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, 3),
            InstanceNorm(channels),
            nn.ReLU(),
            _conv(channels, channels, 3),
            InstanceNorm(channels, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Johnson et al.'s transformation network with instance norm and upsample-convolutions.

    Args:
        width: Channels of the first layer (the others are 2× and 4× it); 32 in Johnson et al.,
            16 runs about 3× faster.
        blocks: Residual blocks at a quarter of the resolution.
        seed: Seeds the initial weights (PyTorch's default initialisation, drawn from a generator:
            the global random state is left untouched).

    Input: (B, 3, H, W) RGB in [0, 1], any H and W (padded by reflection to a multiple of 4, and to
    8 px at least, inside).
    Output: (B, 3, H, W) in [0, 1].
    """

    def __init__(self, width: int = DEFAULT_WIDTH, blocks: int = DEFAULT_BLOCKS, *, seed: int = 0) -> None:
        super().__init__()
        for param, value, least in (("--width", width, 1), ("--blocks", blocks, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise InvalidParameter(param, value, f"a whole number >= {least}")
        self.width, self.blocks = width, blocks
        w = width
        with torch.device("meta"):  # shapes only: the weights are drawn below, from the seeded generator
            self.down = nn.Sequential(
                _conv(3, w, 9),
                InstanceNorm(w),
                nn.ReLU(),
                _conv(w, 2 * w, 3, 2),
                InstanceNorm(2 * w),
                nn.ReLU(),
                _conv(2 * w, 4 * w, 3, 2),
                InstanceNorm(4 * w),
                nn.ReLU(),
            )
            self.residual = nn.Sequential(*(_Residual(4 * w) for _ in range(blocks)))
            self.up = nn.Sequential(
                _Up(4 * w, 2 * w),
                InstanceNorm(2 * w),
                nn.ReLU(),
                _Up(2 * w, w),
                InstanceNorm(w),
                nn.ReLU(),
                _conv(w, 3, 9, bias=True),
            )
        self.to_empty(device="cpu")
        generator = torch.Generator().manual_seed(int(seed))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                # nn.Conv2d's own initialisation (kaiming uniform, a = √5; bias uniform in ±1/√fan_in)
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    bound = 1 / math.sqrt(module.weight[0].numel())
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, InstanceNorm):
                nn.init.ones_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def shape(self) -> dict[str, int]:
        """What builds this network again: ``{"width": ..., "blocks": ...}``."""
        return {"width": self.width, "blocks": self.blocks}

    def norms(self) -> list[InstanceNorm]:
        """The instance normalisations, in the order the forward pass meets them."""
        return [m for m in self.modules() if isinstance(m, InstanceNorm)]

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        pad_h, pad_w = (max(MIN_SIDE, side + (-side) % MULTIPLE) - side for side in (h, w))
        if pad_h or pad_w:
            # reflection needs the side longer than the pad: a tiny picture is replicated instead
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = self.up(self.residual(self.down(x)))
        return ((torch.tanh(y) + 1) / 2)[..., :h, :w]

    @torch.no_grad()
    def statistics(self, image: Tensor) -> Statistics:
        """Each normalisation's (mean, variance) for ``image`` (1, 3, H, W), in :meth:`norms` order."""
        found: Statistics = []
        norms = self.norms()
        for norm in norms:
            norm.record = found
        try:
            self(image)
        finally:
            for norm in norms:
                norm.record = None
        return found

    @contextmanager
    def fixed_statistics(self, stats: Statistics) -> Iterator[None]:
        """Within the block, every normalisation uses ``stats`` (:meth:`statistics`) instead of its
        input's own."""
        norms = self.norms()
        if len(stats) != len(norms):
            raise ValueError(f"{len(stats)} statistics for {len(norms)} normalisations")
        for norm, pair in zip(norms, stats):
            norm.fixed = pair
        try:
            yield
        finally:
            for norm in norms:
                norm.fixed = None
