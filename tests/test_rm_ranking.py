"""The listwise reward-model loss: hand-computed values, a slow loop version, invariances,
the learner loss around it (whole groups per micro-batch) and the ranking metrics."""

import math

import pytest
import torch

from policy.learner import split_batch
from rewards.ranking import (
    ListwiseRankingLoss,
    group_ranking_terms,
    listwise_ranking_loss,
    ranking_metrics,
    teacher_pairwise_loss,
)


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def loop_loss(scores, correct, mask=None):
    """The formula written out: per group −1/(k(n−k)) Σ log σ(r_pos − r_neg), mean over groups with pairs."""
    losses = []
    for g in range(len(scores)):
        real = [i for i in range(len(scores[g])) if mask is None or mask[g][i]]
        pos = [i for i in real if correct[g][i]]
        neg = [i for i in real if not correct[g][i]]
        if not pos or not neg:
            continue
        total = sum(log_sigmoid(scores[g][i] - scores[g][j]) for i in pos for j in neg)
        losses.append(-total / (len(pos) * len(neg)))
    return sum(losses) / len(losses)


def test_hand_computed_values():
    # one correct (score 2) vs two wrong (0, 1): k(n−k) = 2
    loss, metrics = listwise_ranking_loss(torch.tensor([[2.0, 0.0, 1.0]]), torch.tensor([[True, False, False]]))
    expected = -(log_sigmoid(2.0) + log_sigmoid(1.0)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(metrics["pairwise_accuracy"]) == 1.0

    # two groups; the second has two correct (0, 3) and two wrong (1, -1): 4 pairs, one misordered
    scores = torch.tensor([[2.0, 0.0, 1.0, 0.0], [0.0, 3.0, 1.0, -1.0]])
    correct = torch.tensor([[True, False, False, False], [True, True, False, False]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])  # group 1 has 3 responses
    loss, metrics = listwise_ranking_loss(scores, correct, mask)
    second = -(log_sigmoid(-1.0) + log_sigmoid(1.0) + log_sigmoid(2.0) + log_sigmoid(4.0)) / 4
    assert float(loss) == pytest.approx((expected + second) / 2, rel=1e-6)
    assert float(metrics["pairwise_accuracy"]) == pytest.approx((1.0 + 0.75) / 2)
    assert float(metrics["groups"]) == 2


def test_matches_the_loop_version_on_random_groups():
    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        G, n = 1 + trial % 5, 2 + trial % 7
        scores = torch.randn(G, n, generator=g) * 3
        correct = torch.rand(G, n, generator=g) < 0.4
        mask = torch.rand(G, n, generator=g) < 0.85
        correct[0, 0], correct[0, 1], mask[0, :2] = True, False, True  # at least one usable group
        loss, _ = listwise_ranking_loss(scores, correct, mask)
        assert float(loss) == pytest.approx(loop_loss(scores.tolist(), correct.tolist(), mask.tolist()), rel=1e-5)


def test_groups_without_both_kinds_carry_no_loss_and_no_gradient():
    scores = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.1, 0.2], [5.0, 4.0, 3.0]], requires_grad=True)
    correct = torch.tensor([[True, False, False], [True, True, True], [False, False, False]])
    loss, metrics = listwise_ranking_loss(scores, correct)
    assert float(loss.detach()) == pytest.approx(loop_loss(scores.tolist(), correct.tolist()))
    assert float(metrics["groups"]) == 1
    loss.backward()
    assert scores.grad[1:].abs().sum() == 0 and scores.grad[0].abs().sum() > 0
    # correct responses are pushed up, wrong ones down
    assert scores.grad[0, 0] < 0 and (scores.grad[0, 1:] > 0).all()

    none, metrics = listwise_ranking_loss(scores[1:], correct[1:])
    assert float(none.detach()) == 0 and float(metrics["groups"]) == 0
    none.backward()  # still differentiable: a micro-batch without pairs must not break backward


def test_invariant_to_permutation_and_to_a_shift_per_group():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 8, generator=g)
    correct = torch.rand(4, 8, generator=g) < 0.5
    correct[:, 0], correct[:, 1] = True, False
    loss, metrics = listwise_ranking_loss(scores, correct)
    for _ in range(3):
        perm = torch.randperm(8, generator=g)
        permuted, m = listwise_ranking_loss(scores[:, perm], correct[:, perm])
        torch.testing.assert_close(permuted, loss)
        torch.testing.assert_close(m["pairwise_accuracy"], metrics["pairwise_accuracy"])
    shifted, _ = listwise_ranking_loss(scores + torch.tensor([[3.0], [-7.0], [0.5], [100.0]]), correct)
    torch.testing.assert_close(shifted, loss, rtol=1e-5, atol=1e-6)


def test_ties_count_half_in_pairwise_accuracy():
    _, acc, usable = group_ranking_terms(torch.zeros(1, 4), torch.tensor([[True, True, False, False]]))
    assert float(acc[0]) == 0.5 and bool(usable[0])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_teacher_term_by_hand_and_against_a_loop():
    # scores (1, 0), teacher (2, 0), temperature 2: target σ(1) for (0, 1) and σ(−1) for (1, 0)
    loss = teacher_pairwise_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]]), temperature=2.0)
    p = sigmoid(1.0)
    cross_entropy = -(p * log_sigmoid(1.0) + (1 - p) * log_sigmoid(-1.0))  # the same for both orders
    assert float(loss[0]) == pytest.approx(cross_entropy, rel=1e-6)

    g = torch.Generator().manual_seed(3)
    scores, teacher = torch.randn(4, 6, generator=g) * 2, torch.randn(4, 6, generator=g)
    mask = torch.rand(4, 6, generator=g) < 0.8
    mask[3] = False
    mask[3, 0] = True  # one real response: no pair
    got = teacher_pairwise_loss(scores, teacher, 0.5, mask)
    for row in range(4):
        real = [i for i in range(6) if mask[row, i]]
        terms = [
            -(sigmoid(t) * log_sigmoid(s) + (1 - sigmoid(t)) * log_sigmoid(-s))
            for i in real
            for j in real
            if i != j
            for s, t in [(float(scores[row, i] - scores[row, j]), float(teacher[row, i] - teacher[row, j]) / 0.5)]
        ]
        assert float(got[row]) == pytest.approx(sum(terms) / len(terms) if terms else 0.0, rel=1e-5)
    # shifting a group's scores or its teacher values changes nothing
    shifted = teacher_pairwise_loss(scores + torch.tensor([[1.0], [-4.0], [9.0], [0.0]]), teacher - 3.0, 0.5, mask)
    torch.testing.assert_close(shifted, got)


def test_teacher_term_pulls_scores_towards_the_teachers_order():
    scores = torch.zeros(1, 3, requires_grad=True)
    teacher_pairwise_loss(scores, torch.tensor([[-1.0, 0.0, 1.0]]), 1.0).sum().backward()
    assert scores.grad[0, 2] < 0 < scores.grad[0, 0]  # the teacher's favourite goes up, its last down


class ToyScorer(torch.nn.Module):
    """Score = w · (sum of real token ids) / 100: enough to check batching and normalisation."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1.0))

    def forward(self, input_ids, attention_mask):
        return self.w * (input_ids * attention_mask).sum(-1).float() / 100


def toy_batch():
    g = torch.Generator().manual_seed(2)
    G, n, T = 5, 4, 7
    ids = torch.randint(1, 50, (G, n, T), generator=g)
    lengths = torch.randint(2, T + 1, (G, n), generator=g)
    attention = (torch.arange(T) < lengths[..., None]).long()
    ids = ids * attention
    correct = torch.tensor([[1, 0, 0, 1], [1, 1, 1, 1], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1]]).bool()
    response_mask = torch.ones(G, n, dtype=torch.bool)
    response_mask[3, 3] = False  # group 3 holds three responses
    ids[3, 3], attention[3, 3] = 0, 0
    return {"input_ids": ids, "attention_mask": attention, "correct": correct, "response_mask": response_mask}


def test_batch_loss_sums_groups_and_counts_usable_ones():
    batch, model, loss_fn = toy_batch(), ToyScorer(), ListwiseRankingLoss()
    assert int(loss_fn.units(batch)) == 4  # group 1 is all correct
    with torch.no_grad():
        loss_sum, metrics = loss_fn(model, batch)
        scores = model(batch["input_ids"].flatten(0, 1), batch["attention_mask"].flatten(0, 1)).view(5, 4)
        mean, expected = listwise_ranking_loss(scores, batch["correct"], batch["response_mask"])
        assert float(loss_sum) == pytest.approx(4 * float(mean), rel=1e-6)
        assert float(metrics["pairwise_accuracy"]) == pytest.approx(4 * float(expected["pairwise_accuracy"]), rel=1e-6)
        # the padding slot of group 3 is not a response: changing its ids changes nothing
        batch["input_ids"][3, 3] = 42
        assert float(loss_fn(model, batch)[0]) == pytest.approx(float(loss_sum), rel=1e-6)


def test_micro_batches_of_whole_groups_give_the_same_loss_and_gradient():
    """What the learner does: split along groups, sum the micro-batch sums, divide by all units."""
    batch, loss_fn = toy_batch(), ListwiseRankingLoss()
    grads = {}
    for micro in (5, 2, 1):
        model = ToyScorer()
        pieces = split_batch(batch, micro)
        units = sum(float(loss_fn.units(mb)) for mb in pieces)
        total = 0.0
        for mb in pieces:
            loss_sum, _ = loss_fn(model, mb)
            (loss_sum / units).backward()
            total += float(loss_sum.detach()) / units
        grads[micro] = (total, float(model.w.grad))
    for micro in (2, 1):
        assert grads[micro] == pytest.approx(grads[5], rel=1e-6)


def test_batch_loss_with_a_teacher_adds_its_term_on_every_group():
    batch, model = toy_batch(), ToyScorer()
    batch["teacher"] = torch.randn(5, 4, generator=torch.Generator().manual_seed(4))
    plain, with_teacher = ListwiseRankingLoss(), ListwiseRankingLoss(teacher_coef=0.5, teacher_temperature=0.3)
    with torch.no_grad():
        base, _ = plain(model, batch)
        total, metrics = with_teacher(model, batch)
        scores = model(batch["input_ids"].flatten(0, 1), batch["attention_mask"].flatten(0, 1)).view(5, 4)
        teacher = teacher_pairwise_loss(scores, batch["teacher"], 0.3, batch["response_mask"])
    # group 1 is all correct: no listwise pair, but the teacher ranks its responses, so it counts
    assert int(plain.units(batch)) == 4 and int(with_teacher.units(batch)) == 5
    assert float(total) == pytest.approx(float(base) + 0.5 * float(teacher.sum()), rel=1e-6)
    assert float(metrics["listwise_loss"]) == pytest.approx(float(base), rel=1e-6)
    assert float(metrics["mixed_share"]) == 4
    with pytest.raises(ValueError, match="teacher_temperature"):
        ListwiseRankingLoss(teacher_coef=1.0, teacher_temperature=0.0)


def test_ranking_metrics_by_hand():
    scores = [[0.9, 0.1, 0.5], [0.2, 0.8], [0.3, 0.3, 0.1], [1.0, 2.0]]
    correct = [[True, False, False], [True, False], [True, True, True], [False, False]]
    m = ranking_metrics(scores, correct)
    assert m["problems"] == 4 and m["mixed_problems"] == 2
    assert m["pairwise_accuracy"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["best_of_n_accuracy"] == pytest.approx((1 + 0 + 1 + 0) / 4)
    assert m["mean_accuracy"] == pytest.approx((1 / 3 + 1 / 2 + 1 + 0) / 4)
    assert m["pass_at_n"] == pytest.approx(3 / 4)
    assert m["best_of_n_accuracy_mixed"] == pytest.approx(0.5)
    assert m["mean_accuracy_mixed"] == pytest.approx((1 / 3 + 1 / 2) / 2)
