"""Held-out evaluation: sample answers for a problem set, grade them, and break accuracy down.

Samplers are callables from problems to response texts (a `RolloutEngine`, the Ray rollout
group, or a test double), so this module needs neither vLLM nor Ray. Two entry points:

- `evaluate(problems, sample, verifier)`: greedy accuracy, in memory; the GRPO controller's
  periodic evaluation.
- `evaluate_to_file(...)`, the evaluation stage (`launch/evaluate.py`): greedy accuracy
  and, given a sampler of N responses per problem, pass@k (unbiased), maj@k and, with a
  reward model, rm@k (best-of-k) and rm_vote@k (RM-weighted vote) for k = 1, 2, 4, ..., N
  (`rl.selection`). Problems go through in chunks; each chunk's graded records are appended
  to a JSONL file as soon as they are done, so memory does not grow with the set and an
  interrupted run resumes: problems whose id is already in the file are skipped and a
  half-written last line is cut off. The summary is always computed from the file, so a
  resumed run reports exactly what an uninterrupted run would, provided the samplers give
  a problem the same responses whatever else is in the batch (greedy decoding, and
  `rl.best_of_n.seeded_sampler` for sampling).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathdata.io import append_jsonl, iter_jsonl, repair_jsonl_tail
from mathdata.problems import Problem
from mathrl.config import ConfigError
from rl.best_of_n import Sampler, sample_candidates
from rl.selection import VoteWeight

BREAKDOWN_KEYS = ("level", "family", "subject")
GreedySampler = Callable[[Sequence[Problem]], Sequence[str]]  # one response per problem


@dataclass
class EvalReport:
    accuracy: float  # greedy
    num_problems: int
    timeouts: int
    by: dict[str, dict[str, float]] = field(default_factory=dict)  # greedy accuracy, e.g. by["level"]["5"] = 0.42
    records: list[dict[str, Any]] = field(default_factory=list)  # one per problem (`evaluate` only)
    samples: int = 1  # N sampled responses per problem (1: greedy only)
    at_k: dict[str, float] = field(default_factory=dict)  # "pass@4", "maj@4", "rm@4", "rm_vote@4" -> mean
    # breakdown["subject"]["Algebra"] = {"problems": 124, "greedy": 0.6, "pass@8": ..., "maj@8": ...} (metrics at k = N)
    breakdown: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    sample_timeouts: int = 0  # sampled responses whose check timed out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"accuracy": self.accuracy, "num_problems": self.num_problems, "timeouts": self.timeouts, "by": self.by}
        if self.samples > 1:
            out.update(samples=self.samples, at_k=self.at_k, sample_timeouts=self.sample_timeouts)
        out["breakdown"] = self.breakdown
        return out


def evaluate(
    problems: Sequence[Problem],
    sample: GreedySampler,
    verifier,  # a rewards.verifier.BatchVerifier (or anything with .check(responses, golds))
) -> EvalReport:
    """Greedy (or single-sample) accuracy of `sample` on `problems`."""
    records = graded_records(problems, sample, verifier)
    report = summarize(records)
    report.records = records
    return report


def graded_records(
    problems: Sequence[Problem],
    greedy: GreedySampler,
    verifier,
    sample: Sampler | None = None,
    scorer=None,
    weight: VoteWeight = "sigmoid",
) -> list[dict[str, Any]]:
    """One record per problem: the graded greedy response and, with `sample`, the N sampled
    candidates (answers, groups, RM scores, the answer each method chooses) and their
    per-problem pass@k / maj@k / rm@k values (`at_k`)."""
    responses = list(greedy(problems))
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
    if sample is not None:
        for record, candidates in zip(records, sample_candidates(problems, sample(problems), verifier, scorer, weight)):
            record.update(n=len(candidates.responses), at_k=candidates.at_k(), **candidates.record())
    return records


def summarize(records: Iterable[dict[str, Any]]) -> EvalReport:
    """Means over per-problem records (a list, or a file streamed with `iter_jsonl`)."""
    count = correct = timeouts = sample_timeouts = 0
    samples: int | None = None
    at_k: dict[str, float] = defaultdict(float)
    groups: dict[str, dict[str, dict[str, float]]] = defaultdict(lambda: defaultdict(lambda: defaultdict(float)))
    for record in records:
        n = record.get("n", 1)
        if samples is None:
            samples = n
        elif n != samples:
            raise ValueError(f"record {record['id']} has {n} samples, earlier ones {samples}: results of different runs are mixed")
        count += 1
        correct += bool(record["correct"])
        timeouts += record["status"] == "timeout"
        sample_timeouts += sum(c.get("status") == "timeout" for c in record.get("candidates", ()))
        for name, value in record.get("at_k", {}).items():
            at_k[name] += value
        at_n = {name: value for name, value in record.get("at_k", {}).items() if name.endswith(f"@{n}")}
        for key in BREAKDOWN_KEYS:
            if key in record:
                totals = groups[key][str(record[key])]
                totals["problems"] += 1
                totals["greedy"] += bool(record["correct"])
                for name, value in at_n.items():
                    totals[name] += value
    breakdown = {
        key: {name: {m: (v if m == "problems" else v / t["problems"]) for m, v in t.items()} for name, t in sorted(table.items())}
        for key, table in groups.items()
    }
    return EvalReport(
        accuracy=correct / count if count else 0.0,
        num_problems=count,
        timeouts=timeouts,
        by={key: {name: t["greedy"] for name, t in table.items()} for key, table in breakdown.items()},
        samples=samples or 1,
        at_k={name: total / count for name, total in at_k.items()},
        breakdown=breakdown,
        sample_timeouts=sample_timeouts,
    )


# --- streaming to a file, with resume -------------------------------------------------------


def evaluate_to_file(
    problems: Sequence[Problem],
    greedy: GreedySampler,
    verifier,
    path: str | Path,
    sample: Sampler | None = None,
    samples: int = 1,
    scorer=None,
    weight: VoteWeight = "sigmoid",
    chunk_size: int = 32,
    progress: bool = True,
) -> EvalReport:
    """Evaluate `problems` into the JSONL file `path`, resuming what is already there, and
    summarize the file. `samples` is N, the number of responses `sample` returns per problem."""
    todo = pending(problems, path, samples)
    stream_records(
        todo,
        lambda chunk: graded_records(chunk, greedy, verifier, sample, scorer, weight),
        path,
        chunk_size,
        total=len(problems),
        progress=progress,
    )
    return summarize_file(path, problems)


def pending(problems: Sequence[Problem], path: str | Path, samples: int = 1) -> list[Problem]:
    """The problems that `path` has no record of yet (after cutting off a torn last line).

    A file written with another number of samples per problem cannot be continued."""
    ids = [p.id for p in problems]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"problem ids must be unique to resume by id; {duplicate!r} appears more than once")
    path = Path(path)
    repair_jsonl_tail(path)
    if not path.is_file():
        return list(problems)
    done = set()
    for record in iter_jsonl(path):
        if record.get("n", 1) != samples:
            raise ConfigError(
                "samples",
                f"{path} holds results with {record.get('n', 1)} samples per problem and this run asks for {samples}; "
                "set resume=false to start over or choose another output_dir",
            )
        done.add(record["id"])
    return [p for p in problems if p.id not in done]


def stream_records(
    problems: Sequence[Problem],
    make_records: Callable[[list[Problem]], list[dict[str, Any]]],
    path: str | Path,
    chunk_size: int,
    total: int | None = None,
    progress: bool = True,
    desc: str = "eval",
) -> int:
    """Append `make_records(chunk)` to `path` for consecutive chunks of `problems`, each
    flushed to disk before the next starts; a tqdm bar counts problems out of `total`
    (default: these). Returns the number of records written."""
    from tqdm import tqdm

    total = len(problems) if total is None else total
    written = 0
    with tqdm(total=total, initial=total - len(problems), desc=desc, unit="problem", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, len(problems), chunk_size):
            chunk = list(problems[start : start + chunk_size])
            records = make_records(chunk)
            if len(records) != len(chunk):
                raise ValueError(f"{len(records)} records for a chunk of {len(chunk)} problems")
            written += append_jsonl(records, path)
            bar.update(len(chunk))
    return written


def summarize_file(path: str | Path, problems: Sequence[Problem]) -> EvalReport:
    """The summary over the records in `path` of these problems (others in the file are left out)."""
    wanted = {p.id for p in problems}
    seen: set[str] = set()

    def records():
        for record in iter_jsonl(path) if Path(path).is_file() else ():
            if record["id"] in wanted and record["id"] not in seen:
                seen.add(record["id"])
                yield record

    return summarize(records())


def start_or_resume(path: str | Path, key: dict[str, Any], resume: bool) -> bool:
    """Get `path` ready for `stream_records`; returns whether earlier results are continued.

    `key` holds the settings that decide the records' content (model, data, sampling, ...);
    it is saved beside the file, and a file made with a different key is not continued (its
    results would be mixed with this run's) unless `resume` is false, which starts over."""
    path = Path(path)
    key_path = path.with_name(path.name + ".key.json")
    key = json.loads(json.dumps(key))  # as it reads back: tuples become lists
    continued = False
    if path.exists() and resume:
        old = json.loads(key_path.read_text()) if key_path.exists() else None
        if old is not None and old != key:
            differ = [k for k in sorted(set(old) | set(key)) if old.get(k) != key.get(k)]
            changed = ", ".join(f"{k}: {old.get(k)!r} -> {key.get(k)!r}" for k in differ)
            raise ConfigError(
                "resume",
                f"{path} holds results of a run with other settings ({changed}); "
                "set resume=false to start over or choose another output directory",
            )
        continued = True
    elif path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(json.dumps(key, indent=2))
    return continued
