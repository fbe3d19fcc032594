"""The labelled answer-checking cases (bench/data/verifier_cases.jsonl) get their labels.

Each case goes through our pure functions in this process: `math_verifier(response, gold)`
for full responses, `answers_equivalent(answer, gold)` for bare answers. The labels and
their policy are described in bench/data/README.md; bench/verifier.py runs the same cases
against math-verify.

`KNOWN_FAILURES` lists the cases the checker gets wrong today, each with the reason. They are
strict xfails: a regression on any other case fails, and a known failure that starts passing
fails too ("XPASS(strict)"), so the fix is recorded by deleting its line here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

try:
    from rewards.math_equivalence import answers_equivalent, math_verifier
except ModuleNotFoundError as err:  # only a missing checker module skips; a broken one fails
    if err.name not in ("rewards.math_equivalence", "rewards"):
        raise
    pytest.skip(f"the answer checker (rewards/math_equivalence.py) does not exist yet: {err}",
                allow_module_level=True)

CASES_PATH = Path(__file__).resolve().parents[1] / "bench" / "data" / "verifier_cases.jsonl"
CASES = [json.loads(line) for line in CASES_PATH.read_text().splitlines() if line.strip()]
FAMILIES = {
    "integers", "decimals", "fractions", "radicals", "pi", "expressions", "equations", "tuples", "sets",
    "intervals", "inequalities", "matrices", "plus_minus", "mixed_numbers", "bases", "complex", "percent",
    "units", "text", "multiple_choice", "extraction",
}

# id -> why the checker gets it wrong today; [T]/[F] is the label.
KNOWN_FAILURES: dict[str, str] = {
    "complex-023": "[T] i is the imaginary unit only when the gold contains i, and the gold -1 does not",
}


_VERDICTS: dict[str, object] = {}  # id -> verdict, so the two per-case tests check each case once


def _verdict(case: dict) -> object:
    if case["id"] not in _VERDICTS:
        if "response" in case:
            _VERDICTS[case["id"]] = math_verifier(case["response"], case["gold"])
        else:
            _VERDICTS[case["id"]] = answers_equivalent(case["answer"], case["gold"])
    return _VERDICTS[case["id"]]


def test_cases_file_is_well_formed() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for c in CASES:
        assert {"id", "gold", "label", "family", "source", "note"} <= c.keys(), c["id"]
        assert ("answer" in c) != ("response" in c), f"{c['id']}: needs exactly one of answer/response"
        assert isinstance(c["label"], bool), c["id"]
        assert c["family"] in FAMILIES, c["id"]
        assert c["id"].startswith(c["family"] + "-"), c["id"]
        # answers_equivalent takes a bare gold; reference-solution golds go with responses
        assert "answer" not in c or "\\boxed" not in c["gold"], c["id"]
    labels = [c["label"] for c in CASES]
    assert 0.4 < sum(labels) / len(labels) < 0.6, "keep true and false labels roughly balanced"


def test_known_failures_name_real_cases() -> None:
    stale = set(KNOWN_FAILURES) - {c["id"] for c in CASES}
    assert not stale, f"KNOWN_FAILURES names cases that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c["id"], marks=pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[c["id"]]))
     if c["id"] in KNOWN_FAILURES else pytest.param(c, id=c["id"]) for c in CASES],
)
def test_case_gets_its_label(case: dict) -> None:
    assert bool(_verdict(case)) is case["label"], case["note"] or case["source"]


def test_verdicts_are_plain_bools() -> None:
    # BatchVerifier rejects anything but a bool or a float as a verifier error (score 0), so
    # a sympy BooleanTrue returned here would turn a right answer into an "error" verdict.
    offenders = [(c["id"], type(v).__name__) for c in CASES if type(v := _verdict(c)) is not bool]
    assert not offenders, f"{len(offenders)} verdicts are not bool, e.g. {offenders[:5]}"
