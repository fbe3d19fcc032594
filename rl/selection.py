"""Choosing one answer out of N samples, and the metrics of doing so: pass@k, maj@k, rm@k.

Pure functions over per-sample lists (answers, correctness, reward-model scores) for ONE
problem; nothing here samples, verifies or scores. Samples are indexed 0..N-1 in the order
they were drawn, and every `k` argument means "the first k samples", so maj@k for all
k = 1, 2, 4, ..., N comes from one set of N samples.

Answers are grouped by the verifier's equivalence, not by string: `\\frac{1}{2}`, `0.5` and
`1/2` are one answer. `group_answer_lists` assigns each answer to the first earlier group
whose representative (its first member) it equals, else opens a new group, so group ids run
in order of first occurrence. This is prefix-consistent: the groups of the first k samples
are the groups those samples have among all N, which is why grouping runs once per problem.
The representative is the `gold` side of the comparison, because the verifier reads
ambiguous forms the way the gold writes them. Equivalence need not be transitive; a
first-match assignment keeps the result deterministic anyway.

Samples without an extractable answer get group None ("no answer"). They never win a vote
or the RM pick unless every sample in the window has no answer; then the first sample
(or, for the RM methods, the top-scored one) is chosen, and it counts as wrong.

Ties are broken by first occurrence: among groups with equal votes the one seen first wins,
among samples with equal scores the earlier one.

Where this departs from Qwen2.5-Math's RM@N vote ("sum the RM scores of each answer"): the
sum runs over sigmoid(score) by default (`weight="sigmoid"`). Scores of an RM trained with a
pairwise or listwise loss are logits whose zero point is arbitrary; summed raw, an answer
would lose weight by gaining members with negative scores. `weight="raw"` sums the scores
as they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

Group = int | None  # an answer group id (0, 1, ... in order of first occurrence); None: no answer
VoteWeight = Literal["sigmoid", "raw"]
METHODS = ("majority", "rm_top1", "rm_vote")  # how one sample's answer is chosen out of N


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    The ratio of binomials is computed as the product prod_{i=n-c+1}^{n} (1 - k/i), which
    neither overflows (C(64, 32) ~ 1.8e18) nor loses precision the way 1 - tiny/huge does.
    """
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def k_values(n: int) -> list[int]:
    """1, 2, 4, ... up to n, and n itself when it is not a power of two."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    ks = [1 << e for e in range(n.bit_length()) if 1 << e <= n]
    return ks if ks[-1] == n else ks + [n]


# --- grouping ---------------------------------------------------------------------------


def group_answers(answers: Sequence[str | None], equivalent: Callable[[str, str], bool] | None = None) -> list[Group]:
    """Group ids of one problem's answers; `equivalent(answer, representative)` defaults to
    the math verifier's `answers_equivalent` (in this process, without a time limit: use
    `group_answer_lists` with a `BatchVerifier` for model output at scale)."""
    if equivalent is None:
        from rewards.math_equivalence import answers_equivalent as equivalent
    return group_answer_lists([answers], lambda preds, reps: [equivalent(p, r) for p, r in zip(preds, reps)])[0]


def group_answer_lists(
    answer_lists: Sequence[Sequence[str | None]],
    compare: Callable[[list[str], list[str]], Sequence[bool]],
) -> list[list[Group]]:
    """Group ids for the answers of many problems, with batched comparisons.

    `compare(answers, representatives)` judges pairs elementwise (a `BatchVerifier`'s
    `check_answers` fits: it runs them in parallel with a time limit). It is called once per
    round; each round takes, for every problem, its next answer that is neither None nor
    the exact string of an earlier one, and compares it with all of that problem's current
    representatives. The result equals the one-at-a-time first-match rule above; there are
    at most N rounds, each a single batch over all problems.
    """
    groups: list[list[Group]] = [[None] * len(answers) for answers in answer_lists]
    representatives: list[list[str]] = [[] for _ in answer_lists]
    by_text: list[dict[str, int]] = [{} for _ in answer_lists]  # exact repeats need no comparison
    cursor = [0] * len(answer_lists)

    def advance(p: int) -> int | None:
        """Settle problem p's answers up to the next one that needs comparing; its index."""
        answers = answer_lists[p]
        while cursor[p] < len(answers):
            i, answer = cursor[p], answers[cursor[p]]
            if answer is None:
                pass
            elif answer in by_text[p]:
                groups[p][i] = by_text[p][answer]
            elif not representatives[p]:
                groups[p][i] = _open_group(representatives[p], by_text[p], answer)
            else:
                return i
            cursor[p] += 1
        return None

    pending = {p: i for p in range(len(answer_lists)) if (i := advance(p)) is not None}
    while pending:
        preds, reps, owners = [], [], []
        for p, i in pending.items():
            for g, rep in enumerate(representatives[p]):
                preds.append(answer_lists[p][i])
                reps.append(rep)
                owners.append((p, g))
        verdicts = list(compare(preds, reps))
        if len(verdicts) != len(preds):
            raise ValueError(f"compare returned {len(verdicts)} verdicts for {len(preds)} pairs")
        matched: dict[int, int] = {}
        for (p, g), same in zip(owners, verdicts):
            if same and p not in matched:  # pairs are in representative order: the first match
                matched[p] = g
        for p, i in pending.items():
            answer = answer_lists[p][i]
            groups[p][i] = matched[p] if p in matched else _open_group(representatives[p], by_text[p], answer)
            by_text[p].setdefault(answer, groups[p][i])
            cursor[p] += 1
        pending = {p: i for p in pending if (i := advance(p)) is not None}
    return groups


def _open_group(representatives: list[str], by_text: dict[str, int], answer: str) -> int:
    representatives.append(answer)
    by_text[answer] = len(representatives) - 1
    return len(representatives) - 1


# --- choosing one sample ----------------------------------------------------------------


def majority_vote(groups: Sequence[Group], k: int | None = None) -> int:
    """Index of the chosen sample among the first k: the first member of the most frequent
    answer group (ties: the group seen first)."""
    return _vote(groups, [1.0] * len(groups), k)


def rm_weighted_vote(groups: Sequence[Group], scores: Sequence[float], k: int | None = None, weight: VoteWeight = "sigmoid") -> int:
    """Index of the chosen sample among the first k: the first member of the answer group
    with the largest summed RM weight (see the module docstring for `weight`)."""
    _check_scores(groups, scores)
    return _vote(groups, vote_weights(scores, weight), k)


def vote_weights(scores: Sequence[float], weight: VoteWeight = "sigmoid") -> list[float]:
    """Each sample's weight in the RM-weighted vote."""
    return [_sigmoid(s) for s in scores] if weight == "sigmoid" else [float(s) for s in scores]


def rm_top1(groups: Sequence[Group], scores: Sequence[float], k: int | None = None) -> int:
    """Index of the best-of-k sample: the highest RM score among samples with an answer
    (among all of the first k when none has one); ties: the earlier sample."""
    _check_scores(groups, scores)
    window = range(_window(groups, k))
    candidates = [i for i in window if groups[i] is not None] or list(window)
    return max(candidates, key=lambda i: (scores[i], -i))


def choose(
    groups: Sequence[Group], scores: Sequence[float] | None, k: int | None = None, weight: VoteWeight = "sigmoid"
) -> dict[str, int]:
    """The chosen sample index per method in `METHODS` (majority only when there are no scores)."""
    chosen = {"majority": majority_vote(groups, k)}
    if scores is not None:
        chosen["rm_top1"] = rm_top1(groups, scores, k)
        chosen["rm_vote"] = rm_weighted_vote(groups, scores, k, weight)
    return chosen


def at_k(
    groups: Sequence[Group],
    correct: Sequence[bool],
    scores: Sequence[float] | None = None,
    ks: Sequence[int] | None = None,
    weight: VoteWeight = "sigmoid",
) -> dict[str, float]:
    """pass@k (unbiased, over all n samples), maj@k, and with scores rm@k (best-of-k by the
    RM) and rm_vote@k (RM-weighted vote), each on the first k samples, for k in `ks`
    (default `k_values(n)`). A chosen sample scores its own verdict: 1.0 or 0.0."""
    n = len(groups)
    if len(correct) != n:
        raise ValueError(f"{len(correct)} verdicts for {n} samples")
    c = sum(bool(x) for x in correct)
    metrics: dict[str, float] = {}
    for k in ks or k_values(n):
        metrics[f"pass@{k}"] = pass_at_k(n, c, k)
        chosen = choose(groups, scores, k, weight)
        metrics[f"maj@{k}"] = float(correct[chosen["majority"]])
        if scores is not None:
            metrics[f"rm@{k}"] = float(correct[chosen["rm_top1"]])
            metrics[f"rm_vote@{k}"] = float(correct[chosen["rm_vote"]])
    return metrics


def _vote(groups: Sequence[Group], weights: Sequence[float], k: int | None) -> int:
    totals: dict[int, float] = {}
    first: dict[int, int] = {}
    for i in range(_window(groups, k)):
        g = groups[i]
        if g is not None:
            totals[g] = totals.get(g, 0.0) + weights[i]
            first.setdefault(g, i)
    if not totals:
        return 0  # no sample has an answer: nothing to vote on
    best = max(totals, key=lambda g: (totals[g], -first[g]))
    return first[best]


def _window(groups: Sequence[Group], k: int | None) -> int:
    n = len(groups)
    if n == 0:
        raise ValueError("cannot choose among zero samples")
    if k is None:
        return n
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= {n} (the number of samples), got k={k}")
    return k


def _check_scores(groups: Sequence[Group], scores: Sequence[float]) -> None:
    if len(scores) != len(groups):
        raise ValueError(f"{len(scores)} scores for {len(groups)} samples")


def _sigmoid(x: float) -> float:
    # Split by sign so exp never overflows for large |x|.
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
