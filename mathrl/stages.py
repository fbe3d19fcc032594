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
from rewards.verifier import VerifierConfig
from rl.rejection_sampling import RejectionSamplingConfig
from rollout.config import RolloutConfig


@dataclass(frozen=True)
class PrepareConfig:
    """Build the tiny CPU default: synthetic problems, a pretraining corpus, a tokenizer trained
    on that corpus, and a freshly initialised tiny Qwen2 model."""

    output_dir: str = "artifacts/tiny"
    data: SyntheticDataConfig = field(default_factory=SyntheticDataConfig)
    corpus_docs: int = 20_000
    explanation_share: float = 0.3  # share of corpus documents that are lessons, not worked problems
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: TinyModelConfig = field(default_factory=TinyModelConfig)
    # Evaluation sets (JSONL/Parquet) whose near-duplicates are dropped from the training problems.
    decontaminate_against: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        require(bool(self.output_dir), "output_dir", "must name a directory")
        require(self.corpus_docs >= 1, "corpus_docs", f"must be >= 1, got {self.corpus_docs}")
        require(0 <= self.explanation_share <= 1, "explanation_share", f"must be in [0, 1], got {self.explanation_share}")


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
    """Greedy accuracy of a policy on a problem set, with breakdowns by level/family/subject."""

    model_path: str = "runs/sft_tiny/final"
    data: ProblemFileConfig = field(default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/test.jsonl"))
    prompt: PromptConfig = field(default_factory=PromptConfig)
    rollout: RolloutConfig = field(default_factory=lambda: RolloutConfig(n=1, temperature=0.0, max_tokens=384))
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    output_dir: str = "runs/eval_tiny"

    def __post_init__(self) -> None:
        require(self.rollout.n == 1, "rollout.n", f"greedy evaluation samples one response per problem, got {self.rollout.n}")


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
