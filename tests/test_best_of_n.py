"""Best-of-N selection: pass@k against hand values and the subset-counting definition,
majority vote over answers grouped by the verifier's equivalence (not by string), the
RM-weighted vote and RM top-1, and the `launch/best_of_n.py` single-problem path.

The reward model is a stand-in here: `FakeScorer` has the `score(problems, responses)`
method of `rewards.reward_model.RewardScorer` and scores from a table, so the selection
logic is tested without training or loading a model. The vLLM engine is faked in the fast
CLI test; the slow test runs the CLI through real vLLM with the tiny model.
"""

import itertools
import json
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from mathdata.problems import Problem
from rewards.verifier import BatchVerifier, VerifierConfig
from rl.best_of_n import sample_candidates, summarize_choices
from rl.selection import (
    at_k,
    group_answer_lists,
    group_answers,
    k_values,
    majority_vote,
    pass_at_k,
    rm_top1,
    rm_weighted_vote,
)

ROOT = Path(__file__).resolve().parents[1]


class FakeScorer:
    """Stands in for `RewardScorer`: same `score` signature, scores looked up by response."""

    def __init__(self, table: dict[str, float]):
        self.table = table
        self.calls = 0

    def score(self, problems: list[str], responses: list[str]) -> list[float]:
        assert len(problems) == len(responses)
        self.calls += 1
        return [self.table.get(r, 0.0) for r in responses]


@pytest.fixture(scope="module")
def verifier():
    with BatchVerifier(VerifierConfig(num_workers=1, timeout_s=10)) as v:
        yield v


# --- pass@k ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (2, 1, 1, 0.5),
        (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 1, 0.3),  # pass@1 is the fraction correct
        (5, 0, 3, 0.0),
        (5, 3, 3, 1.0),  # n - c < k: every 3-subset holds a correct sample
        (8, 8, 8, 1.0),
        (64, 1, 32, 0.5),  # C(64, 32) ~ 1.8e18: the product form does not overflow
    ],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_counting_subsets():
    """The definition, by brute force: the share of k-subsets with at least one correct sample."""
    for n in range(1, 8):
        for c in range(n + 1):
            correct = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(correct, k))
                assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets), abs=1e-12)
                assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-12)


def test_pass_at_k_rejects_impossible_counts():
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 1, 8)


def test_k_values():
    assert k_values(8) == [1, 2, 4, 8]
    assert k_values(6) == [1, 2, 4, 6]
    assert k_values(1) == [1]


# --- grouping and voting --------------------------------------------------------------------


def test_equivalent_answers_written_differently_form_one_group():
    answers = ["\\frac{1}{2}", "0.5", "1/2", "2", None, "\\dfrac{1}{2}", "3", "2.0"]
    assert group_answers(answers) == [0, 0, 0, 1, None, 0, 2, 1]


def test_majority_vote_counts_equivalent_answers_together():
    # By string "3" is the only repeated answer; by value one half has three votes.
    answers = ["3", "\\frac{1}{2}", "0.5", "3", "1/2"]
    groups = group_answers(answers)
    chosen = majority_vote(groups)
    assert chosen == 1 and answers[chosen] == "\\frac{1}{2}"  # the group's first member represents it
    # On the first 4 samples it is 2 votes each: the answer seen first wins the tie.
    assert majority_vote(groups, k=4) == 0


def test_no_answer_never_wins_unless_all_have_none():
    assert majority_vote([None, None, None, 0]) == 3
    assert majority_vote([None, None]) == 0
    assert rm_top1([None, 0, 1], [9.0, 1.0, 2.0]) == 2  # the top score has no answer: skipped
    assert rm_top1([None, None], [1.0, 5.0]) == 1
    assert rm_weighted_vote([None, None, 0], [9.0, 9.0, -9.0]) == 2


def test_rm_weighted_vote_sums_scores_per_answer_group():
    groups = [0, 0, 1]
    assert majority_vote(groups) == 0
    assert rm_weighted_vote(groups, [-3.0, -3.0, 3.0]) == 2  # 2 x sigmoid(-3) = 0.09 < sigmoid(3) = 0.95
    # Raw sums and sigmoid sums differ when scores are negative: a group gaining members
    # with negative raw scores loses weight; with sigmoid weights it cannot.
    scores = [-1.0, -1.0, -0.5]
    assert rm_weighted_vote(groups, scores, weight="raw") == 2  # -2.0 < -0.5
    assert rm_weighted_vote(groups, scores, weight="sigmoid") == 0  # 2 x 0.27 > 0.38
    assert rm_weighted_vote([0, 1], [1.0, 1.0]) == 0  # tie: first seen


def test_rm_top1_is_best_of_first_k():
    groups, scores = [0, 1, 2, 0], [0.5, 2.0, 1.0, 3.0]
    assert rm_top1(groups, scores) == 3
    assert rm_top1(groups, scores, k=3) == 1
    assert rm_top1([0, 1], [1.0, 1.0]) == 0  # tie: the earlier sample


def test_at_k_on_first_k_samples():
    groups = group_answers(["3", "\\frac{1}{2}", "0.5", "3", "1/2"])
    correct = [False, True, True, False, True]
    metrics = at_k(groups, correct, scores=[0.1, -1.0, 2.0, 3.0, 0.0], ks=[1, 2, 4, 5])
    assert metrics["pass@1"] == pytest.approx(0.6) and metrics["pass@2"] == pytest.approx(0.9)
    assert [metrics[f"maj@{k}"] for k in (1, 2, 4, 5)] == [0.0, 0.0, 0.0, 1.0]
    assert [metrics[f"rm@{k}"] for k in (1, 2, 4, 5)] == [0.0, 0.0, 0.0, 0.0]  # the top score (3.0) is wrong
    # k=5: group 1/2 has sigmoid(-1) + sigmoid(2) + sigmoid(0) = 1.65 > sigmoid(0.1) + sigmoid(3) = 1.48
    assert metrics["rm_vote@4"] == 0.0 and metrics["rm_vote@5"] == 1.0
    assert set(at_k(groups, correct)) == {f"{m}@{k}" for m in ("pass", "maj") for k in (1, 2, 4, 5)}


def test_batched_grouping_equals_one_at_a_time():
    """Rounds of batched comparisons give the first-match grouping; ~N rounds, not N^2 calls."""
    lists = [["1/2", "2/4", None, "3", "6/2", "1/2", "7"], ["5"], [None, None], ["2", "4/2", "8/4", "1", "3"]]

    def equal(a: str, b: str) -> bool:
        return Fraction(a) == Fraction(b)

    calls = []

    def compare(preds, reps):
        calls.append(len(preds))
        return [equal(p, r) for p, r in zip(preds, reps)]

    batched = group_answer_lists(lists, compare)
    assert batched == [group_answers(answers, equal) for answers in lists]
    assert batched[0] == [0, 0, None, 1, 1, 0, 2] and batched[2] == [None, None]
    assert len(calls) <= max(len(a) for a in lists)


# --- graded candidates with the real verifier ------------------------------------------------


def test_candidates_grouped_by_the_verifier_and_scored(verifier):
    problems = [
        Problem(id="half", problem="What is 1/2 as a decimal?", answer="0.5"),
        Problem(id="free", problem="Name a prime.", answer=""),  # no gold: inference input
    ]
    responses = [
        ["So \\boxed{\\frac{1}{2}}.", "The answer is \\boxed{0.5}", "I get \\boxed{2}", "no idea", "Thus \\boxed{1/2}."],
        ["\\boxed{7}", "\\boxed{7}", "\\boxed{2}"],
    ]
    low = {responses[0][i]: -3.0 for i in (0, 1, 4)}  # the one-half answers
    scorer = FakeScorer({**low, "I get \\boxed{2}": 5.0, "\\boxed{2}": 4.0})
    half, free = sample_candidates(problems, responses, verifier, scorer)

    assert half.answers == ["\\frac{1}{2}", "0.5", "2", None, "1/2"]
    assert half.groups == [0, 0, 1, None, 0]
    assert half.correct == [True, True, False, False, True]
    assert half.chosen == {"majority": 0, "rm_top1": 2, "rm_vote": 2}  # sigmoid(5) = 0.99 outweighs 3 x sigmoid(-3) = 0.14
    record = half.record()
    assert record["chosen"]["majority"] == {"index": 0, "answer": "\\frac{1}{2}", "correct": True}
    assert record["answer_groups"][0]["votes"] == 3 and record["no_answer"] == 1
    assert record["answer_groups"][1]["rm_vote_weight"] == pytest.approx(1 / (1 + math.exp(-5.0)))
    assert half.at_k([1, 4])["maj@4"] == 1.0

    assert free.correct is None and free.chosen["majority"] == 0 and free.chosen["rm_top1"] == 2
    with pytest.raises(ValueError, match="gold"):
        free.at_k()

    records = [{"id": p.id, "n": len(c.responses), **({"gold": p.answer} if p.answer else {}), **c.record()}
               for p, c in zip(problems, (half, free))]
    summary = summarize_choices(records)
    assert summary["labelled_problems"] == 1
    assert summary["accuracy"] == {"majority": 1.0, "rm_top1": 0.0, "rm_vote": 0.0, "first_sample": 1.0, "pass@n": 1.0}
    assert summary["methods_agree"] == 0.0 and summary["no_answer_rate"] == pytest.approx(1 / 8)


def test_candidates_without_a_reward_model_vote_only(verifier):
    (c,) = sample_candidates([Problem(id="p", problem="?", answer="4")], [["\\boxed{4}", "\\boxed{5}", "\\boxed{4.0}"]], verifier)
    assert c.scores is None and c.chosen == {"majority": 0}
    assert set(c.record()["chosen"]) == {"majority"}


# --- the entry point ------------------------------------------------------------------------


def test_unlabelled_problem_files_load_for_inference(tmp_path):
    from mathdata.loading import DatasetError, load_problems

    path = tmp_path / "in.jsonl"
    path.write_text('{"problem": "What is 2+3?"}\n{"question": "1+1?", "answer": "2"}\n')
    assert [p.answer for p in load_problems(path, require_answer=False).problems] == ["", "2"]
    with pytest.raises(DatasetError, match="missing 'answer'"):
        load_problems(path)  # evaluation still needs gold answers


class FakeEngine:
    def __init__(self, model_path, cfg, prompt):
        self.cfg = cfg

    def close(self):
        pass


def fake_seeded_sampler(engine, n, temperature, seed):
    texts = ["x = 1/2, so \\boxed{\\frac{1}{2}}", "\\boxed{0.5}", "\\boxed{2}", "The answer is 1/2"]

    def sample(problems):
        return [[texts[i % len(texts)] for i in range(n)] for _ in problems]

    return sample


def test_cli_single_problem(tmp_path, monkeypatch, capsys):
    import launch.best_of_n as cli

    monkeypatch.setattr(cli, "RolloutEngine", FakeEngine)
    monkeypatch.setattr(cli, "seeded_sampler", fake_seeded_sampler)
    # A colon and brackets: as YAML this would be a mapping; the CLI takes the text literally.
    problem = "Solve: 2x = 1 [for x]. What is x?"
    summary = cli.main([f"problem={problem}", f"output_dir={tmp_path}", "rollout.n=6", "verifier.num_workers=1"])
    (record,) = [json.loads(line) for line in (tmp_path / "best_of_n.jsonl").read_text().splitlines()]
    assert record["problem"] == problem and record["n"] == 6 and "gold" not in record
    assert record["chosen"]["majority"]["answer"] == "\\frac{1}{2}"
    assert [c["group"] for c in record["candidates"]] == [0, 0, 1, 0, 0, 0]
    assert summary["num_problems"] == 1 and json.loads((tmp_path / "summary.json").read_text()) == summary
    assert "majority: \\frac{1}{2}  (sample 0, 5 of 6 samples give this answer)" in capsys.readouterr().out


def test_cli_rejects_bad_config(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "launch" / "best_of_n.py"), "rollout.temperature=0", f"output_dir={tmp_path}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "rollout.temperature" in out.stderr


@pytest.mark.slow
def test_cli_single_problem_through_vllm(tiny_model_dir, tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "launch" / "best_of_n.py"), "--config", str(ROOT / "configs" / "best_of_n_tiny.yaml"),
         f"model_path={tiny_model_dir}", "problem=What is 2+3?", f"output_dir={tmp_path}", "rollout.n=4",
         "rollout.max_tokens=8", "rollout.engine.max_model_len=128", "rollout.engine.kv_cache_gb=0.25"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (record,) = [json.loads(line) for line in (tmp_path / "best_of_n.jsonl").read_text().splitlines()]
    assert record["n"] == 4 and len(record["candidates"]) == 4 and "majority" in record["chosen"]
    assert json.loads((tmp_path / "summary.json").read_text())["num_problems"] == 1
