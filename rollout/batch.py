"""The record a rollout hands to the rest of the GRPO step, and how shards of it are merged.

Samples are stored prompt-major: the n samples of prompt i sit at rows i*n .. i*n+n-1, so a
GRPO group is a contiguous slice. Token sequences are ragged (each response stops at its own
length); `padded_responses` gives the dense `[N, T]` view the learner wants.

Imports neither vLLM nor Ray: the driver, the learner and unit tests use it as plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

FinishReason = Literal["stop", "length"]


@dataclass
class RolloutMetrics:
    num_prompts: int = 0
    num_samples: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0  # wall time of the generate call (for a group: of the whole gather)
    retries: int = 0  # shards re-run on a restarted worker after their worker died
    restarted_workers: list[int] = field(default_factory=list)  # ranks recreated during the call

    @property
    def tokens_per_s(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self, prefix: str = "rollout/") -> dict[str, float]:
        """Flat scalars for the step logger."""
        return {
            f"{prefix}generated_tokens": float(self.generated_tokens),
            f"{prefix}prompt_tokens": float(self.prompt_tokens),
            f"{prefix}seconds": self.seconds,
            f"{prefix}tokens_per_s": self.tokens_per_s,
            f"{prefix}retries": float(self.retries),
        }


@dataclass
class RolloutBatch:
    """N = B*n sampled responses for B prompts (n per prompt), prompt-major."""

    prompt_index: list[int]  # [N] which prompt (0..B-1) each sample answers
    prompt_ids: list[list[int]]  # [N][P_i] the prompt's tokens, chat template applied
    response_ids: list[list[int]]  # [N][T_i] sampled tokens (the stop token included when one was sampled)
    logprobs: list[list[float]]  # [N][T_i] log p(token) under the sampling policy, before temperature/top-p
    texts: list[str]  # [N] decoded responses (special tokens and a matched stop string left out)
    finish_reasons: list[FinishReason]  # [N] "stop": EOS or a stop string; "length": hit max_tokens
    metrics: RolloutMetrics = field(default_factory=RolloutMetrics)

    def __post_init__(self) -> None:
        n = len(self.prompt_index)
        columns = {
            "prompt_ids": self.prompt_ids,
            "response_ids": self.response_ids,
            "logprobs": self.logprobs,
            "texts": self.texts,
            "finish_reasons": self.finish_reasons,
        }
        for name, column in columns.items():
            if len(column) != n:
                raise ValueError(f"RolloutBatch.{name} has {len(column)} rows, prompt_index has {n}")
        for row, (ids, lps) in enumerate(zip(self.response_ids, self.logprobs)):
            if len(ids) != len(lps):
                raise ValueError(f"sample {row}: {len(ids)} response tokens but {len(lps)} logprobs")

    def __len__(self) -> int:
        return len(self.prompt_index)

    @property
    def num_prompts(self) -> int:
        return max(self.prompt_index) + 1 if self.prompt_index else 0

    @property
    def response_lengths(self) -> list[int]:  # [N]
        return [len(ids) for ids in self.response_ids]

    def padded_responses(self, pad_id: int):
        """Dense tensors: ids `[N, T]` (pad_id after each response), logprobs `[N, T]` (0 there),
        mask `[N, T]` (True on real tokens); T = the longest response."""
        import torch

        width = max(self.response_lengths, default=0)
        ids = torch.full((len(self), width), pad_id, dtype=torch.long)
        logprobs = torch.zeros((len(self), width), dtype=torch.float32)
        mask = torch.zeros((len(self), width), dtype=torch.bool)
        for row, (tokens, lps) in enumerate(zip(self.response_ids, self.logprobs)):
            ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
            logprobs[row, : len(lps)] = torch.tensor(lps, dtype=torch.float32)
            mask[row, : len(tokens)] = True
        return ids, logprobs, mask

    @classmethod
    def concat(cls, shards: Sequence[RolloutBatch], prompt_offsets: Sequence[int]) -> RolloutBatch:
        """Merge shards generated for consecutive slices of the prompt list.

        Shard k answered prompts `prompt_offsets[k] ...` and numbered them from 0; its
        `prompt_index` is shifted back to the caller's numbering. Token and sample counts are
        summed; `seconds` is the slowest shard's (they ran in parallel) — callers that time the
        whole gather overwrite it."""
        if len(shards) != len(prompt_offsets):
            raise ValueError(f"{len(shards)} shards but {len(prompt_offsets)} offsets")
        merged = cls([], [], [], [], [], [])
        for shard, offset in zip(shards, prompt_offsets):
            merged.prompt_index += [offset + i for i in shard.prompt_index]
            merged.prompt_ids += shard.prompt_ids
            merged.response_ids += shard.response_ids
            merged.logprobs += shard.logprobs
            merged.texts += shard.texts
            merged.finish_reasons += shard.finish_reasons
            m = shard.metrics
            merged.metrics.num_prompts += m.num_prompts
            merged.metrics.num_samples += m.num_samples
            merged.metrics.prompt_tokens += m.prompt_tokens
            merged.metrics.generated_tokens += m.generated_tokens
            merged.metrics.seconds = max(merged.metrics.seconds, m.seconds)
            merged.metrics.retries += m.retries
        return merged


def split_evenly(num_items: int, num_parts: int) -> list[range]:
    """Contiguous slices of `range(num_items)`, sizes differing by at most one, larger first.

    Always `num_parts` ranges (some empty when there are fewer items than parts), so that
    part k goes to worker k."""
    if num_parts < 1:
        raise ValueError(f"num_parts must be >= 1, got {num_parts}")
    base, extra = divmod(num_items, num_parts)
    parts, start = [], 0
    for k in range(num_parts):
        size = base + (1 if k < extra else 0)
        parts.append(range(start, start + size))
        start += size
    return parts
