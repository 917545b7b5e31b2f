"""Tests of styleforge.attributes.model: the hypercolumn (dimensions; VGG-19 and VGG-16), the feature
norms (per-image L2, per-feature standardisation), the heads, and saving / loading a model as safetensors
+ JSON (frozen and fine-tuned, --weights PATH, a VGG-16 backbone, weights that resolve for another
network), with and without the shared trunk, and models saved before the trunk existed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from styleforge.attributes.kinds import CategoricalAttribute, NumericAttribute
from styleforge.attributes.model import (
    BACKBONE_ARCHS,
    AttributeNet,
    FeatureNorm,
    Hypercolumn,
    TrunkShape,
    feature_dims,
    load_model,
    read_model_json,
    save_model,
)
from styleforge.attributes.schema import ACAN_SCHEMA, Schema
from styleforge.config import BACKBONES
from styleforge.errors import InputFileError, InvalidParameter, WeightsError
from styleforge.nets.resnet import build_resnet

META = {
    "backbone": {"arch": "resnet18", "weights": "random", "seed": 3},
    "preprocessing": {"size": 32},
}


def test_feature_dims_match_the_design() -> None:
    assert feature_dims("resnet50") == 15104  # the original's 15,104-dim hypercolumn
    assert feature_dims("resnet18") == 1920
    assert feature_dims("vgg19") == 64 + 128 + 256 + 512 + 512
    assert feature_dims("vgg16") == 1472  # the same relu*_1 layers and channels as VGG-19
    assert "vgg16" in BACKBONE_ARCHS and "vgg16" in BACKBONES
    with pytest.raises(InvalidParameter, match="--backbone"):
        feature_dims("resnet34")


@pytest.mark.parametrize("arch", ["resnet18", "vgg19", "vgg16"])
def test_l2_norm_is_unit_per_image_and_batch_independent(arch: str) -> None:
    net = Hypercolumn(arch, seed=0)
    norm = FeatureNorm(net.dims, "l2")
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = net(images)
        batch, alone = norm(raw), norm(net(images[1:2]))
    assert (
        raw.shape == (3, feature_dims(arch)) and float(raw.min()) >= 0
    )  # pooled ReLU outputs, not normalised
    assert torch.allclose(batch.norm(dim=1), torch.ones(3), atol=1e-5)
    # Normalised per image: an image's features do not depend on the rest of the batch (the
    # original normalised over the batch axis).
    assert torch.allclose(batch[1:2], alone, atol=1e-5)
    assert not torch.allclose(batch[0], batch[1])
    assert not norm.state_dict()  # nothing to store


def test_standard_norm_uses_the_training_statistics_and_keeps_the_magnitude() -> None:
    g = torch.Generator().manual_seed(0)
    train = (
        torch.rand(50, 6, generator=g) * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 0.0]) + 1.0
    )  # the last never varies
    norm = FeatureNorm(6, "standard")
    norm.fit(train)
    out = norm(train) * 6**0.5
    assert torch.allclose(out[:, :5].mean(0), torch.zeros(5), atol=1e-5)
    assert torch.allclose(out[:, :5].std(0, unbiased=False), torch.ones(5), atol=1e-4)
    assert float(norm.std[5]) > 0 and torch.isfinite(norm(train + 1)).all()  # a floored spread, no blow-up
    # What l2 throws away: an image whose activations are all twice as strong (a first layer's answer
    # to twice the contrast) looks the same to l2, not to standard.
    x = train[:2]
    l2 = FeatureNorm(6, "l2")
    assert torch.allclose(l2(x), l2(2 * x), atol=1e-6) and not torch.allclose(norm(x), norm(2 * x), atol=1e-2)
    one = FeatureNorm(6, "standard")
    one.fit(train[:1])  # a single image has no spread: unit scale, not a division by ~0
    assert torch.equal(one.std, torch.ones(6)) and torch.equal(one.mean, train[0])
    with pytest.raises(InvalidParameter, match="--feature-norm.*l2, standard"):
        FeatureNorm(6, "batch")


def test_a_vgg16_hypercolumn_is_built_on_a_vgg16_trunk() -> None:
    net = Hypercolumn("vgg16", seed=0)
    assert net.arch == "vgg16" and net.net.arch == "vgg16" and net.dims == 1472
    # Cut after relu5_1: VGG-16's conv5_1 is features.24 (VGG-19's is features.28).
    keys = list(net.net.state_dict())
    assert keys[-1] == "features.24.bias" and len(keys) == 2 * 11  # conv1_1 … conv5_1
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        features = net(images)
        vgg19 = Hypercolumn("vgg19", seed=0)(images)
    assert features.shape == (2, 1472)
    assert not torch.allclose(features, vgg19, atol=1e-3)  # another network, not a renamed VGG-19


def test_hypercolumn_keeps_batch_norm_frozen_and_respects_trainable() -> None:
    frozen = Hypercolumn("resnet18", seed=0)
    assert not any(p.requires_grad for p in frozen.parameters())
    tuned = Hypercolumn("resnet18", seed=0, trainable=True)
    tuned.train()
    assert tuned.training and not tuned.net.training
    assert all(not m.training for m in tuned.net.modules())
    assert all(p.requires_grad for p in tuned.parameters())
    before = tuned.net.bn1.running_mean.clone()
    tuned(torch.rand(2, 3, 32, 32))
    assert torch.equal(tuned.net.bn1.running_mean, before)


def test_heads_outputs_and_predict_ranges() -> None:
    schema = Schema(
        (NumericAttribute("mood", 0.0, 4.0), CategoricalAttribute("era", ("old", "new", "future")))
    )
    net = AttributeNet(schema, Hypercolumn("resnet18", seed=0), seed=0)
    with torch.no_grad():
        outputs = net(torch.rand(5, 3, 32, 32))
    assert outputs["mood"].shape == (5,) and float(outputs["mood"].abs().max()) <= 1.0
    assert outputs["era"].shape == (5, 3)
    predicted = net.predict(torch.rand(5, 3, 32, 32))
    assert ((predicted["mood"] >= 0) & (predicted["mood"] <= 4)).all()
    assert torch.allclose(predicted["era"].sum(-1), torch.ones(5), atol=1e-6)
    assert AttributeNet(schema, dims=10, seed=1).heads["era"].weight.shape == (3, 10)
    # Heads are seeded: the same seed gives the same weights, and the global RNG is left alone.
    state = torch.get_rng_state()
    a, b = AttributeNet(schema, dims=10, seed=1), AttributeNet(schema, dims=10, seed=1)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(a.heads["mood"].weight, b.heads["mood"].weight)


def test_save_and_load_a_frozen_model(tmp_path: Path) -> None:
    net = AttributeNet(ACAN_SCHEMA, Hypercolumn("resnet18", seed=3), seed=3)
    with torch.no_grad():
        for p in net.heads.parameters():
            p.add_(0.01)  # "trained" heads, different from a fresh init
    model_path, json_path = save_model(tmp_path, net, META, with_backbone=False)
    assert model_path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    meta = json.loads(json_path.read_text())
    assert meta["schema"] == ACAN_SCHEMA.to_dict()
    assert (
        meta["label_scaling"]["contrast"]["min"] == 1.0 and meta["label_scaling"]["contrast"]["max"] == 10.0
    )
    assert meta["tensors"] == {"norm": False, "trunk": False, "heads": True, "backbone": False}
    assert meta["feature_norm"] == "l2"
    assert meta["trunk"] == {"layers": 0, "width": 256, "layer": "linear+layernorm+relu"}
    from safetensors.torch import load_file

    assert all(k.startswith("heads.") for k in load_file(str(model_path)))
    images = torch.rand(2, 3, 32, 32)
    loaded = load_model(tmp_path)
    expected = net.predict(images)
    got = loaded.net.predict(images)
    assert loaded.size == 32 and loaded.weights is not None and loaded.weights.kind == "random"
    for name in ACAN_SCHEMA.names:
        assert torch.allclose(got[name], expected[name], atol=1e-5), name


def test_the_trunk_is_shared_and_seeded() -> None:
    schema = Schema(
        (NumericAttribute("mood", 0.0, 4.0), CategoricalAttribute("era", ("old", "new", "future")))
    )
    net = AttributeNet(schema, dims=10, seed=1, trunk=TrunkShape(2, 6))
    linear = [m for m in net.trunk if isinstance(m, torch.nn.Linear)]
    assert [tuple(m.weight.shape) for m in linear] == [(6, 10), (6, 6)] and net.head_dims == 6
    assert net.heads["era"].weight.shape == (3, 6) and net.heads["mood"].weight.shape == (1, 6)
    outputs = net.heads_forward(torch.randn(4, 10))
    assert outputs["mood"].shape == (4,) and outputs["era"].shape == (4, 3)
    # Every head's loss reaches the trunk: it is what the heads share.
    outputs["mood"].sum().backward()
    assert float(linear[0].weight.grad.abs().sum()) > 0 and net.heads["era"].weight.grad is None
    # No trunk: the heads are the ones drawn before the trunk existed (same seed, same weights), and
    # the trunk has no tensors; a width without layers changes nothing.
    plain, zero = (
        AttributeNet(schema, dims=10, seed=1),
        AttributeNet(schema, dims=10, seed=1, trunk=TrunkShape(0, 99)),
    )
    assert len(plain.trunk) == 0 and not plain.trunk.state_dict() and plain.head_dims == 10
    for name in schema.names:
        assert torch.equal(plain.heads[name].weight, zero.heads[name].weight)
    state = torch.get_rng_state()
    again = AttributeNet(schema, dims=10, seed=1, trunk=TrunkShape(2, 6))
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(again.trunk[0].weight, net.trunk[0].weight) and torch.equal(
        again.heads["era"].weight, net.heads["era"].weight
    )


def test_save_and_load_a_model_with_a_trunk(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from styleforge.attributes.score import ModelFileError, open_model

    net = AttributeNet(ACAN_SCHEMA, Hypercolumn("resnet18", seed=3), seed=3, trunk=TrunkShape(2, 16))
    with torch.no_grad():
        for p in [*net.trunk.parameters(), *net.heads.parameters()]:
            p.add_(0.01)  # "trained", different from a fresh init
    model_path, json_path = save_model(tmp_path, net, META, with_backbone=False)
    meta = json.loads(json_path.read_text())
    assert (
        meta["trunk"] == {"layers": 2, "width": 16, "layer": "linear+layernorm+relu"}
        and meta["tensors"]["trunk"] is True
    )
    shapes = {k: tuple(v.shape) for k, v in load_file(str(model_path)).items()}
    assert (
        shapes["trunk.0.weight"] == (16, 1920)
        and shapes["trunk.3.weight"] == (16, 16)
        and shapes["trunk.1.weight"] == (16,)
    )
    assert shapes["heads.contrast.weight"] == (1, 16) and not any(k.startswith("backbone.") for k in shapes)
    images = torch.rand(2, 3, 32, 32)
    expected = net.predict(images)
    for loaded in (load_model(tmp_path), open_model(tmp_path)):  # the plain and the checked loader
        assert loaded.net.trunk_shape == TrunkShape(2, 16)
        got = loaded.net.predict(images)
        for name in ACAN_SCHEMA.names:
            assert torch.allclose(got[name], expected[name], atol=1e-6), name
    # model.json and the tensors must agree on the trunk.
    for trunk, needle in (
        ({"layers": 2, "width": 8}, "trunk.0.weight"),
        ({"layers": 1, "width": 16}, r"has trunk.3.bias, but .*trunk has 1 layer"),
        ({"layers": 3, "width": 16}, "needs trunk.6.weight"),
        ({"layers": -1}, "expected"),
    ):
        json_path.write_text(json.dumps({**meta, "trunk": trunk}))
        with pytest.raises(ModelFileError, match=needle):
            open_model(tmp_path)


def test_a_model_saved_before_the_trunk_existed_loads(tmp_path: Path) -> None:
    from styleforge.attributes.score import open_model

    net = AttributeNet(ACAN_SCHEMA, Hypercolumn("resnet18", seed=3), seed=3)
    _, json_path = save_model(tmp_path, net, META, with_backbone=False)
    meta = json.loads(json_path.read_text())
    del meta["trunk"], meta["tensors"]["trunk"]  # model.json as styleforge wrote it then
    meta["training"] = {"config": {"backbone": "resnet18"}}  # and a configuration without trunk keys
    json_path.write_text(json.dumps(meta))
    images = torch.rand(2, 3, 32, 32)
    for loaded in (load_model(tmp_path), open_model(tmp_path)):
        assert loaded.net.trunk_shape.layers == 0 and len(loaded.net.trunk) == 0
        assert torch.allclose(
            loaded.net.predict(images)["contrast"], net.predict(images)["contrast"], atol=1e-6
        )
    from styleforge.config import TrainConfig

    assert TrainConfig.from_dict(meta["training"]["config"]).trunk == 0  # a resumed old run keeps no trunk
    assert TrainConfig().trunk >= 1


def test_save_and_load_a_finetuned_model_stores_the_backbone(tmp_path: Path) -> None:
    net = AttributeNet(ACAN_SCHEMA, Hypercolumn("resnet18", seed=3, trainable=True), seed=3)
    with torch.no_grad():
        net.backbone.net.conv1.weight.mul_(1.5)  # a backbone the seed can no longer rebuild
    save_model(tmp_path, net, META, with_backbone=True)
    loaded = load_model(tmp_path)
    assert loaded.weights is None  # nothing resolved: the backbone came from the file
    images = torch.rand(2, 3, 32, 32)
    assert torch.allclose(loaded.net.predict(images)["contrast"], net.predict(images)["contrast"], atol=1e-5)


def test_save_and_load_a_vgg16_model(tmp_path: Path) -> None:
    net = AttributeNet(ACAN_SCHEMA, Hypercolumn("vgg16", seed=4), seed=4)
    with torch.no_grad():
        for p in net.heads.parameters():
            p.add_(0.01)
    meta = {
        "backbone": {"arch": "vgg16", "weights": "random", "seed": 4, "feature_dims": 1472},
        "preprocessing": {"size": 64},
    }
    save_model(tmp_path, net, meta, with_backbone=False)
    loaded = load_model(tmp_path)
    assert loaded.net.backbone is not None and loaded.net.backbone.arch == "vgg16"
    assert loaded.weights is not None and loaded.weights.kind == "random" and loaded.weights.arch == "vgg16"
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    expected, got = net.predict(images), loaded.net.predict(images)
    for name in ACAN_SCHEMA.names:
        assert torch.allclose(got[name], expected[name], atol=1e-6), name
    with torch.no_grad():
        assert torch.allclose(loaded.net.backbone(images), net.backbone(images), atol=1e-6)


def test_weights_that_resolve_for_another_network_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model.json whose weights now resolve to a VGG-16 (``auto`` offline: HED) for its VGG-19 backbone
    is refused with a message naming both, not loaded into the wrong network."""
    from styleforge.nets import weights as weights_module

    def offline(arch: str, on_download: object = None) -> None:
        raise WeightsError("--weights imagenet: offline (test)")

    monkeypatch.setattr(weights_module, "_load_imagenet", offline)
    net = AttributeNet(ACAN_SCHEMA, Hypercolumn("vgg19", seed=0), seed=0)
    save_model(
        tmp_path,
        net,
        {"backbone": {"arch": "vgg19", "weights": "auto", "seed": 0}, "preprocessing": {"size": 64}},
        with_backbone=False,
    )
    with pytest.raises(WeightsError) as info:
        load_model(tmp_path)
    message = str(info.value)
    assert "vgg16" in message and "vgg19" in message and "'auto'" in message


def test_weights_from_a_local_state_dict_file(tmp_path: Path) -> None:
    from styleforge.nets.weights import resolve_weights

    reference = build_resnet("resnet18", generator=torch.Generator().manual_seed(42))
    path = tmp_path / "resnet18-local.pth"
    torch.save(reference.state_dict(), path)  # torchvision's keys, fc included
    choice = resolve_weights(str(path), "resnet18")
    from_file = Hypercolumn("resnet18", choice.state_dict, seed=0, source=choice.source)
    same = Hypercolumn("resnet18", seed=42)
    other = Hypercolumn("resnet18", seed=0)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(from_file(images), same(images), atol=1e-6)
        assert not torch.allclose(from_file(images), other(images), atol=1e-3)
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(WeightsError, match="does not fit this network"):
        Hypercolumn("resnet18", resolve_weights(str(wrong), "resnet18").state_dict, source=str(wrong))


def test_load_model_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="has no model.json"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(InputFileError, match="not readable JSON"):
        read_model_json(tmp_path)
    (tmp_path / "model.json").write_text('{"format": "something else"}')
    with pytest.raises(InputFileError, match="not a styleforge attribute model"):
        read_model_json(tmp_path)


def test_save_and_load_a_model_with_the_standard_norm(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from styleforge.attributes.score import ModelFileError, open_model

    net = AttributeNet(
        ACAN_SCHEMA, Hypercolumn("resnet18", seed=3), seed=3, trunk=TrunkShape(1, 8), norm="standard"
    )
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        net.norm.fit(net.backbone(images))
    model_path, json_path = save_model(tmp_path, net, META, with_backbone=False)
    meta = json.loads(json_path.read_text())
    assert meta["feature_norm"] == "standard" and meta["tensors"]["norm"] is True
    tensors = load_file(str(model_path))
    assert torch.equal(tensors["norm.mean"], net.norm.mean) and tensors["norm.std"].shape == (1920,)
    expected = net.predict(images)
    for loaded in (load_model(tmp_path), open_model(tmp_path)):
        assert loaded.net.norm.kind == "standard" and torch.equal(loaded.net.norm.std, net.norm.std)
        got = loaded.net.predict(images)
        for name in ACAN_SCHEMA.names:
            assert torch.allclose(got[name], expected[name], atol=1e-6), name
    # model.json and the tensors must agree on the norm, and name a known one.
    for norm, needle in (
        ("l2", "has norm.mean, but model.json's norm has no tensors"),
        ("batch", "feature_norm 'batch'"),
    ):
        json_path.write_text(json.dumps({**meta, "feature_norm": norm}))
        with pytest.raises(ModelFileError, match=needle):
            open_model(tmp_path)
    from safetensors.torch import save_file

    json_path.write_text(json.dumps(meta))
    save_file({k: v for k, v in tensors.items() if k != "norm.std"}, str(model_path))
    with pytest.raises(ModelFileError, match="needs norm.std"):
        open_model(tmp_path)
    with pytest.raises(InputFileError, match="does not hold the norm"):  # the unchecked loader: one line too
        load_model(tmp_path)


def test_a_model_saved_before_the_feature_norm_existed_loads_as_l2(tmp_path: Path) -> None:
    from styleforge.attributes.score import open_model
    from styleforge.config import TrainConfig

    net = AttributeNet(ACAN_SCHEMA, Hypercolumn("resnet18", seed=3), seed=3, trunk=TrunkShape(1, 8))
    _, json_path = save_model(tmp_path, net, META, with_backbone=False)
    meta = json.loads(json_path.read_text())
    del meta["feature_norm"], meta["tensors"]["norm"]
    json_path.write_text(json.dumps(meta))
    images = torch.rand(2, 3, 32, 32)
    for loaded in (load_model(tmp_path), open_model(tmp_path)):
        assert loaded.net.norm.kind == "l2"
        assert torch.allclose(
            loaded.net.predict(images)["contrast"], net.predict(images)["contrast"], atol=1e-6
        )
    assert TrainConfig.from_dict({"backbone": "resnet18"}).feature_norm == "l2"  # a resumed old run keeps l2
    assert TrainConfig().feature_norm == "l2"
