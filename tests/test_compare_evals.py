"""The paired comparison of two evaluations (`rl.compare_evals`) and the per-problem records
GRPO's periodic evaluation writes for it."""

import json
import math
import random

import pytest

from grpo_fakes import FakeLearner, FakeRollout, FakeVerifier, grpo_cfg, problems_with_correct_counts
from rl.compare_evals import compare, main, mcnemar_exact_p, mean_difference_test, paired_difference_interval, read_records
from rl.controller import GRPOController


def records(verdicts, **fields):
    return [{"id": f"p{i}", "correct": bool(v), **{k: f(i) for k, f in fields.items()}} for i, v in enumerate(verdicts)]


def test_mcnemar_matches_a_hand_computed_binomial_tail():
    # 2 vs 8 disagreements: P(X <= 2 | n=10, 1/2) = (1 + 10 + 45) / 1024, doubled
    assert mcnemar_exact_p(2, 8) == pytest.approx(112 / 1024)
    assert mcnemar_exact_p(8, 2) == mcnemar_exact_p(2, 8)
    assert mcnemar_exact_p(5, 5) == 1.0  # an even split: no evidence either way (capped at 1)
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(0, 10) == pytest.approx(2 / 1024)
    # large counts stay exact and finite (no float overflow in the binomial coefficients)
    assert 0 < mcnemar_exact_p(200, 300) < 1e-5


def test_interval_uses_the_paired_variance():
    low, high = paired_difference_interval(100, 2, 8)
    half = 1.959963984540054 * math.sqrt(10 - 36 / 100) / 100
    assert (low, high) == pytest.approx((0.06 - half, 0.06 + half))
    assert paired_difference_interval(100, 0, 0) == (0.0, 0.0)  # identical results: no spread


def test_comparison_counts_disagreements_and_ignores_record_order():
    a = records([1, 1, 0, 0, 1, 0])
    b = records([1, 0, 1, 1, 1, 0])
    result = compare(a, b)
    assert (result.problems, result.only_a, result.only_b) == (6, 1, 2)
    assert result.accuracy_a == pytest.approx(3 / 6) and result.accuracy_b == pytest.approx(4 / 6)
    assert result.difference == pytest.approx(result.accuracy_b - result.accuracy_a)
    shuffled = b[:]
    random.Random(0).shuffle(shuffled)
    assert compare(a, shuffled) == result


def test_swapping_the_sides_negates_the_difference_and_keeps_the_p_value():
    rng = random.Random(1)
    a = records([rng.random() < 0.6 for _ in range(200)])
    b = records([rng.random() < 0.7 for _ in range(200)])
    ab, ba = compare(a, b), compare(b, a)
    assert ba.difference == pytest.approx(-ab.difference)
    assert (ba.ci_low, ba.ci_high) == pytest.approx((-ab.ci_high, -ab.ci_low))
    assert ba.p_value == ab.p_value and (ba.only_a, ba.only_b) == (ab.only_b, ab.only_a)


def test_an_evaluation_against_itself_shows_no_difference():
    a = records([1, 0, 1, 1, 0])
    result = compare(a, a)
    assert result.difference == 0 and result.p_value == 1.0 and result.ci_low == result.ci_high == 0


def test_breakdown_counts_add_up_to_the_total():
    a = records([1, 1, 0, 0, 1, 0, 1, 0], family=lambda i: "fractions" if i % 2 else "arithmetic")
    b = records([0, 1, 1, 1, 1, 0, 0, 1])
    result = compare(a, b, by=("family",))
    table = result.by["family"]
    assert set(table) == {"arithmetic", "fractions"}
    assert sum(row["problems"] for row in table.values()) == result.problems
    assert sum(row["only_a"] for row in table.values()) == result.only_a
    assert sum(row["only_b"] for row in table.values()) == result.only_b
    with pytest.raises(ValueError, match="no record has a 'subject' field"):
        compare(a, b, by=("subject",))


def test_different_problem_sets_or_repeated_ids_are_refused():
    with pytest.raises(ValueError, match="different problems"):
        compare(records([1, 0, 1]), records([1, 0]))
    with pytest.raises(ValueError, match="appears twice"):
        compare(records([1, 0]) + records([1]), records([1, 0]))


def test_cli_reads_files_and_directories_and_names_bad_input(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "responses.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records([1, 0, 0, 0])))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records([1, 1, 1, 0])))
    out_json = tmp_path / "cmp.json"
    assert main([str(tmp_path / "a"), str(tmp_path / "b.jsonl"), "--json", str(out_json)]) == 0
    assert "+50.0 points" in capsys.readouterr().out
    saved = json.loads(out_json.read_text())
    assert (saved["only_a"], saved["only_b"]) == (0, 2)

    (tmp_path / "bad.jsonl").write_text('{"id": "p0"}\n')
    assert main([str(tmp_path / "a"), str(tmp_path / "bad.jsonl")]) == 2
    assert "record 1 has no 'correct'" in capsys.readouterr().err
    assert main([str(tmp_path / "a"), str(tmp_path / "missing.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def sampled(pass_at_1, **fields):
    """Records as `launch/evaluate.py samples=N` writes them: a greedy verdict and at_k fractions."""
    return [{"id": f"p{i}", "correct": v >= 0.5, "at_k": {"pass@1": v, "maj@8": float(v >= 0.5)}, **{k: f(i) for k, f in fields.items()}}
            for i, v in enumerate(pass_at_1)]


def test_a_sampled_metric_is_compared_as_a_mean_of_per_problem_fractions():
    a = sampled([0.25, 0.5, 1.0, 0.0, 0.75])
    b = sampled([0.5, 0.5, 0.875, 0.25, 1.0])
    result = compare(a, b, metric="pass@1")
    diffs = [0.25, 0.0, -0.125, 0.25, 0.25]
    mean = sum(diffs) / 5
    se = math.sqrt((sum(d * d for d in diffs) / 5 - mean**2) / 5)
    assert result.difference == pytest.approx(mean) == pytest.approx(result.accuracy_b - result.accuracy_a)
    assert (result.ci_low, result.ci_high) == pytest.approx((mean - 1.959963984540054 * se, mean + 1.959963984540054 * se))
    assert result.p_value == pytest.approx(math.erfc(mean / se / math.sqrt(2)))
    assert (result.only_a, result.only_b, result.test) == (1, 3, "paired normal")
    # swapping the sides mirrors everything; comparing a side with itself shows nothing
    ba = compare(b, a, metric="pass@1")
    assert ba.difference == pytest.approx(-mean) and ba.p_value == pytest.approx(result.p_value)
    assert compare(a, a, metric="pass@1").p_value == 1.0
    # 0/1 per problem (maj@k) is McNemar's case, the same numbers as comparing those verdicts
    majority = compare(a, b, metric="maj@8")
    as_verdicts = compare(records([v >= 0.5 for v in [0.25, 0.5, 1.0, 0.0, 0.75]]), records([v >= 0.5 for v in [0.5, 0.5, 0.875, 0.25, 1.0]]))
    assert majority.test == "McNemar exact"
    assert (majority.difference, majority.p_value, majority.ci_low) == (as_verdicts.difference, as_verdicts.p_value, as_verdicts.ci_low)


def test_mean_difference_test_on_0_1_values_gives_the_mcnemar_interval():
    pairs = [(1.0, 0.0)] * 2 + [(0.0, 1.0)] * 8 + [(1.0, 1.0)] * 90
    mean, low, high, _ = mean_difference_test(pairs)
    assert mean == pytest.approx(0.06)
    assert (low, high) == pytest.approx(paired_difference_interval(100, 2, 8))


def test_a_sampled_metric_missing_from_the_records_is_named(tmp_path, capsys):
    greedy = records([1, 0])
    with pytest.raises(ValueError, match="no 'pass@1'.*rerun it with samples=N"):
        compare(greedy, greedy, metric="pass@1")
    with pytest.raises(ValueError, match="no 'pass@64'.*it has: \\['maj@8', 'pass@1'\\]"):
        compare(sampled([0.5]), sampled([0.5]), metric="pass@64")
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sampled([0.25, 1.0], family=lambda i: "x")))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sampled([0.75, 1.0])))
    assert main([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--metric", "pass@1", "--by", "family"]) == 0
    out = capsys.readouterr().out
    assert "pass@1: A 62.5%, B 87.5%, B − A +25.0 points" in out and "paired normal" in out
    assert main([str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"), "--metric", "pass@3"]) == 2
    assert "no 'pass@3'" in capsys.readouterr().err


def test_grpo_evaluation_writes_per_problem_records_that_pair_with_each_other(tmp_path):
    problems = problems_with_correct_counts([3, 0, 5, 9, 1, 2])
    ctl = GRPOController(grpo_cfg(tmp_path), problems, FakeRollout(), FakeVerifier(), FakeLearner(), eval_problems=problems)
    accuracy = ctl.evaluate()
    eval_dir = tmp_path / "run" / "eval"
    saved = read_records(eval_dir / "step_000000.jsonl")
    assert [r["id"] for r in saved] == [p.id for p in problems]
    assert sum(r["correct"] for r in saved) / len(saved) == accuracy == json.loads((eval_dir / "step_000000.json").read_text())["accuracy"]
    assert compare(saved, saved).difference == 0
