"""The one place that decides which device and dtype the code runs on.

Nothing else in mathrl names "cuda" or "cpu": call `resolve_device(cfg.device)`.
"""

from __future__ import annotations

from typing import Literal

import torch

DeviceName = Literal["auto", "cpu", "cuda"]
DTypeName = Literal["float32", "bfloat16", "float16"]


def resolve_device(name: DeviceName = "auto") -> torch.device:
    """`auto` picks the accelerator when one is visible, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA device is visible; use device=auto or cpu")
    return torch.device(name)


def resolve_dtype(name: DTypeName) -> torch.dtype:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def accelerator_kind() -> Literal["cpu", "cuda"]:
    """Which vLLM build and collective backend this machine needs."""
    return "cuda" if torch.cuda.is_available() else "cpu"
