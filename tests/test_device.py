"""Tests of styleforge.device: ``--device auto|cpu|cuda|cuda:N|mps`` and ``--precision``."""

from __future__ import annotations

import pytest
import torch

from styleforge.device import DEVICE_CHOICES, PRECISIONS, resolve_device, resolve_precision, tf32_mode
from styleforge.errors import InvalidParameter, ResourceError


@pytest.mark.parametrize("spec", ["cpu", "CPU", " cpu "])
def test_cpu(spec: str) -> None:
    assert resolve_device(spec) == torch.device("cpu")


def test_auto_picks_what_exists() -> None:
    device = resolve_device("auto")
    if torch.cuda.is_available():
        assert device.type == "cuda"
    elif torch.backends.mps.is_available():
        assert device.type == "mps"
    else:
        assert device == torch.device("cpu")


def test_auto_without_accelerators_is_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


# (ids avoid the bare word "gpu": conftest skips any test whose keywords contain it)
@pytest.mark.parametrize(
    "spec",
    ["gpu", "cuda:x", "cuda:-1", "tpu", "", "cpu:0"],
    ids=["GPU-word", "cuda-x", "cuda-neg", "tpu", "empty", "cpu-0"],
)
def test_invalid_form_lists_the_valid_ones(spec: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        resolve_device(spec)
    message = str(info.value)
    assert message.startswith("--device:") and repr(spec) in message
    assert DEVICE_CHOICES in message and "cuda:N" in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_resource_error(spec: str) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ResourceError) as info:
        resolve_device(spec)
    message = str(info.value)
    assert (
        message.startswith(f"--device {spec}:") and "no CUDA device" in message and "--device cpu" in message
    )
    assert info.value.exit_code == 1


def test_cuda_without_cuda_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ResourceError, match="no CUDA device"):
        resolve_device("cuda")


def test_cuda_index_out_of_range_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    with pytest.raises(ResourceError) as info:
        resolve_device("cuda:2")
    assert "2 CUDA device" in str(info.value) and "cuda:0..cuda:1" in str(info.value)


def test_mps_without_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ResourceError, match="--device mps"):
        resolve_device("mps")


# --- --precision ---------------------------------------------------------------------------------


@pytest.mark.native_precision
@pytest.mark.parametrize("native", [True, False], ids=["bf16-instructions", "no-bf16-instructions"])
def test_auto_precision_on_a_cpu_is_bf16_only_where_it_is_native(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """Emulated bf16 is slower than float32: ``auto`` takes it only with AVX512-BF16 or AMX."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is (torch.bfloat16 if native else None)
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16  # asked for: emulated or not


@pytest.mark.native_precision
@pytest.mark.parametrize("major", [7, 8, 9])
def test_auto_precision_on_cuda_asks_the_requested_device_for_native_bf16(
    monkeypatch: pytest.MonkeyPatch, major: int
) -> None:
    """Compute capability 8 (Ampere) and later compute in bf16; earlier cards only emulate it, and
    the capability is that of the device the run asked for, not of the current device."""
    asked: list[torch.device] = []

    class Props:
        def __init__(self, device: torch.device) -> None:
            asked.append(device)
            self.major = major

    monkeypatch.setattr(torch.cuda, "get_device_properties", Props)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # emulation counts here
    cuda = torch.device("cuda", 1)
    assert resolve_precision("auto", cuda) is (torch.bfloat16 if major >= 8 else None)
    assert asked == [cuda]
    assert resolve_precision("fp32", cuda) is None and resolve_precision("tf32", cuda) is None


def test_bf16_on_a_cuda_device_without_it_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(ResourceError) as info:
        resolve_precision("bf16", torch.device("cuda", 0))
    assert str(info.value).startswith("--precision bf16:") and "--precision fp32" in str(info.value)


def test_tf32_is_a_cuda_format() -> None:
    with pytest.raises(ResourceError) as info:
        resolve_precision("tf32", torch.device("cpu"))
    assert str(info.value).startswith("--precision tf32:") and "fp32" in str(info.value)


def test_tf32_mode_sets_and_restores_cudas_settings() -> None:
    from styleforge.device import _tf32_settings

    settings = _tf32_settings()
    before = [getattr(owner, name) for owner, name, _, _ in settings]
    for enabled in (False, True):
        with tf32_mode(torch.device("cuda"), enabled):
            assert [getattr(o, n) for o, n, _, _ in settings] == [
                t if enabled else f for _, _, t, f in settings
            ]
        assert [getattr(owner, name) for owner, name, _, _ in settings] == before
    with tf32_mode(torch.device("cpu"), True):  # nothing to set elsewhere
        assert [getattr(owner, name) for owner, name, _, _ in settings] == before


def test_bf16_where_autocast_has_none_is_refused() -> None:
    with pytest.raises(ResourceError, match="--precision bf16: mps"):
        resolve_precision("bf16", torch.device("mps"))
    assert resolve_precision("auto", torch.device("mps")) is None


def test_unknown_precision_lists_the_choices() -> None:
    with pytest.raises(InvalidParameter) as info:
        resolve_precision("fp16", torch.device("cpu"))
    assert str(info.value).startswith("--precision:") and all(p in str(info.value) for p in PRECISIONS)
