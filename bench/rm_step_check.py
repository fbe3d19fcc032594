"""Can the reward model's backbone check one step, and does a step check rank whole responses?

    python bench/rm_step_check.py --samples runs/rm_tiny/samples --policy runs/sft_tiny/final
                                  [--steps 800] [--batch 32] [--lr 1e-4] [--eval-pairs 600]
                                  [--slip results|numbers]

Why. The last-token reward model of `launch/train_rm.py` ranks the tiny policy's held-out
groups below a random pick (docs/results.md). Its wrong top picks are the group's correct
text with one equation result slipped (`70 - 7 = 53`), and the policy itself finds the
slipped digit unlikely. So: can the same backbone + MLP head learn to tell a slipped result
from the right one at all, when the slip sits right before the scored token? And if it can,
do its per-token scores find the slip inside a whole response?

What runs (plain PyTorch, one process; nothing here changes the reward model the job trains):

1. Slip pairs. From the correct responses of the training groups `launch/train_rm.py`
   sampled (`train.jsonl`, `train_unmixed.jsonl`): cut the text right after one equation
   result (`... = 315`), and make its twin with that result slipped (`slip_number`: one digit
   changed, or ±1..10), the kind of error the policy makes. The held-out pairs come alike
   from the correct responses of the held-out groups (`eval.jsonl`). With `--slip numbers`
   any number of the response may slip (a fraction's parts, an operand copied from the
   problem), not only an equation's integer result.
2. The step checker: `RewardModel.from_policy` (the policy's backbone and a fresh head),
   trained with the pairwise loss −log σ(r_right − r_slipped) on the score of each prefix's
   last token, for `--steps` steps of `--batch` fresh pairs; held-out pair accuracy every 100.
   The policy's own log-prob of each prefix ranks the same held-out pairs, for reference.
3. The held-out groups' whole responses, scored by the trained checker two ways: its score at
   the last token (what a reward model reads), and the minimum of its per-token scores over
   the ends of the response's numbers (`number_ends`; the lowest step score, the way process
   reward models pool), against chance and the mean single sample (`ranking_metrics`).

Measured 2026-12-07 on the tiny default (see docs/results.md, "Reward model").
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rm_baselines import print_ranking_table  # noqa: E402
from mathrl.device import has_fast_bf16  # noqa: E402
from policy.loading import load_tokenizer  # noqa: E402
from rewards.reward_model import RewardModel, last_token_index, pad_right  # noqa: E402
from rewards.rm_data import SampledGroup, read_groups  # noqa: E402
from rewards.teacher import response_logprobs  # noqa: E402

EQUATION_RESULT = re.compile(r"= (-?\d+)")  # --slip results: what an equation computed
ANY_NUMBER = re.compile(r"(\d+)")  # --slip numbers: also fractions' parts and operands copied from the problem
SLIP_PATTERNS = {"results": EQUATION_RESULT, "numbers": ANY_NUMBER}

Pair = tuple[list[int], list[int]]  # (right prefix ids, slipped prefix ids), prompt included


def slip_number(number: str, rng: random.Random) -> str:
    """`number` (an integer as written, maybe negative) with one slip: a digit changed (no
    new leading zero) or the value moved by 1..10, keeping its sign. Never `number` itself."""
    sign, digits = ("-", number[1:]) if number.startswith("-") else ("", number)
    while True:
        if rng.random() < 0.5:
            i = rng.randrange(len(digits))
            choices = [c for c in "0123456789" if c != digits[i] and not (i == 0 and c == "0" and len(digits) > 1)]
            slipped = digits[:i] + rng.choice(choices) + digits[i + 1 :]
        else:
            slipped = str(int(digits) + rng.choice((-1, 1)) * rng.randint(1, 10))
        if slipped != digits and not slipped.startswith("-"):
            return sign + slipped


def slip_pairs(
    items: Sequence[tuple[list[int], str]], tokenizer, rng: random.Random, count: int, pattern: re.Pattern = EQUATION_RESULT
) -> list[Pair]:
    """`count` pairs from (prompt ids, correct response text) items, each cut after one match
    of `pattern` (its group 1 is the number slipped); items without a match are skipped."""
    usable = [(prompt, text, results) for prompt, text in items if (results := list(pattern.finditer(text)))]
    if not usable:
        raise ValueError(f"no response has a number to slip (pattern {pattern.pattern!r})")
    pairs = []
    for _ in range(count):
        prompt, text, results = rng.choice(usable)
        result = rng.choice(results)
        before = text[: result.start(1)]
        right = tokenizer.encode(before + result.group(1), add_special_tokens=False)
        slipped = tokenizer.encode(before + slip_number(result.group(1), rng), add_special_tokens=False)
        pairs.append((list(prompt) + right, list(prompt) + slipped))
    return pairs


def digit_tokens(tokenizer) -> torch.Tensor:
    """[V] bool: the tokens that are digits (with or without a leading space)."""
    return torch.tensor([tokenizer.decode([i]).strip().isdigit() for i in range(len(tokenizer))])


def number_ends(ids: torch.Tensor, mask: torch.Tensor, is_digit: torch.Tensor, prompt_lengths: Sequence[int]) -> torch.Tensor:
    """[B, T] bool: the last token of every run of digit tokens in each row's response (the
    positions at or after its prompt length, inside its mask)."""
    digits = is_digit[ids] & mask.bool()
    ends = digits.clone()
    ends[:, :-1] &= ~digits[:, 1:]
    positions = torch.arange(ids.shape[1])[None, :]
    return ends & (positions >= torch.tensor(list(prompt_lengths))[:, None])


def correct_texts(groups: Sequence[SampledGroup]) -> list[tuple[list[int], str]]:
    return [(g.prompt_ids, text) for g in groups for text in sorted({t for t, ok in zip(g.responses, g.correct) if ok})]


def policy_pair_accuracy(policy: str, pairs: Sequence[Pair]) -> float:
    """How often the policy's total log-prob of the right prefix beats the slipped one's. Both
    sides start with the same prompt, so each pair is a `response_logprobs` group of two
    responses after their shared first token."""
    groups = [SimpleNamespace(prompt_ids=right[:1], response_ids=[right[1:], slipped[1:]]) for right, slipped in pairs]
    _, sums = response_logprobs(policy, groups)
    return sum(right > slipped for right, slipped in sums) / len(pairs)


class StepChecker:
    def __init__(self, policy: str, lr: float, head_lr: float):
        self.model = RewardModel.from_policy(policy)
        self.autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=has_fast_bf16(torch.device("cpu")))
        self.optimizer = torch.optim.AdamW(
            [{"params": self.model.model.parameters(), "lr": lr}, {"params": self.model.score.parameters(), "lr": head_lr}],
            weight_decay=0.0,
        )

    def last_token_scores(self, sequences: Sequence[list[int]]) -> torch.Tensor:
        ids, mask = pad_right(sequences, pad_id=0)
        with self.autocast:
            return self.model(ids, mask)

    def margins(self, pairs: Sequence[Pair]) -> torch.Tensor:
        """[P] r_right − r_slipped, both sides scored in one batch."""
        scores = self.last_token_scores([right for right, _ in pairs] + [slipped for _, slipped in pairs])
        return scores[: len(pairs)] - scores[len(pairs) :]

    def train_step(self, pairs: Sequence[Pair]) -> float:
        loss = -torch.nn.functional.logsigmoid(self.margins(pairs)).mean()
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        return loss.item()

    def fit(self, batch: Callable[[int], list[Pair]], steps: int, held_out: Sequence[Pair], eval_every: int) -> None:
        """`steps` training steps on `batch(step)` (steps count from 1), printing the mean loss and
        the held-out pair accuracy before the first step, every `eval_every` steps and after the last."""
        print(f"step 0: held-out pair accuracy {self.pair_accuracy(held_out):.3f}")
        start, recent = time.perf_counter(), []
        for step in range(1, steps + 1):
            recent.append(self.train_step(batch(step)))
            if step % eval_every == 0 or step == steps:
                print(f"step {step}: loss {sum(recent) / len(recent):.3f}, held-out pair accuracy "
                      f"{self.pair_accuracy(held_out):.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
                recent = []

    @torch.inference_mode()
    def pair_accuracy(self, pairs: Sequence[Pair]) -> float:
        self.model.eval()
        wins = sum(int((self.margins(pairs[i : i + 100]) > 0).sum()) for i in range(0, len(pairs), 100))
        self.model.train()
        return wins / len(pairs)

    @torch.inference_mode()
    def score_groups(self, groups: Sequence[SampledGroup], is_digit: torch.Tensor) -> tuple[list[list[float]], list[list[float]]]:
        """Per group, per response: (last-token score, min per-token score over number ends)."""
        self.model.eval()
        last, lowest = [], []
        for g in groups:
            sequences = [self.model.sequence(g.prompt_ids, r) for r in g.response_ids]
            ids, mask = pad_right(sequences, pad_id=0)
            with self.autocast:
                hidden = self.model.model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
                per_token = self.model.score(hidden).squeeze(-1).float()  # [n, T]
            ends = number_ends(ids, mask, is_digit, [len(g.prompt_ids)] * len(sequences))
            last.append(per_token[torch.arange(len(sequences)), last_token_index(mask)].tolist())
            # a response without a number gets its last-token score
            lowest.append(
                [float(per_token[b][ends[b]].min()) if ends[b].any() else last[-1][b] for b in range(len(sequences))]
            )
        self.model.train()
        return last, lowest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", required=True, help="the samples directory launch/train_rm.py wrote")
    parser.add_argument("--policy", required=True, help="the policy that sampled them (the checker starts from it)")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch", type=int, default=32, help="slip pairs per step")
    parser.add_argument("--lr", type=float, default=1e-4, help="backbone learning rate (the head's is 10x)")
    parser.add_argument("--eval-pairs", type=int, default=600)
    parser.add_argument("--slip", choices=sorted(SLIP_PATTERNS), default="results",
                        help="which numbers slip: equation results (`= 315`), or every number of the response")
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    samples = Path(args.samples)
    tokenizer = load_tokenizer(args.policy)
    train_groups = read_groups(samples / "train.jsonl") + read_groups(samples / "train_unmixed.jsonl")
    eval_groups = read_groups(samples / "eval.jsonl")
    train_items, eval_items = correct_texts(train_groups), correct_texts(eval_groups)
    pattern = SLIP_PATTERNS[args.slip]
    eval_pairs = slip_pairs(eval_items, tokenizer, random.Random(args.seed + 1), args.eval_pairs, pattern)
    print(f"correct texts: {len(train_items)} training, {len(eval_items)} held out; {len(eval_pairs)} held-out slip pairs")
    print(f"the policy's own log-prob ranks the held-out pairs at {policy_pair_accuracy(args.policy, eval_pairs):.3f}")

    checker = StepChecker(args.policy, args.lr, head_lr=10 * args.lr)
    rng = random.Random(args.seed)
    checker.fit(lambda step: slip_pairs(train_items, tokenizer, rng, args.batch, pattern), args.steps, eval_pairs, args.eval_every)

    last, lowest = checker.score_groups(eval_groups, digit_tokens(tokenizer))
    coin = random.Random(args.seed)
    print(f"\nthe checker's scores of the {len(eval_groups)} held-out groups' whole responses:")
    print_ranking_table(
        {
            "last token": last,
            "min over numbers": lowest,
            "random": [[coin.random() for _ in g.response_ids] for g in eval_groups],
        },
        [g.correct for g in eval_groups],
    )


if __name__ == "__main__":
    main()
