"""Rollout throughput: our rollout (vLLM inside a Ray actor) against Hugging Face `generate`,
on the same model, prompts and sampling settings, and the cost of one weight push.

Workload (a GRPO step's generation): P MATH-500 problems as chat prompts, n=8 samples each,
temperature 1, top-p 1, exactly T new tokens per sample (EOS ignored on both sides:
`ignore_eos` for vLLM, `min_new_tokens` for HF), so both produce P*n*T tokens.

- HF: one `generate` call over all P*n sequences (left-padded batch, KV cache, sampling),
  in float32 and in bfloat16, with 1 torch thread and with one per core (on a loaded
  machine the spinning OpenMP threads can make 2 threads slower than 1); the ratios are
  taken against the faster of the two.
- Ours: `RolloutWorkers.generate` end to end (tokenization, Ray calls, gather), after one
  warm-up call, in each engine dtype and CPU layout:
    auto  one engine, vLLM's default binding (compute on one core, front end on the rest)
    all   one engine, compute threads on every core (VLLM_CPU_OMP_THREADS_BIND=0-N)
    2x1   two engines, one core each (prompts split between them)
- Weight push: `RolloutWorkers.load_weights` of the model's own fp32 state dict (stage as
  safetensors on /dev/shm, every engine reloads in place), mean of 2, reported against the
  generation time of the same engine setup.

Models are random-initialised tiny Qwen2s (content does not matter when EOS is ignored).
Timings on shared machines are noisy: the load average is printed with the results.

    python bench/rollout_throughput.py [--presets tiny-3m,tiny-25m] [--prompts 32] [--n 8] [--tokens 128]
                                       [--dtypes float32,bfloat16] [--layouts auto,all,2x1] [--hf-threads 1,2]
                                       [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mathrl.env import set_local_defaults  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@dataclass
class Result:
    preset: str
    params_m: float
    system: str  # "hf" or "vllm"
    dtype: str
    layout: str  # HF: torch threads; vLLM: auto / all / 2x1
    tokens: int
    seconds: float
    push_s: float | None = None  # vLLM only: one weight push

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


def build_model(preset: str, out_dir: Path, texts: list[str]) -> tuple[Path, float]:
    from policy.tiny_model import TinyModelConfig, build_tiny_model, count_parameters
    from policy.tokenizer import TokenizerConfig, train_tokenizer

    model_dir = out_dir / preset
    tokenizer = train_tokenizer(texts, TokenizerConfig(), model_dir)
    model = build_tiny_model(TinyModelConfig(preset=preset, seed=0), tokenizer, model_dir)
    return model_dir, count_parameters(model) / 1e6


def bench_hf(model_dir: Path, dtype: str, threads: int, prompts: list[str], n: int, tokens: int) -> Result:
    import torch

    torch.set_num_threads(threads)
    from policy.loading import load_causal_lm, load_tokenizer
    from mathdata.prompts import PromptConfig
    from rollout.engine import prompt_messages

    tokenizer = load_tokenizer(model_dir)
    tokenizer.padding_side = "left"  # generation continues from the right edge
    model = load_causal_lm(model_dir, dtype=dtype).eval()
    texts = [tokenizer.apply_chat_template(prompt_messages(p, PromptConfig()), add_generation_prompt=True, tokenize=False) for p in prompts]

    def run(batch: list[str], new_tokens: int) -> float:
        enc = tokenizer(batch, padding=True, return_tensors="pt", add_special_tokens=False)
        start = time.perf_counter()
        with torch.no_grad():
            out = model.generate(
                **enc,
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                num_return_sequences=n,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        seconds = time.perf_counter() - start
        assert out.shape == (len(batch) * n, enc["input_ids"].shape[1] + new_tokens)
        return seconds

    torch.manual_seed(0)
    run(texts[:2], 4)  # warm-up: first-call allocations and kernel selection
    seconds = run(texts, tokens)
    return Result("", 0.0, "hf", dtype, f"{threads} thread{'s' * (threads > 1)}", len(texts) * n * tokens, seconds)


def bench_vllm(model_dir: Path, dtype: str, layout: str, prompts: list[str], n: int, tokens: int) -> Result:
    from policy.loading import load_causal_lm
    from rollout.config import EngineConfig, RolloutConfig
    from rollout.worker import RolloutWorkers

    workers = 2 if layout == "2x1" else 1
    cfg = RolloutConfig(
        n=n,
        temperature=1.0,
        top_p=1.0,
        max_tokens=tokens,
        num_workers=workers,
        cpus_per_worker=1.0,
        engine=EngineConfig(dtype=dtype, max_model_len=1024, max_num_seqs=256, kv_cache_gb=2.0),
    )
    saved = os.environ.pop("VLLM_CPU_OMP_THREADS_BIND", None)
    if layout == "all":
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = f"{min(os.sched_getaffinity(0))}-{max(os.sched_getaffinity(0))}"
    group = None
    try:
        group = RolloutWorkers(model_dir, cfg)
        group.generate(prompts[:2], max_tokens=4, ignore_eos=True)  # warm-up
        batch = group.generate(prompts, ignore_eos=True)
        assert batch.metrics.generated_tokens == len(prompts) * n * tokens, batch.metrics
        state_dict = load_causal_lm(model_dir).state_dict()
        pushes = [group.load_weights(state_dict).total_s for _ in range(2)]
    finally:
        if group is not None:
            group.shutdown()
        os.environ.pop("VLLM_CPU_OMP_THREADS_BIND", None)
        if saved is not None:
            os.environ["VLLM_CPU_OMP_THREADS_BIND"] = saved
    return Result(
        "", 0.0, "vllm", dtype, layout, batch.metrics.generated_tokens, batch.metrics.seconds, sum(pushes) / len(pushes)
    )


def print_table(results: list[Result]) -> None:
    print(f"\nload average (1/5/15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    header = f"{'model':<10} {'params':>7} {'system':<6} {'dtype':<9} {'layout':<10} {'tokens':>7} {'s':>7} {'tok/s':>8} {'vs HF same dtype':>16} {'vs best HF':>10} {'push s':>7} {'push/gen':>8}"
    print(header)
    print("-" * len(header))
    for preset in dict.fromkeys(r.preset for r in results):
        rows = [r for r in results if r.preset == preset]
        hf: dict[str, Result] = {}  # the faster thread count per dtype
        for r in rows:
            if r.system == "hf" and (r.dtype not in hf or r.tokens_per_s > hf[r.dtype].tokens_per_s):
                hf[r.dtype] = r
        best_hf = max((r.tokens_per_s for r in hf.values()), default=None)
        for r in rows:
            same = f"{r.tokens_per_s / hf[r.dtype].tokens_per_s:.2f}x" if r.system == "vllm" and r.dtype in hf else ""
            best = f"{r.tokens_per_s / best_hf:.2f}x" if r.system == "vllm" and best_hf else ""
            push = f"{r.push_s:.2f}" if r.push_s is not None else ""
            frac = f"{100 * r.push_s / r.seconds:.1f}%" if r.push_s is not None else ""
            print(
                f"{r.preset:<10} {r.params_m:>6.1f}M {r.system:<6} {r.dtype:<9} {r.layout:<10} {r.tokens:>7} "
                f"{r.seconds:>7.2f} {r.tokens_per_s:>8.0f} {same:>16} {best:>10} {push:>7} {frac:>8}"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny-3m,tiny-25m")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--layouts", default="auto,all,2x1")
    parser.add_argument("--hf-threads", default=f"1,{os.cpu_count()}", help="torch thread counts to run HF with")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    set_local_defaults()

    import ray

    from mathdata.loading import load_problems

    problems = load_problems(args.data / "math500.jsonl").problems
    texts = [p.problem + "\n" + (p.solution or "") for p in problems]
    # Problems of moderate length, so prompt + T new tokens fit the engines' max_model_len.
    prompts = [p.problem for p in problems if len(p.problem) <= 400][: args.prompts]
    dtypes = args.dtypes.split(",")
    layouts = args.layouts.split(",")
    hf_threads = sorted({int(t) for t in args.hf_threads.split(",")})

    results: list[Result] = []
    ray.init(num_cpus=os.cpu_count(), address="local", include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
            for preset in args.presets.split(","):
                model_dir, params_m = build_model(preset, Path(tmp), texts)
                runs = [
                    lambda d=d, t=t: bench_hf(model_dir, d, t, prompts, args.n, args.tokens)
                    for d in dtypes
                    for t in hf_threads
                ]
                runs += [
                    lambda d=d, lay=lay: bench_vllm(model_dir, d, lay, prompts, args.n, args.tokens)
                    for d in dtypes
                    for lay in layouts
                ]
                for run in runs:
                    result = run()
                    result.preset, result.params_m = preset, params_m
                    results.append(result)
                    print(
                        f"{preset} {result.system} {result.dtype} {result.layout}: {result.tokens_per_s:.0f} tok/s",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        ray.shutdown()
    print(f"\n{len(prompts)} prompts x n={args.n} x {args.tokens} new tokens (EOS ignored), sampling T=1, top-p=1")
    print_table(results)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps([asdict(r) | {"tokens_per_s": r.tokens_per_s} for r in results], indent=2))


if __name__ == "__main__":
    main()
