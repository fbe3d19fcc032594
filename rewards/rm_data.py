"""Reward-model data: the policy's own samples, labelled by the verifier, grouped per problem.

    train, held_out = split_problems(problems, cfg.eval_problems, cfg.seed)
    stats = build_rm_samples(train, held_out, engine, verifier, n, cfg, out_dir)   # JSONL files
    data  = RMBatches(read_groups(out_dir / "train.jsonl"), model.sequence, pad_id, cfg)
    batch = data.batch(step)                                                       # [G, n, T]

For every problem the current policy samples n responses (one vLLM call per chunk of
problems); the verifier labels each. Training keeps only the problems with at least one
correct and one wrong response (the others have no pair to rank). The held-out problems are
split off *before* sampling, by problem, and kept whole, all-correct and all-wrong groups
included, so best-of-n accuracy on them is measured against every problem, not only the
ones where a choice exists.

Each JSONL row is one problem: id, problem, gold, prompt_ids (chat template applied, as the
engine encoded it), responses (text), response_ids (the sampled tokens, stop token included
when one was sampled), correct, finish_reasons. Training and scoring use the token ids, the
same ids GRPO's scorer receives.

Batches are a function of the step (reshuffled per epoch from (seed, epoch)), like the SFT
data, so a resumed run replays the same batches. A batch row is a whole group, so the
learner's micro-batches (cut along dim 0) never split a problem's responses.

No vLLM, Ray or DeepSpeed import: the engine and verifier are passed in.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from mathdata.io import write_jsonl
from mathdata.loading import ProblemFileConfig
from mathdata.problems import Problem
from mathrl.config import require
from mathrl.seeding import derive_seed, problem_seeds
from policy.losses import TensorBatch
from rewards.reward_model import pad_right

TRAIN_FILE = "train.jsonl"
EVAL_FILE = "eval.jsonl"
UNMIXED_FILE = "train_unmixed.jsonl"  # training groups that are all correct or all wrong: no ranking pair, but a teacher ranks them
STATS_FILE = "stats.json"


@dataclass(frozen=True)
class RMDataConfig:
    problems: ProblemFileConfig = field(
        default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/train.jsonl", limit=2000)
    )
    eval_problems: int = 200  # held out by problem before sampling; 0 = no evaluation
    samples_dir: str | None = None  # reuse train.jsonl/eval.jsonl sampled earlier; None: <run_dir>/samples
    chunk_size: int = 256  # problems per generate call
    batch_size: int = 16  # problems (groups of n responses) per optimizer step
    max_len: int = 768  # prompt + response tokens; longer responses are left out of training
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.eval_problems >= 0, "eval_problems", f"must be >= 0, got {self.eval_problems}")
        require(self.chunk_size >= 1, "chunk_size", f"must be >= 1, got {self.chunk_size}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.max_len >= 16, "max_len", f"must be >= 16, got {self.max_len}")


@dataclass
class SampledGroup:
    """The n sampled responses of one problem and their verdicts."""

    id: str
    problem: str
    gold: str
    prompt_ids: list[int]  # [P]
    responses: list[str]  # [n]
    response_ids: list[list[int]]  # [n][T_i]
    correct: list[bool]  # [n]
    finish_reasons: list[str]  # [n] "stop" or "length"

    @property
    def mixed(self) -> bool:
        """At least one correct and one wrong response: the group has pairs to rank."""
        return any(self.correct) and not all(self.correct)

    def to_dict(self) -> dict:
        return asdict(self)


class Sampler(Protocol):  # rollout.engine.RolloutEngine
    def generate(self, prompts: Sequence[Problem], n: int | None = None, seeds: Sequence[int] | None = None): ...


class Verifier(Protocol):  # rewards.verifier.BatchVerifier
    def check(self, responses: Sequence[str], golds: Sequence[str]) -> list: ...


class TokenScorer(Protocol):  # rewards.reward_model.RewardScorer
    def score_tokens(self, prompt_ids: Sequence[Sequence[int]], response_ids: Sequence[Sequence[int]]) -> list[float]: ...


def split_problems(problems: Sequence[Problem], eval_problems: int, seed: int) -> tuple[list[Problem], list[Problem]]:
    """(train, held out): a seeded shuffle, the first `eval_problems` held out."""
    if eval_problems >= len(problems):
        raise ValueError(f"data.eval_problems ({eval_problems}) leaves no training problem out of {len(problems)}")
    order = list(range(len(problems)))
    random.Random(derive_seed("rm-split", seed)).shuffle(order)
    held_out = [problems[i] for i in order[:eval_problems]]
    train = [problems[i] for i in order[eval_problems:]]
    return train, held_out


def sample_groups(
    problems: Sequence[Problem],
    engine: Sampler,
    verifier: Verifier,
    n: int,
    chunk_size: int = 256,
    log: Callable[[str], None] = print,
    seed: int = 0,
) -> list[SampledGroup]:
    """n responses per problem from `engine`, each labelled by `verifier`. Each problem is
    sampled with its own seed, from `seed` and its id, so the samples do not depend on the
    chunking or on what the engine sampled before (the same samples in every run)."""
    groups: list[SampledGroup] = []
    for start in range(0, len(problems), chunk_size):
        chunk = list(problems[start : start + chunk_size])
        # prompt-major: rows i*n .. i*n+n-1 answer chunk[i]
        rollouts = engine.generate(chunk, n=n, seeds=problem_seeds(seed, chunk))
        verdicts = verifier.check(rollouts.texts, [p.answer for p in chunk for _ in range(n)])
        for i, problem in enumerate(chunk):
            rows = range(i * n, (i + 1) * n)
            groups.append(
                SampledGroup(
                    id=problem.id,
                    problem=problem.problem,
                    gold=problem.answer,
                    prompt_ids=list(rollouts.prompt_ids[rows[0]]),
                    responses=[rollouts.texts[r] for r in rows],
                    response_ids=[list(rollouts.response_ids[r]) for r in rows],
                    correct=[bool(verdicts[r].correct) for r in rows],
                    finish_reasons=[rollouts.finish_reasons[r] for r in rows],
                )
            )
        log(f"sampled {len(groups)}/{len(problems)} problems x {n}")
    return groups


def group_stats(groups: Sequence[SampledGroup]) -> dict[str, float]:
    samples = sum(len(g.correct) for g in groups)
    return {
        "problems": float(len(groups)),
        "samples": float(samples),
        "sample_accuracy": sum(sum(g.correct) for g in groups) / max(1, samples),
        "truncated": sum(r == "length" for g in groups for r in g.finish_reasons) / max(1, samples),
        "mixed": float(sum(g.mixed for g in groups)),
        "all_correct": float(sum(all(g.correct) for g in groups)),
        "all_wrong": float(sum(not any(g.correct) for g in groups)),
    }


def build_rm_samples(
    train_problems: Sequence[Problem],
    eval_problems: Sequence[Problem],
    engine: Sampler,
    verifier: Verifier,
    n: int,
    cfg: RMDataConfig,
    out_dir: str | Path,
    log: Callable[[str], None] = print,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Sample and label both splits (`seed`: the sampling seed, see `sample_groups`); write the
    mixed training groups to train.jsonl, the other training groups to train_unmixed.jsonl,
    every held-out group to eval.jsonl, and the counts to stats.json. Returns the counts."""
    out_dir = Path(out_dir)
    train = sample_groups(train_problems, engine, verifier, n, cfg.chunk_size, log, seed)
    held_out = sample_groups(eval_problems, engine, verifier, n, cfg.chunk_size, log, seed) if eval_problems else []
    kept = [g for g in train if g.mixed]
    stats = {"train": {**group_stats(train), "kept": float(len(kept))}, "eval": group_stats(held_out)}
    write_jsonl((g.to_dict() for g in held_out), out_dir / EVAL_FILE)
    write_jsonl((g.to_dict() for g in train if not g.mixed), out_dir / UNMIXED_FILE)
    # train.jsonl last: its presence marks the samples as complete (see `samples_complete`).
    (out_dir / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")
    write_jsonl((g.to_dict() for g in kept), out_dir / TRAIN_FILE)
    return stats


def samples_complete(out_dir: str | Path) -> bool:
    return (Path(out_dir) / TRAIN_FILE).is_file()


def read_groups(path: str | Path) -> list[SampledGroup]:
    """Groups from a JSONL file written by `build_rm_samples`."""
    path = Path(path)
    groups = []
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                group = SampledGroup(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as err:
                raise ValueError(f"{path}:line {line_no}: not a sampled group ({err})") from None
            if not (len(group.responses) == len(group.response_ids) == len(group.correct) == len(group.finish_reasons)):
                raise ValueError(f"{path}:line {line_no}: responses, response_ids, correct and finish_reasons differ in length")
            groups.append(group)
    return groups


def regroup(flat: Sequence[float], sizes: Sequence[int]) -> list[list[float]]:
    """Cut a flat list back into consecutive groups of the given sizes."""
    out, start = [], 0
    for size in sizes:
        out.append(list(flat[start : start + size]))
        start += size
    return out


def score_groups(scorer: TokenScorer, groups: Sequence[SampledGroup]) -> list[list[float]]:
    """The scorer's score for every response, per group (one flat batch, cut back)."""
    flat = scorer.score_tokens(
        [g.prompt_ids for g in groups for _ in g.response_ids], [ids for g in groups for ids in g.response_ids]
    )
    return regroup(flat, [len(g.response_ids) for g in groups])


def collate_groups(
    groups: Sequence[tuple[list[list[int]], list[bool]]], pad_id: int, teacher: Sequence[Sequence[float]] | None = None
) -> TensorBatch:
    """(token sequences, verdicts) per group -> a batch for `ListwiseRankingLoss`:
    input_ids / attention_mask [G, n, T] (right-padded), correct / response_mask [G, n], and
    with `teacher` (one value per response) teacher [G, n]; n is the largest group, T the
    longest sequence."""
    n = max(len(seqs) for seqs, _ in groups)
    flat = [seq for seqs, _ in groups for seq in seqs]
    width = max(len(seq) for seq in flat)
    input_ids = torch.full((len(groups), n, width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(groups), n, width), dtype=torch.long)
    correct = torch.zeros((len(groups), n), dtype=torch.bool)
    response_mask = torch.zeros((len(groups), n), dtype=torch.bool)
    for g, (seqs, verdicts) in enumerate(groups):
        ids, mask = pad_right(seqs, pad_id)
        input_ids[g, : len(seqs), : ids.shape[1]] = ids
        attention_mask[g, : len(seqs), : mask.shape[1]] = mask
        correct[g, : len(seqs)] = torch.tensor(verdicts, dtype=torch.bool)
        response_mask[g, : len(seqs)] = True
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "correct": correct, "response_mask": response_mask}
    if teacher is not None:
        batch["teacher"] = torch.zeros((len(groups), n), dtype=torch.float32)
        for g, values in enumerate(teacher):
            batch["teacher"][g, : len(values)] = torch.tensor(list(values), dtype=torch.float32)
    return batch


class RMBatches:
    """Epochs over the training groups, `cfg.batch_size` groups per step.

    `sequence(prompt_ids, response_ids)` builds what the model scores (`RewardModel.sequence`).
    Responses longer than `cfg.max_len` are left out (counted); a group that then has no
    (correct, wrong) pair is dropped. `teacher` (one value per sampled response, per group,
    e.g. `rewards.teacher.response_logprobs`) rides along into the batches as `teacher`; with
    it, groups without a pair but with >= 2 responses are kept too (only the teacher ranks
    them; `ListwiseRankingLoss` counts them when it has a teacher term)."""

    def __init__(
        self,
        groups: Sequence[SampledGroup],
        sequence: Callable[[list[int], list[int]], list[int]],
        pad_id: int,
        cfg: RMDataConfig,
        teacher: Sequence[Sequence[float]] | None = None,
    ):
        self.cfg = cfg
        self.pad_id = pad_id
        self.groups: list[tuple[list[list[int]], list[bool]]] = []
        self.teacher: list[list[float]] | None = None if teacher is None else []
        self.dropped_responses = 0
        self.dropped_groups = 0
        if teacher is not None and [len(v) for v in teacher] != [len(g.response_ids) for g in groups]:
            raise ValueError("teacher: one value per sampled response of every group expected")
        for index, group in enumerate(groups):
            sequences = [sequence(group.prompt_ids, ids) for ids in group.response_ids]
            kept = [i for i, seq in enumerate(sequences) if len(seq) <= cfg.max_len]
            self.dropped_responses += len(sequences) - len(kept)
            verdicts = [group.correct[i] for i in kept]
            mixed = any(verdicts) and not all(verdicts)
            if mixed or (self.teacher is not None and len(kept) >= 2):
                self.groups.append(([sequences[i] for i in kept], verdicts))
                if self.teacher is not None:
                    self.teacher.append([teacher[index][i] for i in kept])
            else:
                self.dropped_groups += 1
        if not self.groups:
            raise ValueError(
                f"no training group has both a correct and a wrong response (of {len(groups)}, "
                f"{self.dropped_groups} dropped, {self.dropped_responses} responses over max_len={cfg.max_len}); "
                "sample more problems (data.problems.limit) or raise rollout.temperature"
            )

    @property
    def steps_per_epoch(self) -> int:
        return len(self.groups) // self.cfg.batch_size or 1

    def batch(self, step: int) -> TensorBatch:
        epoch, index = divmod(step, self.steps_per_epoch)
        order = list(range(len(self.groups)))
        random.Random(derive_seed("rm", self.cfg.seed, epoch)).shuffle(order)
        picked = order[index * self.cfg.batch_size : (index + 1) * self.cfg.batch_size]
        teacher = None if self.teacher is None else [self.teacher[i] for i in picked]
        return collate_groups([self.groups[i] for i in picked], self.pad_id, teacher)
