"""The GRPO job end to end through real Ray, vLLM (CPU) and DeepSpeed (gloo): a few steps on
the tiny model, metrics logged, then a rerun resumes from the checkpoint's step. On the way,
a rollout worker's process is killed with SIGKILL in the middle of a step (the job restarts
it and retries its shard), every socket the job's processes listen on is checked to be on
the loopback interface (Ray with its dashboard and job server, vLLM, gloo), and the resumed
run, started as a command, is ended with SIGTERM (it stops everything it started). The
resumed run doubles as the SIGTERM drill because each job start costs the suite most of a
minute.

The tiny model cannot do math, so the verifier is a fixture that calls about half of any
model's responses right (by length parity): every phase of the step then sees mixed groups."""

import json
import os
import signal

import psutil
import pytest

from mathrl.metrics import read_metrics
from tests.sockets import exposed_listeners

pytestmark = pytest.mark.slow


def grpo_args(run_dir, model_dir, data, steps, reward=("reward.shaping.mode=verifier-only", "reward.model_path=null"),
              extra=()):
    return [
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
        *extra,
    ]


def run_grpo(run_dir, model_dir, data, steps, **kwargs):
    from launch.grpo import main

    return main(grpo_args(run_dir, model_dir, data, steps, **kwargs))


@pytest.fixture
def faults(monkeypatch):
    """At the job's third rollout call (the first is the step-0 eval, so this is a training
    step's draw), record the sockets listened on, then SIGKILL rollout worker 0's process and
    wait until it is gone: the call then meets a dead worker."""
    from rollout.worker import RolloutWorkers

    seen = {"calls": 0, "killed": None, "engine_processes": [], "exposed": None}
    generate = RolloutWorkers.generate

    def generate_with_faults(self, prompts, **kwargs):
        import ray

        seen["calls"] += 1
        if seen["calls"] == 3:
            seen["exposed"] = exposed_listeners()
            worker = psutil.Process(ray.get(self.actors[0].__ray_call__.remote(lambda actor: os.getpid())))
            seen["engine_processes"] = worker.children(recursive=True)  # vLLM's engine core
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            seen["killed"] = worker
        return generate(self, prompts, **kwargs)

    monkeypatch.setattr(RolloutWorkers, "generate", generate_with_faults)
    return seen


def test_grpo_steps_log_checkpoint_and_resume(tmp_path, tiny_model_dir, shared_data, faults):
    run_dir = tmp_path / "grpo"
    data = shared_data / "math500.jsonl"
    first = run_grpo(run_dir, tiny_model_dir, data, steps=2, extra=("ray.dashboard=true",))
    assert first["step"] == 2 and (run_dir / "final" / "config.json").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["step"] == 2
    assert faults["killed"] is not None and not faults["killed"].is_running()
    # nothing of the killed worker lives on (its engine core would hold its memory)
    assert faults["engine_processes"] and not any(p.is_running() for p in faults["engine_processes"])
    assert faults["exposed"] == []  # Ray, its dashboard and job server, vLLM, gloo: loopback only

    steps = [m for m in read_metrics(run_dir) if "groups/kept" in m]
    assert [m["step"] for m in steps] == [1, 2]
    # The killed worker's shard was run again on a restarted worker, and the step says so.
    assert sum(m["rollout/retries"] for m in steps) == 1
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
    # the scorer actor's scores reach the shaped reward. It runs as a command, and once its
    # first new step is logged it gets SIGTERM.
    from policy.loading import load_tokenizer
    from rewards.reward_model import RewardModel

    rm_dir = tmp_path / "rm"
    RewardModel.from_policy(tiny_model_dir, seed=1).save_pretrained(rm_dir, tokenizer=load_tokenizer(tiny_model_dir))
    resumed = grpo_args(run_dir, tiny_model_dir, data, steps=100,
                        reward=("reward.shaping.mode=rm+verifier", f"reward.model_path={rm_dir}", "reward.cpus=0"))
    stop_with_sigterm_after_step(resumed, run_dir, step=3, log=tmp_path / "resumed.log")

    steps = [m for m in read_metrics(run_dir) if "groups/kept" in m]
    # continued from step 2, nothing redone (a step may have finished before the signal landed)
    assert [m["step"] for m in steps][:3] == [1, 2, 3] and len({m["step"] for m in steps}) == len(steps)
    assert "reward/rm_score" not in steps[1] and "reward/rm_score" in steps[2]
    # shaped rewards: correct samples in (0, 1), wrong in (-1, 0); not the 0/1 of verifier-only
    assert -1 < steps[2]["reward/mean"] < 1


def step_logged(metrics, step):
    """Whether the job has logged training step `step` (its last line may be half-written)."""
    for line in metrics.read_text().splitlines() if metrics.is_file() else []:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row["step"] == step and "groups/kept" in row:
            return True
    return False


def stop_with_sigterm_after_step(args, run_dir, step, log):
    """Run `launch/grpo.py args` as a command until `step` is logged, then send SIGTERM, as
    `kill`, a scheduler or `ray job stop` does: the driver must stop its actors and the local
    Ray it started, as on Ctrl-C, and exit 143, instead of dying and leaving Ray running."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with log.open("w") as stderr:  # the child keeps its own copy of the descriptor
        job = subprocess.Popen([sys.executable, "launch/grpo.py", *args], cwd=root, stdout=subprocess.DEVNULL,
                               stderr=stderr, start_new_session=True)
    started = []
    try:
        deadline = time.monotonic() + 300
        while not step_logged(run_dir / "metrics.jsonl", step):
            assert job.poll() is None and time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(1)
        started = psutil.Process(job.pid).children(recursive=True)  # Ray's GCS, raylet, agents, actors, vLLM
        assert len(started) >= 4
        job.send_signal(signal.SIGTERM)
        code = job.wait(timeout=120)
        assert code == 128 + signal.SIGTERM, log.read_text()[-4000:]
        _, alive = psutil.wait_procs(started, timeout=60)
        assert alive == []
    finally:  # whatever the outcome, leave nothing running
        if job.poll() is None:
            job.kill()
        for proc in started:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass


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
