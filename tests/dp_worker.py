"""One side of the data-parallel equivalence test (`tests/test_learner_data_parallel.py`).

    # data parallel: every rank trains on its share of the batch
    python -m torch.distributed.run --nproc_per_node 2 --master_addr 127.0.0.1 --master_port P \\
        tests/dp_worker.py MODEL_DIR OUT_DIR --stages 0 2 3 --steps 3
    # the reference: no launcher, one process, the whole batch
    python tests/dp_worker.py MODEL_DIR OUT_DIR --stages 0 2 3 --steps 3

Every process builds the same fixed batch (`fixed_batch`) and rank r of W trains on rows
[r*B/W, (r+1)*B/W). The rows are sorted short to long, so the ranks hold different numbers
of target tokens: an update averaged per rank and then over ranks would differ from the
single-process one, and only normalising by the global token count makes them equal.

For each ZeRO stage it writes to OUT_DIR
    metrics_stage{S}_rank{R}.json   the metrics of every step (all-reduced, so equal on all ranks)
    weights_stage{S}.pt             the full state dict after the last step (rank 0 only)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mathrl.env import set_local_defaults  # noqa: E402
from policy.learner import Learner, LearnerConfig, OptimizerConfig, barrier  # noqa: E402
from policy.loading import load_causal_lm, load_tokenizer  # noqa: E402
from policy.losses import NextTokenLoss, TensorBatch  # noqa: E402
from policy.schedules import ScheduleConfig  # noqa: E402

ROWS = 8


def fixed_batch(tokenizer) -> TensorBatch:
    """8 right-padded rows, short to long (1 to 4 repeats of a sentence), each with its own
    masked-out prefix (3..10 tokens), as if prompts of different lengths were masked."""
    texts = [
        f"Compute {a} + {b}. {a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}. " * (1 + i // 2)
        for i, (a, b) in enumerate(zip(range(11, 91, 10), range(7, 800, 97)))
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    loss_mask = enc["attention_mask"].clone()
    for row in range(ROWS):
        loss_mask[row, : 3 + row] = 0
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "loss_mask": loss_mask}


def learner_config(zero_stage: int) -> LearnerConfig:
    """fp32, so the comparison is exact up to summation order; lr high enough that the
    weights move visibly in 3 steps; clipping on, so the clip must use the global norm."""
    return LearnerConfig(
        zero_stage=zero_stage,
        dtype="float32",
        micro_batch_size=2,  # each rank also accumulates over 2 micro-batches
        optimizer=OptimizerConfig(lr=2e-3, weight_decay=0.1, grad_clip=1.0),
        schedule=ScheduleConfig(kind="wsd", warmup_steps=1, total_steps=4, decay_fraction=0.5),
    )


def rank_share(batch: TensorBatch, rank: int, world_size: int) -> TensorBatch:
    rows = next(iter(batch.values())).shape[0]
    if rows % world_size:
        raise ValueError(f"the batch's {rows} rows do not split evenly over {world_size} ranks")
    per_rank = rows // world_size
    return {k: v[rank * per_rank : (rank + 1) * per_rank] for k, v in batch.items()}


def run_stage(model_dir: Path, out_dir: Path, zero_stage: int, steps: int) -> None:
    tokenizer = load_tokenizer(model_dir)
    learner = Learner(load_causal_lm(model_dir), learner_config(zero_stage), tokenizer=tokenizer)
    share = rank_share(fixed_batch(tokenizer), learner.rank, learner.world_size)
    metrics = [learner.train_batch(share, NextTokenLoss()) for _ in range(steps)]
    state = learner.full_state_dict()  # collective under ZeRO-3: every rank calls it
    (out_dir / f"metrics_stage{zero_stage}_rank{learner.rank}.json").write_text(json.dumps(metrics))
    if state is not None:
        torch.save({k: v.clone() for k, v in state.items()}, out_dir / f"weights_stage{zero_stage}.pt")
    learner.close()
    barrier()  # no rank starts the next engine while another still tears this one down


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--stages", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    set_local_defaults()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for stage in args.stages:
        run_stage(args.model_dir, args.out_dir, stage, args.steps)
    # Tear the group down explicitly: two-process gloo jobs otherwise may abort or hang at
    # exit. (On an error there is no barrier: the launcher stops the other ranks.)
    if torch.distributed.is_initialized():
        barrier()
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
