"""Can the reward model's last token learn a step check from enough unique texts, and does it rank real responses then?

    python bench/rm_fresh_slips.py --samples runs/rm_tiny/samples --policy runs/sft_tiny/final
                                   [--problems artifacts/tiny/data/train.jsonl] [--count 18500]
                                   [--slip results|policy] [--epochs 2] [--ramp 0.6] [--batch 32]

Why. `bench/rm_step_check.py` shows the backbone learns to check a slipped equation result
when the slip sits right before the scored token, yet a reward model reads the last token,
and training it there on the RM's ~1,700 sampled texts memorises them (docs/results.md). Is
the missing piece unique data? Fresh problems cost about a second per hundred through vLLM,
so here every training text appears once (twice with `--epochs 2`, cut at other places).

What runs (plain PyTorch and one vLLM engine, in this process; the reward model the job
trains is untouched):

1. Fresh problems: `--count` problems of `--problems` that none of the RM's sampled groups
   uses (by id and by text). The policy solves each greedily; the verifier keeps the
   correct solutions.
2. Minimal-edit twins. In each correct solution one number slips, and the policy continues
   greedily from the slip to the end; the twin is kept when the verifier calls it wrong.
   `--slip results`: an equation result changed as `rm_step_check.slip_number` does (one
   digit, or ±1..10). `--slip policy`: one digit token, drawn the way a T=1 sample of this
   policy slips (`choose_policy_slip`): the place in proportion to the policy's probability
   of another digit there, the digit from that probability.
3. The last-token scorer (`RewardModel.from_policy`, pairwise loss, `StepChecker` of
   `rm_step_check.py`) on the pairs, cut by a curriculum (`cut_pair`): over the first
   `--ramp` of the steps the cut moves from right after the slip to the end, and half of
   the pairs are whole (`--ramp 0`: whole pairs only).
4. Held-out pairs (unseen fresh problems, whole texts) every `--eval-every` steps, with the
   policy's own log-prob on them for reference; at the end the RM's held-out sampled groups
   (`<samples>/eval.jsonl`), ranked by the last-token score, against chance and the mean.

Measured 2026-12-07 on the tiny default (docs/results.md, "Reward model").
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rm_baselines import print_ranking_table  # noqa: E402
from bench.rm_step_check import EQUATION_RESULT, StepChecker, digit_tokens, policy_pair_accuracy, slip_number  # noqa: E402
from mathdata.loading import load_problems  # noqa: E402
from mathdata.problems import Problem  # noqa: E402
from policy.loading import load_causal_lm, load_tokenizer  # noqa: E402
from rewards.reward_model import pad_right  # noqa: E402
from rewards.rm_data import EVAL_FILE, TRAIN_FILE, UNMIXED_FILE, read_groups  # noqa: E402

NUMBER_AT_START = re.compile(r"\d+")


@dataclass(frozen=True)
class TwinPair:
    """A correct solution and its twin: the same text up to one slipped number, then the policy's own continuation."""

    prompt_ids: list[int]
    right: str
    slipped: str


def slip_ends(right: str, slipped: str) -> tuple[int, int]:
    """Where the slipped number ends in each text (the texts agree up to that number's first digit)."""
    first = next((i for i, (a, b) in enumerate(zip(right, slipped)) if a != b), None)
    if first is None or not right[first].isdigit() or not slipped[first].isdigit():
        raise ValueError(f"the texts do not differ at a digit: {right[:60]!r} / {slipped[:60]!r}")
    while first > 0 and right[first - 1].isdigit():
        first -= 1
    return NUMBER_AT_START.match(right, first).end(), NUMBER_AT_START.match(slipped, first).end()


def cut_pair(pair: TwinPair, fraction: float) -> tuple[str, str] | None:
    """Both texts cut `fraction` of the way from the end of the slipped number to their end;
    None at 1: the whole texts, which the reward model scores with its end token."""
    if fraction >= 1:
        return None
    right_end, slipped_end = slip_ends(pair.right, pair.slipped)
    return (pair.right[: right_end + round(fraction * (len(pair.right) - right_end))],
            pair.slipped[: slipped_end + round(fraction * (len(pair.slipped) - slipped_end))])


def choose_policy_slip(
    response_ids: Sequence[int], next_token_probs: torch.Tensor, is_digit: torch.Tensor, rng: random.Random
) -> tuple[int, int] | None:
    """(position in the response, digit token) of one slip as a T=1 sample of the policy would
    make it: `next_token_probs[k]` [V] is the policy's distribution for response token k. A
    digit position is drawn in proportion to the policy's mass on the *other* digits there, then
    one of those digits in proportion to its probability. None: nowhere a digit could slip."""
    places, masses = [], []
    for k, token in enumerate(response_ids):
        if not is_digit[token]:
            continue
        others = next_token_probs[k] * is_digit
        others[token] = 0
        if float(others.sum()) > 0:
            places.append((k, others))
            masses.append(float(others.sum()))
    if not places:
        return None
    k, others = rng.choices(places, masses)[0]
    digits = others.nonzero().squeeze(-1).tolist()
    return k, rng.choices(digits, others[digits].tolist())[0]


def fresh_problems(path: str, count: int, samples: Path) -> list[Problem]:
    """`count` problems of `path` that no group in `samples` was sampled from (by id and by text)."""
    used = [g for name in (TRAIN_FILE, UNMIXED_FILE, EVAL_FILE) if (samples / name).is_file() for g in read_groups(samples / name)]
    used_ids, used_texts = {g.id for g in used}, {g.problem for g in used}
    fresh = [p for p in load_problems(path).problems if p.id not in used_ids and p.problem not in used_texts]
    return fresh[:count]


def policy_slip_prefixes(
    policy: str, tokenizer, prompts: Sequence[list[int]], responses: Sequence[list[int]], seed: int
) -> list[list[int] | None]:
    """For each (prompt, response ids): prompt + response up to a `choose_policy_slip` digit, that digit included."""
    model = load_causal_lm(policy, "float32", "cpu").eval()
    is_digit = digit_tokens(tokenizer)
    # the LM head's rows run past the tokenizer's vocabulary (padded for speed); those ids are never digits
    is_digit = torch.cat([is_digit, torch.zeros(model.get_output_embeddings().weight.shape[0] - len(is_digit), dtype=torch.bool)]).float()
    rng = random.Random(seed)
    prefixes: list[list[int] | None] = [None] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    with torch.inference_mode():
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            ids, mask = pad_right([prompts[i] + responses[i] for i in rows], pad_id=0)
            probs = model(input_ids=ids, attention_mask=mask).logits.float().softmax(-1)
            for b, i in enumerate(rows):
                first = len(prompts[i]) - 1  # the logits at P-1 predict response token 0
                slip = choose_policy_slip(responses[i], probs[b, first : first + len(responses[i])], is_digit, rng)
                if slip is not None:
                    k, digit = slip
                    prefixes[i] = prompts[i] + responses[i][:k] + [digit]
    return prefixes


def make_twins(policy: str, problems: Sequence[Problem], slip: str, seed: int) -> tuple[list[TwinPair], dict[str, int]]:
    """The policy's greedy correct solutions of `problems` and their wrong slipped twins (steps 1-2)."""
    from vllm import SamplingParams

    from rollout.config import EngineConfig, RolloutConfig
    from rollout.engine import RolloutEngine
    from rewards.verifier import BatchVerifier, VerifierConfig

    engine = RolloutEngine(policy, RolloutConfig(max_tokens=256, engine=EngineConfig(dtype="float32", max_model_len=640)))
    greedy = SamplingParams(temperature=0.0, max_tokens=256)
    rng = random.Random(seed)
    try:
        with BatchVerifier(VerifierConfig(num_workers=1)) as verifier:
            prompts = [engine.encode(p) for p in problems]
            solved = engine.llm.generate([{"prompt_token_ids": ids} for ids in prompts], greedy, use_tqdm=False)
            texts = [out.outputs[0].text for out in solved]
            verdicts = verifier.check(texts, [p.answer for p in problems])
            correct = [i for i, (out, v) in enumerate(zip(solved, verdicts)) if v.correct and out.outputs[0].finish_reason == "stop"]
            if slip == "policy":
                responses = [engine.tokenizer.encode(texts[i], add_special_tokens=False) for i in correct]
                prefixes = policy_slip_prefixes(policy, engine.tokenizer, [prompts[i] for i in correct], responses, seed)
            else:
                prefixes = []
                for i in correct:
                    results = list(EQUATION_RESULT.finditer(texts[i]))
                    result = rng.choice(results) if results else None
                    prefixes.append(None if result is None else prompts[i] + engine.tokenizer.encode(
                        texts[i][: result.start(1)] + slip_number(result.group(1), rng), add_special_tokens=False))
            jobs = [(i, prefix) for i, prefix in zip(correct, prefixes) if prefix is not None]
            continued = engine.llm.generate([{"prompt_token_ids": prefix} for _, prefix in jobs], greedy, use_tqdm=False)
            twins = [engine.tokenizer.decode(prefix[len(prompts[i]) :]) + out.outputs[0].text for (i, prefix), out in zip(jobs, continued)]
            twin_verdicts = verifier.check(twins, [problems[i].answer for i, _ in jobs])
    finally:
        engine.close()
    pairs = [
        TwinPair(prompts[i], texts[i], twin)
        for (i, _), twin, out, v in zip(jobs, twins, continued, twin_verdicts)
        if not v.correct and out.outputs[0].finish_reason == "stop" and differ_at_a_number(texts[i], twin)
    ]
    return pairs, {"problems": len(problems), "solved": len(correct), "slipped": len(jobs), "wrong_twins": len(pairs)}


def differ_at_a_number(right: str, slipped: str) -> bool:
    """Whether `slip_ends` can cut the pair (decoding the slipped prefix may, rarely, respell the text before it)."""
    try:
        slip_ends(right, slipped)
    except ValueError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", required=True, help="the samples directory launch/train_rm.py wrote (its eval.jsonl is ranked)")
    parser.add_argument("--policy", required=True, help="the policy that sampled them (solves, slips, and starts the scorer)")
    parser.add_argument("--problems", default="artifacts/tiny/data/train.jsonl", help="where the fresh problems come from")
    parser.add_argument("--count", type=int, default=18500, help="fresh problems to solve")
    parser.add_argument("--slip", choices=("results", "policy"), default="results")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ramp", type=float, default=0.6, help="fraction of the steps over which the cut moves to the end; 0: whole pairs")
    parser.add_argument("--batch", type=int, default=32, help="pairs per step")
    parser.add_argument("--lr", type=float, default=1e-4, help="backbone learning rate (the head's is 10x)")
    parser.add_argument("--held-out", type=int, default=500, help="pairs held out (their problems are never trained on)")
    parser.add_argument("--eval-every", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-pairs", help="write the pairs here as JSONL")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    samples = Path(args.samples)

    start = time.perf_counter()
    pairs, counts = make_twins(args.policy, fresh_problems(args.problems, args.count, samples), args.slip, args.seed)
    print(f"twins: {json.dumps(counts)} in {time.perf_counter() - start:.0f} s")
    if args.save_pairs:
        Path(args.save_pairs).write_text("".join(json.dumps(asdict(p)) + "\n" for p in pairs))
    if len(pairs) <= args.held_out:
        raise SystemExit(f"only {len(pairs)} pairs: raise --count or lower --held-out ({args.held_out})")
    random.Random(args.seed).shuffle(pairs)
    held_out, train_pairs = pairs[: args.held_out], pairs[args.held_out :]

    checker = StepChecker(args.policy, args.lr, head_lr=10 * args.lr)
    tokenizer = load_tokenizer(args.policy)

    def encode(pair: TwinPair, fraction: float = 1.0) -> tuple[list[int], list[int]]:
        cut = cut_pair(pair, fraction)
        if cut is None:
            return (checker.model.sequence(pair.prompt_ids, tokenizer.encode(pair.right, add_special_tokens=False)),
                    checker.model.sequence(pair.prompt_ids, tokenizer.encode(pair.slipped, add_special_tokens=False)))
        return tuple(pair.prompt_ids + tokenizer.encode(text, add_special_tokens=False) for text in cut)

    held_out_ids = [encode(p) for p in held_out]
    print(f"pairs: {len(train_pairs)} training, {len(held_out)} held out; the policy's own log-prob ranks the "
          f"held-out ones at {policy_pair_accuracy(args.policy, held_out_ids):.3f}")
    steps = args.epochs * (len(train_pairs) // args.batch)
    rng = random.Random(args.seed)

    def curriculum_batch(step: int) -> list[tuple[list[int], list[int]]]:
        reach = min(1.0, step / (args.ramp * steps)) if args.ramp else 1.0
        batch = [train_pairs[((step - 1) * args.batch + i) % len(train_pairs)] for i in range(args.batch)]
        fractions = [1.0 if rng.random() < 0.5 * reach else rng.uniform(0, reach) for _ in batch] if args.ramp else [1.0] * len(batch)
        return [encode(p, f) for p, f in zip(batch, fractions)]

    checker.fit(curriculum_batch, steps, held_out_ids, args.eval_every)

    eval_groups = read_groups(samples / EVAL_FILE)
    last, _ = checker.score_groups(eval_groups, digit_tokens(tokenizer))
    coin = random.Random(args.seed)
    print(f"\nthe last-token scores of the {len(eval_groups)} held-out sampled groups:")
    print_ranking_table(
        {"last token": last, "random": [[coin.random() for _ in g.response_ids] for g in eval_groups]},
        [g.correct for g in eval_groups],
    )


if __name__ == "__main__":
    main()
