"""Learner throughput: our DeepSpeed learner against a plain PyTorch loop and TRL's SFTTrainer.

    python bench/learner.py [--presets tiny-3m tiny-25m] [--batch-size 16] [--warmup 2] [--steps 6]
                            [--threads 1] [--json steps.json]

Everything is built here, deterministically: synthetic train problems rendered as chats, a
tokenizer trained on them (2048 tokens, as `launch/prepare.py` builds), and a freshly
initialised model per preset. Every runner trains that model on the same SFT batches
(`SFTBatches`: rows right-padded to the longest, loss on the assistant's tokens only), one
batch and one micro-batch per optimizer step, in one process on the CPU, with the same
AdamW settings (`OptimizerConfig()`: lr 3e-4, betas 0.9/0.95, weight decay 0.1, gradient
clipping at 1.0, constant learning rate).

What each runner does:

    ours       `Learner(zero_stage=0, dtype="bfloat16")`, i.e. DeepSpeed's bf16 mode at ZeRO-0: bf16
               weights and gradients, an fp32 master copy of the weights updated by torch AdamW.
               Loss: `NextTokenLoss` (full [B, T, V] logits, cast to fp32, log-softmax, gather).
    plain      the same numerics and the same loss code written out in a plain loop: bf16 model,
               forward and backward, gradients copied into fp32 master weights, clipping, torch
               AdamW, masters copied back. Ours vs plain is the cost of the engine around the loss.
    TRL amp    `SFTTrainer` with `bf16=True` on the fp32 model: the Trainer's CPU autocast (bf16
               matmuls, fp32 weights, gradients and optimizer state), TRL's usual mixed precision
               and the one whose numerics match ours (fp32 master weights).
    TRL bf16   `SFTTrainer` on the model loaded in bf16: bf16 weights, gradients and AdamW state,
               no fp32 master (coarser updates than the others, less work per step).

Both TRL runs keep TRL's own loss, a fused LM head that projects only the positions that
carry a label (the assistant's tokens), in tiles, and also computes entropy and top-1
accuracy for its metrics; they use `optim="adamw_torch"` (the optimizer ours and plain use),
no gradient checkpointing (SFTConfig turns it on by default), no packing, sequential
sampling (so TRL's step k trains on our batch k, checked against what its collator
produced), and no logging, saving or evaluation.

Fairness on a noisy, shared 2-core machine: the runners take turns step by step. TRL's
`train()` drives; a callback at the end of each TRL step runs the same step of ours and of
plain. A TRL step is timed from the end of one callback to the start of the next, so it
includes TRL's data loading and bookkeeping; ours and plain are timed around their step call
(their batches are built beforehand). Each TRL variant gets its own pass; ours and plain run
in both. A ratio between two runners is the median, over the steps of the passes they
shared, of their per-step speed ratio on the same batch.

Threads: one by default. On this shared 2-core machine, with other jobs running, two torch
threads made every step 4-10x slower than one (threads that meet at every op wait whenever
one of them is descheduled) and the timings useless; pass `--threads 2` on an idle machine.
The peak is measured with the same thread count, and the run prints the load average so its
numbers can be read with it in mind.

Tokens are real (non-pad) tokens: the attention mask's sum, the same for every runner.
MFU = 6 × params × tokens/s / peak, with params the unique parameters (the tied embedding
once, standing for the LM head's matmul; attention's own FLOPs are not counted) and the peak
the best 2048² bf16 matmul measured at the start and at the end of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

import torch  # noqa: E402

from mathdata.io import write_problems_jsonl  # noqa: E402
from mathdata.loading import ProblemFileConfig  # noqa: E402
from mathdata.synthetic import SyntheticDataConfig, generate_splits  # noqa: E402
from policy.learner import Learner, LearnerConfig, OptimizerConfig, _param_groups  # noqa: E402
from policy.lm_data import SFTBatches, SFTDataConfig  # noqa: E402
from policy.loading import load_causal_lm  # noqa: E402
from policy.losses import NextTokenLoss, TensorBatch  # noqa: E402
from policy.schedules import ScheduleConfig  # noqa: E402
from policy.tiny_model import TinyModelConfig, build_tiny_model, count_parameters  # noqa: E402
from policy.tokenizer import TokenizerConfig, train_tokenizer  # noqa: E402

OPTIMIZER = OptimizerConfig()  # every runner: lr 3e-4, betas (0.9, 0.95), eps 1e-8, wd 0.1, clip 1.0
MAX_LEN = 512
TRAIN_PROBLEMS = 4000
OURS, PLAIN, TRL_AMP, TRL_BF16 = "ours", "plain", "TRL amp", "TRL bf16"
RUNNERS = (OURS, PLAIN, TRL_AMP, TRL_BF16)


# --- the machine's bf16 peak ---------------------------------------------------------------


def bf16_matmul_peak(n: int = 2048, reps: int = 10) -> float:
    """FLOP/s of the fastest of `reps` n×n bf16 matmuls (2n³ FLOPs each)."""
    a = torch.randn(n, n).to(torch.bfloat16)
    b = torch.randn(n, n).to(torch.bfloat16)
    for _ in range(3):  # the first calls pick and pack the kernel
        a @ b
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


# --- data ----------------------------------------------------------------------------------


def build_data(work: Path):
    """Synthetic train problems (JSONL) and a tokenizer trained on them. -> (data file, tokenizer)"""
    train, _ = generate_splits(SyntheticDataConfig(seed=0, train_size=TRAIN_PROBLEMS, test_size=0))
    data = write_problems_jsonl(train, work / "train.jsonl")
    texts = [f"{p.problem}\n{p.solution}" for p in train]
    return data, train_tokenizer(texts, TokenizerConfig(vocab_size=2048), work / "tokenizer")


def sft_batches(data: Path, tokenizer, batch_size: int, steps: int) -> list[TensorBatch]:
    cfg = SFTDataConfig(train=ProblemFileConfig(path=str(data)), batch_size=batch_size, max_len=MAX_LEN)
    sft = SFTBatches(cfg, tokenizer)
    if sft.steps_per_epoch < steps:
        raise ValueError(f"{len(sft.examples)} conversations make {sft.steps_per_epoch} batches; {steps} are needed")
    return [sft.batch(step) for step in range(steps)]


def unpadded_rows(batches: list[TensorBatch]) -> dict[str, list[list[int]]]:
    """The batches' rows in order, without padding, as TRL takes pre-tokenised data."""
    rows: dict[str, list[list[int]]] = {"input_ids": [], "assistant_masks": []}
    for batch in batches:
        for row, length in enumerate(batch["attention_mask"].sum(dim=1).tolist()):
            rows["input_ids"].append(batch["input_ids"][row, :length].tolist())
            rows["assistant_masks"].append(batch["loss_mask"][row, :length].tolist())
    return rows


def real_tokens(batch: TensorBatch) -> int:
    return int(batch["attention_mask"].sum())


# --- ours and plain ------------------------------------------------------------------------


class Runner(Protocol):
    def step(self, batch: TensorBatch) -> float:
        """One optimizer step on `batch`; returns the loss (token mean)."""
        ...


class OurLearner:
    def __init__(self, model_dir: Path, batch_size: int):
        cfg = LearnerConfig(
            zero_stage=0,
            dtype="bfloat16",
            micro_batch_size=batch_size,  # one micro-batch per step, as the other runners
            device="cpu",
            optimizer=OPTIMIZER,
            schedule=ScheduleConfig(kind="constant", total_steps=10**6),
        )
        self.learner = Learner(load_causal_lm(model_dir), cfg)
        self.loss_fn = NextTokenLoss()

    def step(self, batch: TensorBatch) -> float:
        return self.learner.train_batch(batch, self.loss_fn)["loss"]


class PlainLoop:
    """DeepSpeed's bf16 numerics at ZeRO-0, written out: bf16 weights and gradients for forward
    and backward, fp32 master weights that torch AdamW updates, clipping on their gradients."""

    def __init__(self, model: torch.nn.Module, cfg: OptimizerConfig):
        self.model = model
        self.cfg = cfg
        model.config.use_cache = False
        self.pairs: list[tuple[torch.nn.Parameter, torch.Tensor]] = []  # (bf16 weight, its fp32 master)
        master_groups = []
        for group in _param_groups(model, cfg.weight_decay):  # the learner's grouping: same decay
            masters = [p.detach().clone() for p in group["params"]]  # fp32: the model is still fp32 here
            self.pairs += zip(group["params"], masters)
            master_groups.append({"params": masters, "weight_decay": group["weight_decay"]})
        model.to(torch.bfloat16)  # casts in place: the Parameter objects in `pairs` stay valid
        self.optimizer = torch.optim.AdamW(master_groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
        self.loss_fn = NextTokenLoss()

    def step(self, batch: TensorBatch) -> float:
        self.model.train()
        units = self.loss_fn.units(batch)
        loss_sum, _ = self.loss_fn(self.model, batch)
        (loss_sum / units).backward()
        for weight, master in self.pairs:
            master.grad = weight.grad.float()
            weight.grad = None
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([master for _, master in self.pairs], self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for weight, master in self.pairs:
                weight.copy_(master)
        return float(loss_sum.detach() / units)


# --- TRL, taking turns with the others --------------------------------------------------------


@dataclass(frozen=True)
class StepTime:
    runner: str
    trl_pass: str  # the TRL variant that drove the pass this step ran in
    step: int
    seconds: float


@dataclass
class Record:
    steps: list[StepTime] = field(default_factory=list)
    first_loss: dict[str, float] = field(default_factory=dict)  # the same work for all: the same first loss


@contextlib.contextmanager
def without_launcher_env() -> Iterator[None]:
    """Hide the RANK/LOCAL_RANK/... variables our learner set for its 1-process group: with
    LOCAL_RANK set, accelerate takes the process for a distributed launch and wraps TRL's
    model in DDP, a cost TRL does not pay when it runs alone."""
    names = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def sft_config(batch_size: int, steps: int, out_dir: Path):
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out_dir),
        use_cpu=True,
        bf16=True,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=1,
        max_steps=steps,
        max_length=MAX_LEN,
        packing=False,
        gradient_checkpointing=False,  # SFTConfig's default is True; ours and plain do not checkpoint
        train_sampling_strategy="sequential",
        optim="adamw_torch",
        learning_rate=OPTIMIZER.lr,
        adam_beta1=OPTIMIZER.beta1,
        adam_beta2=OPTIMIZER.beta2,
        adam_epsilon=OPTIMIZER.eps,
        weight_decay=OPTIMIZER.weight_decay,
        max_grad_norm=OPTIMIZER.grad_clip,
        lr_scheduler_type="constant",
        warmup_steps=0,
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        disable_tqdm=True,
        dataloader_pin_memory=False,
        seed=0,
    )


def trl_pass(variant: str, model_dir: Path, tokenizer, batches: list[TensorBatch], others: dict[str, Runner], record: Record, out_dir: Path) -> None:
    """Train TRL's SFTTrainer on `batches`; after each of its steps, the same step of `others`."""
    from datasets import Dataset
    from transformers import PrinterCallback, TrainerCallback
    from trl import SFTTrainer

    class TakeTurns(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.resumed = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            step = state.global_step - 1
            record.steps.append(StepTime(variant, variant, step, time.perf_counter() - self.resumed))
            # Alternate who goes first, so neither always runs right after TRL.
            order = list(others.items()) if step % 2 == 0 else list(others.items())[::-1]
            for name, runner in order:
                start = time.perf_counter()
                loss = runner.step(batches[step])
                record.steps.append(StepTime(name, variant, step, time.perf_counter() - start))
                record.first_loss.setdefault(name, loss)
            self.resumed = time.perf_counter()

    # Pre-tokenised: TRL skips its own chat rendering and builds labels from `assistant_masks`.
    dataset = Dataset.from_dict(unpadded_rows(batches))
    model = load_causal_lm(model_dir, dtype="bfloat16" if variant == TRL_BF16 else "float32")
    with without_launcher_env():  # TrainingArguments and the Accelerator read how the process was launched
        trainer = SFTTrainer(
            model=model,
            args=sft_config(batches[0]["input_ids"].shape[0], len(batches), out_dir),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[TakeTurns()],
        )
    trainer.remove_callback(PrinterCallback)  # it prints a summary even with logging off
    if trainer.accelerator.distributed_type != "NO":
        raise RuntimeError(f"TRL runs as {trainer.accelerator.distributed_type}, expected a single process")

    collated: list[tuple[int, int]] = []  # (real tokens, target tokens) of each batch TRL built
    collate, compute_loss = trainer.data_collator, trainer.compute_loss

    def collate_and_count(examples):
        batch = collate(examples)
        collated.append((int(batch["attention_mask"].sum()), int((batch["labels"][:, 1:] != -100).sum())))
        return batch

    def compute_and_keep_first(*args, **kwargs):
        loss = compute_loss(*args, **kwargs)
        record.first_loss.setdefault(variant, float(loss.detach()))
        return loss

    trainer.data_collator = collate_and_count
    trainer.compute_loss = compute_and_keep_first
    with without_launcher_env():
        trainer.train()

    ours = [(real_tokens(b), int(NextTokenLoss().units(b))) for b in batches]
    if collated[: len(batches)] != ours:
        raise RuntimeError(f"TRL trained on other batches than ours: {collated} != {ours}")


# --- one preset ------------------------------------------------------------------------------


@dataclass
class PresetResult:
    preset: str
    params: int
    tokens: list[int]  # real tokens of each step's batch
    warmup: int
    record: Record

    def timed(self, runner: str, passes: set[str]) -> list[StepTime]:
        return [s for s in self.record.steps if s.runner == runner and s.trl_pass in passes and s.step >= self.warmup]

    def passes(self, runner: str) -> set[str]:
        return {s.trl_pass for s in self.record.steps if s.runner == runner}

    def tokens_per_s(self, runner: str, passes: set[str] | None = None) -> float:
        steps = self.timed(runner, passes or self.passes(runner))
        return sum(self.tokens[s.step] for s in steps) / sum(s.seconds for s in steps)

    def ratio(self, a: str, b: str) -> float:
        """How many times faster `a` is than `b`: the median over steps of b's time / a's time on
        the same batch in the same pass. A median of paired ratios shrugs off the bursts of a
        shared machine that a ratio of totals would carry. Two TRL runs share no pass: their
        ratio goes through the runners that ran beside both (a/ours × ours/b, geometric mean
        with the same through plain), so the load's drift between passes cancels."""
        shared = self.passes(a) & self.passes(b)
        if not shared:
            bridges = [c for c in RUNNERS if self.passes(c) & self.passes(a) and self.passes(c) & self.passes(b)]
            return statistics.geometric_mean(self.ratio(a, c) * self.ratio(c, b) for c in bridges)
        times_b = {(s.trl_pass, s.step): s.seconds for s in self.timed(b, shared)}
        return statistics.median(times_b[s.trl_pass, s.step] / s.seconds for s in self.timed(a, shared))


def run_preset(preset: str, tokenizer, data: Path, work: Path, batch_size: int, warmup: int, steps: int) -> PresetResult:
    model_dir = work / preset
    params = count_parameters(build_tiny_model(TinyModelConfig(preset=preset, seed=0), tokenizer, model_dir))
    batches = sft_batches(data, tokenizer, batch_size, warmup + steps)
    ours = OurLearner(model_dir, batch_size)
    others: dict[str, Runner] = {OURS: ours, PLAIN: PlainLoop(load_causal_lm(model_dir), OPTIMIZER)}
    record = Record()
    for variant in (TRL_AMP, TRL_BF16):
        trl_pass(variant, model_dir, tokenizer, batches, others, record, work / f"trl-{preset}-{variant.replace(' ', '-')}")
    ours.learner.close()
    return PresetResult(preset, params, [real_tokens(b) for b in batches], warmup, record)


def print_table(result: PresetResult, peak: float) -> None:
    timed_tokens = result.tokens[result.warmup :]
    print(
        f"\n{result.preset}: {result.params / 1e6:.2f}M params; {len(timed_tokens)} timed steps per pass after "
        f"{result.warmup} warm-up; {statistics.mean(timed_tokens):,.0f} real tokens/step on average"
    )
    header = (
        f"{'runner':<9} {'steps':>5} {'median step s':>13} {'tokens/s':>9} {'× plain':>8} {'× TRL amp':>9} "
        f"{'× TRL bf16':>10} {'MFU':>6} {'loss step 0':>11}"
    )
    print(header)
    print("-" * len(header))
    for name in RUNNERS:
        steps = result.timed(name, result.passes(name))
        tokens_per_s = result.tokens_per_s(name)
        ratios = [f"{result.ratio(name, other):.2f}" if other != name else "-" for other in (PLAIN, TRL_AMP, TRL_BF16)]
        print(
            f"{name:<9} {len(steps):>5} {statistics.median(s.seconds for s in steps):>13.3f} {tokens_per_s:>9,.0f} "
            f"{ratios[0]:>8} {ratios[1]:>9} {ratios[2]:>10} {6 * result.params * tokens_per_s / peak:>6.1%} "
            f"{result.record.first_loss[name]:>11.4f}"
        )


def quiet_progress_bars() -> None:
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny-3m", "tiny-25m"])
    parser.add_argument("--batch-size", type=int, default=16, help="conversations per step (one micro-batch)")
    parser.add_argument("--warmup", type=int, default=2, help="steps per pass left out of the timings")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per pass")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (see the module docstring)")
    parser.add_argument("--json", type=Path, help="also write every step's time here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    quiet_progress_bars()
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    peak_start = bf16_matmul_peak()
    with tempfile.TemporaryDirectory(prefix="bench-learner-") as tmp:
        work = Path(tmp)
        data, tokenizer = build_data(work)
        results = [run_preset(p, tokenizer, data, work, args.batch_size, args.warmup, args.steps) for p in args.presets]
    peak_end = bf16_matmul_peak()
    peak = max(peak_start, peak_end)

    print(
        f"\nbf16 matmul peak (2048², {args.threads} threads): {peak / 1e9:,.0f} GFLOP/s "
        f"(start {peak_start / 1e9:,.0f}, end {peak_end / 1e9:,.0f})"
    )
    print(f"{args.batch_size} conversations per step, right-padded, max_len {MAX_LEN}; tokens/s counts real tokens only")
    print("× X: times as fast as X (median of per-step ratios on the same batches); MFU against the peak above")
    cores = os.cpu_count() or 1
    load = f"load average {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on {cores} cores"
    if max(load_start, os.getloadavg()[0]) + args.threads > cores + 0.5:
        load += ": other work competed for the cores, expect noise"
        if args.threads > 1:  # threads that wait for each other at every op lose most when one is descheduled
            load += " (--threads 1 holds up better)"
    print(load)
    for result in results:
        print_table(result, peak)
    if torch.get_num_threads() != args.threads:
        print(f"warning: something changed torch's threads to {torch.get_num_threads()} during the run")
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s")
    if args.json:
        write_json(args.json, results, peak, args)


def write_json(path: Path, results: list[PresetResult], peak: float, args: argparse.Namespace) -> None:
    import json

    rows = {
        "peak_flops": peak,
        "args": {k: str(v) for k, v in vars(args).items()},
        "presets": [
            {
                "preset": r.preset,
                "params": r.params,
                "tokens": r.tokens,
                "warmup": r.warmup,
                "first_loss": r.record.first_loss,
                "steps": [vars(s) for s in r.record.steps],
            }
            for r in results
        ],
    }
    path.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
