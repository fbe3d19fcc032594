"""Equality of two sympy expressions: structural, then exact, then symbolic and numeric.

Rules (documented choices):

* Numbers are exact rationals (``0.5`` is 1/2), so ``0.333`` and ``1/3`` differ.  The only
  tolerance is ``DECIMAL_REL_TOL`` (relative 1e-9), and only when the gold answer is itself
  written as a decimal: ``3.14159265358979`` accepts ``\\pi``; ``3.14`` does not.
* Two irrational constants (``\\sqrt{8}`` vs ``2\\sqrt{2}``) are equal when their 60-digit
  values agree to a relative 1e-45.  Two rationals are compared exactly.
* Expressions with unknowns: ``expand(a - b) == 0``; else the values at random points agree
  (``_probe``, a fixed-seed RNG so a verdict is reproducible); else ``simplify(a - b) == 0``
  on small trees.  Unknowns are probed on positive reals, so ``\\sqrt{x^2}`` is accepted for
  ``x`` (contest answers assume the natural domain).
* A symbol ``i`` is the imaginary unit when the gold answer is complex: it contains ``i``
  (``3+4i``) or evaluates to a non-real number (``\\sqrt{-4}``).
* Nothing is evaluated whose size bound (``_log10_bound``) exceeds ``MAX_LOG10`` digits,
  e.g. ``10^{10^{10^{10}}}``, nor any integral, sum, product, limit or derivative: those
  compare structurally only (after sympy's canonical reordering of terms and factors).
* An undefined value (``zoo``, ``nan``: ``1/0``, or ``12:00`` read as a ratio) equals nothing.
"""

from __future__ import annotations

import math
import random

import sympy
from sympy.core.function import AppliedUndef

DECIMAL_REL_TOL = 1e-9
MAX_LOG10 = 20_000  # refuse to evaluate numbers that may have more digits than this
_EXACT_REL_TOL = sympy.Float("1e-45", 60)
_PROBE_REL_TOL = sympy.Float("1e-12", 40)
_PROBE_TRIALS = 8
_PROBE_NEEDED = 3
_SIMPLIFY_MAX_OPS = 60
_EXPAND_MAX_POWER = 30
_PROBE_SEED = 20240611
_DIGITS = 60
_NOT_EVALUATED = (sympy.Integral, sympy.Sum, sympy.Product, sympy.Limit, sympy.Derivative)
_GROWING = (sympy.factorial, sympy.factorial2, sympy.gamma, sympy.binomial, sympy.subfactorial)


def exprs_equal(pred: sympy.Basic, gold: sympy.Basic, decimal_gold: bool = False) -> bool:
    """Whether two parsed expressions denote the same value (see the module docstring)."""
    pred, gold = _strip_unevaluated(pred), _strip_unevaluated(gold)
    if pred.has(sympy.zoo, sympy.nan) or gold.has(sympy.zoo, sympy.nan):
        return False  # `12:00` read as 12/0: undefined values are never an answer
    if pred == gold:
        return True
    if not (is_evaluable(pred) and is_evaluable(gold)):
        return _bounded(pred) and _bounded(gold) and _rebuilt(pred) == _rebuilt(gold)
    if isinstance(pred, sympy.MatrixBase) or isinstance(gold, sympy.MatrixBase):
        return _matrices_equal(pred, gold, decimal_gold)
    complex_gold = _mentions_i(gold)  # before doit, which may cancel `0i`
    pred, gold = pred.doit(), gold.doit()
    if complex_gold or gold.has(sympy.I):
        pred, gold = _i_as_imaginary(pred), _i_as_imaginary(gold)
    if pred == gold:
        return True
    if not (isinstance(pred, sympy.Expr) and isinstance(gold, sympy.Expr)):
        return False
    if pred.free_symbols or gold.free_symbols:
        return _symbolic_equal(pred, gold, decimal_gold)
    return _numbers_equal(pred, gold, decimal_gold)


def proportional(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Whether ``a == c * b`` for a nonzero constant c (two equations ``a = 0``, ``b = 0``)."""
    a, b = _strip_unevaluated(a), _strip_unevaluated(b)
    if not (is_evaluable(a) and is_evaluable(b)):
        return False
    a, b = a.doit(), b.doit()
    if a == b or a == -b:
        return True
    ratios = []
    for point in _probe_points(a.free_symbols | b.free_symbols):
        va, vb = _value_at(a, point), _value_at(b, point)
        if va is None or vb is None or abs(vb) < 1e-20 or abs(va) < 1e-20:
            continue  # a pole or a root of one side: no ratio here
        ratios.append(va / vb)
    if len(ratios) < _PROBE_NEEDED:
        return False
    first = ratios[0]
    return all(bool(abs(r - first) <= _PROBE_REL_TOL * abs(first)) for r in ratios)


def is_evaluable(expr: sympy.Basic) -> bool:
    """Whether evaluating ``expr`` is cheap enough: bounded size, no unevaluated calculus."""
    return not expr.has(*_NOT_EVALUATED) and _bounded(expr)


def _bounded(expr: sympy.Basic) -> bool:
    try:
        return _log10_bound(expr) <= MAX_LOG10
    except RecursionError:
        return False


def _rebuilt(expr: sympy.Basic) -> sympy.Basic:
    """``expr`` with every node rebuilt by sympy's constructors (canonical argument order) but
    sums, integrals and limits left unevaluated: ``F_{n-k-1} F_k`` inside a sum equals
    ``F_k F_{n-k-1}``.  Only called on bounded expressions."""
    if expr.is_Atom or not expr.args:
        return expr
    return expr.func(*[_rebuilt(arg) for arg in expr.args])


def _log10_bound(expr: sympy.Basic) -> float:
    """An upper bound on |log10 |value||: the digits of the value or of its reciprocal
    (unknowns count as values near 1).  Sums may cancel to smaller values; that is harmless,
    only huge numbers are expensive."""
    if isinstance(expr, sympy.MatrixBase):
        return max((_log10_bound(entry) for entry in expr), default=0.0)
    if expr.is_Rational:
        return max(_log10_abs(expr.p), _log10_abs(expr.q))
    if expr.is_Float:
        return abs(expr._mpf_[2] + expr._mpf_[3]) * math.log10(2) + 1
    if expr.is_Atom:
        return 1.0
    if expr.is_Pow or isinstance(expr, sympy.exp):
        base, exponent = expr.as_base_exp()
        exponent_digits = _log10_bound(exponent)
        if exponent_digits > 6:
            return math.inf
        return 10 ** exponent_digits * _log10_bound(base)
    child_bounds = [_log10_bound(arg) for arg in expr.args if isinstance(arg, sympy.Basic)]
    if isinstance(expr, _GROWING):
        n_digits = max(child_bounds, default=1.0)
        return math.inf if n_digits > 5 else 10 ** n_digits * (n_digits + 1)
    if expr.is_Mul:
        return sum(child_bounds)
    if expr.is_Add:
        return max(child_bounds, default=1.0) + math.log10(len(child_bounds) + 1)
    return max(child_bounds, default=1.0)


def _log10_abs(n: int) -> float:
    n = abs(n)
    if n == 0:
        return 0.0
    return math.log10(n) if n.bit_length() < 1000 else n.bit_length() * math.log10(2)


def _strip_unevaluated(expr: sympy.Basic) -> sympy.Basic:
    wrappers = expr.atoms(sympy.UnevaluatedExpr)
    return expr.xreplace({w: w.args[0] for w in wrappers}) if wrappers else expr


def _mentions_i(expr: sympy.Basic) -> bool:
    return any(s.name == "i" for s in expr.free_symbols if isinstance(s, sympy.Symbol))


def _i_as_imaginary(expr: sympy.Basic) -> sympy.Basic:
    return expr.xreplace({s: sympy.I for s in expr.free_symbols
                          if isinstance(s, sympy.Symbol) and s.name == "i"})


def _matrices_equal(a: sympy.Basic, b: sympy.Basic, decimal_gold: bool) -> bool:
    if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)):
        return False
    if a.shape != b.shape:
        return False
    return all(exprs_equal(x, y, decimal_gold) for x, y in zip(a, b))


def _numbers_equal(a: sympy.Expr, b: sympy.Expr, decimal_gold: bool) -> bool:
    if a.is_Rational and b.is_Rational and not decimal_gold:
        return False  # exact values that are not identical
    va, vb = _value_at(a, {}), _value_at(b, {})
    if va is None or vb is None:
        return _simplifies_to_zero(a - b)
    tol = sympy.Float(DECIMAL_REL_TOL, _DIGITS) if decimal_gold else _EXACT_REL_TOL
    return bool(abs(va - vb) <= tol * max(abs(va), abs(vb)))


def _symbolic_equal(a: sympy.Expr, b: sympy.Expr, decimal_gold: bool) -> bool:
    diff = a - b
    if _small_powers(diff) and sympy.expand(diff) == 0:
        return True
    verdict = _probe(a, b, DECIMAL_REL_TOL if decimal_gold else None)
    if verdict is not None:
        return verdict
    return _simplifies_to_zero(diff)


def _simplifies_to_zero(diff: sympy.Expr) -> bool:
    if sympy.count_ops(diff) > _SIMPLIFY_MAX_OPS:
        return False
    return bool(sympy.simplify(diff) == 0)


def _small_powers(expr: sympy.Expr) -> bool:
    """No integer power above ``_EXPAND_MAX_POWER`` (expand would blow up)."""
    return all(not (p.exp.is_Integer and abs(p.exp) > _EXPAND_MAX_POWER)
               for p in expr.atoms(sympy.Pow))


def _probe(a: sympy.Expr, b: sympy.Expr, rel_tol: float | None) -> bool | None:
    """Compare values at random positive points: True/False, or None when inconclusive."""
    if a.has(AppliedUndef) or b.has(AppliedUndef):
        return None  # f(x): nothing to evaluate
    tol = sympy.Float(rel_tol, 40) if rel_tol else _PROBE_REL_TOL
    agreed = 0
    for point in _probe_points(a.free_symbols | b.free_symbols):
        va, vb = _value_at(a, point), _value_at(b, point)
        if va is None and vb is None:
            continue  # both undefined here (a pole)
        if va is None or vb is None:
            return None
        if abs(va - vb) > tol * max(abs(va), abs(vb), sympy.Float("1e-20")):
            return False
        agreed += 1
    return True if agreed >= _PROBE_NEEDED else None


def _probe_points(symbols: set[sympy.Symbol]) -> list[dict[sympy.Symbol, sympy.Rational]]:
    rng = random.Random(_PROBE_SEED)
    ordered = sorted(symbols, key=lambda s: s.name)
    return [{s: sympy.Rational(rng.randint(101, 397), rng.randint(89, 151)) for s in ordered}
            for _ in range(_PROBE_TRIALS)]


def _value_at(expr: sympy.Expr, point: dict) -> sympy.Expr | None:
    """Numeric value (possibly complex) at ``point``, or None if not a finite number."""
    value = expr.xreplace(point).evalf(_DIGITS) if point else expr.evalf(_DIGITS)
    if not value.is_number or value.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        return None
    if value.free_symbols or value.atoms(sympy.Function):
        return None
    return value
