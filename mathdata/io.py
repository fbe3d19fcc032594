"""Writing JSONL files: problem sets (one `Problem.to_dict()` per line) and text corpora.

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
