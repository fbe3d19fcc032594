"""The sampling policy's own likelihood of its responses, a label-free ranker.

    means, sums = response_logprobs("runs/sft_tiny/final", groups)   # per group, per response

A response's mean token log-prob under the policy that sampled it ranks that policy's
responses well when they are sampled at temperature 1: a sampled slip (a wrong digit, a
dropped term) is usually a token the policy itself found unlikely. On the tiny pipeline it
ranks held-out groups at 0.80 pairwise accuracy (best-of-8 71% against a 63% mean) where
a reward model trained on the verifier's labels alone reached 0.59 (`bench/rm_baselines.py`).
The reward model cannot use it directly (it scores one response from its last token, and at
inference the policy may be another one), but it can learn from it:
`rewards.ranking.teacher_pairwise_loss` fits the reward model's pairwise preferences to this
teacher's on every pair of a group. That lifted held-out
pairwise accuracy to 0.605-0.633 (two trainers), short of the teacher: reading the sum of
per-token surprises off one last-token state is hard for a 4-layer backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mathrl.config import require
from mathrl.device import DeviceName, resolve_device
from policy.loading import load_causal_lm
from policy.losses import token_logprobs
from rewards.reward_model import length_sorted_batches, pad_right
from rewards.rm_data import regroup


@dataclass(frozen=True)
class TeacherConfig:
    coef: float = 0.0  # weight of the teacher term next to the listwise loss; 0 = the verifier's labels only
    temperature: float | None = None  # τ in σ((t_i − t_j)/τ); None = `within_group_spread` of the training data
    batch_size: int = 32  # sequences per forward pass when computing the policy's log-probs
    # Also train the teacher term on the training groups that are all correct or all wrong
    # (samples/train_unmixed.jsonl): no ranking pair, but the teacher still orders them.
    unmixed_groups: bool = False

    def __post_init__(self) -> None:
        require(self.coef >= 0, "coef", f"must be >= 0, got {self.coef}")
        require(self.temperature is None or self.temperature > 0, "temperature", f"must be > 0 or null, got {self.temperature}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")


def within_group_spread(values: Sequence[Sequence[float]]) -> float:
    """Root mean square of the values minus their group's mean: the teacher's typical gap
    between two responses to one problem, so that σ((t_i − t_j)/τ) is neither a step nor flat."""
    centred = [v - sum(group) / len(group) for group in values if group for v in group]
    spread = (sum(c * c for c in centred) / len(centred)) ** 0.5 if centred else 0.0
    if spread == 0:
        raise ValueError("the teacher gives every response of every group the same value: nothing to learn from")
    return spread


def response_logprobs(
    policy_path: str, groups: Sequence, batch_size: int = 32, device: DeviceName = "auto"
) -> tuple[list[list[float]], list[list[float]]]:
    """(mean, sum) of each response's token log-probs under the causal LM in `policy_path`,
    per group. `groups` hold `prompt_ids` and `response_ids` (`rewards.rm_data.SampledGroup`).
    Sequences run in length-sorted batches; results come back in input order."""
    device = resolve_device(device)
    model = load_causal_lm(policy_path, "float32", device).eval()
    sequences = [list(group.prompt_ids) + list(response) for group in groups for response in group.response_ids]
    prompt_lengths = [len(group.prompt_ids) for group in groups for _ in group.response_ids]
    flat_means, flat_sums = [0.0] * len(sequences), [0.0] * len(sequences)
    with torch.inference_mode():
        for rows in length_sorted_batches(sequences, batch_size):
            ids, mask = pad_right([sequences[i] for i in rows], pad_id=0)
            logprobs = token_logprobs(model, ids.to(device), mask.to(device)).cpu()  # [B, T-1]: t-1 predicts t
            response = mask[:, 1:].clone()
            for row, i in enumerate(rows):
                response[row, : prompt_lengths[i] - 1] = 0  # the response's tokens only
            totals = (logprobs * response).sum(-1)
            counts = response.sum(-1).clamp(min=1)
            for row, i in enumerate(rows):
                flat_means[i], flat_sums[i] = float(totals[row] / counts[row]), float(totals[row])
    sizes = [len(group.response_ids) for group in groups]
    return regroup(flat_means, sizes), regroup(flat_sums, sizes)
