"""The rule-based "math" verifier: is a predicted final answer equivalent to the gold one?

``answers_equivalent(pred, gold)`` compares two extracted answers; ``math_verifier(response,
gold)`` extracts first.  Comparison is structural before symbolic: answers are normalized
(``rewards/normalize.py``), read into typed forms (``rewards/answer_forms.py``), and only leaf
values reach sympy (``rewards/expr_equal.py``).  No text is ever evaluated as Python.

Comparison rules (documented choices; math-verify was the reference point):

* Equations: ``x = 3`` equals ``3`` either way round; two assignments must name the same
  unknown (``x=3`` vs ``y=3`` differ); other equations are equal when ``lhs - rhs`` of one
  is a nonzero constant multiple of the other's (``y = 2x+1`` vs ``2x - y + 1 = 0``).
* Lists: order matters for tuples ``(1,2)`` and ``[1,2]`` (and the bracket kinds must
  match); a set ``\\{1,2\\}``, a bare list ``1, 2`` and ``a \\pm b`` are unordered.  A tuple
  against a bare list compares in order; a set never equals a tuple.  A one-element set or
  list equals its element.
* Intervals: a pair with mixed brackets or an infinite end, a union, or an inequality in one
  unknown is a set of reals; ``x \\le 3`` equals ``(-\\infty, 3]`` and ``2 < x < 5`` equals
  ``(2, 5)``, while ``[2,5)`` and ``(2,5)`` differ.  A bare list of inequalities is their
  union (``x < 1 \text{ or } x > 5``): "and" and "or" both become commas in normalization,
  and MATH writes an intersection as one chain (``1 < x < 5``), not as a list.
* Percent: ``50\\%`` equals ``50`` (the number with its sign dropped) and ``0.5`` (its
  value); without a percent sign on either side, ``50`` and ``0.5`` differ.
* Bases: ``52_8`` equals ``52_{8}`` and nothing written in another base: ``52`` is base 10,
  so ``52_8`` differs from ``52`` and from 42, and ``101_2`` differs from ``5``.
* Matrices compare elementwise with equal shapes; a one-row or one-column matrix also
  equals the tuple of its entries.
* Words compare case-insensitively (``\\text{Monday}`` = ``monday``); multiple-choice
  letters as letters (``(B)`` = ``B`` = ``\\text{(B)}``).
"""

from __future__ import annotations

import re

import sympy

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
from rewards.extract import extract_answer
from rewards.normalize import MAX_ANSWER_CHARS, normalize_answer

# Lists longer than this are compared as multisets of strings (matching is quadratic).
_MAX_MATCHED_ITEMS = 30
_INEQUALITIES = {"<", ">", "\\le", "\\ge", "\\ne"}
_GOLD_SOLUTION_MARKERS = ("\\boxed", "\\fbox", "####")


def math_verifier(response: str, gold: str) -> bool:
    """The built-in "math" verifier: extract the response's answer, compare it to ``gold``.

    ``gold`` is a bare answer, or a reference solution holding a ``\\boxed{}`` (or a GSM8K
    ``#### answer`` line), in which case its answer is extracted the same way.
    """
    pred = extract_answer(response)
    if pred is None:
        return False
    if any(marker in gold for marker in _GOLD_SOLUTION_MARKERS):
        gold_answer = extract_answer(gold)
        if gold_answer is None:
            return False
        gold = gold_answer
    return answers_equivalent(pred, gold)


def answers_equivalent(pred: str, gold: str) -> bool:
    """Whether two final-answer strings denote the same answer (see the module docstring)."""
    try:
        return bool(_equivalent(pred, gold))
    except Exception:  # noqa: BLE001 - any failure on model text means "not verified"
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
        return _based_value(pred) is not None and _based_value(pred) == _based_value(gold)
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


def _based_value(answer: Answer) -> tuple[int, int] | None:
    if isinstance(answer, BaseNumber):
        return answer.value, answer.base
    if isinstance(answer, Scalar) and answer.expr is not None and answer.expr.is_Integer:
        return int(answer.expr), 10
    return None


# --- relations -----------------------------------------------------------------------------

def _is_assignment(answer: Answer) -> bool:
    return isinstance(answer, Relation) and answer.ops == ("=",) and is_name(answer.lhs_text)


def _relations_equal(pred: Answer, gold: Answer) -> bool:
    if _is_assignment(pred) and _is_assignment(gold):
        same_name = _compact(pred.lhs_text) == _compact(gold.lhs_text)
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
    """The solution set of ``a op x op b ...`` with ``x`` a lone unknown, or None."""
    values = [_value(p) if not _lone_symbol(p) else _lone_symbol(p) for p in relation.parts]
    unknowns = {v for v in values if isinstance(v, sympy.Symbol)}
    if len(unknowns) != 1 or any(v is None for v in values):
        return None
    unknown = unknowns.pop()
    result: sympy.Set = sympy.S.Reals
    for left, op, right in zip(values, relation.ops, values[1:]):
        if op not in _INEQUALITIES:
            return None
        piece = _half_line(left, op, right, unknown)
        if piece is None:
            return None
        result = sympy.Intersection(result, piece)
    return result


def _lone_symbol(answer: Answer) -> sympy.Symbol | None:
    if isinstance(answer, Scalar) and isinstance(answer.expr, sympy.Symbol):
        return answer.expr
    return None


def _half_line(left: sympy.Expr, op: str, right: sympy.Expr, unknown: sympy.Symbol) -> sympy.Set | None:
    if left == unknown and right.free_symbols == set():
        bound, unknown_on_left = right, True
    elif right == unknown and left.free_symbols == set():
        bound, unknown_on_left = left, False
    else:
        return None
    if op == "\\ne":
        return sympy.Union(sympy.Interval.open(-sympy.oo, bound), sympy.Interval.open(bound, sympy.oo))
    below = (op in ("<", "\\le")) == unknown_on_left  # the unknown is below the bound
    strict = op in ("<", ">")
    if below:
        return sympy.Interval(-sympy.oo, bound, True, strict)
    return sympy.Interval(bound, sympy.oo, strict, True)


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
    if len(pred.items) != len(gold.items):
        return False
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
    """Greedy matching of two multisets under ``equal`` (items are few and rarely ambiguous)."""
    if len(pred) != len(gold):
        return False
    if len(pred) > _MAX_MATCHED_ITEMS:
        return sorted(map(repr, pred)) == sorted(map(repr, gold))
    remaining = list(gold)
    for item in pred:
        match = next((i for i, g in enumerate(remaining) if equal(item, g)), None)
        if match is None:
            return False
        remaining.pop(match)
    return True


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
