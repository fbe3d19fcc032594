"""Run directories: the resolved config of every run is saved beside its outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mathrl.config import to_dict


def save_config(cfg: Any, run_dir: str | Path) -> Path:
    """Write `cfg` (a config dataclass) to run_dir/config.yaml; it reloads with `load_config`."""
    path = Path(run_dir) / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path
