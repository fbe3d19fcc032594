"""Evaluation bookkeeping with the real verifier and a scripted sampler."""

import pytest

from mathdata.problems import Problem
from rewards.verifier import BatchVerifier, VerifierConfig
from rl.evaluation import evaluate


@pytest.fixture(scope="module")
def verifier():
    with BatchVerifier(VerifierConfig(num_workers=1, timeout_s=10)) as v:
        yield v


def test_accuracy_and_breakdown(verifier):
    problems = [
        Problem(id="a", problem="1/2 + 1/4?", answer="\\frac{3}{4}", meta={"level": 1, "family": "fractions"}),
        Problem(id="b", problem="2+2?", answer="4", meta={"level": 1, "family": "arithmetic"}),
        Problem(id="c", problem="10% of 50?", answer="5", meta={"level": 2, "family": "percentages"}),
        Problem(id="d", problem="Solve 2x=6", answer="3", meta={"level": 2, "family": "linear_equations"}),
    ]
    scripted = {"a": "so the sum is \\boxed{0.75}", "b": "The answer is \\boxed{5}.", "c": "The answer is \\boxed{5}.", "d": "x = 3, so \\boxed{x=3}"}
    report = evaluate(problems, lambda ps: [scripted[p.id] for p in ps], verifier)
    assert report.accuracy == pytest.approx(0.75) and report.num_problems == 4
    assert report.by["level"] == {"1": 0.5, "2": 1.0}
    assert report.by["family"]["arithmetic"] == 0.0
    assert [r["correct"] for r in report.records] == [True, False, True, True]
    assert report.records[0]["extracted"] == "0.75"


def test_sampler_must_answer_every_problem(verifier):
    with pytest.raises(ValueError, match="returned 0 responses for 1 problems"):
        evaluate([Problem(id="x", problem="?", answer="1")], lambda ps: [], verifier)
