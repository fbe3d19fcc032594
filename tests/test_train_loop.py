"""The shared training loop: a run killed mid-way resumes from its last complete checkpoint
and ends exactly where an uninterrupted run ends."""

import pytest
import torch

from mathrl.metrics import read_metrics
from policy.learner import Learner, LearnerConfig, OptimizerConfig
from policy.loading import load_causal_lm, load_tokenizer
from policy.losses import NextTokenLoss
from policy.schedules import ScheduleConfig
from policy.train_loop import RunConfig, train

TOTAL = 6


class Crash(RuntimeError):
    pass


def batches(tokenizer, crash_at=None):
    def batch(step):
        if step == crash_at:
            raise Crash(f"killed at step {step}")
        g = torch.Generator().manual_seed(step)
        ids = torch.randint(3, len(tokenizer), (4, 24), generator=g)
        ones = torch.ones_like(ids)
        return {"input_ids": ids, "attention_mask": ones, "loss_mask": ones}

    return batch


def new_learner(model_dir):
    cfg = LearnerConfig(
        dtype="float32",
        micro_batch_size=2,
        optimizer=OptimizerConfig(lr=1e-3),
        schedule=ScheduleConfig(kind="wsd", warmup_steps=2, total_steps=TOTAL, decay_fraction=0.5),
    )
    return Learner(load_causal_lm(model_dir), cfg, tokenizer=load_tokenizer(model_dir))


def test_killed_run_resumes_to_the_same_model(tiny_model_dir, tmp_path):
    tokenizer = load_tokenizer(tiny_model_dir)
    straight_run = RunConfig(run_dir=str(tmp_path / "straight"), log_every=1, save_every=2)
    learner = new_learner(tiny_model_dir)
    straight = train(learner, batches(tokenizer), NextTokenLoss(), TOTAL, straight_run)
    learner.close()

    run = RunConfig(run_dir=str(tmp_path / "crashy"), log_every=1, save_every=2)
    learner = new_learner(tiny_model_dir)
    with pytest.raises(Crash):
        train(learner, batches(tokenizer, crash_at=5), NextTokenLoss(), TOTAL, run)
    learner.close()
    checkpoints = sorted(p.name for p in (tmp_path / "crashy" / "checkpoints").iterdir())
    assert checkpoints == ["step_00000002", "step_00000004"]

    learner = new_learner(tiny_model_dir)
    resumed = train(learner, batches(tokenizer), NextTokenLoss(), TOTAL, run)
    assert learner.step == TOTAL
    learner.close()

    a, b = load_causal_lm(straight), load_causal_lm(resumed)
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pb, pa, rtol=1e-6, atol=1e-7, msg=name)
    straight_losses = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "straight")}
    crashy = read_metrics(tmp_path / "crashy")
    assert [r["step"] for r in crashy] == [1, 2, 3, 4, 5, 5, 6]  # step 5 ran twice: before the crash, after resume
    for row in crashy:
        assert row["loss"] == pytest.approx(straight_losses[row["step"]], rel=1e-6)
    # keep_checkpoints=2 prunes the oldest
    assert sorted(p.name for p in (tmp_path / "crashy" / "checkpoints").iterdir()) == ["step_00000004", "step_00000006"]
