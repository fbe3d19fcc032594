"""GRPO's pure functions against hand-computed values and slow loop versions."""

import math

import pytest
import torch

from rewards.shaping import ShapingConfig, shaped_reward
from rl.algorithms import PolicyLossConfig, group_advantages, keep_groups, kl_k3, policy_loss


def test_keep_groups_two_to_five_of_eight():
    counts = torch.arange(9)  # 0..8 correct of 8
    correct = torch.stack([torch.arange(8) < c for c in counts])
    assert keep_groups(correct).tolist() == [False, False, True, True, True, True, False, False, False]
    assert keep_groups(correct, low=1, high=7).tolist() == [False] + [True] * 7 + [False]


def test_group_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.5, 0.5, 0.5, 2.5]])
    adv = group_advantages(rewards, eps=0.0)
    # group 0: mean 0.5, sample std sqrt(1/3)
    s0 = math.sqrt(1 / 3)
    assert adv[0].tolist() == pytest.approx([0.5 / s0, -0.5 / s0, -0.5 / s0, 0.5 / s0])
    # group 1: mean 1.0, deviations -0.5,-0.5,-0.5,1.5, sample std sqrt(3/3)=1
    assert adv[1].tolist() == pytest.approx([-0.5, -0.5, -0.5, 1.5])
    assert group_advantages(rewards, normalize_std=False)[1].tolist() == pytest.approx([-0.5, -0.5, -0.5, 1.5])
    # equal rewards: zero advantages, no NaN
    assert group_advantages(torch.ones(1, 8)).abs().max().item() == 0.0


def test_kl_k3_by_hand():
    logp = torch.tensor([math.log(0.5), math.log(0.25)])
    ref = torch.tensor([math.log(0.25), math.log(0.25)])
    # d = log(0.25/0.5) = -ln2: exp(d) - d - 1 = 0.5 + ln2 - 1
    assert kl_k3(logp, ref).tolist() == pytest.approx([0.5 + math.log(2) - 1, 0.0])
    assert (kl_k3(torch.randn(100), torch.randn(100)) >= 0).all()


def loop_policy_loss(logp, old, adv, mask, cfg, ref=None):
    """The same loss written one token at a time."""
    token_losses = []
    for i in range(logp.shape[0]):
        seq = []
        for t in range(logp.shape[1]):
            if not mask[i, t]:
                continue
            r = math.exp(logp[i, t] - old[i, t])
            a = float(adv[i])
            loss = -min(r * a, min(max(r, 1 - cfg.clip_low), 1 + cfg.clip_high) * a)
            if cfg.kl_coef:
                d = float(ref[i, t] - logp[i, t])
                loss += cfg.kl_coef * (math.exp(d) - d - 1)
            seq.append(loss)
        token_losses.append(seq)
    if cfg.aggregation == "token-mean":
        flat = [x for seq in token_losses for x in seq]
        return sum(flat) / len(flat)
    return sum(sum(seq) / len(seq) for seq in token_losses) / len(token_losses)


@pytest.mark.parametrize("aggregation", ["token-mean", "seq-mean"])
@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_policy_loss_matches_loop(aggregation, kl_coef):
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(6, 7, generator=g) * 3
    old = logp + torch.randn(6, 7, generator=g) * 0.4  # ratios well outside the clip range too
    ref = logp + torch.randn(6, 7, generator=g) * 0.2
    adv = torch.randn(6, generator=g)
    mask = (torch.rand(6, 7, generator=g) > 0.3).float()
    mask[:, 0] = 1
    cfg = PolicyLossConfig(clip_low=0.2, clip_high=0.28, kl_coef=kl_coef, aggregation=aggregation)
    loss_sum, metrics, units = policy_loss(logp, old, adv, mask, cfg, ref)
    assert (loss_sum / units).item() == pytest.approx(loop_policy_loss(logp, old, adv, mask, cfg, ref), rel=1e-5)
    assert 0 < (metrics["clip_fraction"] / units).item() < 1


def test_policy_loss_by_hand_and_gradient_of_clipped_tokens():
    # one sequence, two tokens: ratio 1.5 with A=+1 is clipped at 1.2; ratio 0.5 with A=+1 is not
    logp = torch.tensor([[math.log(1.5), math.log(0.5)]], requires_grad=True)
    old = torch.zeros(1, 2)
    cfg = PolicyLossConfig(clip_low=0.2, clip_high=0.2)
    loss_sum, metrics, units = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 2), cfg)
    assert units.item() == 2
    assert loss_sum.item() == pytest.approx(-(1.2 + 0.5))
    assert metrics["clip_fraction"].item() == 1.0
    loss_sum.backward()
    assert logp.grad[0, 0].item() == 0.0  # clipped: no gradient
    assert logp.grad[0, 1].item() == pytest.approx(-0.5)  # d(-ratio)/dlogp = -ratio


def test_token_mean_is_invariant_to_micro_batching():
    """Summing per-micro-batch sums and dividing by the global count equals the full-batch mean."""
    g = torch.Generator().manual_seed(1)
    logp, old = -torch.rand(8, 5, generator=g), -torch.rand(8, 5, generator=g)
    adv, mask = torch.randn(8, generator=g), (torch.rand(8, 5, generator=g) > 0.4).float()
    cfg = PolicyLossConfig()
    full, _, units = policy_loss(logp, old, adv, mask, cfg)
    parts = [policy_loss(logp[i : i + 3], old[i : i + 3], adv[i : i + 3], mask[i : i + 3], cfg) for i in range(0, 8, 3)]
    assert sum(p[0] for p in parts) / sum(p[2] for p in parts) == pytest.approx((full / units).item(), rel=1e-6)


def test_kl_needs_reference():
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), PolicyLossConfig(kl_coef=0.1))


def test_shaped_reward_orders_every_correct_above_every_wrong():
    g = torch.Generator().manual_seed(2)
    rm = torch.randn(1000, generator=g) * 20  # even wildly scaled RM scores
    correct = torch.rand(1000, generator=g) > 0.5
    reward = shaped_reward(correct, rm, ShapingConfig())
    assert reward[correct].min() > reward[~correct].max()
    assert shaped_reward(torch.tensor([True, False]), torch.tensor([0.0, 0.0]), ShapingConfig()).tolist() == [0.5, -0.5]
    # within a class the RM decides
    r = shaped_reward(torch.tensor([True, True]), torch.tensor([-1.0, 2.0]), ShapingConfig(rm_coef=0.5))
    assert r.tolist() == pytest.approx([1 / (1 + math.exp(0.5)), 1 / (1 + math.exp(-1.0))])
    assert shaped_reward(correct, None, ShapingConfig(mode="verifier-only")).tolist() == correct.float().tolist()
