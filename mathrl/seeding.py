"""Deterministic seeds derived from labels, identical in every process and Python session
(unlike `hash()`, which is randomised per process for strings)."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any labels, the same in every process."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def problem_seed(seed: int, problem_id: str) -> int:
    """A 32-bit sampling seed that depends only on the run's seed and the problem's id, so a
    problem's samples do not depend on chunking, order or what was sampled before it."""
    return zlib.crc32(f"{seed}:{problem_id}".encode())


def problem_seeds(seed: int, problems: Iterable) -> list[int]:
    """`problem_seed` of each problem (anything with an `id`), in order: the `seeds` argument of
    `RolloutEngine.generate` for one seeded request per problem."""
    return [problem_seed(seed, problem.id) for problem in problems]
