"""The record every stage passes around for a math problem."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One math problem with its gold answer.

    `answer` is the gold final answer as a string (LaTeX allowed, e.g. "\\frac{3}{4}");
    `solution` is an optional worked solution ending in \\boxed{answer}.
    `meta` carries source-specific fields (synthetic family and level, MATH subject, ...).
    """

    id: str
    problem: str
    answer: str
    solution: str | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        row = {"id": self.id, "problem": self.problem, "answer": self.answer}
        if self.solution is not None:
            row["solution"] = self.solution
        if self.source:
            row["source"] = self.source
        row.update({k: v for k, v in self.meta.items() if k not in row})
        return row
