"""Evaluate a policy: greedy accuracy on a problem set (the synthetic test split by default,
or MATH-500 / GSM8K / any JSONL), with a breakdown by level, family or subject.

    python launch/evaluate.py --config configs/evaluate_tiny.yaml [model_path=...] [data.path=...]

Writes output_dir/results.json (summary) and output_dir/responses.jsonl (one graded response
per problem).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathdata.io import write_jsonl  # noqa: E402
from mathdata.loading import load_problems  # noqa: E402
from mathrl.config import parse_cli  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.stages import EvalConfig  # noqa: E402
from rewards.verifier import BatchVerifier  # noqa: E402
from rl.evaluation import evaluate  # noqa: E402
from rollout.engine import RolloutEngine  # noqa: E402


def main(argv=None) -> dict:
    cfg = parse_cli(EvalConfig, argv, default_config="configs/evaluate_tiny.yaml")
    out = Path(cfg.output_dir)
    save_config(cfg, out)
    problems = load_problems(cfg.data).problems
    engine = RolloutEngine(cfg.model_path, cfg.rollout, cfg.prompt)
    with BatchVerifier(cfg.verifier) as verifier:
        report = evaluate(problems, lambda ps: engine.generate(ps).texts, verifier)
    engine.close()
    write_jsonl(report.records, out / "responses.jsonl")
    summary = {"model": cfg.model_path, "data": cfg.data.path, **report.summary()}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
