"""The GRPO job end to end through real Ray, vLLM (CPU) and DeepSpeed (gloo): a few steps on
the tiny model, metrics logged, then a rerun resumes from the checkpoint's step.

The tiny model cannot do math, so the verifier is a fixture that calls about half of any
model's responses right (by length parity): every phase of the step then sees mixed groups."""

import json

import pytest

from mathrl.metrics import read_metrics

pytestmark = pytest.mark.slow


def run_grpo(run_dir, model_dir, data, steps, reward=("reward.shaping.mode=verifier-only", "reward.model_path=null")):
    from launch.grpo import main

    return main(
        [
            "--config", "configs/grpo_tiny.yaml",
            f"policy_path={model_dir}",
            f"data.path={data}", "data.limit=64",
            f"eval.data.path={data}", "eval.data.limit=4", "eval.max_tokens=8",
            "verifier.verifier=tests.verifier_fixtures:even_length",
            "rollout.max_tokens=12", "rollout.engine.max_model_len=512",
            "batch.groups_per_step=2", "batch.problems_per_draw=3", "batch.max_draws=3",
            "batch.updates_per_step=2",
            "learner.optimizer.lr=1e-3",
            f"run.run_dir={run_dir}", f"run.steps={steps}", "run.save_every=1", "run.eval_every=0",
            "log_samples=1",
            *reward,
        ]
    )


def test_grpo_steps_log_checkpoint_and_resume(tmp_path, tiny_model_dir, shared_data):
    run_dir = tmp_path / "grpo"
    data = shared_data / "math500.jsonl"
    first = run_grpo(run_dir, tiny_model_dir, data, steps=2)
    assert first["step"] == 2 and (run_dir / "final" / "config.json").is_file()

    steps = [m for m in read_metrics(run_dir) if "groups/kept" in m]
    assert [m["step"] for m in steps] == [1, 2]
    for m in steps:
        assert m["groups/kept"] >= 1 and m["step/skipped"] == 0
        for key in ("learner/loss", "learner/clip_fraction", "learner/entropy", "learner/grad_norm",
                    "learner/rollout_logprob_diff", "reward/mean", "rollout/accuracy", "rollout/response_length",
                    "time/rollout", "time/verify", "time/learner", "time/weight_push"):
            assert key in m, key
        assert m["learner/optimizer_steps"] == 2
        # the engines sample in fp32 like the learner: their logprobs agree closely
        assert m["learner/rollout_logprob_diff"] < 1e-2
    evals = [m for m in read_metrics(run_dir) if "eval/accuracy" in m]
    assert [m["step"] for m in evals] == [0, 2]
    assert len((run_dir / "samples.jsonl").read_text().splitlines()) == 2

    # The resumed run also switches the reward model on (a fresh head on the tiny backbone):
    # the scorer actor's scores reach the shaped reward.
    from policy.loading import load_tokenizer
    from rewards.reward_model import RewardModel

    rm_dir = tmp_path / "rm"
    RewardModel.from_policy(tiny_model_dir, seed=1).save_pretrained(rm_dir, tokenizer=load_tokenizer(tiny_model_dir))
    second = run_grpo(run_dir, tiny_model_dir, data, steps=3,
                      reward=("reward.shaping.mode=rm+verifier", f"reward.model_path={rm_dir}", "reward.cpus=0"))
    assert second["step"] == 3
    steps = [m for m in read_metrics(run_dir) if "groups/kept" in m]
    assert [m["step"] for m in steps] == [1, 2, 3]  # continued from step 2, nothing redone
    assert "reward/rm_score" not in steps[1] and "reward/rm_score" in steps[2]
    # shaped rewards: correct samples in (0, 1), wrong in (-1, 0); not the 0/1 of verifier-only
    assert -1 < steps[2]["reward/mean"] < 1
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["step"] == 3


def test_offline_filter_keeps_problems_with_two_to_five_correct(tmp_path, tiny_model_dir, shared_data):
    from launch.filter_problems import main
    from mathdata.loading import load_problems

    out = tmp_path / "kept.jsonl"
    stats = main(
        [
            "--config", "configs/filter_tiny.yaml",
            f"model_path={tiny_model_dir}",
            f"data.path={shared_data / 'math500.jsonl'}", "data.limit=12",
            "verifier.verifier=tests.verifier_fixtures:even_length",
            "rollout.max_tokens=12", "rollout.engine.max_model_len=512", "chunk_size=5",
            f"output={out}",
        ]
    )
    by_count = {int(k): v for k, v in stats["problems_by_correct_count"].items()}
    assert sum(by_count.values()) == 12
    assert stats["kept"] == sum(by_count[k] for k in range(2, 6)) > 0
    kept = load_problems(out).problems
    source = {p.id: p for p in load_problems(shared_data / "math500.jsonl").problems}
    assert len(kept) == stats["kept"]
    assert all(source[p.id].answer == p.answer and source[p.id].problem == p.problem for p in kept)
