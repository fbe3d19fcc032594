"""Answer checking: our rule-based checker against math-verify on the same labelled cases.

    python bench/verifier.py [--timeout-s 5] [--out runs/bench/verifier] [--skip-mathverify]

Cases: bench/data/verifier_cases.jsonl (sources and labelling policy in bench/data/README.md).
Each case has a gold and either a full `response` (the checker extracts the answer) or a
bare `answer`. Systems, all on the same cases:

- ours, direct: `math_verifier(response, gold)` / `answers_equivalent(answer, gold)` called
  in one worker process (bench/verifier_pool.py: latency timed around the call, a hard
  per-check limit).
- ours, BatchVerifier: what the reward stage runs, `BatchVerifier.check` /
  `check_answers` with 2 worker processes and the cache off (`cache_size=0`; all
  (text, gold) pairs are distinct, so nothing is skipped). Timed end to end per batch.
- math-verify 1 and 2 processes, `parse` defaults (bench/verifier_mathverify_runner.py in
  its own virtualenv, bench/.venv-mathverify, created here on first use), plus its README's
  reward configuration on 2 processes.

Reported: accuracy, false accepts (label false, judged correct), false rejects, timeouts,
errors, checks per second, p50/p99 latency; accuracy per family; throughput ratios; and a
stress section of pathological inputs where only timeouts and hangs matter. Every case a
system gets wrong is listed in OUT/wrong_cases.md.

Worker start-up and a warm-up call are excluded from all timings. Both sides run the same
number of processes where compared, on a machine whose other load is not controlled:
compare ratios from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from verifier_pool import run_tasks

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CASES = BENCH / "data" / "verifier_cases.jsonl"
MV_VENV = BENCH / ".venv-mathverify"
# The extra pins the antlr4 runtime its README recommends; math-verify 0.9.0 no longer declares it (pip
# warns) and gets antlr4 4.13.2 through latex2sympy2_extended anyway. Kept for older releases.
MV_PACKAGE = "math-verify[antlr4_13_2]"
MV_RUNNER = BENCH / "verifier_mathverify_runner.py"
WORKERS = 2  # the BatchVerifier default, and the cores of the reference machine
MEMORY_LIMIT_MB = 2048  # per worker, both sides (VerifierConfig's default)
HANG_SLACK_S = 2.0  # a check returning this long after its limit counts as a hang


# --- cases -------------------------------------------------------------------------------


def load_cases(path: Path) -> list[dict[str, Any]]:
    cases = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    ids, pairs = set(), set()
    for c in cases:
        assert {"id", "gold", "label", "family", "source", "note"} <= c.keys(), c.get("id")
        assert ("answer" in c) != ("response" in c), f"{c['id']}: needs exactly one of answer/response"
        assert c["id"] not in ids, f"duplicate id {c['id']}"
        pair = (c["gold"], c.get("answer"), c.get("response"))
        assert pair not in pairs, f"{c['id']}: duplicate (gold, text) pair"
        ids.add(c["id"])
        pairs.add(pair)
    return cases


def stress_cases() -> list[dict[str, Any]]:
    """Pathological inputs: what matters is that each check ends within the limit."""
    deep = 5000
    rows = [
        ("power tower", "1", {"answer": "10^{10^{10^{10}}}"}, False),
        ("power tower vs itself", "10^{10^{10^{10}}}", {"answer": "10^{10^{10^{10}}}"}, True),
        ("huge power minus itself", "0", {"answer": "10^{10^{10}} - 10^{10^{10}}"}, True),
        ("2^2^2^2^2^2", "1", {"answer": "2^{2^{2^{2^{2^{2}}}}}"}, False),
        ("huge factorial", "1", {"answer": "(10^{8})!"}, False),
        ("huge binomial", "1", {"answer": "\\binom{10^{9}}{5 \\cdot 10^{8}}"}, False),
        ("(x+1)^1000 expanded vs factored", "(x+1)^{1000}", {"answer": "(1+x)^{1000}"}, True),
        ("50k-char sum", "25000", {"answer": "+".join(["1"] * 25000)}, True),
        ("50k-digit number", "1", {"answer": "9" * 50000}, False),
        ("50k-char response", "7", {"response": "Let us think. " * 3600 + "So the answer is $\\boxed{7}$."}, True),
        (f"{deep}-deep parentheses", "1", {"answer": "(" * deep + "1" + ")" * deep}, True),
        (f"{deep}-deep fractions", "1", {"answer": "\\frac{1}{" * deep + "1" + "}" * deep}, True),
        (f"{deep}-deep square roots", "1", {"answer": "\\sqrt{" * deep + "1" + "}" * deep}, True),
        (f"{deep}-deep braces", "1", {"answer": "{" * deep + "1" + "}" * deep}, True),
        (f"{deep} unclosed boxes", "1", {"response": "\\boxed{" * deep + "1"}, False),
        ("5000-tuple", "(" + ",".join(map(str, range(5000))) + ")",
         {"answer": "(" + ",".join(map(str, range(5000))) + ")"}, True),
    ]
    return [{"id": f"stress-{i:02d}", "name": name, "gold": gold, **text, "label": label,
             "family": "stress", "source": "generated", "note": ""}
            for i, (name, gold, text, label) in enumerate(rows, 1)]


# --- ours ----------------------------------------------------------------------------------


def direct_check(task: dict[str, Any]) -> dict[str, Any]:
    """One case through our pure functions; runs in a verifier_pool worker."""
    from rewards.math_equivalence import answers_equivalent, math_verifier

    if "response" in task:
        # (no extract_answer call here: it would double the extraction inside the timing)
        return {"correct": bool(math_verifier(task["response"], task["gold"])), "extracted": None}
    return {"correct": bool(answers_equivalent(task["answer"], task["gold"])), "extracted": task["answer"]}


def run_ours_direct(cases: list[dict[str, Any]], timeout_s: float) -> dict[str, Any]:
    tasks = [{k: c[k] for k in ("gold", "answer", "response") if k in c} for c in cases]
    warmup = [{"gold": "\\frac{1}{2}", "answer": "0.5"}, {"gold": "(1,2]", "response": "so \\boxed{(1,2]}"}]
    results, wall = run_tasks("verifier:direct_check", tasks, 1, timeout_s, warmup, MEMORY_LIMIT_MB)
    return {"results": results, "wall_s": wall, "workers": 1}


def run_ours_batch(cases: list[dict[str, Any]], timeout_s: float, per_case: bool = False) -> dict[str, Any]:
    """BatchVerifier, answers and responses as two batches (or one call per case for stress)."""
    from rewards.verifier import BatchVerifier, VerifierConfig

    cfg = VerifierConfig(verifier="math", num_workers=WORKERS, timeout_s=timeout_s, cache_size=0,
                         memory_limit_mb=MEMORY_LIMIT_MB)
    results: list[dict[str, Any] | None] = [None] * len(cases)
    with BatchVerifier(cfg) as verifier:
        verifier.check(["so \\boxed{(1,2]}", "\\boxed{3}"], ["(1,2]", "3"])  # workers up, imports done
        verifier.check_answers(["0.5"], ["\\frac{1}{2}"])
        groups = [[i] for i in range(len(cases))] if per_case else [
            [i for i, c in enumerate(cases) if "answer" in c], [i for i, c in enumerate(cases) if "response" in c]]
        wall = 0.0
        for idx in groups:
            if not idx:
                continue
            golds = [cases[i]["gold"] for i in idx]
            start = time.perf_counter()
            if "answer" in cases[idx[0]]:
                verdicts = verifier.check_answers([cases[i]["answer"] for i in idx], golds)
            else:
                verdicts = verifier.check([cases[i]["response"] for i in idx], golds)
            elapsed = time.perf_counter() - start
            wall += elapsed
            for i, v in zip(idx, verdicts):
                results[i] = {"correct": v.correct, "status": v.status, "extracted": v.extracted,
                              "latency_s": elapsed if per_case else None}
        metrics = verifier.metrics()
    return {"results": results, "wall_s": wall, "workers": WORKERS, "metrics": metrics}


# --- math-verify -------------------------------------------------------------------------


def ensure_mathverify_venv() -> Path:
    """bench/.venv-mathverify with math-verify from the registry; a second call only checks."""
    python = MV_VENV / "bin" / "python"
    stamp = MV_VENV / ".installed"
    if stamp.exists() and python.exists():
        return python
    print(f"creating {MV_VENV.relative_to(ROOT)} and installing {MV_PACKAGE} ...", flush=True)
    if not python.exists():
        subprocess.run(["python3.11", "-m", "venv", str(MV_VENV)], check=True)
    # Keep the virtualenv out of git status without touching the repository's .gitignore.
    (MV_VENV / ".gitignore").write_text("*\n")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", MV_PACKAGE], check=True)
    subprocess.run([str(python), "-c", "import math_verify"], check=True)
    stamp.write_text(MV_PACKAGE + "\n")
    return python


def run_mathverify(python: Path, cases_path: Path, out: Path, workers: int, timeout_s: float,
                   config: str = "default") -> dict[str, Any]:
    # math-verify prints every parse timeout with the whole input: keep that out of the report.
    with open(out.with_suffix(".log"), "w") as log:
        subprocess.run([str(python), str(MV_RUNNER), "--cases", str(cases_path), "--out", str(out),
                        "--workers", str(workers), "--timeout-s", str(timeout_s), "--config", config,
                        "--memory-limit-mb", str(MEMORY_LIMIT_MB)], check=True, stdout=log, stderr=subprocess.STDOUT)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    summary = rows.pop()["summary"]
    return {"results": rows, "wall_s": summary["wall_s"], "workers": workers}


# --- scoring and printing ----------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)  # nearest rank
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def score(cases: list[dict[str, Any]], run: dict[str, Any]) -> dict[str, Any]:
    res = run["results"]
    wrong = [c["id"] for c, r in zip(cases, res) if bool(r.get("correct")) != c["label"]]
    fa = sum(1 for c, r in zip(cases, res) if r.get("correct") and not c["label"])
    lat = [r["latency_s"] for r in res if r.get("latency_s") is not None]
    per_family: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for c, r in zip(cases, res):
        per_family[c["family"]][0] += bool(r.get("correct")) == c["label"]
        per_family[c["family"]][1] += 1
    return {
        "n": len(cases), "accuracy": 1 - len(wrong) / len(cases), "false_accepts": fa,
        "false_rejects": len(wrong) - fa, "timeouts": sum(r["status"] == "timeout" for r in res),
        "errors": sum(r["status"] == "error" for r in res),
        "checks_per_s": len(cases) / run["wall_s"] if run["wall_s"] else None,
        "p50_ms": _ms(percentile(lat, 50)), "p99_ms": _ms(percentile(lat, 99)),
        "wrong": wrong, "per_family": dict(per_family),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{title}")
    head = f"{'system':34s} {'acc':>7s} {'false acc':>9s} {'false rej':>9s} {'timeouts':>8s} {'errors':>6s} " \
           f"{'checks/s':>9s} {'p50 ms':>8s} {'p99 ms':>8s}"
    print(head + "\n" + "-" * len(head))
    for name, s in rows.items():
        print(f"{name:34s} {100 * s['accuracy']:6.1f}% {s['false_accepts']:9d} {s['false_rejects']:9d} "
              f"{s['timeouts']:8d} {s['errors']:6d} {_fmt(s['checks_per_s'], '9.1f')} "
              f"{_fmt(s['p50_ms'], '8.1f')} {_fmt(s['p99_ms'], '8.1f')}")


def print_families(cases: list[dict[str, Any]], rows: dict[str, dict[str, Any]]) -> None:
    labels = Counter((c["family"], c["label"]) for c in cases)
    short = {name: name.replace("math-verify", "mv").replace(" proc)", "p)") for name in rows}
    print("\nAccuracy per family (cases: true/false)")
    print(f"{'family':16s} {'cases':>7s} " + " ".join(f"{short[n]:>16s}" for n in rows))
    for fam in dict.fromkeys(c["family"] for c in cases):
        cells = []
        for n in rows:
            ok, total = rows[n]["per_family"][fam]
            cells.append(f"{100 * ok / total:15.1f}%")
        print(f"{fam:16s} {labels[(fam, True)]:3d}/{labels[(fam, False)]:<3d} " + " ".join(cells))


def write_wrong_cases(path: Path, cases: list[dict[str, Any]], runs: dict[str, dict[str, Any]],
                      scores: dict[str, dict[str, Any]]) -> None:
    by_id = {c["id"]: c for c in cases}
    lines = ["# Cases each system gets wrong", ""]
    for name, s in scores.items():
        res = {c["id"]: r for c, r in zip(cases, runs[name]["results"])}
        lines += [f"## {name}: {len(s['wrong'])} wrong "
                  f"({s['false_accepts']} false accepts, {s['false_rejects']} false rejects)", ""]
        for cid in s["wrong"]:
            c, r = by_id[cid], res[cid]
            text = c.get("answer", c.get("response", ""))
            text = text if len(text) <= 160 else "..." + text[-157:]
            lines.append(f"- `{cid}` label={c['label']} status={r['status']} extracted={_short(r.get('extracted'))}"
                         f"  \n  gold: `{_short(c['gold'])}`  \n  {'answer' if 'answer' in c else 'response'}: "
                         f"`{_short(text)}`" + (f"  \n  note: {c['note']}" if c["note"] else ""))
        lines.append("")
    path.write_text("\n".join(lines))


def _short(text: Any, n: int = 160) -> str:
    text = str(text).replace("\n", " ").replace("`", "'")
    return text if len(text) <= n else text[: n - 3] + "..."


def run_stress(python: Path | None, out: Path, timeout_s: float, have_ours: bool) -> None:
    cases = stress_cases()
    path = out / "stress_cases.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    columns: dict[str, list[dict[str, Any]]] = {}
    if have_ours:
        columns["ours (BatchVerifier)"] = run_ours_batch(cases, timeout_s, per_case=True)["results"]
    if python is not None:
        columns["math-verify (2 proc)"] = run_mathverify(python, path, out / "stress_mathverify.jsonl",
                                                         WORKERS, timeout_s)["results"]
    print(f"\nStress: pathological inputs, hard limit {timeout_s:g} s per check "
          f"(a check that returns later than limit + {HANG_SLACK_S:g} s is a hang)")
    print(f"{'case':34s} {'expect':>6s} " + " ".join(f"{n:>28s}" for n in columns))
    totals = {n: Counter() for n in columns}
    for i, c in enumerate(cases):
        cells = []
        for n, res in columns.items():
            r = res[i]
            lat = r.get("latency_s") or 0.0
            verdict = {"ok": "correct" if r.get("correct") else "incorrect"}.get(r["status"], r["status"])
            totals[n][r["status"]] += 1
            totals[n]["right"] += r["status"] == "ok" and bool(r.get("correct")) == c["label"]
            totals[n]["hang"] += lat > timeout_s + HANG_SLACK_S
            cells.append(f"{verdict:>16s} {1000 * lat:9.0f} ms")
        print(f"{c['name'][:34]:34s} {str(c['label']):>6s} " + " ".join(cells))
    for n, t in totals.items():
        print(f"  {n}: {t['right']}/{len(cases)} right, {t['timeout']} timeouts, {t['error']} errors, "
              f"{t['hang']} hangs")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=CASES)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench" / "verifier")
    ap.add_argument("--timeout-s", type=float, default=5.0, help="hard limit per check, both systems")
    ap.add_argument("--skip-mathverify", action="store_true", help="run our checker only")
    ap.add_argument("--skip-stress", action="store_true")
    ap.add_argument("--repeat", type=int, default=3,
                    help="timed runs per system; the fastest is reported (other load only slows a run down)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cases = load_cases(args.cases)
    print(f"{len(cases)} labelled cases ({sum(c['label'] for c in cases)} true), "
          f"{len({c['family'] for c in cases})} families; {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; limit {args.timeout_s:g} s per check; fastest of {args.repeat} runs per system")

    runs: dict[str, dict[str, Any]] = {}
    try:
        import rewards.verifier  # noqa: F401
        have_ours = True
    except ImportError as err:
        have_ours = False
        print(f"our checker is not importable ({err}); running math-verify only")
    timed: dict[str, Any] = {}
    if have_ours:
        timed["ours direct (1 proc)"] = lambda: run_ours_direct(cases, args.timeout_s)
        timed[f"ours batch ({WORKERS} proc)"] = lambda: run_ours_batch(cases, args.timeout_s)
    python = None
    if not args.skip_mathverify:
        python = ensure_mathverify_venv()
        for workers in (1, WORKERS):
            timed[f"math-verify ({workers} proc)"] = lambda w=workers: run_mathverify(
                python, args.cases, args.out / f"mathverify_{w}proc.jsonl", w, args.timeout_s)
    # Round robin, so every system samples the same stretches of whatever else the machine
    # is doing; the fastest run of each is kept.
    for _ in range(args.repeat):
        for name, run in timed.items():
            result = run()
            if name not in runs or result["wall_s"] < runs[name]["wall_s"]:
                runs[name] = result
    if python is not None:
        runs[f"math-verify reward ({WORKERS} proc)"] = run_mathverify(  # for its accuracy; timed once
            python, args.cases, args.out / "mathverify_reward.jsonl", WORKERS, args.timeout_s, "reward")
    scores = {name: score(cases, run) for name, run in runs.items()}

    print_table("Labelled cases (latency: per check, timed inside the worker; BatchVerifier is timed per batch)",
                scores)
    print_families(cases, scores)
    ratios = [(f"ours batch ({WORKERS} proc)", f"math-verify ({WORKERS} proc)"),
              ("ours direct (1 proc)", "math-verify (1 proc)")]
    for a, b in ratios:
        if a in scores and b in scores:
            print(f"throughput {a} / {b}: {scores[a]['checks_per_s'] / scores[b]['checks_per_s']:.2f}x")
    write_wrong_cases(args.out / "wrong_cases.md", cases, runs, scores)
    print(f"\nwrong cases per system: {args.out / 'wrong_cases.md'}")
    for name, s in scores.items():
        more = " ..." if len(s["wrong"]) > 12 else ""
        print(f"  {name}: {len(s['wrong'])} wrong: {', '.join(s['wrong'][:12])}{more}")
    (args.out / "summary.json").write_text(json.dumps(scores, indent=1))

    if not args.skip_stress:
        run_stress(python, args.out, args.timeout_s, have_ours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
