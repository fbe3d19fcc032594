"""GRPO as pure tensor functions (torch only): group filter, advantages, KL, policy loss.

Shapes: G problems (groups) × n samples each; N = G·n sequences; T response tokens.

Where this departs from the GRPO paper (DeepSeekMath):
- Groups are kept only when 2..5 of their 8 samples are *verified* correct (Qwen2.5-Math's
  filter): a group whose samples all agree carries no ranking signal, and with a shaped
  reward it would still get non-zero advantages from reward-model noise alone.
- The clip range is asymmetric (`clip_low`, `clip_high`, as in DAPO); equal values give PPO's clip.
- Dividing advantages by the group std is optional (`normalize_std=False` is Dr. GRPO).
- Aggregation is a token mean over the whole batch by default (DAPO / Dr. GRPO); the paper's
  per-sequence mean (`seq-mean`) is an option.
- The KL term is the k3 estimator, in the loss, against a frozen reference policy.

Losses return a SUM over their units plus the unit count (tokens or sequences), which the
learner divides by the global count (see `policy.losses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from mathrl.config import require  # plain-Python validation helper, no heavy imports


def keep_groups(correct: torch.Tensor, low: int = 2, high: int = 5) -> torch.Tensor:
    """[G, n] bool verdicts -> [G] bool: groups with low <= #correct <= high."""
    count = correct.sum(dim=-1)
    return (count >= low) & (count <= high)


def group_advantages(rewards: torch.Tensor, normalize_std: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """[G, n] rewards -> [G, n] advantages: (r - group mean) / (group std + eps).

    The std is the unbiased sample std (torch's default), as in the GRPO reference code."""
    centered = rewards - rewards.mean(dim=-1, keepdim=True)
    if not normalize_std:
        return centered
    return centered / (rewards.std(dim=-1, keepdim=True) + eps)


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimate of KL(π || π_ref): exp(d) - d - 1 with d = log π_ref - log π.
    Unbiased, always >= 0, low variance (Schulman, "Approximating KL divergence")."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


@dataclass(frozen=True)
class PolicyLossConfig:
    clip_low: float = 0.2  # ratio floor is 1 - clip_low
    clip_high: float = 0.2  # ratio ceiling is 1 + clip_high (DAPO raises it, e.g. 0.28)
    kl_coef: float = 0.0  # β; 0 means no reference model is needed
    aggregation: Literal["token-mean", "seq-mean"] = "token-mean"
    # Log-probs are those of softmax(logits / temperature), the distribution the rollout sampled
    # from; GRPO sets it to rollout.temperature (`GRPOConfig.policy_loss`).
    temperature: float = 1.0

    def __post_init__(self) -> None:
        from mathrl.config import require

        require(0 <= self.clip_low < 1, "clip_low", f"must be in [0, 1), got {self.clip_low}")
        require(self.clip_high >= 0, "clip_high", f"must be >= 0, got {self.clip_high}")
        require(self.kl_coef >= 0, "kl_coef", f"must be >= 0 (0 = no KL term), got {self.kl_coef}")
        require(self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}")


def policy_loss(
    logprobs: torch.Tensor,  # [N, T] log π_θ of the sampled tokens
    old_logprobs: torch.Tensor,  # [N, T] log π_old (the policy that sampled them)
    advantages: torch.Tensor,  # [N] one advantage per sequence
    mask: torch.Tensor,  # [N, T] 1 on response tokens
    cfg: PolicyLossConfig,
    ref_logprobs: torch.Tensor | None = None,  # [N, T], needed when cfg.kl_coef > 0
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Clipped policy-gradient loss with a k3 KL penalty.

    Returns (loss summed over units, metrics summed over units, number of units); units are
    tokens for token-mean and sequences for seq-mean."""
    mask = mask.to(logprobs.dtype)
    ratio = torch.exp(logprobs - old_logprobs)  # [N, T]
    adv = advantages[:, None]
    unclipped = ratio * adv
    clipped = ratio.clamp(1 - cfg.clip_low, 1 + cfg.clip_high) * adv
    per_token = -torch.minimum(unclipped, clipped)  # [N, T]
    # a token is "clipped" when the clipped branch is the one that counts (its gradient is 0)
    clipped_tokens = (clipped < unclipped).to(logprobs.dtype)
    metrics = {"clip_fraction": clipped_tokens, "ratio": ratio.detach()}
    if cfg.kl_coef > 0:
        if ref_logprobs is None:
            raise ValueError("kl_coef > 0 needs ref_logprobs (the reference policy's log-probs)")
        kl = kl_k3(logprobs, ref_logprobs)
        per_token = per_token + cfg.kl_coef * kl
        metrics["kl"] = kl.detach()
    metrics["pg_loss"] = per_token.detach()

    units = mask.sum() if cfg.aggregation == "token-mean" else torch.tensor(float(mask.shape[0]))
    sums = {k: aggregate(v, mask, cfg.aggregation) for k, v in metrics.items()}
    return aggregate(per_token, mask, cfg.aggregation), sums, units


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, aggregation: str) -> torch.Tensor:
    """[N, T] values -> their sum over the loss's units: masked tokens (token-mean), or
    per-sequence means over masked tokens (seq-mean)."""
    if aggregation == "token-mean":
        return (per_token * mask).sum()
    return ((per_token * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)).sum()
