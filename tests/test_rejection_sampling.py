"""Rejection sampling keeps verified-correct, complete, distinct responses, best first."""

import pytest

from mathdata.problems import Problem
from mathrl.config import ConfigError
from rewards.verifier import BatchVerifier, VerifierConfig
from rl.rejection_sampling import RejectionSamplingConfig, rejection_sample, select_correct

P = [Problem(id="p0", problem="2+3?", answer="5", meta={"level": 1}), Problem(id="p1", problem="2*3?", answer="6")]


def test_select_keeps_correct_distinct_untruncated_by_score():
    responses = [["A \\boxed{5}", "B \\boxed{5}", "A \\boxed{5}", "C \\boxed{4}"], ["x", "y", "z", "w"]]
    correct = [[True, True, True, False], [False] * 4]
    truncated = [[False, False, False, False], [False] * 4]
    cfg = RejectionSamplingConfig(k=4, keep_per_problem=2)
    kept = select_correct(P, responses, correct, truncated, cfg)
    assert [(p.id, p.solution) for p in kept] == [("p0-rs0", "A \\boxed{5}"), ("p0-rs1", "B \\boxed{5}")]
    assert kept[0].answer == "5" and kept[0].meta == {"level": 1}
    scored = select_correct(P, responses, correct, truncated, cfg, scores=[[0.1, 0.9, 0.5, 5.0], [0] * 4])
    assert [p.solution for p in scored] == ["B \\boxed{5}", "A \\boxed{5}"]  # the wrong one never, whatever its score
    cut = select_correct(P, responses, correct, [[True, False, True, False], [False] * 4], cfg)
    assert [p.solution for p in cut] == ["B \\boxed{5}"]


def test_end_to_end_with_the_real_verifier():
    def sample(problems, k):
        texts = {"p0": ["so \\boxed{5}", "\\boxed{6}"], "p1": ["\\boxed{5}", "The answer is 6."]}
        return [texts[p.id] for p in problems], [[False] * k for _ in problems]

    with BatchVerifier(VerifierConfig(num_workers=1)) as verifier:
        kept, stats = rejection_sample(P, sample, verifier, RejectionSamplingConfig(k=2))
    assert [(p.id, p.solution) for p in kept] == [("p0-rs0", "so \\boxed{5}"), ("p1-rs0", "The answer is 6.")]
    assert stats == {"problems": 2, "samples": 4, "sample_accuracy": 0.5, "problems_solved": 2, "rows_kept": 2}


def test_config_errors():
    with pytest.raises(ConfigError, match="^keep_per_problem"):
        RejectionSamplingConfig(k=2, keep_per_problem=3)
