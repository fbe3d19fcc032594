"""Settings of the rollout workers: how to sample, and the vLLM engine each worker owns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mathrl.config import require
from mathrl.device import DTypeName, EngineDType, accelerator_kind, resolve_auto_dtype


@dataclass(frozen=True)
class EngineConfig:
    # auto: bf16 on a GPU or a CPU that does bf16 in hardware, fp32 elsewhere (vLLM on an
    # AVX2-only CPU would emulate bf16); resolved where the engine runs (`engine_dtype`)
    dtype: EngineDType = "auto"
    max_model_len: int = 1024
    max_num_seqs: int = 256
    kv_cache_gb: float = 1.0  # CPU only: VLLM_CPU_KVCACHE_SPACE; on GPU see gpu_memory_utilization
    gpu_memory_utilization: float = 0.5
    enforce_eager: bool = True  # skip torch.compile / CUDA graphs: much faster start-up for tiny models

    def __post_init__(self) -> None:
        require(self.max_model_len >= 64, "max_model_len", f"must be >= 64, got {self.max_model_len}")
        require(self.max_num_seqs >= 1, "max_num_seqs", f"must be >= 1, got {self.max_num_seqs}")
        require(self.kv_cache_gb > 0, "kv_cache_gb", f"must be > 0 GiB, got {self.kv_cache_gb}")
        require(
            0 < self.gpu_memory_utilization <= 1,
            "gpu_memory_utilization",
            f"must be in (0, 1], got {self.gpu_memory_utilization}",
        )


def engine_dtype(cfg: EngineConfig) -> DTypeName:
    """The dtype an engine started on this machine runs in."""
    return resolve_auto_dtype(cfg.dtype, torch.device(accelerator_kind()))


@dataclass(frozen=True)
class RolloutConfig:
    n: int = 8  # responses per problem (the GRPO group size)
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: list[str] = field(default_factory=list)
    seed: int = 0
    num_workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    engine: EngineConfig = field(default_factory=EngineConfig)

    def __post_init__(self) -> None:
        require(self.n >= 1, "n", f"must be >= 1 (responses sampled per problem; GRPO uses 8), got {self.n}")
        require(self.temperature >= 0, "temperature", f"must be >= 0 (0 = greedy), got {self.temperature}")
        require(0 < self.top_p <= 1, "top_p", f"must be in (0, 1], got {self.top_p}")
        require(self.max_tokens >= 1, "max_tokens", f"must be >= 1, got {self.max_tokens}")
        require(
            self.max_tokens < self.engine.max_model_len,
            "max_tokens",
            f"({self.max_tokens}) must be < engine.max_model_len ({self.engine.max_model_len}) to leave room for the prompt",
        )
        require(self.num_workers >= 1, "num_workers", f"must be >= 1, got {self.num_workers}")
        require(self.cpus_per_worker > 0, "cpus_per_worker", f"must be > 0, got {self.cpus_per_worker}")
        require(self.gpus_per_worker >= 0, "gpus_per_worker", f"must be >= 0, got {self.gpus_per_worker}")
