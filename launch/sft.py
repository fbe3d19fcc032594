"""Supervised fine-tuning on worked solutions (loss on the assistant's tokens only).

    python launch/sft.py --config configs/sft_tiny.yaml [key.sub=value ...]

Starts from any local HF model (the pretrained tiny model by default); resumes from the
newest complete checkpoint in run.run_dir; exports to run.run_dir/final.
"""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathrl.config import parse_cli  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.stages import SFTConfig  # noqa: E402
from policy.lm_data import SFTBatches  # noqa: E402
from policy.loading import load_tokenizer  # noqa: E402
from policy.losses import NextTokenLoss  # noqa: E402
from policy.train_loop import learner_for_stage, train  # noqa: E402


def main(argv=None) -> Path:
    cfg = parse_cli(SFTConfig, argv, default_config="configs/sft_tiny.yaml")
    save_config(cfg, cfg.run.run_dir)
    tokenizer = load_tokenizer(cfg.model_path)
    data = SFTBatches(cfg.data, tokenizer)
    total_steps = max(1, math.ceil(cfg.epochs * data.steps_per_epoch))
    print(f"SFT: {len(data.examples)} conversations ({data.dropped_too_long} longer than max_len dropped), {total_steps} steps")
    learner = learner_for_stage(cfg.model_path, cfg.learner, total_steps, tokenizer)
    final = train(learner, data.batch, NextTokenLoss(), total_steps, cfg.run)
    print(f"SFT model: {final}")
    return final


if __name__ == "__main__":
    main()
