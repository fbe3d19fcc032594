"""Reward-model scoring throughput: `RewardScorer` against the naive ways to run the same model.

    python bench/reward_scoring.py [--presets tiny-3m,tiny-25m] [--responses 128] [--n 8]
                                   [--max-response-tokens 384] [--batch-size 32] [--repeats 3]
                                   [--threads 1]

Workload (a GRPO step's scoring): P = responses/n MATH-500 problems as chat prompts, n
responses each, in prompt-major order as a rollout returns them. The responses are MATH-500
reference solutions cut to a random length in [16, max-response-tokens] tokens, so lengths
vary the way sampled ones do. Every runner scores the same (problem, response) texts with the
same reward model (a fresh head on a random-initialised tiny Qwen2 built here, fp32, CPU;
weights do not change the cost), and its time includes tokenization and the chat template:

    ours       `RewardScorer.score`: batches cut from the sequences sorted by length, so each
               batch pads to a near-equal length; inference mode.
    unsorted   the same batches taken in arrival order (each pads to its longest member).
    one-by-one a plain loop, one (prompt, response) per forward: no padding, no batching.

The runners take turns within each repeat; the time of a runner is its median over repeats,
and the ratio is against ours. Scores must agree between runners (max |diff| is printed).
Padding efficiency = real tokens / tokens the model ran on.

Time is CPU time of this process (`time.process_time`), with wall time beside it: on a
shared machine wall time mostly measures the other jobs (a load average of 5-8 on 2 cores
made the same run's wall times differ by 2x), while with one torch thread the CPU time is
what the work costs. Threads: one by default (see bench/learner.py). The load average is
printed with the results.

What to expect on a CPU: sorting is what matters (it removes most of the padding that
arrival-order batches compute on); batching itself buys little on one core, where a tiny
model's matmuls are already large enough at batch size 1, and one-by-one pays no padding at
all. Batching pays on an accelerator, where a batch-1 loop is bound by kernel launches.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()

import torch  # noqa: E402

from mathdata.prompts import PromptConfig  # noqa: E402
from rewards.reward_model import RewardModel, RewardScorer, score_sequences  # noqa: E402
from rollout.engine import encode_prompt  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def build_reward_model(preset: str, out_dir: Path, texts: list[str]) -> Path:
    """Tokenizer trained on `texts`, a random tiny Qwen2 of `preset`, and a fresh RM head on it."""
    from policy.tiny_model import TinyModelConfig, build_tiny_model
    from policy.tokenizer import TokenizerConfig, train_tokenizer

    policy_dir = out_dir / f"policy-{preset}"
    tokenizer = train_tokenizer(texts, TokenizerConfig(), policy_dir)
    build_tiny_model(TinyModelConfig(preset=preset, seed=0), tokenizer, policy_dir)
    return RewardModel.from_policy(policy_dir, seed=0).save_pretrained(out_dir / f"rm-{preset}", tokenizer=tokenizer)


def workload(rows: list[dict], tokenizer, count: int, n: int, max_tokens: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """`count` (problem, response) pairs, n per problem, responses cut to random lengths."""
    rng = random.Random(seed)
    problems, responses = [], []
    for i in range(count):
        row = rows[(i // n) % len(rows)]
        ids = tokenizer(row["solution"], add_special_tokens=False)["input_ids"]
        cut = rng.randint(16, max_tokens)
        problems.append(row["problem"])
        responses.append(tokenizer.decode(ids[:cut]))
    return problems, responses


def run_ours(scorer: RewardScorer, problems: list[str], responses: list[str]) -> list[float]:
    return scorer.score(problems, responses)


def encode_pairs(scorer: RewardScorer, problems: list[str], responses: list[str]) -> list[list[int]]:
    """The sequences the scorer builds, made the straightforward way (no prompt cache)."""
    tok = scorer.tokenizer
    return [
        scorer.model.sequence(encode_prompt(tok, p, PromptConfig()), tok(r, add_special_tokens=False)["input_ids"])
        for p, r in zip(problems, responses)
    ]


def run_unsorted(scorer: RewardScorer, problems: list[str], responses: list[str]) -> list[float]:
    sequences = encode_pairs(scorer, problems, responses)
    return score_sequences(scorer.model, sequences, scorer.tokenizer.pad_token_id, scorer.batch_size, scorer.device, sort_by_length=False)


def run_one_by_one(scorer: RewardScorer, problems: list[str], responses: list[str]) -> list[float]:
    scores = []
    with torch.no_grad():
        for seq in encode_pairs(scorer, problems, responses):
            ids = torch.tensor([seq], device=scorer.device)
            scores.append(float(scorer.model(input_ids=ids, attention_mask=torch.ones_like(ids))[0]))
    return scores


def padding_efficiency(lengths: list[int], batch_size: int, sort: bool) -> float:
    order = sorted(lengths) if sort else lengths
    padded = sum(max(order[i : i + batch_size]) * len(order[i : i + batch_size]) for i in range(0, len(order), batch_size))
    return sum(lengths) / padded


def bench_preset(preset: str, rows: list[dict], args, work_dir: Path) -> list[dict]:
    texts = [r["problem"] + "\n" + r["solution"] for r in rows]
    rm_dir = build_reward_model(preset, work_dir, texts)
    scorer = RewardScorer(str(rm_dir), device="cpu", batch_size=args.batch_size)
    problems, responses = workload(rows, scorer.tokenizer, args.responses, args.n, args.max_response_tokens)
    lengths = [len(s) for s in encode_pairs(scorer, problems, responses)]
    runners: dict[str, Callable] = {"ours": run_ours, "unsorted": run_unsorted, "one-by-one": run_one_by_one}
    efficiency = {
        "ours": padding_efficiency(lengths, args.batch_size, sort=True),
        "unsorted": padding_efficiency(lengths, args.batch_size, sort=False),
        "one-by-one": 1.0,
    }
    run_ours(scorer, problems[: args.batch_size], responses[: args.batch_size])  # warm-up
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    wall: dict[str, list[float]] = {name: [] for name in runners}
    scores: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, runner in runners.items():
            start_cpu, start_wall = time.process_time(), time.perf_counter()
            scores[name] = runner(scorer, problems, responses)
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start_wall)
    ours_s = statistics.median(cpu["ours"])
    results = []
    for name in runners:
        seconds = statistics.median(cpu[name])
        diff = max(abs(a - b) for a, b in zip(scores[name], scores["ours"]))
        results.append({
            "preset": preset,
            "runner": name,
            "responses": len(responses),
            "cpu_s": seconds,
            "wall_s": statistics.median(wall[name]),
            "responses_per_s": len(responses) / seconds,
            "tokens_per_s": sum(lengths) / seconds,
            "ratio_ours_over": seconds / ours_s,
            "padding_efficiency": efficiency[name],
            "max_abs_diff_vs_ours": diff,
        })
    print(f"{preset}: {len(responses)} responses, sequence length mean {statistics.mean(lengths):.0f}, "
          f"min {min(lengths)}, max {max(lengths)} tokens", flush=True)
    return results


def print_table(results: list[dict]) -> None:
    print(f"\n{'preset':<10} {'runner':<11} {'resp/s':>8} {'tokens/s':>9} {'cpu s':>7} {'wall s':>7} {'ours is':>8} {'pad eff':>8} {'max|diff|':>10}")
    for r in results:
        print(
            f"{r['preset']:<10} {r['runner']:<11} {r['responses_per_s']:>8.1f} {r['tokens_per_s']:>9.0f} {r['cpu_s']:>7.2f} "
            f"{r['wall_s']:>7.2f} {r['ratio_ours_over']:>7.2f}x {r['padding_efficiency']:>8.2f} {r['max_abs_diff_vs_ours']:>10.1e}"
        )
    print("(resp/s and tokens/s per CPU second; 'ours is' = how many times less CPU time RewardScorer needs than that runner)")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny-3m", help="comma-separated tiny-model presets")
    parser.add_argument("--responses", type=int, default=128)
    parser.add_argument("--n", type=int, default=8, help="responses per problem")
    parser.add_argument("--max-response-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    rows = [json.loads(line) for line in (args.data / "math500.jsonl").open()]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets.split(","):
            results += bench_preset(preset, rows, args, Path(tmp))
    print_table(results)
    print(f"torch threads {args.threads}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
