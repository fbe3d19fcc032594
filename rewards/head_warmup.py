"""Head warm-up: fit the reward model's fresh head on the frozen backbone, then fine-tune all.

    losses = warm_up_head(model, data.groups, pad_id, HeadWarmupConfig(epochs=15))

A randomly initialised head sends random gradients into the backbone during the first
steps of fine-tuning and bends the features it is meant to read ("linear probing, then
fine-tuning", Kumar et al., 2022). So the head is first trained alone: the backbone's
last-token hidden states of every training response are computed once (one forward pass,
no gradients), and the head is fitted to them with the same listwise loss, in seconds.
Fine-tuning then starts from a head that already ranks.

On the tiny pipeline (the same 2,379 sampled training groups and 300 held-out problems):
fine-tuning from a fresh head reached held-out pairwise accuracy 0.58-0.59 and best-of-8
35%; the head alone on the frozen backbone 0.61-0.62; warm-up then fine-tuning 0.60 and
best-of-8 37.3%.

Imports only torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mathrl.config import require
from rewards.ranking import listwise_ranking_loss
from rewards.reward_model import RewardModel, length_sorted_batches, pad_right


@dataclass(frozen=True)
class HeadWarmupConfig:
    epochs: int = 0  # passes over the training groups with the backbone frozen; 0 = no warm-up
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 64  # groups per step
    feature_batch_size: int = 64  # sequences per forward pass when computing the features
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.epochs >= 0, "epochs", f"must be >= 0, got {self.epochs}")
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.feature_batch_size >= 1, "feature_batch_size", f"must be >= 1, got {self.feature_batch_size}")


def last_token_features(model: RewardModel, sequences: Sequence[Sequence[int]], pad_id: int, batch_size: int) -> torch.Tensor:
    """[N, H] float32: the backbone's hidden state at each sequence's last token, in input
    order (batches are cut from the sequences sorted by length, so little padding is run)."""
    features = torch.zeros(len(sequences), model.config.hidden_size)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for rows in length_sorted_batches(sequences, batch_size):
            ids, mask = pad_right([sequences[i] for i in rows], pad_id)
            features[rows] = model.pooled(ids, mask).float()
    model.train(was_training)
    return features


def warm_up_head(
    model: RewardModel,
    groups: Sequence[tuple[Sequence[Sequence[int]], Sequence[bool]]],
    pad_id: int,
    cfg: HeadWarmupConfig,
) -> list[float]:
    """Fit `model.score` in place on the frozen backbone's features of `groups` (token
    sequences and verdicts per problem, as `RMBatches.groups` holds them). Returns the mean
    listwise loss of each epoch. The backbone is not touched."""
    if cfg.epochs == 0 or not groups:
        return []
    flat = [seq for seqs, _ in groups for seq in seqs]
    features = last_token_features(model, flat, pad_id, cfg.feature_batch_size)  # [N, H]
    width = max(len(seqs) for seqs, _ in groups)
    grouped = torch.zeros(len(groups), width, features.shape[1])  # [G, n, H], padded slots zero
    correct = torch.zeros(len(groups), width, dtype=torch.bool)
    mask = torch.zeros(len(groups), width, dtype=torch.bool)
    start = 0
    for g, (seqs, verdicts) in enumerate(groups):
        grouped[g, : len(seqs)] = features[start : start + len(seqs)]
        correct[g, : len(seqs)] = torch.tensor(list(verdicts), dtype=torch.bool)
        mask[g, : len(seqs)] = True
        start += len(seqs)

    head = model.score
    dtype = next(head.parameters()).dtype
    head.float()  # fitted in float32 whatever the model's dtype, then cast back
    optimizer = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    losses = []
    for _ in range(cfg.epochs):
        order = torch.randperm(len(groups), generator=generator)
        total = 0.0
        for begin in range(0, len(order), cfg.batch_size):
            rows = order[begin : begin + cfg.batch_size]
            loss, _ = listwise_ranking_loss(head(grouped[rows]).squeeze(-1), correct[rows], mask[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
        losses.append(total / len(groups))
    head.to(dtype)
    return losses
