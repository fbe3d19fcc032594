"""GRPO training: the main job of mathrl.

On a cluster:   ray job submit --address http://HEAD:8265 -- python launch/grpo.py --config configs/grpo_tiny.yaml
On one machine: python launch/grpo.py --config configs/grpo_tiny.yaml [key.sub=value ...]
                (starts a local Ray bound to 127.0.0.1 and stops it at the end)

Everything that can be wrong with the config or the data fails here, before any actor starts.
The run directory holds the resolved config, metrics (JSONL + TensorBoard), held-out evals,
checkpoints (a rerun resumes from the newest complete one) and the final HF-format policy.
"""

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults(loopback="RAY_ADDRESS" not in os.environ)

from mathdata.loading import load_problems  # noqa: E402
from mathrl.config import ConfigError, parse_cli  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from policy.loading import check_model_dir  # noqa: E402
from rewards.verifier import BatchVerifier  # noqa: E402
from rl.config import GRPOConfig, RayConfig  # noqa: E402
from rl.controller import GRPOController  # noqa: E402


class ExitOnSigterm:
    """SIGTERM (`kill`, a scheduler, `ray job stop`) ends the job like Ctrl-C does: the
    `finally` in `main` stops the actors and a Ray this process started. Python's default
    would die on the spot and leave Ray's agents running.

    The handler raises SystemExit(128 + signum), the shell's code for death by that signal.
    When it fires inside a blocking `ray.get`, Ray replaces the exception with SystemExit(1),
    so the signal is also remembered and `exit_code` restores the code."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum, frame) -> None:
        self.signum = signum
        raise SystemExit(128 + signum)

    def exit_code(self, err: SystemExit) -> int | str | None:
        return 128 + self.signum if self.signum is not None else err.code


def connect_ray(cfg: RayConfig) -> bool:
    """Join the cluster named by `cfg.address` or RAY_ADDRESS (set by `ray job submit`), or
    start a local instance on `cfg.host`. Returns whether this process started it."""
    import ray

    address = cfg.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return False
    ray.init(
        address="local",
        num_cpus=cfg.num_cpus,
        include_dashboard=cfg.dashboard,
        dashboard_host=cfg.host,
        _node_ip_address=cfg.host,
        object_store_memory=cfg.object_store_mb * 2**20,
        log_to_driver=True,
    )
    return True


def check_actors_fit(cfg: GRPOConfig, available: dict[str, float]) -> None:
    """Fail now if the cluster cannot hold every actor at once: Ray would keep the last ones
    pending forever, and the job would hang at start-up."""
    demand = cfg.actor_demand()
    for resource, index, setting in (("CPU", 1, "cpus"), ("GPU", 2, "gpus")):
        need, have = sum(d[index] for d in demand.values()), available.get(resource, 0.0)
        if need > have + 1e-9:
            parts = ", ".join(f"{d[0]} {d[index]:g} ({key})" for key, d in demand.items() if d[index])
            raise ConfigError(
                "ray",
                f"the job's actors need {need:g} {resource}s ({parts}) and the Ray cluster has {have:g}: "
                f"the rest would wait forever. Lower their {setting} settings (fractions are fine: the phases "
                f"take turns), or give Ray more (ray.num_{setting}=... for a local run, `ray start --num-{setting}` "
                "on a cluster).",
            )


class RemoteScorer:
    """The reward model in its own Ray actor, behind the scorer interface the controller uses."""

    def __init__(self, model_path: str, cfg, prompt) -> None:
        from rewards.reward_model import remote_scorer

        self.actor = remote_scorer(model_path, cfg.cpus, cfg.gpus, batch_size=cfg.batch_size, prompt=prompt)

    def score_tokens(self, prompt_ids, response_ids) -> list[float]:
        import ray

        return ray.get(self.actor.score_tokens.remote(prompt_ids, response_ids))


def main(argv=None) -> dict:
    cfg = parse_cli(GRPOConfig, argv, default_config="configs/grpo_tiny.yaml")
    # Fail on bad data or paths now, not after minutes of actor start-up.
    problems = load_problems(cfg.data).problems
    eval_problems = load_problems(cfg.eval.data).problems if cfg.eval.data else []
    check_model_dir(cfg.policy_path)
    if cfg.reward.model_path:
        check_model_dir(cfg.reward.model_path)
    save_config(cfg, cfg.run.run_dir)

    import ray

    from rl.trainer import LearnerGroup
    from rollout.worker import RolloutWorkers

    started = connect_ray(cfg.ray)
    sigterm = ExitOnSigterm()
    signal.signal(signal.SIGTERM, sigterm)  # after ray.init, whose crash handler takes SIGTERM too
    rollout = learner = None
    try:
        try:
            check_actors_fit(cfg, ray.cluster_resources())
        except ConfigError as err:
            print(f"config error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        learner = LearnerGroup(cfg.policy_path, cfg.learner, cfg.policy_loss, cfg.learner_group)
        rollout = RolloutWorkers(cfg.policy_path, cfg.rollout, cfg.prompt)
        uses_rm = cfg.reward.shaping.mode != "verifier-only"
        scorer = RemoteScorer(cfg.reward.model_path, cfg.reward, cfg.prompt) if uses_rm else None
        with BatchVerifier(cfg.verifier) as verifier:
            controller = GRPOController(cfg, problems, rollout, verifier, learner, scorer, eval_problems)
            result = controller.train()
    except SystemExit as err:
        raise SystemExit(sigterm.exit_code(err)) from None
    finally:
        if rollout is not None:
            rollout.shutdown()
        if learner is not None:
            learner.shutdown()
        if started:
            ray.shutdown()
    summary = {"run_dir": cfg.run.run_dir, **result}
    (Path(cfg.run.run_dir) / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps({k: summary[k] for k in ("run_dir", "final", "step", "eval_accuracy")}, indent=2))
    return summary


if __name__ == "__main__":
    main()
