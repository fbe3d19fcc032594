"""Misbehaving and instrumented verifiers for the verifier runtime tests.

Referenced by spec, e.g. "tests.verifier_fixtures:hang" or "/abs/path/verifier_fixtures.py:hang",
so worker processes import them exactly as they would import a user's verifier.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rewards.registry import AnswerVerifier


def exact(response: str, gold: str) -> bool:
    return response.strip() == gold.strip()


def hang(response: str, gold: str) -> bool:
    while True:
        pass


def hang_on_marker(response: str, gold: str) -> bool:
    """Hangs only for responses containing "HANG", so one batch can mix both."""
    while "HANG" in response:
        pass
    return response == gold


def sleep_one_second(response: str, gold: str) -> bool:
    time.sleep(1.0)
    return True


def raise_value_error(response: str, gold: str) -> bool:
    raise ValueError(f"cannot parse {response!r}")


def exit_process(response: str, gold: str) -> bool:
    os._exit(3)


def hog_memory(response: str, gold: str) -> bool:
    blocks = []
    while True:  # grows until the worker's address-space limit stops it
        blocks.append(bytearray(64 * 2**20))


def garbage(response: str, gold: str) -> object:
    """Returns the value named by the response: each must be rejected as a score."""
    return {"none": None, "str": "yes", "nan": float("nan"), "inf": float("inf"), "big": 1.5, "neg": -0.5,
            "list": [1], "half": 0.5, "true": True, "int1": 1}[response]


def _count_call(response: str) -> None:
    """Append one line per call to the file named by $VERIFIER_CALL_LOG (workers inherit the env)."""
    with Path(os.environ["VERIFIER_CALL_LOG"]).open("a") as f:
        f.write(response.replace("\n", " ") + "\n")


def _last_word(response: str) -> str | None:
    words = response.split()
    return words[-1] if words else None


def _counted_equal(answer: str, gold: str) -> bool:
    _count_call(answer)
    return answer == gold


# An AnswerVerifier: "the answer is X" -> X; compare calls are logged so tests can count them.
counted_last_word = AnswerVerifier(extract=_last_word, compare=_counted_equal)


def counted_exact(response: str, gold: str) -> bool:
    _count_call(response)
    return response == gold
