"""Parse a normalized answer into a typed form: scalar, list/tuple/set, interval union,
relation, matrix, base-b number, multiple-choice letter or text.

Structure (brackets, commas, ``\\cup``, relations, ``\\pm``) is read here by hand, with
linear scans; only leaf expressions go to ``latex_to_sympy``.  The grammar of
``latex2sympy2_extended`` would also read ``(1,2)`` but has to guess between a point and an
open interval at parse time, and drops base subscripts (``52_8`` -> 52); keeping the
structure ourselves lets the comparison decide with both answers in view.

Reading rules (documented choices):

* Mixed number: a whole answer (or list item) ``1\\frac{4}{5}`` is 1 + 4/5.  Anywhere else
  juxtaposition is a product (``2\\frac{1}{2}x`` is x).
* Base subscripts: ``52_8`` is value 42 in base 8, written with the digits ``52``.
* Percent: ``50%`` keeps the number 50 and a percent flag; the comparison accepts it against
  50 or 0.5 (see ``rewards/math_equivalence.py``).
* Decimal: a scalar written with a decimal point is flagged; only a decimal gold allows a
  tolerance.
* Text: an answer made of letters (at least one word of 3+ letters) and spaces is a word
  answer compared case-insensitively, never symbolically (``odd`` is not o*d*d); a leading
  article is dropped; a clock time ``12:00`` is text too.
* Sets: ``\\{...\\}``, and grouping braces ``{a, b}`` holding a comma; an item ``a \\pm b``
  of a set or bare list stands for two items.
* Matrices: ``pmatrix``/``bmatrix``/``matrix``/``array`` environments, optionally preceded
  by a scalar factor that multiplies every entry.
* Choice: ``B``, ``(B)``, ``(b)``, and ``(B) 5`` (an option with its text) are the letter B.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy

from rewards.latex_sympy import latex_to_sympy
from rewards.normalize import find_closing, split_top_level, split_top_level_keep

# Containers deeper than this are not parsed (pathological inputs; real answers nest 2-3).
MAX_NESTING = 40

_RELATIONS = ("\\le", "\\ge", "\\ne", "\\lt", "\\gt", "<", ">", "=", "\\approx", "\\in")
_MATRIX_ENV = re.compile(
    r"([^\\]*?(?:\\(?:frac|dfrac|sqrt|cdot|times)[^\\]*?)*)"  # an optional scalar factor
    r"\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\2\}", re.S)
_BASE_NUMBER = re.compile(r"([0-9A-Za-z]+)_\{?(\d{1,2})\}?")
_MIXED_NUMBER = re.compile(r"(-?)(\d+)\s*\\frac\{(\d+)\}\{(\d+)\}")
_CHOICE = re.compile(r"\(?([A-Ja-j])\)")
_BARE_CHOICE = re.compile(r"[A-J]")
_CHOICE_WITH_TEXT = re.compile(r"\(([A-J])\)\s.*", re.S)
_WORDS = re.compile(r"[A-Za-z][A-Za-z '\-]*")
_LONG_WORD = re.compile(r"[A-Za-z]{3,}")
_DECIMAL = re.compile(r"\d*\.\d")
_CLOCK_TIME = re.compile(r"\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?", re.IGNORECASE)
_SINGLE_NAME = r"(?:[A-Za-z](?:_\{?\w+\}?)?'*|\\[A-Za-z]+|[A-Za-z]\([^()]*\))"
_NAME = re.compile(rf"{_SINGLE_NAME}|\(\s*{_SINGLE_NAME}(?:\s*,\s*{_SINGLE_NAME})+\s*\)")
# Geometric quantities such as `AB`, `|AB|`, `\frac{NO}{BO}`, `\angle ABC`: letters only.
_QUANTITY_COMMANDS = re.compile(r"\\(?:frac|angle|overline|overrightarrow|vec|triangle|measuredangle)")
_QUANTITY = re.compile(r"[A-Za-z{}|\s_']+")
_CONSTANTS = ("\\pi", "\\infty", "e", "i")


@dataclass(frozen=True)
class Scalar:
    text: str  # normalized, without a percent sign
    expr: sympy.Basic | None  # None when it did not parse
    percent: bool = False
    decimal: bool = False


@dataclass(frozen=True)
class BaseNumber:
    value: int
    base: int
    digits: str  # as written, lower case: what an answer that omits the subscript must match


@dataclass(frozen=True)
class Choice:
    letter: str  # upper case


@dataclass(frozen=True)
class Text:
    words: str  # lower case, single spaces


@dataclass(frozen=True)
class Sequence:
    items: tuple["Answer", ...]
    opener: str  # "(", "[", "\\{" or "" for a bare list
    closer: str
    plus_minus: bool = False  # built from `a \pm b`


@dataclass(frozen=True)
class Matrix:
    rows: tuple[tuple["Answer", ...], ...]


@dataclass(frozen=True)
class Union:
    parts: tuple["Answer", ...]


@dataclass(frozen=True)
class Relation:
    """``a op b op c ...``; ``ops[i]`` sits between ``parts[i]`` and ``parts[i+1]``."""

    parts: tuple["Answer", ...]
    ops: tuple[str, ...]
    lhs_text: str  # the first part as written, to recognise `x = ...` assignments


Answer = Scalar | BaseNumber | Choice | Text | Sequence | Matrix | Union | Relation


def parse_answer(text: str, depth: int = 0) -> Answer:
    """Typed form of one normalized answer (never raises for ordinary text)."""
    text = text.strip()
    if depth > MAX_NESTING:
        return Scalar(text, None)
    for reader in (_read_choice, _read_union, _read_list, _read_relation, _read_brackets,
                   _read_matrix, _read_plus_minus, _read_base_number, _read_text):
        answer = reader(text, depth)
        if answer is not None:
            return answer
    return read_scalar(text)


def _read_choice(text: str, depth: int) -> Answer | None:
    match = _CHOICE.fullmatch(text) or _CHOICE_WITH_TEXT.fullmatch(text)
    if match and (text.startswith("(") or depth == 0):
        return Choice(match.group(1).upper())
    if depth == 0 and _BARE_CHOICE.fullmatch(text):
        return Choice(text)
    return None


def _read_union(text: str, depth: int) -> Answer | None:
    parts = split_top_level(text, ("\\cup",))
    if len(parts) < 2:
        return None
    return Union(tuple(parse_answer(p, depth + 1) for p in parts))


def _read_list(text: str, depth: int) -> Answer | None:
    parts = [p for p in split_top_level(text, (",", ";")) if p.strip()]
    if len(parts) < 2:
        return None
    return Sequence(_unordered_items(parts, depth), "", "")


def _unordered_items(parts: list[str], depth: int) -> tuple[Answer, ...]:
    """Items of a set or bare list; ``1 \\pm \\sqrt{5}`` among them stands for two items."""
    items: list[Answer] = []
    for part in parts:
        item = parse_answer(part, depth + 1)
        items.extend(item.items if isinstance(item, Sequence) and item.plus_minus else [item])
    return tuple(items)


def _read_relation(text: str, depth: int) -> Answer | None:
    pieces = _split_relation(text)
    if pieces is None:
        return None
    parts, ops = pieces
    if "\\approx" in ops:
        return _read_approximation(parts, ops, depth)
    if ops[0] == "\\in" and len(ops) == 1:  # `x \in [2, 5)`: the set is the answer
        return parse_answer(parts[1], depth + 1)
    if all(op == "=" for op in ops) and len(parts) > 2:
        # `x = 2 + 1 = 3`: the first side names the unknown, the last one is the result.
        parts, ops = [parts[0], parts[-1]], ["="]
    answers = tuple(parse_answer(p, depth + 1) for p in parts)
    return Relation(answers, tuple(ops), parts[0].strip())


def _read_approximation(parts: list[str], ops: list[str], depth: int) -> Answer:
    """``x = \\pi \\approx 3.14`` is the exact ``x = \\pi``; only ``x \\approx 3.14`` (nothing
    exact given) is read as its approximation."""
    first = ops.index("\\approx")
    exact = "".join(p + op for p, op in zip(parts[:first], ops[:first])) + parts[first]
    if is_name(exact):
        return parse_answer(parts[first + 1], depth + 1)
    return parse_answer(exact, depth + 1)


def _split_relation(text: str) -> tuple[list[str], list[str]] | None:
    parts, ops = split_top_level_keep(text, _RELATIONS)
    if not ops or not all(p.strip() for p in parts):
        return None
    return parts, [{"\\lt": "<", "\\gt": ">"}.get(op, op) for op in ops]


def _read_brackets(text: str, depth: int) -> Answer | None:
    if text.startswith("\\{") and text.endswith("\\}") and find_closing(text, 1) == len(text) - 1:
        return _read_set(text[2:-2], depth)
    if text.startswith("{") and text.endswith("}") and find_closing(text, 0) == len(text) - 1:
        # LaTeX grouping braces: `{-2021, 2021}` is meant as a set, `{2}` is just 2.
        inner = text[1:-1]
        return _read_set(inner, depth) if len(split_top_level(inner, (",",))) > 1 else None
    if text[:1] in "([" and text[-1:] in ")]" and find_closing(text, 0) == len(text) - 1:
        inner = text[1:-1]
        items = split_top_level(inner, (",", ";"))
        if len(items) == 1:
            return parse_answer(inner, depth + 1)  # plain grouping parentheses
        return Sequence(tuple(parse_answer(p, depth + 1) for p in items), text[0], text[-1])
    return None


def _read_set(inner: str, depth: int) -> Sequence:
    parts = [p for p in split_top_level(inner, (",", ";")) if p.strip()]
    return Sequence(_unordered_items(parts, depth), "\\{", "\\}")


def _read_matrix(text: str, depth: int) -> Answer | None:
    match = _MATRIX_ENV.fullmatch(text)
    if not match:
        return None
    prefix, body = match.group(1).strip(), match.group(3).strip()
    rows = [r for r in body.split("\\\\") if r.strip()]
    cells = tuple(tuple(parse_answer(c, depth + 1) for c in r.split("&")) for r in rows)
    if not cells or len({len(r) for r in cells}) != 1:
        return None
    if prefix:
        return _scaled_matrix(prefix, cells)
    return Matrix(cells)


def _scaled_matrix(prefix: str, cells: tuple[tuple[Answer, ...], ...]) -> Matrix | None:
    """``\\frac{1}{3}\\begin{pmatrix}...\\end{pmatrix}`` or ``-\\begin{pmatrix}...``: scale each entry."""
    prefix = re.sub(r"\\(?:cdot|times)\s*$|\*\s*$", "", prefix).strip()
    factor = sympy.Integer(-1) if prefix == "-" else latex_to_sympy(prefix)
    if not isinstance(factor, sympy.Expr):
        return None
    scaled = []
    for row in cells:
        if not all(isinstance(c, Scalar) and isinstance(c.expr, sympy.Expr) for c in row):
            return None
        scaled.append(tuple(Scalar(f"({prefix})({c.text})", sympy.Mul(factor, c.expr), c.percent, c.decimal)
                            for c in row))
    return Matrix(tuple(scaled))


def _read_plus_minus(text: str, depth: int) -> Answer | None:
    if "\\pm" not in text and "\\mp" not in text:
        return None
    plus = text.replace("\\pm", "+").replace("\\mp", "-")
    minus = text.replace("\\pm", "-").replace("\\mp", "+")
    items = (parse_answer(plus, depth + 1), parse_answer(minus, depth + 1))
    return Sequence(items, "", "", plus_minus=True)


def _read_base_number(text: str, depth: int) -> Answer | None:
    match = _BASE_NUMBER.fullmatch(text)
    if not match:
        return None
    digits, base = match.group(1), int(match.group(2))
    if not 2 <= base <= 36:
        return None
    try:
        return BaseNumber(int(digits, base), base, digits.lower())
    except ValueError:  # `x_2`: not digits of that base, so a subscripted name
        return None


def _read_text(text: str, depth: int) -> Answer | None:
    if _CLOCK_TIME.fullmatch(text):  # `12:00` is a time, not the ratio 12/0
        return Text(" ".join(text.lower().split()))
    if _WORDS.fullmatch(text) and _LONG_WORD.search(text):
        words = text.lower().split()
        if len(words) > 1 and words[0] in ("a", "an", "the"):
            words = words[1:]  # `\\text{an ellipse}` is the answer "ellipse"
        return Text(" ".join(words))
    return None


def read_scalar(text: str) -> Scalar:
    percent = text.endswith("%")
    body = text.rstrip("%").strip() if percent else text
    decimal = bool(_DECIMAL.search(body))
    mixed = _MIXED_NUMBER.fullmatch(body)
    if mixed:
        sign, whole, num, den = mixed.groups()
        if int(den) != 0:
            value = sympy.Integer(int(whole)) + sympy.Rational(int(num), int(den))
            return Scalar(body, -value if sign else value, percent, decimal)
    return Scalar(body, latex_to_sympy(body), percent, decimal)


def is_name(text: str) -> bool:
    """Whether ``text`` names what its equation's other side gives: an unknown (``x``,
    ``a_1``, ``\\theta``, ``f(x)``), a tuple of them (``(p, q)``) or a quantity written with
    letters only (``AB``, ``|AB|``, ``\\frac{NO}{BO}``); not ``a + 3z`` or ``2x``."""
    text = text.strip()
    if text in _CONSTANTS:
        return False
    if _NAME.fullmatch(text):
        return True
    return bool(_QUANTITY.fullmatch(_QUANTITY_COMMANDS.sub("", text))) and any(c.isalpha() for c in text)
