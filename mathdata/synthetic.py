"""Synthetic math problems with gold answers and step-by-step solutions.

Six families of "basic math" (the data that made MiniMATH's small model work), each graded
into levels 1..5:

    arithmetic           + / - chains, multi-digit products, exact long division
    order_of_operations  expressions with ×, ÷, +, - and (from level 2) parentheses
    fractions            + - × ÷ of fractions; answers reduced, as \\frac{a}{b} or an integer
    percentages          p% of n, price changes, "what percent", percent change, original price
    linear_equations     from `x + 7 = 22` to `3(x - 2) + 5 = 2(x + 4)`; integer or fraction x
    word_problems        templated stories: shopping, sharing, travel at a rate, ages

Every solution is a few short lines ending in "The answer is \\boxed{...}.", and answers are
canonical: integers plain, negatives with "-", fractions as \\frac{a}{b} or -\\frac{a}{b}.

How hard a level is comes from `Difficulty`: four per-level knobs (digits, operands,
max_coefficient, steps) that each family reads as its docstring says, so the hardest level
can be tuned until a small SFT model solves a third to two thirds of it, where GRPO's
2-of-8..5-of-8 filter keeps most groups.

The split rule. Each problem has a `key` naming its mathematical content (family and numbers,
not the wording, names or items of a story). A keyed hash sends a fixed share (`TEST_SHARE`)
of all possible problems to the test split, so train and test never overlap whatever the
sizes, seeds, levels or knobs, and the pretraining corpus can use the same rule. A split is
the first `n` distinct problems of that split in one seeded stream, so a larger train set
extends a smaller one and the test set does not depend on the train size.

Departures from the issue: `generate_problems` takes the config (plus `n` and the split)
instead of repeating its fields as arguments; problems are distinct within a split, so a mix
with few distinct problems (level 1 only, one family) raises once it runs out instead of
repeating problems.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import partial
from itertools import count, islice
from typing import Literal

from mathdata.problems import Problem
from mathrl.seeding import derive_seed
from mathrl.config import require

Split = Literal["train", "test"]

LEVELS = (1, 2, 3, 4, 5)
FAMILY_NAMES = (
    "arithmetic",
    "order_of_operations",
    "fractions",
    "percentages",
    "linear_equations",
    "word_problems",
)
TEST_SHARE = 0.1  # share of every family's problems that only the test split may use
_MAX_CONSECUTIVE_MISSES = 20_000  # draws in a row that were duplicates or the other split


# --- configuration -------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelKnobs:
    """The knobs of one level (see `Difficulty`)."""

    level: int
    digits: int
    operands: int
    max_coefficient: int
    steps: int


@dataclass(frozen=True)
class Difficulty:
    """Per-level knobs; entry i is level i + 1. How each family reads them:

    digits           arithmetic: digits of every number (multipliers and divisors get half);
                     percentages: bases from digits to digits+1 digits;
                     word problems: size of prices, amounts and shares
    operands         arithmetic: numbers in a +/- chain; order of operations: operands + 1
                     numbers (two numbers have no order to get wrong); fractions:
                     2 + (operands - 2) // 2 terms
    max_coefficient  order of operations: largest number; fractions: largest denominator;
                     linear equations: largest coefficient and |x| (constants up to 5x);
                     word problems: largest count, group size, age gap, speed / 5
    steps            order of operations: parentheses from 2; fractions: 1 = one shared
                     denominator, 2 = any denominators, 3+ = also × and ÷; percentages:
                     question forms unlocked (1..5); linear equations: form (1 one-step,
                     2 ax + b = c, 3 x on both sides, 4 brackets, 5 brackets on both sides);
                     word problems: number of events in the story
    """

    digits: tuple[int, ...] = (2, 2, 3, 3, 4)
    operands: tuple[int, ...] = (2, 3, 4, 5, 6)
    max_coefficient: tuple[int, ...] = (12, 12, 15, 20, 25)
    steps: tuple[int, ...] = (1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        for name, low, high in (("digits", 1, 9), ("operands", 2, 8), ("max_coefficient", 3, 99), ("steps", 1, 5)):
            values = getattr(self, name)
            require(
                len(values) == len(LEVELS),
                name,
                f"needs one value per level 1..{len(LEVELS)}, got {len(values)}: {list(values)}",
            )
            for level, value in zip(LEVELS, values):
                require(
                    isinstance(value, int) and low <= value <= high,
                    name,
                    f"{value!r} at level {level} is out of range; allowed {low}..{high}",
                )

    def at(self, level: int) -> LevelKnobs:
        i = level - 1
        return LevelKnobs(level, self.digits[i], self.operands[i], self.max_coefficient[i], self.steps[i])


@dataclass(frozen=True)
class SyntheticDataConfig:
    """Which synthetic problems to make and how many; the same seed gives the same problems."""

    seed: int = 0
    train_size: int = 10_000
    test_size: int = 500
    # RL prompts (GRPO's problems): the train stream continued past its first `train_size`
    # problems, which are all that SFT and the pretraining corpus ever see (see `generate_rl_problems`).
    rl_size: int = 0
    levels: tuple[int, ...] = LEVELS  # each problem's level is drawn uniformly from these
    families: tuple[str, ...] = FAMILY_NAMES
    family_weights: dict[str, float] | None = None  # relative weights; unnamed families weigh 1
    difficulty: Difficulty = field(default_factory=Difficulty)

    def __post_init__(self) -> None:
        require(self.train_size >= 0, "train_size", f"must be >= 0, got {self.train_size}")
        require(self.test_size >= 0, "test_size", f"must be >= 0, got {self.test_size}")
        require(self.rl_size >= 0, "rl_size", f"must be >= 0, got {self.rl_size}")
        require(len(self.levels) > 0, "levels", f"must name at least one level of {LEVELS[0]}..{LEVELS[-1]}")
        for level in self.levels:
            require(level in LEVELS, "levels", f"{level!r} is not a level; allowed {LEVELS[0]}..{LEVELS[-1]}")
        require(len(set(self.levels)) == len(self.levels), "levels", f"lists a level twice: {list(self.levels)}")
        require(len(self.families) > 0, "families", f"must name at least one of {', '.join(FAMILY_NAMES)}")
        for name in self.families:
            require(name in FAMILY_NAMES, "families", f"unknown family {name!r}; known: {', '.join(FAMILY_NAMES)}")
        require(len(set(self.families)) == len(self.families), "families", f"lists a family twice: {list(self.families)}")
        for name, weight in (self.family_weights or {}).items():
            require(
                name in self.families,
                "family_weights",
                f"{name!r} is not in families ({', '.join(self.families)})",
            )
            require(
                isinstance(weight, (int, float)) and math.isfinite(weight) and weight > 0,
                "family_weights",
                f"weight of {name!r} must be a number > 0 (drop the family from families instead), got {weight!r}",
            )

    def weights(self) -> list[float]:
        """The sampling weight of each family in `families`, in order."""
        named = self.family_weights or {}
        return [float(named.get(name, 1.0)) for name in self.families]


# --- the stream of problems ------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    """A generated problem before it gets an id. `key` names its mathematical content; it
    decides the split and what counts as a duplicate."""

    key: str
    problem: str
    solution: str
    answer: str
    meta: dict[str, str] = field(default_factory=dict)


def split_of(key: str) -> Split:
    """The split a problem belongs to, from a stable hash of its key (never Python's `hash`)."""
    digest = hashlib.sha256(f"mathrl-split\x1f{key}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") < TEST_SHARE * 2**64 else "train"


def draw(rng: random.Random, family: str, knobs: LevelKnobs) -> Draft:
    """One problem of `family` at the level `knobs` describe, either split."""
    return _GENERATORS[family](rng, knobs)


def draw_for_split(rng: random.Random, family: str, knobs: LevelKnobs, split: Split = "train") -> Draft:
    """Draw until the problem belongs to `split` (used for examples outside a problem set)."""
    while True:
        draft = draw(rng, family, knobs)
        if split_of(draft.key) == split:
            return draft


def iter_problems(cfg: SyntheticDataConfig, split: Split = "train") -> Iterator[Problem]:
    """The endless stream of distinct problems of one split, ids "syn-<split>-000000" on.

    Both splits filter the same seeded stream of candidates, so problem i of a split is the
    same whatever was asked of the other split."""
    rng = random.Random(derive_seed("mathrl-synthetic", cfg.seed))
    weights = cfg.weights()
    seen: set[str] = set()
    misses = 0
    while True:
        family = rng.choices(cfg.families, weights)[0]
        level = rng.choice(cfg.levels)
        draft = draw(rng, family, cfg.difficulty.at(level))
        if split_of(draft.key) != split or draft.key in seen:
            misses += 1
            if misses > _MAX_CONSECUTIVE_MISSES:
                raise ValueError(
                    f"only {len(seen)} distinct {split} problems exist for levels {list(cfg.levels)} of "
                    f"{', '.join(cfg.families)}; ask for fewer or add harder levels or more families"
                )
            continue
        misses = 0
        seen.add(draft.key)
        yield Problem(
            id=f"syn-{split}-{len(seen) - 1:06d}",
            problem=draft.problem,
            answer=draft.answer,
            solution=draft.solution,
            source="synthetic",
            meta={"family": family, "level": level, "key": draft.key, **draft.meta},
        )


def generate_problems(cfg: SyntheticDataConfig, n: int, split: Split = "train") -> list[Problem]:
    """The first `n` problems of `split` for `cfg` (its sizes are not used)."""
    return list(islice(iter_problems(cfg, split), n))


def generate_splits(cfg: SyntheticDataConfig) -> tuple[list[Problem], list[Problem]]:
    """(train, test) with `cfg.train_size` and `cfg.test_size` problems, disjoint by construction."""
    return generate_problems(cfg, cfg.train_size, "train"), generate_problems(cfg, cfg.test_size, "test")


def generate_rl_problems(cfg: SyntheticDataConfig) -> list[Problem]:
    """`cfg.rl_size` problems for RL: problems `train_size .. train_size + rl_size` of the train
    stream, so none is among the train set's problems that SFT and the corpus learn from.

    Why a set of its own: a tiny model half-remembers the problems it was trained on (the tiny
    SFT model: greedy 67% on train problems, 59% on these), and RL prompts it remembers reward
    recall along with solving. The low levels have few distinct problems and the train set
    uses most of them up, so this set leans to the higher levels."""
    return list(islice(iter_problems(cfg, "train"), cfg.train_size, cfg.train_size + cfg.rl_size))


# --- shared formatting -----------------------------------------------------------------------


def latex_number(value: Fraction | int) -> str:
    """Canonical answer text: 12, -3, \\frac{3}{4}, -\\frac{5}{2}."""
    value = Fraction(value)
    return _fraction_text(value.numerator, value.denominator)


def _fraction_text(numerator: int, denominator: int) -> str:
    """num/den as written, not reduced (a solution shows \\frac{6}{8} before \\frac{3}{4})."""
    if denominator == 1:
        return str(numerator)
    sign = "-" if numerator < 0 else ""
    return f"{sign}\\frac{{{abs(numerator)}}}{{{denominator}}}"


def _solution(lines: Sequence[str], answer: str) -> str:
    return "\n".join([*lines, f"The answer is \\boxed{{{answer}}}."])


def number_with_digits(rng: random.Random, digits: int, low: int = 1) -> int:
    """A number with exactly `digits` digits, at least `low`."""
    return rng.randint(max(low, 10 ** (digits - 1)), 10**digits - 1)


def _join_words(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _nonzero(rng: random.Random, bound: int) -> int:
    return rng.choice([v for v in range(-bound, bound + 1) if v != 0])


_ASK_VALUE = ("Compute {}.", "What is {}?", "Calculate {}.", "Find the value of {}.")


# --- arithmetic --------------------------------------------------------------------------


def _draw_arithmetic(rng: random.Random, k: LevelKnobs) -> Draft:
    operation = rng.choice(("add", "subtract", "multiply", "divide"))
    small = max(1, k.digits // 2)  # digits of multipliers and divisors
    if operation == "multiply":
        return product_problem(rng, number_with_digits(rng, k.digits), number_with_digits(rng, small, low=2))
    if operation == "divide":
        divisor = number_with_digits(rng, small, low=2)
        return quotient_problem(rng, divisor * number_with_digits(rng, k.digits), divisor)
    numbers = [number_with_digits(rng, k.digits) for _ in range(k.operands)]
    signs = [rng.choice("+-") if operation == "subtract" else "+" for _ in numbers[1:]]
    if operation == "subtract" and "-" not in signs:
        signs[rng.randrange(len(signs))] = "-"
    return sum_problem(rng, numbers, signs)


def sum_problem(rng: random.Random, numbers: Sequence[int], signs: Sequence[str]) -> Draft:
    """numbers[0] signs[0] numbers[1] ..., evaluated left to right, one step per operation."""
    rest = list(zip(signs, numbers[1:]))
    expression = " ".join([str(numbers[0]), *(f"{s} {n}" for s, n in rest)])
    chain, total = [expression], numbers[0]
    while rest:
        sign, n = rest.pop(0)
        total = total + n if sign == "+" else total - n
        chain.append(" ".join([str(total), *(f"{s} {m}" for s, m in rest)]))
    operation = "add" if set(signs) == {"+"} else "subtract"
    return Draft(
        key=f"arithmetic:{expression}",
        problem=rng.choice(_ASK_VALUE).format(expression),
        solution=_solution([" = ".join(chain) + "."], str(total)),
        answer=str(total),
        meta={"operation": operation},
    )


def place_parts(n: int) -> list[int]:
    """4372 -> [4000, 300, 70, 2]: the nonzero place values, largest first."""
    text = str(n)
    return [int(d) * 10 ** (len(text) - 1 - i) for i, d in enumerate(text) if d != "0"]


def product_problem(rng: random.Random, a: int, b: int) -> Draft:
    """a × b by splitting one factor into place values (the multiplier if it has two parts)."""
    if len(place_parts(b)) > 1:
        pairs = [(a, part) for part in place_parts(b)]
    else:
        pairs = [(part, b) for part in place_parts(a)]
    chain = [f"{a} × {b}"]
    if len(pairs) > 1:
        chain += [" + ".join(f"{x} × {y}" for x, y in pairs), " + ".join(str(x * y) for x, y in pairs)]
    chain.append(str(a * b))
    return Draft(
        key=f"arithmetic:{a} × {b}",
        problem=rng.choice(_ASK_VALUE).format(f"{a} × {b}"),
        solution=_solution([" = ".join(chain) + "."], str(a * b)),
        answer=str(a * b),
        meta={"operation": "multiply"},
    )


def _long_division_lines(dividend: int, divisor: int) -> list[str]:
    """One line per quotient digit: bring down a digit, divide, keep the remainder."""
    lines, remainder, started = [], 0, False
    digits = str(dividend)
    for i, digit in enumerate(digits):
        part = remainder * 10 + int(digit)
        if not started and part < divisor and i < len(digits) - 1:
            remainder = part  # the leading digits alone are too small: take one more
            continue
        started = True
        q, remainder = divmod(part, divisor)
        lines.append(f"{part} ÷ {divisor} = {q} remainder {remainder}.")
    return lines


def quotient_problem(rng: random.Random, dividend: int, divisor: int) -> Draft:
    quotient = dividend // divisor
    lines = [f"Divide {dividend} by {divisor} digit by digit.", *_long_division_lines(dividend, divisor)]
    lines.append(f"So {dividend} ÷ {divisor} = {quotient}.")
    return Draft(
        key=f"arithmetic:{dividend} ÷ {divisor}",
        problem=rng.choice(_ASK_VALUE).format(f"{dividend} ÷ {divisor}"),
        solution=_solution(lines, str(quotient)),
        answer=str(quotient),
        meta={"operation": "divide"},
    )


# --- order of operations -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # nodes are told apart by identity: "3 + 4" may occur twice
class _Expr:
    value: int
    op: str = ""  # "" for a number
    left: _Expr | None = None
    right: _Expr | None = None


_PRECEDENCE = {"+": 1, "-": 1, "×": 2, "÷": 2}
_FALLBACK = {"÷": ("÷", "×", "+"), "×": ("×", "+"), "-": ("-", "+"), "+": ("+",)}


def _apply(op: str, a: int, b: int, max_value: int) -> int | None:
    """The value of a op b, or None where this generator does not allow it: negative
    intermediate values, inexact division, and products past 4 * max_value**2 (the family
    is about the order of the steps, not about long multiplication)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b if a >= b else None
    if op == "×":
        return a * b if a * b <= 4 * max_value**2 else None
    return a // b if b > 0 and a % b == 0 else None


def _random_expr(rng: random.Random, numbers: int, max_value: int) -> _Expr:
    if numbers == 1:
        return _Expr(rng.randint(1, max_value))
    n_left = rng.randint(1, numbers - 1)
    left = _random_expr(rng, n_left, max_value)
    op = rng.choice("+-×÷")
    if numbers - n_left == 1:
        right = _Expr(_number_for(rng, op, left.value, max_value))
    else:
        right = _random_expr(rng, numbers - n_left, max_value)
    for candidate in _FALLBACK[op]:
        value = _apply(candidate, left.value, right.value, max_value)
        if value is not None:
            return _Expr(value, candidate, left, right)
    raise AssertionError("+ always applies")


def _number_for(rng: random.Random, op: str, left: int, max_value: int) -> int:
    """A right-hand number that makes `left op number` allowed where one exists."""
    if op == "÷":
        divisors = [d for d in range(2, max_value + 1) if left % d == 0]
        if divisors:
            return rng.choice(divisors)
    if op == "-" and left >= 1:
        return rng.randint(1, min(left, max_value))
    return rng.randint(1, max_value)


def _needs_parens(child: _Expr, op: str, is_right: bool) -> bool:
    """Brackets wherever the tree differs from left-to-right with × and ÷ first."""
    if not child.op:
        return False
    return _PRECEDENCE[child.op] < _PRECEDENCE[op] or (is_right and _PRECEDENCE[child.op] == _PRECEDENCE[op])


def _render(e: _Expr) -> str:
    if not e.op:
        return str(e.value)
    sides = []
    for child, is_right in ((e.left, False), (e.right, True)):
        text = _render(child)
        sides.append(f"({text})" if _needs_parens(child, e.op, is_right) else text)
    return f"{sides[0]} {e.op} {sides[1]}"


def _redexes(e: _Expr, groups: Iterator[int], depth: int = 0, group: int = 0) -> Iterator[tuple[int, int, int, _Expr]]:
    """Operations on two numbers, left to right, with their bracket depth, the bracket group
    they sit in (numbered left to right) and their precedence."""
    if not e.op:
        return
    if not e.left.op and not e.right.op:
        yield depth, group, _PRECEDENCE[e.op], e
        return
    for child, is_right in ((e.left, False), (e.right, True)):
        if _needs_parens(child, e.op, is_right):
            yield from _redexes(child, groups, depth + 1, next(groups))
        else:
            yield from _redexes(child, groups, depth, group)


def _next_step(e: _Expr) -> _Expr:
    """The operation done next by convention: the innermost brackets (leftmost first), and
    inside them × and ÷ before + and -, each from the left."""
    # min() keeps the first of equals, which is the leftmost in reading order.
    depth, group, precedence, node = min(_redexes(e, count(1)), key=lambda r: (-r[0], r[1], -r[2]))
    return node


def _reduce(e: _Expr, target: _Expr) -> _Expr:
    if e is target:
        return _Expr(e.value)
    if not e.op:
        return e
    return _Expr(e.value, e.op, _reduce(e.left, target), _reduce(e.right, target))


def _draw_order_of_operations(rng: random.Random, k: LevelKnobs) -> Draft:
    while True:
        expr = _random_expr(rng, k.operands + 1, k.max_coefficient)
        text = _render(expr)
        has_parens = "(" in text
        mixes = any(op in text for op in "×÷") and any(f" {op} " in text for op in "+-")
        wanted = has_parens if k.steps >= 2 else (mixes and not has_parens)
        if wanted:
            break
    chain = [text]
    while expr.op:
        expr = _reduce(expr, _next_step(expr))
        chain.append(_render(expr))
    return Draft(
        key=f"order_of_operations:{text}",
        problem=rng.choice(_ASK_VALUE).format(text),
        solution=_solution([" = ".join(chain) + "."], str(expr.value)),
        answer=str(expr.value),
    )


# --- fractions -----------------------------------------------------------------------------


def _proper_fraction(rng: random.Random, denominator: int) -> Fraction:
    numerators = [n for n in range(1, denominator) if math.gcd(n, denominator) == 1]
    return Fraction(rng.choice(numerators), denominator)


def _draw_fractions(rng: random.Random, k: LevelKnobs) -> Draft:
    n_terms = 2 + (k.operands - 2) // 2
    ops = "+-" if k.steps <= 2 else "+-×÷"
    while True:
        if k.steps == 1:
            shared = rng.randint(2, k.max_coefficient)
            terms = [_proper_fraction(rng, shared) for _ in range(n_terms)]
        else:
            terms = [_proper_fraction(rng, rng.randint(2, k.max_coefficient)) for _ in range(n_terms)]
        chosen = [rng.choice(ops) for _ in terms[1:]]
        if 0 not in _running_values(terms, chosen):
            return _fraction_problem(rng, terms, chosen)


def _running_values(terms: Sequence[Fraction], ops: Sequence[str]) -> list[Fraction]:
    values = [terms[0]]
    for op, term in zip(ops, terms[1:]):
        values.append(_FRACTION_OPS[op](values[-1], term))
    return values


_FRACTION_OPS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "×": lambda a, b: a * b,
    "÷": lambda a, b: a / b,
}


def _fraction_problem(rng: random.Random, terms: Sequence[Fraction], ops: Sequence[str]) -> Draft:
    """terms combined left to right; brackets show where that differs from × and ÷ first."""
    text, previous = latex_number(terms[0]), ""
    lines, value = [], terms[0]
    for op, term in zip(ops, terms[1:]):
        if op in "×÷" and previous in ("+", "-"):
            text = f"({text})"
        text, previous = f"{text} {op} {latex_number(term)}", op
        step_lines, value = _fraction_step(value, op, term)
        lines.extend(step_lines)
    answer = latex_number(value)
    return Draft(
        key=f"fractions:{text}",
        problem=rng.choice(
            ("Compute {} in lowest terms.", "Simplify {}.", "What is {}? Give the answer in lowest terms.")
        ).format(text),
        solution=_solution(lines, answer),
        answer=answer,
    )


def _fraction_step(a: Fraction, op: str, b: Fraction) -> tuple[list[str], Fraction]:
    """The lines of `a op b`: each term brought to the common denominator on its own line
    (numerator and denominator times the same number), then one chain that adds the
    numerators or multiplies the factors, and reduces by the common factor. A small model
    gets one multiplication or addition right at a time, not four in one `=`."""
    if op in "+-":
        common = math.lcm(a.denominator, b.denominator)
        scaled = [_scaled_fraction(term, common // term.denominator) for term in (a, b) if term.denominator != common]
        a_num, b_num = a.numerator * (common // a.denominator), b.numerator * (common // b.denominator)
        numerator = a_num + b_num if op == "+" else a_num - b_num
        chain = [
            f"{latex_number(a)} {op} {latex_number(b)}",
            f"{_fraction_text(a_num, common)} {op} {_fraction_text(b_num, common)}",
            _fraction_sum_text(a_num, op, b_num, common),
            _fraction_text(numerator, common),
        ]
        result = a + b if op == "+" else a - b
        return [*scaled, _chain_line([*chain, *_reduction(numerator, common)])], result
    chain = [f"{latex_number(a)} {op} {latex_number(b)}"]
    if op == "÷":
        b = 1 / b
        chain.append(f"{latex_number(a)} × {latex_number(b)}")
    denominators = [str(d) for d in (a.denominator, b.denominator) if d != 1]
    if denominators:
        sign = "-" if a < 0 else ""
        chain.append(f"{sign}\\frac{{{abs(a.numerator)} × {b.numerator}}}{{{' × '.join(denominators)}}}")
    numerator, denominator = a.numerator * b.numerator, a.denominator * b.denominator
    chain.append(_fraction_text(numerator, denominator))
    return [_chain_line([*chain, *_reduction(numerator, denominator)])], a * b


def _scaled_fraction(term: Fraction, factor: int) -> str:
    """\\frac{5}{6} = \\frac{5 × 2}{6 × 2} = \\frac{10}{12}, or 2 = \\frac{2 × 3}{3} = \\frac{6}{3}."""
    sign, n, d = "-" if term < 0 else "", abs(term.numerator), term.denominator
    scaled_denominator = f"{d} × {factor}" if d != 1 else str(factor)
    return (
        f"{latex_number(term)} = {sign}\\frac{{{n} × {factor}}}{{{scaled_denominator}}}"
        f" = {_fraction_text(term.numerator * factor, d * factor)}."
    )


def _fraction_sum_text(a_num: int, op: str, b_num: int, denominator: int) -> str:
    """\\frac{10 + 9}{12}: the numerators combined over the common denominator."""
    if a_num < 0:  # -\\frac{3 + 4}{12} would read as -(3 + 4); write the whole numerator inside
        return f"\\frac{{-{abs(a_num)} {op} {b_num}}}{{{denominator}}}"
    return f"\\frac{{{a_num} {op} {b_num}}}{{{denominator}}}"


def _reduction(numerator: int, denominator: int) -> list[str]:
    """The steps from num/den to lowest terms: divide both by their common factor."""
    if numerator == 0:
        return ["0"]
    g = math.gcd(numerator, denominator)
    if g == 1:
        return []
    sign, n = ("-" if numerator < 0 else ""), abs(numerator)
    return [f"{sign}\\frac{{{n} ÷ {g}}}{{{denominator} ÷ {g}}}", latex_number(Fraction(numerator, denominator))]


def _chain(parts: Sequence[str]) -> str:
    """`a = b = c`, with a part equal to the one before it left out."""
    return " = ".join(part for i, part in enumerate(parts) if i == 0 or part != parts[i - 1])


def _chain_line(parts: Sequence[str]) -> str:
    return _chain(parts) + "."


def _divide_then_multiply(value: int, divisor: int, factor: int) -> str:
    """`580 ÷ 20 × 3 = 29 × 3 = 87`, or `730 ÷ 2 = 365` when the factor is 1; value is a
    multiple of divisor, so each step stays whole."""
    quotient = value // divisor
    if factor == 1:
        return f"{value} ÷ {divisor} = {quotient}"
    return f"{value} ÷ {divisor} × {factor} = {quotient} × {factor} = {quotient * factor}"


# --- percentages -----------------------------------------------------------------------------

_PERCENT_FORMS = ("percent_of", "change", "what_percent", "percent_change", "original")  # unlocked by steps
_PRICED_ITEMS = ("jacket", "bike", "lamp", "phone", "chair", "watch", "backpack", "tablet", "guitar", "tent")


def _percent_and_base(rng: random.Random, k: LevelKnobs) -> tuple[int, int]:
    """p and n with p% of n a whole number; n has digits..digits+1 digits. Below level 3
    the percents are multiples of 5."""
    low, high = 10 ** (k.digits - 1), 10 ** (k.digits + 1) - 1
    while True:
        percent = rng.randrange(5, 100, 5) if k.steps <= 2 else rng.randint(1, 99)
        step = 100 // math.gcd(percent, 100)  # n must be a multiple of this
        if -(-low // step) <= high // step:
            return percent, step * rng.randint(-(-low // step), high // step)


def _percent_of_lines(percent: int, base: int) -> list[str]:
    """p% of n through the reduced fraction p/100 = a/b: n ÷ b, then × a. The base is a
    multiple of b, so both steps stay whole and small (15% of 580 = 580 ÷ 20 × 3 = 29 × 3),
    where n × p ÷ 100 would ask a small model for 580 × 15 in one go."""
    share = Fraction(percent, 100)
    a, b = share.numerator, share.denominator
    fraction_line = f"{percent}% = \\frac{{{percent}}}{{100}}" + (f" = {latex_number(share)}." if b != 100 else ".")
    return [fraction_line, f"{percent}% of {base} = {_divide_then_multiply(base, b, a)}."]


def _as_percent_lines(part: int, base: int) -> list[str]:
    """part/base as a percent: reduce the fraction, then write it over 100
    (\\frac{36}{48} = \\frac{36 ÷ 12}{48 ÷ 12} = \\frac{3}{4} = \\frac{3 × 25}{4 × 25} = \\frac{75}{100})."""
    share = Fraction(part, base)
    scale = 100 // share.denominator  # base was drawn so that the percent is whole
    lines = [_chain_line([f"\\frac{{{part}}}{{{base}}}", *_reduction(part, base)])]
    if scale != 1:
        lines.append(_scaled_fraction(share, scale).removesuffix(".") + f" = {share.numerator * scale}%.")
    else:
        lines.append(f"{latex_number(share)} = {share.numerator}%.")
    return lines


def _undo_percent_lines(new: int, kept: int) -> list[str]:
    """The old price from new = kept% of old: old = new × 100/kept, with 100/kept reduced
    to b/a so that new ÷ a is whole (new ÷ 39 × 20 rather than new × 100 ÷ 195)."""
    inverse = Fraction(100, kept)
    b, a = inverse.numerator, inverse.denominator
    lines = [f"The old price is {new} ÷ \\frac{{{kept}}}{{100}} = {new} × \\frac{{100}}{{{kept}}}."]
    if a != kept:
        lines.append(_chain_line([f"\\frac{{100}}{{{kept}}}", *_reduction(100, kept)]))
    return [*lines, f"{_divide_then_multiply(new, a, b)}."]


def _draw_percentages(rng: random.Random, k: LevelKnobs) -> Draft:
    form = rng.choice(_PERCENT_FORMS[: k.steps])
    percent, base = _percent_and_base(rng, k)
    part = base * percent // 100
    up = rng.random() < 0.5
    item = rng.choice(_PRICED_ITEMS)
    sign, verb = ("+", "increase") if up else ("-", "decrease")
    part_lines = _percent_of_lines(percent, base)
    if form == "percent_of":
        problem = rng.choice(("What is {}% of {}?", "Find {}% of {}.")).format(percent, base)
        lines, answer = part_lines, part
    elif form == "change":
        new = base + part if up else base - part
        problem = f"A {item} costs ${base}. Its price {verb}s by {percent}%. What is the new price in dollars?"
        lines, answer = [*part_lines, f"The new price is {base} {sign} {part} = {new} dollars."], new
    elif form == "what_percent":
        problem = f"What percent of {base} is {part}?"
        lines = [*_as_percent_lines(part, base), f"So {part} is {percent}% of {base}."]
        answer = percent
    elif form == "percent_change":
        new = base + part if up else base - part
        problem = f"The price of a {item} goes from ${base} to ${new}. By what percent does it {verb}?"
        lines = [
            f"The price changes by {max(base, new)} - {min(base, new)} = {part} dollars.",
            *_as_percent_lines(part, base),
            f"So the price {verb}s by {percent}%.",
        ]
        answer = percent
    else:  # original: the price before a change
        new, kept = (base + part, 100 + percent) if up else (base - part, 100 - percent)
        change = "price increase" if up else "discount"
        problem = f"After a {percent}% {change}, a {item} costs ${new}. What was the price before, in dollars?"
        lines = [
            f"The new price is 100% {sign} {percent}% = {kept}% of the old price.",
            *_undo_percent_lines(new, kept),
            f"So the old price is {base} dollars.",
        ]
        answer = base
    key_direction = up if form in ("change", "percent_change", "original") else ""
    return Draft(
        key=f"percentages:{form}:{key_direction}:{percent}:{base}",
        problem=problem,
        solution=_solution(lines, str(answer)),
        answer=str(answer),
        meta={"form": form},
    )


# --- linear equations ------------------------------------------------------------------------


def _signed_terms(terms: Sequence[tuple[int, str]]) -> str:
    """[(3, "x"), (-5, ""), (1, "")] -> "3x - 5 + 1"; zero terms are left out, 1x is x."""
    text = ""
    for coefficient, var in terms:
        if coefficient == 0:
            continue
        size = abs(coefficient)
        body = var if size == 1 and var else f"{size}{var}"
        if not text:
            text = ("-" if coefficient < 0 else "") + body
        else:
            text += (" - " if coefficient < 0 else " + ") + body
    return text or "0"


def _bracket(a: int, b: int) -> str:
    """a(x + b), e.g. -3(x - 2)."""
    return f"{a}({_signed_terms([(1, 'x'), (b, '')])})"


@dataclass(frozen=True)
class _Equation:
    """Shown as `lhs = rhs`; after expanding, a·x + b = c·x + d."""

    lhs: str
    rhs: str
    expand: tuple[str, ...]  # solution lines that remove brackets
    a: int
    b: int
    c: int
    d: int


def _one_step(rng: random.Random, m: int) -> _Equation:
    kind, big = rng.choice(("add", "subtract", "multiply")), 5 * m
    if kind == "multiply":
        a, x = rng.randint(2, m), rng.randint(1, m)
        return _Equation(f"{a}x", str(a * x), (), a, 0, 0, a * x)
    b = rng.randint(1, big)
    x = rng.randint(1, big) + (b if kind == "subtract" else 0)
    b = b if kind == "add" else -b
    return _Equation(_signed_terms([(1, "x"), (b, "")]), str(x + b), (), 1, b, 0, x + b)


def _two_step(rng: random.Random, m: int) -> _Equation:
    a, x, b = rng.randint(2, m), _nonzero(rng, m), _nonzero(rng, 5 * m)
    return _Equation(_signed_terms([(a, "x"), (b, "")]), str(a * x + b), (), a, b, 0, a * x + b)


def _both_sides(rng: random.Random, m: int) -> _Equation:
    a, c = rng.sample([v for v in range(-m, m + 1) if v != 0], 2)
    x, b = rng.randint(-m, m), _nonzero(rng, 5 * m)
    d = (a - c) * x + b
    return _Equation(_signed_terms([(a, "x"), (b, "")]), _signed_terms([(c, "x"), (d, "")]), (), a, b, c, d)


def _with_brackets(rng: random.Random, m: int, both: bool) -> _Equation:
    """a(x + b) + e = c(x + f) when `both`, else a(x + b) = cx + d. Half of them have a
    fractional solution: the last constant is then drawn freely instead of fitted to x."""
    sizes = [v for v in range(-m, m + 1) if abs(v) >= 2]
    a, c = rng.sample(sizes, 2)
    b = _nonzero(rng, m)
    fractional, x = rng.random() < 0.5, rng.randint(-m, m)
    if not both:
        d = _nonzero(rng, 5 * m) if fractional else (a - c) * x + a * b
        lhs, rhs = _bracket(a, b), _signed_terms([(c, "x"), (d, "")])
        expand = (f"Expand the brackets: {_signed_terms([(a, 'x'), (a * b, '')])} = {rhs}.",)
        return _Equation(lhs, rhs, expand, a, a * b, c, d)
    f = _nonzero(rng, m)
    e = _nonzero(rng, 5 * m) if fractional else c * (x + f) - a * (x + b)
    lhs = _bracket(a, b) + (f" {'+' if e > 0 else '-'} {abs(e)}" if e else "")
    rhs = _bracket(c, f)
    expanded_rhs = _signed_terms([(c, "x"), (c * f, "")])
    expand = (f"Expand the brackets: {_signed_terms([(a, 'x'), (a * b, ''), (e, '')])} = {expanded_rhs}.",)
    if e:
        expand += (f"Combine like terms: {_signed_terms([(a, 'x'), (a * b + e, '')])} = {expanded_rhs}.",)
    return _Equation(lhs, rhs, expand, a, a * b + e, c, c * f)


def _isolate_x(eq: _Equation) -> tuple[list[str], Fraction]:
    """Move the x terms left and the numbers right, then divide by the coefficient. Each
    move writes out its one addition or subtraction (`2x = 19 - 7 = 12`), and the division
    its quotient or its reduced fraction: a small model does one operation per `=`."""
    a, b, d, lines = eq.a, eq.b, eq.d, list(eq.expand)
    if eq.c:
        verb = "Subtract {} from" if eq.c > 0 else "Add {} to"
        move = verb.format(_signed_terms([(abs(eq.c), "x")]))
        combined = f"({a} {'-' if eq.c > 0 else '+'} {abs(eq.c)})x"
        a -= eq.c
        lines.append(f"{move} both sides: {combined} = {_signed_terms([(a, 'x')])}, so {_signed_terms([(a, 'x'), (b, '')])} = {d}.")
    if b:
        verb = "Subtract {} from" if b > 0 else "Add {} to"
        moved = f"{d} {'-' if b > 0 else '+'} {abs(b)}"
        d -= b
        lines.append(f"{verb.format(abs(b))} both sides: {_signed_terms([(a, 'x')])} = {moved} = {d}.")
    x = Fraction(d, a)
    if a != 1:
        lines.append(f"Divide both sides by {a}: x = {_quotient_text(d, a)}.")
    return lines, x


def _quotient_text(numerator: int, denominator: int) -> str:
    """d ÷ a written out: `56 ÷ 7 = 8`, `12 ÷ (-3) = -4`, or `\\frac{-12}{8} = -\\frac{3}{2}`."""
    value = Fraction(numerator, denominator)
    if value.denominator == 1:
        divisor = f"({denominator})" if denominator < 0 else str(denominator)
        return f"{numerator} ÷ {divisor} = {value.numerator}"
    if denominator < 0:  # the sign goes to the numerator first
        numerator, denominator = -numerator, -denominator
    return _chain([f"\\frac{{{numerator}}}{{{denominator}}}", *_reduction(numerator, denominator), latex_number(value)])


def _draw_linear_equations(rng: random.Random, k: LevelKnobs) -> Draft:
    m = k.max_coefficient
    forms = (_one_step, _two_step, _both_sides, partial(_with_brackets, both=False), partial(_with_brackets, both=True))
    eq = forms[k.steps - 1](rng, m)
    equation = f"{eq.lhs} = {eq.rhs}"
    lines, x = _isolate_x(eq)
    return Draft(
        key=f"linear_equations:{equation}",
        problem=rng.choice(("Solve for x: {}.", "Find x if {}.", "Solve {} for x.")).format(equation),
        solution=_solution(lines, latex_number(x)),
        answer=latex_number(x),
    )


# --- word problems ---------------------------------------------------------------------------
# Each story returns (numbers, problem, solution lines, answer, expression). `numbers` is what
# the story's key is made of (not its names or items); `expression` is the plain arithmetic
# behind the story ("20 - (3*4 + 2*1)"), kept in meta for audits.

_NAMES = tuple("Mia Leo Ava Noah Zoe Omar Lena Ravi Sara Tom Yuki Ines Kofi Nina Ben Maya".split())
_SHOP_ITEMS = ("notebooks", "pens", "apples", "candles", "mugs", "books", "plants", "toy cars", "scarves", "puzzles")
_COUNTED = ("marbles", "stickers", "cookies", "cards", "beads", "stamps", "shells", "coins")
_GAINS = ("buys", "finds", "gets")
_LOSSES = ("gives away", "loses", "uses")
_VEHICLES = ("A car", "A train", "A cyclist", "A bus", "A truck", "A boat")
_Story = tuple[list[int | str], str, list[str], int, str]


def _shopping(rng: random.Random, k: LevelKnobs) -> _Story:
    kinds = (k.steps + 2) // 2  # 1, 2, 2, 3, 3
    with_change = k.steps in (3, 5)
    name, items = rng.choice(_NAMES), rng.sample(_SHOP_ITEMS, kinds)
    counts = [rng.randint(2, k.max_coefficient) for _ in items]
    prices = [rng.randint(1, 5 * 10 ** (k.digits - 1)) for _ in items]
    costs = [c * p for c, p in zip(counts, prices)]
    total = sum(costs)
    problem = f"{name} buys {_join_words([f'{c} {i} at ${p} each' for c, i, p in zip(counts, items, prices)])}."
    lines = [f"{c} {i} cost {c} × {p} = {c * p} dollars." for c, i, p in zip(counts, items, prices)]
    expression = " + ".join(f"{c}*{p}" for c, p in zip(counts, prices))
    if kinds > 1:
        lines.append(f"In total {name} spends {' + '.join(map(str, costs))} = {total} dollars.")
    numbers = [*counts, *prices]
    if not with_change:
        return numbers, f"{problem} How much does {name} spend in dollars?", lines, total, expression
    unit = max(10, 10 ** (len(str(total)) - 1))
    paid = (total // unit + 1) * unit
    problem += f" {name} pays with ${paid}. How much change does {name} get in dollars?"
    lines.append(f"The change is {paid} - {total} = {paid - total} dollars.")
    return [*numbers, paid], problem, lines, paid - total, f"{paid} - ({expression})"


def _sharing(rng: random.Random, k: LevelKnobs) -> _Story:
    """Gains and losses, then an equal share; built backwards so the share is whole."""
    name, thing = rng.choice(_NAMES), rng.choice(_COUNTED)
    groups, share = rng.randint(2, k.max_coefficient), rng.randint(2, 2 * 10 ** (k.digits - 1))
    final = groups * share
    while True:
        events = [(rng.choice((1, -1)), rng.randint(1, max(2, final // 2))) for _ in range(k.steps - 1)]
        totals = [final - sum(sign * amount for sign, amount in events)]
        for sign, amount in events:
            totals.append(totals[-1] + sign * amount)
        if min(totals) > 0:
            break
    problem = f"{name} has {totals[0]} {thing}."
    lines = [f"{name} starts with {totals[0]} {thing}."]
    expression = str(totals[0])
    for (sign, amount), before, after in zip(events, totals, totals[1:]):
        if sign > 0:
            problem += f" {name} {rng.choice(_GAINS)} {amount} more."
        else:
            problem += f" {name} {rng.choice(_LOSSES)} {amount}."
        symbol = "+" if sign > 0 else "-"
        lines.append(f"Then {name} has {before} {symbol} {amount} = {after} {thing}.")
        expression += f" {symbol} {amount}"
    problem += f" {name} shares them equally among {groups} friends. How many {thing} does each friend get?"
    lines.append(f"Each friend gets {final} ÷ {groups} = {share} {thing}.")
    numbers = [totals[0], *(sign * amount for sign, amount in events), groups]
    return numbers, problem, lines, share, f"({expression}) / {groups}"


def _travel(rng: random.Random, k: LevelKnobs) -> _Story:
    legs = 1 + k.steps // 2  # 1, 2, 2, 3, 3
    ask_left = k.steps in (3, 5)
    vehicle = rng.choice(_VEHICLES)
    speeds = [5 * rng.randint(2, k.max_coefficient) for _ in range(legs)]
    hours = [rng.randint(2, 9) for _ in range(legs)]
    distances = [s * h for s, h in zip(speeds, hours)]
    total = sum(distances)
    parts = [f"at {s} km per hour for {h} hours" for s, h in zip(speeds, hours)]
    problem = f"{vehicle} travels {', then '.join(parts)}."
    lines = [f"At {s} km per hour for {h} hours it covers {s} × {h} = {s * h} km." for s, h in zip(speeds, hours)]
    expression = " + ".join(f"{s}*{h}" for s, h in zip(speeds, hours))
    if legs > 1:
        lines.append(f"In total it covers {' + '.join(map(str, distances))} = {total} km.")
    numbers = [*speeds, *hours]
    if not ask_left:
        return numbers, f"{problem} How many kilometers does it travel in total?", lines, total, expression
    trip = total + rng.randint(1, total)
    problem += f" The whole trip is {trip} km long. How many kilometers are left?"
    lines.append(f"Left to go: {trip} - {total} = {trip - total} km.")
    return [*numbers, trip], problem, lines, trip - total, f"{trip} - ({expression})"


_AGE_RELATIONS = ("older", "younger", "twice", "half")


def _ages(rng: random.Random, k: LevelKnobs) -> _Story:
    """A chain of people, each described by their age relative to the one before."""
    names = rng.sample(_NAMES, k.steps + 1)
    ages, relations = [rng.randint(5, 40)], []
    while len(ages) <= k.steps:
        relation = rng.choice(_AGE_RELATIONS)
        gap = rng.randint(1, k.max_coefficient) if relation in ("older", "younger") else 0
        age = {"older": ages[-1] + gap, "younger": ages[-1] - gap, "twice": 2 * ages[-1], "half": ages[-1] // 2}[relation]
        if (relation == "half" and ages[-1] % 2) or not 1 <= age <= 99:
            continue
        ages.append(age)
        relations.append((relation, gap))
    problem = f"{names[0]} is {ages[0]} years old."
    lines, expression = [], str(ages[0])
    for (relation, gap), prev_name, name, prev, age in zip(relations, names, names[1:], ages, ages[1:]):
        if relation in ("older", "younger"):
            symbol = "+" if relation == "older" else "-"
            problem += f" {name} is {gap} year{'s' if gap > 1 else ''} {relation} than {prev_name}."
            work, expression = f"{prev} {symbol} {gap}", f"({expression} {symbol} {gap})"
        else:
            problem += f" {name} is {relation} as old as {prev_name}."
            work, expression = (f"{prev} × 2", f"{expression}*2") if relation == "twice" else (f"{prev} ÷ 2", f"{expression}/2")
        lines.append(f"{name} is {work} = {age} years old.")
    problem += f" How old is {names[-1]}?"
    numbers = [ages[0], *(f"{relation}{gap or ''}" for relation, gap in relations)]
    return numbers, problem, lines, ages[-1], expression


_STORIES: dict[str, Callable[[random.Random, LevelKnobs], _Story]] = {
    "shopping": _shopping,
    "sharing": _sharing,
    "travel": _travel,
    "ages": _ages,
}


def _draw_word_problems(rng: random.Random, k: LevelKnobs) -> Draft:
    template = rng.choice(list(_STORIES))
    numbers, problem, lines, answer, expression = _STORIES[template](rng, k)
    return Draft(
        key=f"word_problems:{template}:{','.join(map(str, numbers))}",
        problem=problem,
        solution=_solution(lines, str(answer)),
        answer=str(answer),
        meta={"template": template, "expression": expression},
    )


_GENERATORS: dict[str, Callable[[random.Random, LevelKnobs], Draft]] = {
    "arithmetic": _draw_arithmetic,
    "order_of_operations": _draw_order_of_operations,
    "fractions": _draw_fractions,
    "percentages": _draw_percentages,
    "linear_equations": _draw_linear_equations,
    "word_problems": _draw_word_problems,
}
assert tuple(_GENERATORS) == FAMILY_NAMES
