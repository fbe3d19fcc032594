"""Decontamination: near-duplicates go for the right reason, look-alikes stay, and the fast path
decides exactly as the pair-by-pair definition does."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

import mathdata.decontaminate as dc
from mathdata.decontaminate import (
    DecontaminationConfig,
    decontaminate,
    decontaminate_problems,
    lcs_length,
    lcs_length_dp,
    reference_decontaminate,
    tokenize,
)
from mathdata.problems import Problem

EVAL = [
    "A farmer has 24 cows and 36 sheep. Each cow eats 3 bales of hay per week and each sheep eats 1 bale. "
    "How many bales does the farmer need in 4 weeks?",
    "Let $f(x) = 2x^2 - 3x + 7$. Find the sum of all real values of $x$ for which $f(x) = 12$.",
    "Compute $\\dbinom{8}{4}$.",
    "Maria buys 3 notebooks at $\\$4$ each and 2 pens at $\\$1.50$ each. She pays with a $\\$20$ bill. "
    "What is the value of her change, in dollars?",
    "The lengths of the sides of a triangle are 13, 14 and 15 units. A circle is inscribed in the triangle. "
    "What is the radius of the inscribed circle?",
]

# (training text, evaluation index it copies, the rule that must catch it)
NEAR_DUPLICATES = {
    # Every few tokens a number differs, so no 13 consecutive tokens survive: only LCS sees it.
    "numbers changed": (
        "A farmer has 30 cows and 45 sheep. Each cow eats 4 bales of hay per week and each sheep eats 2 bales. "
        "How many bales does the farmer need in 6 weeks?",
        0,
        "lcs",
    ),
    "sentences swapped": (
        "Each cow eats 3 bales of hay per week and each sheep eats 1 bale. A farmer has 24 cows and 36 sheep. "
        "How many bales does the farmer need in 4 weeks?",
        0,
        "ngram",
    ),
    "punctuation and case": (
        "a FARMER has 24 cows and 36 sheep; each cow eats 3 bales of hay per week, and each sheep eats 1 bale... "
        "how many bales does the farmer need in 4 weeks",
        0,
        "ngram",
    ),
    "re-typeset": (
        "Let $f(x)=2x^{2}-3x+7.$ Find the sum of all real values of $x$ for which $f\\left(x\\right)=12.$",
        1,
        "ngram",
    ),
    "extra sentence": (
        "Let $f(x) = 2x^2 - 3x + 7$. Find the sum of all real values of $x$ for which $f(x) = 12$. "
        "Express your answer as a common fraction.",
        1,
        "ngram",
    ),
    "reworded": (
        "Maria pays for 3 notebooks costing $\\$4$ each and 2 pens costing $\\$1.50$ each with a $\\$20$ bill. "
        "What is her change in dollars?",
        3,
        "lcs",
    ),
    "clauses swapped": (
        "A circle is inscribed in a triangle. The lengths of the sides of the triangle are 13, 14 and 15 units. "
        "What is the radius of the circle?",
        4,
        "lcs",
    ),
    # Shorter than 13 tokens: only the LCS rule can apply.
    "short, case and macro": ("COMPUTE $\\binom{8}{4}$", 2, "lcs"),
    "short, number changed": ("Compute $\\dbinom{9}{4}$.", 2, "lcs"),
}

# Different problems on the same topics, sharing their boilerplate with the evaluation set.
LOOK_ALIKES = [
    "A farmer has 12 chickens. Each chicken lays 5 eggs per week, and the farmer sells the eggs for $\\$3$ "
    "per dozen. How much money does the farmer make in 4 weeks?",
    "Let $g(x) = x^3 + 4x$. What is the value of $g(2) - g(-2)$?",
    "Tom buys 5 apples at $\\$2$ each and a melon. He pays with a $\\$20$ bill and gets $\\$4$ back. "
    "What is the value of the melon, in dollars?",
    "The sides of a right triangle are 5, 12 and 13 units. What is the length of the altitude to the hypotenuse?",
    "The perimeter of a rectangle is 56 cm and its length is 4 cm more than twice its width. "
    "If the width is $x$ cm, what is the value of $x$?",
    "Compute $\\sqrt{144}$.",
]


def test_tokenize_keeps_content_and_drops_typesetting() -> None:
    assert tokenize("Let $f(3x+5)$.") == ["let", "f", "3", "x", "+", "5"]
    assert tokenize("$\\dfrac{1}{2} \\le \\left(x\\right)^2$") == ["\\frac", "1", "2", "\\leq", "x", "^", "2"]
    assert tokenize("It costs $\\$1,250.50$, i.e. 20\\% OFF!") == ["it", "costs", "1250.50", "i", "e", "20", "%", "off", "!"]
    assert tokenize("$(0,3)$ and $\\text{5 cm}$") == ["0", "3", "and", "5", "cm"]
    assert tokenize("  ,.;$$ ") == []


@pytest.mark.parametrize("case", list(NEAR_DUPLICATES))
def test_near_duplicate_is_removed_for_the_right_reason(case: str) -> None:
    text, eval_index, rule = NEAR_DUPLICATES[case]
    result = decontaminate([text], EVAL)
    assert result.kept == ()
    (removal,) = result.removals
    assert (removal.train_index, removal.eval_index, removal.rule) == (0, eval_index, rule), removal.detail


def test_removal_details_name_the_ngram_or_the_ratio() -> None:
    train = [NEAR_DUPLICATES["sentences swapped"][0], NEAR_DUPLICATES["short, number changed"][0]]
    ngram, lcs = decontaminate(train, EVAL).removals
    # The first shared 13-gram in reading order of the training problem.
    assert ngram.detail == 'shares 13-gram "each cow eats 3 bales of hay per week and each sheep eats"'
    # [compute \binom 9 4] vs [compute \binom 8 4]: LCS 3, ratio 2*3/(4+4).
    assert lcs.detail == "LCS ratio 0.750 >= 0.6 (LCS 3 tokens; train 4, eval 4 tokens)"


def test_look_alikes_are_kept() -> None:
    result = decontaminate(LOOK_ALIKES, EVAL)
    assert result.removals == ()
    assert result.kept == tuple(range(len(LOOK_ALIKES)))


def test_mixed_batch_keeps_order_and_indices() -> None:
    dups = [text for text, _, _ in NEAR_DUPLICATES.values()]
    train = [t for pair in zip(LOOK_ALIKES, dups) for t in pair] + dups[len(LOOK_ALIKES) :]
    result = decontaminate(train, EVAL)
    assert [train[i] for i in result.kept] == LOOK_ALIKES
    assert [r.train_index for r in result.removals] == [i for i, t in enumerate(train) if t in dups]


def test_ties_name_the_lowest_evaluation_index() -> None:
    # The evaluation set holds each of two problems twice; removals name the first copy.
    evaluation = [EVAL[2], EVAL[1], EVAL[1], EVAL[2]]
    result = decontaminate([NEAR_DUPLICATES["extra sentence"][0], NEAR_DUPLICATES["short, case and macro"][0]], evaluation)
    assert [(r.eval_index, r.rule) for r in result.removals] == [(1, "ngram"), (0, "lcs")]


def test_lcs_names_the_closest_evaluation_problem() -> None:
    evaluation = ["Compute $\\binom{9}{5}$ exactly.", "Compute $\\binom{9}{4}$ exactly.", "Compute $\\binom{9}{4}$."]
    (removal,) = decontaminate(["Compute $\\binom{9}{4}$, please."], evaluation).removals
    assert removal.eval_index == 2  # ratio 8/9, against 6/10 and 8/10


def test_empty_inputs() -> None:
    assert decontaminate([], EVAL) == dc.DecontaminationResult((), ())
    assert decontaminate(["Compute $1+1$.", "$$"], []).kept == (0, 1)
    assert decontaminate(["$$", "..."], ["$$"]).kept == (0, 1)  # no tokens: nothing to match


def test_config_rules_follow_the_config() -> None:
    text = NEAR_DUPLICATES["sentences swapped"][0]  # ratio 0.76, and a shared 13-gram
    assert decontaminate([text], EVAL, DecontaminationConfig(ngram=40, lcs_ratio=0.9)).kept == (0,)
    (removal,) = decontaminate([text], EVAL, DecontaminationConfig(ngram=40, lcs_ratio=0.7)).removals
    assert removal.rule == "lcs"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ngram": 0}, "ngram"),
        ({"ngram": 2.5}, "ngram"),
        ({"ngram": True}, "ngram"),
        ({"lcs_ratio": 0.0}, "lcs_ratio"),
        ({"lcs_ratio": 1.5}, "lcs_ratio"),
        ({"lcs_ratio": "0.6"}, "lcs_ratio"),
    ],
)
def test_config_errors_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: must be"):
        DecontaminationConfig(**kwargs)  # type: ignore[arg-type]


# --- the fast path against the definition --------------------------------------------------


def test_bitparallel_lcs_matches_dynamic_programming() -> None:
    rng = random.Random(0)
    for _ in range(300):
        alphabet = rng.randint(1, 6)
        a = [rng.randrange(alphabet) for _ in range(rng.randint(0, 90))]
        b = [rng.randrange(alphabet) for _ in range(rng.randint(0, 90))]
        assert lcs_length(a, b) == lcs_length_dp(a, b) == lcs_length_dp(b, a)


def _mutate(text: str, rate: float, pool: list[str], rng: random.Random) -> str:
    """Word-level edits (replace, delete, insert, swap with the next word) at `rate` per word."""
    words = text.split()
    out: list[str] = []
    for k, word in enumerate(words):
        if rng.random() >= rate:
            out.append(word)
            continue
        edit = rng.randrange(4)
        if edit == 0:
            out.append(rng.choice(pool))
        elif edit == 2:
            out += [word, rng.choice(pool)]
        elif edit == 3 and k + 1 < len(words):
            words[k], words[k + 1] = words[k + 1], word
            out.append(words[k])
    return " ".join(out)


def _math500(data: Path, limit: int) -> list[str]:
    with (data / "math500.jsonl").open(encoding="utf-8") as f:
        texts = [json.loads(line)["problem"] for line in f if line.strip()]
    # Skip the longest few: the reference's dynamic program is quadratic in length.
    return [t for t in texts if len(t) < 400][:limit]


def _synthetic(count: int, rng: random.Random) -> list[str]:
    words = "the a of is what value find let x y sum number if then how many total each per 2 3 5 7 + = ^".split()
    return [" ".join(rng.choices(words, k=rng.randint(3, 40))) for _ in range(count)]


@pytest.mark.parametrize("source", ["math500", "synthetic"])
@pytest.mark.parametrize(
    "cfg",
    [DecontaminationConfig(), DecontaminationConfig(ngram=5, lcs_ratio=0.45), DecontaminationConfig(ngram=30, lcs_ratio=0.8)],
    ids=["recipe", "loose", "strict"],
)
def test_fast_path_decides_like_the_definition(source: str, cfg: DecontaminationConfig, request: pytest.FixtureRequest) -> None:
    rng = random.Random(1)
    texts = _math500(request.getfixturevalue("shared_data"), 200) if source == "math500" else _synthetic(200, rng)
    pool = [w for t in texts for w in t.split()]
    for _ in range(3):  # three draws of 50 training x 21 evaluation problems
        evaluation = rng.sample(texts, 20)
        evaluation.append(evaluation[3])  # a duplicate, to exercise ties
        train = []
        for _ in range(50):
            base = rng.choice(evaluation) if rng.random() < 0.7 else rng.choice(texts)
            train.append(_mutate(base, rng.choice([0.0, 0.1, 0.25, 0.35, 0.4, 0.45, 0.5, 0.6]), pool, rng))

        fast = decontaminate(train, evaluation, cfg)
        slow = reference_decontaminate(train, evaluation, cfg)
        assert (fast.kept, fast.removals) == (slow.kept, slow.removals)
        if cfg == DecontaminationConfig():  # each draw exercises both rules and the keep path
            assert {r.rule for r in fast.removals} == {"ngram", "lcs"} and fast.kept
        assert fast.lcs_pairs < len(train) * len(evaluation)  # the bound pruned something


def test_decisions_do_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    train = LOOK_ALIKES + [text for text, _, _ in NEAR_DUPLICATES.values()]
    whole = decontaminate(train, EVAL)
    monkeypatch.setattr(dc, "_TRAIN_BLOCK", 4)
    assert decontaminate(train, EVAL) == whole


# --- problems and the command line ---------------------------------------------------------


def test_decontaminate_problems() -> None:
    train = [Problem(id=f"t{k}", problem=text, answer="0") for k, text in enumerate([LOOK_ALIKES[0], EVAL[1], LOOK_ALIKES[1]])]
    evaluation = [Problem(id=f"e{k}", problem=text, answer="0") for k, text in enumerate(EVAL)]
    kept, removals = decontaminate_problems(train, evaluation)
    assert [p.id for p in kept] == ["t0", "t2"]
    assert [(r.train_index, r.eval_index, r.rule) for r in removals] == [(1, 1, "ngram")]


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_rows = [
        {"question": LOOK_ALIKES[0], "answer": "60", "extra": [1, 2]},
        {"question": NEAR_DUPLICATES["numbers changed"][0], "answer": "1"},
        {"id": "g", "question": LOOK_ALIKES[1], "answer": "80"},
        {"question": NEAR_DUPLICATES["extra sentence"][0], "answer": "3/2"},
    ]
    train = _write_jsonl(tmp_path / "train.jsonl", train_rows)
    first = _write_jsonl(tmp_path / "first.jsonl", [{"problem": EVAL[0], "answer": "1"}])
    second = _write_jsonl(tmp_path / "second.jsonl", [{"question": "What is 1+1?", "answer": "2"}, {"problem": EVAL[1], "answer": "1/2", "unique_id": "f12"}])
    out = tmp_path / "clean" / "train.jsonl"

    assert dc.main([str(train), str(first), str(second), "-o", str(out)]) == 0

    kept = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert kept == [
        {"id": "train-0", "problem": LOOK_ALIKES[0], "answer": "60", "extra": [1, 2]},
        {"id": "g", "problem": LOOK_ALIKES[1], "answer": "80"},
    ]
    err = capsys.readouterr().err
    assert "kept 2 of 4 training problems; removed 2 (ngram 1, lcs 1), against 3 evaluation problems" in err
    assert "train.jsonl[1] (train-1) [lcs] matches first.jsonl[0] (first-0): LCS ratio 0.818" in err
    assert 'train.jsonl[3] (train-3) [ngram] matches second.jsonl[1] (f12): shares 13-gram "let f x' in err


def test_command_line_overrides_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train = _write_jsonl(tmp_path / "train.jsonl", [{"problem": NEAR_DUPLICATES["reworded"][0], "answer": "9"}])
    evaluation = _write_jsonl(tmp_path / "eval.jsonl", [{"problem": EVAL[3], "answer": "9"}])
    out = tmp_path / "out.jsonl"
    # The reworded copy has ratio 0.77: kept under lcs_ratio=0.8.
    assert dc.main([str(train), str(evaluation), "lcs_ratio=0.8", "-o", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1

    with pytest.raises(SystemExit):
        dc.main([str(train), str(evaluation), "ngram=0", "-o", str(out)])
    assert "ngram: must be an integer >= 1" in capsys.readouterr().err

    bad = _write_jsonl(tmp_path / "bad.jsonl", [{"problem": EVAL[0], "answer": "1"}, {"text": "no problem field"}])
    with pytest.raises(SystemExit):
        dc.main([str(bad), str(evaluation), "-o", str(tmp_path / "never.jsonl")])
    assert "bad.jsonl:line 2: missing 'problem'" in capsys.readouterr().err
    assert not (tmp_path / "never.jsonl").exists()
