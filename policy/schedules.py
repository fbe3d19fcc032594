"""Learning-rate schedules as pure functions of the optimizer step.

`wsd` is the warmup-stable-decay schedule of MiniCPM: linear warmup, a long constant
plateau, then a short decay (the last `decay_fraction` of training). Unlike cosine, the
plateau lets a run be extended or branched (a decay can start from any stable checkpoint).
MiniCPM decays exponentially; we decay linearly to `min_lr_ratio`, a common simplification
whose end point matches and that needs no extra hyperparameter. `cosine` and `constant`
(after warmup) are there for comparison and for RL, where a flat rate is usual.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from mathrl.config import require


@dataclass(frozen=True)
class ScheduleConfig:
    kind: Literal["wsd", "cosine", "constant"] = "wsd"
    warmup_steps: int = 0
    total_steps: int = 0  # optimizer steps; the decay of wsd/cosine ends here. 0 = the stage's length
    decay_fraction: float = 0.1  # wsd: share of total_steps spent decaying
    min_lr_ratio: float = 0.0  # final lr as a fraction of the peak

    def __post_init__(self) -> None:
        require(self.total_steps >= 0, "total_steps", f"must be >= 0 (0 = the stage's length), got {self.total_steps}")
        require(
            self.total_steps == 0 or 0 <= self.warmup_steps <= self.total_steps,
            "warmup_steps",
            f"must be in [0, total_steps={self.total_steps}], got {self.warmup_steps}",
        )
        require(0 <= self.decay_fraction <= 1, "decay_fraction", f"must be in [0, 1], got {self.decay_fraction}")
        require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")


def with_total_steps(cfg: ScheduleConfig, total_steps: int) -> ScheduleConfig:
    """`cfg` with its length filled in by the stage, unless the config set one."""
    return cfg if cfg.total_steps else dataclasses.replace(cfg, total_steps=total_steps)


def lr_factor(step: int, cfg: ScheduleConfig) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.kind == "constant":
        return 1.0
    if cfg.total_steps <= 0:
        raise ValueError(f"schedule.total_steps is 0: a {cfg.kind} schedule needs its length (see with_total_steps)")
    if cfg.kind == "cosine":
        span = max(1, cfg.total_steps - cfg.warmup_steps - 1)  # reach the floor on the last step
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_steps = round(cfg.decay_fraction * cfg.total_steps)
    decay_start = cfg.total_steps - decay_steps
    if step < decay_start or decay_steps == 0:
        return 1.0
    progress = min(1.0, (step - decay_start + 1) / decay_steps)
    return 1.0 - (1 - cfg.min_lr_ratio) * progress
