"""Drill: the GRPO job killed mid-run, twice, while checkpoints are being written; each rerun
resumes from the last complete checkpoint, and the run ends exactly as an uninterrupted one.

    python bench/drills/driver_kill.py [--policy runs/sft_tiny/final] [--steps 5]

Runs of `launch/grpo.py` on the tiny default (a checkpoint after every step), each in a
process session of its own:
  A    uninterrupted, `--steps` steps;
  B    the same job; its driver alone is SIGKILLed the moment a checkpoint directory starts
       being written (`.step_*.partial`) after the first complete one. The local Ray
       cluster it started (GCS, raylet, actors, vLLM engines) must exit by itself;
  B'   the same command: resumes; then the whole job (driver and everything it started) is
       SIGKILLed at once during the next checkpoint write, as when the machine dies,
       leaving that checkpoint half written;
  B''  the same command again: must resume from the checkpoint before the half-written one
       and run to the end.
Checked, and printed: the above, and that every step after the first resume drew the same
problems with the same results (count, rollout accuracy, reward, loss) as run A's, and B's
final weights equal A's — data position, sampling seeds and the learner's state (weights,
optimizer, RNG) continued as if nothing had happened. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mathrl.metrics import read_metrics  # noqa: E402
from policy.learner import CHECKPOINT_PREFIX, latest_checkpoint  # noqa: E402

# Compared between the runs step by step: what was drawn and what the update did.
STEP_KEYS = ("groups/drawn", "groups/kept", "rollout/accuracy", "rollout/response_length", "reward/mean", "learner/loss")


def grpo_command(policy: str, run_dir: Path, steps: int) -> list[str]:
    return [
        sys.executable, str(ROOT / "launch" / "grpo.py"), "--config", str(ROOT / "configs" / "grpo_tiny.yaml"),
        f"policy_path={policy}", "reward.shaping.mode=verifier-only", "reward.model_path=null",
        "rollout.max_tokens=128", "batch.groups_per_step=4", "batch.problems_per_draw=16", "batch.max_draws=3",
        "eval.data=null", f"run.run_dir={run_dir}", f"run.steps={steps}", "run.save_every=1", "run.eval_every=0",
        "run.keep_checkpoints=3",
    ]  # fmt: skip


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    # A session of its own: the drill can find (and finally clean up) everything the job started.
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def run_to_end(cmd: list[str], log: Path, timeout_s: float) -> None:
    proc = start(cmd, log)
    try:
        if proc.wait(timeout=timeout_s) != 0:
            raise SystemExit(f"{' '.join(cmd[:3])} failed with exit code {proc.returncode}; see {log}")
    finally:
        kill_session(proc.pid)


def kill_session(sid: int) -> list[str]:
    """SIGKILL whatever is left of a session; returns what was still alive."""
    survivors = []
    for proc in psutil.process_iter(["pid", "name"]):
        try:
            if os.getsid(proc.pid) == sid and proc.pid != os.getpid():
                survivors.append(f"{proc.info['name']} (pid {proc.pid})")
                proc.kill()
        except (ProcessLookupError, psutil.Error):
            pass
    return survivors


def kill_while_checkpointing(
    cmd: list[str], checkpoints: Path, log: Path, timeout_s: float, whole_job: bool
) -> tuple[list[psutil.Process], str, list[str]]:
    """Run the job; when a checkpoint directory starts being written after one more complete
    checkpoint exists than before, SIGKILL the driver alone or, with `whole_job`, the driver
    and every process it started (Ray's GCS, raylet, agents, actors and their vLLM engines)
    at once, as when the machine dies. Returns the job's processes at the kill, the
    checkpoint that was being written and the checkpoints complete at that moment."""
    before = complete_checkpoints(checkpoints)
    proc = start(cmd, log)
    driver = psutil.Process(proc.pid)
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if proc.poll() is not None:
            raise SystemExit(f"the job ended (exit {proc.returncode}) before the checkpoint to kill in; see {log}")
        done = complete_checkpoints(checkpoints)
        if len(done) > len(before):
            partial = [p.name for p in checkpoints.iterdir() if p.name.endswith(".partial")]
            if partial:
                tree = [driver, *driver.children(recursive=True)]
                for victim in tree if whole_job else [driver]:
                    with contextlib.suppress(psutil.Error):
                        victim.kill()
                proc.wait()
                return tree, partial[0], done
        time.sleep(0.002)
    kill_session(proc.pid)
    raise SystemExit(f"no checkpoint write seen within {timeout_s:.0f} s; see {log}")


def complete_checkpoints(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(CHECKPOINT_PREFIX)) if root.is_dir() else []


def wait_until_gone(procs: list[psutil.Process], limit_s: float) -> tuple[float, list[str]]:
    """Seconds until none of `procs` is left (or `limit_s`), and what had to be killed then."""
    began = time.monotonic()
    while time.monotonic() - began < limit_s:
        if not any(map(alive, procs)):
            return time.monotonic() - began, []
        time.sleep(0.5)
    left = [p for p in procs if alive(p)]
    names = [f"{p.name()} (pid {p.pid})" for p in left]
    for p in left:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return limit_s, names


def alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def resumed_step(log: Path) -> int | None:
    line = next((x for x in log.read_text().splitlines() if x.startswith("resumed at step")), None)
    return int(line.split()[3]) if line else None


def step_rows(run_dir: Path) -> dict[int, dict[str, float]]:
    return {m["step"]: {k: m.get(k) for k in STEP_KEYS} for m in read_metrics(run_dir) if "groups/drawn" in m}


def final_weight_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    wa, wb = load_file(a / "final" / "model.safetensors"), load_file(b / "final" / "model.safetensors")
    return max(float((wa[k] - wb[k]).abs().max()) for k in wa)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="runs/sft_tiny/final", help="starting policy (default: the tiny SFT model)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900, help="seconds per run")
    args = parser.parse_args()
    if not (ROOT / args.policy / "config.json").is_file():
        raise SystemExit(f"no policy at {args.policy}: run the tiny pipeline first (make run) or pass --policy")

    work = Path(tempfile.mkdtemp(prefix="driver-kill-"))
    a_dir, b_dir = work / "uninterrupted", work / "killed"
    checks: list[tuple[str, bool, str]] = []

    t0 = time.monotonic()
    run_to_end(grpo_command(args.policy, a_dir, args.steps), work / "a.log", args.timeout)
    a_seconds = time.monotonic() - t0

    # B: the driver alone is killed while a checkpoint is written; its learner actor may still
    # finish that write. B': the whole job dies at the next checkpoint write, leaving it half
    # written. B'': runs to the end. Each rerun must resume from the newest complete checkpoint.
    cmd_b, b_checkpoints = grpo_command(args.policy, b_dir, args.steps), b_dir / "checkpoints"
    tree, writing, done = kill_while_checkpointing(cmd_b, b_checkpoints, work / "b.log", args.timeout, whole_job=False)
    seconds, survivors = wait_until_gone(tree, limit_s=120)
    # Ray's GCS and raylet die with the driver; its dashboard and runtime-env agents give up
    # reconnecting to the GCS after about a minute.
    checks.append(("driver killed: its Ray cluster, actors and engines exit by themselves", not survivors,
                   f"all {len(tree)} processes gone {seconds:.0f} s after the driver" if not survivors
                   else "still alive after 120 s (killed): " + ", ".join(survivors)))
    tree, writing, done = kill_while_checkpointing(cmd_b, b_checkpoints, work / "b_resumed_1.log", args.timeout, whole_job=True)
    wait_until_gone(tree, limit_s=10)
    first_resume = resumed_step(work / "b_resumed_1.log")
    on_disk = sorted(p.name for p in b_checkpoints.iterdir())
    checks.append(("resumed from the last complete checkpoint after the driver kill",
                   first_resume is not None, f"resumed at step {first_resume}"))
    newest = latest_checkpoint(b_checkpoints)
    half_written = writing.removeprefix(".").removesuffix(".partial")
    checks.append(("whole job killed mid-write: the half-written checkpoint is left aside",
                   writing in on_disk and newest is not None and newest.name != half_written and newest.name == done[-1],
                   f"killed while writing {writing}; on disk {on_disk}; newest complete {newest.name if newest else None}"))

    t0 = time.monotonic()
    run_to_end(cmd_b, work / "b_resumed_2.log", args.timeout)
    resume_seconds = time.monotonic() - t0
    resumed = resumed_step(work / "b_resumed_2.log")
    expected = int(done[-1][len(CHECKPOINT_PREFIX):])
    checks.append(("resumed from the checkpoint before the half-written one", resumed == expected,
                   f"resumed at step {resumed}, newest complete was {done[-1]}"))

    a_rows, b_rows = step_rows(a_dir), step_rows(b_dir)
    after = [s for s in sorted(a_rows) if s > (first_resume or 0)]
    same = all(a_rows[s] == b_rows.get(s) for s in after)
    checks.append((f"steps {after} identical to the uninterrupted run's", same and bool(after),
                   "; ".join(f"step {s}: drawn {b_rows.get(s, {}).get('groups/drawn')} loss {b_rows.get(s, {}).get('learner/loss')}" for s in after)))
    diff = final_weight_diff(a_dir, b_dir)
    checks.append(("final weights equal the uninterrupted run's", diff < 1e-5, f"max |Δw| = {diff:.2e}"))

    print(f"\ndriver-kill drill ({args.steps} steps; work dir {work})")
    print(f"  uninterrupted run: {a_seconds:.0f} s; last resumed run: {resume_seconds:.0f} s")
    for name, ok, detail in checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {name}: {detail}")
    print(json.dumps({"steps": {s: {"uninterrupted": a_rows[s], "resumed": b_rows.get(s)} for s in after}}, indent=1))
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
