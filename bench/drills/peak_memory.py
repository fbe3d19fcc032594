"""Peak memory of a command and everything it starts (a local Ray cluster, its actors, their
vLLM engine processes, the verifier pool).

    python bench/drills/peak_memory.py [--limit-gib 12] -- python launch/grpo.py --config configs/grpo_tiny.yaml

Samples the command's process tree every `--interval` seconds and prints the peak of:
  PSS  proportional set size: shared pages (torch and vLLM libraries, Ray's object store,
       weights mapped by several processes) are split among the processes that map them, so
       the sum over processes is what the job really holds. The number to compare with RAM.
  RSS  resident set size: shared pages counted in every process; an upper bound.
and the processes with the most PSS at the peak. Exit status: the command's, or 1 when the
peak PSS passes `--limit-gib`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil


def tree_memory(root: psutil.Process) -> tuple[float, float, list[tuple[float, str]]]:
    """(PSS, RSS) in bytes summed over `root` and its descendants, and PSS per process."""
    pss = rss = 0.0
    per_process = []
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
            name = " ".join(proc.cmdline()[:3])[:90] or proc.name()
        except psutil.Error:
            continue  # ended between listing and reading
        pss += info.pss
        rss += info.rss
        per_process.append((info.pss, f"{proc.pid} {name}"))
    return pss, rss, sorted(per_process, reverse=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit-gib", type=float, default=None)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to measure after --")

    began = time.monotonic()
    proc = subprocess.Popen(command)
    root = psutil.Process(proc.pid)
    peak_pss = peak_rss = 0.0
    top: list[tuple[float, str]] = []
    while proc.poll() is None:
        pss, rss, per_process = tree_memory(root)
        peak_rss = max(peak_rss, rss)
        if pss > peak_pss:
            peak_pss, top = pss, per_process[:6]
        time.sleep(args.interval)

    gib = 2**30
    print(f"\npeak memory of `{' '.join(command)[:120]}` ({time.monotonic() - began:.0f} s, exit {proc.returncode}):")
    print(f"  PSS {peak_pss / gib:.2f} GiB (shared pages split among processes), RSS {peak_rss / gib:.2f} GiB (counted per process)")
    print("  largest processes at the PSS peak:")
    for pss, name in top:
        print(f"    {pss / gib:6.2f} GiB  {name}")
    if args.limit_gib is not None:
        ok = peak_pss <= args.limit_gib * gib
        print(f"  [{'ok' if ok else 'FAIL'}] peak PSS {'within' if ok else 'over'} {args.limit_gib:g} GiB")
        if not ok:
            return 1
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
