"""Adversarial model outputs for the verifier, generated deterministically from a seed.

    for case in adversarial_responses(count=10_000, seed=0, marker_dir=tmp):
        case.response, case.gold, case.expect

Case `i` is built from its own RNG (seeded by `seed` and `i`), so a case is the same
whatever `count` is and the stream can be consumed lazily (some responses are megabytes).
Categories take turns (case `i` belongs to category `i % len(CATEGORIES)`), so any run of
`len(CATEGORIES)` consecutive cases holds one of each; the way an answer is wrapped into a
response (bare, boxed at the end of some reasoning, or stated as "The final answer is $X$")
takes turns across those rounds.

`expect` is what a correct verifier must say: True (the answer is right), False (score 0:
garbage, or a wrong answer), None (either is defensible, e.g. full-width digits for "42").
Garbage is checked against golds that no generator writes, so an accidental match cannot
make a garbage case "correct".

Injection payloads write into `marker_dir` only (files named `PWNED_*`): after a run the
directory must be empty.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Case:
    index: int
    category: str
    wrap: str  # how the answer was put into the response: "bare", "boxed" or "stated"
    response: str
    gold: str
    expect: bool | None  # True: must be correct; False: must score 0; None: not judged


@dataclass(frozen=True)
class _Answer:
    text: str  # the model's final answer (or, for some categories, a whole response)
    gold: str
    expect: bool | None


# Golds for garbage: values that no generator below writes.
_GARBAGE_GOLDS = ("-173", r"\frac{7}{13}", r"2\sqrt{19}", "(3, -8)", r"\frac{\pi}{7}")


def _garbage(text: str, rng: random.Random) -> _Answer:
    return _Answer(text, rng.choice(_GARBAGE_GOLDS), expect=False)


# --- ordinary answers ----------------------------------------------------------------------
# Not dangerous: they are mixed in so the drill also sees the verifier still grading
# ordinary answers right (and in the same process pool) between the attacks.

_EQUAL = [
    ("42", "42"), (r"\frac{1}{2}", "0.5"), (r"\dfrac{3}{4}", r"\frac34"), (r"2\sqrt{2}", r"\sqrt{8}"),
    ("x^2+2x+1", "(x+1)^2"), ("(1, 2)", "(1,2)"), (r"\{1, 2\}", r"\{2, 1\}"), (r"(-\infty, 3]", r"x \le 3"),
    ("3+4i", "4i+3"), (r"50\%", "0.5"), (r"\pi", r"\pi"), (r"10^{3}", "1000"), ("2,125", "2125"),
    (r"\text{(B)}", "B"), ("y = 2x+1", "2x - y + 1 = 0"), (r"\frac{\sqrt{3}}{2}", r"\sin\frac{\pi}{3}"),
]
_DIFFERENT = [
    ("41", "42"), ("0.333", r"\frac13"), ("(1,2)", "(2,1)"), ("[2,5)", "(2,5)"), ("x=3", "y=3"),
    (r"\sqrt{3}", r"\sqrt{2}"), ("52_8", "52_{10}"), (r"\frac{1}{2}", r"\frac{1}{3}"), ("-5", "5"),
]


def _ordinary(rng: random.Random, marker: Path) -> _Answer:
    kind = rng.randrange(4)
    if kind == 0:
        n = rng.randrange(-10**6, 10**6)
        return _Answer(str(n), str(n), expect=True)
    if kind == 1:
        n = rng.randrange(10**6)
        return _Answer(str(n), str(n + rng.randrange(1, 100)), expect=False)
    if kind == 2:
        pred, gold = rng.choice(_EQUAL)
        return _Answer(pred, gold, expect=True)
    pred, gold = rng.choice(_DIFFERENT)
    return _Answer(pred, gold, expect=False)


# --- huge numbers --------------------------------------------------------------------------
# sympy and Python integers are exact: `9^{9^{9^{9}}}`, `(10^{10})!` or `10^{10^{10}}` asked
# to evaluate allocate without bound and compute inside GMP (C code no signal interrupts).
# Long digit strings also hit Python's int/str conversion limit (4300 digits: ValueError).

_HUGE = [
    lambda rng: "9^{9^{9^{9}}}",
    lambda rng: "9^9^9^9",
    lambda rng: "9**9**9**9",
    lambda rng: "2^{" * 6 + "2" + "}" * 6,
    lambda rng: r"10^{10^{10}}",
    lambda rng: r"10^{100000}",
    lambda rng: r"10^{10^{10}} - 10^{10^{10}} + 1",
    lambda rng: "(10^{10})!",
    lambda rng: "100000!",
    lambda rng: f"{rng.randrange(10**5, 10**7)}!!",
    lambda rng: r"\binom{10^{6}}{500000}",
    lambda rng: r"\Gamma(10^{20})",
    lambda rng: f"1e{rng.randrange(10**5, 10**9)}",
    lambda rng: f"1.5\\times 10^{{{rng.randrange(10**5, 10**9)}}}",
    lambda rng: r"e^{e^{e^{e^{10}}}}",
    lambda rng: r"\sqrt[10^{10}]{2}",
    lambda rng: r"\tan(10^{1000})",
    lambda rng: r"\frac{1}{10^{10^{10}}}",
    lambda rng: "1" + "0" * 100_000,  # 10**100000 written out
    lambda rng: "".join(rng.choices("0123456789", k=rng.randrange(4_000, 50_000))),
    lambda rng: "0." + "3" * 30_000,
    lambda rng: "0." + "0" * 5000 + r"\overline{3}",
    lambda rng: "1." + "9" * 1500 + r"\overline{" + "1" * 400 + "}",
]


def _huge_number(rng: random.Random, marker: Path) -> _Answer:
    return _garbage(rng.choice(_HUGE)(rng), rng)


# --- deep nesting --------------------------------------------------------------------------
# Recursive-descent parsers (ANTLR's, sympy's) and recursive tree walks hit RecursionError
# or, in C, overflow the stack (a segfault); ANTLR's prediction cost also grows steeply
# with bracket depth.

def _nest(rng: random.Random, opener: str, closer: str, core: str = "1") -> str:
    depth = rng.choice((10, 50, 200, 1000, 3000, 10_000))
    return opener * depth + core + closer * depth


_NESTED = [
    lambda rng: _nest(rng, "(", ")"),
    lambda rng: _nest(rng, "{", "}"),
    lambda rng: _nest(rng, "[", "]"),
    lambda rng: _nest(rng, r"\left(", r"\right)"),
    lambda rng: _nest(rng, r"\frac{", "}{2}"),
    lambda rng: _nest(rng, r"\frac{1}{", "}"),
    lambda rng: _nest(rng, r"\sqrt{", "}", "2"),
    lambda rng: _nest(rng, "2^{", "}", "2"),
    lambda rng: _nest(rng, r"\sin(", ")"),
    lambda rng: _nest(rng, r"\text{", "}"),
    lambda rng: _nest(rng, r"\boxed{", "}"),
    lambda rng: _nest(rng, r"\{", r"\}"),
    lambda rng: _nest(rng, "-", "", "1"),
    lambda rng: _nest(rng, "x^", "", "2"),
    lambda rng: _nest(rng, "1/(", ")"),
    lambda rng: r"\begin{pmatrix}" * 50 + "1" + r"\end{pmatrix}" * 50,
]


def _deep_nesting(rng: random.Random, marker: Path) -> _Answer:
    return _garbage(rng.choice(_NESTED)(rng), rng)


# --- unbalanced braces and delimiters ------------------------------------------------------
# Brace matching scans to the end of the text for every opener that never closes; a naive
# "try the previous box" loop then turns a truncated response quadratic.

_UNBALANCED = [
    lambda rng: r"so the answer is \boxed{" + "1" * rng.randrange(1, 10_000),
    lambda rng: r"\boxed{" * rng.randrange(1, 5000),
    lambda rng: "}" * rng.randrange(1, 5000) + r"\boxed{7",
    lambda rng: r"\frac{1}{2",
    lambda rng: r"\frac{{{{1}{2}",
    lambda rng: r"\sqrt{" * 100 + "2",
    lambda rng: r"\left(" * 500 + "1",
    lambda rng: "((1,2)" * rng.randrange(1, 2000),
    lambda rng: "$" * rng.randrange(1, 9) + "1" + "$" * rng.randrange(1, 9),
    lambda rng: r"\(" * 1000 + "1" + r"\]" * 999,
    lambda rng: r"\begin{pmatrix} 1 & 2 \\ 3",
    lambda rng: r"\end{pmatrix}" * 100,
    lambda rng: "{" * 3000 + r"\boxed{1}" + "}" * 10,
    lambda rng: r"\boxed{1}" + r"\boxed{" * 3000,
    lambda rng: r"\boxed",
    lambda rng: r"\boxed ",
    lambda rng: "\\",
    lambda rng: r"\boxed{\}",
]


def _unbalanced(rng: random.Random, marker: Path) -> _Answer:
    return _garbage(rng.choice(_UNBALANCED)(rng), rng)


# --- many boxes ----------------------------------------------------------------------------
# The extractor looks back over boxes and joins adjacent ones ("\boxed{2} and \boxed{3}");
# unbounded, that is a loop per box and a list with an element per box.

_BOXES = [
    lambda rng: r"\boxed{1}" * rng.randrange(100, 100_000),
    lambda rng: r"\boxed{1}, " * rng.randrange(100, 50_000),
    lambda rng: r"\boxed{1} and " * rng.randrange(100, 50_000),
    lambda rng: (r"\boxed{1}" + r"\boxed{") * rng.randrange(100, 20_000),
    lambda rng: r"\boxed{" * 5000 + "}" * 5000,
    lambda rng: r"\fbox{\boxed{" * 1000 + "1" + "}}" * 1000,
    lambda rng: r"\boxed 1 " * rng.randrange(100, 50_000),
    lambda rng: " ".join(rf"\boxed{{{i}}}" for i in range(rng.randrange(10, 5000))),
]


def _many_boxes(rng: random.Random, marker: Path) -> _Answer:
    return _garbage(rng.choice(_BOXES)(rng), rng)


# --- unicode -------------------------------------------------------------------------------
# Non-ASCII digits pass str.isdigit() (and some int()) but not the parser; bidi controls
# and zero-width characters hide text; lone surrogates cannot be encoded as UTF-8 (hashing,
# logging, pipes); combining marks make one "character" thousands of code points long.

_INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u202a", "\u202b",
              "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u00ad", "\u034f"]
_STRANGE_DIGITS = ["\uff14\uff12", "\U0001d7d2\U0001d7d0", "\u0664\u0662", "\u096a\u0968", "\u2074\u00b2",
                   "\u2083", "\u2463\u2461", "\u216b", "\u00bd", "\u0f24\u0f22"]
_EMOJI = ["\U0001f600", "\U0001f4a9", "\U0001f9ee", "\u2764\ufe0f", "\U0001f1fa\U0001f1f8",
          "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f44d\U0001f3fd"]
_SURROGATES = ["\ud800", "\udfff", "\udc00\ud800", "\ud83d"]


def _random_code_points(rng: random.Random, n: int) -> str:
    return "".join(chr(rng.randrange(0x80, 0x110000)) for _ in range(n))


_UNICODE = [
    lambda rng: rng.choice(_STRANGE_DIGITS),
    lambda rng: "4" + "".join(rng.choices(_INVISIBLE, k=rng.randrange(1, 50))) + "2",
    lambda rng: "\u202e" + "24" + "\u202c",
    lambda rng: "4" + "".join(chr(rng.randrange(0x300, 0x370)) for _ in range(rng.randrange(1, 5000))),
    lambda rng: "".join(rng.choices(_EMOJI, k=rng.randrange(1, 500))),
    lambda rng: rng.choice(_SURROGATES) * rng.randrange(1, 100),
    lambda rng: r"\frac{" + rng.choice(_SURROGATES) + "}{2}",
    lambda rng: _random_code_points(rng, rng.randrange(1, 2000)),
    lambda rng: "\x00" * rng.randrange(1, 100) + "42",
    lambda rng: "".join(chr(rng.randrange(0, 32)) for _ in range(rng.randrange(1, 200))),
    lambda rng: "\u2212\u221e, \u221a\u03c0 \u2264 x \u2264 \u00bd",
    lambda rng: "\U0001d465\u00b2 + \U0001d466\u00b2",  # mathematical italic x, y
    lambda rng: "\ufdfd" * rng.randrange(1, 1000),  # one code point, a very wide glyph
    lambda rng: "x\u0338 = 1",  # combining "not"
]


def _unicode(rng: random.Random, marker: Path) -> _Answer:
    text = rng.choice(_UNICODE)(rng)
    # Strange digits may well be read as 42: not judged. Everything else is junk.
    return _Answer(text, "42", expect=None) if any(c.isdigit() for c in text) else _garbage(text, rng)


# --- very long strings ---------------------------------------------------------------------
# Megabytes through the pipe to the workers, hashed for the cache, then scanned by every
# regex and hand-written loop of the extractor: anything quadratic, or any regex that
# backtracks, turns into minutes; anything that builds per-character objects into GBs.

def _long_size(rng: random.Random) -> int:
    """64 KB to 4 MB, log-uniform: most are the size of a response cut off at a generous
    max_tokens, some are far beyond it (and each MB costs the extractor ~0.2 s of scanning)."""
    return int(2 ** rng.uniform(16, 22))


def _repeat(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit))


_LONG = [
    lambda rng, n: _repeat("Let me think about this step by step. ", n),
    lambda rng, n: "".join(rng.choices("0123456789", k=n)),
    lambda rng, n: _repeat("1,", n),
    lambda rng, n: _repeat("$", n),
    lambda rng, n: _repeat("$1$ ", n),
    lambda rng, n: _repeat("the answer is ", n),
    lambda rng, n: _repeat("Answer: ", n),
    lambda rng, n: _repeat("####", n),
    lambda rng, n: _repeat(r"\(", n),
    lambda rng, n: _repeat("{", n),
    lambda rng, n: r"\boxed{" * 10 + _repeat("x", n),
    lambda rng, n: _repeat(" ", n) + "1",
    lambda rng, n: _repeat("\n", n),
    lambda rng, n: _repeat("a", n) + "!",
    lambda rng, n: _repeat("x=", n),
    lambda rng, n: _repeat(" is ", n),
    lambda rng, n: _repeat(r"\frac", n),
    lambda rng, n: _repeat("</think>", n),
    lambda rng, n: "<think>" + _repeat("hmm ", n),
    lambda rng, n: _random_code_points(rng, n // 64) * 16,
]


def _long_string(rng: random.Random, marker: Path) -> _Answer:
    size = _long_size(rng)
    if rng.random() < 0.25:  # a long but well-formed response: must still be graded right
        return _Answer(_repeat("Let me think. ", size) + r" The answer is \boxed{42}.", "42", expect=True)
    if rng.random() < 0.1:  # a megabyte-long answer inside a box
        return _garbage(r"\boxed{" + "1" * size + "}", rng)
    return _garbage(rng.choice(_LONG)(rng, size), rng)


# --- regex and parser bombs ----------------------------------------------------------------
# Short inputs shaped against the extractor's and normalizer's regexes (nested quantifiers
# backtrack exponentially) and against sympy's slow paths (simplify, solve, expand).

_BOMBS = [
    lambda rng: "1" * rng.randrange(1000, 30_000) + "a",
    lambda rng: "1," * rng.randrange(1000, 30_000) + "1,12",
    lambda rng: ",000" * rng.randrange(1000, 30_000) + "x",
    lambda rng: r"\boxed{1}" + " x = " * rng.randrange(100, 30_000) + r"\boxed{2}",
    lambda rng: r"\boxed{1}" + r"\text{ and }" * rng.randrange(100, 10_000) + r"\boxed{2}",
    lambda rng: "5 " + r"\text{ cm}" * rng.randrange(100, 10_000),
    lambda rng: "5" + " square" * rng.randrange(100, 10_000) + " units",
    lambda rng: "1 and " * rng.randrange(100, 20_000) + "2",
    lambda rng: "1.1" * rng.randrange(100, 10_000) + r"\overline{3}",
    lambda rng: "1e" * rng.randrange(100, 10_000) + "5",
    lambda rng: "(x+1)^{" + str(rng.randrange(1000, 10**6)) + "} - (x+1)^{" + str(rng.randrange(1000, 10**6)) + "}",
    lambda rng: "(x+y+z)^{30} - (x+y+z)^{29}",
    lambda rng: "x^{" + str(rng.randrange(5, 50)) + "} - 1 > 0",
    lambda rng: r"\sin(x)^{200} + \cos(x)^{200} \le 1",
    lambda rng: r"\sum_{i=1}^{10^{10}} i",
    lambda rng: r"\prod_{k=1}^{10^{9}} k",
    lambda rng: r"\int_0^{10^{10}} e^{x^2} dx",
    lambda rng: r"\lim_{x\to\infty} x^{x^{x}}",
    lambda rng: r"\begin{pmatrix}" + r"\\".join(["&".join(["x"] * 60)] * 60) + r"\end{pmatrix}",
    lambda rng: r"\det\begin{pmatrix}" + r"\\".join(["&".join(["x"] * 30)] * 30) + r"\end{pmatrix}",
    lambda rng: r"\operatorname{zeros}(100000, 100000)",
    lambda rng: ", ".join(str(i) for i in range(rng.randrange(100, 3000))),
    lambda rng: "=".join(["x"] * rng.randrange(100, 3000)),
    lambda rng: " \\pm ".join(str(i) for i in range(rng.randrange(5, 40))),
    lambda rng: r" \cup ".join(f"({i},{i + 1})" for i in range(rng.randrange(10, 500))),
    lambda rng: " < ".join(["x"] * rng.randrange(10, 500)),
    lambda rng: "+".join(f"x_{{{i}}}" for i in range(rng.randrange(100, 700))),
    lambda rng: "x" * rng.randrange(100, 1500),
    lambda rng: r"\sqrt{2}" * rng.randrange(100, 180),
]


def _bomb(rng: random.Random, marker: Path) -> _Answer:
    return _garbage(rng.choice(_BOMBS)(rng), rng)


# --- injection payloads --------------------------------------------------------------------
# LaTeX-to-sympy converters and `sympify`/`parse_expr` end in Python's `eval`; a verifier
# that evaluates model text runs whatever the model wrote, with the trainer's privileges.
# Each payload would create a file in `marker_dir` if it ever ran.

_PAYLOADS = [
    "__import__('os').system('touch {m}')",
    "__import__('subprocess').call(['touch', '{m}'])",
    "exec(\"open('{m}', 'w').write('x')\")",
    "eval(\"__import__('os').system('touch {m}')\")",
    "(lambda: __import__('os').system('touch {m}'))()",
    "open('{m}', 'w').write('x')",
    "x; __import__('os').system('touch {m}')",
    "1 if __import__('os').system('touch {m}') else 1",
    "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0](['touch', '{m}'])",
    "getattr(__builtins__, 'exec')(\"open('{m}','w')\")",
    "__builtins__.__dict__['__import__']('os').system('touch {m}')",
    "Symbol('x').__class__.__init__.__globals__['__builtins__']['open']('{m}', 'w')",
    "sqrt(__import__('os').system('touch {m}'))",
    "Function('f')(__import__('os').system('touch {m}'))",
    "1e5; __import__('os').system('touch {m}')",
    "lambda: __import__('os').system('touch {m}')",
    r"\frac{__import__('os').system('touch {m}')}{1}",
    r"\text{__import__('os').system('touch {m}')}",
    r"\operatorname{__import__}('os').system('touch {m}')",
    r"\mathrm{exec}(\text{open('{m}', 'w')})",
    r"\operatorname{eval}(\text{__import__('os').system('touch {m}')})",
    r"\sqrt{\text{__import__('os').system('touch {m}')}}",
    r"\begin{pmatrix} __import__('os').system('touch {m}') \end{pmatrix}",
    r"x_{__import__('os').system('touch {m}')}",
    "$\\boxed{__import__('os').system('touch {m}')}$",
    "os.system('touch {m}')",
    "import os; os.system('touch {m}')",
    "`touch {m}`",
    "$(touch {m})",
    "{{''.__class__.__mro__[1].__subclasses__()}}",
]


def _injection(rng: random.Random, marker: Path) -> _Answer:
    payload = rng.choice(_PAYLOADS).replace("{m}", str(marker))
    return _garbage(payload, rng)


# --- format junk ---------------------------------------------------------------------------
# Empty and near-empty answers, stray commands and markup: the edge cases of every parser
# branch (empty fraction, unknown command, bare operator) that raise instead of parsing.

_JUNK = [
    lambda rng: "",
    lambda rng: " " * rng.randrange(1, 100),
    lambda rng: r"\boxed{}",
    lambda rng: r"\frac{}{}",
    lambda rng: r"\sqrt{}",
    lambda rng: "$$",
    lambda rng: r"\[\]",
    lambda rng: "^_^",
    lambda rng: "=",
    lambda rng: "< > \\le",
    lambda rng: r"\foo{bar}\baz",
    lambda rng: r"\begin{nonsense} \end{other}",
    lambda rng: r"\\\\\\",
    lambda rng: "NaN", lambda rng: "inf", lambda rng: "-inf", lambda rng: "None", lambda rng: "True",
    lambda rng: "1/0", lambda rng: "0/0", lambda rng: r"\frac{1}{0}", lambda rng: "12:00",
    lambda rng: "".join(chr(b) for b in rng.randbytes(rng.randrange(1, 500))),
    lambda rng: "".join(rng.choices("{}()[]\\$^_&%#~", k=rng.randrange(1, 500))),
    lambda rng: "<think>" * rng.randrange(1, 50),
    lambda rng: "</think>",
    lambda rng: "\\boxed{" + "&" * 100 + "}",
    lambda rng: r"\text{" + "\\" * 99 + "}",
]


def _junk(rng: random.Random, marker: Path) -> _Answer:
    return _garbage(rng.choice(_JUNK)(rng), rng)


CATEGORIES: dict[str, Callable[[random.Random, Path], _Answer]] = {
    "ordinary": _ordinary,
    "huge_number": _huge_number,
    "deep_nesting": _deep_nesting,
    "unbalanced": _unbalanced,
    "many_boxes": _many_boxes,
    "unicode": _unicode,
    "long_string": _long_string,
    "bomb": _bomb,
    "injection": _injection,
    "junk": _junk,
}


# --- responses -----------------------------------------------------------------------------

WRAPS = ("boxed", "bare", "stated")
_PREAMBLES = ["", "Let me compute. ", "First, simplify both sides.\n\n", "<think>hmm</think>", "We get "]


def _wrap(kind: str, answer: str, rng: random.Random) -> str:
    if kind == "bare":
        return answer
    if kind == "boxed":
        return f"{rng.choice(_PREAMBLES)}So the answer is \\boxed{{{answer}}}."
    return f"{rng.choice(_PREAMBLES)}The final answer is ${answer}$."


def adversarial_responses(count: int, seed: int, marker_dir: Path) -> Iterator[Case]:
    """`count` cases, generated lazily; the same (seed, index) always gives the same case."""
    names = list(CATEGORIES)
    for i in range(count):
        rng = random.Random(f"{seed}:{i}")
        category = names[i % len(names)]
        answer = CATEGORIES[category](rng, marker_dir / f"PWNED_{i}")
        wrap = WRAPS[(i // len(names)) % len(WRAPS)]
        # A bare answer is read by the extractor's last-number fallback ("\frac{1}{2}" gives
        # "2", and "x=3" gives "3", which equals the gold "y=3"): ordinary answers are judged
        # only when boxed or stated. Garbage must score 0 however it is wrapped.
        judged = wrap != "bare" or answer.gold in _GARBAGE_GOLDS
        expect = answer.expect if judged else None
        yield Case(i, category, wrap, _wrap(wrap, answer.text, rng), answer.gold, expect)
