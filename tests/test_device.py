"""Which dtype learners train and engines sample in: bf16 only where the device does bf16 in hardware."""

from pathlib import Path

import pytest
import torch

from mathrl import device as device_module
from mathrl.device import has_fast_bf16, resolve_auto_dtype

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "amx, avx512_bf16, fast",
    [(True, False, True), (False, True, True), (True, True, True), (False, False, False)],
)
def test_cpu_bf16_is_fast_only_with_amx_or_avx512_bf16(monkeypatch, amx, avx512_bf16, fast):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    assert has_fast_bf16(CPU) is fast
    assert resolve_auto_dtype("auto", CPU) == ("bfloat16" if fast else "float32")


def test_a_torch_without_the_probes_counts_as_no_fast_bf16(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert has_fast_bf16(CPU) is False


@pytest.mark.parametrize("named", ["float32", "bfloat16"])
def test_a_named_dtype_is_kept_whatever_the_hardware(monkeypatch, named):
    for fast in (True, False):
        monkeypatch.setattr(device_module, "has_fast_bf16", lambda device, fast=fast: fast)
        assert resolve_auto_dtype(named, CPU) == named


@pytest.mark.parametrize("fast", [True, False])
def test_an_engine_left_on_auto_samples_in_bf16_only_where_the_hardware_has_it(monkeypatch, fast):
    from rollout.config import EngineConfig, engine_dtype

    monkeypatch.setattr(device_module, "has_fast_bf16", lambda device: fast)
    assert EngineConfig().dtype == "auto"
    assert engine_dtype(EngineConfig()) == ("bfloat16" if fast else "float32")
    for named in ("float32", "bfloat16", "float16"):
        assert engine_dtype(EngineConfig(dtype=named)) == named


def _check_dtype_on_rank(rank: int, dtypes: list[str], store: str, out_dir: str) -> None:
    from mathrl.config import ConfigError
    from policy.learner import require_one_dtype

    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=len(dtypes))
    try:
        require_one_dtype(dtypes[rank], CPU)
        outcome = "ok"
    except ConfigError as error:
        outcome = str(error)
    finally:
        torch.distributed.destroy_process_group()
    (Path(out_dir) / f"rank{rank}.txt").write_text(outcome)


@pytest.mark.parametrize(
    "dtypes, agree", [(["float32", "float32"], True), (["bfloat16", "bfloat16"], True), (["bfloat16", "float32"], False)]
)
def test_ranks_that_resolved_auto_differently_fail_at_start_naming_the_key(tmp_path, dtypes, agree):
    """Two real gloo ranks: a learner spread over machines of different kinds must not start
    all-reducing bf16 gradients with fp32 ones; every rank stops, naming learner.dtype."""
    torch.multiprocessing.spawn(_check_dtype_on_rank, args=(dtypes, str(tmp_path / "store"), str(tmp_path)), nprocs=2)
    outcomes = [(tmp_path / f"rank{rank}.txt").read_text() for rank in range(2)]
    if agree:
        assert outcomes == ["ok", "ok"]
    else:
        for outcome in outcomes:
            assert outcome.startswith("learner.dtype:") and "1 of 2 ranks train in bfloat16" in outcome
