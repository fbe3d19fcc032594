"""The pure parts of `bench/rm_fresh_slips.py`: where a twin's slip ends, the curriculum's cuts,
the policy-drawn slips, and that fresh problems never include the RM's sampled ones."""

import json
import random

import pytest
import torch

from bench.rm_fresh_slips import TwinPair, choose_policy_slip, cut_pair, differ_at_a_number, fresh_problems, slip_ends
from rewards.rm_data import EVAL_FILE, TRAIN_FILE, SampledGroup

RIGHT = "45 × 7 = 315.\nThe new price is 900 - 315 = 585 dollars."
SLIPPED = "45 × 7 = 325.\nThe new price is 900 - 325 = 575 dollars."


@pytest.mark.parametrize(
    ("right", "slipped", "ends"),
    [
        (RIGHT, SLIPPED, ("45 × 7 = 315", "45 × 7 = 325")),  # differs inside the number: the whole number counts
        ("x = 9, so 2x = 18", "x = 10, so 2x = 20", ("x = 9", "x = 10")),  # the slip changes the number's length
        ("7 - 8 = -1.", "7 - 8 = -6.", ("7 - 8 = -1", "7 - 8 = -6")),
    ],
)
def test_slip_ends_are_the_ends_of_the_slipped_number(right, slipped, ends):
    right_end, slipped_end = slip_ends(right, slipped)
    assert (right[:right_end], slipped[:slipped_end]) == ends


def test_texts_that_do_not_differ_at_a_digit_are_refused():
    for right, slipped in [(RIGHT, RIGHT), ("so x = 3", "hence x = 3"), ("a = 3", "a = 3 more")]:
        assert not differ_at_a_number(right, slipped)
        with pytest.raises(ValueError, match="do not differ at a digit"):
            slip_ends(right, slipped)


def test_cuts_move_from_the_slip_to_the_end_and_keep_the_shared_prefix():
    pair = TwinPair([1, 2], RIGHT, SLIPPED)
    right_end, slipped_end = slip_ends(RIGHT, SLIPPED)
    assert cut_pair(pair, 0.0) == (RIGHT[:right_end], SLIPPED[:slipped_end])  # right after the slipped number
    assert cut_pair(pair, 1.0) is None  # whole texts
    lengths = [len(cut_pair(pair, f)[0]) for f in (0.0, 0.25, 0.5, 0.75, 0.99)]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1] <= len(RIGHT)
    for f in (0.0, 0.3, 0.9):
        right, slipped = cut_pair(pair, f)
        assert RIGHT.startswith(right) and SLIPPED.startswith(slipped)
        assert right[: right_end - 2] == slipped[: right_end - 2]  # both still hold the text before the slip


def test_policy_slips_only_replace_digits_by_other_digits_where_the_policy_puts_mass():
    is_digit = torch.tensor([0, 1, 1, 1, 0], dtype=torch.float)  # tokens 1-3 are digits
    response = [0, 1, 4, 2, 3]
    probs = torch.tensor(
        [
            [0.0, 0.5, 0.5, 0.0, 0.0],  # not a digit: never slips, whatever its distribution
            [0.0, 1.0, 0.0, 0.0, 0.0],  # a digit the policy is sure of: no mass on another digit
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.0, 0.3, 0.6, 0.1, 0.0],  # digit 2 written; 0.4 on the others, 3:1 for digit 1
            [0.0, 0.0, 0.2, 0.8, 0.0],  # digit 3 written; 0.2 on digit 2
        ]
    )
    rng = random.Random(0)
    draws = [choose_policy_slip(response, probs, is_digit, rng) for _ in range(4000)]
    places = {k for k, _ in draws}
    assert places == {3, 4}
    share_at_3 = sum(k == 3 for k, _ in draws) / len(draws)
    assert share_at_3 == pytest.approx(0.4 / 0.6, abs=0.03)  # in proportion to the mass on other digits
    at_3 = [d for k, d in draws if k == 3]
    assert set(at_3) == {1, 3} and sum(d == 1 for d in at_3) / len(at_3) == pytest.approx(0.75, abs=0.04)
    assert {d for k, d in draws if k == 4} == {2}
    assert choose_policy_slip([1, 4], probs[1:3], is_digit, rng) is None  # nowhere to slip


def test_fresh_problems_leave_out_every_sampled_problem_by_id_and_by_text(tmp_path):
    rows = [{"id": f"p{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(10)]
    rows.append({"id": "copy", "problem": "What is 3 + 3?", "answer": "6"})  # another id, a sampled text
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    samples = tmp_path / "samples"
    samples.mkdir()

    def group(i: int) -> str:
        return json.dumps(SampledGroup(f"p{i}", f"What is {i} + {i}?", str(2 * i), [1], ["x"], [[5]], [True], ["stop"]).to_dict())

    (samples / TRAIN_FILE).write_text(group(1) + "\n" + group(3) + "\n")
    (samples / EVAL_FILE).write_text(group(5) + "\n")
    fresh = fresh_problems(str(problems), 100, samples)
    assert [p.id for p in fresh] == ["p0", "p2", "p4", "p6", "p7", "p8", "p9"]
    assert [p.id for p in fresh_problems(str(problems), 3, samples)] == ["p0", "p2", "p4"]
