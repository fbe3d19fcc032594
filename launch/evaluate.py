"""Evaluate a policy: greedy accuracy on a problem set (the synthetic test split by default,
or MATH-500 / GSM8K / any JSONL), with a breakdown by level, family or subject; with
`samples=N` also pass@k, maj@k and, given `reward_model_path`, rm@k for k = 1, 2, 4, ..., N.

    python launch/evaluate.py --config configs/evaluate_tiny.yaml [model_path=...] [data.path=...]
    python launch/evaluate.py --config configs/evaluate_math500.yaml model_path=/models/Qwen2.5-Math-1.5B-Instruct

Writes to output_dir: responses.jsonl (one graded record per problem, appended chunk by
chunk; an interrupted run started again continues it), results.json (summary), results.md
(tables) and, with samples > 1, accuracy_vs_n.png.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathdata.loading import load_problems  # noqa: E402
from mathrl.config import ConfigError, parse_cli, to_dict  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.stages import EvalConfig  # noqa: E402
from rewards.verifier import BatchVerifier  # noqa: E402
from rl.best_of_n import load_scorer, seeded_sampler  # noqa: E402
from rl.eval_report import markdown, plot_accuracy_vs_n  # noqa: E402
from rl.evaluation import graded_records, pending, start_or_resume, stream_records, summarize_file  # noqa: E402
from rollout.config import engine_dtype  # noqa: E402
from rollout.engine import RolloutEngine  # noqa: E402


def results_key(cfg: EvalConfig) -> dict:
    """The settings a response record depends on: a run may only continue records made with these."""
    c = to_dict(cfg)
    rollout = {k: c["rollout"][k] for k in ("temperature", "top_p", "max_tokens", "stop", "seed")}
    return {"model_path": cfg.model_path, "data": c["data"] | {"limit": None}, "prompt": c["prompt"], "rollout": rollout,
            "engine_dtype": engine_dtype(cfg.rollout.engine), "verifier": cfg.verifier.verifier, "samples": cfg.samples,
            "sample_temperature": cfg.sample_temperature, "reward_model_path": cfg.reward_model_path, "vote_weight": cfg.vote_weight}


def main(argv=None) -> dict:
    cfg = parse_cli(EvalConfig, argv, default_config="configs/evaluate_tiny.yaml")
    out = Path(cfg.output_dir)
    problems = load_problems(cfg.data).problems
    responses = out / "responses.jsonl"
    try:
        start_or_resume(responses, results_key(cfg), cfg.resume)
        todo = pending(problems, responses, cfg.samples)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    save_config(cfg, out)
    if len(todo) < len(problems):
        print(f"resuming {responses}: {len(problems) - len(todo)} of {len(problems)} problems already graded")

    if todo:
        engine = RolloutEngine(cfg.model_path, cfg.rollout, cfg.prompt)
        sample = seeded_sampler(engine, cfg.samples, cfg.sample_temperature, cfg.rollout.seed) if cfg.samples > 1 else None
        scorer = load_scorer(cfg.reward_model_path, cfg.scorer, cfg.prompt) if cfg.reward_model_path else None
        with BatchVerifier(cfg.verifier) as verifier:
            stream_records(
                todo,
                lambda chunk: graded_records(chunk, lambda ps: engine.generate(ps).texts, verifier, sample, scorer, cfg.vote_weight),
                responses,
                cfg.chunk_size,
                total=len(problems),
            )
        engine.close()

    summary = {"model": cfg.model_path, "data": cfg.data.path, **summarize_file(responses, problems).summary()}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    title = f"{Path(cfg.model_path).name} on {Path(cfg.data.path).name}"
    (out / "results.md").write_text(markdown(summary, title=f"Evaluation of {title}"))
    plot_accuracy_vs_n(summary, out / "accuracy_vs_n.png", title=f"{title} ({summary['num_problems']} problems)")
    print(json.dumps({k: v for k, v in summary.items() if k != "breakdown"}, indent=2))
    return summary


if __name__ == "__main__":
    main()
