"""Find the final answer in a model response or a reference solution.

Priority, applied to the text after ``</think>`` (or, if that yields nothing, to the text
inside the think block):

1. the last ``\\boxed{...}`` / ``\\boxed ...`` / ``\\fbox{...}``, braces matched by hand;
   boxes that directly precede it, separated only by commas, ``and``, ``\\quad``, math
   delimiters or a ``y_2 =``, join it (``\\boxed{2} and \\boxed{3}`` -> ``2, 3``); an unclosed box (a
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
from dataclasses import dataclass

from rewards.normalize import closing_brace, strip_delimiters

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MAX_BOXES_TRIED = 10  # unclosed boxes cost a scan to the end each; bound the retries
_MAX_JOINED_BOXES = 10
_MAX_SEPARATOR_CHARS = 80  # text between boxes that join; also bounds the regex's work
_PHRASE = re.compile(r"answer\s*(?:is\b|:)|####", re.IGNORECASE)
# "or" is left out on purpose: `\boxed{15\frac{39}{40}}, or \boxed{\frac{639}{40}}` offers
# two forms of one answer, and the last one is taken.
_BOX_SEPARATOR = re.compile(
    r"(?:[\s,;$]|\\[()\[\]]|\\q?quad|\\text\{\s*and\s*\}|\band\b"
    r"|\b[A-Za-z](?:_\{?\w+\}?)?\s*=)*")  # `\boxed{1} and y_2 = \boxed{2}`
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:/\d+)?%?(?!\w)")
_IS_WORD = re.compile(r"\s(?:is|are|equals)\s")
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


def marks_an_answer(text: str) -> bool:
    """Whether ``text`` marks its final answer (a box, "answer is"/"Answer:", "####"), as a
    reference solution does; a bare gold answer does not."""
    return any(cmd in text for cmd in _BOX_COMMANDS) or _PHRASE.search(text) is not None


def _search(text: str) -> str | None:
    box = _last_boxed(text)
    if box is None and any(cmd in text for cmd in _BOX_COMMANDS):
        return None  # only unclosed boxes: a truncated answer, not one to guess at
    phrase = _last_phrase(text)
    if box is not None and phrase is not None and phrase.start > box[0] and phrase.confident:
        box = None  # "The final answer is $10,455$" after boxed intermediate values
    if box is not None:
        return _clean(box[1]) or None  # an empty box is an empty answer, not a cue to guess
    for answer in (phrase and phrase.answer, _last_stated_result(text)):
        if answer is not None and (answer := _clean(answer)):
            return answer
    return None


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
        if not 0 <= start - prev_stop <= _MAX_SEPARATOR_CHARS or not _BOX_SEPARATOR.fullmatch(
                text, prev_stop, start):
            break
        contents.insert(0, prev_content)
        start = prev_start
    return contents


# --- "the answer is ..." -------------------------------------------------------------------

@dataclass(frozen=True)
class _Phrase:
    start: int  # where the phrase ("answer is", "Answer:", "####") begins
    answer: str
    confident: bool  # a math span or a number right after the phrase, not a sentence


def _last_phrase(text: str) -> _Phrase | None:
    last = None
    for last in _PHRASE.finditer(text):
        pass
    if last is None:
        return None
    rest = text[last.end():].lstrip(" \t:*")
    quote = next((q for q in ('\\"', '"') if rest.startswith(q)), "")  # a quoted answer
    rest = rest[len(quote):]
    span = _leading_math_span(rest)
    if span is not None:
        return _Phrase(last.start(), span, True)
    sentence = _first_sentence(rest)
    if sentence is not None and quote:
        sentence = sentence.split(quote, 1)[0].strip()
    if not sentence:
        return None
    if last.group().endswith(":"):
        sentence = _after_last_is(sentence)  # "Answer: The largest $n$ is 34" -> "34"
    confident = (sentence[0].isdigit() or sentence[0] in "-$") and not any(
        cmd in sentence for cmd in _BOX_COMMANDS)
    return _Phrase(last.start(), sentence, confident)


def _leading_math_span(text: str) -> str | None:
    """The math span ``text`` starts with, when the sentence ends right after it (in
    "$12$ and $13$" the answer is the whole sentence, not its first span)."""
    for left, right in _MATH_SPANS:
        if text.startswith(left):
            close = _find_unescaped(text, right, len(left))
            after = text[close + len(right):close + len(right) + 2]
            if close > len(left) and (not after.strip() or after[0] in ".,;\n" or after == " I"):
                return text[len(left):close]
    return None


def _first_sentence(text: str) -> str | None:
    line = text.split("\n", 1)[0]
    for i, ch in enumerate(line):
        # A period ends the sentence unless it is a decimal point (3.5).
        if ch == "." and (i + 1 == len(line) or not line[i + 1].isdigit()):
            line = line[:i]
            break
    return line.strip() or None


def _after_last_is(sentence: str) -> str:
    last = None
    for last in _IS_WORD.finditer(sentence):
        pass
    return sentence[last.end():].strip() or sentence if last else sentence


def _find_unescaped(text: str, token: str, start: int) -> int:
    """First ``token`` at or after ``start`` not preceded by a backslash (``\\$`` is a dollar)."""
    i = text.find(token, start)
    while i > 0 and text[i - 1] == "\\" and token.startswith("$"):
        i = text.find(token, i + 1)
    return i


# --- fallbacks -----------------------------------------------------------------------------

def _last_stated_result(text: str) -> str | None:
    """The last math span, or the last number if one stands after it ("... by 100%.")."""
    span, number = _last_math_span(text), _last_number(text)
    if span is None or (number is not None and number[0] > span[0]):
        return number and number[1]
    return span[1]


def _last_math_span(text: str) -> tuple[int, str] | None:
    """(end, content) of the math span that ends last in ``text``."""
    best: tuple[int, str] | None = None
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        close = text.rfind(right)
        open_ = text.rfind(left, 0, close) if close > 0 else -1
        if open_ >= 0 and (best is None or close > best[0]):
            best = close, text[open_ + 2:close]
    dollar = _last_dollar_span(text)
    if dollar is not None and (best is None or dollar[0] > best[0]):
        best = dollar
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


def _last_number(text: str) -> tuple[int, str] | None:
    last = None
    for last in _NUMBER.finditer(text):
        pass
    return (last.start(), last.group()) if last else None
