"""The loop shared by pretraining, SFT and reward-model training: resume, step, log, checkpoint, export.

    final_dir = train(learner, data.batch, NextTokenLoss(), total_steps, cfg.run)

`batches(step)` must be a pure function of the step (see `policy.lm_data`): then resuming
from a checkpoint at step k replays exactly the batches k, k+1, ... of an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from mathrl.config import ConfigError, require
from mathrl.metrics import MetricsLogger
from policy.learner import CHECKPOINT_PREFIX, Learner, LearnerConfig, latest_checkpoint
from policy.loading import load_causal_lm
from policy.losses import BatchLoss, TensorBatch
from policy.schedules import with_total_steps


@dataclass(frozen=True)
class RunConfig:
    run_dir: str = "runs/run"
    log_every: int = 10
    save_every: int = 100  # optimizer steps between checkpoints; 0 = only the final one
    keep_checkpoints: int = 2  # older complete checkpoints are deleted
    resume: bool = True  # continue from the newest complete checkpoint in run_dir

    def __post_init__(self) -> None:
        require(bool(self.run_dir), "run_dir", "must name a directory")
        require(self.log_every >= 1, "log_every", f"must be >= 1, got {self.log_every}")
        require(self.save_every >= 0, "save_every", f"must be >= 0 (0 = only at the end), got {self.save_every}")
        require(self.keep_checkpoints >= 1, "keep_checkpoints", f"must be >= 1, got {self.keep_checkpoints}")


def learner_for_stage(
    model_path: str, cfg: LearnerConfig, total_steps: int, tokenizer, model: torch.nn.Module | None = None
) -> Learner:
    """A learner on `model` (default: the causal LM in `model_path`; the reward-model stage
    passes its own), its LR schedule spanning the stage's `total_steps` (unless the config
    fixed a length)."""
    try:
        cfg = dataclasses.replace(cfg, schedule=with_total_steps(cfg.schedule, total_steps))
    except ConfigError as err:  # e.g. more warmup steps than the stage has
        raise err.under("learner.schedule") from None
    return Learner(model if model is not None else load_causal_lm(model_path), cfg, tokenizer=tokenizer)


def train(
    learner: Learner,
    batches: Callable[[int], TensorBatch],
    loss_fn: BatchLoss,
    total_steps: int,
    run: RunConfig,
    on_log: Callable[[int, dict[str, float]], None] | None = None,
) -> Path:
    """Train until `total_steps`; returns the directory of the exported final model."""
    run_dir = Path(run.run_dir)
    checkpoints = run_dir / "checkpoints"
    latest = latest_checkpoint(checkpoints) if run.resume else None
    if latest is not None:
        learner.load_checkpoint(latest)
        print(f"resumed from {latest} at step {learner.step}")
    is_main = learner.rank == 0
    logger = MetricsLogger(run_dir) if is_main else None
    bar = tqdm(total=total_steps, initial=learner.step, desc=run_dir.name, disable=not is_main, dynamic_ncols=True)
    while learner.step < total_steps:
        metrics = learner.train_batch(batches(learner.step), loss_fn)
        step = learner.step  # steps done
        bar.update(1)
        bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.3f}", lr=f"{metrics.get('lr', 0):.2e}")
        if logger and (step % run.log_every == 0 or step == total_steps):
            logger.log(step, metrics)
            if on_log:
                on_log(step, metrics)
        if run.save_every and step % run.save_every == 0 and step < total_steps:
            save_and_prune(learner, checkpoints, run.keep_checkpoints)
    bar.close()
    save_and_prune(learner, checkpoints, run.keep_checkpoints)
    final = learner.export_hf(run_dir / "final")
    if logger:
        logger.close()
    return final


def save_and_prune(learner: Learner, root: Path, keep: int, client_state: dict | None = None) -> Path:
    """Checkpoint (with `client_state`, default the step) and delete all but the newest `keep`."""
    path = learner.save_checkpoint(root, client_state=client_state or {"step": learner.step})
    if learner.rank == 0:
        complete = sorted(p for p in root.iterdir() if p.name.startswith(CHECKPOINT_PREFIX))
        for old in complete[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return path
