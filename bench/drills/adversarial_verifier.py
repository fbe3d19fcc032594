"""Drill: 10,000 adversarial model outputs through the real verifier pool.

    python bench/drills/adversarial_verifier.py [--count 10000] [--seed 0]

The outputs come from `bench/drills/adversarial_inputs.py` (huge numbers, deep nesting,
unbalanced braces, many boxes, unicode, megabyte strings, regex and sympy bombs, injection
payloads, junk, mixed with ordinary answers), each graded against its gold by a
`BatchVerifier` running the "math" verifier with the default `VerifierConfig` (its
timeout, workers and memory limit). Each response is its own `check` call, so a call's
wall time is that check's latency as the caller sees it (extraction and comparison
included). A thread samples the RSS of the pool's worker processes every 0.2 s.

Checked, and printed: no `check` call raised; every verdict is ok/timeout/error with a
score in [0, 1], 0 unless ok; garbage scored 0 and ordinary answers were graded right;
no check took longer than the timeout plus `--slack`; no injection payload left its
marker file; the workers' peak RSS stayed under `--max-worker-rss-mb`; the pool still
grades an ordinary answer at the end and leaves no process behind once closed.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.drills.adversarial_inputs import CATEGORIES, Case, adversarial_responses  # noqa: E402
from rewards.verifier import BatchVerifier, Verdict, VerifierConfig  # noqa: E402

STATUSES = ("ok", "timeout", "error")
_MAX_CONSECUTIVE_CRASHES = 10  # a pool that raises on every call is broken: stop early


class WorkerRss(threading.Thread):
    """Peak RSS of the verifier pool's workers (this process's spawned children; the
    multiprocessing resource tracker, a child too, is left out), sampled."""

    def __init__(self, interval_s: float = 0.2) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.interval_s = interval_s
        self.peak_worker = 0  # bytes, the largest single worker seen
        self.peak_total = 0  # bytes, all workers together
        self.pids: set[int] = set()
        self._stop_event = threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self._stop_event.wait(self.interval_s):
            total = 0
            for child in me.children(recursive=True):
                try:
                    if not is_worker(child):
                        continue
                    rss = child.memory_info().rss
                except psutil.Error:  # exited between listing and reading
                    continue
                self.pids.add(child.pid)
                self.peak_worker = max(self.peak_worker, rss)
                total += rss
            self.peak_total = max(self.peak_total, total)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def is_worker(proc: psutil.Process) -> bool:
    return "spawn_main" in " ".join(proc.cmdline())


@dataclass
class Tally:
    """What the run saw, per category and overall."""

    latencies: list[float] = field(default_factory=list)
    by_category: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    max_latency: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    slowest: list[tuple[float, Case, Verdict]] = field(default_factory=list)
    failure_kinds: Counter = field(default_factory=Counter)
    malformed: list[str] = field(default_factory=list)  # verdicts breaking the contract
    misjudged: list[str] = field(default_factory=list)  # garbage scored > 0, ordinary graded wrong
    crashes: list[str] = field(default_factory=list)  # exceptions out of check()

    def add(self, case: Case, verdict: Verdict, seconds: float) -> None:
        self.latencies.append(seconds)
        self.by_category[case.category][verdict.status] += 1
        self.max_latency[case.category] = max(self.max_latency[case.category], seconds)
        self.slowest = sorted([*self.slowest, (seconds, case, verdict)], key=lambda x: -x[0])[:5]
        if verdict.status != "ok":
            self.failure_kinds[f"{verdict.status}: {(verdict.error or '').split(':', 1)[0][:60]}"] += 1
        if verdict.status not in STATUSES or not 0.0 <= verdict.score <= 1.0 or (verdict.status != "ok" and verdict.score):
            self.malformed.append(f"case {case.index}: {verdict}")
        if (case.expect is False and verdict.score > 0) or (case.expect is True and not verdict.correct):
            self.misjudged.append(f"case {case.index} ({case.category}, {case.wrap}): expected "
                                  f"{'correct' if case.expect else 'score 0'}, got {verdict.status} score {verdict.score}; "
                                  f"response {case.response[:80]!r}, gold {case.gold!r}")


def run(count: int, seed: int, cfg: VerifierConfig, marker_dir: Path, tally: Tally, rss: WorkerRss) -> tuple[bool, list[int]]:
    """Check every case, one `check` call each; returns (the pool still grades after it all,
    pids of processes left behind after close)."""
    started = time.monotonic()
    with BatchVerifier(cfg) as verifier:
        rss.start()
        # Workers start in the background and parse their first LaTeX slowly (lazy imports,
        # the grammar's tables): not a latency to report. Two checks, one per worker.
        verifier.check(["\\boxed{\\frac{1}{2}}", "\\boxed{2\\sqrt{2}}"], ["0.5", "\\sqrt{8}"])
        consecutive_crashes = 0
        for case in adversarial_responses(count, seed, marker_dir):
            t0 = time.perf_counter()
            try:
                [verdict] = verifier.check([case.response], [case.gold])
            except Exception as err:  # noqa: BLE001 - a crash is what the drill looks for
                tally.crashes.append(f"case {case.index} ({case.category}): {type(err).__name__}: {err}")
                consecutive_crashes += 1
                if consecutive_crashes >= _MAX_CONSECUTIVE_CRASHES:
                    break
                continue
            consecutive_crashes = 0
            tally.add(case, verdict, time.perf_counter() - t0)
            if (case.index + 1) % 500 == 0:
                print(f"  {case.index + 1}/{count} checked, {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        healthy = [v.correct for v in verifier.check(["So the answer is \\boxed{\\frac{1}{2}}.", "\\boxed{3}"], ["0.5", "4"])]
        pool = [p for p in psutil.Process().children(recursive=True) if is_worker(p)]
    rss.stop()
    _, alive = psutil.wait_procs(pool, timeout=5)
    return healthy == [True, False], [p.pid for p in alive]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def print_table(tally: Tally) -> None:
    header = f"  {'category':<14}{'checks':>8}{'ok':>8}{'timeout':>9}{'error':>7}{'max s':>9}"
    print(header)
    print("  " + "-" * (len(header) - 2))
    totals = Counter()
    for category in CATEGORIES:
        counts = tally.by_category.get(category, Counter())
        totals.update(counts)
        print(f"  {category:<14}{sum(counts.values()):>8}" + "".join(f"{counts[s]:>{w}}" for s, w in zip(STATUSES, (8, 9, 7)))
              + f"{tally.max_latency.get(category, 0.0):>9.2f}")
    print("  " + "-" * (len(header) - 2))
    print(f"  {'all':<14}{sum(totals.values()):>8}" + "".join(f"{totals[s]:>{w}}" for s, w in zip(STATUSES, (8, 9, 7)))
          + f"{max(tally.latencies, default=0.0):>9.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=10_000, help="adversarial responses to check")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slack", type=float, default=2.0,
                        help="seconds a check may take beyond the verifier timeout (killing and replacing a worker)")
    parser.add_argument("--max-worker-rss-mb", type=int, default=1024, help="bound on any one worker's peak RSS")
    args = parser.parse_args()
    # The drill tabulates timeouts and errors itself; the pool's per-batch warnings would be
    # one line per pathological case.
    logging.getLogger("rewards.verifier").setLevel(logging.ERROR)

    cfg = VerifierConfig()  # the defaults a job gets: "math", their timeout, workers and memory limit
    load_before = os.getloadavg()[0]
    tally = Tally()
    rss = WorkerRss()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="adversarial-verifier-") as tmp:
        marker_dir = Path(tmp)
        healthy, left_behind = run(args.count, args.seed, cfg, marker_dir, tally, rss)
        markers = sorted(p.name for p in marker_dir.iterdir())
    wall = time.monotonic() - t0

    lat = tally.latencies
    bound = cfg.timeout_s + args.slack
    over = [s for s in lat if s > bound]
    checks = [
        ("no check call raised", not tally.crashes, "; ".join(tally.crashes[:3]) or f"{len(lat)} calls"),
        ("every case got a verdict", len(lat) == args.count, f"{len(lat)} of {args.count}"),
        ("verdicts well-formed (ok/timeout/error, score in [0, 1], 0 unless ok)", not tally.malformed,
         "; ".join(tally.malformed[:3]) or "all"),
        ("garbage scored 0, ordinary answers graded right", not tally.misjudged,
         f"{len(tally.misjudged)} misjudged: " + "; ".join(tally.misjudged[:3]) if tally.misjudged else "all"),
        (f"no check took longer than timeout + slack ({bound:g} s)", not over,
         f"max {max(lat, default=0):.2f} s, p99 {percentile(lat, 0.99):.3f} s" + (f"; {len(over)} over" if over else "")),
        ("no injection marker file", not markers, ", ".join(markers[:5]) or "marker dir empty"),
        (f"peak worker RSS under {args.max_worker_rss_mb} MB", rss.peak_worker < args.max_worker_rss_mb * 2**20,
         f"peak {rss.peak_worker / 2**20:.0f} MB per worker, {rss.peak_total / 2**20:.0f} MB all workers"),
        ("the pool still grades ordinary answers at the end", healthy, "ok" if healthy else "wrong verdicts"),
        ("no worker left behind after close", not left_behind, f"alive: {left_behind}" if left_behind else "none"),
    ]

    print(f"\nadversarial verifier drill: {len(lat)} responses (seed {args.seed}), verifier {cfg.verifier!r}, "
          f"timeout {cfg.timeout_s:g} s, {cfg.num_workers} workers, memory limit {cfg.memory_limit_mb} MB")
    print(f"  wall {wall:.0f} s ({len(lat) / wall:.1f} checks/s); latency p50 {percentile(lat, 0.5) * 1e3:.1f} ms, "
          f"p99 {percentile(lat, 0.99) * 1e3:.0f} ms, max {max(lat, default=0):.2f} s")
    print(f"  worker processes seen: {len(rss.pids)} (the pool's {cfg.num_workers} plus replacements); "
          f"machine load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end ({os.cpu_count()} CPUs)")
    print_table(tally)
    if tally.failure_kinds:
        print("  non-ok verdicts: " + ", ".join(f"{kind} x{n}" for kind, n in tally.failure_kinds.most_common(6)))
    print("  slowest: " + "; ".join(f"{s:.2f} s #{c.index} {c.category}/{c.wrap} {v.status} ({len(c.response):,} chars "
                                    f"{c.response[:40]!r})" for s, c, v in tally.slowest))
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
