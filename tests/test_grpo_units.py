"""GRPO's building blocks without Ray or vLLM: the learner batch, the loss, the problem
sampler, and the controller's step logic driven by in-process fakes."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mathrl.config import ConfigError, from_dict
from rl.algorithms import PolicyLossConfig
from rl.config import GRPOConfig
from rl.controller import GRPOController, TrainingDiverged
from rl.policy_update import GRPOLoss, by_length, training_batch, trim_padding
from rl.sampler import ProblemSampler
from tests.grpo_fakes import FakeLearner, FakeRollout, FakeScorer, FakeVerifier, grpo_cfg, problems_with_correct_counts

# --- the learner batch ---------------------------------------------------------------------


def test_training_batch_puts_response_tokens_and_logprobs_in_the_target_frame():
    prompts = [[5, 6, 7], [8]]
    responses = [[1, 2], [3, 4, 9]]
    old = [[-0.1, -0.2], [-0.3, -0.4, -0.5]]
    batch = training_batch(prompts, responses, old, [1.0, -1.0], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 1, 2], [8, 3, 4, 9, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]
    targets = batch["input_ids"][:, 1:]
    mask = batch["response_mask"].bool()
    # exactly the response tokens are targets, in order, with their own logprobs beside them
    for row in range(2):
        assert targets[row][mask[row]].tolist() == responses[row]
        assert batch["old_logprobs"][row][mask[row]].tolist() == pytest.approx(old[row])
    assert batch["old_logprobs"][~mask].abs().sum() == 0


def test_training_batch_rejects_logprobs_that_do_not_match_the_tokens():
    with pytest.raises(ValueError, match="sequence 0: 2 response tokens but 1 logprobs"):
        training_batch([[1]], [[2, 3]], [[-0.1]], [0.0], pad_id=0)


@pytest.fixture(scope="module")
def small_lm():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, intermediate_size=64, max_position_embeddings=64)
    return Qwen2ForCausalLM(cfg).eval()


def random_groups(seed: int, rows: int = 6):
    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(1, 50, (int(torch.randint(1, 6, (1,), generator=g)),), generator=g).tolist() for _ in range(rows)]
    responses = [torch.randint(1, 50, (int(torch.randint(1, 8, (1,), generator=g)),), generator=g).tolist() for _ in range(rows)]
    old = [(-torch.rand(len(r), generator=g) * 3).tolist() for r in responses]
    adv = torch.randn(rows, generator=g).tolist()
    return prompts, responses, old, adv


def assert_parts_train_like_the_whole(model, loss_fn, batch, parts):
    """Summed losses over `parts` divided by their summed units, as the learner does, give the
    loss and gradient of `batch` taken whole."""

    def loss_and_grads(pieces):
        model.zero_grad()
        loss = sum(loss_fn(model, p)[0] for p in pieces) / sum(loss_fn.units(p) for p in pieces)
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters()]

    whole, grads_whole = loss_and_grads([batch])
    split, grads_split = loss_and_grads(parts)
    assert split == pytest.approx(whole, rel=1e-5)
    for a, b in zip(grads_whole, grads_split):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean"])
def test_grpo_loss_sums_split_over_micro_batches(small_lm, aggregation):
    """The learner divides summed losses by the global unit count: cutting the batch into
    micro-batches must give the same total loss and the same gradient."""
    loss_fn = GRPOLoss(PolicyLossConfig(aggregation=aggregation, clip_low=0.1, clip_high=0.3))
    batch = training_batch(*random_groups(0), pad_id=0)
    halves = [{k: v[:2] for k, v in batch.items()}, {k: v[2:] for k, v in batch.items()}]
    assert_parts_train_like_the_whole(small_lm, loss_fn, batch, halves)


def test_length_sorted_trimmed_micro_batches_give_the_same_loss_and_gradient(small_lm):
    """The trainer sorts a mini-batch's rows by length and the loss cuts each micro-batch to
    its longest row: a cheaper forward pass, the same loss and gradient as the whole batch."""
    loss_fn = GRPOLoss(PolicyLossConfig(clip_low=0.1, clip_high=0.3))
    batch = training_batch(*random_groups(2, rows=8), pad_id=0)
    lengths = batch["attention_mask"].sum(dim=1)
    ordered = by_length(batch)
    assert ordered["attention_mask"].sum(dim=1).tolist() == sorted(lengths.tolist(), reverse=True)
    parts = [{k: v[i : i + 3] for k, v in ordered.items()} for i in range(0, 8, 3)]
    widths = [trim_padding(p)["input_ids"].shape[1] for p in parts]
    assert widths == [int(p["attention_mask"].sum(dim=1).max()) for p in parts] and widths[-1] < widths[0]
    for p in parts:
        trimmed = trim_padding(p)
        assert {k: v.shape[1] for k, v in trimmed.items() if v.dim() == 2} == {
            "input_ids": trimmed["input_ids"].shape[1], "attention_mask": trimmed["input_ids"].shape[1],
            "response_mask": trimmed["input_ids"].shape[1] - 1, "old_logprobs": trimmed["input_ids"].shape[1] - 1}
        assert trimmed["response_mask"].sum() == p["response_mask"].sum()  # only padding was cut
    assert_parts_train_like_the_whole(small_lm, loss_fn, batch, parts)


def test_grpo_loss_ignores_padding_and_prompt(small_lm):
    """Extra right padding changes nothing; on-policy (old = current logprobs) the ratio is 1,
    so the loss is −Σ A·1 over response tokens and nothing is clipped."""
    prompts, responses, _, adv = random_groups(1, rows=3)
    loss_fn = GRPOLoss(PolicyLossConfig())
    probe = training_batch(prompts, responses, [[0.0] * len(r) for r in responses], adv, pad_id=0)
    with torch.no_grad():
        from rl.policy_update import logits_and_logprobs

        current = logits_and_logprobs(small_lm, probe)[1]
    old = [current[i][probe["response_mask"][i].bool()].tolist() for i in range(3)]
    batch = training_batch(prompts, responses, old, adv, pad_id=0)
    loss, metrics = loss_fn(small_lm, batch)
    expected = -sum(a * len(r) for a, r in zip(adv, responses))
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert metrics["clip_fraction"].item() == 0
    assert metrics["logprob_diff"].item() == pytest.approx(0.0, abs=1e-4)

    padded = {k: torch.nn.functional.pad(v, (0, 3)) if v.dim() == 2 else v for k, v in batch.items()}
    assert loss_fn(small_lm, padded)[0].item() == pytest.approx(loss.item(), rel=1e-5)


def test_loss_at_a_temperature_is_the_loss_of_the_model_with_logits_divided_by_it(small_lm):
    """Sampling at temperature T draws from softmax(logits / T): the loss at T must be the T = 1
    loss of the same model with its output layer divided by T (same log-probs, ratios, entropy)."""
    import copy

    temperature = 0.6
    tempered = copy.deepcopy(small_lm)
    with torch.no_grad():
        tempered.lm_head.weight.div_(temperature)
    batch = training_batch(*random_groups(3), pad_id=0)
    loss, metrics = GRPOLoss(PolicyLossConfig(clip_low=0.1, clip_high=0.3, temperature=temperature))(small_lm, batch)
    expected, expected_metrics = GRPOLoss(PolicyLossConfig(clip_low=0.1, clip_high=0.3))(tempered, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    for name in ("entropy", "logprob_diff", "clip_fraction"):
        assert metrics[name].item() == pytest.approx(expected_metrics[name].item(), rel=1e-5), name
    untempered = GRPOLoss(PolicyLossConfig(clip_low=0.1, clip_high=0.3))(small_lm, batch)
    assert untempered[1]["entropy"].item() > metrics["entropy"].item()  # T < 1 sharpens


# --- the problem sampler -------------------------------------------------------------------


def test_sampler_covers_each_epoch_once_and_resumes_in_place():
    items = list(range(10))
    sampler = ProblemSampler(items, seed=3)
    first = sampler.draw(4) + sampler.draw(6)
    assert sorted(first) == items  # one epoch: every item once
    second = sampler.draw(10)
    assert sorted(second) == items and second != first  # reshuffled

    uninterrupted = ProblemSampler(items, seed=3)
    uninterrupted.draw(7)
    expected = uninterrupted.draw(9)
    resumed = ProblemSampler(items, seed=3, position=7)
    assert resumed.draw(9) == expected
    # a problem's sampling seed belongs to its position in the stream, not to the draw it is in
    _, seeds = ProblemSampler(items, seed=3).draw_with_seeds(16)
    resumed = ProblemSampler(items, seed=3, position=7)
    assert resumed.draw_with_seeds(4)[1] + resumed.draw_with_seeds(5)[1] == seeds[7:16]
    assert ProblemSampler(items, seed=4).draw(10) != ProblemSampler(items, seed=3).draw(10)


# --- the controller, with fakes (tests/grpo_fakes.py) ---------------------------------------


def test_step_keeps_only_groups_with_two_to_five_correct_and_pushes_weights(tmp_path):
    counts = [0, 1, 2, 5, 6, 8, 3, 4]  # correct samples of 8, per problem
    rollout, learner = FakeRollout(), FakeLearner()
    ctl = GRPOController(grpo_cfg(tmp_path, groups_per_step=8, problems_per_draw=8, max_draws=1,
                                  updates_per_step=6, epochs_per_step=2),
                         problems_with_correct_counts(counts), rollout, FakeVerifier(), learner)
    metrics = ctl.train_step()
    assert metrics["groups/kept"] == 4 and metrics["groups/drawn"] == 8
    assert learner.passes == [(4, 2)]  # no more mini-batches than groups; every pass as configured
    assert metrics["rollout/accuracy"] == pytest.approx(sum(counts) / 64)
    batch = learner.batches[0]
    assert batch["input_ids"].shape[0] == 4 * 8
    # verifier-only reward: the correct samples of each group get positive advantages
    adv = batch["advantages"].view(4, 8)
    assert sorted((adv > 0).sum(dim=1).tolist()) == [2, 3, 4, 5]
    assert rollout.loaded == 1  # new weights pushed in the same step


def test_filter_judges_verifier_correctness_not_the_shaped_reward(tmp_path):
    """With the reward model on, rewards differ inside all-correct groups too; the filter
    must still drop them (8 of 8 correct) and keep the 3-of-8 group."""
    cfg = grpo_cfg(tmp_path, groups_per_step=2, problems_per_draw=2, max_draws=1)
    cfg = replace(cfg, reward=replace(cfg.reward, shaping=replace(cfg.reward.shaping, mode="rm+verifier"), model_path="rm"))
    learner = FakeLearner()
    ctl = GRPOController(cfg, problems_with_correct_counts([8, 3]), FakeRollout(), FakeVerifier(), learner, FakeScorer())
    metrics = ctl.train_step()
    assert metrics["groups/kept"] == 1
    adv = learner.batches[0]["advantages"]
    assert (adv[:3] > adv[3:].max()).all()  # every correct sample outranks every wrong one


def test_dynamic_sampling_draws_until_enough_groups_or_the_budget(tmp_path):
    # draw 1 finds one usable group (count 3), draw 2 another (count 2): stop there
    counts = [0, 8, 3, 0, 2, 8, 0, 4, 5]
    rollout = FakeRollout()
    ctl = GRPOController(grpo_cfg(tmp_path, groups_per_step=2, problems_per_draw=3, max_draws=3),
                         problems_with_correct_counts(counts), rollout, FakeVerifier(), FakeLearner())
    ctl.sampler = ProblemSampler(ctl.sampler.items, seed=0)
    ctl.sampler._orders = {0: list(range(9))}  # draw in file order
    metrics = ctl.train_step()
    assert metrics["groups/draws"] == 2 and metrics["groups/drawn"] == 6 and metrics["groups/kept"] == 2

    # nothing usable anywhere: the budget of draws is spent, the step is skipped, nothing pushed
    rollout = FakeRollout()
    ctl = GRPOController(grpo_cfg(tmp_path, max_draws=3), problems_with_correct_counts([0, 8] * 10),
                         rollout, FakeVerifier(), FakeLearner())
    metrics = ctl.train_step()
    assert metrics["groups/draws"] == 3 and metrics["step/skipped"] == 1 and rollout.loaded == 0


def test_non_finite_rewards_skip_the_update_and_repeated_ones_stop_the_job(tmp_path):
    cfg = grpo_cfg(tmp_path)
    cfg = replace(cfg, reward=replace(cfg.reward, shaping=replace(cfg.reward.shaping, mode="rm+verifier"), model_path="rm"))
    rollout, learner = FakeRollout(), FakeLearner()
    ctl = GRPOController(cfg, problems_with_correct_counts([3] * 40), rollout, FakeVerifier(), learner, FakeScorer(float("nan")))
    metrics = ctl.train_step()
    assert metrics["step/skipped_nonfinite"] == 1 and learner.batches == [] and rollout.loaded == 0
    ctl.train_step()
    with pytest.raises(TrainingDiverged, match="3 consecutive steps had non-finite rewards"):
        ctl.train_step()


def test_resume_restores_step_and_problem_position(tmp_path):
    problems = problems_with_correct_counts([3, 4, 2, 5] * 10)
    learner = FakeLearner()
    first = GRPOController(grpo_cfg(tmp_path), problems, FakeRollout(), FakeVerifier(), learner)
    first.train_step()
    first.train_step()
    first.save_checkpoint()
    uninterrupted_next = FakeRollout()
    first.rollout = uninterrupted_next
    first.train_step()

    rollout = FakeRollout()
    resumed = GRPOController(grpo_cfg(tmp_path), problems, rollout, FakeVerifier(), learner)
    learner.saved = learner.saved[:1]
    assert resumed.resume() and resumed.step == 2
    assert rollout.loaded == 1  # the engines got the checkpoint's weights
    resumed.train_step()
    assert rollout.generated == uninterrupted_next.generated
    assert rollout.seeds == uninterrupted_next.seeds  # and samples them with the same seeds
    assert len(set(rollout.seeds[0])) == len(rollout.seeds[0])  # one stream per problem


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="filter.high"):
        from_dict(GRPOConfig, {"filter": {"low": 2, "high": 9}, "reward": {"shaping": {"mode": "verifier-only"}}})
    with pytest.raises(ConfigError, match="reward.model_path"):
        from_dict(GRPOConfig, {"reward": {"shaping": {"mode": "rm+verifier"}}})
    with pytest.raises(ConfigError, match="rollout.n"):
        from_dict(GRPOConfig, {"rollout": {"n": 1}, "filter": {"low": 0, "high": 1}, "reward": {"shaping": {"mode": "verifier-only"}}})
    with pytest.raises(ConfigError, match="loss.policy.temperature.*rollout.temperature"):
        from_dict(GRPOConfig, {"rollout": {"temperature": 0.7}, "loss": {"policy": {"temperature": 0.5}}})


def test_the_learner_takes_log_probs_at_the_rollout_temperature():
    cfg = from_dict(GRPOConfig, {"rollout": {"temperature": 0.7}, "loss": {"policy": {"clip_high": 0.28}}})
    assert cfg.policy_loss == PolicyLossConfig(clip_high=0.28, temperature=0.7)
    assert from_dict(GRPOConfig, {}).policy_loss.temperature == 1.0


def test_a_cluster_too_small_for_the_actors_is_a_config_error_naming_them():
    from launch.grpo import check_actors_fit

    cfg = from_dict(GRPOConfig, {"rollout": {"num_workers": 2, "cpus_per_worker": 1},
                                 "learner_group": {"num_processes": 1, "cpus_per_process": 1},
                                 "reward": {"shaping": {"mode": "rm+verifier"}, "model_path": "rm", "cpus": 1}})
    assert {k: v[1:] for k, v in cfg.actor_demand().items()} == {"rollout": (2, 0), "learner_group": (1, 0), "reward": (1, 0)}
    check_actors_fit(cfg, {"CPU": 4.0})
    with pytest.raises(ConfigError, match=r"need 4 CPUs \(2 rollout workers 2 \(rollout\), 1 learner processes 1 "
                                          r"\(learner_group\), the reward model 1 \(reward\)\) and the Ray cluster has 2"):
        check_actors_fit(cfg, {"CPU": 2.0})
    gpu = from_dict(GRPOConfig, {"rollout": {"gpus_per_worker": 1}, "learner_group": {"gpus_per_process": 1}})
    with pytest.raises(ConfigError, match="need 2 GPUs"):
        check_actors_fit(gpu, {"CPU": 16.0, "GPU": 1.0})


def test_sigterm_exit_code_survives_ray_replacing_the_exception():
    """The handler's SystemExit(143) becomes SystemExit(1) when it fires inside a blocking
    `ray.get` (seen in CI); the job still exits 143. Without a SIGTERM, codes pass through."""
    import os
    import signal

    from launch.grpo import ExitOnSigterm

    handler = ExitOnSigterm()
    assert handler.exit_code(SystemExit(2)) == 2
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(SystemExit) as raised:
            os.kill(os.getpid(), signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert raised.value.code == 128 + signal.SIGTERM
    assert handler.exit_code(SystemExit(1)) == 128 + signal.SIGTERM
