"""The rule-based "math" verifier: is a predicted final answer equivalent to the gold one?

``answers_equivalent(pred, gold)`` compares two extracted answers; ``math_verifier(response,
gold)`` extracts first.  Comparison is structural before symbolic: answers are normalized
(``rewards/normalize.py``), read into typed forms (``rewards/answer_forms.py``), and only leaf
values reach sympy (``rewards/expr_equal.py``).  No text is ever evaluated as Python.

Comparison rules (documented choices; math-verify was the reference point):

* Equations: ``x = 3`` equals ``3`` either way round, and so does a named quantity
  (``AB = 4``, ``|AB| = 1``, ``(p, q) = (3, 2)``); two such assignments must name the same
  thing (``x=3`` vs ``y=3`` differ).  Other equations are equal when ``lhs - rhs`` of one
  is a nonzero constant multiple of the other's (``y = 2x+1`` vs ``2x - y + 1 = 0``); a bare
  value never equals them (``0`` is not ``a + 3z = 0``).
* Lists: order matters for tuples ``(1,2)`` and ``[1,2]`` (and the bracket kinds must
  match).  A set ``\\{1,2\\}`` (or ``{1, 2}`` with grouping braces), a bare list ``1, 2`` and
  ``a \\pm b`` are unordered and compare as sets: every element needs a partner on the
  other side, a repeated element is harmless; ``\\pm`` inside a set gives two elements.
  A tuple against a bare list compares in order; a set never equals a tuple.  A
  one-element set or list equals its element.
* Intervals: a pair with mixed brackets or an infinite end, a union, or an inequality in one
  unknown is a set of reals; ``x \\le 3`` equals ``(-\\infty, 3]``, ``2 < x < 5`` equals
  ``(2, 5)`` and ``-x > -1`` equals ``x < 1`` (inequalities are solved by sympy when small
  and free of periodic functions), while ``[2,5)`` and ``(2,5)`` differ.  The unknown may
  be a function value (``0 < f(x) < 1``).  A bare list of inequalities is their union
  (``x < 1 \\text{ or } x > 5``): "and" and "or" both become commas in normalization, and
  MATH writes an intersection as one chain (``1 < x < 5``), not as a list.
* Percent: ``50\\%`` equals ``50`` (the number with its sign dropped) and ``0.5`` (its
  value); without a percent sign on either side, ``50`` and ``0.5`` differ.
* Bases: when both sides name a base, value and base must agree (``52_8`` = ``52_{8}``,
  ``52_8`` != ``52_{10}``). When one side omits it, the digits as written must agree:
  ``52`` is accepted for ``52_8`` (MATH golds carry the subscript the question asked for, which
  answers often leave out), but the decimal value 42 is not, nor ``5`` for ``101_2``.
* Matrices compare elementwise with equal shapes; a scalar in front multiplies every entry
  (``-\\begin{pmatrix}...``, ``\\frac{1}{3}\\begin{pmatrix}...``); a one-row or one-column
  matrix also equals the tuple of its entries.
* Words compare case-insensitively, without a leading article (``\\text{an ellipse}`` =
  ``ellipse``); a clock time ``12:00`` is a word, not a ratio; multiple-choice letters
  compare as letters (``(B)`` = ``B`` = ``\\text{(B)}``).
"""

from __future__ import annotations

import re

import sympy
from sympy.core.function import AppliedUndef
from sympy.solvers.inequalities import solve_univariate_inequality

from rewards.answer_forms import (
    Answer,
    BaseNumber,
    Choice,
    Matrix,
    Relation,
    Scalar,
    Sequence,
    Text,
    Union,
    is_name,
    parse_answer,
)
from rewards.expr_equal import exprs_equal, is_evaluable, proportional
from rewards.extract import extract_answer, marks_an_answer
from rewards.normalize import MAX_ANSWER_CHARS, normalize_answer

# Lists longer than this are compared as sets of strings (matching is quadratic).
_MAX_MATCHED_ITEMS = 30
_RELATIONS = {"<": sympy.StrictLessThan, ">": sympy.StrictGreaterThan, "\\le": sympy.LessThan,
              "\\ge": sympy.GreaterThan, "\\ne": sympy.Unequality}
_INEQUALITIES = set(_RELATIONS)
# Inequalities beyond these sizes are not solved (sympy's solver is slow on big ones).
_SOLVE_MAX_OPS = 30
_SOLVE_MAX_DEGREE = 4


def math_verifier(response: str, gold: str) -> bool:
    """The built-in "math" verifier: extract the response's answer, compare it to ``gold``.

    ``gold`` is a bare answer, or a reference solution that marks its answer (a ``\\boxed{}``,
    "The final answer is ...", a GSM8K ``#### answer`` line), which is extracted the same way.
    """
    pred = extract_answer(response)
    if pred is None:
        return False
    if marks_an_answer(gold):
        gold_answer = extract_answer(gold)
        if gold_answer is None:
            return False
        gold = gold_answer
    return answers_equivalent(pred, gold)


def answers_equivalent(pred: str, gold: str) -> bool:
    """Whether two final-answer strings denote the same answer (see the module docstring).

    Any failure on model text means "not verified" (False), except MemoryError: that is the
    worker's address-space limit, which the verifier runtime must see to retire the worker.
    """
    try:
        return bool(_equivalent(pred, gold))
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - parse and sympy failures on model text
        return False


def _equivalent(pred: str, gold: str) -> bool:
    if len(pred) > MAX_ANSWER_CHARS or len(gold) > MAX_ANSWER_CHARS:
        return pred.strip() == gold.strip()
    pred_text, gold_text = normalize_answer(pred), normalize_answer(gold)
    if not pred_text or not gold_text:
        return False
    if _compact(pred_text) == _compact(gold_text):
        return True
    return forms_equal(parse_answer(pred_text), parse_answer(gold_text))


def forms_equal(pred: Answer, gold: Answer) -> bool:
    """Equality of two parsed answers; ``gold`` decides the reading of ambiguous forms."""
    pred, gold = _unwrap_singleton(pred, gold), _unwrap_singleton(gold, pred)
    if isinstance(pred, Relation) or isinstance(gold, Relation):
        return _relations_equal(pred, gold)
    if _is_set_like(pred) or _is_set_like(gold):
        return _sets_equal(pred, gold)
    if isinstance(pred, Sequence) and isinstance(gold, Sequence):
        return _sequences_equal(pred, gold)
    if isinstance(pred, Matrix) or isinstance(gold, Matrix):
        return _matrix_equal(pred, gold)
    if isinstance(pred, Choice) or isinstance(gold, Choice):
        return _letter(pred) is not None and _letter(pred) == _letter(gold)
    if isinstance(pred, Text) or isinstance(gold, Text):
        return _words(pred) is not None and _words(pred) == _words(gold)
    if isinstance(pred, BaseNumber) or isinstance(gold, BaseNumber):
        return _bases_equal(pred, gold)
    if isinstance(pred, Scalar) and isinstance(gold, Scalar):
        return _scalars_equal(pred, gold)
    return False


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _unwrap_singleton(answer: Answer, other: Answer) -> Answer:
    """``\\{3\\}`` or a one-item bare list against a non-list is just its item."""
    if (isinstance(answer, Sequence) and len(answer.items) == 1 and answer.opener in ("", "\\{")
            and not isinstance(other, Sequence)):
        return answer.items[0]
    return answer


# --- scalars -------------------------------------------------------------------------------

def _scalars_equal(pred: Scalar, gold: Scalar) -> bool:
    if pred.expr is None or gold.expr is None:
        return pred.percent == gold.percent and _compact(pred.text) == _compact(gold.text)
    if pred.percent == gold.percent:
        return exprs_equal(pred.expr, gold.expr, gold.decimal)
    # One side has a percent sign: accept the bare number (50% vs 50) or the value (vs 0.5).
    if exprs_equal(pred.expr, gold.expr, gold.decimal):
        return True
    hundred = sympy.Integer(100)
    pred_value = pred.expr / hundred if pred.percent else pred.expr
    gold_value = gold.expr / hundred if gold.percent else gold.expr
    return exprs_equal(pred_value, gold_value, gold.decimal)


def _letter(answer: Answer) -> str | None:
    if isinstance(answer, Choice):
        return answer.letter
    if isinstance(answer, Scalar) and len(answer.text) == 1 and answer.text.isalpha():
        return answer.text.upper()
    return None


def _words(answer: Answer) -> str | None:
    if isinstance(answer, Text):
        return answer.words
    if isinstance(answer, Scalar):
        return " ".join(answer.text.lower().split())
    return None


def _bases_equal(pred: Answer, gold: Answer) -> bool:
    if isinstance(pred, BaseNumber) and isinstance(gold, BaseNumber):
        return (pred.value, pred.base) == (gold.value, gold.base)
    based, plain = (pred, gold) if isinstance(pred, BaseNumber) else (gold, pred)
    if isinstance(plain, Scalar) and plain.expr is not None and plain.expr.is_Integer and plain.expr >= 0:
        return str(int(plain.expr)) == based.digits
    return False


# --- relations -----------------------------------------------------------------------------

def _is_assignment(answer: Answer) -> bool:
    return isinstance(answer, Relation) and answer.ops == ("=",) and is_name(answer.lhs_text)


def _relations_equal(pred: Answer, gold: Answer) -> bool:
    if _is_assignment(pred) and _is_assignment(gold):
        same_name = _name_key(pred.lhs_text) == _name_key(gold.lhs_text)
        return same_name and forms_equal(pred.parts[1], gold.parts[1])
    if _is_assignment(gold) and not isinstance(pred, Relation):
        return forms_equal(pred, gold.parts[1])
    if _is_assignment(pred) and not isinstance(gold, Relation):
        return forms_equal(pred.parts[1], gold)
    if not (isinstance(pred, Relation) and isinstance(gold, Relation)):
        return (_is_set_like(pred) or _is_set_like(gold)) and _sets_equal(pred, gold)
    if pred.ops == ("=",) and gold.ops == ("=",):
        return _equations_equal(pred, gold)
    return _sets_equal(pred, gold)


def _name_key(name: str) -> str:
    return re.sub(r"[{}\s]", "", name)  # `x_{1}` and `x_1` name the same unknown


def _equations_equal(pred: Relation, gold: Relation) -> bool:
    sides = [p.expr if isinstance(p, Scalar) else None for p in pred.parts + gold.parts]
    if any(s is None or not isinstance(s, sympy.Expr) for s in sides):
        return False
    pred_lhs, pred_rhs, gold_lhs, gold_rhs = sides
    return proportional(pred_lhs - pred_rhs, gold_lhs - gold_rhs)


# --- sets of reals -------------------------------------------------------------------------

def _is_interval_pair(answer: Answer) -> bool:
    if not (isinstance(answer, Sequence) and len(answer.items) == 2
            and answer.opener in ("(", "[") and answer.closer in (")", "]")):
        return False
    mixed = answer.opener + answer.closer in ("(]", "[)")
    return mixed or any(_is_infinite(item) for item in answer.items)


def _is_infinite(answer: Answer) -> bool:
    return isinstance(answer, Scalar) and answer.expr is not None and answer.expr in (
        sympy.oo, -sympy.oo)


def _is_set_like(answer: Answer) -> bool:
    if isinstance(answer, Union) or _is_interval_pair(answer) or _is_inequality_list(answer):
        return True
    if isinstance(answer, Relation):
        return _is_inequality(answer)
    return isinstance(answer, Scalar) and isinstance(answer.expr, sympy.Set)


def _is_inequality(answer: Answer) -> bool:
    return isinstance(answer, Relation) and any(op in _INEQUALITIES for op in answer.ops)


def _is_inequality_list(answer: Answer) -> bool:
    return (isinstance(answer, Sequence) and answer.opener == "" and len(answer.items) > 1
            and all(_is_inequality(item) for item in answer.items))


def _sets_equal(pred: Answer, gold: Answer) -> bool:
    pred_set, gold_set = _as_real_set(pred), _as_real_set(gold)
    if pred_set is None or gold_set is None:
        return False
    if pred_set == gold_set:
        return True
    pred_parts, gold_parts = _set_components(pred_set), _set_components(gold_set)
    return len(pred_parts) == len(gold_parts) and all(
        _components_equal(p, g) for p, g in zip(pred_parts, gold_parts))


def _as_real_set(answer: Answer) -> sympy.Set | None:
    if isinstance(answer, Union) or _is_inequality_list(answer):
        pieces = answer.parts if isinstance(answer, Union) else answer.items
        parts = [_as_real_set(p) for p in pieces]
        return None if any(p is None for p in parts) else sympy.Union(*parts)
    if isinstance(answer, Relation):
        return _inequality_set(answer)
    if isinstance(answer, Sequence):
        values = [_value(item) for item in answer.items]
        if any(v is None for v in values):
            return None
        if answer.opener == "\\{":
            return sympy.FiniteSet(*values)
        if len(values) == 2 and answer.opener in ("(", "[") and answer.closer in (")", "]"):
            return _interval(values[0], values[1], answer.opener == "(", answer.closer == ")")
        return None
    if isinstance(answer, Scalar) and isinstance(answer.expr, sympy.Set):
        return answer.expr
    return None


def _value(answer: Answer) -> sympy.Expr | None:
    if isinstance(answer, Scalar) and isinstance(answer.expr, sympy.Expr) and not answer.percent:
        if is_evaluable(answer.expr):
            return answer.expr.doit()
    return None


def _interval(low: sympy.Expr, high: sympy.Expr, left_open: bool, right_open: bool) -> sympy.Set | None:
    if (high - low).is_negative:
        return None  # written backwards: a pair of numbers, not an interval
    return sympy.Interval(low, high, left_open, right_open)


def _inequality_set(relation: Relation) -> sympy.Set | None:
    """The real solution set of ``a op b op c ...`` in one unknown, or None.  The unknown may
    be a symbol (``-x > -1``, ``1 \\le |z| \\le 2``) or a function value (``0 < f(x) < 1``)."""
    if any(op not in _INEQUALITIES for op in relation.ops):
        return None
    sides = [_value(part) for part in relation.parts]
    if any(side is None for side in sides):
        return None
    unknown = sympy.Dummy("t", real=True)
    sides = _as_one_unknown(sides, unknown)
    if sides is None:
        return None
    result: sympy.Set = sympy.S.Reals
    for left, op, right in zip(sides, relation.ops, sides[1:]):
        piece = _solve_inequality(left - right, op, unknown)
        if piece is None:
            return None
        result = sympy.Intersection(result, piece)
    return result


def _as_one_unknown(sides: list[sympy.Expr], unknown: sympy.Dummy) -> list[sympy.Expr] | None:
    """``sides`` with their single unknown (a symbol, or one ``f(x)``) replaced by ``unknown``."""
    applied = set().union(*(side.atoms(AppliedUndef) for side in sides))
    if len(applied) > 1:
        return None
    if applied:
        function_value = applied.pop()
        sides = [side.xreplace({function_value: unknown}) for side in sides]
        return None if any(side.free_symbols - {unknown} for side in sides) else sides
    symbols = set().union(*(side.free_symbols for side in sides))
    if len(symbols) != 1:
        return None
    symbol = symbols.pop()
    return [side.xreplace({symbol: unknown}) for side in sides]


def _solve_inequality(difference: sympy.Expr, op: str, unknown: sympy.Dummy) -> sympy.Set | None:
    """Solve ``difference op 0`` over the reals; None when it is too big to try."""
    if unknown not in difference.free_symbols or sympy.count_ops(difference) > _SOLVE_MAX_OPS:
        return None
    if difference.is_polynomial(unknown) and sympy.degree(difference, unknown) > _SOLVE_MAX_DEGREE:
        return None
    if any(not isinstance(f, sympy.Abs) for f in difference.atoms(sympy.Function)):
        return None  # the solver answers `sin x > 0` with one period only
    inequality = _RELATIONS[op](difference, 0)
    return solve_univariate_inequality(inequality, unknown, relational=False)


def _set_components(value: sympy.Set) -> list[sympy.Set]:
    return list(value.args) if isinstance(value, sympy.Union) else [value]


def _components_equal(pred: sympy.Set, gold: sympy.Set) -> bool:
    if isinstance(pred, sympy.Interval) and isinstance(gold, sympy.Interval):
        return (pred.left_open == gold.left_open and pred.right_open == gold.right_open
                and exprs_equal(pred.start, gold.start) and exprs_equal(pred.end, gold.end))
    if isinstance(pred, sympy.FiniteSet) and isinstance(gold, sympy.FiniteSet):
        return _match_unordered(list(pred.args), list(gold.args), exprs_equal)
    return pred == gold


# --- lists, tuples, matrices ---------------------------------------------------------------

def _sequences_equal(pred: Sequence, gold: Sequence) -> bool:
    pred_bracketed = pred.opener not in ("", "\\{")
    gold_bracketed = gold.opener not in ("", "\\{")
    if pred_bracketed and gold_bracketed:
        same_brackets = (pred.opener, pred.closer) == (gold.opener, gold.closer)
        return same_brackets and _match_ordered(pred.items, gold.items)
    if pred_bracketed or gold_bracketed:
        either_set = "\\{" in (pred.opener, gold.opener)
        return not either_set and _match_ordered(pred.items, gold.items)
    return _match_unordered(list(pred.items), list(gold.items), forms_equal)


def _match_ordered(pred: tuple[Answer, ...], gold: tuple[Answer, ...]) -> bool:
    return len(pred) == len(gold) and all(forms_equal(p, g) for p, g in zip(pred, gold))


def _match_unordered(pred: list, gold: list, equal) -> bool:
    """Set equality under ``equal``: every item has a partner on the other side (a repeated
    element is harmless, a missing or extra one is not)."""
    if not pred or not gold:
        return not pred and not gold
    if max(len(pred), len(gold)) > _MAX_MATCHED_ITEMS:
        return set(map(repr, pred)) == set(map(repr, gold))
    verdicts: dict[tuple[int, int], bool] = {}

    def same(i: int, j: int) -> bool:
        if (i, j) not in verdicts:
            verdicts[i, j] = equal(pred[i], gold[j])
        return verdicts[i, j]

    return (all(any(same(i, j) for j in range(len(gold))) for i in range(len(pred)))
            and all(any(same(i, j) for i in range(len(pred))) for j in range(len(gold))))


def _matrix_equal(pred: Answer, gold: Answer) -> bool:
    if isinstance(pred, Matrix) and isinstance(gold, Matrix):
        if len(pred.rows) != len(gold.rows) or len(pred.rows[0]) != len(gold.rows[0]):
            return False
        return all(_match_ordered(p, g) for p, g in zip(pred.rows, gold.rows))
    matrix, other = (pred, gold) if isinstance(pred, Matrix) else (gold, pred)
    if not (isinstance(other, Sequence) and other.opener != "\\{"):
        return False
    entries = _vector_entries(matrix)
    if entries is None:
        return False
    return _match_ordered(entries, other.items) if matrix is pred else _match_ordered(other.items, entries)


def _vector_entries(matrix: Matrix) -> tuple[Answer, ...] | None:
    if len(matrix.rows) == 1:
        return matrix.rows[0]
    if all(len(row) == 1 for row in matrix.rows):
        return tuple(row[0] for row in matrix.rows)
    return None
