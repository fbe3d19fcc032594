"""The reward model's listwise ranking loss, the learner loss around it, and ranking metrics.

For one problem with n sampled responses, k of them verified correct, and reward-model
scores r (Qwen2.5-Math's reward-model loss):

    L = −1/(k(n−k)) · Σ_{pos ∈ correct, neg ∈ wrong} log σ(r_pos − r_neg)

i.e. the mean Bradley-Terry loss over every (correct, wrong) pair of the group. A batch's
loss is the mean of L over the problems that have at least one correct and one wrong
response; the others have no pair and carry no signal.

Two additions to the formula: an optional `mask` [G, n] marks which slots of a group hold
a real response (groups of unequal size are padded to the widest), and a tie in
`pairwise_accuracy` counts half (a constant scorer sits at 0.5, not at 0).

An optional teacher term (`teacher_pairwise_loss`) adds a second, denser signal: a ranker t
(the sampling policy's mean token log-prob; `rewards.teacher`) says for EVERY pair of the
group, not only the (correct, wrong) ones, how likely i is to be better than j, σ((t_i − t_j)/τ),
and the reward model's Bradley-Terry probability σ(r_i − r_j) is fitted to it by cross-entropy.

Imports only torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from policy.losses import TensorBatch


def ranking_pairs(correct: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """[G, n, n] float: 1 where response i is correct, j is wrong, and both are real."""
    correct = correct.bool()
    real = torch.ones_like(correct) if mask is None else mask.bool()
    pos = correct & real  # [G, n]
    neg = ~correct & real  # [G, n]
    return (pos[:, :, None] & neg[:, None, :]).float()


def group_ranking_terms(
    scores: torch.Tensor,  # [G, n]
    correct: torch.Tensor,  # [G, n] bool (or 0/1)
    mask: torch.Tensor | None = None,  # [G, n] bool: real response; None = all real
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per group: (listwise loss [G], pairwise accuracy [G], usable [G] bool).

    Groups without a (correct, wrong) pair are not usable; their loss and accuracy are 0."""
    pairs = ranking_pairs(correct, mask)  # [G, n, n]
    num_pairs = pairs.sum(dim=(1, 2))  # [G] = k(n−k)
    usable = num_pairs > 0
    scores = scores.float()
    margin = scores[:, :, None] - scores[:, None, :]  # [G, n, n] r_i − r_j
    per_pair = torch.nn.functional.logsigmoid(margin)
    denom = num_pairs.clamp(min=1)
    loss = -(per_pair * pairs).sum(dim=(1, 2)) / denom  # [G]
    with torch.no_grad():
        wins = (margin > 0).float() + 0.5 * (margin == 0).float()
        accuracy = (wins * pairs).sum(dim=(1, 2)) / denom  # [G]
    return loss, accuracy, usable


def listwise_ranking_loss(
    scores: torch.Tensor,  # [G, n]
    correct: torch.Tensor,  # [G, n]
    mask: torch.Tensor | None = None,  # [G, n]
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(mean listwise loss over usable groups, metrics). With no usable group the loss is a
    zero that still depends on `scores` (backward works and changes nothing)."""
    loss, accuracy, usable = group_ranking_terms(scores, correct, mask)
    groups = usable.sum()
    if groups == 0:
        zero = scores.float().sum() * 0.0
        return zero, {"pairwise_accuracy": zero.detach(), "groups": groups.float()}
    mean_loss = loss[usable].mean()
    return mean_loss, {"pairwise_accuracy": accuracy[usable].mean(), "groups": groups.float()}


def teacher_pairwise_loss(
    scores: torch.Tensor,  # [G, n]
    teacher: torch.Tensor,  # [G, n] the teacher's score of each response
    temperature: float,
    mask: torch.Tensor | None = None,  # [G, n] bool: real response; None = all real
) -> torch.Tensor:
    """Per group [G]: the mean over ordered pairs (i, j), i != j, both real, of the
    cross-entropy between the teacher's preference σ((t_i − t_j)/τ) and the model's
    σ(r_i − r_j). A group with fewer than two real responses gives 0. Invariant to adding a
    constant to a group's scores or teacher values."""
    real = torch.ones_like(scores, dtype=torch.bool) if mask is None else mask.bool()
    eye = torch.eye(scores.shape[1], dtype=torch.bool, device=scores.device)
    pairs = (real[:, :, None] & real[:, None, :] & ~eye).float()  # [G, n, n]
    scores, teacher = scores.float(), teacher.float()
    target = torch.sigmoid((teacher[:, :, None] - teacher[:, None, :]) / temperature)  # [G, n, n]
    margin = scores[:, :, None] - scores[:, None, :]
    per_pair = torch.nn.functional.binary_cross_entropy_with_logits(margin, target, reduction="none")
    return (per_pair * pairs).sum(dim=(1, 2)) / pairs.sum(dim=(1, 2)).clamp(min=1)


class ListwiseRankingLoss:
    """The listwise loss as a learner `BatchLoss`: one unit per problem (group).

    Batch keys (a row is a whole group, so the learner's micro-batches never split one):
    `input_ids` [G, n, T] and `attention_mask` [G, n, T] (prompt + response, right-padded),
    `correct` [G, n] bool, `response_mask` [G, n] bool (False on padding slots of groups
    with fewer than n responses), and with `teacher_coef > 0` also `teacher` [G, n]: each
    usable group's loss is then listwise + teacher_coef · `teacher_pairwise_loss`. The model
    maps ([B, T], [B, T]) to scores [B]. With a teacher, a group without a (correct, wrong)
    pair still counts when it holds >= 2 responses: it trains the teacher term alone."""

    def __init__(self, teacher_coef: float = 0.0, teacher_temperature: float = 1.0):
        if teacher_coef < 0 or teacher_temperature <= 0:
            raise ValueError(f"teacher_coef must be >= 0 and teacher_temperature > 0, got {teacher_coef}, {teacher_temperature}")
        self.teacher_coef = teacher_coef
        self.teacher_temperature = teacher_temperature

    def units(self, batch: TensorBatch) -> torch.Tensor:
        real = batch["response_mask"].bool()
        usable = ranking_pairs(batch["correct"], real).sum(dim=(1, 2)).gt(0)
        return self.counted(usable, real).sum()

    def counted(self, usable: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """[G] bool: the groups a loss is averaged over. The usable ones (with a (correct, wrong)
        pair); with a teacher also those with >= 2 responses (all correct or all wrong: the
        teacher still ranks them)."""
        return usable | real.sum(dim=1).ge(2) if self.teacher_coef else usable

    def __call__(self, model, batch):
        real = batch["response_mask"].bool()  # [G, n]
        width = int(batch["attention_mask"].sum(-1).max())  # longest sequence of this micro-batch
        ids = batch["input_ids"][..., :width][real]  # [M, T'] only real responses go through the model
        attention = batch["attention_mask"][..., :width][real]
        flat_scores = model(input_ids=ids, attention_mask=attention)  # [M]
        scores = torch.zeros(real.shape, dtype=flat_scores.dtype, device=flat_scores.device)
        scores = scores.masked_scatter(real, flat_scores)  # [G, n], 0 on padding slots
        loss, accuracy, usable = group_ranking_terms(scores, batch["correct"], real)  # 0 where not usable
        counted = self.counted(usable, real)
        metrics = {}
        if self.teacher_coef:
            teacher = teacher_pairwise_loss(scores, batch["teacher"], self.teacher_temperature, real)
            metrics["listwise_loss"] = (loss * usable).sum().detach()
            metrics["teacher_loss"] = (teacher * counted).sum().detach()
            # The learner divides every metric by the counted groups: this one is the share of them
            # with pairs, and pairwise_accuracy / mixed_share is the accuracy on those.
            metrics["mixed_share"] = usable.sum().float()
            loss = loss + self.teacher_coef * teacher
        loss_sum = (loss * counted).sum()
        return loss_sum, {
            **metrics,
            "loss": loss_sum.detach(),
            "pairwise_accuracy": (accuracy * usable).sum(),
            "score_mean": (scores * real).sum(dim=1).div(real.sum(dim=1).clamp(min=1)).mul(counted).sum().detach(),
        }


def ranking_metrics(scores: Sequence[Sequence[float]], correct: Sequence[Sequence[bool]]) -> dict[str, float]:
    """How well reward-model scores pick correct responses, over groups of any size.

    - pairwise_accuracy: mean over mixed groups (>= 1 correct and >= 1 wrong) of the share
      of (correct, wrong) pairs scored in the right order (ties count half);
    - best_of_n_accuracy: share of problems whose top-scored response is correct;
    - mean_accuracy: mean single-sample accuracy (per problem, then averaged), the
      baseline best-of-n has to beat; pass_at_n: share with any correct response, its ceiling;
    - the same best-of-n and mean accuracy restricted to mixed groups, where the choice matters.
    """
    if len(scores) != len(correct):
        raise ValueError(f"{len(scores)} score groups but {len(correct)} correctness groups")
    best, mean, any_correct, pairwise, best_mixed, mean_mixed = [], [], [], [], [], []
    for group_scores, group_correct in zip(scores, correct):
        if len(group_scores) != len(group_correct) or not group_scores:
            raise ValueError(f"a group has {len(group_scores)} scores and {len(group_correct)} verdicts")
        top = max(range(len(group_scores)), key=lambda i: group_scores[i])
        best.append(float(group_correct[top]))
        mean.append(sum(map(float, group_correct)) / len(group_correct))
        any_correct.append(float(any(group_correct)))
        if any(group_correct) and not all(group_correct):
            _, acc, _ = group_ranking_terms(
                torch.tensor([list(group_scores)], dtype=torch.float64), torch.tensor([list(group_correct)])
            )
            pairwise.append(float(acc[0]))
            best_mixed.append(best[-1])
            mean_mixed.append(mean[-1])

    def avg(values: list[float]) -> float:
        return sum(values) / len(values) if values else float("nan")

    return {
        "problems": float(len(best)),
        "mixed_problems": float(len(pairwise)),
        "pairwise_accuracy": avg(pairwise),
        "best_of_n_accuracy": avg(best),
        "mean_accuracy": avg(mean),
        "pass_at_n": avg(any_correct),
        "best_of_n_accuracy_mixed": avg(best_mixed),
        "mean_accuracy_mixed": avg(mean_mixed),
    }
