"""Offline selection of GRPO training problems: sample n (8) responses per problem with the
starting policy, keep the problems where low..high (2..5) are verified correct.

    python launch/filter_problems.py --config configs/filter_tiny.yaml [key.sub=value ...]

Writes the kept problems (same fields as the input) to `output`, and beside it a stats JSON
with how many problems had each number of correct samples. GRPO then trains on the output
(`launch/grpo.py data.path=...`).
"""

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from mathdata.io import write_problems_jsonl  # noqa: E402
from mathdata.loading import load_problems  # noqa: E402
from mathrl.config import parse_cli  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.seeding import problem_seeds  # noqa: E402
from rewards.verifier import BatchVerifier  # noqa: E402
from rl.algorithms import keep_groups  # noqa: E402
from rl.config import OfflineFilterConfig  # noqa: E402
from rollout.engine import RolloutEngine  # noqa: E402


def main(argv=None) -> dict:
    cfg = parse_cli(OfflineFilterConfig, argv, default_config="configs/filter_tiny.yaml")
    output = Path(cfg.output)
    save_config(cfg, output.parent)
    problems = load_problems(cfg.data).problems
    engine = RolloutEngine(cfg.model_path, cfg.rollout, cfg.prompt)
    n = cfg.rollout.n
    kept, histogram = [], Counter()
    with BatchVerifier(cfg.verifier) as verifier:
        for start in tqdm(range(0, len(problems), cfg.chunk_size), desc="filter", unit="chunk"):
            chunk = problems[start : start + cfg.chunk_size]
            # a seed per problem: the same samples whatever the chunking (mathrl.seeding.problem_seed)
            rollouts = engine.generate(chunk, seeds=problem_seeds(cfg.rollout.seed, chunk))
            verdicts = verifier.check(rollouts.texts, [chunk[i].answer for i in rollouts.prompt_index])
            correct = torch.tensor([v.correct for v in verdicts]).view(len(chunk), n)
            histogram.update(correct.sum(dim=-1).tolist())
            kept += [p for p, keep in zip(chunk, keep_groups(correct, cfg.filter.low, cfg.filter.high).tolist()) if keep]
    engine.close()
    write_problems_jsonl(kept, output)
    stats = {
        "problems": len(problems),
        "kept": len(kept),
        "kept_fraction": len(kept) / max(len(problems), 1),
        "problems_by_correct_count": {str(k): histogram.get(k, 0) for k in range(n + 1)},
        "mean_sample_accuracy": sum(k * c for k, c in histogram.items()) / max(len(problems) * n, 1),
    }
    output.with_suffix(".stats.json").write_text(json.dumps(stats, indent=2))
    print(json.dumps(stats, indent=2))
    print(f"wrote {len(kept)} problems with {cfg.filter.low}..{cfg.filter.high} of {n} correct to {output}")
    return stats


if __name__ == "__main__":
    main()
