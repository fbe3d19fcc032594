"""Run math-verify on the labelled verifier cases; meant for math-verify's own virtualenv.

    bench/.venv-mathverify/bin/python bench/verifier_mathverify_runner.py \\
        --cases bench/data/verifier_cases.jsonl --out verdicts.jsonl --workers 2 --timeout-s 5

`bench/verifier.py` creates that virtualenv and calls this script; it cannot import our
code (math-verify needs antlr4 4.13, our latex2sympy stack another). Each case is checked
the way math-verify's README shows: `verify(parse(gold), parse(prediction))`, gold first.

- gold: parsed from the gold string; a bare answer is wrapped in `$...$` (its LaTeX
  extraction only looks inside math delimiters), a reference solution is parsed as is.
- `response` cases: the full response is parsed (math-verify extracts the answer itself).
- `answer` cases: the bare answer is wrapped in `$...$`, like the gold.

`--config default` uses `parse`'s default extraction (LaTeX + plain expressions);
`--config reward` uses the README's recommendation for rewarding a model: LaTeX extraction
with `basic_latex, units, boxed="all"`, no malformed-operator or nits fixes, no equation
splitting, `boxed_match_priority=0`, plus plain-expression extraction.

Writes one JSON line per case (id, correct, status, latency_s, extracted) and a last line
`{"summary": ...}` with the wall time. Checks run in `--workers` processes with a hard
per-check limit (bench/verifier_pool.py), the same harness our checker is timed in.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from verifier_pool import run_tasks  # noqa: E402

_MATH_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed|\\fbox")
_CONFIGS: dict[str, list] = {}


def _extraction_config(name: str) -> list | None:
    if name == "default":
        return None
    if name not in _CONFIGS:
        from latex2sympy2_extended import NormalizationConfig
        from math_verify import ExprExtractionConfig, LatexExtractionConfig

        norm = NormalizationConfig(basic_latex=True, units=True, malformed_operators=False, nits=False,
                                   boxed="all", equations=False)
        _CONFIGS[name] = [LatexExtractionConfig(normalization_config=norm, boxed_match_priority=0),
                          ExprExtractionConfig()]
    return _CONFIGS[name]


def _wrap(text: str) -> str:
    return text if _MATH_DELIMITED.search(text) else f"${text}$"


def check(task: dict) -> dict:
    """One case -> {"correct", "extracted"}; runs in a pool worker."""
    from math_verify import parse, verify

    gold = parse(_wrap(task["gold"]))
    pred_text = task["response"] if "response" in task else _wrap(task["answer"])
    config = _extraction_config(task["config"])
    pred = parse(pred_text) if config is None else parse(pred_text, extraction_config=config)
    extracted = str(pred[-1]) if pred else None
    return {"correct": bool(verify(gold, pred)), "extracted": extracted}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", required=True, help="JSONL with id, gold, and answer or response")
    ap.add_argument("--out", required=True, help="where to write verdict lines")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--timeout-s", type=float, default=5.0, help="hard wall-clock limit per check")
    ap.add_argument("--config", choices=("default", "reward"), default="default")
    ap.add_argument("--memory-limit-mb", type=int, default=2048, help="address-space limit per worker")
    args = ap.parse_args()

    cases = [json.loads(line) for line in Path(args.cases).read_text().splitlines() if line.strip()]
    tasks = [{k: c[k] for k in ("gold", "answer", "response") if k in c} | {"config": args.config} for c in cases]
    warmup = [{"gold": "\\frac{1}{2}", "answer": "0.5", "config": args.config},
              {"gold": "(1,2]", "response": "so \\boxed{(1,2]}", "config": args.config}]
    results, wall = run_tasks("verifier_mathverify_runner:check", tasks, args.workers, args.timeout_s,
                              warmup=warmup, memory_limit_mb=args.memory_limit_mb)
    with open(args.out, "w") as f:
        for case, res in zip(cases, results):
            row = {"id": case["id"], "correct": bool(res.get("correct", False)), "status": res["status"],
                   "latency_s": res["latency_s"], "extracted": res.get("extracted")}
            if "error" in res:
                row["error"] = res["error"]
            f.write(json.dumps(row) + "\n")
        f.write(json.dumps({"summary": {"n": len(cases), "wall_s": wall, "workers": args.workers,
                                        "timeout_s": args.timeout_s, "config": args.config}}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
