"""Adversarial model outputs for the verifier: a deterministic stream of strings built to hang,
blow up, crash or hijack an answer checker. Used by `tests/test_verifier_fuzz.py` (a few
hundred) and `bench/drills/verifier_fuzz.py` (10,000).

Each category names what it attacks:
  huge_number   arbitrary-precision arithmetic: 10^{10^{10}}, 10^6-digit literals, factorials
  deep_nesting  recursive-descent parsers and sympy's recursion: thousands of (, {, \\frac, \\sqrt
  unbalanced    the brace matcher of answer extraction: \\boxed{ never closed, stray }
  unicode       normalisation and encoding: RTL marks, zero-width joiners, combining marks,
                full-width digits, lone surrogates, NUL, emoji
  long          linear-time assumptions: megabyte responses, 10^5 terms, many \\boxed
  injection     code execution: eval/exec/__import__ payloads, bare and inside LaTeX
  mixed         random splices of all the above with ordinary answers
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from tests.test_verifier_safety import PATHOLOGICAL, PAYLOADS

CATEGORIES = ("huge_number", "deep_nesting", "unbalanced", "unicode", "long", "injection", "mixed")

ORDINARY = ["5", r"\frac{1}{2}", "0.5", "x^2+1", r"\sqrt{2}", "(1, 2)", r"[0, \infty)", "3\\pi", "-7", "12\\%"]
LATEX_PIECES = [r"\frac{", r"\sqrt{", r"\boxed{", "{", "}", "(", ")", "^", "_", r"\left(", r"\right)", r"\cdot",
                r"\pm", "=", ",", r"\infty", r"\pi", "x", "9", "0", ".", "e", "!", r"\text{", r"\operatorname{"]
ODD_CHARS = ["\u202e", "\u200b", "\u200d", "\ufeff", "\u0301", "\u0336", "\uff11", "\uff12", "\ud800", "\udfff",
             "\x00", "\x1b[31m", "😀", "👩\u200d👩\u200d👧", "ℵ", "∞", "√", "½", "\u2028", "\r\n"]


def _huge_number(rng: random.Random) -> str:
    return rng.choice([
        "9" * rng.choice([1_000, 100_000, 1_000_000]),
        "10^{" * rng.randint(3, 8) + "10" + "}" * rng.randint(0, 8),
        f"({rng.randint(10, 10**9)})!" * rng.randint(1, 3),
        f"{rng.randint(2, 99)}^{{{rng.randint(10**6, 10**12)}}}",
        f"1e{rng.randint(10**5, 10**9)}",
        rf"\binom{{{rng.randint(10**5, 10**8)}}}{{{rng.randint(10**4, 10**7)}}}",
        f"{rng.randint(2, 9)}" + "!" * rng.randint(2, 40),
    ])


def _deep_nesting(rng: random.Random) -> str:
    depth = rng.choice([50, 500, 5_000, 50_000])
    opener, closer = rng.choice([("(", ")"), ("{", "}"), (r"\frac{1}{", "}"), (r"\sqrt{", "}"), ("[", "]"),
                                 (r"\left(", r"\right)"), ("-(", ")"), ("2^{", "}")])
    return opener * depth + "1" + closer * rng.choice([depth, depth // 2, 0])


def _unbalanced(rng: random.Random) -> str:
    k = rng.randint(1, 3000)
    return rng.choice([
        r"\boxed{" + "{" * k + "1",
        "}" * k + r"\boxed{2}",
        r"\boxed{" * k,
        r"\frac{1}{2" + "}" * rng.randint(0, 2) + "{" * k,
        r"\left(" * k + r"\right]",
        r"\boxed{1}} } }" + "{" * k,
    ])


def _unicode(rng: random.Random) -> str:
    body = "".join(rng.choice(ODD_CHARS + ORDINARY) for _ in range(rng.randint(1, 200)))
    return rng.choice([body, "\uff14\uff12", "4\u200b2", "\u202e24", "４２", body * rng.randint(1, 500)])


def _long(rng: random.Random) -> str:
    n = rng.choice([10_000, 100_000, 500_000])
    return rng.choice([
        "x+" * n + "1",
        ",".join(str(i) for i in range(n // 10)),
        r"\boxed{1}" * (n // 10),
        "a" * (n * 4),
        "=".join(["x"] * (n // 10)),
    ])


def _injection(rng: random.Random, marker: Path) -> str:
    payload = rng.choice(PAYLOADS).replace("{marker}", str(marker))
    return rng.choice([payload, rf"\frac{{{payload}}}{{2}}", rf"\text{{{payload}}}", f"{rng.choice(ORDINARY)}; {payload}",
                       payload.replace("'", '"'), rf"\sqrt{{{payload}}}"])


def _mixed(rng: random.Random, marker: Path) -> str:
    parts = [rng.choice(LATEX_PIECES) for _ in range(rng.randint(1, 60))]
    parts.insert(rng.randrange(len(parts) + 1), rng.choice([*ORDINARY, *PATHOLOGICAL.values(), _injection(rng, marker)]))
    return "".join(parts)


def adversarial_answer(category: str, rng: random.Random, marker: Path) -> str:
    if category == "injection":
        return _injection(rng, marker)
    if category == "mixed":
        return _mixed(rng, marker)
    return {"huge_number": _huge_number, "deep_nesting": _deep_nesting, "unbalanced": _unbalanced,
            "unicode": _unicode, "long": _long}[category](rng)


def adversarial_pairs(count: int, seed: int, marker: Path) -> Iterator[tuple[str, str, str]]:
    """`count` (category, response, gold) triples, categories in turn. The response is the
    attack as a model would write it (boxed at the end of a solution, or bare); now and then
    the gold is hostile too, as in a poisoned dataset. `marker` is the file an injection
    would create: it must never exist."""
    rng = random.Random(seed)
    for i in range(count):
        category = CATEGORIES[i % len(CATEGORIES)]
        attack = adversarial_answer(category, rng, marker)
        response = rng.choice([f"Adding up the terms gives the result.\nThe answer is \\boxed{{{attack}}}.", attack,
                               f"The answer is {attack}", f"\\boxed{{{rng.choice(ORDINARY)}}} or \\boxed{{{attack}}}"])
        gold = attack if rng.random() < 0.1 else rng.choice(ORDINARY)
        yield category, response, gold
