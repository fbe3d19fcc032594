"""The GRPO job's config: what `configs/grpo_*.yaml` holds and `launch/grpo.py` reads.

Every knob of one step lives here, grouped by the phase that reads it; placement (how many
rollout workers, learner processes and CPUs/GPUs each gets) sits in `rollout` and `learner_group`.
Validation runs before any actor starts, and names the key that is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from mathdata.loading import ProblemFileConfig
from mathdata.prompts import PromptConfig
from mathrl.config import require
from policy.learner import LearnerConfig, OptimizerConfig
from policy.schedules import ScheduleConfig
from rewards.shaping import ShapingConfig
from rewards.verifier import VerifierConfig
from rl.algorithms import PolicyLossConfig
from rollout.config import RolloutConfig


@dataclass(frozen=True)
class GroupFilterConfig:
    """Keep a problem's group when low..high of its n samples are verified correct."""

    low: int = 2
    high: int = 5

    def __post_init__(self) -> None:
        require(self.low >= 0, "low", f"must be >= 0, got {self.low}")
        require(self.high >= self.low, "high", f"must be >= low ({self.low}), got {self.high}")


@dataclass(frozen=True)
class StepBatchConfig:
    """How many groups one step trains on, and how hard it tries to find them.

    Each draw samples `problems_per_draw` new problems; draws repeat (dynamic sampling) until
    `groups_per_step` groups survive the filter or `max_draws` draws are spent. Surplus groups
    are dropped; a step that found fewer trains on what it found."""

    groups_per_step: int = 16
    problems_per_draw: int = 32
    max_draws: int = 4
    updates_per_step: int = 1  # optimizer steps per pass over the rollout batch: the groups are cut into this many mini-batches
    # passes over the rollout batch (PPO epochs): rollout costs most of a step, learning from each
    # sample twice costs one more learner phase. Ratios stay against the rollout's log-probs.
    epochs_per_step: int = 1

    def __post_init__(self) -> None:
        for key in ("groups_per_step", "problems_per_draw", "max_draws", "updates_per_step", "epochs_per_step"):
            require(getattr(self, key) >= 1, key, f"must be >= 1, got {getattr(self, key)}")
        require(
            self.updates_per_step <= self.groups_per_step,
            "updates_per_step",
            f"({self.updates_per_step}) cannot exceed groups_per_step ({self.groups_per_step}): each mini-batch needs a group",
        )


@dataclass(frozen=True)
class LearnerGroupConfig:
    """The DeepSpeed data-parallel group: `num_processes` Ray actors, each with these resources."""

    num_processes: int = 1
    cpus_per_process: float = 1.0
    gpus_per_process: float = 0.0
    torch_threads: int = 0  # CPU only: intra-op threads per learner process; 0 = torch's default

    def __post_init__(self) -> None:
        require(self.num_processes >= 1, "num_processes", f"must be >= 1, got {self.num_processes}")
        require(self.cpus_per_process >= 0, "cpus_per_process", f"must be >= 0, got {self.cpus_per_process}")
        require(self.gpus_per_process >= 0, "gpus_per_process", f"must be >= 0, got {self.gpus_per_process}")
        require(self.torch_threads >= 0, "torch_threads", f"must be >= 0, got {self.torch_threads}")


@dataclass(frozen=True)
class RewardConfig:
    """How a response's reward is made: verifier verdict, optionally the reward model's score."""

    shaping: ShapingConfig = field(default_factory=ShapingConfig)
    model_path: str | None = None  # the reward model; required unless shaping.mode is verifier-only
    batch_size: int = 32
    cpus: float = 0.0  # Ray resources of the scorer actor (it runs between the other phases)
    gpus: float = 0.0

    def __post_init__(self) -> None:
        require(
            self.shaping.mode == "verifier-only" or bool(self.model_path),
            "model_path",
            "shaping mode 'rm+verifier' needs a reward model directory; set reward.model_path or reward.shaping.mode=verifier-only",
        )
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class GRPOLossConfig:
    policy: PolicyLossConfig = field(default_factory=PolicyLossConfig)
    normalize_std: bool = True  # False: Dr. GRPO (advantages are only centred)


@dataclass(frozen=True)
class GRPORunConfig:
    run_dir: str = "runs/grpo"
    steps: int = 100
    log_every: int = 1
    save_every: int = 10  # steps between checkpoints; 0 = only the final one
    keep_checkpoints: int = 2
    eval_every: int = 0  # steps between held-out evaluations; 0 = only before and after training
    resume: bool = True  # continue from the newest complete checkpoint in run_dir
    seed: int = 0

    def __post_init__(self) -> None:
        require(bool(self.run_dir), "run_dir", "must name a directory")
        require(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        require(self.log_every >= 1, "log_every", f"must be >= 1, got {self.log_every}")
        for key in ("save_every", "eval_every"):
            require(getattr(self, key) >= 0, key, f"must be >= 0 (0 = only at the end), got {getattr(self, key)}")
        require(self.keep_checkpoints >= 1, "keep_checkpoints", f"must be >= 1, got {self.keep_checkpoints}")


@dataclass(frozen=True)
class EvalSetConfig:
    """The held-out set evaluated greedily during training (through the rollout workers)."""

    data: ProblemFileConfig | None = None  # None: no evaluation
    max_tokens: int = 384


@dataclass(frozen=True)
class RayConfig:
    """Where the driver finds Ray: under `ray job submit` (RAY_ADDRESS set) it joins that
    cluster; otherwise it starts a local one bound to `host`."""

    address: str | None = None  # None: RAY_ADDRESS if set, else start a local instance
    host: str = "127.0.0.1"  # node IP and dashboard host of a locally started instance
    num_cpus: int | None = None  # of a local instance; None: Ray counts the machine's cores
    dashboard: bool = False
    object_store_mb: int = 512


@dataclass(frozen=True)
class GRPOConfig:
    policy_path: str = "runs/sft_tiny/final"  # the starting policy (and the KL reference)
    data: ProblemFileConfig = field(default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/rl.jsonl"))
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    reward: RewardConfig = field(default_factory=lambda: RewardConfig(shaping=ShapingConfig(mode="verifier-only")))
    filter: GroupFilterConfig = field(default_factory=GroupFilterConfig)
    batch: StepBatchConfig = field(default_factory=StepBatchConfig)
    loss: GRPOLossConfig = field(default_factory=GRPOLossConfig)
    learner: LearnerConfig = field(
        default_factory=lambda: LearnerConfig(
            dtype="float32",
            optimizer=OptimizerConfig(lr=1e-5, weight_decay=0.0),
            schedule=ScheduleConfig(kind="constant", warmup_steps=0),
        )
    )
    learner_group: LearnerGroupConfig = field(default_factory=LearnerGroupConfig)
    eval: EvalSetConfig = field(default_factory=EvalSetConfig)
    run: GRPORunConfig = field(default_factory=GRPORunConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    log_samples: int = 2  # responses written to samples.jsonl per step (for reading what the policy says)
    max_bad_steps: int = 3  # consecutive steps with a non-finite loss/reward before the job stops

    @property
    def policy_loss(self) -> PolicyLossConfig:
        """The learner's loss settings: `loss.policy` at the rollout's temperature, so that the
        learner's log-probs and the rollout's (old) ones are of the same distribution."""
        return replace(self.loss.policy, temperature=self.rollout.temperature)

    def __post_init__(self) -> None:
        require(
            self.filter.high <= self.rollout.n,
            "filter.high",
            f"({self.filter.high}) cannot exceed rollout.n ({self.rollout.n}) samples per problem",
        )
        require(self.rollout.n >= 2, "rollout.n", f"GRPO compares samples of a problem: needs >= 2, got {self.rollout.n}")
        require(self.rollout.temperature > 0, "rollout.temperature", "GRPO samples: must be > 0 (0 is greedy)")
        require(
            self.loss.policy.temperature in (1.0, self.rollout.temperature),
            "loss.policy.temperature",
            f"is taken from rollout.temperature ({self.rollout.temperature}); drop this key and set that one",
        )
        require(
            self.batch.groups_per_step >= self.learner_group.num_processes,
            "batch.groups_per_step",
            f"({self.batch.groups_per_step}) must be >= learner_group.num_processes ({self.learner_group.num_processes}): every rank needs a group",
        )
        require(self.log_samples >= 0, "log_samples", f"must be >= 0, got {self.log_samples}")
        require(self.max_bad_steps >= 1, "max_bad_steps", f"must be >= 1, got {self.max_bad_steps}")

    def actor_demand(self) -> dict[str, tuple[str, float, float]]:
        """What each group of the job's actors asks Ray for, all alive at once:
        {config key: (what, CPUs, GPUs)}. The verifier pool runs in the driver."""
        rollout, learners = self.rollout, self.learner_group
        demand = {
            "rollout": (f"{rollout.num_workers} rollout workers", rollout.num_workers * rollout.cpus_per_worker,
                        rollout.num_workers * rollout.gpus_per_worker),
            "learner_group": (f"{learners.num_processes} learner processes", learners.num_processes * learners.cpus_per_process,
                              learners.num_processes * learners.gpus_per_process),
        }
        if self.reward.shaping.mode != "verifier-only":
            demand["reward"] = ("the reward model", self.reward.cpus, self.reward.gpus)
        return demand


@dataclass(frozen=True)
class OfflineFilterConfig:
    """Sample n per problem with the starting policy once, keep the problems whose groups pass
    the filter (Qwen2.5-Math's offline selection of GRPO training problems)."""

    model_path: str = "runs/sft_tiny/final"
    data: ProblemFileConfig = field(default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/rl.jsonl"))
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    filter: GroupFilterConfig = field(default_factory=GroupFilterConfig)
    chunk_size: int = 256  # problems per generate call (bounds memory; progress is per chunk)
    output: str = "runs/filter_tiny/train_2to5.jsonl"

    def __post_init__(self) -> None:
        require(
            self.filter.high <= self.rollout.n,
            "filter.high",
            f"({self.filter.high}) cannot exceed rollout.n ({self.rollout.n}) samples per problem",
        )
        require(self.chunk_size >= 1, "chunk_size", f"must be >= 1, got {self.chunk_size}")
        require(bool(self.output), "output", "must name the .jsonl file to write")
