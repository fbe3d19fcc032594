"""LaTeX -> sympy, without ever evaluating the text as Python.

We reuse the ANTLR grammar of ``latex2sympy2_extended`` (1.11) and most of its conversion
code.  What an audit of its source found, and what this module does about it:

* Text reaching ``eval``: ``_Latex2Sympy.parse_number`` and the module-level
  ``convert_number`` build numbers with ``sympy.Number(text)``; a ``str`` argument goes
  through ``sympify`` -> ``parse_expr`` -> ``eval``.  The text is a lexer NUMBER token, so it
  is not an injection by itself, but it is an ``eval`` of model text, and it makes ``0.5`` an
  inexact Float.  ``_SafeConverter`` overrides ``parse_number`` and intercepts, in ``parse``,
  the "1,234" inputs the base class sends to ``convert_number``; numbers are built as exact
  ``Integer``/``Rational`` by hand.  ``_Latex2Sympy.__init__`` calls ``parse_expr`` on
  ``variable_values`` given as strings; we never pass any.  Elsewhere ``sympify`` only sees
  sympy objects (``FiniteSet``, ``And``), which parses nothing.  No ``eval``/``exec`` call.
* Wrong values: the base ``convert_postfix_list`` reads any "integer, then positive
  rational" juxtaposition as a mixed number, so ``2(3)`` was 5; ours multiplies (mixed
  numbers are recognised by shape in ``rewards/answer_forms.py``).  ``lowercase_symbols``
  (default on) made ``P`` and ``p`` equal; we turn it off.
* Work controlled by the text: ``\\operatorname{zeros|ones|diag}(n, m)`` allocates n*m
  matrices and ``\\det`` computes determinants (rewritten to plain names / refused);
  ``\\binom`` of integer literals is evaluated while parsing (refused with 5+ digit
  numbers); the ANTLR prediction cost grows steeply with bracket nesting (refused beyond
  ``MAX_NESTING_DEPTH``); deep inputs raise RecursionError (caught).  Powers are built with
  ``evaluate=False``, so ``10^{10^{10}}`` stays unevaluated until ``rewards/expr_equal.py``
  decides it is small enough.
* ``normalize_latex`` (applied by ``latex2sympy`` unless told otherwise) deletes trailing
  one-letter "units" such as ``c``, ``m`` or ``s`` (``2 + c`` -> ``2 +``); we call the
  converter directly and normalize ourselves (``rewards/normalize.py``).
"""

from __future__ import annotations

import re

import sympy
from latex2sympy2_extended.latex2sympy2 import ConversionConfig, _Latex2Sympy

# Above this many characters we do not parse at all: answers are short, and ANTLR's Python
# runtime is slow and recursive on long inputs.
MAX_PARSE_CHARS = 1500
# The grammar's prediction cost grows steeply with bracket nesting (8 nested parentheses take
# ~0.6 s, 20 nested braces over a minute); MATH-500 answers nest at most 2 deep.
MAX_NESTING_DEPTH = 8
# Unbraced script chains (x^x^x^...^2, x_x_...) cost the grammar as much as nesting: 16 links
# take 2 s, 20 links 20 s. Answers chain two or three at most (a_1^2).
_SCRIPT_CHAIN = re.compile(r"(?:[\^_]\s*[^\s{}^_]\s*){%d,}" % (MAX_NESTING_DEPTH + 1))

_CONVERSION = ConversionConfig(
    interpret_as_mixed_fractions=False,  # see `_SafeConverter.convert_postfix_list`
    interpret_simple_eq_as_assignment=False,
    interpret_contains_as_eq=True,
    # `P` and `p` are different answers; the library's default lowercases every symbol.
    lowercase_symbols=False,
)

_DIGITS = re.compile(r"\d+")
_DECIMAL = re.compile(r"(\d*)\.(\d+)|(\d+)\.")
_E_NOTATION = re.compile(r"([+-]?[\d.]+)[eE]([+-]?\d+)")
_OPERATORNAME = re.compile(r"\\operatorname\s*\{\s*([A-Za-z]+)\s*\}")
_KNOWN_OPERATORS = frozenset(
    "sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln exp gcd lcm max min".split()
)
# Commands whose conversion computes something expensive from text-controlled sizes.
_REFUSED = ("\\det", "vmatrix", "\\operatorname")
# `\binom{1000000}{500000}` is evaluated while parsing (a minute of CPU).
_HUGE_BINOMIAL = re.compile(r"binom.*\d{5}", re.S)


def _exact_number(text: str) -> sympy.Rational:
    """A NUMBER/E_NOTATION token as an exact rational, parsed by hand (no sympify)."""
    text = text.replace(",", "").replace(" ", "")
    match = _E_NOTATION.fullmatch(text)
    if match:
        mantissa, exponent = match.groups()
        power = int(exponent)
        if abs(power) > 400:
            raise ValueError("exponent too large")
        return _exact_number(mantissa) * sympy.Integer(10) ** power
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if _DIGITS.fullmatch(text):
        return sympy.Integer(sign * int(text))
    match = _DECIMAL.fullmatch(text)
    if not match:
        raise ValueError(f"not a number: {text[:40]!r}")
    whole, frac, only_whole = match.groups()
    if only_whole is not None:
        return sympy.Integer(sign * int(only_whole))
    numerator = int((whole or "0") + frac)
    return sympy.Rational(sign * numerator, 10 ** len(frac))


class _SafeConverter(_Latex2Sympy):
    """The library's converter with its number paths replaced (see the module docstring)."""

    def parse_number(self, text: str) -> sympy.Rational:
        return _exact_number(text)

    def convert_postfix_list(self, arr, i=0):
        # The base class reads any "integer, then positive rational" juxtaposition as a mixed
        # number, so `2(3)` became 5.  Juxtaposition is a product here; `rewards/answer_forms.py`
        # recognises the mixed-number shape `1\frac{4}{5}` on its own.
        factors = [self.convert_postfix(node) for node in arr[i:]]
        if not factors:
            raise ValueError("empty product")
        result = factors[-1]
        for left in reversed(factors[:-1]):
            if isinstance(left, list):  # a bare d/dx operator applies to what follows it
                result = sympy.Derivative(result, left[0])
            elif getattr(left, "is_Matrix", False) or getattr(result, "is_Matrix", False):
                result = self.mat_mul_flat(left, result)
            else:
                result = self.mul_flat(left, result)
        return result

    def parse(self, latex_str: str):
        # The base class routes "1,234"-shaped inputs to `convert_number`, which uses
        # `sympy.Number(str)`; answer those here before it can.
        stripped = latex_str.strip()
        if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", stripped):
            return _exact_number(stripped)
        return super().parse(latex_str)


def _rewrite_operatorname(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        return "\\" + name + " " if name in _KNOWN_OPERATORS else name

    return _OPERATORNAME.sub(repl, text)


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _refused(text: str) -> bool:
    return (not text.strip() or len(text) > MAX_PARSE_CHARS
            or any(r in text for r in _REFUSED) or bool(_HUGE_BINOMIAL.search(text))
            or _nesting_depth(text) > MAX_NESTING_DEPTH or bool(_SCRIPT_CHAIN.search(text)))


def latex_to_sympy(text: str) -> sympy.Basic | None:
    """Parse one LaTeX math expression; None when it does not parse or is refused."""
    text = _rewrite_operatorname(text)
    if _refused(text):
        return None
    try:
        return _SafeConverter(is_real=None, config=_CONVERSION).parse(text)
    except RecursionError:
        return None
    except Exception:  # the ANTLR listener raises bare Exception on syntax errors
        return None
