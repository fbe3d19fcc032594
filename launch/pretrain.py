"""Pretrain a causal LM on a staged data mixture (WSD schedule by default).

    python launch/pretrain.py --config configs/pretrain_tiny.yaml [key.sub=value ...]

Resumes from the newest complete checkpoint in run.run_dir; the final model is exported in
Hugging Face format to run.run_dir/final.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

from mathrl.config import parse_cli  # noqa: E402
from mathrl.runs import save_config  # noqa: E402
from mathrl.stages import PretrainConfig  # noqa: E402
from policy.lm_data import PackedMixture  # noqa: E402
from policy.loading import load_tokenizer  # noqa: E402
from policy.losses import NextTokenLoss  # noqa: E402
from policy.train_loop import learner_for_stage, train  # noqa: E402


def main(argv=None) -> Path:
    cfg = parse_cli(PretrainConfig, argv, default_config="configs/pretrain_tiny.yaml")
    save_config(cfg, cfg.run.run_dir)
    tokenizer = load_tokenizer(cfg.model_path)
    data = PackedMixture(cfg.data, tokenizer)
    learner = learner_for_stage(cfg.model_path, cfg.learner, data.total_steps, tokenizer)
    final = train(learner, data.batch, NextTokenLoss(), data.total_steps, cfg.run)
    print(f"pretrained model: {final}")
    return final


if __name__ == "__main__":
    main()
