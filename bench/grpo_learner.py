"""The GRPO learner step on a rollout-shaped batch: rows sorted by length within each
mini-batch and every micro-batch cut to its own longest row (what `PolicyTrainer.update`
does), against the same optimizer steps on micro-batches padded to the batch's longest row.

    python bench/grpo_learner.py [--preset tiny-3m] [--rows 256] [--minibatches 4]
                                 [--micro-batch-size 32] [--rounds 5] [--threads 2]

The batch is shaped like one step of `configs/grpo_tiny.yaml`: 32 groups x 8 responses, cut
into 4 optimizer steps, micro-batches of 32 rows. Prompts are 30-70 tokens; response lengths
are lognormal with a median of 45 tokens, capped at 256 (the tiny GRPO run's responses average
54 tokens with a few long ones, and the batch is padded to the longest). Token ids are random:
the cost of a step does not depend on them.

Both variants train their own copy of the same freshly built model (`PolicyTrainer`, fp32,
DeepSpeed ZeRO-0 on gloo, as the job runs it) on the same batch, taking turns round by round
(the order alternates). The padded variant is the same code with `by_length` and
`trim_padding` replaced by the identity. The ratio is the median over rounds of padded time /
trimmed time; the run also prints the share of computed positions that are padding in each.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

import torch  # noqa: E402

from policy.learner import LearnerConfig, OptimizerConfig, split_batch  # noqa: E402
from policy.schedules import ScheduleConfig  # noqa: E402
from policy.tiny_model import TinyModelConfig, build_tiny_model, count_parameters  # noqa: E402
from policy.tokenizer import TokenizerConfig, train_tokenizer  # noqa: E402
from rl.algorithms import PolicyLossConfig  # noqa: E402
from rl.policy_update import by_length, training_batch, trim_padding  # noqa: E402


def rollout_batch(rows: int, vocab: int, seed: int = 0):
    rng = random.Random(seed)
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(30, 70))] for _ in range(rows)]
    responses = [[rng.randrange(3, vocab) for _ in range(min(256, max(4, int(rng.lognormvariate(3.8, 0.5)))))]
                 for _ in range(rows)]
    logprobs = [[-0.05] * len(r) for r in responses]
    advantages = [rng.uniform(-1.5, 1.5) for _ in range(rows)]
    return training_batch(prompts, responses, logprobs, advantages, pad_id=0)


@contextlib.contextmanager
def padded_to_the_longest():
    """The learner as it was: `by_length` and `trim_padding` are the identity where it calls them."""
    def identity(batch):
        return batch

    with mock.patch.multiple("rl.trainer", by_length=identity, trim_padding=identity), \
            mock.patch("rl.policy_update.trim_padding", identity):
        yield


def padding_share(batch, minibatches: int, micro: int, trimmed: bool) -> float:
    """Padding positions / positions the forward pass computes."""
    rows = batch["input_ids"].shape[0]
    computed = real = 0
    for mb in split_batch(batch, -(-rows // minibatches)):
        for part in split_batch(by_length(mb) if trimmed else mb, micro):
            width = trim_padding(part)["input_ids"].shape[1] if trimmed else part["input_ids"].shape[1]
            computed += part["input_ids"].shape[0] * width
            real += int(part["attention_mask"].sum())
    return 1 - real / computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-3m")
    parser.add_argument("--rows", type=int, default=256, help="responses per step (groups x 8)")
    parser.add_argument("--minibatches", type=int, default=4, help="optimizer steps per rollout batch")
    parser.add_argument("--micro-batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the tiny GRPO learner uses 2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from rl.trainer import PolicyTrainer

    work = Path(tempfile.mkdtemp(prefix="bench_grpo_learner_"))
    rng = random.Random(0)
    texts = [f"{rng.randint(1, 999)} + {rng.randint(1, 999)} = {rng.randint(1, 1998)}" for _ in range(2000)]
    tokenizer = train_tokenizer(texts, TokenizerConfig(vocab_size=768), work)
    params = count_parameters(build_tiny_model(TinyModelConfig(preset=args.preset, seed=0), tokenizer, work))
    learner_cfg = LearnerConfig(dtype="float32", micro_batch_size=args.micro_batch_size,
                                optimizer=OptimizerConfig(lr=5e-5, weight_decay=0.0),
                                schedule=ScheduleConfig(kind="constant", warmup_steps=0))
    loss_cfg = PolicyLossConfig(clip_low=0.2, clip_high=0.28, kl_coef=0.0)
    batch = rollout_batch(args.rows, len(tokenizer))
    lengths = batch["attention_mask"].sum(dim=1).float()

    variants = {"padded": padded_to_the_longest, "trimmed": contextlib.nullcontext}
    trainers = {name: PolicyTrainer(str(work), learner_cfg, loss_cfg) for name in variants}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            with variants[name]():
                start = time.perf_counter()
                trainers[name].update(batch, args.minibatches)
                elapsed = time.perf_counter() - start
            if round_:
                seconds[name].append(elapsed)

    print(f"{args.preset} ({params / 1e6:.1f}M params), {args.rows} rows (length mean {lengths.mean():.0f}, "
          f"max {lengths.max():.0f}), {args.minibatches} optimizer steps, micro-batches of {args.micro_batch_size}, "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.2f}")
    for name in variants:
        share = padding_share(batch, args.minibatches, args.micro_batch_size, trimmed=name == "trimmed")
        print(f"  {name:8s} median {statistics.median(seconds[name]):6.2f} s per rollout batch "
              f"(rounds: {', '.join(f'{s:.2f}' for s in seconds[name])}); padding {share:.0%} of computed positions")
    ratios = [p / t for p, t in zip(seconds["padded"], seconds["trimmed"])]
    print(f"  trimmed is {statistics.median(ratios):.2f}x faster (median of per-round ratios; "
          f"range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
