"""Tests of styleforge.attributes.train: the run directory, exact resumption, partial labels, divergence,
the backbones' weights, and a short run that learns something measurable."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from _attr_helpers import FAST, HED

from styleforge.attributes.schema import ACAN_SCHEMA
from styleforge.attributes.train import train_attrs
from styleforge.engine import EpochEnded, Notice
from styleforge.errors import InputFileError, InvalidParameter


def _strip(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


# --- training runs ------------------------------------------------------------------------------------


def test_short_run_learns_primary_colour(data24: Path, tmp_path: Path) -> None:
    """24 synthetic images at 32 px, frozen random ResNet-18: the primary colour is learned well above
    chance (1/13) on the training set."""
    result = train_attrs(data24, tmp_path / "run", **{**FAST, "epochs": 30, "val_split": 0.0, "patience": 0})
    accuracy = result.metrics["train"]["acc.pri_color"]
    assert accuracy >= 0.6, accuracy
    first, last = result.history[0], result.history[-1]
    assert last["head_loss.pri_color"] < 0.8 * first["head_loss.pri_color"]
    assert last["loss"] < first["loss"]
    assert result.best_epoch == 30 and result.stop_reason == "completed"


def _trained(data: Path, run: Path, trunk: int, weights: dict[str, float]) -> dict[str, torch.Tensor]:
    """The trunk's and heads' parameters of a 3-epoch run (every epoch better: the last is the best)."""
    from styleforge.attributes.model import load_model

    result = train_attrs(
        data,
        run,
        trunk=trunk,
        trunk_width=32,
        loss_weights=weights,
        **{**FAST, "val_split": 0.0, "patience": 0, "feature_cache": False},
    )
    assert result.best_epoch == 3
    net = load_model(run).net
    return {k: v.detach() for k, v in net.named_parameters() if not k.startswith("backbone.")}


def test_loss_weights_change_a_trunk_model_and_not_independent_heads_under_adam(
    data24: Path, tmp_path: Path
) -> None:
    """Doubling contrast's weight: with independent heads (``trunk=0``) Adam's step is invariant to
    the constant scale of each head's gradient, so every other head is bit-identical and contrast's
    own differs only through Adam's epsilon; with a shared trunk the trunk and every head differ."""
    from styleforge.attributes.model import AttributeNet

    plain, doubled = (
        _trained(data24, tmp_path / "a", 0, {}),
        _trained(data24, tmp_path / "b", 0, {"contrast": 2.0}),
    )
    for key in plain:
        if not key.startswith("heads.contrast."):
            assert torch.equal(plain[key], doubled[key]), key
    init = AttributeNet(ACAN_SCHEMA, dims=1920, seed=0).heads["contrast"].weight.detach()
    moved = float((plain["heads.contrast.weight"] - init).abs().max())
    assert (
        float((plain["heads.contrast.weight"] - doubled["heads.contrast.weight"]).abs().max()) < 0.05 * moved
    )
    plain, doubled = (
        _trained(data24, tmp_path / "c", 1, {}),
        _trained(data24, tmp_path / "d", 1, {"contrast": 2.0}),
    )
    assert set(plain) >= {"trunk.0.weight", "trunk.0.bias"}
    assert float((plain["trunk.0.weight"] - doubled["trunk.0.weight"]).abs().max()) > 0.01
    for name in ACAN_SCHEMA.names:  # the other attributes are traded off too, through the trunk
        assert float((plain[f"heads.{name}.weight"] - doubled[f"heads.{name}.weight"]).abs().max()) > 1e-3, (
            name
        )


def test_run_directory_contents(data24: Path, tmp_path: Path) -> None:
    events: list[object] = []
    run = tmp_path / "run"
    result = train_attrs(data24, run, callbacks=[events.append], test_split=0.2, **FAST)
    names = {p.name for p in run.iterdir()}
    assert {
        "model.safetensors",
        "model.json",
        "history.csv",
        "curves.png",
        "metrics.json",
        "resume.pt",
        "features.safetensors",
    } <= names
    meta = json.loads((run / "model.json").read_text())
    assert meta["backbone"]["arch"] == "resnet18" and meta["backbone"]["weights"] == "random"
    assert meta["preprocessing"]["size"] == 32 and meta["training"]["config"]["epochs"] == 3
    assert meta["training"]["optimizer"] == "adam" and meta["training"]["lr"] == 0.01
    assert meta["trunk"]["layers"] == meta["training"]["config"]["trunk"] >= 1  # the default: a shared trunk
    assert meta["best"]["epoch"] == result.best_epoch and meta["data"]["images"] == {
        "train": 17,
        "val": 2,
        "test": 5,
    }
    with open(run / "history.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 3 and [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for name in ACAN_SCHEMA.names:
        for prefix in ("loss.", "val_loss.", "head_loss.", "val_head_loss."):
            assert prefix + name in rows[0], prefix + name
    for row in rows:  # the CSV total is the sum of its weighted parts
        assert float(row["loss"]) == pytest.approx(
            sum(float(row[f"loss.{n}"]) for n in ACAN_SCHEMA.names), rel=1e-12
        )
    assert "mae.contrast" in rows[0] and "val_acc.pri_color" in rows[0]
    with Image_open(run / "curves.png") as image:
        assert image.size[0] > 600 and image.size[1] > 300
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] == result.best_epoch and set(metrics) >= {"train", "val", "test", "baseline"}
    assert "acc.pri_color" in metrics["test"] and "mae.contrast" in metrics["baseline"]["test"]
    state = torch.load(run / "resume.pt", weights_only=True)  # no pickled code anywhere
    assert state["epoch"] == 3
    ended = [e for e in events if isinstance(e, EpochEnded)]
    assert [e.epoch for e in ended] == [1, 2, 3]
    assert all(e.val is not None and "val_mae.contrast" in e.metrics for e in ended)
    assert result.files and all(p.exists() for p in result.files)


def Image_open(path: Path):
    from PIL import Image

    return Image.open(path)


@pytest.mark.parametrize(
    "extra",
    [{"balance": "uncertainty", "lr_schedule": "cosine"}, {"balance": "initial", "lr_schedule": "plateau"}],
    ids=["uncertainty-cosine", "initial-plateau"],
)
def test_interrupt_then_resume_gives_the_uninterrupted_history(
    data24: Path, tmp_path: Path, extra: dict
) -> None:
    options = {**FAST, "epochs": 5, "patience": 0, "plateau_patience": 1, **extra}
    whole = train_attrs(data24, tmp_path / "whole", **options)

    def interrupt(event: object) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 2:
            raise KeyboardInterrupt

    first = train_attrs(data24, tmp_path / "part", callbacks=[interrupt], **options)
    assert first.stop_reason == "interrupted" and len(first.history) == 2
    resumed = train_attrs(data24, tmp_path / "part", resume=True)
    assert _strip(resumed.history) == _strip(whole.history)
    assert resumed.best_epoch == whole.best_epoch
    if extra["balance"] == "uncertainty":
        assert all(f"logvar.{n}" in resumed.history[-1] for n in ACAN_SCHEMA.names)
        assert resumed.metrics["log_variance"] == whole.metrics["log_variance"]
    else:
        assert resumed.metrics["balance_initial"] == whole.metrics["balance_initial"]
        row = resumed.history[0]  # the term is the head's loss over its starting value
        for name in ACAN_SCHEMA.names:
            ratio = row[f"head_loss.{name}"] / resumed.metrics["balance_initial"][name]
            assert row[f"loss.{name}.raw"] == pytest.approx(ratio, rel=1e-5)


def test_early_stop_then_resume_with_more_patience_and_epochs(data24: Path, tmp_path: Path) -> None:
    options = {**FAST, "epochs": 6, "patience": 1, "min_delta": 0.5}
    whole = train_attrs(data24, tmp_path / "whole", **{**options, "patience": 0})
    stopped = train_attrs(data24, tmp_path / "run", **options)
    assert stopped.stop_reason == "stopped" and len(stopped.history) < 6  # needs a 50 % improvement
    assert "improved by less than 0.5" in stopped.stop_detail
    resumed = train_attrs(data24, tmp_path / "run", resume=True, patience=100)
    assert resumed.stop_reason == "completed"
    assert _strip(resumed.history) == _strip(whole.history)
    with pytest.raises(
        InvalidParameter, match="--lr: 0.5 is not valid; expected 0.01, as in the run being resumed"
    ):
        train_attrs(data24, tmp_path / "run", resume=True, lr=0.5)


def test_resume_without_a_better_epoch_keeps_the_best_epochs_record(data24: Path, tmp_path: Path) -> None:
    """No epoch after --resume improves on the best (a learning rate too small to move the weights):
    model.json and metrics.json still describe the best epoch, as the first run wrote them."""
    run = tmp_path / "run"
    first = train_attrs(data24, run, **{**FAST, "lr": 1e-12, "epochs": 2, "patience": 0, "test_split": 0.2})
    assert first.best_epoch == 1  # the losses do not move: epoch 1 stays the best
    best = json.loads((run / "model.json").read_text())["best"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert (
        best["epoch"] == 1 and best["val_loss"] == first.history[0]["val_loss"] and "val_mae.contrast" in best
    )

    resumed = train_attrs(data24, run, resume=True, epochs=3)
    assert resumed.best_epoch == 1 and len(resumed.history) == 3
    again = json.loads((run / "model.json").read_text())["best"]
    assert again == {**best, "epochs_run": 3}  # the best epoch's row, its test scores, the new run's end
    again_metrics = json.loads((run / "metrics.json").read_text())
    assert again_metrics == {**metrics, "epochs_run": 3, "stop_detail": "ran 3 epochs"}


def test_partial_labels_train_and_an_unlabelled_head_is_reported(data24: Path, tmp_path: Path) -> None:
    path = data24 / "labels.csv"
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    for i, row in enumerate(rows[1:]):
        row[rows[0].index("harmony")] = ""  # nobody labelled harmony
        if i % 2:
            row[rows[0].index("contrast")] = ""  # half labelled contrast
    with open(path, "w", newline="") as stream:
        csv.writer(stream).writerows(rows)
    notices: list[str] = []
    result = train_attrs(
        data24,
        tmp_path / "run",
        callbacks=[lambda e: notices.append(e.message) if isinstance(e, Notice) else None],
        **FAST,
    )
    assert any("harmony" in n and "will not learn" in n for n in notices)
    row = result.history[-1]
    assert row["loss.harmony"] == 0.0 and math.isnan(row["acc.harmony"])
    assert math.isfinite(row["loss"]) and row["loss.contrast"] > 0 and math.isfinite(row["mae.contrast"])


def test_finetune_one_epoch_stores_the_backbone(data24: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from styleforge.attributes.model import load_model

    result = train_attrs(data24, tmp_path / "run", finetune=True, **{**FAST, "epochs": 1})
    assert result.best_epoch == 1 and not (tmp_path / "run" / "features.safetensors").exists()
    tensors = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert any(k.startswith("backbone.") for k in tensors)
    loaded = load_model(tmp_path / "run")
    assert (
        loaded.weights is None
        and json.loads((tmp_path / "run" / "model.json").read_text())["tensors"]["backbone"]
    )


def test_finetune_takes_the_standard_norm_before_training_and_resumes_with_it(
    data24: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    options = {**FAST, "epochs": 3, "patience": 0, "finetune": True, "feature_norm": "standard"}
    whole = train_attrs(data24, tmp_path / "whole", **options)
    stats = load_file(str(tmp_path / "whole" / "model.safetensors"))
    # The statistics of the untouched backbone's features, not the defaults (0 and 1).
    assert float(stats["norm.mean"].abs().max()) > 0 and not torch.equal(
        stats["norm.std"], torch.ones_like(stats["norm.std"])
    )

    def interrupt(event: object) -> None:
        if isinstance(event, EpochEnded) and event.epoch == 1:
            raise KeyboardInterrupt

    train_attrs(data24, tmp_path / "part", callbacks=[interrupt], **options)
    resumed = train_attrs(
        data24, tmp_path / "part", resume=True
    )  # the backbone has moved: the statistics come from the state
    assert _strip(resumed.history) == _strip(whole.history)
    again = load_file(str(tmp_path / "part" / "model.safetensors"))
    assert torch.equal(again["norm.mean"], stats["norm.mean"]) and torch.equal(
        again["norm.std"], stats["norm.std"]
    )


def test_default_learning_rate_and_an_existing_run_is_not_overwritten(data24: Path, tmp_path: Path) -> None:
    options = {k: v for k, v in FAST.items() if k != "lr"}
    train_attrs(data24, tmp_path / "run", **{**options, "epochs": 1})
    training = json.loads((tmp_path / "run" / "model.json").read_text())["training"]
    assert (training["optimizer"], training["lr"]) == ("adam", 0.01)  # HEAD_LR, not PyTorch's 1e-3
    with pytest.raises(InvalidParameter, match="-o: .* a new or empty folder .*--resume"):
        train_attrs(data24, tmp_path / "run", **{**FAST, "epochs": 1})
    labels = (
        data24 / "labels.csv"
    )  # the labels change under the run (an image listed twice would be an error)
    rows = labels.read_text().splitlines()
    labels.write_text("\n".join([rows[0], "images/0000.png,1,1,1,1,1,1,red,triadic", *rows[2:]]) + "\n")
    with pytest.raises(InputFileError, match="--resume: .*labels.csv' changed since the run started"):
        train_attrs(None, tmp_path / "run", resume=True, epochs=2)
    with pytest.raises(InputFileError, match="has no resume.pt"):
        train_attrs(data24, tmp_path / "elsewhere", resume=True)


def test_divergence_keeps_the_best_epoch(data24: Path, tmp_path: Path) -> None:
    result = train_attrs(
        data24,
        tmp_path / "run",
        **{**FAST, "epochs": 8, "lr": 1e3, "optimizer": "sgd", "divergence_factor": 1.05, "patience": 0},
    )
    assert result.stop_reason == "diverged" and result.best_epoch >= 1
    assert (
        result.metrics["best_epoch"] == result.best_epoch
        and "kept the weights of epoch" in result.stop_detail
    )


# --- VGG-16 backbones: HED's pretrained features, and ``auto``'s switch from VGG-19 -------------------


def _offline_imagenet(monkeypatch: pytest.MonkeyPatch) -> None:
    """ImageNet unreachable (as on every machine here), the real HED cache kept."""
    from styleforge.errors import WeightsError
    from styleforge.nets import weights as weights_module

    def offline(arch: str, on_download: object = None) -> None:
        error = WeightsError(f"--weights imagenet: cannot get {arch}'s file (test: offline)")
        error.why = "no connection (test)"  # type: ignore[attr-defined]
        raise error

    monkeypatch.setattr(weights_module, "_load_imagenet", offline)


def test_a_hed_backbone_is_recorded_and_loads_back_with_the_same_outputs(hed_run: Path, synth8: Path) -> None:
    from safetensors.torch import load_file

    from styleforge.attributes.labels import read_labels
    from styleforge.attributes.model import Hypercolumn, load_model
    from styleforge.attributes.preprocess import preprocess_image
    from styleforge.images import load_image
    from styleforge.nets.hed import HED_FILE

    meta = json.loads((hed_run / "model.json").read_text())
    assert meta["backbone"]["arch"] == "vgg16" and meta["backbone"]["weights"] == "hed"
    assert Path(meta["backbone"]["source"]).name == HED_FILE and meta["backbone"]["feature_dims"] == 1472
    assert meta["training"]["config"]["backbone"] == "vgg16" and meta["tensors"]["backbone"] is False
    loaded = load_model(hed_run)
    assert loaded.weights is not None and loaded.weights.kind == "hed" and loaded.weights.arch == "vgg16"
    assert loaded.net.backbone is not None and loaded.net.backbone.arch == "vgg16" and loaded.size == 64
    # The loaded network gives the features training computed (and cached) for the same images, and
    # its heads' outputs on them.
    paths = [item.path for item in read_labels(synth8, ACAN_SCHEMA).items]
    images = torch.stack([preprocess_image(load_image(p).rgb, 64) for p in paths]).float() / 255
    trained = load_file(str(hed_run / "features.safetensors"))["features"]
    with torch.no_grad():
        features = loaded.net.backbone(images)
        assert torch.allclose(features, trained, atol=1e-5)
        expected = loaded.net.heads_forward(trained)
    got = loaded.net(images)
    for name in ACAN_SCHEMA.names:
        assert torch.allclose(got[name], expected[name], atol=1e-5), name
    # Pretrained features, not the seeded init of the same network.
    with torch.no_grad():
        assert not torch.allclose(features, Hypercolumn("vgg16", seed=0)(images), atol=1e-2)


def test_hed_needs_a_vgg16_backbone(synth8: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as info:
        train_attrs(synth8, tmp_path / "run", **{**FAST, "backbone": "vgg19", "weights": "hed"})
    assert "hed is a VGG-16" in str(info.value) and "--backbone vgg16" in str(info.value)
    assert not (tmp_path / "run" / "model.json").exists()


def test_auto_switches_a_vgg19_to_hed_vgg16_says_so_and_resumes_as_such(
    synth8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from styleforge.attributes.model import load_model
    from styleforge.nets import weights as weights_module

    _offline_imagenet(monkeypatch)
    notices: list[str] = []

    def events(event: object) -> None:
        if isinstance(event, Notice):
            notices.append(event.message)
        if isinstance(event, EpochEnded) and event.epoch == 1:
            raise KeyboardInterrupt

    run = tmp_path / "run"
    first = train_attrs(synth8, run, callbacks=[events], **{**HED, "backbone": "vgg19", "weights": "auto"})
    assert first.stop_reason == "interrupted" and first.best_epoch == 1
    switch = [n for n in notices if "HED" in n]
    assert len(switch) == 1 and "the network is vgg16, not vgg19" in switch[0], notices
    meta = json.loads((run / "model.json").read_text())
    assert meta["backbone"]["arch"] == "vgg16" and meta["backbone"]["weights"] == "hed"
    assert meta["backbone"]["feature_dims"] == 1472 and "vgg16" in meta["backbone"]["notice"]
    assert meta["training"]["config"]["backbone"] == "vgg19"  # what was asked stays recorded too
    assert load_model(run).net.backbone.arch == "vgg16"

    # A resumed run resolves what it used (hed, for vgg16), not ``auto`` for vgg19 again.
    def no_imagenet(arch: str, on_download: object = None) -> None:
        raise AssertionError(f"a resumed hed run asked for ImageNet {arch} weights")

    monkeypatch.setattr(weights_module, "_load_imagenet", no_imagenet)
    resumed = train_attrs(synth8, run, resume=True)
    assert resumed.stop_reason == "completed" and len(resumed.history) == 2
    meta = json.loads((run / "model.json").read_text())
    assert meta["backbone"]["arch"] == "vgg16" and meta["backbone"]["weights"] == "hed"
    assert "vgg16" in meta["backbone"]["notice"]


def test_weights_for_another_vgg_switch_the_backbone_but_never_a_resnet(
    synth8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A HED file (``--weights PATH.h5``) holds VGG-16 weights: a vgg19 backbone becomes vgg16 with a
    notice; a ResNet backbone is refused before any image is read."""
    from styleforge.attributes import train as train_module
    from styleforge.nets.weights import WeightsChoice

    monkeypatch.setattr(
        train_module,
        "resolve_weights",
        lambda spec, arch, **_: WeightsChoice("file", None, str(spec), arch="vgg16"),
    )
    notices: list[str] = []
    train_attrs(
        synth8,
        tmp_path / "vgg",
        callbacks=[lambda e: notices.append(e.message) if isinstance(e, Notice) else None],
        **{**HED, "backbone": "vgg19", "weights": "hed.weights.h5", "epochs": 1},
    )
    assert any("so the backbone is vgg16, not vgg19" in n for n in notices), notices
    assert json.loads((tmp_path / "vgg" / "model.json").read_text())["backbone"]["arch"] == "vgg16"
    with pytest.raises(InvalidParameter) as info:
        train_attrs(synth8, tmp_path / "resnet", **{**FAST, "weights": "hed.weights.h5"})
    assert "--backbone vgg16" in str(info.value) and "resnet18" in str(info.value)
    assert not (tmp_path / "resnet").exists()


def test_backbone_arch_follows_the_weights_network_and_says_why() -> None:
    from dataclasses import replace

    from styleforge.attributes.train import _backbone_arch
    from styleforge.config import TrainConfig
    from styleforge.nets.weights import WeightsChoice

    vgg19 = replace(TrainConfig(), backbone="vgg19", weights="hed.weights.h5")
    same = WeightsChoice("imagenet", None, "torchvision", arch="vgg19")
    assert _backbone_arch(vgg19, same, resumed=False) == ("vgg19", "")
    assert _backbone_arch(vgg19, WeightsChoice("random", None, "seeded random init"), False) == ("vgg19", "")
    hed_file = WeightsChoice("file", None, "hed.weights.h5", arch="vgg16")
    arch, notice = _backbone_arch(vgg19, hed_file, resumed=False)
    assert arch == "vgg16" and notice.endswith("holds vgg16 weights, so the backbone is vgg16, not vgg19")
    told = WeightsChoice("hed", None, "hed", notice="auto fell back to HED", arch="vgg16")
    assert _backbone_arch(vgg19, told, resumed=False) == ("vgg16", "auto fell back to HED")
    assert _backbone_arch(vgg19, hed_file, resumed=True) == ("vgg16", "")  # the saved run says why
    with pytest.raises(InvalidParameter, match="use them with --backbone vgg16"):
        _backbone_arch(replace(vgg19, backbone="resnet50"), hed_file, resumed=False)
