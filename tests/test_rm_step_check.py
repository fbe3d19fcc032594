"""The pure parts of `bench/rm_step_check.py`: slips, slip pairs, and where numbers end."""

import random

import pytest
import torch

from bench.rm_step_check import ANY_NUMBER, EQUATION_RESULT, number_ends, slip_number, slip_pairs


@pytest.mark.parametrize("number", ["0", "7", "10", "315", "-47", "-5", "1000"])
def test_slip_number_always_changes_the_value_and_keeps_its_form(number):
    rng = random.Random(0)
    for _ in range(200):
        slipped = slip_number(number, rng)
        assert slipped != number
        assert slipped.startswith("-") == number.startswith("-")
        digits = slipped.lstrip("-")
        assert digits.isdigit()
        assert digits == "0" or not digits.startswith("0")


def test_slip_number_makes_both_kinds_of_slip():
    rng = random.Random(1)
    slips = {slip_number("315", rng) for _ in range(300)}
    one_digit = {s for s in slips if len(s) == 3 and sum(a != b for a, b in zip(s, "315")) == 1}
    assert one_digit and slips - one_digit  # digit changes, and moves by 1..10 that change more digits
    assert all(abs(int(s) - 315) <= 10 or s in one_digit for s in slips)


class CharTokenizer:
    """One token per character: enough to see where the pair's texts differ."""

    def encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text]


def test_slip_pairs_share_the_prompt_and_text_up_to_the_slipped_result():
    text = "45 × 7 = 315.\nThe new price is 900 - 315 = 585 dollars."
    prompt = [1, 2, 3]
    pairs = slip_pairs([(prompt, text), ([9], "no equation here")], CharTokenizer(), random.Random(0), 50)
    cut_points = {m.end(1) for m in EQUATION_RESULT.finditer(text)}
    for right, slipped in pairs:
        assert right[:3] == prompt and slipped[:3] == prompt  # the text without a result is never drawn
        right_text = "".join(map(chr, right[3:]))
        assert len(right_text) in cut_points and text.startswith(right_text)  # ends right after a result
        result = EQUATION_RESULT.findall(right_text)[-1]
        before = right_text[: len(right_text) - len(result)]
        slipped_text = "".join(map(chr, slipped[3:]))
        assert slipped_text.startswith(before) and slipped_text[len(before) :] != result
    with pytest.raises(ValueError, match="no response has a number"):
        slip_pairs([([1], "nothing to slip")], CharTokenizer(), random.Random(0), 1)


def test_slip_pairs_on_every_number_also_slip_operands_and_fraction_parts():
    text = "\\frac{10 - 3}{12} = \\frac{7}{12}."
    pairs = slip_pairs([([], text)], CharTokenizer(), random.Random(0), 200, ANY_NUMBER)
    cuts = {len(right) for right, _ in pairs}
    assert cuts == {m.end(1) for m in ANY_NUMBER.finditer(text)}  # every number, though none is an '= <integer>'
    assert not EQUATION_RESULT.search(text)


def test_number_ends_marks_the_last_digit_of_each_number_in_the_response_only():
    is_digit = torch.tensor([False, True, True, False, False])  # tokens 1 and 2 are digits
    ids = torch.tensor(
        [
            [1, 2, 0, 1, 3, 2, 2, 4],  # prompt of 3: "12 " then response "1 x 22 y"
            [2, 1, 3, 1, 1, 0, 0, 0],  # prompt of 1; padded after 5 tokens
        ]
    )
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    ends = number_ends(ids, mask, is_digit, prompt_lengths=[3, 1])
    assert ends.tolist() == [
        [False, False, False, True, False, False, True, False],  # the prompt's number "12" is left out
        [False, True, False, False, True, False, False, False],  # "1" right after the prompt's "2": one run, ends inside the response
    ]
    # padding never counts, even where its id is a digit
    padded_digits = torch.tensor([[3, 1, 1]])
    assert number_ends(padded_digits, torch.tensor([[1, 1, 0]]), is_digit, [0]).tolist() == [[False, True, False]]
