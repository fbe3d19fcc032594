"""Writing JSONL files: problem sets (one `Problem.to_dict()` per line), text corpora, and
append-only result files that a resumed run continues.

Reading problem files is `mathdata.loading`'s job. Files are written next to their final
name and renamed into place, so a crashed run never leaves half a file that looks complete.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mathdata.problems import Problem


def write_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """One JSON object per line (UTF-8, non-ASCII kept as is); creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(partial, path)
    return path


def write_problems_jsonl(problems: Iterable[Problem], path: str | Path) -> Path:
    return write_jsonl((p.to_dict() for p in problems), path)


# --- append-only result files (long evaluations that resume) -----------------------------


def append_jsonl(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Append rows to `path` and flush them to disk before returning (a crash after this
    call keeps them); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
        f.flush()
        os.fsync(f.fileno())
    return count


def repair_jsonl_tail(path: str | Path) -> int:
    """Cut a half-written last line off an append-only JSONL file (the run was killed while
    writing it), so that appending can go on; returns the number of bytes removed.

    Only the last line can be torn: it is dropped when it lacks its newline or is not valid
    JSON. A bad line before it is not a torn write, and `iter_jsonl` reports it."""
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open("rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        start = _last_line_start(f, size)
        f.seek(start)
        last = f.read(size - start)
        if last.endswith(b"\n") and _is_json_object(last):
            return 0
        f.truncate(start)
        return size - start


def iter_jsonl(path: str | Path) -> Iterable[dict[str, Any]]:
    """The objects of a JSONL file, one at a time (blank lines skipped); a line that is not a
    JSON object raises ValueError naming the file and line."""
    with Path(path).open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{line_no}: invalid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            yield row


def _last_line_start(f, size: int, block: int = 1 << 16) -> int:
    """Offset of the first byte of the file's last line (its final newline excluded), found
    by reading backwards in blocks: result lines can be megabytes long."""
    end = size - 1  # a final newline ends the last line; it does not start a new one
    while end > 0:
        begin = max(0, end - block)
        f.seek(begin)
        cut = f.read(end - begin).rfind(b"\n")
        if cut >= 0:
            return begin + cut + 1
        end = begin
    return 0


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
