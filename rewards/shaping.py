"""Reward shaping: combine the verifier's verdict with the reward model's score.

    reward = σ(coef · r_rm) − (1 − correct)

σ(·) lies in (0, 1), so every correct response (reward in (0, 1)) outranks every wrong one
(reward in (−1, 0)) whatever the reward model says; within each class the reward model
orders them (Qwen2.5-Math, coef 0.5). `verifier-only` drops the reward model: 1 or 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from mathrl.config import require


@dataclass(frozen=True)
class ShapingConfig:
    mode: Literal["rm+verifier", "verifier-only"] = "rm+verifier"
    rm_coef: float = 0.5

    def __post_init__(self) -> None:
        require(self.rm_coef > 0, "rm_coef", f"must be > 0, got {self.rm_coef}")


def shaped_reward(correct: torch.Tensor, rm_scores: torch.Tensor | None, cfg: ShapingConfig) -> torch.Tensor:
    """[N] verdicts (bool or {0,1} float) and [N] reward-model scores -> [N] rewards."""
    correct = correct.to(torch.float32)
    if cfg.mode == "verifier-only":
        return correct
    if rm_scores is None:
        raise ValueError("shaping mode 'rm+verifier' needs reward-model scores; use mode 'verifier-only' without an RM")
    return torch.sigmoid(cfg.rm_coef * rm_scores.to(torch.float32)) - (1 - correct)
