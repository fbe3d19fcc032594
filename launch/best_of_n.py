"""Best-of-N inference: sample N responses per problem and choose one answer by majority vote
over equivalent answers and, with a reward model, by RM top-1 (best-of-N) and RM-weighted vote.

    python launch/best_of_n.py --config configs/best_of_n_tiny.yaml problem="What is 2+3?"
    python launch/best_of_n.py --config configs/best_of_n_tiny.yaml data.path=problems.jsonl reward_model_path=runs/rm_tiny/final

`problem=...` is taken literally (not read as YAML), so LaTeX, colons and brackets need no
quoting beyond the shell's. Problem files need `problem` (or `question`); a gold `answer` is
optional and, where given, each method's accuracy is reported.

Writes to output_dir: best_of_n.jsonl (per problem: the answer each method chose, all N
candidates with their extracted answers, answer groups and RM scores; appended chunk by
chunk, continued by a rerun after an interruption) and summary.json.
"""

import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathdata.io import iter_jsonl  # noqa: E402
from mathdata.loading import load_problems  # noqa: E402
from mathdata.problems import Problem  # noqa: E402
from mathrl.config import ConfigError, parse_cli, to_dict  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.stages import BestOfNConfig  # noqa: E402
from rewards.verifier import BatchVerifier  # noqa: E402
from rl.best_of_n import load_scorer, problem_record, sample_candidates, seeded_sampler, summarize_choices  # noqa: E402
from rl.evaluation import pending, start_or_resume, stream_records  # noqa: E402
from rollout.config import engine_dtype  # noqa: E402
from rollout.engine import RolloutEngine  # noqa: E402


def literal_problem(argv: list[str]) -> list[str]:
    """Quote a `problem=TEXT` override so the config loader reads TEXT as a plain string
    (as YAML, `Solve: x+1=2` would be a mapping and `5` a number)."""
    return [f"problem={json.dumps(a.partition('=')[2], ensure_ascii=False)}" if a.startswith("problem=") else a for a in argv]


def results_key(cfg: BestOfNConfig) -> dict:
    """The settings a record depends on: a run may only continue records made with these."""
    c = to_dict(cfg)
    rollout = {k: c["rollout"][k] for k in ("n", "temperature", "top_p", "max_tokens", "stop", "seed")}
    return {"model_path": cfg.model_path, "prompt": c["prompt"], "rollout": rollout, "engine_dtype": engine_dtype(cfg.rollout.engine),
            "verifier": cfg.verifier.verifier, "reward_model_path": cfg.reward_model_path, "vote_weight": cfg.vote_weight}


def main(argv=None) -> dict:
    cfg = parse_cli(BestOfNConfig, literal_problem(sys.argv[1:] if argv is None else list(argv)), "configs/best_of_n_tiny.yaml")
    if cfg.problem is not None:
        problems = [Problem(id="problem-" + hashlib.sha1(cfg.problem.encode()).hexdigest()[:12], problem=cfg.problem, answer="")]
    else:
        problems = load_problems(cfg.data, require_answer=False).problems
    out = Path(cfg.output_dir)
    results = out / "best_of_n.jsonl"
    try:
        # One problem from the command line is answered afresh; a problem file run resumes.
        start_or_resume(results, results_key(cfg), cfg.resume and cfg.problem is None)
        todo = pending(problems, results, cfg.rollout.n)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    save_config(cfg, out)

    if todo:
        engine = RolloutEngine(cfg.model_path, cfg.rollout, cfg.prompt)
        sample = seeded_sampler(engine, cfg.rollout.n, cfg.rollout.temperature, cfg.rollout.seed)
        scorer = load_scorer(cfg.reward_model_path, cfg.scorer, cfg.prompt) if cfg.reward_model_path else None
        with BatchVerifier(cfg.verifier) as verifier:

            def answer(chunk: list[Problem]) -> list[dict]:
                candidates = sample_candidates(chunk, sample(chunk), verifier, scorer, cfg.vote_weight)
                return [problem_record(p, c) for p, c in zip(chunk, candidates)]

            stream_records(todo, answer, results, cfg.chunk_size, total=len(problems), desc="best-of-n")
        engine.close()

    wanted = {p.id for p in problems}
    records = [r for r in iter_jsonl(results) if r["id"] in wanted] if cfg.problem is not None else None
    summary = {"model": cfg.model_path, "reward_model": cfg.reward_model_path,
               **summarize_choices(r for r in iter_jsonl(results) if r["id"] in wanted)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if records:  # one problem: show the answers
        for method, choice in records[0]["chosen"].items():
            votes = sum(c["group"] == records[0]["candidates"][choice["index"]]["group"] for c in records[0]["candidates"])
            print(f"{method}: {choice['answer']}  (sample {choice['index']}, {votes} of {records[0]['n']} samples give this answer)")
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
