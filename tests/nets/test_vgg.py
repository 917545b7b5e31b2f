"""Tests of styleforge.nets.vgg: torchvision-identical state dicts, weight files, truncation,
freezing, pooling swap, seeded init and layer names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from styleforge.errors import InvalidParameter, StyleforgeError, WeightsError
from styleforge.nets.vgg import VGGFeatures, layer_names, pooling_factor
from styleforge.nets.weights import resolve_weights

# torchvision's configs written out: "M" is a max-pool. features.<i> indexes conv, ReLU and pool
# modules in this order, so conv i's weights are features.<i>.weight.
_TORCHVISION_CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ],
}


def _torchvision_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    index, in_channels = 0, 3
    for item in _TORCHVISION_CFG[arch]:
        if item == "M":
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (item, in_channels, 3, 3)
        shapes[f"features.{index}.bias"] = (item,)
        index, in_channels = index + 2, item
    return shapes


def test_torchvision_key_tables_are_what_we_think() -> None:
    assert list(_torchvision_shapes("vgg19"))[-1] == "features.34.bias"
    assert list(_torchvision_shapes("vgg16"))[-1] == "features.28.bias"
    assert len(_torchvision_shapes("vgg19")) == 32 and len(_torchvision_shapes("vgg16")) == 26


@pytest.mark.parametrize("arch, deepest", [("vgg19", "relu5_4"), ("vgg16", "relu5_3")])
def test_state_dict_keys_and_shapes_match_torchvision(arch: str, deepest: str) -> None:
    net = VGGFeatures(arch, layers=(deepest,))
    state = net.state_dict()
    expected = _torchvision_shapes(arch)
    assert list(state) == list(expected)
    for key, shape in expected.items():
        assert tuple(state[key].shape) == shape, key


@pytest.fixture(scope="module")
def vgg16_state() -> dict[str, torch.Tensor]:
    """A seeded VGG-16 trunk's state dict plus torchvision-style classifier keys."""
    state = dict(VGGFeatures("vgg16", layers=("relu5_3",), seed=11).state_dict())
    g = torch.Generator().manual_seed(0)
    state["classifier.0.weight"] = torch.randn(8, 4, generator=g)
    state["classifier.0.bias"] = torch.zeros(8)
    state["classifier.6.weight"] = torch.randn(3, 8, generator=g)
    return state


def _image(h: int = 32, w: int = 40) -> torch.Tensor:
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(4))


def test_a_written_state_dict_loads_and_gives_the_same_outputs(tmp_path: Path, vgg16_state: dict) -> None:
    path = tmp_path / "vgg16-local.pth"
    torch.save(vgg16_state, path)
    choice = resolve_weights(path, "vgg16")
    assert choice.kind == "file" and choice.source == str(path)
    assert "classifier.0.weight" in choice.state_dict  # kept in the file, ignored by the network
    layers = ("relu1_2", "relu3_1", "relu4_3")
    loaded = VGGFeatures("vgg16", layers, state_dict=choice.state_dict, seed=999, source=choice.source)
    original = VGGFeatures("vgg16", layers, seed=11)
    other = VGGFeatures("vgg16", layers, seed=999)
    x = _image()
    out_loaded, out_original, out_other = loaded(x, layers), original(x, layers), other(x, layers)
    assert set(out_loaded) == set(layers)
    for layer in layers:
        assert torch.equal(out_loaded[layer], out_original[layer])
    assert not torch.equal(out_loaded["relu4_3"], out_other["relu4_3"])


def test_a_nested_state_dict_file_loads(tmp_path: Path, light_state: dict) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": light_state, "epoch": torch.tensor(3)}, path)
    choice = resolve_weights(str(path), "vgg16")
    net = VGGFeatures("vgg16", ("relu1_1",), state_dict=choice.state_dict)
    assert torch.equal(net.features[0].weight, light_state["features.0.weight"])


@pytest.fixture
def light_state() -> dict[str, torch.Tensor]:
    """torchvision's VGG-16 keys and shapes built from the table alone (not from our model), each a
    constant broadcast from one element so that the file the test writes stays tiny."""
    return {
        key: torch.full((), float(i)).expand(shape)
        for i, (key, shape) in enumerate(_torchvision_shapes("vgg16").items())
    }


def test_a_state_dict_built_from_torchvisions_table_loads(tmp_path: Path, light_state: dict) -> None:
    path = tmp_path / "vgg16-table.pth"
    torch.save({**light_state, "classifier.0.weight": torch.zeros(2, 2)}, path)
    assert path.stat().st_size < 200_000
    choice = resolve_weights(path, "vgg16")
    net = VGGFeatures("vgg16", ("relu5_3",), state_dict=choice.state_dict)
    for i, (key, value) in enumerate(net.state_dict().items()):
        assert torch.equal(value, light_state[key]) and value.flatten()[0].item() == i


def _expect_weights_error(tmp_path: Path, state: object, *needles: str) -> str:
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as info:
        choice = resolve_weights(path, "vgg16")
        VGGFeatures("vgg16", ("relu1_1",), state_dict=choice.state_dict, source=choice.source)
    message = str(info.value)
    assert "\n" not in message and message.startswith("--weights")
    for needle in needles:
        assert needle in message, message
    return message


def test_missing_key_is_named(tmp_path: Path, light_state: dict) -> None:
    state = {k: v for k, v in light_state.items() if k != "features.28.bias"}
    _expect_weights_error(tmp_path, state, "missing 1 keys", "features.28.bias", "bad.pth")


def test_wrong_shape_is_named(tmp_path: Path, light_state: dict) -> None:
    state = dict(light_state)
    state["features.2.weight"] = torch.zeros(()).expand(64, 64, 5, 5)
    _expect_weights_error(tmp_path, state, "shape", "features.2.weight", "(64, 64, 5, 5)", "(64, 64, 3, 3)")


def test_unexpected_key_is_named(tmp_path: Path, light_state: dict) -> None:
    state = dict(light_state)
    state["features.99.weight"] = torch.zeros(1)
    _expect_weights_error(tmp_path, state, "unexpected", "features.99.weight")


def test_vgg16_file_for_vgg19_is_rejected(tmp_path: Path, light_state: dict) -> None:
    # A VGG-16 file given to VGG-19: the conv indices differ, so keys are missing and shapes differ.
    path = tmp_path / "vgg16.pth"
    torch.save(light_state, path)
    choice = resolve_weights(path, "vgg19")
    with pytest.raises(WeightsError, match="does not fit this network"):
        VGGFeatures("vgg19", ("relu1_1",), state_dict=choice.state_dict, source=choice.source)


def test_resnet_style_keys_are_rejected(tmp_path: Path) -> None:
    _expect_weights_error(
        tmp_path, {"conv1.weight": torch.zeros(64, 3, 7, 7)}, "missing", "unexpected", "conv1.weight"
    )


@pytest.mark.parametrize(
    "content",
    [[1, 2, 3], {"features.0.weight": 3}, torch.zeros(3)],
    ids=["list", "non-tensor-values", "bare-tensor"],
)
def test_a_file_that_is_not_a_state_dict(tmp_path: Path, content: object) -> None:
    _expect_weights_error(tmp_path, content, "state dict")


def test_a_non_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(WeightsError) as info:
        resolve_weights(path, "vgg19")
    assert "not a PyTorch state-dict file" in str(info.value) and "notes.pth" in str(info.value)


def test_a_folder_or_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as info:
        resolve_weights(tmp_path, "vgg19")
    assert str(info.value).startswith("--weights:") and "folder" in str(info.value)
    with pytest.raises(InvalidParameter) as info:
        resolve_weights(tmp_path / "missing.pth", "vgg19")
    message = str(info.value)
    assert message.startswith("--weights:") and "missing.pth" in message and "random" in message


def test_truncated_after_the_deepest_layer() -> None:
    for arch, deepest in [("vgg19", "relu4_2"), ("vgg19", "pool5"), ("vgg16", "pool2"), ("vgg16", "relu5_3")]:
        net = VGGFeatures(arch, (deepest, "conv1_1"))
        assert len(net.features) == layer_names(arch).index(deepest) + 1, (arch, deepest)
    net = VGGFeatures("vgg19", ("relu3_1",))
    assert isinstance(net.features[-1], nn.ReLU)
    assert sum(isinstance(m, nn.Conv2d) for m in net.features) == 5
    assert list(net.state_dict())[-1] == "features.10.bias"


def test_forward_returns_named_layers_with_the_right_shapes() -> None:
    net = VGGFeatures("vgg19", ("relu1_1", "relu2_1", "relu4_2", "pool3"))
    out = net(_image(32, 48), ["relu4_2", "relu1_1", "pool3"])
    assert set(out) == {"relu4_2", "relu1_1", "pool3"}
    assert out["relu1_1"].shape == (1, 64, 32, 48)
    assert out["pool3"].shape == (1, 256, 4, 6)
    assert out["relu4_2"].shape == (1, 512, 4, 6)
    assert (out["relu1_1"] >= 0).all()


def test_forward_normalises_with_imagenet_statistics() -> None:
    net = VGGFeatures("vgg19", ("conv1_1",))
    x = _image(8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = net.features[0]((x - mean) / std)
    assert torch.allclose(net(x, ["conv1_1"])["conv1_1"], expected)


def test_bf16_autocast_returns_bf16_features_close_to_fp32() -> None:
    """No float32 copies of the activations (they would take the memory bf16 saves); the image and
    its gradient stay float32."""
    fp32 = VGGFeatures("vgg19", ("relu1_1", "relu3_1"), seed=3)
    bf16 = VGGFeatures("vgg19", ("relu1_1", "relu3_1"), seed=3, compute_dtype=torch.bfloat16)
    x = _image(32, 32).requires_grad_(True)
    exact, low = fp32(x, ["relu1_1", "relu3_1"]), bf16(x, ["relu1_1", "relu3_1"])
    for name in exact:
        assert low[name].dtype == torch.bfloat16 and low[name].is_contiguous(
            memory_format=torch.channels_last
        )
        error = (low[name].float() - exact[name]).norm() / exact[name].norm()
        assert 0 < error < 0.02, (name, float(error))  # bf16 keeps 8 bits of mantissa: close, not equal
    low["relu3_1"].float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32 and x.grad.abs().sum() > 0


def test_frozen() -> None:
    net = VGGFeatures("vgg19", ("relu3_1",))
    assert all(not p.requires_grad for p in net.parameters())
    assert not net.training and not any(m.training for m in net.modules())
    assert net.train() is net
    assert not net.training and not any(m.training for m in net.modules())
    net.train(True)
    assert not any(m.training for m in net.modules())
    # Gradients still reach the input image.
    x = _image(16, 16).requires_grad_(True)
    net(x, ["relu3_1"])["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_avg_pooling_replaces_every_max_pool() -> None:
    avg = VGGFeatures("vgg19", ("relu5_1",), pooling="avg")
    assert not any(isinstance(m, nn.MaxPool2d) for m in avg.modules())
    assert sum(isinstance(m, nn.AvgPool2d) for m in avg.modules()) == 4
    maxed = VGGFeatures("vgg19", ("relu5_1",), pooling="max")
    assert sum(isinstance(m, nn.MaxPool2d) for m in maxed.modules()) == 4
    assert not any(isinstance(m, nn.AvgPool2d) for m in maxed.modules())
    # Same weights, different pooling: same state dict, different deep features.
    assert all(torch.equal(a, b) for a, b in zip(avg.state_dict().values(), maxed.state_dict().values()))
    x = _image(16, 16)
    assert not torch.allclose(avg(x, ["relu5_1"])["relu5_1"], maxed(x, ["relu5_1"])["relu5_1"])
    with pytest.raises(InvalidParameter, match="--pooling"):
        VGGFeatures("vgg19", ("relu1_1",), pooling="min")


def test_seeded_random_init() -> None:
    a = VGGFeatures("vgg19", ("relu3_1",), seed=5).state_dict()
    b = VGGFeatures("vgg19", ("relu3_1",), seed=5).state_dict()
    c = VGGFeatures("vgg19", ("relu3_1",), seed=6).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["features.0.weight"], c["features.0.weight"])
    # The global RNG does not matter.
    torch.manual_seed(123)
    d = VGGFeatures("vgg19", ("relu3_1",), seed=5).state_dict()
    assert all(torch.equal(a[k], d[k]) for k in a)
    # torchvision's init: zero biases, Kaiming-normal (fan_out) weights.
    assert torch.count_nonzero(a["features.0.bias"]) == 0
    std = a["features.5.weight"].std().item()
    assert std == pytest.approx((2 / (128 * 9)) ** 0.5, rel=0.1)


def test_layer_names() -> None:
    v19, v16 = layer_names("vgg19"), layer_names("vgg16")
    assert len(v19) == 37 and len(v16) == 31
    assert v19[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert v19[-3:] == ["conv5_4", "relu5_4", "pool5"]
    assert v16[-3:] == ["conv5_3", "relu5_3", "pool5"]
    assert "relu5_4" not in v16
    assert v19.index("relu4_2") == 22 and v19.index("relu5_1") == 29


def test_unknown_layer_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidParameter) as info:
        VGGFeatures("vgg16", ("relu5_4",))
    message = str(info.value)
    assert "relu5_4" in message and "relu5_3" in message and "conv1_1" in message and "pool5" in message
    with pytest.raises(InvalidParameter, match="did you mean 'relu4_2'"):
        VGGFeatures("vgg19", ("rlu4_2",))


def test_unknown_arch() -> None:
    with pytest.raises(InvalidParameter) as info:
        VGGFeatures("vgg11", ("relu1_1",))
    message = str(info.value)
    assert message.startswith("--network:") and "vgg19" in message and "vgg16" in message
    assert isinstance(info.value, StyleforgeError)


@pytest.mark.parametrize(
    "layers, factor",
    [
        (["relu5_1"], 16),
        (["relu1_1"], 1),
        (["pool1"], 2),
        (["relu4_2", "relu1_1"], 8),
        (["pool5"], 32),
        (["relu5_4"], 16),
    ],
)
def test_pooling_factor(layers: list[str], factor: int) -> None:
    assert pooling_factor("vgg19", layers) == factor


def test_smallest_input_for_the_pooling_factor_runs() -> None:
    layers = ("relu1_1", "relu5_1")
    side = pooling_factor("vgg19", layers)
    out = VGGFeatures("vgg19", layers)(_image(side, side), layers)
    assert out["relu5_1"].shape[-2:] == (1, 1)
