"""Tests of styleforge.nets.weights: the ImageNet cache path (torch.hub, hash-checked), the offline
error, the ``auto`` fallback and seeded ``random`` weights. No test touches the network: the "server"
is either unreachable (127.0.0.1:9) or a local folder reached through a file:// URL."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from styleforge.errors import WeightsError
from styleforge.nets import weights as weights_module
from styleforge.nets.vgg import VGGFeatures
from styleforge.nets.weights import IMAGENET_FILES, cache_path, resolve_weights

UNREACHABLE = "http://127.0.0.1:9/"


def _vgg19_state() -> dict[str, torch.Tensor]:
    """torchvision's VGG-19 keys and shapes (plus classifier keys), each tensor a broadcast constant
    so the file stays a few kB."""
    reference = VGGFeatures("vgg19", ("relu5_4",)).state_dict()
    state = {key: torch.full((), 0.01 * i).expand(value.shape) for i, (key, value) in enumerate(reference.items())}
    state["classifier.0.weight"] = torch.zeros(()).expand(4096, 25088)
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def _write_named_by_hash(folder: Path, state: dict[str, torch.Tensor], arch: str = "vgg19") -> Path:
    """Saves ``state`` as ``<arch>-<sha256[:8]>.pth`` in ``folder``, torchvision's naming rule."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "scratch.pth"
    torch.save(state, scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()
    path = folder / f"{arch}-{digest[:8]}.pth"
    scratch.rename(path)
    return path


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub cache under tmp_path and an unreachable download server."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case anything called torch.hub.set_dir
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(weights_module, "IMAGENET_URL", UNREACHABLE)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert Path(torch.hub.get_dir()) == checkpoints.parent
    return checkpoints


def test_torchvision_file_names() -> None:
    assert IMAGENET_FILES["vgg19"] == "vgg19-dcbb9e9d.pth"
    assert IMAGENET_FILES["vgg16"] == "vgg16-397923af.pth"
    assert weights_module.IMAGENET_URL == "https://download.pytorch.org/models/"


def test_cache_path_is_torch_hubs(hub: Path) -> None:
    assert cache_path("vgg19") == hub / "vgg19-dcbb9e9d.pth"
    assert cache_path("vgg16") == hub / "vgg16-397923af.pth"


def test_imagenet_loads_from_the_cache_without_network(
    hub: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _vgg19_state()
    cached = _write_named_by_hash(hub, state)
    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", cached.name)

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    choice = resolve_weights("imagenet", "vgg19")
    assert choice.kind == "imagenet"
    assert choice.source == str(cached) and choice.notice == ""
    assert set(choice.state_dict) == set(state)
    net = VGGFeatures("vgg19", ("relu1_1", "relu5_4"), state_dict=choice.state_dict, source=choice.source)
    assert torch.equal(net.features[34].bias, state["features.34.bias"])
    assert net.features[0].weight.flatten()[0].item() == 0.0 and net.features[2].weight.flatten()[0].item() == pytest.approx(0.02)
    # ``auto`` takes the same cached file.
    auto = resolve_weights("auto", "vgg19")
    assert auto.kind == "imagenet" and auto.notice == ""
    assert capsys.readouterr() == ("", "")


def test_imagenet_download_is_hash_checked(hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = tmp_path / "server"
    good = _write_named_by_hash(server, _vgg19_state())
    (server / "vgg19-deadbeef.pth").write_bytes(good.read_bytes())
    monkeypatch.setattr(weights_module, "IMAGENET_URL", server.as_uri() + "/")

    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", "vgg19-deadbeef.pth")
    with pytest.raises(WeightsError) as info:
        resolve_weights("imagenet", "vgg19")
    message = str(info.value)
    assert "\n" not in message and "hash" in message and "--weights random" in message
    assert not (hub / "vgg19-deadbeef.pth").exists()  # a file with the wrong hash is not cached

    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", good.name)
    choice = resolve_weights("imagenet", "vgg19")
    assert choice.kind == "imagenet" and "features.0.weight" in choice.state_dict
    assert (hub / good.name).read_bytes() == good.read_bytes()  # now cached where torchvision looks


def test_imagenet_offline_with_an_empty_cache(hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not cache_path("vgg19").exists()
    with pytest.raises(WeightsError) as info:
        resolve_weights("imagenet", "vgg19")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("--weights imagenet:")
    assert "--weights PATH" in message and "--weights random" in message
    assert "vgg19-dcbb9e9d.pth" in message and str(hub) in message
    assert info.value.exit_code == 1
    assert capsys.readouterr() == ("", "")  # the core never prints (torch.hub writes "Downloading" to stdout)
    assert not cache_path("vgg19").exists()


def test_auto_falls_back_to_random_with_a_notice(hub: Path, capsys: pytest.CaptureFixture[str]) -> None:
    choice = resolve_weights("auto", "vgg16")
    assert choice.kind == "random" and choice.state_dict is None
    assert "vgg16" in choice.notice and "random" in choice.notice and "\n" not in choice.notice
    assert capsys.readouterr() == ("", "")


def test_random_needs_nothing(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("network used")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    choice = resolve_weights("random", "vgg19")
    assert choice.kind == "random" and choice.state_dict is None and choice.notice == ""
    assert not hub.exists()
    a = VGGFeatures("vgg19", ("relu1_1",), state_dict=choice.state_dict, seed=3)
    b = VGGFeatures("vgg19", ("relu1_1",), state_dict=choice.state_dict, seed=3)
    assert torch.equal(a.features[0].weight, b.features[0].weight)


def test_path_spec_accepts_pathlike(tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save({"x": torch.zeros(2)}, path)
    for spec in (path, str(path)):
        choice = resolve_weights(spec, "vgg19")
        assert choice.kind == "file" and torch.equal(choice.state_dict["x"], torch.zeros(2))
