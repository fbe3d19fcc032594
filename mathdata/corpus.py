"""The pretraining corpus: worked problems mixed with short lessons on the ideas behind them.

Two kinds of document:

* worked: one to three problems of the synthetic train split, each "Problem: ...\\nSolution: ...";
* lesson: one concept (place value, carrying, borrowing, multiplying by place value, long
  division, order of operations, equivalent fractions, fraction operations, percents,
  isolating x, word problems) in varied phrasing, with numbers drawn from the same seed.

No test problem gets in, nor any of the RL set. Worked problems are the train set's (the
first `train_size` problems of the train stream of `iter_problems`), and
every lesson example that is also a problem of some family (a sum done in columns, an
equation, ...) is built as that problem and redrawn until `split_of` puts its key in train.
Lessons only cover the families the `SyntheticDataConfig` names, at its levels and knobs.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable, Iterator
from fractions import Fraction
from itertools import cycle, islice
from pathlib import Path

from mathdata.io import write_jsonl
from mathdata.problems import Problem
from mathrl.seeding import derive_seed
from mathdata.synthetic import (
    Draft,
    LevelKnobs,
    SyntheticDataConfig,
    draw_for_split,
    iter_problems,
    latex_number,
    number_with_digits,
    place_parts,
    product_problem,
    quotient_problem,
    split_of,
    sum_problem,
)

_PLACES = (
    "ones",
    "tens",
    "hundreds",
    "thousands",
    "ten thousands",
    "hundred thousands",
    "millions",
    "ten millions",
    "hundred millions",
    "billions",
)
_EXAMPLE_INTROS = ("For example:", "Here is an example.", "Let us try one.", "An example:")


def generate_corpus(
    n_docs: int,
    seed: int = 0,
    data: SyntheticDataConfig | None = None,
    explanation_share: float = 0.3,
    facts_share: float = 0.0,
) -> list[str]:
    """`n_docs` documents; see `iter_corpus`."""
    return list(islice(iter_corpus(seed, data, explanation_share, facts_share), n_docs))


def write_corpus(
    path: str | Path, n_docs: int, seed: int = 0, data: SyntheticDataConfig | None = None, explanation_share: float = 0.3
) -> Path:
    """The corpus as JSONL, one {"text": document} per line."""
    docs = islice(iter_corpus(seed, data, explanation_share), n_docs)
    return write_jsonl(({"text": doc} for doc in docs), path)


def iter_corpus(
    seed: int = 0, data: SyntheticDataConfig | None = None, explanation_share: float = 0.3, facts_share: float = 0.0
) -> Iterator[str]:
    """Documents: a share `facts_share` of them number-fact sheets, a share `explanation_share`
    lessons, the rest worked problems, drawn in turn from the first `data.train_size` train
    problems (again from the first once all were used). `data` sets the families, levels, knobs
    and that size (default: all of them); `seed` replaces its seed."""
    if not 0 <= explanation_share <= 1:
        raise ValueError(f"explanation_share: must be in [0, 1], got {explanation_share}")
    if not 0 <= facts_share <= 1 - explanation_share:
        raise ValueError(f"facts_share: must be in [0, 1 - explanation_share], got {facts_share}")
    data = dataclasses.replace(data or SyntheticDataConfig(), seed=seed)
    if data.train_size == 0 and facts_share + explanation_share < 1:
        raise ValueError("worked problems come from the train set: data.train_size must be > 0 (or the shares sum to 1)")
    rng = random.Random(derive_seed("mathrl-corpus", seed))
    # Worked problems cycle through the train set only: the train stream past it is the RL set.
    problems = cycle(islice(iter_problems(data, "train"), data.train_size))
    lessons = [lesson for lesson, family in _LESSONS.values() if family in data.families]
    while True:
        draw = rng.random()
        if draw < facts_share:
            yield _number_facts(rng)
        elif lessons and draw < facts_share + explanation_share:
            knobs = data.difficulty.at(rng.choice(data.levels))
            yield rng.choice(lessons)(rng, knobs)
        else:
            yield _worked(list(islice(problems, rng.randint(1, 3))), rng)


def _worked(problems: list[Problem], rng: random.Random) -> str:
    header = rng.choice(("", "Practice problems\n\n", "Worked examples\n\n", "Exercises with solutions\n\n"))
    return header + "\n\n".join(f"Problem: {p.problem}\nSolution: {p.solution}" for p in problems)


def _number_facts(rng: random.Random, count: int = 24) -> str:
    """A sheet of one-digit facts (sums, differences, products, exact quotients), the times
    tables of primary school: a small model meets each fact far more often here than inside
    worked problems, where most numbers have several digits."""
    lines = []
    for _ in range(count):
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        op = rng.choice("+-×÷")
        if op == "+":
            lines.append(f"{a} + {b} = {a + b}")
        elif op == "-":
            lines.append(f"{a + b} - {b} = {a}")  # never negative
        elif op == "×":
            lines.append(f"{a} × {b} = {a * b}")
        else:
            lines.append(f"{a * (b + 1)} ÷ {b + 1} = {a}")
    return rng.choice(("Number facts\n\n", "Practice sheet\n\n", "")) + "\n".join(lines)


def _train_example(make: Callable[[], Draft]) -> Draft:
    """Build examples with `make` until one is a train problem."""
    while True:
        draft = make()
        if split_of(draft.key) == "train":
            return draft


def _steps_of(draft: Draft) -> str:
    """The worked solution without its final "The answer is ..." line."""
    return draft.solution.rsplit("\n", 1)[0]


def _lesson(title: str, *paragraphs: str) -> str:
    return "\n\n".join([title, *paragraphs])


# --- arithmetic lessons ------------------------------------------------------------------------


def _place_value(rng: random.Random, k: LevelKnobs) -> str:
    n = number_with_digits(rng, rng.randint(3, max(4, k.digits + 2)))
    intro = rng.choice(
        (
            "Every digit in a number has a place value: where the digit stands tells how much it is worth.",
            "The value of a digit depends on its position. One place to the left, a digit is worth ten times as much.",
            "We write every number with the ten digits 0 to 9. The place a digit sits in decides what it is worth.",
        )
    )
    text = str(n)
    lines = []
    for i, digit in enumerate(text):
        place = _PLACES[len(text) - 1 - i]
        value = int(digit) * 10 ** (len(text) - 1 - i)
        if digit == "0":
            lines.append(f"The 0 in the {place} place means there are no {place}; it keeps the other digits in their places.")
        else:
            lines.append(f"The digit {digit} is in the {place} place, so it stands for {value}.")
    expanded = " + ".join(map(str, place_parts(n)))
    return _lesson("Place value", intro, f"Take the number {n}.\n" + "\n".join(lines), f"So {n} = {expanded}.")


def _column_addition(a: int, b: int) -> list[str]:
    lines, carry = [], 0
    width = max(len(str(a)), len(str(b)))
    for i in range(width):
        x, y = a // 10**i % 10, b // 10**i % 10
        total = x + y + carry
        terms = f"{x} + {y}" + (f" + {carry} (carried)" if carry else "")
        if i == width - 1:
            lines.append(f"{_PLACES[i].capitalize()}: {terms} = {total}. Write {total}.")
        elif total >= 10:
            lines.append(f"{_PLACES[i].capitalize()}: {terms} = {total}. Write {total % 10} and carry 1.")
        else:
            lines.append(f"{_PLACES[i].capitalize()}: {terms} = {total}. Write {total}.")
        carry = total // 10
    return lines


def _carrying(rng: random.Random, k: LevelKnobs) -> str:
    while True:
        a, b = (number_with_digits(rng, max(2, k.digits)) for _ in range(2))
        carries = any("carry 1" in line for line in _column_addition(a, b))
        if carries and split_of(sum_problem(rng, [a, b], ["+"]).key) == "train":
            break
    intro = rng.choice(
        (
            "To add in columns, line the numbers up by place value and add one column at a time, starting with the ones.",
            "Column addition goes from right to left. When a column adds up to 10 or more, write its ones digit and "
            "carry 1 to the next column.",
        )
    )
    return _lesson(
        "Carrying in addition", intro, f"Add {a} and {b}.\n" + "\n".join(_column_addition(a, b)), f"So {a} + {b} = {a + b}."
    )


def _column_subtraction(a: int, b: int) -> list[str]:
    """a - b by columns, for a > b whose digits are all nonzero (so a lent 1 never meets a 0)."""
    lines, lent = [], 0
    for i in range(len(str(a))):
        x, y = a // 10**i % 10 - lent, b // 10**i % 10
        place = _PLACES[i].capitalize()
        was = f"{x + lent} - 1 = {x}, and " if lent else ""
        if x < y:
            lines.append(
                f"{place}: {was}{x} is less than {y}, so borrow 1 from the {_PLACES[i + 1]}: {x + 10} - {y} = {x + 10 - y}."
            )
            lent = 1
        else:
            lines.append(f"{place}: {was}{x} - {y} = {x - y}.")
            lent = 0
    return lines


def _borrowing(rng: random.Random, k: LevelKnobs) -> str:
    while True:
        a, b = sorted((number_with_digits(rng, max(2, k.digits)) for _ in range(2)), reverse=True)
        if a == b or "0" in str(a) or not any("borrow" in line for line in _column_subtraction(a, b)):
            continue
        if split_of(sum_problem(rng, [a, b], ["-"]).key) == "train":
            break
    intro = rng.choice(
        (
            "To subtract in columns, start with the ones. If the top digit is smaller than the bottom digit, borrow 1 "
            "from the next place: it is worth 10 here.",
            "Subtracting column by column works from right to left. A column whose top digit is too small borrows ten "
            "from the column to its left.",
        )
    )
    return _lesson(
        "Borrowing in subtraction",
        intro,
        f"Subtract {b} from {a}.\n" + "\n".join(_column_subtraction(a, b)),
        f"So {a} - {b} = {a - b}.",
    )


def _multiplying(rng: random.Random, k: LevelKnobs) -> str:
    draft = _train_example(lambda: product_problem(rng, number_with_digits(rng, max(2, k.digits)), number_with_digits(rng, 2)))
    intro = rng.choice(
        (
            "To multiply by a number with several digits, split it into its place values, multiply by each part and add"
            " the results.",
            "Multiplication spreads over addition: 23 × 46 is 23 × 40 plus 23 × 6. Splitting a factor by place value "
            "turns a hard product into easy ones.",
        )
    )
    return _lesson("Multiplying by place value", intro, f"{rng.choice(_EXAMPLE_INTROS)}\n{_steps_of(draft)}")


def _long_division(rng: random.Random, k: LevelKnobs) -> str:
    def make() -> Draft:
        divisor = rng.randint(2, 12)
        return quotient_problem(rng, divisor * number_with_digits(rng, max(2, k.digits)), divisor)

    draft = _train_example(make)
    intro = rng.choice(
        (
            "Long division works from the left. Take the first digits that are at least the divisor, divide, keep the "
            "remainder, bring down the next digit and repeat.",
            "In long division each step divides a small number: the remainder so far with the next digit written after "
            "it. The digits of the answer come one per step.",
        )
    )
    return _lesson("Long division", intro, f"{rng.choice(_EXAMPLE_INTROS)}\n{_steps_of(draft)}")


# --- lessons built around a problem of a family ------------------------------------------------


def _with_example(title: str, intros: tuple[str, ...], family: str) -> Callable[[random.Random, LevelKnobs], str]:
    """A lesson that explains, then works one train problem of `family` at the drawn level."""

    def lesson(rng: random.Random, k: LevelKnobs) -> str:
        draft = draw_for_split(rng, family, k)
        example = f"{rng.choice(_EXAMPLE_INTROS)}\n{draft.problem}\n{draft.solution}"
        return _lesson(title, rng.choice(intros), example)

    return lesson


_order_of_operations = _with_example(
    "Order of operations",
    (
        "Work out the brackets first. Then do multiplication and division from left to right, and last addition and "
        "subtraction from left to right.",
        "An expression is evaluated in a fixed order: parentheses, then × and ÷ as they come from the left, then + and "
        "- as they come from the left.",
        "Without a fixed order, 2 + 3 × 4 could mean 20 or 14. The rule is: brackets first, then × and ÷, then + and -,"
        " each from left to right. So 2 + 3 × 4 = 2 + 12 = 14.",
    ),
    "order_of_operations",
)

_fraction_operations = _with_example(
    "Adding, multiplying and dividing fractions",
    (
        "To add or subtract fractions, rewrite them over a common denominator (the least common multiple of the "
        "denominators) and add the numerators. To multiply, multiply the tops and the bottoms. To divide, multiply by "
        "the reciprocal. Always reduce the result.",
        "Fractions can only be added when they count the same parts, so first give them the same denominator. A product"
        " of fractions is the product of the numerators over the product of the denominators, and dividing by a "
        "fraction means multiplying by it upside down.",
    ),
    "fractions",
)

_isolating_x = _with_example(
    "Solving for x",
    (
        "An equation is a balance: whatever you do to one side, do to the other. First expand brackets, then gather the"
        " x terms on one side and the numbers on the other, then divide by the number in front of x.",
        "To solve a linear equation, undo what was done to x. Adding and subtracting the same thing on both sides moves"
        " terms across; dividing both sides by the coefficient leaves x alone.",
    ),
    "linear_equations",
)

_word_problems = _with_example(
    "Solving word problems",
    (
        "Read the story once for the question and once for the numbers. Write down what each number means, decide which"
        " operation each sentence describes, and work through them in order.",
        "A word problem is arithmetic in disguise. Turn every sentence into one calculation, keep the units, and check "
        "that the answer fits the question.",
    ),
    "word_problems",
)

_percent_problems = _with_example(
    "Percent problems",
    (
        "To find p% of a number, write p% as a fraction in lowest terms, divide the number by its denominator and"
        " multiply by its numerator: 15% = \\frac{3}{20}, so 15% of 580 = 580 ÷ 20 × 3 = 29 × 3 = 87. An increase"
        " of p% leaves (100 + p)% of the old value and a decrease leaves (100 - p)%.",
        "Percent means out of a hundred. To write a part as a percent of a whole, reduce the fraction part/whole and"
        " rewrite it over 100: \\frac{36}{48} = \\frac{3}{4} = \\frac{75}{100} = 75%. The percent change is the"
        " change as a percent of the starting value.",
    ),
    "percentages",
)


def _equivalent_fractions(rng: random.Random, k: LevelKnobs) -> str:
    base = Fraction(rng.randint(1, k.max_coefficient - 1), rng.randint(2, k.max_coefficient))
    while base >= 1:
        base = Fraction(rng.randint(1, k.max_coefficient - 1), rng.randint(2, k.max_coefficient))
    p, q = base.numerator, base.denominator
    factor = rng.randint(2, 9)
    intro = rng.choice(
        (
            "Two fractions are equivalent when they name the same amount. Multiplying the numerator and the denominator"
            " by the same number gives an equivalent fraction.",
            "A fraction does not change when its top and bottom are multiplied or divided by the same nonzero number.",
        )
    )
    chain = " = ".join(f"\\frac{{{p * m}}}{{{q * m}}}" for m in range(1, 5))
    big = f"\\frac{{{p * factor}}}{{{q * factor}}}"
    gcd = math.gcd(p * factor, q * factor)
    simplify = (
        f"To simplify {big}, divide the top and the bottom by their greatest common divisor, {gcd}: "
        f"{big} = {latex_number(base)}. A fraction is in lowest terms when that divisor is 1."
    )
    return _lesson("Equivalent fractions", intro, chain + ".", simplify)


def _what_percent_is(rng: random.Random, k: LevelKnobs) -> str:
    p = rng.randint(1, 99)
    fraction = Fraction(p, 100)
    reduced = f" = {latex_number(fraction)}" if fraction.denominator != 100 else ""
    intro = rng.choice(
        (
            f"Percent means per hundred. {p}% means {p} out of every 100.",
            f"A percent is a fraction with denominator 100: {p}% is {p} hundredths.",
        )
    )
    return _lesson(
        "What a percent is",
        intro,
        f"So {p}% = \\frac{{{p}}}{{100}}{reduced} = {p / 100:g}.",
        "100% is the whole amount, 50% is half of it and 25% is a quarter.",
    )


_LESSONS: dict[str, tuple[Callable[[random.Random, LevelKnobs], str], str]] = {
    # name: (lesson, the family it serves)
    "place_value": (_place_value, "arithmetic"),
    "carrying": (_carrying, "arithmetic"),
    "borrowing": (_borrowing, "arithmetic"),
    "multiplying": (_multiplying, "arithmetic"),
    "long_division": (_long_division, "arithmetic"),
    "order_of_operations": (_order_of_operations, "order_of_operations"),
    "equivalent_fractions": (_equivalent_fractions, "fractions"),
    "fraction_operations": (_fraction_operations, "fractions"),
    "what_a_percent_is": (_what_percent_is, "percentages"),
    "percent_problems": (_percent_problems, "percentages"),
    "isolating_x": (_isolating_x, "linear_equations"),
    "word_problems": (_word_problems, "word_problems"),
}
