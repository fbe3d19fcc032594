"""Run directories: the resolved config of every run is saved beside its outputs.

A run directory is reused when a run resumes, and a resumed run may change its config (more
steps, a lower learning rate). The config that ran before is not overwritten: it is kept as
config.1.yaml, config.2.yaml, ... (oldest first), and the keys that changed are printed, so
the directory still records every config its checkpoints were trained under.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mathrl.config import to_dict

CONFIG_FILE = "config.yaml"


def save_config(cfg: Any, run_dir: str | Path) -> Path:
    """Write `cfg` (a config dataclass) to run_dir/config.yaml; it reloads with `load_config`.
    A different config already there is kept under the next free config.N.yaml."""
    path = Path(run_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    if path.is_file() and (previous := path.read_text()) != text:
        kept = _next_free(path)
        path.rename(kept)
        changes = changed_keys(yaml.safe_load(previous) or {}, to_dict(cfg))
        shown = "; ".join(f"{key}: {old!r} -> {new!r}" for key, old, new in changes[:10])
        more = f"; and {len(changes) - 10} more" if len(changes) > 10 else ""
        print(f"{path}: the config differs from the one this directory ran with ({shown}{more}); that one is kept as {kept.name}")
    path.write_text(text)
    return path


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf that differs; a key on one side only
    has the value None on the other."""
    changes = []
    for key in list(old) + [k for k in new if k not in old]:
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            changes += changed_keys(a, b, f"{name}.")
        elif a != b:
            changes.append((name, a, b))
    return changes


def _next_free(path: Path) -> Path:
    n = 1
    while (candidate := path.with_name(f"{path.stem}.{n}{path.suffix}")).exists():
        n += 1
    return candidate
