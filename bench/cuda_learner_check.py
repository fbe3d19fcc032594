"""The learner on a device, checked against itself and against the CPU: one short script.

    python bench/cuda_learner_check.py --device cuda [--out DIR]     # the GPU check (well under 3 min on one GPU)
    python bench/cuda_learner_check.py --device cpu                  # the same checks on the CPU (smoke run,
                                                                     # ~2 min on a busy 2-core machine)

On a machine without this project's full environment (no datasets, ray, vllm; DeepSpeed and
its pydantic/hjson from the wheels in .whl/, the repository on PYTHONPATH):

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site:$PWD && python3 bench/cuda_learner_check.py --device cuda --out "$OUT"

Everything runs the project's real code in this process, rank 0 of 1 (gloo on CPU, NCCL on
CUDA: `policy.learner.init_distributed` makes the group from a file store, no launcher and no
MASTER_ADDR/PORT): `policy.learner.Learner` with `policy.losses.NextTokenLoss`, and GRPO
through `rl.trainer.PolicyTrainer` (its `GRPOLoss` from `rl.policy_update`, with the KL term
on, so the frozen reference model is loaded on the device too). No Ray, vLLM, datasets or
latex2sympy2 is imported.

Built here, deterministically: a byte-level BPE tokenizer (`policy.tokenizer`, asked for 768
tokens, ~740 learned) trained on the project's own synthetic problems (`mathdata.synthetic`), and a freshly initialised Qwen2 of a
`policy.tiny_model` preset (tiny-3m), saved in HF format and loaded by every learner with
`policy.loading.load_causal_lm`, as the tests do.

Checks (each one runs on its own: a failure or an exception is recorded and the rest go on):

    logprob_kernel        `policy.losses.selected_logprobs` (the log-probs of both losses) against
                          log_softmax+gather in float64 on the device, values and gradients
    process_group         the backend the learner chose (nccl on CUDA, gloo on CPU), world size 1
    train_{dt}_z{S}       a few optimizer steps at ZeRO stage S in dtype dt: finite, loss goes down,
                          weights on the device (and bf16 in bf16)
    zero_agree_{dt}       ZeRO 2 and 3 follow ZeRO 0's loss trajectory (fp32 rel 1e-4; bf16: ZeRO 3
                          vs 2, and both vs ZeRO 0, rel 1e-2; see below)
    cpu_vs_device_fp32    the fp32 ZeRO-0 trajectory against the same run on the CPU (rel 1e-3);
                          the CPU run is a subprocess (DeepSpeed picks one accelerator per
                          process, and the process group's backend is fixed at its creation)
    export_{dt}_z{S}      `export_hf` reloads with exactly the learner's weights, and its logits
                          equal the learner engine's on the device
    resume_{dt}_z{S}      2 steps, checkpoint, a fresh learner resumes it: the next steps, the LR
                          and the final weights match the uninterrupted run
    grpo_logprobs_{dt}    log-probs of a hand-made GRPO batch recomputed on the device by the
                          learner's engine against the CPU's
    grpo_update_{dt}_z{S} one `PolicyTrainer.update` (2 mini-batches, KL on): finite metrics, the
                          weights move, the rollout log-prob diff is small
    grpo_vs_cpu_fp32      the fp32 GRPO update's metrics and the updated policy's log-probs against
                          the same update on the CPU
    timing_bf16_z{S}      (CUDA only by default) tokens/s of bf16 training of a larger preset

Why bf16 ZeRO 0 runs a different optimizer path: with bf16 and no ZeRO, DeepSpeed 0.19.8 wraps
the optimizer in FP16_UnfusedOptimizer, whose initialize_optimizer_states takes one AdamW step
on zero gradients when it is built (one weight-decay step, and a step count that shrinks the
first updates to ~0.73x). The learner undoes that step (`policy.learner._undo_zero_gradient_step`),
so ZeRO 0 now has to follow ZeRO 2/3 as closely as they follow each other; before the fix
this check allowed 6e-2. (grad_accum_dtype=fp32 is no fix at stage 0: without ZeRO, DeepSpeed
raises "unsupported mix of model_dtype and grad_accum_dtype".)

The result: a PASS/FAIL table at the end, exit status 1 on any FAIL or ERROR, and, with --out,
DIR/cuda_learner_check.json (every trajectory and number) and the CPU run's log. A watchdog
(--deadline, 300 s) prints the stacks, the table so far and the JSON, and exits 3, if the run hangs.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()
# torch 2.13 deprecates the collectives DeepSpeed's ZeRO calls, once per call: noise here
warnings.filterwarnings("ignore", message=r"`torch\.distributed\.\w+` is deprecated", category=FutureWarning)

import torch  # noqa: E402

STEPS = 6  # optimizer steps per trajectory
RESUME_AT = 2  # the resume check checkpoints after this many steps
FP32_LR, BF16_LR = 2e-3, 1e-3
ZERO_AGREE_RTOL = {"float32": 1e-4, "bfloat16": 1e-2}  # ZeRO 2, 3 against ZeRO 0 (bf16: see the docstring)
BF16_Z23_RTOL = 1e-2
CPU_DEVICE_RTOL = 1e-3


def short(dtype: str) -> str:
    """The dtype as check names spell it: float32 -> fp32, bfloat16 -> bf16."""
    return {"float32": "fp32", "bfloat16": "bf16"}[dtype]


def parse_run_spec(spec: str) -> tuple[str, int]:
    """'fp32:3' or 'float32:3' -> ('float32', 3)."""
    dtype, stage = spec.split(":")
    return {"fp32": "float32", "bf16": "bfloat16"}.get(dtype, dtype), int(stage)


# ---------------------------------------------------------------------------------------
# Assets: tokenizer, model, batches
# ---------------------------------------------------------------------------------------


def corpus(n: int = 4000) -> list[str]:
    """The project's own synthetic problems and worked solutions: text for a 768-token BPE."""
    from mathdata.synthetic import SyntheticDataConfig, generate_problems

    return [p.problem + "\n" + p.solution for p in generate_problems(SyntheticDataConfig(seed=0), n)]


def build_assets(workdir: Path, preset: str) -> Path:
    from policy.tiny_model import TinyModelConfig, build_tiny_model
    from policy.tokenizer import TokenizerConfig, train_tokenizer

    model_dir = workdir / "model"
    tokenizer = train_tokenizer(corpus(), TokenizerConfig(vocab_size=768), model_dir)
    build_tiny_model(TinyModelConfig(preset=preset, seed=0), tokenizer, model_dir)
    return model_dir


def lm_batch(tokenizer, rows: int = 8) -> dict[str, torch.Tensor]:
    """Rows of different lengths (padding) with masked-out prefixes of different lengths."""
    texts = [
        f"Compute {a} + {b}. {a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}. " * (1 + i % 3)
        for i, (a, b) in enumerate(zip(range(11, 11 + 10 * rows, 10), range(7, 7 + 97 * rows, 97)))
    ]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    loss_mask = enc["attention_mask"].clone()
    for row in range(rows):
        loss_mask[row, : 3 + row % 5] = 0
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "loss_mask": loss_mask}


def grpo_batch(model_dir: Path, vocab: int, rows: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """Prompts and responses of different lengths, advantages of both signs, and old log-probs
    computed by the initial policy on the CPU in fp32 (as a rollout engine would report them)."""
    from policy.loading import load_causal_lm
    from rl.policy_update import logits_and_logprobs, training_batch

    rng = random.Random(seed)
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(3, 9))] for _ in range(rows)]
    responses = [[rng.randrange(3, vocab) for _ in range(rng.randint(2, 12))] for _ in range(rows)]
    advantages = [rng.uniform(-1.5, 1.5) for _ in range(rows)]
    batch = training_batch(prompts, responses, [[0.0] * len(r) for r in responses], advantages, pad_id=0)
    model = load_causal_lm(model_dir).eval()
    with torch.no_grad():
        logprobs = logits_and_logprobs(model, batch)[1]
    batch["old_logprobs"] = (logprobs * batch["response_mask"]).float()
    return batch


# ---------------------------------------------------------------------------------------
# Learner runs
# ---------------------------------------------------------------------------------------


def learner_config(device: str, dtype: str, stage: int, *, micro: int = 4, schedule: dict | None = None, **optimizer):
    """The trajectories' config: 8 rows, so 2 micro-batches of 4 accumulated per step, and a WSD
    schedule. GRPO and the timing run pass their own micro-batch size, schedule and optimizer
    fields (`optimizer` overrides OptimizerConfig fields)."""
    from policy.learner import LearnerConfig, OptimizerConfig
    from policy.schedules import ScheduleConfig

    optimizer = {"lr": FP32_LR if dtype == "float32" else BF16_LR, "weight_decay": 0.1, **optimizer}
    schedule = schedule or {"kind": "wsd", "warmup_steps": 2, "total_steps": STEPS + 2, "decay_fraction": 0.25}
    return LearnerConfig(
        zero_stage=stage, dtype=dtype, micro_batch_size=micro, device=device,
        optimizer=OptimizerConfig(**optimizer), schedule=ScheduleConfig(**schedule),
    )


def make_learner(model_dir: Path, cfg):
    from policy.learner import Learner
    from policy.loading import load_causal_lm, load_tokenizer

    return Learner(load_causal_lm(model_dir), cfg, tokenizer=load_tokenizer(model_dir))


def run_steps(learner, batch, steps: int) -> list[dict[str, float]]:
    from policy.losses import NextTokenLoss

    return [learner.train_batch(batch, NextTokenLoss()) for _ in range(steps)]


def trajectory(metrics: list[dict[str, float]]) -> dict[str, list[float]]:
    return {key: [m.get(key, float("nan")) for m in metrics] for key in ("loss", "grad_norm", "lr", "tokens_per_s")}


def state_on_cpu(learner) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in learner.full_state_dict().items()}


def rel_diff(a: list[float], b: list[float]) -> float:
    return max((abs(x - y) / max(abs(x), abs(y), 1e-12) for x, y in zip(a, b, strict=True)), default=0.0)


def max_weight_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def weight_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return math.sqrt(sum(float(((a[k].double() - b[k].double()) ** 2).sum()) for k in a))


@torch.no_grad()
def engine_logprobs(learner, batch, device) -> torch.Tensor:
    from rl.policy_update import logits_and_logprobs

    learner.engine.eval()
    return logits_and_logprobs(learner.engine, {k: v.to(device) for k, v in batch.items()})[1].float().cpu()


def grpo_run(model_dir: Path, batch, device: str, dtype: str, stage: int) -> dict:
    """One PolicyTrainer.update (2 mini-batches, KL on) on `batch`; log-probs before and after."""
    from rl.algorithms import PolicyLossConfig
    from rl.trainer import PolicyTrainer

    learner_cfg = learner_config(
        device, dtype, stage, micro=3, schedule={"kind": "constant", "warmup_steps": 0},
        # eps well above float noise in the gradients (as tests/test_learner_group.py): Adam's
        # first step is lr*g/(|g|+eps), which would turn noise in a near-zero gradient into a full step
        lr=1e-2, weight_decay=0.0, eps=1e-3,
    )
    trainer = PolicyTrainer(str(model_dir), learner_cfg, PolicyLossConfig(clip_low=0.2, clip_high=0.28, kl_coef=0.05))
    learner = trainer.learner
    try:
        before_weights, before = state_on_cpu(learner), engine_logprobs(learner, batch, learner.device)
        metrics = trainer.update(dict(batch), num_minibatches=2)
        return {
            "metrics": metrics,
            "before": before,
            "after": engine_logprobs(learner, batch, learner.device),
            "moved": max_weight_diff(before_weights, state_on_cpu(learner)),
            "reference_device": None if trainer.reference is None else next(trainer.reference.parameters()).device.type,
            "param_dtype": str(next(learner.module.parameters()).dtype),
            "step": trainer.step,
        }
    finally:
        learner.close()


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class Report:
    def __init__(self) -> None:
        self.checks: list[dict] = []

    def add(self, name: str, status: str, detail: str, seconds: float = 0.0, **extra) -> None:
        self.checks.append({"name": name, "status": status, "detail": detail, "seconds": seconds, **extra})
        print(f"[{status}] {name}: {detail}", flush=True)

    def skip(self, name: str, why: str) -> None:
        self.add(name, "SKIP", why)

    def run(self, name: str, fn, *args, extra_seconds: float = 0.0, describe=None, **kwargs):
        """Run one check and return what `fn` returns (None unless it passed); never raises.
        `fn` passes by returning (its detail is the value if a string, else `describe(value)`),
        fails by raising CheckFailed; any other exception is an ERROR, with its traceback.
        `extra_seconds`: time spent on the check's work before the call (shown in the table)."""
        start = time.perf_counter() - extra_seconds
        try:
            value = fn(*args, **kwargs)
        except CheckFailed as err:
            self.add(name, "FAIL", str(err), time.perf_counter() - start)
            return None
        except Exception as err:  # noqa: BLE001 - recorded, and the other checks go on
            tb = traceback.format_exc()
            print(f"--- {name}:\n{tb}", flush=True)
            self.add(name, "ERROR", f"{type(err).__name__}: {err}", time.perf_counter() - start, traceback=tb)
            return None
        detail = value if isinstance(value, str) else (describe(value) if describe else "")
        self.add(name, "PASS", detail, time.perf_counter() - start)
        return value

    def ran(self, name: str) -> bool:
        return any(c["name"] == name for c in self.checks)

    @property
    def failed(self) -> bool:
        return any(c["status"] in ("FAIL", "ERROR") for c in self.checks)

    def table(self) -> str:
        width = max((len(c["name"]) for c in self.checks), default=10)
        lines = [f"{'check':<{width}}  status  secs  detail", "-" * (width + 60)]
        for c in self.checks:
            detail = c["detail"].replace("\n", " ")
            if len(detail) > 150:
                detail = detail[:147] + "..."
            lines.append(f"{c['name']:<{width}}  {c['status']:<6} {c['seconds']:5.1f}  {detail}")
        counts = {s: sum(c["status"] == s for c in self.checks) for s in ("PASS", "FAIL", "ERROR", "SKIP")}
        lines.append("-" * (width + 60))
        lines.append("  ".join(f"{k} {v}" for k, v in counts.items()) + ("   => FAILED" if self.failed else "   => ALL PASSED"))
        return "\n".join(lines)


def fmt(values: list[float], digits: int = 5) -> str:
    return "[" + ", ".join(f"{v:.{digits}g}" for v in values) + "]"


# ---------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------


def check_logprob_kernel(device: torch.device, vocab: int) -> str:
    """`selected_logprobs` on [4, 33, V] fp32 logits sliced as the losses slice them (logits[:, :-1],
    not contiguous), against log_softmax + gather in float64: values, and gradients of a sum
    weighted differently at each position."""
    from policy.losses import selected_logprobs

    gen = torch.Generator().manual_seed(0)
    full = (torch.randn(4, 34, vocab, generator=gen) * 3).to(device).requires_grad_(True)
    tokens = torch.randint(0, vocab, (4, 33), generator=gen).to(device)
    weights = torch.linspace(-1, 1, tokens.numel(), device=device, dtype=torch.float64).view_as(tokens)
    got = selected_logprobs(full[:, :-1].float(), tokens)
    (got * weights.float()).sum().backward()
    ref_logits = full.detach()[:, :-1].double().requires_grad_(True)
    ref = ref_logits.log_softmax(-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    (ref * weights).sum().backward()
    value_err = float((got.detach().double() - ref.detach()).abs().max())
    grad_err = float((full.grad[:, :-1].double() - ref_logits.grad).abs().max())
    detail = f"max |err| value {value_err:.2e}, grad {grad_err:.2e}"
    expect(value_err < 1e-4 and grad_err < 1e-5, detail)
    return detail


def check_process_group(device: torch.device) -> str:
    import torch.distributed as dist

    backend = dist.get_backend()
    want = "nccl" if device.type == "cuda" else "gloo"
    detail = f"backend {backend}, world size {dist.get_world_size()}, rank {dist.get_rank()}"
    expect(backend == want and dist.get_world_size() == 1, f"{detail}; expected {want}, 1")
    return detail


def check_train(run: dict, device: torch.device, dtype: str) -> str:
    losses = run["traj"]["loss"]
    detail = f"loss {fmt(losses, 4)} grad_norm {fmt(run['traj']['grad_norm'], 3)}"
    expect(all(math.isfinite(x) for x in losses + run["traj"]["grad_norm"]), "non-finite: " + detail)
    expect(run["param_device"] == device.type, f"params on {run['param_device']}, not {device.type}")
    want_dtype = f"torch.{dtype}"
    expect(run["param_dtype"] == want_dtype, f"params are {run['param_dtype']}, not {want_dtype}")
    expect(losses[-1] < 0.9 * losses[0], "loss did not go down: " + detail)
    expect(all(b < a for a, b in zip(losses[:3], losses[1:4])), "loss not decreasing over the first steps: " + detail)
    return detail


def check_zero_agree(runs: dict, dtype: str, stages: list[int]) -> str:
    """fp32: ZeRO 2 and 3 against ZeRO 0, tight. bf16: ZeRO 3 against ZeRO 2 (the same optimizer
    path), and both against ZeRO 0, at 1e-2 (the module docstring says why ZeRO 0 is apart)."""
    sharded = [s for s in stages if s > 0]
    pairs = [(stage, 0, ZERO_AGREE_RTOL[dtype]) for stage in sharded]
    if dtype == "bfloat16":
        pairs = [(b, a, BF16_Z23_RTOL) for a, b in zip(sharded, sharded[1:])] + pairs
    parts, ok = [], True
    for stage, base, tol in pairs:
        if (dtype, stage) not in runs or (dtype, base) not in runs:
            ok = False
            parts.append(f"z{stage} vs z{base}: no run")
            continue
        a, b = runs[(dtype, base)]["traj"], runs[(dtype, stage)]["traj"]
        loss_rel = rel_diff(a["loss"], b["loss"])
        ok = ok and loss_rel <= tol
        parts.append(f"z{stage} vs z{base}: loss rel {loss_rel:.1e} (tol {tol:g}), grad_norm rel {rel_diff(a['grad_norm'], b['grad_norm']):.1e}")
    detail = "; ".join(parts)
    expect(ok, detail)
    return detail


def check_export(learner, model_dir: Path, out: Path, device: torch.device, dtype: str, batch) -> str:
    from policy.loading import load_causal_lm, load_tokenizer

    state = state_on_cpu(learner)
    path = learner.export_hf(out)
    expect(load_tokenizer(path).get_vocab() == load_tokenizer(model_dir).get_vocab(), "exported tokenizer differs")
    reloaded = load_causal_lm(path, dtype=dtype, device=device).eval()
    reloaded_state = {k: v.detach().cpu() for k, v in reloaded.state_dict().items()}
    mismatched = [k for k in state if not torch.equal(state[k], reloaded_state[k].to(state[k].dtype))]
    expect(not mismatched, f"exported weights differ from the learner's: {mismatched[:3]}")
    exported_embed = reloaded_state["model.embed_tokens.weight"]
    initial_embed = load_causal_lm(model_dir).model.embed_tokens.weight.to(exported_embed.dtype)
    expect(not torch.equal(initial_embed, exported_embed), "export holds the initial weights, not the trained ones")
    learner.engine.eval()
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    with torch.no_grad():
        learner_logits = learner.engine(input_ids=ids, attention_mask=mask).logits.float()
        export_logits = reloaded(input_ids=ids, attention_mask=mask).logits.float()
    keep = mask.bool()
    diff = float((learner_logits - export_logits)[keep].abs().max())
    scale = float(learner_logits[keep].abs().max())
    detail = f"weights bit-identical ({len(state)} tensors); logits {'bit-identical' if diff == 0 else f'max |diff| {diff:.2e} (max |logit| {scale:.2f})'}"
    expect(diff == 0.0, detail)
    return detail


def check_resume(model_dir: Path, batch, device: str, dtype: str, stage: int, straight: dict, ckpt_root: Path) -> str:
    from policy.learner import latest_checkpoint

    first = make_learner(model_dir, learner_config(device, dtype, stage))
    try:
        run_steps(first, batch, RESUME_AT)
        at_checkpoint = state_on_cpu(first)
        first.save_checkpoint(ckpt_root, client_state={"data_position": 17})
    finally:
        first.close()
    resumed = make_learner(model_dir, learner_config(device, dtype, stage))
    try:
        path = latest_checkpoint(ckpt_root)
        expect(path is not None and path.name == f"step_{RESUME_AT:08d}", f"latest checkpoint is {path}")
        client = resumed.load_checkpoint(path)
        expect(client == {"data_position": 17}, f"client_state {client}")
        expect(resumed.step == RESUME_AT, f"step {resumed.step} after resume")
        losses = [m["loss"] for m in run_steps(resumed, batch, STEPS - RESUME_AT)]
        lr = resumed.scheduler.get_last_lr()[0]
        final = state_on_cpu(resumed)
    finally:
        resumed.close()
    loss_rel = rel_diff(straight["traj"]["loss"][RESUME_AT:], losses)
    # how far the resumed weights are from the uninterrupted run's, against how far the
    # uninterrupted run moved after the checkpoint (a lost optimizer state moves them by ~that)
    ratio = weight_distance(final, straight["final"]) / max(weight_distance(straight["final"], at_checkpoint), 1e-30)
    loss_tol, ratio_tol = (1e-5, 1e-3) if dtype == "float32" else (1e-3, 2e-2)
    detail = (
        f"steps {RESUME_AT + 1}..{STEPS}: loss rel diff {loss_rel:.1e} (tol {loss_tol:g}); weight distance / "
        f"post-ckpt update {ratio:.1e} (tol {ratio_tol:g}); max |w diff| {max_weight_diff(final, straight['final']):.1e}; "
        f"lr {lr:.3g} vs {straight['last_lr']:.3g}"
    )
    expect(loss_rel <= loss_tol and ratio <= ratio_tol and abs(lr - straight["last_lr"]) <= 1e-12, detail)
    return detail


def check_grpo_logprobs(run: dict, batch, dtype: str) -> str:
    mask = batch["response_mask"].bool()
    diff = (run["before"] - batch["old_logprobs"])[mask].abs()
    tol = 1e-4 if dtype == "float32" else 0.1
    detail = f"{int(mask.sum())} response tokens: max |device - cpu| {float(diff.max()):.2e}, mean {float(diff.mean()):.2e} (tol {tol:g})"
    expect(float(diff.max()) <= tol, detail)
    return detail


def check_grpo_update(run: dict, dtype: str) -> str:
    m = run["metrics"]
    keys = ["loss", "kl", "pg_loss", "clip_fraction", "entropy", "rollout_logprob_diff", "grad_norm"]
    detail = ", ".join(f"{k} {m.get(k, float('nan')):.4g}" for k in keys) + f", steps {run['step']}, max |w change| {run['moved']:.2e}, ref on {run['reference_device']}"
    expect(all(math.isfinite(m.get(k, float("nan"))) for k in keys), "missing or non-finite metric: " + detail)
    expect(run["step"] == 2 and m["optimizer_steps"] == 2.0, "expected 2 optimizer steps: " + detail)
    expect(run["moved"] > 1e-4, "weights did not move: " + detail)
    expect(m["rollout_logprob_diff"] <= (1e-4 if dtype == "float32" else 0.1), "rollout_logprob_diff too large: " + detail)
    expect(m["kl"] >= 0, "negative KL: " + detail)
    return detail


def check_grpo_vs_cpu(run: dict, cpu: dict, batch) -> str:
    mask = batch["response_mask"].bool()
    parts, ok = [], True
    for key in ("loss", "pg_loss", "kl", "entropy", "grad_norm"):
        a, b = run["metrics"][key], cpu["metrics"][key]
        ok = ok and abs(a - b) <= 1e-3 * max(abs(a), abs(b)) + 1e-6
        parts.append(f"{key} {a:.5g}/{b:.5g}")
    after = float((run["after"] - cpu["after"])[mask].abs().max())
    ok = ok and after <= 1e-3
    detail = "device/cpu: " + ", ".join(parts) + f"; updated log-probs max |diff| {after:.2e}"
    expect(ok, detail)
    return detail


def check_cpu_vs_device(run: dict, cpu_traj: dict) -> str:
    loss_rel = rel_diff(cpu_traj["loss"], run["traj"]["loss"])
    gn_rel = rel_diff(cpu_traj["grad_norm"], run["traj"]["grad_norm"])
    detail = f"loss rel {loss_rel:.1e} (tol {CPU_DEVICE_RTOL:g}), grad_norm rel {gn_rel:.1e} (tol 1e-2); cpu loss {fmt(cpu_traj['loss'], 6)}"
    expect(loss_rel <= CPU_DEVICE_RTOL and gn_rel <= 1e-2, detail)
    return detail


def timing_run(model_dir: Path, device: str, stage: int, rows: int, seq: int, steps: int, vocab: int) -> str:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (rows, seq), generator=gen)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "loss_mask": torch.ones_like(ids)}
    cfg = learner_config(device, "bfloat16", stage, micro=max(1, rows // 2), schedule={"kind": "constant"}, lr=1e-4)
    learner = make_learner(model_dir, cfg)
    try:
        run_steps(learner, batch, 2)  # warm-up
        metrics = run_steps(learner, batch, steps)
    finally:
        learner.close()
    expect(all(math.isfinite(m["loss"]) for m in metrics), "non-finite loss")
    median_rate = sorted(m["tokens_per_s"] for m in metrics)[len(metrics) // 2]
    median_ms = sorted(m["step_time_s"] for m in metrics)[len(metrics) // 2] * 1000
    return f"{median_rate:,.0f} tokens/s (median of {steps}; {rows}x{seq} tokens/step, {median_ms:.0f} ms/step)"


# ---------------------------------------------------------------------------------------
# The CPU reference (a subprocess)
# ---------------------------------------------------------------------------------------


def cpu_reference_worker(workdir: Path) -> None:
    """The fp32 ZeRO-0 trajectory and the fp32 GRPO update, on the CPU, from the same files."""
    model_dir = workdir / "model"
    batches = torch.load(workdir / "batches.pt")
    learner = make_learner(model_dir, learner_config("cpu", "float32", 0))
    try:
        traj = trajectory(run_steps(learner, batches["lm"], STEPS))
    finally:
        learner.close()
    grpo = grpo_run(model_dir, batches["grpo"], "cpu", "float32", 0)
    torch.save({"traj": traj, "grpo": {k: grpo[k] for k in ("metrics", "after", "before")}}, workdir / "cpu_ref.pt")
    print("cpu reference done:", fmt(traj["loss"], 6), flush=True)


def start_cpu_reference(workdir: Path) -> subprocess.Popen:
    env = dict(os.environ)
    env.update(CUDA_VISIBLE_DEVICES="", DS_ACCELERATOR="cpu")  # DeepSpeed picks its accelerator by itself
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))  # half the cores: the device run goes on
    cmd = [sys.executable, str(Path(__file__).resolve()), "--device", "cpu", "--cpu-reference-worker", str(workdir)]
    log = (workdir / "cpu_ref.log").open("w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT))


def wait_cpu_reference(proc: subprocess.Popen, workdir: Path, timeout: float, report: Report) -> dict | None:
    start = time.perf_counter()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        report.add("cpu_reference", "ERROR", f"timed out after {timeout:.0f}s", time.perf_counter() - start)
        return None
    log = (workdir / "cpu_ref.log").read_text(errors="replace")
    if proc.returncode != 0 or not (workdir / "cpu_ref.pt").exists():
        print(log[-4000:], flush=True)
        tail = " | ".join(log.strip().splitlines()[-5:])
        report.add("cpu_reference", "ERROR", f"exit {proc.returncode}: {tail}", time.perf_counter() - start)
        return None
    waited = time.perf_counter() - start
    report.add("cpu_reference", "PASS", f"CPU subprocess done (waited {waited:.1f}s)", waited)
    return torch.load(workdir / "cpu_ref.pt")


def skip_cpu_shm_op() -> None:
    """DeepSpeed's CPU accelerator JIT-builds (C++, with ninja and the Python headers) a
    shared-memory all-reduce op when its process group starts; only its inference all-reduce
    uses it, never training, and never at world size 1. The CPU reference skips the build: on a
    fresh GPU machine it would cost half a minute, or fail where no compiler is installed."""
    import deepspeed.ops

    deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False


# ---------------------------------------------------------------------------------------


def environment(device: torch.device) -> dict:
    """Versions and device facts, for the record (never raises)."""
    env: dict = {"python": platform.python_version(), "torch": torch.__version__, "device": str(device), "cpu_count": os.cpu_count()}
    facts = {
        "transformers": lambda: __import__("transformers").__version__,
        "deepspeed": lambda: __import__("deepspeed").__version__,
        "deepspeed_accelerator": lambda: __import__("deepspeed").get_accelerator()._name,
    }
    if device.type == "cuda":
        facts.update(
            gpu=lambda: torch.cuda.get_device_name(0),
            gpu_memory_gib=lambda: round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
            cuda=lambda: torch.version.cuda,
            nccl=lambda: str(torch.cuda.nccl.version()),
            bf16_supported=lambda: torch.cuda.is_bf16_supported(),
            matmul_allow_tf32=lambda: torch.backends.cuda.matmul.allow_tf32,
            cudnn_allow_tf32=lambda: torch.backends.cudnn.allow_tf32,
            triton=lambda: __import__("triton").__version__,
            cxx_compiler=lambda: shutil.which("c++") or shutil.which("g++") or shutil.which("gcc"),
        )
    for key, fact in facts.items():
        try:
            env[key] = fact()
        except Exception as err:  # noqa: BLE001
            env[key] = f"unavailable ({type(err).__name__}: {err})"
    return env


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--device", choices=["cuda", "cpu"], default="cuda")
    add("--out", type=Path, default=None, help="directory for cuda_learner_check.json and the CPU run's log")
    add("--preset", default="tiny-3m")
    add("--stages", type=int, nargs="+", default=[0, 2, 3])
    add("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    add("--resume", nargs="*", default=["float32:0", "float32:3", "bfloat16:2"], help="dtype:stage pairs for the resume check")
    add("--export", nargs="*", default=["float32:0", "float32:3", "bfloat16:0", "bfloat16:3"], help="dtype:stage pairs for the export check")
    add("--grpo", nargs="*", default=["float32:0", "bfloat16:3"], help="dtype:stage pairs for the GRPO update")
    add("--timing", choices=["auto", "on", "off"], default="auto", help="auto: on CUDA only")
    add("--timing-preset", default="tiny-25m")
    add("--timing-rows", type=int, default=16)
    add("--timing-seq", type=int, default=512)
    add("--timing-steps", type=int, default=5)
    add("--no-cpu-reference", action="store_true", help="skip the CPU subprocess (and the checks against it)")
    add("--cpu-ref-timeout", type=float, default=240, help="seconds to wait for the CPU reference after the device checks")
    add("--deadline", type=float, default=300, help="after this many seconds, print the table so far, write the JSON and exit 3 (a hang still reports)")
    add("--keep", action="store_true", help="keep the work directory")
    add("--cpu-reference-worker", type=Path, default=None, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.device == "cpu":
        # DeepSpeed picks its accelerator by itself (CUDA whenever one is visible), whatever
        # device the learner is given: on a GPU machine a CPU run must say so.
        os.environ.setdefault("DS_ACCELERATOR", "cpu")

    import deepspeed
    import transformers

    transformers.utils.logging.disable_progress_bar()  # one "Loading weights" bar per model load
    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    deepspeed.utils.logger.setLevel(logging.WARNING)

    if args.cpu_reference_worker is not None:
        skip_cpu_shm_op()
        cpu_reference_worker(args.cpu_reference_worker)
        return 0

    from mathrl.device import resolve_device

    device = resolve_device(args.device)
    t_start = time.perf_counter()
    report = Report()
    workdir = Path(tempfile.mkdtemp(prefix="cuda-learner-check-"))
    results: dict = {"env": environment(device), "args": {k: str(v) for k, v in vars(args).items()}, "runs": {}, "grpo": {}}
    print("environment:", json.dumps(results["env"]), flush=True)
    live: dict = {"cpu_proc": None}  # what the watchdog must kill if it fires
    watchdog = threading.Timer(args.deadline, deadline_passed, (args, report, results, live, t_start, device))
    watchdog.daemon = True
    watchdog.start()

    try:
        from policy.loading import load_tokenizer

        model_dir = build_assets(workdir, args.preset)
        tokenizer = load_tokenizer(model_dir)
        batches = {"lm": lm_batch(tokenizer), "grpo": grpo_batch(model_dir, len(tokenizer))}
        torch.save(batches, workdir / "batches.pt")  # the CPU reference reads the same batches
        print(f"assets: {args.preset}, vocab {len(tokenizer)}, lm batch {tuple(batches['lm']['input_ids'].shape)}, grpo batch {tuple(batches['grpo']['input_ids'].shape)} ({time.perf_counter() - t_start:.1f}s)", flush=True)
        if not args.no_cpu_reference:  # it runs while the device checks do
            live["cpu_proc"] = start_cpu_reference(workdir)

        report.run("logprob_kernel", check_logprob_kernel, device, len(tokenizer))

        # --- trajectories (and the export checks, from the same learner) ---
        runs: dict = {}  # (dtype, stage) -> the trajectory, final weights and LR, where the params are
        exports = {parse_run_spec(s) for s in args.export}
        for dtype in args.dtypes:
            for stage in args.stages:
                name = f"{short(dtype)}_z{stage}"
                learner, t_run = None, time.perf_counter()
                try:
                    learner = make_learner(model_dir, learner_config(args.device, dtype, stage))
                    if not report.ran("process_group"):  # the first learner made the group
                        report.run("process_group", check_process_group, device)
                    metrics = run_steps(learner, batches["lm"], STEPS)
                    param = next(learner.module.parameters())
                    run = runs[(dtype, stage)] = {
                        "traj": trajectory(metrics),
                        "final": state_on_cpu(learner),
                        "last_lr": learner.scheduler.get_last_lr()[0],
                        "param_device": param.device.type,
                        "param_dtype": str(param.dtype),
                    }
                    results["runs"][name] = run["traj"]
                    print(f"trajectory {name}: loss {fmt(run['traj']['loss'], 6)}", flush=True)
                    report.run(f"train_{name}", check_train, run, device, dtype, extra_seconds=time.perf_counter() - t_run)
                    if (dtype, stage) in exports:
                        report.run(f"export_{name}", check_export, learner, model_dir, workdir / f"export_{name}", device, dtype, batches["lm"])
                except Exception as err:  # noqa: BLE001 - the run failed: recorded as its train check
                    report.run(f"train_{name}", _raise, err, extra_seconds=time.perf_counter() - t_run)
                finally:
                    if learner is not None:
                        _close(learner)
            if 0 in args.stages and len(args.stages) > 1:
                report.run(f"zero_agree_{short(dtype)}", check_zero_agree, runs, dtype, args.stages)

        # --- resume ---
        for dtype, stage in map(parse_run_spec, args.resume):
            name = f"resume_{short(dtype)}_z{stage}"
            if (dtype, stage) not in runs:
                report.skip(name, "no uninterrupted run of this configuration to compare with")
            else:
                report.run(name, check_resume, model_dir, batches["lm"], args.device, dtype, stage, runs[(dtype, stage)], workdir / f"ckpt_{name}")

        # --- GRPO ---
        grpo_runs: dict = {}
        for dtype, stage in map(parse_run_spec, args.grpo):
            name = f"{short(dtype)}_z{stage}"
            run = report.run(f"grpo_run_{name}", grpo_run, model_dir, batches["grpo"], args.device, dtype, stage, describe=lambda r: f"params {r['param_dtype']}")
            if run is not None:
                grpo_runs[(dtype, stage)] = run
                results["grpo"][name] = run["metrics"]
                report.run(f"grpo_logprobs_{name}", check_grpo_logprobs, run, batches["grpo"], dtype)
                report.run(f"grpo_update_{name}", check_grpo_update, run, dtype)

        # --- timing ---
        if args.timing == "on" or (args.timing == "auto" and device.type == "cuda"):
            from policy.tiny_model import TinyModelConfig, build_tiny_model, count_parameters

            timing_dir = workdir / "model_timing"

            def build_timing_model() -> str:
                model = build_tiny_model(TinyModelConfig(preset=args.timing_preset, seed=0), tokenizer, timing_dir)
                return f"{args.timing_preset}: {count_parameters(model) / 1e6:.1f}M parameters, bf16, {args.timing_rows}x{args.timing_seq} tokens per step"

            if report.run("timing_model", build_timing_model) is not None:
                for stage in args.stages:
                    report.run(f"timing_bf16_z{stage}", timing_run, timing_dir, args.device, stage, args.timing_rows, args.timing_seq, args.timing_steps, len(tokenizer))

        # --- against the CPU ---
        if live["cpu_proc"] is not None:
            cpu = wait_cpu_reference(live["cpu_proc"], workdir, args.cpu_ref_timeout, report)
            live["cpu_proc"] = None
            if cpu is not None:
                results["runs"]["cpu_fp32_z0"] = cpu["traj"]
            against_cpu = [  # (check, the device runs it compares, what it needs, how it compares)
                ("cpu_vs_device_fp32", runs, "no device fp32 ZeRO-0 run", lambda run: check_cpu_vs_device(run, cpu["traj"])),
                ("grpo_vs_cpu_fp32", grpo_runs, "no device fp32 ZeRO-0 GRPO run", lambda run: check_grpo_vs_cpu(run, cpu["grpo"], batches["grpo"])),
            ]
            for name, device_runs, missing, compare in against_cpu:
                if cpu is None:
                    report.skip(name, "the CPU reference failed (see cpu_reference)")
                elif ("float32", 0) not in device_runs:
                    report.skip(name, missing)
                else:
                    report.run(name, compare, device_runs[("float32", 0)])
    except Exception as err:  # noqa: BLE001 - setup failed: nothing else can run
        report.run("setup", _raise, err)
    finally:
        if live["cpu_proc"] is not None:
            live["cpu_proc"].kill()
        if args.out is not None and (workdir / "cpu_ref.log").exists():
            args.out.mkdir(parents=True, exist_ok=True)
            shutil.copy(workdir / "cpu_ref.log", args.out / "cpu_ref.log")
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    watchdog.cancel()
    finish(args, report, results, t_start, device)
    return 1 if report.failed else 0


def finish(args, report: Report, results: dict, t_start: float, device: torch.device) -> None:
    results["checks"] = report.checks
    results["seconds"] = time.perf_counter() - t_start
    results["passed"] = not report.failed
    print()
    print(f"cuda_learner_check on {device} ({results['env'].get('gpu', platform.processor() or 'cpu')}), {results['seconds']:.0f}s")
    print(report.table(), flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cuda_learner_check.json").write_text(json.dumps(results, indent=1, default=str))
        print(f"results: {args.out / 'cuda_learner_check.json'}", flush=True)


def deadline_passed(args, report: Report, results: dict, live: dict, t_start: float, device: torch.device) -> None:
    """The watchdog: where the main thread is stuck, the checks so far, then exit 3."""
    import faulthandler

    print(f"\nDEADLINE: {args.deadline:.0f}s passed; where each thread is:", flush=True)
    faulthandler.dump_traceback(all_threads=True)
    if live.get("cpu_proc") is not None:
        live["cpu_proc"].kill()
    report.add("deadline", "ERROR", f"still running after {args.deadline:.0f}s (stacks above)")
    try:
        finish(args, report, results, t_start, device)
    finally:
        os._exit(3)


def _raise(err: Exception):
    """Lets `Report.run` record an exception caught elsewhere as an ERROR, with its traceback."""
    raise err


def _close(learner) -> None:
    try:
        learner.close()
    except Exception as err:  # noqa: BLE001
        print(f"closing a learner failed: {type(err).__name__}: {err}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
