"""What a reward model has to beat: ranking baselines on the same held-out samples.

    python bench/rm_baselines.py --samples runs/rm_tiny_big/samples/eval.jsonl \
        --policy runs/sft_tiny/final [--rm runs/rm_tiny_big/final]

The samples are the held-out groups `launch/train_rm.py` writes (n responses per problem,
labelled by the verifier). Every ranker scores each response alone, as a reward model does,
and `ranking_metrics` judges them alike (pairwise accuracy on mixed groups, best-of-n against
the mean single-sample accuracy):

    reward model     the trained RM's score (with --rm)
    policy mean lp   the sampling policy's mean token log-prob of the response
    policy sum lp    its total log-prob (favours short responses)
    shorter first    minus the response length in tokens
    random           a seeded coin per response, the floor
    random per text  a seeded coin per distinct response text: identical responses tie. What
                     any scorer that does not know which answer is likelier does: a correct
                     answer is often one text sampled several times and wrong ones differ,
                     so it picks a correct response less often than one sample at random

The policy's own likelihood needs no training and no labels; a reward model initialised from
that policy that ranks worse than it has not learnt to read what its backbone already knows.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewards.ranking import ranking_metrics  # noqa: E402
from rewards.reward_model import RewardScorer  # noqa: E402
from rewards.rm_data import read_groups, score_groups  # noqa: E402
from rewards.teacher import response_logprobs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", required=True, help="eval.jsonl written by launch/train_rm.py")
    parser.add_argument("--policy", required=True, help="the policy that sampled them")
    parser.add_argument("--rm", help="a trained reward model directory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    groups = read_groups(args.samples)
    rankers: dict[str, list[list[float]]] = {}
    if args.rm:
        rankers["reward model"] = score_groups(RewardScorer(args.rm), groups)
    rankers["policy mean lp"], rankers["policy sum lp"] = response_logprobs(args.policy, groups)
    rankers["shorter first"] = [[-len(r) for r in g.response_ids] for g in groups]
    coin = random.Random(args.seed)
    rankers["random"] = [[coin.random() for _ in g.response_ids] for g in groups]
    rankers["random per text"] = []
    for g in groups:
        draw: dict[str, float] = {}
        rankers["random per text"].append([draw.setdefault(text, coin.random()) for text in g.responses])

    print_ranking_table(rankers, [g.correct for g in groups])


def print_ranking_table(rankers: dict[str, list[list[float]]], labels: list[list[bool]]) -> None:
    """The groups' mean single-sample accuracy and pass@n, then each ranker's pairwise and
    best-of-n accuracy (all groups, and mixed groups only), a row each."""
    first = ranking_metrics(next(iter(rankers.values())), labels)
    print(f"{first['problems']:.0f} problems, {first['mixed_problems']:.0f} mixed; mean single-sample accuracy "
          f"{first['mean_accuracy']:.3f} (mixed groups {first['mean_accuracy_mixed']:.3f}), pass@n {first['pass_at_n']:.3f}")
    width = max(16, *(len(name) for name in rankers))
    print(f"{'ranker':<{width}} {'pairwise':>9} {'best-of-n':>10} {'best-of-n mixed':>16}")
    for name, scores in rankers.items():
        m = ranking_metrics(scores, labels)
        print(f"{name:<{width}} {m['pairwise_accuracy']:>9.3f} {m['best_of_n_accuracy']:>10.3f} {m['best_of_n_accuracy_mixed']:>16.3f}")


if __name__ == "__main__":
    main()
