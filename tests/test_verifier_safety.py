"""Model output is never executed, and hostile or pathological answers only ever give False.

Two proofs that nothing is evaluated: injection payloads leave no marker file, and with
``eval``/``exec``/``sympify(str)``/``parse_expr`` replaced by tripwires the checker still
gives the right verdicts without touching them.
"""

import builtins
import sys
import time

import latex2sympy2_extended
import latex2sympy2_extended.latex2sympy2 as l2s_module
import pytest
import sympy
import sympy.parsing.sympy_parser

from rewards.extract import extract_answer
from rewards.math_equivalence import answers_equivalent, math_verifier

PAYLOADS = [
    "__import__('os').system('touch {marker}')",
    "().__class__.__bases__[0].__subclasses__()",
    "exec(\"open('{marker}', 'w').write('x')\")",
    "eval(\"__import__('os').system('touch {marker}')\")",
    "lambda: 0",
    "(lambda: __import__('os').system('touch {marker}'))()",
    "open('{marker}', 'w').write('x')",
    "__import__('subprocess').call(['touch', '{marker}'])",
    "x; __import__('os').system('touch {marker}')",
    "Symbol('x').__class__.__init__.__globals__",
    "globals()['__builtins__']",
    "sqrt(__import__('os').system('touch {marker}'))",
    "1e5; __import__('os').system('touch {marker}')",
    r"\frac{__import__('os').system('touch {marker}')}{1}",
    r"\text{__import__('os').system('touch {marker}')}",
    r"\operatorname{__import__}('os')",
    r"\mathrm{eval}(1)",
    r"\operatorname{exec}(x)",
    "0.5; exec('1')",
]


def _payloads(marker) -> list[str]:
    return [p.replace("{marker}", str(marker)) for p in PAYLOADS]


def _run_everything(payload: str) -> None:
    """Every public entry point on the payload, bare, boxed and as the gold."""
    for text in (payload, rf"\boxed{{{payload}}}", f"The answer is {payload}"):
        answer = extract_answer(text)
        assert answer is None or isinstance(answer, str)
    for pred, gold in ((payload, payload), (payload, "1"), ("1", payload), (payload, "x")):
        assert isinstance(answers_equivalent(pred, gold), bool)
    assert isinstance(math_verifier(rf"\boxed{{{payload}}}", payload), bool)
    assert math_verifier(rf"\boxed{{{payload}}}", "1") is False
    assert math_verifier("The answer is 1", rf"\boxed{{{payload}}}") is False


def test_injection_payloads_do_nothing(tmp_path):
    marker = tmp_path / "PWNED_x"
    for payload in _payloads(marker):
        _run_everything(payload)
    assert not marker.exists()


class ForbiddenCall(BaseException):
    """Raised by a tripwire; a BaseException so that no `except Exception` can hide it."""


# Verdicts the checker must still reach while the tripwires are armed.
CHECKS = [
    (r"\frac12", "0.5", True), ("0.333", r"\frac13", False), ("x^2+2x+1", "(x+1)^2", True),
    (r"\sqrt{8}", r"2\sqrt2", True), ("(1,2)", "(2,1)", False), (r"\{1,2\}", r"\{2,1\}", True),
    ("[2,5)", "(2,5)", False), (r"x \le 3", r"(-\infty, 3]", True), ("y = 2x+1", "2x - y + 1 = 0", True),
    ("x=3", "y=3", False), (r"2 \pm \sqrt{3}", r"2+\sqrt3, 2-\sqrt3", True), ("3+4i", "4i+3", True),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", "(1,2)", True), ("52_8", "52_{10}", False), (r"50\%", "0.5", True),
    (r"1\frac{4}{5}", r"\frac95", True), (r"\text{(B)}", "B", True), ("2,125", "2125", True),
    ("1.5e3", "1500", True), (r"\sin^2 x+\cos^2 x", "1", True), (r"\gcd(4, 6)", "2", True),
    ("-x > -1", "x < 1", True), (r"0.\overline{3}", r"\frac13", True), (r"\operatorname{lcm}(4,6)", "12", True),
]


@pytest.fixture
def tripwires(monkeypatch):
    """Replace every text-evaluating entry point by one that records the call and raises."""
    calls: list[str] = []
    sympify_module = sys.modules["sympy.core.sympify"]  # `sympy.core.sympify` is the function
    real_sympify = sympify_module.sympify

    def tripwire(name):
        def fire(*args, **kwargs):
            calls.append(name)
            raise ForbiddenCall(name)
        return fire

    def sympify_guard(a, *args, **kwargs):
        if isinstance(a, str):  # sympify of a sympy object is harmless; of text it is eval
            calls.append("sympify(str)")
            raise ForbiddenCall("sympify(str)")
        return real_sympify(a, *args, **kwargs)

    # Import everything the checker imports lazily before arming (module imports may exec).
    for pred, gold, _ in CHECKS:
        answers_equivalent(pred, gold)
    monkeypatch.setattr(builtins, "eval", tripwire("eval"))
    monkeypatch.setattr(builtins, "exec", tripwire("exec"))
    monkeypatch.setattr(sympy, "sympify", sympify_guard)
    monkeypatch.setattr(sympify_module, "sympify", sympify_guard)
    monkeypatch.setattr(sympy.parsing.sympy_parser, "parse_expr", tripwire("parse_expr"))
    monkeypatch.setattr(sympy.parsing.sympy_parser, "eval_expr", tripwire("eval_expr"))
    monkeypatch.setattr(l2s_module, "parse_expr", tripwire("latex2sympy2.parse_expr"))
    return calls


def test_checker_works_without_eval(tripwires):
    for pred, gold, expected in CHECKS:
        assert answers_equivalent(pred, gold) is expected, (pred, gold)
    assert math_verifier(r"so \boxed{\dfrac{1}{2}}.", r"hence $\boxed{0.5}$") is True
    assert tripwires == []


def test_payloads_never_reach_eval(tripwires, tmp_path):
    marker = tmp_path / "PWNED_x"
    for payload in _payloads(marker):
        _run_everything(payload)
    assert tripwires == [] and not marker.exists()


def test_tripwires_catch_the_library_default(tripwires):
    """The audit finding this module guards against: the library's own number path reaches
    sympify/parse_expr (`sympy.Number("0.5")`); `rewards.latex_sympy` overrides it."""
    with pytest.raises(ForbiddenCall):
        latex2sympy2_extended.latex2sympy("0.5")
    assert tripwires


PATHOLOGICAL = {
    "power tower": r"10^{10^{10^{10}}}",
    "tower of twos": "2^{2^{2^{2^{2}}}}",
    "huge factorial": "(10^{10})!",
    "huge binomial": r"\binom{1000000}{500000}",
    "50k digits": "1" * 50_000,
    "50k expression": "x+" * 25_000 + "1",
    "5000 parentheses": "(" * 5000 + "1" + ")" * 5000,
    "700 braces": "{" * 700 + "1" + "}" * 700,
    "30 braces": "{" * 30 + "1" + "}" * 30,
    "empty fraction": r"\frac{}{}",
    "unbalanced": r"\frac{1}{2",
    "unbalanced tuple": "((1,2)",
    "lone brace": "}",
    "empty sqrt": r"\sqrt{}",
    "huge exponent": r"e^{10^{10}}",
    "huge sum": r"\sum_{i=1}^{10^{10}} i",
    "zeros matrix": r"\operatorname{zeros}(100000, 100000)",
    "e-notation": "1.5e999999",
    "tan of huge": r"\tan(10^{1000})",
    "long list": ",".join(str(i) for i in range(400)),
    "many equals": "=".join(["x"] * 600),
    "nested sqrt": r"\sqrt{" * 200 + "2" + "}" * 200,
    "plus-minus chain": r"1 \pm 2 \pm 3 \pm 4",
    "null bytes": "\x00\x00\\boxed{\x00}",
    "script chain": "x^" * 40 + "2",
    "subscript chain": "x_" * 40 + "2",
    "megabyte of dollars": "$" * 1_000_000 + "1" + "$" * 1_000_000,
}


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_answers_return_false_quickly(text):
    start = time.perf_counter()
    assert answers_equivalent(text, "5") is False
    assert answers_equivalent("5", text) is False
    assert math_verifier(rf"\boxed{{{text}}}", "5") is False
    assert time.perf_counter() - start < 3.0
