"""Which dtype a learner trains in: bf16 only where the device does bf16 in hardware."""

import pytest
import torch

from mathrl import device as device_module
from mathrl.device import has_fast_bf16, resolve_training_dtype

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "amx, avx512_bf16, fast",
    [(True, False, True), (False, True, True), (True, True, True), (False, False, False)],
)
def test_cpu_bf16_is_fast_only_with_amx_or_avx512_bf16(monkeypatch, amx, avx512_bf16, fast):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert has_fast_bf16(CPU) is fast
    assert resolve_training_dtype("auto", CPU) == ("bfloat16" if fast else "float32")


def test_a_torch_without_the_probes_counts_as_no_fast_bf16(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert has_fast_bf16(CPU) is False


@pytest.mark.parametrize("named", ["float32", "bfloat16"])
def test_a_named_dtype_is_kept_whatever_the_hardware(monkeypatch, named):
    for fast in (True, False):
        monkeypatch.setattr(device_module, "has_fast_bf16", lambda device, fast=fast: fast)
        assert resolve_training_dtype(named, CPU) == named
