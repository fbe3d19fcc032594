"""Rejection sampling for SFT data (the first self-improvement loop of Qwen2.5-Math):
sample k responses per problem with the current model, keep the verified-correct ones.

Kept responses become new SFT rows: the problem with `solution` set to the model's own
response. Per problem, at most `keep_per_problem` distinct responses are kept, best first by
`scores` when a scorer (the reward model) is given, otherwise in sampling order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from mathdata.problems import Problem
from mathrl.config import require


@dataclass(frozen=True)
class RejectionSamplingConfig:
    k: int = 8  # samples per problem
    keep_per_problem: int = 1  # distinct correct responses kept per problem
    drop_truncated: bool = True  # a response cut by max_tokens is never kept, even if its box is right

    def __post_init__(self) -> None:
        require(self.k >= 1, "k", f"must be >= 1, got {self.k}")
        require(
            1 <= self.keep_per_problem <= self.k,
            "keep_per_problem",
            f"must be in [1, k={self.k}], got {self.keep_per_problem}",
        )


def select_correct(
    problems: Sequence[Problem],
    responses: Sequence[Sequence[str]],  # [B][k]
    correct: Sequence[Sequence[bool]],  # [B][k] verifier verdicts
    truncated: Sequence[Sequence[bool]],  # [B][k] finish reason was "length"
    cfg: RejectionSamplingConfig,
    scores: Sequence[Sequence[float]] | None = None,  # [B][k] reward-model scores, higher is better
) -> list[Problem]:
    """The new SFT rows: per problem, up to keep_per_problem distinct correct responses."""
    kept: list[Problem] = []
    for b, problem in enumerate(problems):
        order = range(len(responses[b]))
        if scores is not None:
            order = sorted(order, key=lambda i: -scores[b][i])
        seen: set[str] = set()
        for i in order:
            text = responses[b][i].strip()
            if not correct[b][i] or (cfg.drop_truncated and truncated[b][i]) or text in seen:
                continue
            seen.add(text)
            kept.append(replace(problem, id=f"{problem.id}-rs{len(seen) - 1}", solution=text))
            if len(seen) == cfg.keep_per_problem:
                break
    return kept


def rejection_sample(
    problems: Sequence[Problem],
    sample: Callable[[Sequence[Problem], int], tuple[list[list[str]], list[list[bool]]]],
    verifier,  # rewards.verifier.BatchVerifier
    cfg: RejectionSamplingConfig,
    score: Callable[[Sequence[Problem], list[list[str]]], list[list[float]]] | None = None,
) -> tuple[list[Problem], dict[str, float]]:
    """Sample, verify, select. `sample(problems, k)` returns ([B][k] texts, [B][k] truncated)."""
    responses, truncated = sample(problems, cfg.k)
    flat = [r for rs in responses for r in rs]
    golds = [p.answer for p in problems for _ in range(cfg.k)]
    verdicts = verifier.check(flat, golds)
    correct = [[v.correct for v in verdicts[b * cfg.k : (b + 1) * cfg.k]] for b in range(len(problems))]
    scores = score(problems, responses) if score is not None else None
    kept = select_correct(problems, responses, correct, truncated, cfg, scores)
    solved = sum(any(c) for c in correct)
    stats = {
        "problems": len(problems),
        "samples": len(flat),
        "sample_accuracy": sum(map(sum, correct)) / max(1, len(flat)),
        "problems_solved": solved,
        "rows_kept": len(kept),
    }
    return kept, stats
