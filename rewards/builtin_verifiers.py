"""The built-in verifiers, named in configs as "math", "multiple_choice" and "integer".

Each is an `AnswerVerifier` (extract a final answer, then compare it with the gold), so
`BatchVerifier` caches them by (answer, gold) and `rewards.grade` can grade bare answers.
Every `compare` normalizes both sides, so an answer given as "(B)" or "$1,000" compares
like one extracted from a response, and the gold may be a bare answer or a full reference
solution (ending in \\boxed{...}, or in "#### N" for GSM8K).
"""

from __future__ import annotations

import re
from decimal import Decimal

from rewards.extract import extract_answer
from rewards.math_equivalence import math_verifier
from rewards.registry import AnswerVerifier

# --- math: sympy-backed equivalence of the final (boxed) answer -------------------------


def _math_compare(answer: str, gold: str) -> bool:
    # math_verifier owns the gold handling (bare answer or reference solution); boxing the
    # answer makes it exactly what its extractor returns, so this equals
    # math_verifier(response, gold) for the response the answer came from.
    return math_verifier(f"\\boxed{{{answer}}}", gold)


math = AnswerVerifier(extract=extract_answer, compare=_math_compare)


# --- multiple_choice: one letter A-E -----------------------------------------------------

_CHOICE = re.compile(r"\(?([A-E])\)?[.:]?")
_LEADING_CHOICE = re.compile(r"\(?([A-E])[).:]\s")  # "(B) 42", "B. 42"
_LATEX_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")
# Only upper-case letters count: "the answer is a prime" must not read as choice A.
_STANDALONE_CHOICE = re.compile(r"(?<![A-Za-z])([A-E])(?![A-Za-z])")
_ANSWER_WORD = re.compile(r"(?i:answer)")
_ANSWER_WINDOW = 80  # characters after the last "answer" searched for the letter


def _choice_of(text: str) -> str | None:
    """The letter if `text` is just a choice ("B", "(B)", "B.", "\\text{(B)}", "$B$", "**B**")
    or an option with its text ("(B) 42")."""
    text = _LATEX_WRAPPER.sub(r"\1", text).replace("$", "").replace("*", "").strip()
    match = _CHOICE.fullmatch("".join(text.split())) or _LEADING_CHOICE.match(text + " ")
    return match.group(1) if match else None


def extract_choice(response: str) -> str | None:
    """The chosen letter: the final answer `extract_answer` finds if it is a choice (boxed,
    "The answer is (B)", "Answer: B"), else the first letter within a few words after the
    last "answer" ("the answer is option C"), else a last line that is only a choice."""
    final = extract_answer(response)
    if final is not None and (letter := _choice_of(final)):
        return letter
    last_answer = None
    for last_answer in _ANSWER_WORD.finditer(response):
        pass
    if last_answer is not None:
        window = _LATEX_WRAPPER.sub(r"\1", response[last_answer.end() : last_answer.end() + _ANSWER_WINDOW])
        if match := _STANDALONE_CHOICE.search(window):
            return match.group(1)
    lines = [line for line in response.strip().splitlines() if line.strip()]
    return _choice_of(lines[-1]) if lines else None


def _choice_compare(answer: str, gold: str) -> bool:
    chosen = _choice_of(answer)
    return chosen is not None and chosen == (_choice_of(gold) or extract_choice(gold))


multiple_choice = AnswerVerifier(extract=extract_choice, compare=_choice_compare)


# --- integer: GSM8K-style whole-number answers -------------------------------------------

# One number: thousands groups must be exact, and it may not be part of a larger token, so
# "1,2,3" and "3/4" hold no number and "v2" no digit run to take.
_NUMBER = re.compile(r"(?<![\w.,/])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w/]|[.,]\d)")


def _clean_number_text(text: str) -> str:
    text = _LATEX_WRAPPER.sub(r"\1", text).replace("{,}", ",").replace("\u2212", "-")
    for noise in ("\\$", "$", "\\,", "\\!"):
        text = text.replace(noise, "")
    return text


def _to_int(text: str) -> int | None:
    """`text` as an integer if it is exactly one number ("2,125", "$18", "18.00"), else None."""
    cleaned = "".join(_clean_number_text(text).split()).rstrip(".")
    if not _NUMBER.fullmatch(cleaned):
        return None
    value = Decimal(cleaned.replace(",", ""))
    return int(value) if value == value.to_integral_value() else None


def extract_integer(response: str) -> str | None:
    """The last number in the final answer that `extract_answer` finds (the boxed one, the
    one after "answer is" or "####", else the last number of the response), so that
    "The answer is 18 dollars." gives "18". A final answer holding no number is returned
    as it is (and compares unequal)."""
    answer = extract_answer(response)
    if answer is None:
        return None
    numbers = _NUMBER.findall(_clean_number_text(answer))
    return numbers[-1] if numbers else answer


def _integer_compare(answer: str, gold: str) -> bool:
    value = _to_int(answer)
    if value is None:
        return False
    expected = _to_int(gold)
    if expected is None and (gold_answer := extract_integer(gold)) is not None:
        expected = _to_int(gold_answer)  # a full GSM8K solution ending in "#### 72"
    return value == expected


integer = AnswerVerifier(extract=extract_integer, compare=_integer_compare)
