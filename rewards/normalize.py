"""Text cleanup of a final-answer string before it is parsed.

Everything here is string surgery with linear scans or anchored regexes; nothing is parsed
into sympy.  The rules, and why each exists:

* Presentation only: ``\\left``/``\\right``, ``\\dfrac``/``\\tfrac``, spacing commands,
  ``\\displaystyle``, math delimiters, a trailing period.
* Degrees (``^\\circ``) and dollar signs are dropped: MATH answers write ``30^\\circ`` and
  ``\\$5`` where the value is the number.
* ``\\%`` becomes ``%`` and is kept: ``rewards/answer_forms.py`` decides what a percent means.
* Units are removed only at the end of the answer and only after a number, a closing brace
  or parenthesis: ``5\\text{ cm}``, ``12 inches``.  A trailing ``\\text{...}`` after such a
  value is always a unit or a word; a plain trailing word only when it is in ``_UNIT_WORDS``
  (multi-letter words, so that variables such as ``m`` or ``c`` survive).
* ``\\text{}``-like wrappers are unwrapped after units are gone, so ``\\text{Monday}`` is
  ``Monday`` and ``\\text{(B)}`` is ``(B)``.
* Thousands separators: ``2,125`` is 2125 only when the whole answer is one number with
  comma groups of exactly three digits and no spaces; ``(2,125)`` and ``2, 125`` stay lists.
* Plain-text math written by models (``sqrt(2)``, ``x**2``, ``pi``, ``>=``) becomes LaTeX;
  a repeating decimal ``0.\\overline{3}`` becomes the exact fraction.
"""

from __future__ import annotations

import re

# Longer answers are compared as strings only (see `rewards/math_equivalence.py`).
MAX_ANSWER_CHARS = 2000

_OPENERS = "([{"
_CLOSERS = ")]}"

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00d7": "\\times ", "\u00b7": "\\cdot ", "\u22c5": "\\cdot ",
    "\u221a": "\\sqrt", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u2264": "\\le ",
    "\u2265": "\\ge ", "\u2260": "\\ne ", "\u00b1": "\\pm ", "\u2213": "\\mp ", "\u222a": "\\cup ",
    "\u2229": "\\cap ", "\u00b0": "^\\circ", "\u2208": "\\in ", "\u00a0": " ", "\u2009": " ",
}
_COMMAND_ALIASES = [
    (re.compile(r"\\[dtc]frac(?![A-Za-z])"), r"\\frac"),
    (re.compile(r"\\(?:leqslant|leq)(?![A-Za-z])"), r"\\le"),
    (re.compile(r"\\(?:geqslant|geq)(?![A-Za-z])"), r"\\ge"),
    (re.compile(r"\\neq(?![A-Za-z])"), r"\\ne"),
    (re.compile(r"\\lbrace(?![A-Za-z])"), r"\\{"),
    (re.compile(r"\\rbrace(?![A-Za-z])"), r"\\}"),
    (re.compile(r"\\(?:langle|lbrack)(?![A-Za-z])"), "("),
    (re.compile(r"\\(?:rangle|rbrack)(?![A-Za-z])"), ")"),
    (re.compile(r"\\(?:varnothing|emptyset)(?![A-Za-z])"), r"\\emptyset"),
    (re.compile(r"\\(?:displaystyle|textstyle|limits)(?![A-Za-z])"), ""),
    (re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)"
                r"(?![A-Za-z])\.?"), ""),
    # Digit groups split by a thin space (1\,000) or a comma and a negative space (32,\! 349).
    (re.compile(r"(\d)\\[,!](?=\d{3}(?!\d))"), r"\1"),
    (re.compile(r"(\d),\s*\\!\s*(?=\d{3}(?!\d))"), r"\1,"),
    (re.compile(r"(?<!\\)\\[!,]"), ""),
    (re.compile(r"(?<!\\)\\(?:[;:\s]|q?quad)|~"), " "),
    (re.compile(r"\s*\{\s*,\s*\}\s*"), ","),
    (re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ\s*$|\\degree(?![A-Za-z])"), ""),
    (re.compile(r"\\%"), "%"),
    (re.compile(r"\s*\\(?:text|mbox|mathrm)\s*\{\s*(?:per\s?cent|pct)\s*\}|\s*\b(?:per\s?cent|pct)\b"), "%"),
]
_PLAIN_TEXT_MATH = [
    (re.compile(r"\*\*"), "^"),
    (re.compile(r">="), r"\\ge "),
    (re.compile(r"<="), r"\\le "),
    (re.compile(r"!="), r"\\ne "),
    (re.compile(r"\+-|\+/-"), r"\\pm "),
    (re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])"), r"\\pi "),
    (re.compile(r"(?<![\\A-Za-z])(?:infinity|inf)(?![A-Za-z])"), r"\\infty "),
]
_TEXT_WRAPPERS = ("text", "textbf", "textit", "textrm", "textnormal", "mathrm", "mathbf",
                  "mathit", "mbox", "boldsymbol", "mathsf", "texttt", "emph")
_UNIT_WORDS = (
    "cm mm km meters meter metres metre inches inch feet foot ft yards yard yd miles mile "
    "units unit degrees degree dollars dollar cents cent hours hour hrs hr minutes minute "
    "mins min seconds second secs sec days day weeks week months month years year mph kph "
    "kg grams gram pounds pound lbs lb ounces oz liters liter litres litre ml gallons gallon "
    "people students ways"
).split()
_UNIT_TAIL = re.compile(
    r"(?<=[\d})])\s+(?:(?:square|sq\.?|cubic)\s+)?(?:" + "|".join(_UNIT_WORDS) + r")"
    r"(?:\^\{?[23]\}?|\s+squared|\s+cubed)?$"
)
_WORDISH = re.compile(r"[A-Za-z][A-Za-z .,'\-]*")
_REPEATING_DECIMAL = re.compile(r"(\d*)\.(\d*)\\overline\{(\d+)\}")
_AND_OR = re.compile(r"(?:\s*,)?\s*\b(?:and|or)\b\s*")
_E_NOTATION = re.compile(r"(-?\d+(?:\.\d+)?)[eE]([+-]?\d+)")
_LONE_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_SPACES = re.compile(r"\s+")


def find_closing(text: str, start: int) -> int:
    """Index of the bracket closing the one at ``text[start]``, or -1.

    All of ``([{`` open and ``)]}`` close, whatever their kind, because half-open
    intervals pair ``[`` with ``)``; ``\\{``/``\\}`` count like ``{``/``}``.
    """
    return _matching(text, start, _OPENERS, _CLOSERS)


def closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` closing ``text[start] == '{'``, counting only curly braces."""
    return _matching(text, start, "{", "}")


def _matching(text: str, start: int, openers: str, closers: str) -> int:
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch in openers:
            depth += 1
        elif ch in closers:
            depth -= 1
            if depth == 0:
                return i
    return -1


def split_top_level(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split ``text`` at any of ``separators`` that sit outside every bracket pair."""
    return split_top_level_keep(text, separators)[0]


def split_top_level_keep(text: str, separators: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Like ``split_top_level``, also returning the separator found at each split."""
    parts: list[str] = []
    found: list[str] = []
    depth = 0
    last = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth = max(depth - 1, 0)
        elif depth == 0:
            sep = next((s for s in separators if text.startswith(s, i)), None)
            if sep is not None and not _is_command_prefix(text, i, sep):
                parts.append(text[last:i])
                found.append(sep)
                i += len(sep)
                last = i
                continue
        i += 1
    parts.append(text[last:])
    return parts, found


def _is_command_prefix(text: str, i: int, sep: str) -> bool:
    # `\le` must not split `\left`, `\in` must not split `\infty`.
    end = i + len(sep)
    return sep[0] == "\\" and sep[-1].isalpha() and end < len(text) and text[end].isalpha()


def unwrap_command(text: str, names: tuple[str, ...]) -> str:
    """Replace every ``\\name{content}`` (for ``name`` in ``names``) by ``content``."""
    out: list[str] = []
    i = 0
    while i < len(text):
        j = text.find("\\", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        k = j + 1
        while k < len(text) and text[k].isalpha():
            k += 1
        brace = k
        while brace < len(text) and text[brace] == " ":
            brace += 1
        if text[j + 1:k] in names and brace < len(text) and text[brace] == "{":
            close = closing_brace(text, brace)
            if close > 0:
                out.append(text[brace + 1:close])
                i = close + 1
                continue
        out.append(text[j:k] if k > j + 1 else text[j:j + 2])
        i = max(k, j + 2)
    return "".join(out)


def strip_delimiters(text: str) -> str:
    """Drop surrounding math delimiters ($, $$, \\( \\), \\[ \\]) and markdown emphasis."""
    text = text.strip()
    while True:
        before = text
        for left, right in (("**", "**"), ("__", "__"), ("$$", "$$"), ("$", "$"),
                            ("\\(", "\\)"), ("\\[", "\\]")):
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                # Every directly repeated layer in one slice: one layer per pass copies the rest
                # of the string each time, quadratic on a megabyte of "$".
                layers = min(_repeats(text, left), _repeats(text[::-1], right[::-1]), len(text) // (len(left) + len(right)))
                text = text[layers * len(left):len(text) - layers * len(right)].strip()
        if text == before:
            return text


def _repeats(text: str, unit: str) -> int:
    """How many times `unit` repeats at the start of `text`."""
    count = 0
    while text.startswith(unit, count * len(unit)):
        count += 1
    return count


def _strip_whole_box(text: str) -> str:
    for command in ("\\boxed", "\\fbox"):
        if text.startswith(command):
            brace = len(command)
            while brace < len(text) and text[brace] == " ":
                brace += 1
            if brace < len(text) and text[brace] == "{" and closing_brace(text, brace) == len(text) - 1:
                return text[brace + 1:-1].strip()
    return text


def _fix_shorthand_args(text: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\sqrt2`` -> ``\\sqrt{2}`` (one-character arguments)."""
    text = re.sub(r"\\sqrt\s*([0-9A-Za-z])", r"\\sqrt{\1}", text)
    text = re.sub(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])", r"\\frac{\1}{\2}", text)
    text = re.sub(r"\\frac\s*([0-9A-Za-z])\s*\{", r"\\frac{\1}{", text)
    return re.sub(r"\\frac\s*(\{[^{}]*\})\s*([0-9A-Za-z])", r"\\frac\1{\2}", text)


def _plain_sqrt_to_latex(text: str) -> str:
    """``sqrt(x+1)`` -> ``\\sqrt{x+1}`` with the parenthesis matched by hand."""
    out: list[str] = []
    i = 0
    while True:
        j = text.find("sqrt(", i)
        if j < 0 or (j > 0 and text[j - 1] == "\\"):
            out.append(text[i:])
            return "".join(out)
        close = find_closing(text, j + 4)
        if close < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j] + "\\sqrt{" + text[j + 5:close] + "}")
        i = close + 1


def _strip_trailing_units(text: str) -> str:
    for _ in range(2):  # "5 \text{ square} \text{ units}"
        text = text.rstrip()
        match = re.search(r"\\(?:text|mbox|mathrm|textrm|textnormal)\s*\{([^{}]*)\}(?:\^\{?[23]\}?)?$", text)
        if match and _WORDISH.fullmatch(match.group(1).strip() or "?"):
            head = text[:match.start()].rstrip()
            if head and (any(c.isdigit() for c in head) or head[-1] in ")}"):
                text = head
                continue
        text = _UNIT_TAIL.sub("", text)
    return text


def _and_or_to_commas(text: str) -> str:
    # "2 and 3", "\text{ or }" (unwrapped already), "(11,7)or(7,11)" separate list items.
    return _AND_OR.sub(", ", text)


def _repeating_decimals(text: str) -> str:
    """``0.\\overline{3}`` -> ``\\frac{1}{3}``, ``4.1\\overline{6}`` -> ``\\frac{25}{6}`` (exact)."""
    def repl(match: re.Match[str]) -> str:
        whole, fixed, repeated = match.group(1) or "0", match.group(2), match.group(3)
        numerator = int(whole + fixed + repeated) - int(whole + fixed)
        denominator = (10 ** len(repeated) - 1) * 10 ** len(fixed)
        return f"\\frac{{{numerator}}}{{{denominator}}}"

    return _REPEATING_DECIMAL.sub(repl, text)


def _lone_number_forms(text: str) -> str:
    """Thousands separators (``2,125``) and e-notation (``1e5``) of an answer that is one number."""
    if _LONE_THOUSANDS.fullmatch(text):
        return text.replace(",", "")
    match = _E_NOTATION.fullmatch(text)
    if match:
        return f"{match.group(1)} \\times 10^{{{match.group(2)}}}"
    return text


def normalize_answer(text: str) -> str:
    """Canonical text of one final answer (see the module docstring for the rules)."""
    text = text.strip()
    if len(text) > MAX_ANSWER_CHARS:
        return text
    for char, replacement in _UNICODE.items():
        if char in text:
            text = text.replace(char, replacement)
    text = _SPACES.sub(" ", text)  # also keeps the `\s*` patterns below from rescanning runs
    text = strip_delimiters(_strip_whole_box(strip_delimiters(text)))
    # `\$` is a dollar sign, any other `$` a math-mode toggle: neither is part of the value.
    text = text.replace("\\$", "").replace("$", "").replace("\n", " ")
    for pattern, replacement in _COMMAND_ALIASES:
        text = pattern.sub(replacement, text)
    text = _strip_trailing_units(text)
    text = unwrap_command(text, _TEXT_WRAPPERS)
    for pattern, replacement in _PLAIN_TEXT_MATH:
        text = pattern.sub(replacement, text)
    text = _plain_sqrt_to_latex(text)
    text = _fix_shorthand_args(text)
    text = _repeating_decimals(text)
    text = _and_or_to_commas(text)
    text = _SPACES.sub(" ", text).strip()
    text = text.rstrip(".;, ").lstrip(",; ")
    text = _strip_trailing_units(text)
    return _lone_number_forms(text.strip())
