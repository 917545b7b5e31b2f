"""Tests of styleforge.nets.resnet: torchvision-identical state dicts, seeded init, block features."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from styleforge.errors import InvalidParameter, StyleforgeError
from styleforge.nets.resnet import (
    RESNET_ARCHS,
    BasicBlock,
    Bottleneck,
    ResNet,
    block_channels,
    build_resnet,
    resnet18,
    resnet50,
)

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn_keys(prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in _BN]


def _expected_keys(arch: str) -> list[str]:
    """torchvision's state-dict keys, in order, written out from the architecture's rules."""
    bottleneck = arch == "resnet50"
    layers = (3, 4, 6, 3) if bottleneck else (2, 2, 2, 2)
    convs = 3 if bottleneck else 2
    keys = ["conv1.weight", *_bn_keys("bn1")]
    for stage, count in enumerate(layers, start=1):
        for i in range(count):
            p = f"layer{stage}.{i}"
            for c in range(1, convs + 1):
                keys += [f"{p}.conv{c}.weight", *_bn_keys(f"{p}.bn{c}")]
            # A stage's first block downsamples when it strides (layer2..4) or, for bottlenecks,
            # when the channel count changes (layer1: 64 -> 256).
            if i == 0 and (stage > 1 or bottleneck):
                keys += [f"{p}.downsample.0.weight", *_bn_keys(f"{p}.downsample.1")]
    keys += ["fc.weight", "fc.bias"]
    return keys


def _seeded(arch: str, seed: int) -> ResNet:
    return build_resnet(arch, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def nets() -> dict[str, ResNet]:
    return {arch: _seeded(arch, 0) for arch in RESNET_ARCHS}


def test_archs_constant() -> None:
    assert RESNET_ARCHS == ("resnet18", "resnet50")


@pytest.mark.parametrize(("arch", "count"), [("resnet18", 122), ("resnet50", 320)])
def test_state_dict_keys_match_torchvision(nets: dict[str, ResNet], arch: str, count: int) -> None:
    keys = list(nets[arch].state_dict().keys())
    expected = _expected_keys(arch)
    assert len(expected) == count
    assert len(keys) == count
    assert keys == expected  # same names, same order


def test_resnet18_shapes(nets: dict[str, ResNet]) -> None:
    sd = nets["resnet18"].state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["bn1.running_mean"].shape == (64,)
    assert sd["layer1.0.conv1.weight"].shape == (64, 64, 3, 3)
    assert "layer1.0.downsample.0.weight" not in sd
    assert sd["layer2.0.conv1.weight"].shape == (128, 64, 3, 3)
    assert sd["layer2.0.downsample.0.weight"].shape == (128, 64, 1, 1)
    assert sd["layer4.1.conv2.weight"].shape == (512, 512, 3, 3)
    assert sd["fc.weight"].shape == (1000, 512)
    assert sd["fc.bias"].shape == (1000,)


def test_resnet50_shapes(nets: dict[str, ResNet]) -> None:
    sd = nets["resnet50"].state_dict()
    assert sd["conv1.weight"].shape == (64, 3, 7, 7)
    assert sd["bn1.running_mean"].shape == (64,)
    assert sd["bn1.num_batches_tracked"].shape == ()
    assert sd["bn1.num_batches_tracked"].dtype == torch.long
    assert sd["layer1.0.conv1.weight"].shape == (64, 64, 1, 1)
    assert sd["layer1.0.downsample.0.weight"].shape == (256, 64, 1, 1)
    assert sd["layer2.0.conv1.weight"].shape == (128, 256, 1, 1)
    assert sd["layer2.0.downsample.0.weight"].shape == (512, 256, 1, 1)
    assert sd["layer2.0.downsample.1.running_var"].shape == (512,)
    assert sd["layer3.5.bn3.weight"].shape == (1024,)
    assert sd["layer4.2.conv3.weight"].shape == (2048, 512, 1, 1)
    assert sd["fc.weight"].shape == (1000, 2048)


def test_bottleneck_strides_on_conv2(nets: dict[str, ResNet]) -> None:
    net = nets["resnet50"]
    first = net.layer2[0]
    assert isinstance(first, Bottleneck)
    assert first.conv1.stride == (1, 1)
    assert first.conv2.stride == (2, 2)
    assert first.downsample[0].stride == (2, 2)
    assert isinstance(nets["resnet18"].layer2[0], BasicBlock)
    assert nets["resnet18"].layer2[0].conv1.stride == (2, 2)


def test_init_like_torchvision(nets: dict[str, ResNet]) -> None:
    sd = nets["resnet50"].state_dict()
    assert torch.all(sd["bn1.weight"] == 1) and torch.all(sd["bn1.bias"] == 0)
    assert torch.all(sd["layer3.0.bn2.running_mean"] == 0)
    assert torch.all(sd["layer3.0.bn2.running_var"] == 1)
    assert int(sd["layer3.0.bn2.num_batches_tracked"]) == 0
    # kaiming_normal_, fan_out, relu: std = sqrt(2 / (out_channels * kh * kw)).
    w = sd["layer4.0.conv2.weight"]  # (512, 512, 3, 3)
    expected_std = (2.0 / (512 * 9)) ** 0.5
    assert abs(w.mean().item()) < 0.1 * expected_std
    assert w.std().item() == pytest.approx(expected_std, rel=0.02)
    bound = 1.0 / 2048**0.5
    assert sd["fc.weight"].abs().max().item() <= bound
    assert sd["fc.bias"].abs().max().item() <= bound
    assert all(torch.isfinite(t).all() for t in sd.values())


@pytest.mark.parametrize("arch", RESNET_ARCHS)
def test_save_load_roundtrip(nets: dict[str, ResNet], arch: str, tmp_path: Path) -> None:
    path = tmp_path / f"{arch}.pth"
    torch.save(nets[arch].state_dict(), path)
    loaded = torch.load(path, weights_only=True, map_location="cpu")
    fresh = _seeded(arch, 123)
    result = fresh.load_state_dict(loaded, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in nets[arch].state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_load_rejects_other_arch(nets: dict[str, ResNet]) -> None:
    with pytest.raises(RuntimeError):
        _seeded("resnet18", 1).load_state_dict(nets["resnet50"].state_dict(), strict=True)


@pytest.mark.parametrize("arch", RESNET_ARCHS)
def test_seeded_init_is_reproducible(arch: str) -> None:
    a, b, c = _seeded(arch, 7).state_dict(), _seeded(arch, 7).state_dict(), _seeded(arch, 8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])
    assert not torch.equal(a["layer4.1.conv2.weight"], c["layer4.1.conv2.weight"])
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


def test_seeded_build_leaves_global_rng_alone() -> None:
    torch.manual_seed(1234)
    before = torch.random.get_rng_state()
    resnet18(generator=torch.Generator().manual_seed(0))
    resnet50(generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_unseeded_build_uses_global_rng() -> None:
    torch.manual_seed(5)
    a = resnet18().state_dict()
    torch.manual_seed(5)
    b = resnet18().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_block_channels() -> None:
    assert block_channels("resnet18") == [64, 64, 128, 128, 256, 256, 512, 512]
    assert sum(block_channels("resnet18")) == 1920
    assert block_channels("resnet50") == [256] * 3 + [512] * 4 + [1024] * 6 + [2048] * 3
    assert sum(block_channels("resnet50")) == 15104


@pytest.mark.parametrize(
    ("arch", "sizes"),
    [
        ("resnet18", [16, 16, 8, 8, 4, 4, 2, 2]),
        ("resnet50", [16] * 3 + [8] * 4 + [4] * 6 + [2] * 3),
    ],
)
def test_block_outputs(nets: dict[str, ResNet], arch: str, sizes: list[int]) -> None:
    net = nets[arch].eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        outs = net.block_outputs(x)
        logits = net(x)
    channels = block_channels(arch)
    assert len(outs) == len(channels) == len(sizes)
    for out, c, s in zip(outs, channels, sizes):
        assert out.shape == (2, c, s, s)
        assert out.min().item() >= 0.0  # after the block's final ReLU
    assert logits.shape == (2, 1000)
    assert torch.isfinite(logits).all()
    # forward's logits are fc(global-average-pool(last block output)).
    pooled = outs[-1].mean(dim=(2, 3))
    torch.testing.assert_close(logits, net.fc(pooled))
    # Hypercolumn length after global average pooling.
    assert sum(o.mean(dim=(2, 3)).shape[1] for o in outs) == sum(channels)


def test_block_outputs_gradient_flows(nets: dict[str, ResNet]) -> None:
    net = _seeded("resnet18", 3).eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1), requires_grad=True)
    outs = net.block_outputs(x)
    sum(o.mean() for o in outs).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("fn", [build_resnet, block_channels])
def test_unknown_arch(fn: object) -> None:
    with pytest.raises(InvalidParameter) as info:
        fn("resnet34")  # type: ignore[operator]
    assert isinstance(info.value, StyleforgeError)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "--backbone" in message and "resnet34" in message
    for name in RESNET_ARCHS:
        assert name in message


def test_unknown_arch_suggests_close_name() -> None:
    with pytest.raises(InvalidParameter, match="did you mean 'resnet50'"):
        build_resnet("resnet-50")


@pytest.mark.parametrize(("arch", "count"), [("resnet18", 11_689_512), ("resnet50", 25_557_032)])
def test_parameter_count_matches_torchvision(nets: dict[str, ResNet], arch: str, count: int) -> None:
    assert sum(p.numel() for p in nets[arch].parameters()) == count
