"""Build a new SFT set by rejection sampling: k samples per problem, keep verified-correct ones.

    python launch/rejection_sample.py --config configs/rejection_tiny.yaml [key.sub=value ...]

The output is a problem file (JSONL with problem, answer, solution = the model's own correct
response) that `launch/sft.py data.train.path=...` trains on directly.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathdata.io import write_problems_jsonl  # noqa: E402
from mathdata.loading import load_problems  # noqa: E402
from mathrl.config import parse_cli  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.seeding import problem_seeds  # noqa: E402
from mathrl.stages import RejectionSampleConfig  # noqa: E402
from rewards.verifier import BatchVerifier  # noqa: E402
from rl.rejection_sampling import rejection_sample  # noqa: E402
from rollout.engine import RolloutEngine  # noqa: E402


def main(argv=None) -> Path:
    cfg = parse_cli(RejectionSampleConfig, argv, default_config="configs/rejection_tiny.yaml")
    output = Path(cfg.output)
    save_config(cfg, output.parent)
    problems = load_problems(cfg.data).problems
    engine = RolloutEngine(cfg.model_path, cfg.rollout, cfg.prompt)

    def sample(batch, k):
        # a seed per problem: the same samples whatever the batching (mathrl.seeding.problem_seed)
        rollouts = engine.generate(batch, n=k, seeds=problem_seeds(cfg.rollout.seed, batch))
        texts = [rollouts.texts[i * k : (i + 1) * k] for i in range(len(batch))]
        truncated = [[r == "length" for r in rollouts.finish_reasons[i * k : (i + 1) * k]] for i in range(len(batch))]
        return texts, truncated

    with BatchVerifier(cfg.verifier) as verifier:
        kept, stats = rejection_sample(problems, sample, verifier, cfg.sampling)
    engine.close()
    write_problems_jsonl(kept, output)
    print(json.dumps(stats, indent=2))
    print(f"wrote {len(kept)} SFT rows to {output}")
    return output


if __name__ == "__main__":
    main()
