"""Drill: 10,000 adversarial model outputs through the verifier pool (`tests/adversarial.py`:
huge numbers, deep nesting, unbalanced braces, unicode, megabyte strings, injection payloads).

    python bench/drills/verifier_fuzz.py [--count 10000] [--timeout 5] [--workers 2]

Checked, and printed: every pair gets a verdict (no crash); no batch waits longer than its
checks' timeouts allow (no hang); no injection payload ran (its marker file never appears);
no verdict from hostile output is "correct" unless the gold is the same string; the workers'
memory stays under their address-space limit (their peak RSS, sampled every 0.1 s).
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rewards.verifier import BatchVerifier, VerifierConfig  # noqa: E402
from tests.adversarial import CATEGORIES, ORDINARY, adversarial_pairs  # noqa: E402

BATCH = 100


class PeakRSS:
    """Peak resident memory of this process's children (the verifier workers), sampled."""

    def __init__(self, interval_s: float = 0.1):
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)

    def _run(self, interval_s: float) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for child in me.children(recursive=True):
                try:
                    self.peak_mb = max(self.peak_mb, child.memory_info().rss / 2**20)
                except psutil.Error:
                    pass  # a worker retired between listing and reading
            time.sleep(interval_s)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per check (the default config's)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    marker = Path(tempfile.mkdtemp(prefix="verifier-fuzz-")) / "INJECTED"
    cfg = VerifierConfig(num_workers=args.workers, timeout_s=args.timeout)
    pairs = list(adversarial_pairs(args.count, args.seed, marker))
    statuses: dict[str, Counter] = defaultdict(Counter)
    wrongly_correct = []
    worst_excess_s, worst_batch_s = -math.inf, 0.0
    began = time.perf_counter()
    with PeakRSS() as memory, BatchVerifier(cfg) as verifier:
        for start in range(0, len(pairs), BATCH):
            chunk = pairs[start : start + BATCH]
            t0 = time.perf_counter()
            verdicts = verifier.check([r for _, r, _ in chunk], [g for _, _, g in chunk])
            seconds = time.perf_counter() - t0
            timeouts = sum(v.status == "timeout" for v in verdicts)
            # A batch may take its timeouts' worth of worker time, spread over the workers,
            # plus a fixed allowance for the ordinary checks and worker restarts.
            budget = math.ceil(timeouts / args.workers) * (args.timeout + 1.0) + 30.0
            if seconds - budget > worst_excess_s:
                worst_excess_s, worst_batch_s = seconds - budget, seconds
            for (category, response, gold), verdict in zip(chunk, verdicts):
                statuses[category][verdict.status] += 1
                # Right only if the response holds some ordinary answer (possibly the gold's
                # value written another way) or the gold itself; never from the attack alone.
                if verdict.correct and gold not in response and not any(o in response for o in ORDINARY):
                    wrongly_correct.append((category, response[:80], gold[:40]))
            done = start + len(chunk)
            print(f"\r{done}/{len(pairs)} checked, {time.perf_counter() - began:.0f} s", end="", flush=True)
    total_s = time.perf_counter() - began
    print()

    limit_mb = cfg.memory_limit_mb or float("inf")
    checks = [
        ("every pair got a verdict", sum(sum(c.values()) for c in statuses.values()) == len(pairs), f"{len(pairs)} pairs"),
        ("no batch past its timeout budget (no hang)", worst_excess_s <= 0,
         f"slowest batch against its budget: {worst_batch_s:.1f} s, {-worst_excess_s:.1f} s to spare"),
        ("no injection ran", not marker.exists(), f"marker {marker} absent"),
        ("an attack alone never judged correct", not wrongly_correct,
         f"{len(wrongly_correct)} cases" + (f", e.g. {wrongly_correct[0]}" if wrongly_correct else "")),
        ("worker memory under the address-space limit", memory.peak_mb < limit_mb,
         f"peak worker RSS {memory.peak_mb:.0f} MiB, limit {limit_mb} MiB"),
    ]
    print(f"\nverifier fuzz: {len(pairs)} adversarial responses, {args.workers} workers, {args.timeout:g} s timeout, "
          f"{total_s:.0f} s ({len(pairs) / total_s:.0f} checks/s)")
    print(f"  {'category':<14}{'ok':>8}{'timeout':>9}{'error':>7}")
    for category in CATEGORIES:
        c = statuses[category]
        print(f"  {category:<14}{c['ok']:>8}{c['timeout']:>9}{c['error']:>7}")
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
