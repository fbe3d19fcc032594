"""Did a change really help? Two evaluations of the same problems, compared problem by problem.

    python -m rl.compare_evals runs/grpo_tiny/eval/step_000000.jsonl runs/grpo_tiny/eval/step_000100.jsonl
    python -m rl.compare_evals runs/eval_tiny runs/eval_grpo_tiny          # launch/evaluate.py output dirs
    python -m rl.compare_evals A B --by family --json comparison.json
    python -m rl.compare_evals runs/eval8_sft runs/eval8_grpo --metric pass@1   # sampled (samples=8)

Each side is a file of graded records, one per problem with its `id` and `correct` (what
`launch/evaluate.py` writes to `output_dir/responses.jsonl` and GRPO to
`run_dir/eval/step_N.jsonl`), or a directory holding `responses.jsonl`.

On 500 problems one accuracy has a standard error of about 2 points, so two unpaired
accuracies a few points apart say little. Paired on the same problems, only the problems
where the two disagree carry information: with b solved by A alone and c by B alone, the
exact McNemar test asks whether b and c could be a fair coin's split of b + c, and the
difference (c − b) / n gets a confidence interval from the paired variance, usually much
narrower than the unpaired one.

`--metric pass@1` (or maj@k, pass@k) compares what `launch/evaluate.py samples=N` records per
problem in `at_k` instead of the greedy verdict: a fraction per problem, not a 0/1. The
interval is the same paired Wald interval of the mean per-problem difference (for 0/1 values
it is the one above); the p-value is McNemar's where every value is 0/1 (maj@k), otherwise a
two-sided normal test of that mean. RL usually moves sampled accuracy before greedy accuracy:
a policy that stops sampling its slips gains pass@1 while its greedy answers stay the same.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mathdata.io import iter_jsonl

RECORDS_FILE = "responses.jsonl"  # what a directory side is read from (launch/evaluate.py's output)
GREEDY = "correct"  # the metric every record has: the greedy (or single) response's verdict
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class PairedComparison:
    problems: int
    accuracy_a: float
    accuracy_b: float
    only_a: int  # b: solved by A, not by B (a sampled metric: problems where A scores higher)
    only_b: int  # c: solved by B, not by A (a sampled metric: problems where B scores higher)
    difference: float  # accuracy_b − accuracy_a
    ci_low: float  # 95% interval of the difference (paired Wald)
    ci_high: float
    p_value: float  # see `test`
    metric: str = GREEDY
    # exact two-sided McNemar where every value is 0/1 (greedy, maj@k); else a two-sided normal
    # test of the mean per-problem difference (pass@1 over N samples is a fraction per problem)
    test: str = "McNemar exact"
    by: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # by[key][value] = {problems, accuracy_a, ...}

    def line(self) -> str:
        if self.metric == GREEDY:
            counts = f"solved by A only {self.only_a}, by B only {self.only_b}"
        else:
            counts = f"{self.metric} higher on A {self.only_a}, on B {self.only_b} problems"
        return (
            f"{self.problems} problems{'' if self.metric == GREEDY else ', ' + self.metric}: "
            f"A {self.accuracy_a:.1%}, B {self.accuracy_b:.1%}, "
            f"B − A {self.difference * 100:+.1f} points (95% CI {self.ci_low * 100:+.1f} to {self.ci_high * 100:+.1f}); "
            f"{counts}; {self.test} p = {self.p_value:.3g}"
        )


def mcnemar_exact_p(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: the chance that a fair coin splits only_a + only_b
    disagreements at least as unevenly as observed. 1.0 when there is no disagreement."""
    if only_a < 0 or only_b < 0:
        raise ValueError(f"counts must be >= 0, got {only_a}, {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**n)  # exact integers until this one division


def paired_difference_interval(problems: int, only_a: int, only_b: int, z: float = Z_95) -> tuple[float, float]:
    """Wald interval of (only_b − only_a) / problems with the paired variance
    (only_a + only_b − (only_b − only_a)² / problems) / problems²."""
    if problems <= 0:
        raise ValueError(f"problems must be >= 1, got {problems}")
    diff = (only_b - only_a) / problems
    variance = max(0.0, only_a + only_b - (only_b - only_a) ** 2 / problems) / problems**2
    half = z * math.sqrt(variance)
    return diff - half, diff + half


def mean_difference_test(pairs: list[tuple[float, float]], z: float = Z_95) -> tuple[float, float, float, float]:
    """(mean of b − a, interval low, interval high, two-sided p) for paired values in [0, 1]:
    the Wald interval with the per-problem differences' own variance, and the normal test of
    their mean. No spread (every difference equal) gives a zero-width interval and p = 1 for
    a zero mean, 0 otherwise."""
    n = len(pairs)
    diffs = [b - a for a, b in pairs]
    mean = sum(diffs) / n
    variance = max(0.0, sum(d * d for d in diffs) / n - mean * mean)
    se = math.sqrt(variance / n)
    if se == 0:
        return mean, mean, mean, 1.0 if mean == 0 else 0.0
    return mean, mean - z * se, mean + z * se, math.erfc(abs(mean / se) / math.sqrt(2))


def compare(
    records_a: list[dict[str, Any]], records_b: list[dict[str, Any]], by: tuple[str, ...] = (), metric: str = GREEDY
) -> PairedComparison:
    """Pair the records by problem id (order does not matter). Both sides must cover the same
    problems: a comparison on different problem sets is not paired. `by` names record fields
    (level, family, subject) to break the counts down by, read from side A. `metric` is
    `correct` (the greedy verdict) or a key of the records' `at_k` (pass@1, maj@8, ...)."""
    a, b = _by_id(records_a, "A"), _by_id(records_b, "B")
    if a.keys() != b.keys():
        missing, extra = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        raise ValueError(
            f"the two evaluations cover different problems ({len(a)} and {len(b)}; {len(missing)} only in A, e.g. "
            f"{missing[:3]}; {len(extra)} only in B, e.g. {extra[:3]}): evaluate both on the same problem file"
        )
    if not a:
        raise ValueError("no records to compare")
    values = {i: (_value(a[i], metric, "A"), _value(b[i], metric, "B")) for i in sorted(a)}  # id -> (A's, B's)
    result = _counts(list(values.values()), metric)
    breakdown: dict[str, dict[str, dict[str, float]]] = {}
    for key in by:
        groups = sorted({str(a[i][key]) for i in values if key in a[i]})
        if not groups:
            raise ValueError(f"--by {key}: no record has a {key!r} field")
        breakdown[key] = {}
        for group in groups:
            counts = _counts([pair for i, pair in values.items() if str(a[i].get(key)) == group], metric)
            breakdown[key][group] = {k: v for k, v in asdict(counts).items() if k not in ("by", "metric", "test")}
    return replace(result, by=breakdown)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Graded records from a JSONL file, or from `responses.jsonl` in a directory."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORDS_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no such file (give a records JSONL file, or a directory holding {RECORDS_FILE})")
    records = []
    for line_no, record in enumerate(iter_jsonl(path), start=1):
        for key in ("id", "correct"):
            if key not in record:
                raise ValueError(f"{path}: record {line_no} has no {key!r}: not a file of graded records")
        records.append(record)
    return records


def _by_id(records: list[dict[str, Any]], side: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        key = str(record["id"])
        if key in out:
            raise ValueError(f"side {side}: problem {key!r} appears twice; a paired comparison needs one record per problem")
        out[key] = record
    return out


def _value(record: dict[str, Any], metric: str, side: str) -> float:
    if metric == GREEDY:
        return float(bool(record[GREEDY]))
    at_k = record.get("at_k")
    if not isinstance(at_k, dict) or metric not in at_k:
        have = sorted(at_k) if isinstance(at_k, dict) else "none (a greedy evaluation; rerun it with samples=N)"
        raise ValueError(f"side {side}: problem {record['id']!r} has no {metric!r} in its at_k; it has: {have}")
    return float(at_k[metric])


def _counts(pairs: list[tuple[float, float]], metric: str = GREEDY) -> PairedComparison:
    n = len(pairs)
    only_a = sum(x > y for x, y in pairs)
    only_b = sum(y > x for x, y in pairs)
    if all(v in (0.0, 1.0) for pair in pairs for v in pair):
        test, difference = "McNemar exact", (only_b - only_a) / n
        low, high = paired_difference_interval(n, only_a, only_b)
        p_value = mcnemar_exact_p(only_a, only_b)
    else:
        test = "paired normal"
        difference, low, high, p_value = mean_difference_test(pairs)
    return PairedComparison(
        problems=n,
        accuracy_a=sum(x for x, _ in pairs) / n,
        accuracy_b=sum(y for _, y in pairs) / n,
        only_a=only_a,
        only_b=only_b,
        difference=difference,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        metric=metric,
        test=test,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rl.compare_evals",
        description="Compare two evaluations of the same problems, paired by problem id (exact McNemar test).",
        epilog="Exit status: 0 compared, 2 bad input.",
    )
    parser.add_argument("a", help="graded records JSONL (responses.jsonl, eval/step_N.jsonl) or a directory holding responses.jsonl")
    parser.add_argument("b", help="the same for the other evaluation; differences are B − A")
    parser.add_argument("--by", action="append", default=[], help="also break down by this record field (level, family, subject); repeatable")
    parser.add_argument("--json", help="also write the comparison here as JSON")
    parser.add_argument(
        "--metric", default=GREEDY,
        help="correct (the greedy verdict, default) or a sampled metric the records hold in at_k: pass@1, maj@8, ...",
    )
    args = parser.parse_args(argv)
    try:
        result = compare(read_records(args.a), read_records(args.b), tuple(args.by), args.metric)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(result.line())
    for key, table in result.by.items():
        print(f"by {key}:")
        for value, row in table.items():
            print(
                f"  {value:>20}: {int(row['problems']):4d} problems, A {row['accuracy_a']:.1%}, B {row['accuracy_b']:.1%}, "
                f"{row['difference'] * 100:+.1f} points, p = {row['p_value']:.3g}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(result), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
