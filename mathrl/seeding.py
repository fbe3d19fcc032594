"""Deterministic seeds derived from labels, identical in every process and Python session
(unlike `hash()`, which is randomised per process for strings)."""

from __future__ import annotations

import hashlib


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any labels, the same in every process."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")
