"""Why `learner.dtype=auto` picks what it picks: our learner's step in fp32 and in bf16, side by side.

    python bench/learner_dtype.py [--preset tiny-3m] [--batch-size 16] [--warmup 1] [--steps 4] [--threads 2]

The same freshly built model and the same SFT batches as `bench/learner.py`; two learners
(`Learner(dtype="float32")` and `Learner(dtype="bfloat16")`, DeepSpeed ZeRO-0, fp32 master
weights for bf16) take turns step by step, so a noisy machine slows both alike. Prints each
one's median step, their ratio, the CPU features `mathrl.device.has_fast_bf16` reads, and the
dtype `auto` resolves to here. On a CPU with AMX bf16 is the faster one; on an AVX2-only CPU it
is emulated and many times slower, which is why `auto` trains in fp32 there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

import torch  # noqa: E402

from bench.learner import OPTIMIZER, build_data, sft_batches  # noqa: E402
from mathrl.device import cpu_bf16_features, has_fast_bf16, resolve_auto_dtype  # noqa: E402
from policy.learner import Learner, LearnerConfig  # noqa: E402
from policy.losses import NextTokenLoss  # noqa: E402
from policy.schedules import ScheduleConfig  # noqa: E402
from policy.tiny_model import TinyModelConfig, build_tiny_model, count_parameters  # noqa: E402

DTYPES = ("float32", "bfloat16")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-3m")
    parser.add_argument("--batch-size", type=int, default=16, help="conversations per step (one micro-batch)")
    parser.add_argument("--warmup", type=int, default=1, help="steps left out of the timings")
    parser.add_argument("--steps", type=int, default=4, help="timed steps per dtype")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    loss_fn = NextTokenLoss()
    seconds: dict[str, list[float]] = {dtype: [] for dtype in DTYPES}
    losses: dict[str, list[float]] = {dtype: [] for dtype in DTYPES}
    with tempfile.TemporaryDirectory(prefix="bench-dtype-") as tmp:
        data, tokenizer = build_data(Path(tmp))
        batches = sft_batches(data, tokenizer, args.batch_size, args.warmup + args.steps)
        learners = {
            dtype: Learner(
                build_tiny_model(TinyModelConfig(preset=args.preset), tokenizer),  # the same weights for both
                LearnerConfig(
                    dtype=dtype,
                    micro_batch_size=args.batch_size,
                    device="cpu",
                    optimizer=OPTIMIZER,
                    schedule=ScheduleConfig(kind="constant", total_steps=10**6),
                ),
            )
            for dtype in DTYPES
        }
        for step, batch in enumerate(batches):
            for dtype, learner in learners.items():  # turns, step by step
                start = time.perf_counter()
                losses[dtype].append(learner.train_batch(batch, loss_fn)["loss"])
                if step >= args.warmup:
                    seconds[dtype].append(time.perf_counter() - start)
        params = count_parameters(learners["float32"].module)
        for learner in learners.values():
            learner.close()

    median = {dtype: statistics.median(seconds[dtype]) for dtype in DTYPES}
    print(f"\n{args.preset} ({params / 1e6:.1f}M params), {args.batch_size} conversations per step, {args.threads} threads")
    bf16_features = ", ".join(cpu_bf16_features()) or "neither AMX nor AVX512-BF16"
    print(f"CPU: {torch.backends.cpu.get_cpu_capability()} kernels; bf16 hardware: {bf16_features}")
    for dtype in DTYPES:
        print(f"  {dtype:<9} median step {median[dtype]:8.3f} s over {len(seconds[dtype])} steps; last loss {losses[dtype][-1]:.4f}")
    print(f"bf16 step / fp32 step: {median['bfloat16'] / median['float32']:.2f}x")
    cpu = torch.device("cpu")
    print(f"learner.dtype=auto here: {resolve_auto_dtype('auto', cpu)} (bf16 in hardware: {has_fast_bf16(cpu)})")


if __name__ == "__main__":
    main()
