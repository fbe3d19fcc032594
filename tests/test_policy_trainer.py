"""`PolicyTrainer.update`: several passes (epochs) over a rollout batch, each cut into
mini-batches, are the same optimizer steps as feeding the mini-batches one by one in that
order, with every pass's ratios taken against the rollout's log-probs; the KL reference pass
over trimmed micro-batches gives the whole batch's log-probs."""

import pytest
import torch

from policy.learner import split_batch
from rl.algorithms import PolicyLossConfig
from tests.test_learner_group import comparable_learner_cfg, grpo_batch

pytestmark = pytest.mark.slow


def test_epochs_repeat_the_mini_batches_against_the_rollout_logprobs(tiny_model_dir):
    from rl.trainer import PolicyTrainer

    learner_cfg = comparable_learner_cfg(micro_batch_size=4)
    loss_cfg = PolicyLossConfig(clip_low=0.2, clip_high=0.28, kl_coef=0.0)
    batch = grpo_batch(768, rows=8, seed=3)

    passes = PolicyTrainer(str(tiny_model_dir), learner_cfg, loss_cfg)
    metrics = passes.update(batch, num_minibatches=2, epochs=2)
    one_by_one = PolicyTrainer(str(tiny_model_dir), learner_cfg, loss_cfg)
    halves = list(split_batch(batch, 4))
    sequence = [one_by_one.update(mb) for mb in halves + halves]

    assert metrics["optimizer_steps"] == 4 == passes.step == one_by_one.step
    weights, reference = passes.state_dict(), one_by_one.state_dict()
    assert max((weights[k] - reference[k]).abs().max() for k in weights) < 1e-6
    assert metrics["loss"] == pytest.approx(sum(m["loss"] for m in sequence) / 4, rel=1e-5, abs=1e-7)
    # the second pass meets a policy that has moved away from the rollout's log-probs
    assert abs(sequence[2]["logprob_diff"]) > abs(sequence[0]["logprob_diff"])
    assert metrics["rollout_logprob_diff"] == pytest.approx(sequence[0]["logprob_diff"], rel=1e-5, abs=1e-7)
    assert torch.isfinite(torch.tensor(metrics["loss"]))


def test_reference_logprobs_of_trimmed_micro_batches_match_the_whole_batch(tiny_model_dir):
    """The KL reference pass cuts each micro-batch to its own width; on every response token it
    gives what one pass over the whole padded batch gives."""
    from rl.policy_update import logits_and_logprobs
    from rl.trainer import PolicyTrainer

    trainer = PolicyTrainer(str(tiny_model_dir), comparable_learner_cfg(micro_batch_size=3), PolicyLossConfig(kl_coef=0.05))
    batch = grpo_batch(768, rows=8, seed=5)
    widths = [int(batch["attention_mask"][i : i + 3].sum(dim=1).max()) for i in range(0, 8, 3)]
    assert min(widths) < batch["input_ids"].shape[1]  # some micro-batch is really cut
    with torch.no_grad():
        whole = logits_and_logprobs(trainer.reference, batch)[1]
    mask = batch["response_mask"].bool()
    torch.testing.assert_close(trainer.reference_logprobs(batch)[mask], whole[mask], rtol=1e-5, atol=1e-5)
