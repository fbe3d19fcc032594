"""Misbehaving and instrumented verifiers for the verifier runtime, registry and CLI tests.

Referenced by spec ("tests.verifier_fixtures:misbehave" or "/abs/path/verifier_fixtures.py:exact"),
so worker processes import them exactly as they import a user's verifier.
"""

from __future__ import annotations

import ctypes
import os
import time
from pathlib import Path

from rewards.registry import AnswerVerifier, register_verifier


def exact(response: str, gold: str) -> bool:
    return response.strip() == gold.strip()


@register_verifier("fixture_exact")
def registered_exact(response: str, gold: str) -> bool:
    return response.strip() == gold.strip()


def hang_on_marker(response: str, gold: str) -> bool:
    """Hangs for responses containing "HANG"; otherwise exact match."""
    while "HANG" in response:
        pass
    return response == gold


def _hog_memory() -> None:
    blocks = []
    while True:  # grows until the worker's address-space limit stops it
        blocks.append(bytearray(64 * 2**20))


# What `misbehave` does for a response "<command>" or "<command>:<tag>" (tags make distinct
# cache keys); the value-returning commands cover valid and garbage return values.
_ACTIONS = {
    "hang": lambda: hang_on_marker("HANG", ""),
    "sleep": lambda: time.sleep(0.6) or True,
    "raise": lambda: int("not a number"),
    "exit": lambda: os._exit(3),
    "segfault": lambda: ctypes.string_at(0),
    "hog": _hog_memory,
    "true": lambda: True,
    "false": lambda: False,
    "half": lambda: 0.5,
    "int1": lambda: 1,
    "none": lambda: None,
    "str": lambda: "yes",
    "nan": lambda: float("nan"),
    "inf": lambda: float("inf"),
    "big": lambda: 1.5,
    "neg": lambda: -0.5,
    "list": lambda: [1],
}


def misbehave(response: str, gold: str) -> object:
    return _ACTIONS[response.split(":", 1)[0]]()


def _count_call(text: str) -> None:
    """One line per call in the file named by $VERIFIER_CALL_LOG (workers inherit the env)."""
    with Path(os.environ["VERIFIER_CALL_LOG"]).open("a") as f:
        f.write(text.replace("\n", " ") + "\n")


def _last_word(response: str) -> str | None:
    hang_on_marker("HANG" if "HANG_EXTRACT" in response else "", "")
    words = response.split()
    return words[-1] if words else None


def _counted_equal(answer: str, gold: str) -> bool:
    _count_call(answer)
    return answer == gold


# An AnswerVerifier: the answer is the last word; compare calls are logged to be counted.
counted_last_word = AnswerVerifier(extract=_last_word, compare=_counted_equal)


def counted_exact(response: str, gold: str) -> bool:
    _count_call(response)
    return response == gold


def even_length(response: str, gold: str) -> bool:
    """Right for about half of a random model's responses: gives GRPO integration tests
    groups with mixed verdicts without a model that can do math."""
    return len(response) % 2 == 0


def sabotaged_boxed(response: str, gold: str) -> object:
    """Right when the response is exactly `\\boxed{gold}`; a response carrying a sabotage tag
    plays a broken custom verifier: "RAISE" raises, "HANG" never returns, "GARBAGE" returns
    NaN instead of a score (a NaN reward that slipped through would poison the advantages)."""
    if "RAISE" in response:
        raise KeyError(response)
    if "HANG" in response:
        hang_on_marker("HANG", "")
    if "GARBAGE" in response:
        return float("nan")
    return response == f"\\boxed{{{gold}}}"
