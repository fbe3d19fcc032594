"""Metrics of a run: one JSON line per logged step (metrics.jsonl) and TensorBoard events,
both in the run directory."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


class MetricsLogger:
    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = (self.run_dir / "metrics.jsonl").open("a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))

    def log(self, step: int, metrics: dict[str, Any], prefix: str = "") -> None:
        row = {"step": step, "time": time.time(), **{f"{prefix}{k}": v for k, v in metrics.items()}}
        self._jsonl.write(json.dumps(row, default=float) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for name, value in row.items():
                if name not in ("step", "time") and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(name, value, step)

    def close(self) -> None:
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.open()] if path.exists() else []
