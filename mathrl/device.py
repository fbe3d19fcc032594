"""The one place that decides which device and dtype the code runs on.

Nothing else in mathrl names "cuda" or "cpu": call `resolve_device(cfg.device)`.
"""

from __future__ import annotations

from typing import Literal

import torch

DeviceName = Literal["auto", "cpu", "cuda"]
DTypeName = Literal["float32", "bfloat16", "float16"]
# `auto`: bf16 where the device does bf16 in hardware, fp32 elsewhere (`resolve_auto_dtype`)
TrainingDType = Literal["auto", "float32", "bfloat16"]
EngineDType = Literal["auto", "float32", "bfloat16", "float16"]


def resolve_device(name: DeviceName = "auto") -> torch.device:
    """`auto` picks the accelerator when one is visible, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA device is visible; use device=auto or cpu")
    return torch.device(name)


def resolve_dtype(name: DTypeName) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


# torch's own CPU feature probes for bf16 arithmetic (private names; a torch without them counts as no)
CPU_BF16_PROBES = {"AMX": "_is_amx_tile_supported", "AVX512-BF16": "_is_avx512_bf16_supported"}


def cpu_bf16_features() -> list[str]:
    """The CPU's features that do bf16 in hardware, by name (empty on an AVX2-only CPU)."""
    return [name for name, probe in CPU_BF16_PROBES.items() if getattr(torch.cpu, probe, lambda: False)()]


def has_fast_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bf16 matrices in hardware: a CUDA GPU with bf16 support, or
    a CPU with AMX or AVX512-BF16. Other CPUs (AVX2-only ones, as in many laptops) emulate bf16, and
    there training in bf16 is many times slower than in fp32: tiny-3m's forward + backward on
    16 x 256 tokens took 23 s in bf16 against 0.8 s in fp32 on an AVX2 server CPU, where an
    AMX CPU runs bf16 matmuls 5x faster than fp32 ones."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_bf16_features())


def resolve_auto_dtype(name: str, device: torch.device) -> DTypeName:
    """`auto` is bf16 where `device` has it in hardware (`has_fast_bf16`), else fp32; a named
    dtype is kept. Learners train and rollout engines sample in the dtype this returns."""
    if name == "auto":
        return "bfloat16" if has_fast_bf16(device) else "float32"
    return name  # type: ignore[return-value]


def accelerator_kind() -> Literal["cpu", "cuda"]:
    """Which vLLM build and collective backend this machine needs."""
    return "cuda" if torch.cuda.is_available() else "cpu"
