"""The config of each stage: what a `configs/<stage>_*.yaml` file holds.

Each stage config nests the components' own configs; `launch/<stage>.py` reads one with
`mathrl.config.parse_cli`. Stages are added here as the pipeline grows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mathdata.loading import ProblemFileConfig
from mathdata.prompts import PromptConfig
from mathdata.synthetic import SyntheticDataConfig
from mathrl.config import require
from policy.learner import LearnerConfig
from policy.lm_data import SFTDataConfig, StagedMixtureConfig
from policy.tiny_model import TinyModelConfig
from policy.tokenizer import TokenizerConfig
from policy.train_loop import RunConfig
from rewards.head_warmup import HeadWarmupConfig
from rewards.rm_data import RMDataConfig
from rewards.teacher import TeacherConfig
from rewards.verifier import VerifierConfig
from rl.best_of_n import ScorerConfig
from rl.rejection_sampling import RejectionSamplingConfig
from rl.selection import VoteWeight
from rollout.config import RolloutConfig


@dataclass(frozen=True)
class PrepareConfig:
    """Build the tiny CPU default: synthetic problems, a pretraining corpus, a tokenizer trained
    on that corpus, and a freshly initialised tiny Qwen2 model."""

    output_dir: str = "artifacts/tiny"
    data: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    corpus_docs: int = 20_000
    explanation_share: float = 0.3  # share of corpus documents that are lessons, not worked problems
    facts_share: float = 0.0  # share that are sheets of one-digit number facts (times tables)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    # Evaluation sets (JSONL/Parquet) whose near-duplicates are dropped from the training problems.
    decontaminate_against: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(bool(self.output_dir), "output_dir", "must name a directory")
        require(self.corpus_docs >= 1, "corpus_docs", f"must be >= 1, got {self.corpus_docs}")
        require(0 <= self.explanation_share <= 1, "explanation_share", f"must be in [0, 1], got {self.explanation_share}")
        require(
            0 <= self.facts_share <= 1 - self.explanation_share,
            "facts_share",
            f"must be in [0, 1 - explanation_share], got {self.facts_share}",
        )


@dataclass(frozen=True)
class BuildModelConfig:
    """A freshly initialised tiny model of another size for an existing tokenizer: the same data
    and vocabulary as a prepared pipeline, a different backbone."""

    tokenizer_path: str = "artifacts/tiny/model"  # any directory holding a tokenizer
    output_dir: str = ""  # written: the tokenizer + the new model, in Hugging Face format
    model: TinyModelConfig = field(default_factory=TinyModelConfig)

    def __post_init__(self) -> None:
        require(bool(self.output_dir), "output_dir", "must name the new model's directory, e.g. output_dir=artifacts/tiny25/model")


@dataclass(frozen=True)
class PretrainConfig:
    """Pretrain (or continue pretraining) a causal LM on a staged mixture of packed documents."""

    model_path: str = "artifacts/tiny/model"  # initial weights + tokenizer (any local HF directory)
    run: RunConfig = field(default_factory=lambda: RunConfig(run_dir="runs/pretrain"))
    data: StagedMixtureConfig = field(default_factory=StagedMixtureConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)

    def __post_init__(self) -> None:
        total = self.learner.schedule.total_steps or self.data.total_steps
        require(
            self.learner.schedule.warmup_steps <= total,
            "learner.schedule.warmup_steps",
            f"({self.learner.schedule.warmup_steps}) is longer than training ({total} steps)",
        )


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on worked solutions; loss on the assistant's tokens only."""

    model_path: str = "runs/pretrain/final"
    run: RunConfig = field(default_factory=lambda: RunConfig(run_dir="runs/sft"))
    data: SFTDataConfig = field(default_factory=SFTDataConfig)
    epochs: float = 1.0  # passes over the training conversations

    learner: LearnerConfig = field(default_factory=LearnerConfig)

    def __post_init__(self) -> None:
        require(self.epochs > 0, "epochs", f"must be > 0, got {self.epochs}")


@dataclass(frozen=True)
class EvalConfig:
    """Greedy accuracy of a policy on a problem set, with breakdowns by level/family/subject;
    with `samples` N > 1 also pass@k, maj@k and (with a reward model) rm@k for k = 1, 2, 4, ..., N."""

    model_path: str = "runs/sft_tiny/final"
    data: ProblemFileConfig = field(default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/test.jsonl"))
    prompt: PromptConfig = field(default_factory=PromptConfig)
    # The greedy pass. Its top_p, max_tokens, stop and seed also apply to the N samples.
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(n=1, temperature=0.0, max_tokens=384))
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    output_dir: str = "runs/eval_tiny"
    samples: int = 1  # N responses sampled per problem for pass@k / maj@k / rm@k; 1: greedy only
    sample_temperature: float = 1.0
    reward_model_path: str | None = None  # a reward model directory: adds rm@k and rm_vote@k
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    vote_weight: VoteWeight = "sigmoid"  # rm_vote sums sigmoid(score) per answer, or the raw scores
    chunk_size: int = 32  # problems per generate call; each chunk's records are on disk before the next starts
    resume: bool = True  # continue output_dir/responses.jsonl from an interrupted run; false: start over

    def __post_init__(self) -> None:
        require(self.rollout.n == 1, "rollout.n",
                f"greedy evaluation samples one response per problem, got {self.rollout.n} (for N samples set samples=N)")
        require(self.samples >= 1, "samples", f"must be >= 1, got {self.samples}")
        require(self.samples == 1 or self.sample_temperature > 0, "sample_temperature",
                f"must be > 0 with samples={self.samples}: at temperature 0 all N samples are the greedy response")
        require(self.reward_model_path is None or self.samples > 1, "reward_model_path",
                "reranks sampled responses: set samples to N > 1 (e.g. samples=8), or drop reward_model_path")
        require(self.chunk_size >= 1, "chunk_size", f"must be >= 1, got {self.chunk_size}")


@dataclass(frozen=True)
class RejectionSampleConfig:
    """Sample k responses per problem with a policy, keep verified-correct ones as a new SFT set."""

    model_path: str = "runs/sft_tiny/final"
    data: ProblemFileConfig = field(default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/train.jsonl", limit=2000))
    prompt: PromptConfig = field(default_factory=PromptConfig)
    sampling: RejectionSamplingConfig = field(default_factory=RejectionSamplingConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(n=8, temperature=1.0, max_tokens=384))
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    output: str = "runs/rejection_sampling_tiny/sft.jsonl"

    def __post_init__(self) -> None:
        require(self.rollout.n == self.sampling.k, "rollout.n", f"({self.rollout.n}) must equal sampling.k ({self.sampling.k})")


STAGES = {"prepare": PrepareConfig, "pretrain": PretrainConfig, "sft": SFTConfig, "evaluate": EvalConfig, "rejection": RejectionSampleConfig}


@dataclass(frozen=True)
class TrainRMConfig:
    """Train the reward model: sample n responses per problem with the policy, label them with the
    verifier, and fit the listwise ranking loss on the policy's backbone with a fresh MLP head."""

    model_path: str = "runs/sft_tiny/final"  # the policy: it samples the responses and gives the backbone
    run: RunConfig = field(default_factory=lambda: RunConfig(run_dir="runs/rm"))
    data: RMDataConfig = field(default_factory=RMDataConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(n=8, temperature=1.0, max_tokens=384))
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    epochs: float = 1.0  # passes over the kept training groups
    head_seed: int = 0  # the fresh head's initialisation
    head_warmup: HeadWarmupConfig = field(default_factory=HeadWarmupConfig)  # the head alone first, on the frozen backbone
    teacher: TeacherConfig = field(default_factory=TeacherConfig)  # model_path's own log-probs as a second ranking signal
    # learner.micro_batch_size counts problems: each brings its n responses into the micro-batch.
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(micro_batch_size=4))
    eval_batch_size: int = 32  # sequences per forward when scoring the held-out groups
    # Shift the final scores to mean 0 on the training responses: the ranking loss leaves their
    # level free, and GRPO's σ(coef·r) saturates when it drifts far from 0 (rewards.reward_model.center_scores).
    center_scores: bool = True

    def __post_init__(self) -> None:
        require(
            self.rollout.n >= 2,
            "rollout.n",
            f"the listwise loss ranks a problem's responses against each other: needs >= 2 (6-8 is usual), got {self.rollout.n}",
        )
        require(self.epochs > 0, "epochs", f"must be > 0, got {self.epochs}")
        require(self.eval_batch_size >= 1, "eval_batch_size", f"must be >= 1, got {self.eval_batch_size}")


STAGES["train_rm"] = TrainRMConfig


@dataclass(frozen=True)
class BestOfNConfig:
    """Best-of-N inference: sample N responses per problem and choose one answer by majority
    vote over equivalent answers and, with a reward model, by RM top-1 and RM-weighted vote."""

    model_path: str = "runs/sft_tiny/final"
    problem: str | None = None  # one problem given on the command line; when set, `data` is not read
    # Problems to answer; gold answers are optional (with them, each method's accuracy is reported).
    data: ProblemFileConfig = field(default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/test.jsonl", limit=20))
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(n=8, temperature=1.0, max_tokens=384))  # n is N
    verifier: VerifierConfig = field(default_factory=VerifierConfig)  # extracts answers and decides which are equal
    reward_model_path: str | None = None  # without one, only the majority vote
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    vote_weight: VoteWeight = "sigmoid"
    chunk_size: int = 32
    resume: bool = True
    output_dir: str = "runs/best_of_n_tiny"

    def __post_init__(self) -> None:
        require(self.problem is None or bool(self.problem.strip()), "problem", "is empty; give the problem text or leave it unset")
        require(self.rollout.n == 1 or self.rollout.temperature > 0, "rollout.temperature",
                f"must be > 0 to draw rollout.n={self.rollout.n} different samples (0 repeats the greedy response)")
        require(self.chunk_size >= 1, "chunk_size", f"must be >= 1, got {self.chunk_size}")


STAGES["best_of_n"] = BestOfNConfig


# The GRPO job's configs live beside its code (rl/config.py); registered here so every
# configs/<stage>_*.yaml has its stage.
from rl.config import GRPOConfig, OfflineFilterConfig  # noqa: E402

STAGES["grpo"] = GRPOConfig
STAGES["filter"] = OfflineFilterConfig
