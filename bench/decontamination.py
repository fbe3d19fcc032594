"""Decontamination speed: the fast path against the pair-by-pair definition, 10k x 1k problems.

Evaluation set: the 500 MATH-500 problems and the first 500 GSM8K test questions.
Training set (10,000): the other 819 GSM8K questions (which hold a few real near-duplicates of
the first 500), 300 planted near-duplicates of evaluation problems (numbers changed, sentences
swapped, re-punctuated, an extra sentence), questions spliced from sentences of unrelated
GSM8K questions, templated problems, and word salad drawn from the corpus' own word
frequencies. Four of the ten templates
are short MATH-500 templates ("If $f(x) = ...$, what is the value of $f(a)$?"): the 0.6 rule
removes those as numbers-changed siblings of MATH-500 problems, and the per-kind table shows it.

The naive reference (`reference_decontaminate`: n-grams against every evaluation problem, a
dynamic-programming LCS for every pair) runs on a subsample of the training set against the
full evaluation set; its full-size time is extrapolated linearly in the number of training
problems, and labelled as such. Both must make the same decisions on the subsample.

    python bench/decontamination.py [--data DIR] [--subsample 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from mathdata.decontaminate import (
    DecontaminationConfig,
    decontaminate,
    lcs_length,
    lcs_ratio,
    reference_decontaminate,
    tokenize,
)
from mathdata.loading import load_problems

N_TRAIN = 10_000
N_PLANTED = 300
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def read_texts(path: Path) -> list[str]:
    return [p.problem for p in load_problems(path).problems]


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]


# --- near-duplicates: the edits a rewriter makes -------------------------------------------


def change_numbers(text: str, rng: random.Random) -> str:
    return re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), text)


def swap_sentences(text: str, rng: random.Random) -> str:
    parts = sentences(text)
    if len(parts) > 2:
        k = rng.randrange(len(parts) - 2)  # keep the question last
        parts[k], parts[k + 1] = parts[k + 1], parts[k]
    return " ".join(parts)


def repunctuate(text: str, rng: random.Random) -> str:
    text = text.upper() if rng.random() < 0.5 else text.lower()
    return re.sub(r"[,;:?]|\.(?!\d)", lambda m: rng.choice([" ", ";", ",", " ."]), text)


def add_sentence(text: str, rng: random.Random) -> str:
    extra = rng.choice(["Show your work.", "Give the answer as a whole number.", "Think step by step before answering."])
    return f"{text} {extra}"


EDITS: list[Callable[[str, random.Random], str]] = [change_numbers, swap_sentences, repunctuate, add_sentence]


# --- the other training problems -----------------------------------------------------------

NAMES = ["Ava", "Ben", "Carla", "Dev", "Elif", "Farid", "Gwen", "Hiro", "Ines", "Jonas", "Kemi", "Luca"]
ITEMS = ["apples", "stickers", "marbles", "books", "pencils", "cookies", "stamps", "shells", "cards", "plants"]
TEMPLATES = [
    "{a} has {x} {i}. {b} gives {a} {y} more {i} and then {a} loses {z}. How many {i} does {a} have now?",
    "A store sells {i} for ${x} each. {a} buys {y} of them and pays with a ${z}0 bill. How much change does {a} get?",
    "Solve for $x$: ${x}x + {y} = {z}$.",
    "What is the remainder when ${x}^{{{y}}}$ is divided by {z}?",
    "A rectangle has a length of {x} cm and a width of {y} cm. What is its area in square centimeters?",
    "{a} reads {x} pages on Monday and twice as many on Tuesday. If the book has {z}0 pages, how many are left?",
    "The sum of two numbers is {x} and their difference is {y}. What is the larger number?",
    "If $f(x) = {x}x^2 - {y}x + {z}$, what is the value of $f({y})$?",
    "{a} and {b} share {z}0 {i} in the ratio {x}:{y}. How many {i} does {b} get?",
    "How many positive divisors does {x}{y}{z} have?",
]


def templated(rng: random.Random) -> str:
    a, b = rng.sample(NAMES, 2)
    fill = dict(a=a, b=b, i=rng.choice(ITEMS), x=rng.randint(2, 60), y=rng.randint(2, 60), z=rng.randint(2, 60))
    return rng.choice(TEMPLATES).format(**fill)


def spliced(pool: list[str], rng: random.Random) -> str:
    return " ".join(rng.choice(sentences(rng.choice(pool))) for _ in range(rng.randint(3, 5)))


def word_salad(words: list[str], rng: random.Random) -> str:
    return " ".join(rng.choices(words, k=rng.randint(15, 70))) + "?"


def build(data: Path, seed: int) -> tuple[list[str], list[str], list[str]]:
    """(train, eval, the kind of each training problem)."""
    rng = random.Random(seed)
    math500 = read_texts(data / "math500.jsonl")
    gsm8k = read_texts(data / "gsm8k_test.jsonl")
    evaluation = math500 + gsm8k[:500]
    clean_gsm = gsm8k[500:]
    words = [tok for text in clean_gsm for tok in text.split()]
    rows = [(text, "gsm8k[500:]") for text in clean_gsm]
    for _ in range(N_PLANTED):
        edit = rng.choice(EDITS)
        rows.append((edit(rng.choice(evaluation), rng), f"planted {edit.__name__}"))
    makers = {
        "templated": lambda: templated(rng),
        "spliced": lambda: spliced(clean_gsm, rng),
        "word salad": lambda: word_salad(words, rng),
    }
    while len(rows) < N_TRAIN:
        kind = rng.choice(list(makers))
        rows.append((makers[kind](), kind))
    rng.shuffle(rows)
    return [text for text, _ in rows], evaluation, [kind for _, kind in rows]


def all_pairs_bitparallel(train: list[str], evaluation: list[str]) -> None:
    """The exact LCS for every pair without the overlap bound: what the bound saves."""
    eval_tokens = [tokenize(t) for t in evaluation]
    for text in train:
        a = tokenize(text)
        for b in eval_tokens:
            lcs_ratio(lcs_length(a, b), len(a), len(b))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with math500.jsonl and gsm8k_test.jsonl")
    parser.add_argument("--subsample", type=int, default=40, help="training problems the naive reference runs on")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (args.data / "math500.jsonl").exists():
        print(f"no math500.jsonl under {args.data}; pass --data", file=sys.stderr)
        return 2

    cfg = DecontaminationConfig()
    train, evaluation, kinds = build(args.data, args.seed)
    n_train, n_eval = len(train), len(evaluation)
    planted = {i for i, kind in enumerate(kinds) if kind.startswith("planted")}
    print(f"{n_train} training x {n_eval} evaluation problems ({n_train * n_eval:,} pairs), "
          f"{len(planted)} planted near-duplicates")

    fast_s, fast = timed(lambda: decontaminate(train, evaluation, cfg))
    print(f"fast: {fast.summary()}; exact LCS on {fast.lcs_pairs:,} pairs "
          f"({fast.lcs_pairs / (n_train * n_eval):.3%} of all)")
    by_kind = Counter(kinds)
    removed = Counter((kinds[r.train_index], r.rule) for r in fast.removals)
    for kind in sorted(by_kind):
        print(f"  {kind:<24} {by_kind[kind]:>5} problems, removed: "
              f"ngram {removed[kind, 'ngram']:>4}, lcs {removed[kind, 'lcs']:>4}")

    rng = random.Random(args.seed + 1)
    # Half planted, half not, so the subsample exercises both rules and the keep path.
    others = sorted(set(range(n_train)) - planted)
    half = args.subsample // 2
    sub = sorted(rng.sample(sorted(planted), half) + rng.sample(others, args.subsample - half))
    sub_train = [train[i] for i in sub]
    naive_s, naive = timed(lambda: reference_decontaminate(sub_train, evaluation, cfg))
    fast_sub_s, fast_sub = timed(lambda: decontaminate(sub_train, evaluation, cfg))
    bitpar_s, _ = timed(lambda: all_pairs_bitparallel(sub_train, evaluation))
    agree = (naive.kept, naive.removals) == (fast_sub.kept, fast_sub.removals)
    # The full run must decide the subsample's rows as the subsample run does.
    position = {i: k for k, i in enumerate(sub)}
    full_on_sub = {(position[r.train_index], r.eval_index, r.rule) for r in fast.removals if r.train_index in position}
    consistent = full_on_sub == {(r.train_index, r.eval_index, r.rule) for r in fast_sub.removals}

    scale = n_train / len(sub)
    rows = [  # (implementation, training problems, how the time was obtained, seconds)
        ("naive reference", len(sub), "measured", naive_s),
        ("naive reference", n_train, "EXTRAPOLATED", naive_s * scale),
        ("all-pairs bit-parallel LCS, no bound", n_train, "EXTRAPOLATED", bitpar_s * scale),
        ("fast", len(sub), "measured", fast_sub_s),
        ("fast", n_train, "measured", fast_s),
    ]
    print()
    print(f"{'implementation':<38} {'train x eval':>14} {'':>12} {'seconds':>10} {'pairs/s':>12}")
    for name, rows_train, how, seconds in rows:
        size = f"{rows_train} x {n_eval}"
        print(f"{name:<38} {size:>14} {how:>12} {seconds:>10.2f} {rows_train * n_eval / seconds:>12,.0f}")
    print()
    print(f"speed-up at {n_train} x {n_eval}: {naive_s * scale / fast_s:,.0f}x over the naive reference (extrapolated), "
          f"{bitpar_s * scale / fast_s:,.0f}x over the unbounded bit-parallel LCS (extrapolated)")
    print(f"subsample ({len(sub)} training problems, {len(naive.removals)} removed by the reference): "
          f"fast and naive agree: {agree}; full run agrees with subsample run: {consistent}")
    return 0 if agree and consistent else 1


if __name__ == "__main__":
    sys.exit(main())
