"""Held-out evaluation: sample answers for a problem set, grade them, and break accuracy down.

The sampler is any callable from problems to response texts (a `RolloutEngine`, the Ray
rollout group, or a test double), so this module needs neither vLLM nor Ray.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mathdata.problems import Problem

BREAKDOWN_KEYS = ("level", "family", "subject")


@dataclass
class EvalReport:
    accuracy: float
    num_problems: int
    timeouts: int
    by: dict[str, dict[str, float]] = field(default_factory=dict)  # e.g. by["level"]["5"] = 0.42
    records: list[dict[str, Any]] = field(default_factory=list)  # one per problem

    def summary(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "num_problems": self.num_problems, "timeouts": self.timeouts, "by": self.by}


def evaluate(
    problems: Sequence[Problem],
    sample: Callable[[Sequence[Problem]], Sequence[str]],
    verifier,  # a rewards.verifier.BatchVerifier (or anything with .check(responses, golds))
) -> EvalReport:
    """Greedy (or single-sample) accuracy of `sample` on `problems`."""
    responses = list(sample(problems))
    if len(responses) != len(problems):
        raise ValueError(f"sampler returned {len(responses)} responses for {len(problems)} problems")
    verdicts = verifier.check(responses, [p.answer for p in problems])
    records = [
        {
            "id": p.id,
            "gold": p.answer,
            "extracted": v.extracted,
            "correct": v.correct,
            "status": v.status,
            "response": r,
            **{k: p.meta[k] for k in BREAKDOWN_KEYS if k in p.meta},
        }
        for p, r, v in zip(problems, responses, verdicts)
    ]
    return EvalReport(
        accuracy=mean(r["correct"] for r in records),
        num_problems=len(records),
        timeouts=sum(r["status"] == "timeout" for r in records),
        by={key: accuracy_by(records, key) for key in BREAKDOWN_KEYS if any(key in r for r in records)},
        records=records,
    )


def accuracy_by(records: Sequence[dict[str, Any]], key: str) -> dict[str, float]:
    groups: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        if key in record:
            groups[str(record[key])].append(bool(record["correct"]))
    return {name: mean(values) for name, values in sorted(groups.items())}


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0
