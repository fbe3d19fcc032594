"""The reward model: head and pooling, save/load round trips, the scorer, and (slow) training
through the real DeepSpeed learner with an export that reloads to identical scores."""

import dataclasses
import json

import pytest
import torch

from mathdata.prompts import PromptConfig
from policy.loading import load_causal_lm, load_tokenizer
from rewards.reward_model import (
    RewardModel,
    RewardScorer,
    center_scores,
    last_token_index,
    load_reward_model,
    pad_right,
    score_sequences,
    with_end_token,
)
from rewards.rm_data import RMBatches, RMDataConfig, SampledGroup
from rollout.engine import encode_prompt

PROBLEMS = ["What is 2 + 3?", "Solve for x: 2x + 1 = 7.", "What is 12% of 50?", "Simplify 6/8."]
RESPONSES = [
    "2 + 3 = 5.\nThe answer is \\boxed{5}.",
    "2x = 6, so x = 3. The answer is \\boxed{3}.",
    "12% of 50 = 50 × 12 ÷ 100 = 6.\nThe answer is \\boxed{6}.",
    "6/8 = 3/4",
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return load_tokenizer(tiny_model_dir)


@pytest.fixture(scope="module")
def rm(tiny_model_dir):
    return RewardModel.from_policy(tiny_model_dir, seed=0).eval()


@pytest.fixture(scope="module")
def rm_dir(rm, tokenizer, tmp_path_factory):
    return rm.save_pretrained(tmp_path_factory.mktemp("rm") / "model", tokenizer=tokenizer)


def sequences(tokenizer, count=5):
    texts = [f"{p} {r}" * (1 + i % 3) for i, (p, r) in enumerate(zip(PROBLEMS * 2, RESPONSES * 2))][:count]
    return [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]


def scores_of(model, seqs, pad_id):
    ids, mask = pad_right(seqs, pad_id)
    with torch.no_grad():
        return model(ids, mask)


def test_from_policy_keeps_the_backbone_and_seeds_a_fresh_head(tiny_model_dir, rm, tokenizer):
    causal = load_causal_lm(tiny_model_dir)
    policy_weights = causal.model.state_dict()
    assert set(rm.model.state_dict()) == set(policy_weights)
    for name, value in rm.model.state_dict().items():
        assert torch.equal(value, policy_weights[name]), name
    assert not any("lm_head" in name for name, _ in rm.named_parameters())

    h = causal.config.hidden_size
    first, relu, out = rm.score
    assert isinstance(relu, torch.nn.ReLU)
    assert first.weight.shape == (h, h) and out.weight.shape == (1, h)
    again = RewardModel.from_policy(tiny_model_dir, seed=0)
    other = RewardModel.from_policy(tiny_model_dir, seed=1)
    for a, b, c in zip(rm.score.parameters(), again.score.parameters(), other.score.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(rm.score[0].weight, other.score[0].weight)

    assert rm.eos_token_id == tokenizer.eos_token_id
    assert set(rm.end_token_ids) >= set(causal.generation_config.eos_token_id)


def test_forward_scores_the_hidden_state_of_the_last_token(rm, tokenizer):
    seq = sequences(tokenizer, 1)[0]
    ids = torch.tensor([seq])
    with torch.no_grad():
        hidden = rm.model(input_ids=ids).last_hidden_state[0, -1]
        expected = rm.score(hidden)[0]
        got = rm(ids, torch.ones_like(ids))
    assert got.shape == (1,) and got.dtype == torch.float32
    torch.testing.assert_close(got[0], expected)


def test_last_token_index():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 1]])
    assert last_token_index(mask).tolist() == [2, 0, 4, 4]


def test_scores_do_not_depend_on_padding(rm, tokenizer):
    seqs = sequences(tokenizer)
    pad = tokenizer.pad_token_id
    alone = torch.stack([scores_of(rm, [s], pad)[0] for s in seqs])
    batched = scores_of(rm, seqs, pad)
    ids, mask = pad_right(seqs, pad)
    extra = 9  # more padding than any batch needs
    ids = torch.cat([ids, torch.full((len(seqs), extra), pad)], dim=1)
    mask = torch.cat([mask, torch.zeros(len(seqs), extra, dtype=mask.dtype)], dim=1)
    with torch.no_grad():
        wide = rm(ids, mask)
    torch.testing.assert_close(batched, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(wide, alone, rtol=1e-5, atol=1e-5)
    assert len(set(alone.tolist())) == len(seqs)  # different sequences, different scores


def test_with_end_token_appends_only_when_missing():
    assert with_end_token([5, 6], end_ids=(2, 0), eos_id=2) == [5, 6, 2]
    assert with_end_token([5, 2], end_ids=(2, 0), eos_id=2) == [5, 2]
    assert with_end_token([5, 0], end_ids=(2, 0), eos_id=2) == [5, 0]  # a sampled <|endoftext|> also ends it
    assert with_end_token([], end_ids=(2,), eos_id=2) == [2]


def test_save_and_load_round_trip_gives_identical_scores(rm, rm_dir, tokenizer):
    files = {p.name for p in rm_dir.iterdir()}
    assert {"model.safetensors", "config.json", "reward_model.json", "tokenizer.json"} <= files
    assert not any(p.name.endswith(".partial") for p in rm_dir.parent.iterdir())
    meta = json.loads((rm_dir / "reward_model.json").read_text())
    assert meta["head"] == "linear-relu-linear" and meta["pooling"] == "last_non_pad_token"
    assert meta["eos_token_id"] == rm.eos_token_id and tuple(meta["end_token_ids"]) == rm.end_token_ids
    config = json.loads((rm_dir / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForRewardModel"] and len(config["id2label"]) == 1  # num_labels = 1

    loaded = load_reward_model(rm_dir)
    seqs = sequences(tokenizer)
    assert torch.equal(scores_of(loaded, seqs, tokenizer.pad_token_id), scores_of(rm, seqs, tokenizer.pad_token_id))
    assert loaded.end_token_ids == rm.end_token_ids

    bf16 = load_reward_model(rm_dir, dtype="bfloat16")
    assert next(bf16.parameters()).dtype == torch.bfloat16
    torch.testing.assert_close(scores_of(bf16, seqs, tokenizer.pad_token_id), scores_of(rm, seqs, tokenizer.pad_token_id), rtol=0.1, atol=0.05)


def test_centering_moves_every_score_by_the_same_constant(tiny_model_dir, tokenizer, tmp_path):
    """After centering, the given responses score 0 on average and every other score moved by
    the same amount, so rankings and margins are untouched; the weights keep their dtype."""
    drifted = RewardModel.from_policy(tiny_model_dir, seed=3, dtype="bfloat16")
    with torch.no_grad():
        drifted.score[-1].bias += 5.0  # where training may leave the level
    model_dir = drifted.save_pretrained(tmp_path / "rm", tokenizer=tokenizer)
    prompts = [encode_prompt(tokenizer, p, PromptConfig()) for p in PROBLEMS]
    responses = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in RESPONSES]
    others = [tokenizer(r[::-1], add_special_tokens=False)["input_ids"] for r in RESPONSES]
    before = RewardScorer(str(model_dir))
    centered_before, others_before = before.score_tokens(prompts, responses), before.score_tokens(prompts, others)

    mean = center_scores(model_dir, prompts, responses)

    assert mean == pytest.approx(sum(centered_before) / len(centered_before), rel=1e-6) and mean > 4
    after = RewardScorer(str(model_dir))
    assert load_reward_model(model_dir, dtype="bfloat16").score[-1].bias.dtype == torch.bfloat16
    assert json.loads((model_dir / "config.json").read_text())["dtype"] == "bfloat16"
    # the bias is stored in bf16, so the shift is exact only to its rounding (~|mean|/256)
    tolerance = abs(mean) / 128 + 1e-6
    assert abs(sum(after.score_tokens(prompts, responses))) / len(responses) < tolerance
    shift = [b - a for b, a in zip(others_before, after.score_tokens(prompts, others))]
    assert max(shift) - min(shift) < 1e-4 and shift[0] == pytest.approx(mean, abs=tolerance)
    with pytest.raises(ValueError, match="at least one response"):
        center_scores(model_dir, [], [])


def test_sharded_save_and_a_given_state_dict_load_back(rm, tokenizer, tmp_path):
    state = {k: v.clone() for k, v in rm.state_dict().items()}
    state["score.2.bias"] += 1.5  # as if the learner handed over newer weights than the module's
    out = rm.save_pretrained(tmp_path / "sharded", state_dict=state, safe_serialization=True, max_shard_size="1MB")
    assert (out / "model.safetensors.index.json").is_file() and len(list(out.glob("model-*.safetensors"))) > 1
    loaded = load_reward_model(out)
    seqs = sequences(tokenizer)
    torch.testing.assert_close(scores_of(loaded, seqs, tokenizer.pad_token_id), scores_of(rm, seqs, tokenizer.pad_token_id) + 1.5)
    with pytest.raises(ValueError, match="safetensors"):
        rm.save_pretrained(tmp_path / "bin", safe_serialization=False)


def test_wrong_directories_fail_with_a_clear_message(tiny_model_dir, rm_dir):
    with pytest.raises(ValueError, match="not a reward model"):
        load_reward_model(tiny_model_dir)
    with pytest.raises(ValueError, match="already a reward model"):
        RewardModel.from_policy(rm_dir)


def test_scorer_text_and_token_paths_agree(rm_dir, tokenizer):
    scorer = RewardScorer(str(rm_dir), device="cpu", batch_size=3)
    problems = PROBLEMS + PROBLEMS[:2]
    responses = RESPONSES + ["I do not know.", "x = 3"]
    by_text = scorer.score(problems, responses)

    prompt_ids = [encode_prompt(tokenizer, p, PromptConfig()) for p in problems]
    response_ids = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in responses]
    assert scorer.score_tokens(prompt_ids, response_ids) == by_text
    # a sampled response carries its stop token: same sequence, same score
    eos = tokenizer.eos_token_id
    assert scorer.score_tokens(prompt_ids, [ids + [eos] for ids in response_ids]) == by_text

    one_by_one = RewardScorer(str(rm_dir), device="cpu", batch_size=1).score(problems, responses)
    assert one_by_one == pytest.approx(by_text, abs=1e-5)
    assert scorer.score([], []) == []
    with pytest.raises(ValueError, match="2 problems but 1 responses"):
        scorer.score(problems[:2], responses[:1])


def test_sorted_batches_return_scores_in_input_order(rm, tokenizer):
    seqs = sequences(tokenizer, 7)
    pad = tokenizer.pad_token_id
    sorted_scores = score_sequences(rm, seqs, pad, batch_size=3, device="cpu")
    plain = score_sequences(rm, seqs, pad, batch_size=3, device="cpu", sort_by_length=False)
    assert sorted_scores == pytest.approx(plain, abs=1e-5)
    assert sorted_scores == pytest.approx(scores_of(rm, seqs, pad).tolist(), abs=1e-5)


def test_training_batches_and_the_scorer_build_the_same_sequences(rm, rm_dir, tokenizer):
    """What the RM is trained on (RMBatches rows) is what the scorer scores."""
    prompt = encode_prompt(tokenizer, PROBLEMS[0], PromptConfig())
    responses = [tokenizer(r, add_special_tokens=False)["input_ids"] for r in RESPONSES]
    responses[1] = responses[1] + [tokenizer.eos_token_id]  # one already closed, as vLLM returns it
    group = SampledGroup("p0", PROBLEMS[0], "5", prompt, RESPONSES, responses, [True, False, True, False], ["stop"] * 4)
    batch = RMBatches([group], rm.sequence, tokenizer.pad_token_id, RMDataConfig(batch_size=1)).batch(0)
    with torch.no_grad():
        trained_on = rm(batch["input_ids"][0], batch["attention_mask"][0])
    scored = RewardScorer(str(rm_dir), device="cpu").score_tokens([prompt] * 4, responses)
    assert scored == pytest.approx(trained_on.tolist(), abs=1e-5)


@pytest.mark.slow
def test_ray_actor_scores_like_the_plain_class(rm_dir):
    import ray

    from rewards.reward_model import remote_scorer

    ray.init(num_cpus=1, address="local", include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        actor = remote_scorer(str(rm_dir), num_cpus=1, device="cpu", batch_size=2)
        remote = ray.get(actor.score.remote(PROBLEMS, RESPONSES))
    finally:
        ray.shutdown()
    local = RewardScorer(str(rm_dir), device="cpu", batch_size=2).score(PROBLEMS, RESPONSES)
    # the actor runs on its one CPU's thread, this process on however many torch has here:
    # the same sums in another order, so equal to float32 rounding, not bit for bit
    assert remote == pytest.approx(local, rel=1e-5, abs=1e-6)


# --- through the DeepSpeed learner --------------------------------------------------------


def marked_groups(tokenizer, num_groups=8, n=6):
    """Groups whose correct responses end in '\\boxed{7}' and wrong ones in '\\boxed{9}', with
    random filler before: a pattern the tiny model can learn in a few steps."""
    g = torch.Generator().manual_seed(0)
    groups = []
    for i in range(num_groups):
        prompt = encode_prompt(tokenizer, f"What is {i} + 7 - {i}?", PromptConfig())
        correct = [j < 1 + i % (n - 1) for j in range(n)]
        responses = []
        for ok in correct:
            filler = torch.randint(5, len(tokenizer), (int(torch.randint(3, 20, (1,), generator=g)),), generator=g).tolist()
            responses.append(filler + tokenizer(f" The answer is \\boxed{{{7 if ok else 9}}}.", add_special_tokens=False)["input_ids"])
        groups.append(SampledGroup(f"p{i}", "", "7", prompt, [""] * n, responses, correct, ["stop"] * n))
    return groups


def test_head_warm_up_fits_the_head_alone(tiny_model_dir, tokenizer):
    """The head learns to rank on the frozen backbone's features; the backbone is untouched,
    and the same seed gives the same head."""
    from rewards.head_warmup import HeadWarmupConfig, last_token_features, warm_up_head
    from rewards.ranking import ranking_metrics

    groups = marked_groups(tokenizer)
    data = RMBatches(groups, RewardModel.from_policy(tiny_model_dir).sequence, tokenizer.pad_token_id, RMDataConfig())
    flat = [seq for seqs, _ in data.groups for seq in seqs]

    def pairwise(model):
        with torch.no_grad():
            scores = model.score(last_token_features(model, flat, tokenizer.pad_token_id, batch_size=7)).squeeze(-1).tolist()
        grouped, start = [], 0
        for seqs, _ in data.groups:
            grouped.append(scores[start : start + len(seqs)])
            start += len(seqs)
        return ranking_metrics(grouped, [verdicts for _, verdicts in data.groups])["pairwise_accuracy"]

    heads = []
    for _ in range(2):
        model = RewardModel.from_policy(tiny_model_dir, seed=0)
        backbone = {k: v.clone() for k, v in model.model.state_dict().items()}
        before = pairwise(model)
        losses = warm_up_head(model, data.groups, tokenizer.pad_token_id, HeadWarmupConfig(epochs=60, lr=1e-2, batch_size=4))
        assert all(torch.equal(v, backbone[k]) for k, v in model.model.state_dict().items())
        heads.append({k: v.clone() for k, v in model.score.state_dict().items()})
    assert len(losses) == 60 and losses[-1] < 0.5 * losses[0], losses
    assert pairwise(model) > max(0.9, before), before
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])
    # the features are what the model's forward reads
    ids, mask = pad_right(flat[:5], tokenizer.pad_token_id)
    with torch.no_grad():
        torch.testing.assert_close(model.score(last_token_features(model, flat[:5], tokenizer.pad_token_id, 2)).squeeze(-1), model(ids, mask))


def test_teacher_log_probs_are_the_policys_own_one_response_at_a_time(tiny_model_dir, tokenizer):
    """Batched, length-sorted and padded, each response's log-prob is what the policy gives
    it alone; the mean is the sum over the response's tokens (the prompt's left out)."""
    from policy.losses import token_logprobs
    from rewards.teacher import response_logprobs, within_group_spread

    groups = marked_groups(tokenizer, num_groups=3, n=4)
    means, sums = response_logprobs(str(tiny_model_dir), groups, batch_size=5, device="cpu")
    policy = load_causal_lm(tiny_model_dir).eval()
    for group, group_means, group_sums in zip(groups, means, sums):
        for response, mean, total in zip(group.response_ids, group_means, group_sums):
            ids = torch.tensor([group.prompt_ids + response])
            with torch.no_grad():
                alone = token_logprobs(policy, ids)[0, len(group.prompt_ids) - 1 :]
            assert total == pytest.approx(float(alone.sum()), rel=1e-4, abs=1e-4)
            assert mean == pytest.approx(total / len(response), rel=1e-5)
    assert within_group_spread([[1.0, 3.0], [5.0, 5.0, 8.0, 2.0]]) == pytest.approx((20 / 6) ** 0.5)  # squares 1, 1 and 0, 0, 9, 9
    with pytest.raises(ValueError, match="same value"):
        within_group_spread([[1.0, 1.0], [2.0, 2.0]])


@pytest.mark.slow
def test_rm_trains_through_the_learner_and_exports_identical_scores(tiny_model_dir, tokenizer, tmp_path):
    from policy.learner import Learner, LearnerConfig, OptimizerConfig
    from policy.schedules import ScheduleConfig
    from rewards.ranking import ListwiseRankingLoss

    groups = marked_groups(tokenizer)
    cfg = LearnerConfig(
        dtype="float32", optimizer=OptimizerConfig(lr=1e-3, weight_decay=0.0), schedule=ScheduleConfig(kind="constant")
    )
    runs = {}
    for micro in (4, 1):  # 2 x 4 groups vs 8 x 1: the same optimizer steps
        model = RewardModel.from_policy(tiny_model_dir, seed=0)
        batch = RMBatches(groups, model.sequence, tokenizer.pad_token_id, RMDataConfig(batch_size=8)).batch(0)
        learner = Learner(model, dataclasses.replace(cfg, micro_batch_size=micro), tokenizer=tokenizer)
        runs[micro] = [learner.train_batch(batch, ListwiseRankingLoss()) for _ in range(3 if micro == 1 else 8)]
        if micro == 4:
            final = learner.export_hf(tmp_path / "final")
            # every response of every group, in group order
            ids, mask = pad_right([model.sequence(g.prompt_ids, r) for g in groups for r in g.response_ids], tokenizer.pad_token_id)
            with torch.no_grad():
                trained = learner.module(ids, mask)
        learner.close()

    losses = [m["loss"] for m in runs[4]]
    assert runs[4][0]["units"] == 8
    assert losses[-1] < 0.5 * losses[0], losses
    assert runs[4][-1]["pairwise_accuracy"] > runs[4][0]["pairwise_accuracy"]
    assert [m["loss"] for m in runs[1]] == pytest.approx(losses[:3], rel=1e-4)

    assert (final / "reward_model.json").is_file() and (final / "tokenizer.json").is_file()
    reloaded = load_reward_model(final)
    with torch.no_grad():
        assert torch.equal(reloaded(ids, mask), trained)
    scorer = RewardScorer(str(final), device="cpu", batch_size=5)
    flat = scorer.score_tokens([g.prompt_ids for g in groups for _ in g.response_ids], [r for g in groups for r in g.response_ids])
    assert flat == pytest.approx(trained.tolist(), abs=1e-5)


@pytest.mark.slow
def test_train_rm_entry_point_trains_resumes_and_reports(tiny_model_dir, tokenizer, tmp_path):
    """launch/train_rm.py end to end on samples written beforehand (the vLLM sampling phase is
    the rollout engine's, tested there): train, export, evaluate, then resume without resampling."""
    import subprocess
    import sys
    from pathlib import Path

    from mathdata.io import write_jsonl

    root = Path(__file__).resolve().parents[1]
    samples = tmp_path / "samples"
    groups = marked_groups(tokenizer, num_groups=12)
    write_jsonl((g.to_dict() for g in groups[:8]), samples / "eval.jsonl")
    write_jsonl((g.to_dict() for g in groups[8:] + groups[:8]), samples / "train.jsonl")
    all_correct = [dataclasses.replace(g, id=f"{g.id}-ok", correct=[True] * len(g.correct)) for g in groups[8:11]]
    write_jsonl((g.to_dict() for g in all_correct), samples / "train_unmixed.jsonl")  # for the teacher term only
    run_dir = tmp_path / "rm"
    args = [
        sys.executable, str(root / "launch" / "train_rm.py"), "--config", str(root / "configs" / "train_rm_tiny.yaml"),
        f"model_path={tiny_model_dir}", f"run.run_dir={run_dir}", f"data.samples_dir={samples}", "data.batch_size=4",
        "epochs=2", "run.log_every=1", "learner.dtype=float32", "learner.micro_batch_size=2", "learner.schedule.warmup_steps=1",
        "learner.optimizer.lr=1e-3", "teacher.coef=1.0", "teacher.unmixed_groups=true",
    ]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "15 training problems" in out.stdout and "6 steps" in out.stdout  # 12 mixed + 3 all correct
    assert f"teacher: {tiny_model_dir}'s mean token log-prob, weight 1.0" in out.stdout

    results = json.loads((run_dir / "results.json").read_text())
    assert results["steps"] == 6 and results["eval"]["problems"] == 8
    assert 0 <= results["eval"]["pairwise_accuracy"] <= 1
    assert results["eval"]["mean_accuracy"] == pytest.approx(sum(sum(g.correct) / 6 for g in groups[:8]) / 8)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if "loss" in m] == [1, 2, 3, 4, 5, 6]
    assert all(m["loss"] == pytest.approx(m["listwise_loss"] + m["teacher_loss"], rel=1e-4) for m in metrics if "loss" in m)
    assert metrics[-1]["eval/pairwise_accuracy"] == results["eval"]["pairwise_accuracy"]
    assert (run_dir / "config.yaml").is_file() and load_reward_model(run_dir / "final") is not None
    assert "scores centred" in out.stdout  # the level the ranking loss leaves free is moved to 0
    train = groups[8:] + groups[:8] + all_correct  # centred on every training response
    final_scores = RewardScorer(str(run_dir / "final")).score_tokens(
        [g.prompt_ids for g in train for _ in g.response_ids], [ids for g in train for ids in g.response_ids]
    )
    assert abs(sum(final_scores) / len(final_scores)) < 1e-3

    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "using the samples in" in again.stdout and "resumed from" in again.stdout
