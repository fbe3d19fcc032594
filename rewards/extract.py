"""Find the final answer in a model response or a reference solution.

Priority, applied to the text after ``</think>`` (or, if that yields nothing, to the text
inside the think block):

1. the last ``\\boxed{...}`` / ``\\boxed ...`` / ``\\fbox{...}``, braces matched by hand;
   boxes that directly precede it, separated only by commas, ``and``, ``\\quad`` or math
   delimiters, join it (``\\boxed{2} and \\boxed{3}`` -> ``2, 3``); an unclosed box (a
   truncated response) is skipped for an earlier closed one, and if there is none the text
   has no answer.  An explicit "answer is ..." written after the last box wins over it
   (boxed intermediate values, then "The final answer is $10,455$");
2. the last "answer is ..." / "Answer: ..." / GSM8K "#### ..." (case-insensitive): the math
   span that follows, else the rest of the sentence, cut after its last " is "
   ("Final Answer: The largest $n$ is 34" -> 34);
3. the last math span (``$...$``, ``\\(...\\)``, ``\\[...\\]``): the last stated result;
4. the last number standing alone (not inside a word such as ``AZYUK2A``).

Every scan is linear in the text length; regexes used here cannot backtrack badly.
"""

from __future__ import annotations

import re

from rewards.normalize import closing_brace, strip_delimiters

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MAX_BOXES_TRIED = 10  # unclosed boxes cost a scan to the end each; bound the retries
_MAX_JOINED_BOXES = 10
_PHRASE = re.compile(r"answer\s*(?:is\b|:)|####", re.IGNORECASE)
# "or" is left out on purpose: `\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}` offers
# two forms of one answer, and the last one is taken.
_BOX_SEPARATOR = re.compile(
    r"(?:[\s,;$]|\\[()\[\]]|\\q?quad|\\text\{\s*and\s*\}|\band\b)*")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?(?!\w)")
_LAST_IS = re.compile(r".*\s(?:is|are|equals)\s+", re.S)
_MATH_SPANS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def extract_answer(text: str) -> str | None:
    """The final answer of ``text`` as a string, or None when it has none."""
    if not text:
        return None
    close = text.rfind("</think>")
    if close >= 0:
        answer = _search(text[close + len("</think>"):])
        if answer is not None:
            return answer
        text = text[:close].replace("<think>", "", 1)
    return _search(text)


def _search(text: str) -> str | None:
    box = _last_boxed(text)
    if box is None and any(cmd in text for cmd in _BOX_COMMANDS):
        return None  # only unclosed boxes: a truncated answer, not one to guess at
    phrase = _last_phrase(text)
    if box is not None and phrase is not None and phrase[0] > box[0] and _looks_like_answer(phrase[1]):
        box = None  # "The final answer is ..." after the boxes is the final word
    candidates = (box and box[1], phrase and phrase[1], _last_math_span(text), _last_number(text))
    for answer in candidates:
        if answer is not None:
            answer = _clean(answer)
            if answer:
                return answer
    return None


def _looks_like_answer(text: str) -> bool:
    return any(ch.isdigit() or ch in "\\$" for ch in text)


def _clean(answer: str) -> str:
    answer = strip_delimiters(answer.strip())
    answer = answer.replace("**", "").replace("__", "") if "**" in answer or "__" in answer else answer
    return strip_delimiters(answer.rstrip(" .").strip())


# --- boxes ---------------------------------------------------------------------------------

def _last_boxed(text: str) -> tuple[int, str] | None:
    """(end of the last closed box, its content joined with the boxes listed before it)."""
    end = len(text)
    for _ in range(_MAX_BOXES_TRIED):
        box = _previous_box(text, end)
        if box is None:
            return None
        start, stop, content = box
        if content is not None:
            return stop, ", ".join(_join_preceding_boxes(text, start, content))
        end = start
    return None


def _previous_box(text: str, end: int) -> tuple[int, int, str | None] | None:
    """The last box command starting before ``end``: (start, stop, content or None)."""
    start = max(text.rfind(cmd, 0, end) for cmd in _BOX_COMMANDS)
    if start < 0:
        return None
    command = next(cmd for cmd in _BOX_COMMANDS if text.startswith(cmd, start))
    i = start + len(command)
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        close = closing_brace(text, i)
        return (start, close + 1, text[i + 1:close]) if close > 0 else (start, start, None)
    if i > start + len(command):  # `\boxed 5`: one space-delimited token
        match = re.compile(r"[^\s$]+").match(text, i)
        if match:
            return start, match.end(), match.group()
    return start, start, None


def _join_preceding_boxes(text: str, start: int, content: str) -> list[str]:
    contents = [content]
    for _ in range(_MAX_JOINED_BOXES):
        box = _previous_box(text, start)
        if box is None or box[2] is None:
            break
        prev_start, prev_stop, prev_content = box
        if prev_stop > start or not _BOX_SEPARATOR.fullmatch(text, prev_stop, start):
            break
        contents.insert(0, prev_content)
        start = prev_start
    return contents


# --- "the answer is ..." -------------------------------------------------------------------

def _last_phrase(text: str) -> tuple[int, str] | None:
    """(start of the last answer phrase, what it announces)."""
    last = None
    for last in _PHRASE.finditer(text):
        pass
    if last is None:
        return None
    rest = text[last.end():].lstrip(" \t:*")
    answer = _leading_math_span(rest) or _first_sentence(rest)
    return (last.start(), answer) if answer else None


def _leading_math_span(text: str) -> str | None:
    for left, right in _MATH_SPANS:
        if text.startswith(left):
            close = _find_unescaped(text, right, len(left))
            if close > len(left):
                return text[len(left):close]
    return None


def _first_sentence(text: str) -> str | None:
    line = text.split("\n", 1)[0]
    for i, ch in enumerate(line):
        # A period ends the sentence unless it is a decimal point (3.5).
        if ch == "." and (i + 1 == len(line) or not line[i + 1].isdigit()):
            line = line[:i]
            break
    line = _LAST_IS.sub("", line, count=1)  # "The largest $n$ is 34" -> "34"
    return line.strip() or None


def _find_unescaped(text: str, token: str, start: int) -> int:
    """First ``token`` at or after ``start`` not preceded by a backslash (``\\$`` is a dollar)."""
    i = text.find(token, start)
    while i > 0 and text[i - 1] == "\\" and token.startswith("$"):
        i = text.find(token, i + 1)
    return i


# --- fallbacks -----------------------------------------------------------------------------

def _last_math_span(text: str) -> str | None:
    """Content of the math span that ends last in ``text``."""
    best_end, best = -1, None
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        close = text.rfind(right)
        open_ = text.rfind(left, 0, close) if close > 0 else -1
        if open_ >= 0 and close > best_end:
            best_end, best = close, text[open_ + 2:close]
    dollar = _last_dollar_span(text)
    if dollar is not None and dollar[0] > best_end:
        best = dollar[1]
    return best


def _last_dollar_span(text: str) -> tuple[int, str] | None:
    """(end, content) of the last complete ``$...$`` or ``$$...$$`` span."""
    tokens: list[tuple[int, str]] = []  # (position, "$" or "$$") of unescaped delimiters
    i = text.find("$")
    while i >= 0:
        if i > 0 and text[i - 1] == "\\":
            i = text.find("$", i + 1)
            continue
        token = "$$" if text.startswith("$$", i) else "$"
        tokens.append((i, token))
        i = text.find("$", i + len(token))
    last = None
    opener = None
    for position, token in tokens:
        if opener is None:
            opener = (position, token)
        elif token == opener[1]:
            last = (position, text[opener[0] + len(token):position])
            opener = None
    return last


def _last_number(text: str) -> str | None:
    last = None
    for last in _NUMBER.finditer(text):
        pass
    return last.group() if last else None
