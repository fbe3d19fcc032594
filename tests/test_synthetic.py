"""Synthetic problems and the pretraining corpus.

Gold answers are re-derived here from the problem text alone, with `fractions.Fraction`
arithmetic over an `ast` walk restricted to numbers, + - * / and brackets (never `eval`), so
a generator bug cannot hide behind its own arithmetic.
"""

import ast
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from mathdata.corpus import generate_corpus, write_corpus
from mathdata.io import write_problems_jsonl
from mathdata.loading import load_problems
from mathdata.problems import Problem
from mathdata.synthetic import (
    FAMILY_NAMES,
    LEVELS,
    Difficulty,
    SyntheticDataConfig,
    generate_problems,
    generate_rl_problems,
    generate_splits,
    split_of,
)
from mathrl.config import ConfigError, from_dict

ROOT = Path(__file__).resolve().parents[1]
PER_FAMILY = 400


@pytest.fixture(scope="module")
def by_family() -> dict[str, list[Problem]]:
    return {f: generate_problems(SyntheticDataConfig(seed=11, families=(f,)), PER_FAMILY) for f in FAMILY_NAMES}


# --- an independent reader of the problem texts ------------------------------------------------


def evaluate(node: ast.AST, x: Fraction | None = None) -> Fraction:
    if isinstance(node, ast.Expression):
        return evaluate(node.body, x)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.Name) and node.id == "x" and x is not None:
        return x
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -evaluate(node.operand, x)
    if isinstance(node, ast.BinOp):
        a, b = evaluate(node.left, x), evaluate(node.right, x)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if isinstance(node.op, ast.Div):
            assert b != 0, "division by zero in a problem"
            return a / b
    raise AssertionError(f"unexpected syntax {ast.dump(node)}")


def to_python(math_text: str) -> str:
    text = re.sub(r"\\frac\{([^{}]+)\}\{([^{}]+)\}", r"((\1)/(\2))", math_text)
    text = text.replace("×", "*").replace("÷", "/")
    return re.sub(r"(\d)(?=[x(])", r"\1*", text)  # implicit products: 3x, 3(x + 1)


def value_of(math_text: str, x: Fraction | None = None) -> Fraction:
    return evaluate(ast.parse(to_python(math_text), mode="eval"), x)


MATH_RUN = re.compile(r"(?:\\frac\{[^{}]+\}\{[^{}]+\}|[\dx()+\-×÷= ])+")


def math_span(text: str, containing: str = "") -> str:
    """The longest stretch of the text that is a formula."""
    return max((run.strip() for run in MATH_RUN.findall(text) if containing in run), key=len)


CANONICAL = re.compile(r"(-?)(?:\\frac\{([1-9]\d*)\}\{([1-9]\d*)\}|(0|[1-9]\d*))")


def parse_answer(answer: str) -> Fraction:
    """The value of a canonical answer; fails on anything non-canonical (unreduced, 5.0, -0)."""
    match = CANONICAL.fullmatch(answer)
    assert match, f"answer {answer!r} is not canonical"
    sign, num, den, whole = match.groups()
    if whole is not None:
        assert not (sign and whole == "0"), "-0"
        value = Fraction(int(whole))
    else:
        value = Fraction(int(num), int(den))
        assert value.denominator == int(den) > 1, f"{answer} is not reduced"
    return -value if sign else value


def last_boxed(text: str) -> str:
    start = text.rindex("\\boxed{") + len("\\boxed{")
    depth, i = 1, start
    while depth:
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        i += 1
    return text[start : i - 1]


def solve_linear(problem: str) -> Fraction:
    lhs, rhs = (side.strip() for side in math_span(problem, containing="=").split("="))
    f = lambda x: value_of(lhs, x) - value_of(rhs, x)  # noqa: E731
    slope, intercept = f(Fraction(1)) - f(Fraction(0)), f(Fraction(0))
    assert slope != 0 and f(Fraction(2)) == 2 * slope + intercept, "not a linear equation with one solution"
    return -intercept / slope


def percent_answer(problem: Problem) -> Fraction:
    text = problem.problem
    number = lambda pattern: Fraction(int(re.search(pattern, text)[1]))  # noqa: E731
    form = problem.meta["form"]
    if form == "what_percent":
        whole, part = (int(v) for v in re.search(r"What percent of (\d+) is (\d+)\?", text).groups())
        return Fraction(part, whole) * 100
    up = "increase" in text
    if form == "percent_change":
        old, new = (int(v) for v in re.search(r"from \$(\d+) to \$(\d+)", text).groups())
        assert (new > old) == up
        return Fraction(abs(new - old), old) * 100
    percent = number(r"(\d+)%")
    if form == "percent_of":
        return percent / 100 * number(r"% of (\d+)")
    if form == "change":
        return number(r"costs \$(\d+)") * (1 + (percent if up else -percent) / 100)
    assert form == "original", form
    return number(r"costs \$(\d+)") / (1 + (percent if up else -percent) / 100)


def story_answer(problem: Problem) -> Fraction:
    text, template = problem.problem, problem.meta["template"]
    ints = lambda pattern: [int(v) for v in re.findall(pattern, text)]  # noqa: E731
    if template == "shopping":
        total = sum(int(c) * int(p) for c, p in re.findall(r"(\d+) [a-z ]+? at \$(\d+) each", text))
        paid = ints(r"pays with \$(\d+)")
        return Fraction(paid[0] - total if paid else total)
    if template == "sharing":
        left = ints(r"has (\d+)")[0] + sum(ints(r"(\d+) more")) - sum(ints(r"(?:gives away|loses|uses) (\d+)"))
        share = Fraction(left, ints(r"among (\d+)")[0])
        assert share.denominator == 1, "the share must be whole"
        return share
    if template == "travel":
        total = sum(int(s) * int(h) for s, h in re.findall(r"(\d+) km per hour for (\d+) hours", text))
        trip = ints(r"is (\d+) km long")
        return Fraction(trip[0] - total if trip else total)
    assert template == "ages", template
    sentences = text.split(". ")
    age = Fraction(int(re.search(r"is (\d+) years old", sentences[0])[1]))
    for sentence in sentences[1:]:
        if gap := re.search(r"(\d+) years? (older|younger)", sentence):
            age += int(gap[1]) if gap[2] == "older" else -int(gap[1])
        elif "twice as old" in sentence:
            age *= 2
        elif "half as old" in sentence:
            age /= 2
    return age


def independent_answer(problem: Problem) -> Fraction:
    family = problem.meta["family"]
    if family in ("arithmetic", "order_of_operations", "fractions"):
        return value_of(math_span(problem.problem))
    if family == "linear_equations":
        return solve_linear(problem.problem)
    if family == "percentages":
        return percent_answer(problem)
    assert value_of(problem.meta["expression"]) == story_answer(problem)
    return story_answer(problem)


# --- answers and solutions -------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_gold_answers_match_an_independent_reading_of_the_problem(by_family, family):
    problems = by_family[family]
    assert {p.meta["level"] for p in problems} == set(LEVELS)
    for p in problems:
        assert parse_answer(p.answer) == independent_answer(p), f"{p.problem}\n{p.solution}\ngold: {p.answer}"


def test_every_question_form_and_story_is_checked(by_family):
    assert {p.meta["form"] for p in by_family["percentages"]} == {
        "percent_of",
        "change",
        "what_percent",
        "percent_change",
        "original",
    }
    assert {p.meta["template"] for p in by_family["word_problems"]} == {"shopping", "sharing", "travel", "ages"}
    assert {p.meta["operation"] for p in by_family["arithmetic"]} == {"add", "subtract", "multiply", "divide"}
    answers = [parse_answer(p.answer) for p in by_family["fractions"] + by_family["linear_equations"]]
    assert any(a.denominator > 1 for a in answers) and any(a < 0 for a in answers)


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_solutions_end_with_the_boxed_answer(by_family, family):
    for p in by_family[family]:
        assert p.solution.endswith(f"The answer is \\boxed{{{p.answer}}}.")
        assert last_boxed(p.solution) == p.answer
        assert p.source == "synthetic" and p.meta["family"] == family


def arithmetic_tail(chain: str) -> list[str]:
    """The last sides of an `a = b = c` chain that are plain numbers and operations:
    `Subtract 34 from both sides: 11x = 166 - 34 = 132` -> ["166 - 34", "132"]."""
    sides = chain.split(" = ")
    tail: list[str] = []
    for side in reversed(sides):
        if "x" in side or not MATH_RUN.fullmatch(side):
            break
        tail.insert(0, side)
    return tail


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_solution_steps_are_true_equalities(by_family, family):
    """Every step a solution writes out as `a = b = c` in plain numbers holds: whole chains
    in arithmetic, order of operations and fractions; the computed tail of a line (after
    `both sides: 4x =`, `45% of 820 =`) in the others."""
    checked = 0
    for p in by_family[family]:
        for line in p.solution.splitlines()[:-1]:
            chain = line.removeprefix("So ").removesuffix(".")
            whole = MATH_RUN.fullmatch(chain) and "x" not in chain
            if family in ("arithmetic", "order_of_operations", "fractions") and not whole:
                continue  # prose, or a long-division step
            if family == "word_problems":  # "Then Sara has 1052 - 81 = 971 stamps."
                steps = [list(m) for m in re.findall(r"((?:\d+ [-+×÷] )+\d+) = (\d+)", chain)]
            else:
                steps = [chain.split(" = ") if whole else arithmetic_tail(chain)]
            for sides in filter(lambda sides: len(sides) > 1, steps):
                values = [value_of(side) for side in sides]
                assert len(set(values)) == 1, f"{line!r} in {p.solution}"
                checked += 1
    assert checked >= len(by_family[family]) // 2, f"only {checked} steps of {family} could be checked"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_texts_stay_short_at_the_hardest_level(family):
    problems = generate_problems(SyntheticDataConfig(seed=2, levels=(5,), families=(family,)), 300)
    # every step written out (fractions: a line per rescaled term) still fits a 512-token generation
    assert max(len(p.problem) + len(p.solution) for p in problems) < 1000


# --- difficulty --------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_solutions_grow_with_level(family):
    def mean_length(level: int) -> float:
        problems = generate_problems(SyntheticDataConfig(seed=5, levels=(level,), families=(family,)), 150)
        return sum(len(p.solution) for p in problems) / len(problems)

    lengths = [mean_length(level) for level in LEVELS]
    assert lengths == sorted(lengths) and len(set(lengths)) == len(lengths), lengths


def numbers_in(text: str) -> list[str]:
    return re.findall(r"\d+", re.sub(r"\\frac\{(\d+)\}\{(\d+)\}", r"\1/\2", text))


def test_knobs_set_digits_and_operands():
    difficulty = Difficulty(digits=(2, 2, 3, 3, 6), operands=(2, 3, 4, 5, 7))
    chains = [
        p
        for p in generate_problems(SyntheticDataConfig(levels=(5,), families=("arithmetic",), difficulty=difficulty), 200)
        if p.meta["operation"] in ("add", "subtract")
    ]
    assert chains and all(len(numbers_in(p.problem)) == 7 for p in chains)
    assert all(len(n) == 6 for p in chains for n in numbers_in(p.problem))
    nested = generate_problems(SyntheticDataConfig(levels=(5,), families=("order_of_operations",), difficulty=difficulty), 100)
    assert all(len(numbers_in(p.problem)) == 8 for p in nested)


def test_level_one_has_no_brackets_and_later_levels_do():
    flat = generate_problems(SyntheticDataConfig(levels=(1,), families=("order_of_operations",)), 100)
    nested = generate_problems(SyntheticDataConfig(levels=(2,), families=("order_of_operations",)), 100)
    assert all("(" not in p.problem for p in flat) and all("(" in p.problem for p in nested)


# --- determinism and the split ----------------------------------------------------------------


def rows(problems: list[Problem]) -> list[dict]:
    return [p.to_dict() for p in problems]


def test_same_seed_same_problems_other_seed_other_problems():
    cfg = SyntheticDataConfig(seed=3, train_size=300, test_size=50)
    train, test = generate_splits(cfg)
    assert rows(train) == rows(generate_splits(cfg)[0]) and rows(test) == rows(generate_splits(cfg)[1])
    other = generate_splits(dataclasses.replace(cfg, seed=4))[0]
    assert len({p.problem for p in train} & {p.problem for p in other}) < 30


def test_problems_do_not_depend_on_python_hash_randomization():
    code = (
        "import hashlib, json\n"
        "from mathdata.synthetic import SyntheticDataConfig, generate_problems\n"
        "rows = [p.to_dict() for p in generate_problems(SyntheticDataConfig(seed=9), 200)]\n"
        "print(hashlib.sha256(json.dumps(rows).encode()).hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "777"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    here = hashlib.sha256(json.dumps(rows(generate_problems(SyntheticDataConfig(seed=9), 200))).encode()).hexdigest()
    assert digests == {here}


def test_train_and_test_never_overlap_and_test_is_fixed():
    cfg = SyntheticDataConfig(seed=0, train_size=4000, test_size=300)
    train, test = generate_splits(cfg)
    assert len(train) == 4000 and len(test) == 300
    assert not {p.problem for p in train} & {p.problem for p in test}
    assert not {p.meta["key"] for p in train} & {p.meta["key"] for p in test}
    assert all(split_of(p.meta["key"]) == "train" for p in train)
    assert all(split_of(p.meta["key"]) == "test" for p in test)
    assert len({p.meta["key"] for p in train}) == len(train), "problems repeat within a split"
    assert [p.id for p in test[:2]] == ["syn-test-000000", "syn-test-000001"]
    # A split does not depend on the size of the other, and a longer split extends a shorter one.
    assert rows(generate_problems(cfg, 300, "test")) == rows(test)
    assert rows(generate_problems(cfg, 500)) == rows(train[:500])
    # The held-out keys are the same for every seed: another seed's train set avoids them too.
    other_train = generate_problems(dataclasses.replace(cfg, seed=1), 4000)
    assert not {p.problem for p in other_train} & {p.problem for p in test}


def test_family_weights_shift_the_mix():
    problems = generate_problems(SyntheticDataConfig(family_weights={"fractions": 5.0}), 1000)
    share = sum(p.meta["family"] == "fractions" for p in problems) / len(problems)
    assert 0.4 < share < 0.6  # 5 / (5 + 5 others)


def test_a_mix_with_too_few_problems_says_so():
    cfg = SyntheticDataConfig(levels=(1,), families=("fractions",))
    with pytest.raises(ValueError, match="distinct test problems exist for levels"):
        generate_problems(cfg, 1000, "test")


# --- config validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"levels": (7,)}, "levels: 7 is not a level; allowed 1..5"),
        ({"levels": ()}, "levels: must name at least one level"),
        ({"levels": (2, 2)}, "levels: lists a level twice"),
        ({"families": ("geometry",)}, "families: unknown family 'geometry'; known: arithmetic, order_of_operations, fractions"),
        ({"family_weights": {"fractions": 0}}, "family_weights: weight of 'fractions' must be a number > 0"),
        ({"families": ("arithmetic",), "family_weights": {"fractions": 2}}, "family_weights: 'fractions' is not in families"),
        ({"train_size": -1}, "train_size: must be >= 0"),
    ],
)
def test_config_errors_name_the_field_and_what_is_allowed(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        SyntheticDataConfig(**kwargs)


def test_difficulty_errors_name_the_knob_and_the_level():
    with pytest.raises(ValueError, match=re.escape("digits: needs one value per level 1..5, got 3")):
        Difficulty(digits=(2, 2, 3))
    with pytest.raises(ValueError, match=re.escape("steps: 9 at level 5 is out of range; allowed 1..5")):
        Difficulty(steps=(1, 2, 3, 4, 9))
    with pytest.raises(ConfigError, match=re.escape("difficulty.max_coefficient: 1 at level 1")):
        from_dict(SyntheticDataConfig, {"difficulty": {"max_coefficient": [1, 12, 15, 20, 25]}})


# --- writers and the corpus --------------------------------------------------------------------


def test_problem_files_round_trip_through_the_loader(tmp_path):
    problems = generate_problems(SyntheticDataConfig(seed=1), 30)
    path = write_problems_jsonl(problems, tmp_path / "sets" / "train.jsonl")
    loaded = load_problems(path).problems
    assert [(p.id, p.problem, p.answer, p.solution, p.source) for p in loaded] == [
        (p.id, p.problem, p.answer, p.solution, p.source) for p in problems
    ]
    assert [p.meta["level"] for p in loaded] == [p.meta["level"] for p in problems]


def test_corpus_mixes_lessons_with_worked_problems_and_is_deterministic(tmp_path):
    docs = generate_corpus(120, seed=4)
    worked = [d for d in docs if "Problem: " in d]
    lessons = [d for d in docs if "Problem: " not in d]
    assert worked and lessons and all("\\boxed{" in d for d in worked)
    titles = {d.split("\n", 1)[0] for d in lessons}
    assert {"Place value", "Order of operations", "Equivalent fractions", "Solving for x"} <= titles
    assert generate_corpus(120, seed=4) == docs and generate_corpus(120, seed=5) != docs
    path = write_corpus(tmp_path / "corpus.jsonl", 20, seed=4)
    assert [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()] == docs[:20]


def test_corpus_holds_no_test_problem():
    data = SyntheticDataConfig(levels=(1, 2))  # small problem spaces: a leak would show
    test = generate_problems(data, 600, "test")
    docs = generate_corpus(400, seed=0, data=data, explanation_share=0.5)
    leaked = [p.problem for p in test if any(p.problem in d for d in docs)]
    assert not leaked
    # Lesson examples that are problems in disguise (a sum in columns) come from train too.
    lessons = generate_corpus(200, seed=0, data=dataclasses.replace(data, families=("arithmetic",)), explanation_share=1.0)
    shown = [f"arithmetic:{a} + {b}" for d in lessons for a, b in re.findall(r"Add (\d+) and (\d+)\.", d)]
    shown += [f"arithmetic:{a} - {b}" for d in lessons for b, a in re.findall(r"Subtract (\d+) from (\d+)\.", d)]
    assert shown and all(split_of(key) == "train" for key in shown)


def test_rl_problems_are_in_neither_the_train_set_nor_the_corpus_nor_test():
    data = SyntheticDataConfig(seed=1, train_size=150, test_size=50, rl_size=100)
    train, test = generate_splits(data)
    rl = generate_rl_problems(data)
    assert len(rl) == 100 and len({p.meta["key"] for p in rl}) == 100
    keys = {p.meta["key"] for p in train} | {p.meta["key"] for p in test}
    assert not keys & {p.meta["key"] for p in rl}
    # a corpus wanting more worked problems (~800) than the train set holds goes round it again
    text = "\n".join(generate_corpus(400, seed=1, data=data, explanation_share=0.0))
    shown = {p.id for p in train + rl + test if f"Problem: {p.problem}\nSolution: {p.solution}" in text}
    assert shown == {p.id for p in train}
    # a longer RL set extends a shorter one; a larger train set moves it along the stream
    assert rows(generate_rl_problems(dataclasses.replace(data, rl_size=40))) == rows(rl[:40])
    assert rows(generate_rl_problems(dataclasses.replace(data, train_size=170, rl_size=80))) == rows(rl[20:])


def test_number_fact_sheets_are_right_and_take_their_share():
    import re
    from fractions import Fraction

    docs = generate_corpus(400, seed=5, explanation_share=0.2, facts_share=0.3)
    sheets = [d for d in docs if all(re.fullmatch(r"\d+ [-+×÷] \d+ = \d+", line) for line in d.strip().split("\n")[-24:])]
    assert 0.2 < len(sheets) / len(docs) < 0.4
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "×": lambda a, b: a * b, "÷": lambda a, b: Fraction(a, b)}
    for sheet in sheets:
        for line in sheet.strip().split("\n")[-24:]:
            a, op, b, _, c = line.split()
            assert ops[op](int(a), int(b)) == int(c), line
    with pytest.raises(ValueError, match="facts_share"):
        generate_corpus(1, explanation_share=0.8, facts_share=0.3)
