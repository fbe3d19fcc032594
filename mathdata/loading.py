"""Load problem sets from JSONL or Parquet files into `Problem` records.

Accepted rows are objects with a problem text under `problem` or `question` and a gold
answer under `answer` (the layout of MATH-500 and GSM8K in shared/data); other fields
(`solution`, `id`/`unique_id`, `subject`, `level`, ...) are kept. The keys can be renamed
in `ProblemFileConfig`.

A bad row (invalid JSON, missing or empty problem/answer, wrong type) raises
`DatasetError` naming the file and line (JSONL) or row (Parquet), before any training
starts; with `on_error="skip"` such rows are skipped and counted instead. An empty file
is always an error: a run on zero problems is never what was meant.

JSONL is parsed line by line here so that errors can name their line; Parquet goes through
the `datasets` library, and `to_hf_dataset` turns any problem list into a `datasets.Dataset`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mathdata.problems import Problem
from mathrl.config import require

PROBLEM_KEYS = ("problem", "question")
ID_KEYS = ("id", "unique_id", "idx")


class DatasetError(ValueError):
    """A problem file cannot be used as it is; the message names the file and line."""


@dataclass(frozen=True)
class ProblemFileConfig:
    path: str = ""
    problem_key: str | None = None  # None: `problem`, else `question`
    answer_key: str = "answer"
    on_error: Literal["raise", "skip"] = "raise"
    limit: int | None = None  # keep only the first `limit` problems

    def __post_init__(self) -> None:
        require(bool(self.path), "path", "must name a .jsonl or .parquet file")
        require(
            Path(self.path).suffix in (".jsonl", ".json", ".parquet"),
            "path",
            f"{self.path!r} must end in .jsonl, .json (one object per line) or .parquet",
        )
        require(self.limit is None or self.limit > 0, "limit", f"must be > 0 or null, got {self.limit}")


@dataclass
class LoadedProblems:
    problems: list[Problem]
    skipped: list[str] = field(default_factory=list)  # one message per skipped row


def load_problems(cfg: ProblemFileConfig | str | Path, require_answer: bool = True) -> LoadedProblems:
    """Read a problem file. A bare path uses the default keys and raises on the first bad row.

    `require_answer=False` is for inference inputs (best-of-N): a row without a gold answer
    (or an empty one) loads with `answer=""`; one that is present must still be valid."""
    if not isinstance(cfg, ProblemFileConfig):
        cfg = ProblemFileConfig(path=str(cfg))
    path = Path(cfg.path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    rows = _parquet_rows(path) if path.suffix == ".parquet" else _jsonl_rows(path)

    result = LoadedProblems(problems=[])
    for where, row in rows:
        try:
            if isinstance(row, Exception):
                raise DatasetError(str(row))
            result.problems.append(_to_problem(row, cfg, f"{path.stem}-{len(result.problems)}", require_answer))
        except DatasetError as err:
            message = f"{path}:{where}: {err}"
            if cfg.on_error == "raise":
                raise DatasetError(message + " (set on_error: skip to skip bad rows)") from None
            result.skipped.append(message)
        if cfg.limit is not None and len(result.problems) >= cfg.limit:
            break
    if not result.problems:
        detail = f"; all {len(result.skipped)} rows were malformed, first: {result.skipped[0]}" if result.skipped else ""
        raise DatasetError(f"{path}: no problems found{detail}")
    return result


def to_hf_dataset(problems: list[Problem]):
    """The problems as a `datasets.Dataset` (columns: id, problem, answer, solution, source)."""
    import datasets

    return datasets.Dataset.from_list(
        [{"id": p.id, "problem": p.problem, "answer": p.answer, "solution": p.solution or "", "source": p.source} for p in problems]
    )


def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield f"line {line_no}", json.loads(line)
            except json.JSONDecodeError as err:
                yield f"line {line_no}", DatasetError(f"invalid JSON ({err.msg} at column {err.colno})")


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    import datasets

    try:
        table = datasets.Dataset.from_parquet(str(path))
    except Exception as err:  # pyarrow raises several types for a corrupt file
        raise DatasetError(f"{path}: cannot read as Parquet ({type(err).__name__}: {err})") from None
    for index, row in enumerate(table):
        yield f"row {index}", row


def _to_problem(row: Any, cfg: ProblemFileConfig, default_id: str, require_answer: bool = True) -> Problem:
    if not isinstance(row, dict):
        raise DatasetError(f"expected a JSON object, got {type(row).__name__}")
    problem_key = cfg.problem_key or next((k for k in PROBLEM_KEYS if k in row), PROBLEM_KEYS[0])
    problem = _required_text(row, problem_key, "the problem text")
    has_answer = require_answer or row.get(cfg.answer_key) not in (None, "")
    answer = _required_text(row, cfg.answer_key, "the gold answer") if has_answer else ""
    solution = row.get("solution")
    if solution is not None and not isinstance(solution, str):
        raise DatasetError(f"'solution' must be a string, got {type(solution).__name__}")
    row_id = next((str(row[k]) for k in ID_KEYS if row.get(k) not in (None, "")), default_id)
    used = {problem_key, cfg.answer_key, "solution", "source", *ID_KEYS}
    meta = {k: v for k, v in row.items() if k not in used}
    return Problem(id=row_id, problem=problem, answer=answer, solution=solution, source=str(row.get("source", "")), meta=meta)


def _required_text(row: dict, key: str, what: str) -> str:
    if key not in row or row[key] is None:
        raise DatasetError(f"missing '{key}' ({what}); the row has keys {sorted(row)}")
    value = row[key]
    # Numeric gold answers (e.g. GSM8K exported as integers) are fine; booleans, lists are not.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DatasetError(f"'{key}' ({what}) must be a string or a number, got {type(value).__name__}")
    if not value.strip():
        raise DatasetError(f"'{key}' ({what}) is empty")
    return value
