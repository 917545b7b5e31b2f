"""ResNet-18 and ResNet-50 with torchvision's exact module names and state-dict keys.

torchvision is not a dependency of styleforge, so the networks are defined here. Every module name,
parameter and buffer matches :mod:`torchvision.models.resnet` (ResNet "v1.5": a bottleneck block
strides on its 3x3 ``conv2``), so torchvision's published ImageNet ``.pth`` state dicts load with
``model.load_state_dict(state_dict)`` unchanged, ``strict=True``.

Besides the ImageNet logits of :meth:`ResNet.forward`, :meth:`ResNet.block_outputs` gives the output
of every residual block in order, the features the attribute network's hypercolumn pools;
:func:`block_channels` gives their channel counts without building a network.

Inputs are RGB images normalised with the ImageNet mean and standard deviation, shape ``(B, 3, H, W)``,
float; this module does not normalise, callers do.

Random initialisation follows torchvision (Kaiming-normal ``fan_out`` convolutions, batch norm weight 1
and bias 0, PyTorch's default for the final linear layer) but draws from an optional
:class:`torch.Generator`; with one, the weights are the same on every run and the global random
number generator is left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from styleforge.errors import choice_error

__all__ = [
    "RESNET_ARCHS",
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "block_channels",
    "build_resnet",
    "resnet18",
    "resnet50",
]

RESNET_ARCHS: tuple[str, ...] = ("resnet18", "resnet50")
"""The architectures :func:`build_resnet` knows, as ``--backbone`` accepts them."""

_WIDTHS: tuple[int, int, int, int] = (64, 128, 256, 512)
"""Width (``planes``) of the blocks of ``layer1`` .. ``layer4``."""


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias, as torchvision's ``conv3x3``."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution with no bias, as torchvision's ``conv1x1``."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    Modules: ``conv1``, ``bn1``, ``relu``, ``conv2``, ``bn2`` and, when given, ``downsample``
    (``downsample.0`` a 1x1 convolution, ``downsample.1`` batch norm).

    Args:
        inplanes: Channels of the input.
        planes: Channels of the output (``expansion`` is 1).
        stride: Stride of ``conv1``; 2 halves height and width.
        downsample: Maps the input to the output's shape for the residual sum, or ``None`` when the
            shapes already match.
    """

    expansion: int = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """Runs the block.

        Args:
            x: Features ``(B, inplanes, H, W)``.

        Returns:
            Features ``(B, planes, H / stride, W / stride)`` (rounded up), after the final ReLU, so
            ``>= 0``.
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = out + identity
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand convolutions with a residual connection (ResNet-50 and deeper).

    The stride is on the 3x3 ``conv2`` ("ResNet v1.5", as torchvision). Modules: ``conv1``, ``bn1``,
    ``conv2``, ``bn2``, ``conv3``, ``bn3``, ``relu`` and, when given, ``downsample``.

    Args:
        inplanes: Channels of the input.
        planes: Width of the block; the output has ``planes * 4`` channels.
        stride: Stride of ``conv2``; 2 halves height and width.
        downsample: Maps the input to the output's shape for the residual sum, or ``None`` when the
            shapes already match.
    """

    expansion: int = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        """Runs the block.

        Args:
            x: Features ``(B, inplanes, H, W)``.

        Returns:
            Features ``(B, planes * 4, H / stride, W / stride)`` (rounded up), after the final ReLU, so
            ``>= 0``.
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = out + identity
        return self.relu(out)


class ResNet(nn.Module):
    """A ResNet with torchvision's module names: ``conv1``, ``bn1``, ``relu``, ``maxpool``,
    ``layer1`` .. ``layer4``, ``avgpool``, ``fc``.

    The network is built on the ``meta`` device and then initialised on the CPU, so building it
    consumes no numbers from the global random number generator when ``generator`` is given. Move it
    with ``.to(device)`` afterwards.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: Number of blocks in each of ``layer1`` .. ``layer4`` (``(2, 2, 2, 2)`` for ResNet-18,
            ``(3, 4, 6, 3)`` for ResNet-50).
        num_classes: Outputs of ``fc``; 1000 for torchvision's ImageNet weights.
        generator: Source of the random initial weights; ``None`` uses the global generator. Must be
            a CPU generator.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"layers must give 4 block counts, got {list(layers)}")
        self.inplanes = 64
        with torch.device("meta"):
            self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(self.inplanes)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(block, _WIDTHS[0], layers[0])
            self.layer2 = self._make_layer(block, _WIDTHS[1], layers[1], stride=2)
            self.layer3 = self._make_layer(block, _WIDTHS[2], layers[2], stride=2)
            self.layer4 = self._make_layer(block, _WIDTHS[3], layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(_WIDTHS[3] * block.expansion, num_classes)
        self.to_empty(device="cpu")
        self.reset_parameters(generator)

    def _make_layer(
        self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int = 1
    ) -> nn.Sequential:
        """Builds one layer (``layer1`` .. ``layer4``) of ``blocks`` blocks; the first one strides and, if
        needed, downsamples."""
        downsample: nn.Module | None = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layer: list[nn.Module] = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layer.extend(block(self.inplanes, planes) for _ in range(1, blocks))
        return nn.Sequential(*layer)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-initialises every weight and buffer as torchvision does.

        Convolutions: Kaiming normal, ``fan_out``, ReLU gain. Batch norm: weight 1, bias 0, running
        mean 0, running variance 1, ``num_batches_tracked`` 0. ``fc``: PyTorch's default for
        :class:`torch.nn.Linear` (uniform in ``+-1/sqrt(in_features)``).

        Args:
            generator: Source of the random numbers; ``None`` uses the global generator.
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                module.reset_running_stats()
            elif isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(module.in_features)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)

    def blocks(self) -> list[nn.Module]:
        """Every residual block, ``layer1.0`` first, ``layer4.<last>`` last."""
        return [blk for layer in (self.layer1, self.layer2, self.layer3, self.layer4) for blk in layer]

    def _stem(self, x: Tensor) -> Tensor:
        """``conv1``, ``bn1``, ``relu``, ``maxpool``: ``(B, 3, H, W)`` to ``(B, 64, H/4, W/4)``."""
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def block_outputs(self, x: Tensor) -> list[Tensor]:
        """The output of every residual block, in order.

        Args:
            x: ImageNet-normalised RGB images ``(B, 3, H, W)``, float.

        Returns:
            One tensor per block (8 for ResNet-18, 16 for ResNet-50), each after the block's final
            ReLU (values ``>= 0``), shaped ``(B, C_i, h_i, w_i)`` with ``C_i`` as
            :func:`block_channels` gives and ``h_i = H / 4`` in ``layer1``, ``H / 8`` in ``layer2``,
            ``H / 16`` in ``layer3`` and ``H / 32`` in ``layer4`` (each stride rounding up).
        """
        out = self._stem(x)
        outputs: list[Tensor] = []
        for blk in self.blocks():
            out = blk(out)
            outputs.append(out)
        return outputs

    def forward(self, x: Tensor) -> Tensor:
        """ImageNet class logits, as torchvision's ``ResNet.forward``.

        Args:
            x: ImageNet-normalised RGB images ``(B, 3, H, W)``, float.

        Returns:
            Unnormalised logits ``(B, num_classes)``.
        """
        out = self._stem(x)
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = torch.flatten(self.avgpool(out), 1)
        return self.fc(out)


_SPECS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def resnet18(generator: torch.Generator | None = None) -> ResNet:
    """ResNet-18 (basic blocks, 2-2-2-2), 1000 classes, randomly initialised.

    Args:
        generator: Source of the random initial weights; ``None`` uses the global generator.

    Returns:
        The network, on the CPU, in training mode.
    """
    return ResNet(BasicBlock, _SPECS["resnet18"][1], generator=generator)


def resnet50(generator: torch.Generator | None = None) -> ResNet:
    """ResNet-50 (bottleneck blocks, 3-4-6-3, v1.5), 1000 classes, randomly initialised.

    Args:
        generator: Source of the random initial weights; ``None`` uses the global generator.

    Returns:
        The network, on the CPU, in training mode.
    """
    return ResNet(Bottleneck, _SPECS["resnet50"][1], generator=generator)


def _check_arch(arch: str) -> None:
    """Raises the ``--backbone`` choice error unless ``arch`` is one of :data:`RESNET_ARCHS`."""
    if arch not in RESNET_ARCHS:
        raise choice_error("--backbone", arch, RESNET_ARCHS)


def build_resnet(arch: str, generator: torch.Generator | None = None) -> ResNet:
    """Builds a randomly initialised ResNet by name.

    Args:
        arch: One of :data:`RESNET_ARCHS`.
        generator: Source of the random initial weights; ``None`` uses the global generator.

    Returns:
        The network, on the CPU, in training mode; load torchvision's weights with
        ``load_state_dict``.

    Raises:
        styleforge.errors.InvalidParameter: ``arch`` is not one of :data:`RESNET_ARCHS`.
    """
    _check_arch(arch)
    block, layers = _SPECS[arch]
    return ResNet(block, layers, generator=generator)


def block_channels(arch: str) -> list[int]:
    """Channels of each residual block's output, in the order of :meth:`ResNet.block_outputs`.

    ``sum(block_channels(arch))`` is the length of the globally average-pooled hypercolumn: 1,920 for
    ResNet-18, 15,104 for ResNet-50.

    Args:
        arch: One of :data:`RESNET_ARCHS`.

    Returns:
        One channel count per block (8 for ResNet-18, 16 for ResNet-50).

    Raises:
        styleforge.errors.InvalidParameter: ``arch`` is not one of :data:`RESNET_ARCHS`.
    """
    _check_arch(arch)
    block, layers = _SPECS[arch]
    return [width * block.expansion for width, count in zip(_WIDTHS, layers) for _ in range(count)]
