"""Losses the learner trains with, and the contract between them and the learner.

A loss returns a SUM over its units (tokens for token-mean, sequences for seq-mean) and
says how many units a batch holds; the learner divides by the global count across all
micro-batches and data-parallel ranks. That makes an update independent of how the batch
is cut into micro-batches or spread over ranks (8×1 and 2×4 give the same step), which a
per-micro-batch mean does not when micro-batches hold different numbers of tokens.
"""

from __future__ import annotations

from typing import Protocol

import torch

TensorBatch = dict[str, torch.Tensor]  # every tensor is [B, ...] and is split along dim 0


class BatchLoss(Protocol):
    def units(self, batch: TensorBatch) -> torch.Tensor:
        """Scalar: how many units (tokens, sequences) this batch's loss averages over."""
        ...

    def __call__(self, model: torch.nn.Module, batch: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(loss summed over units, metrics summed over units) for one micro-batch."""
        ...


def selected_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[..., token] for each position: [B, T, V], [B, T] -> [B, T].

    The chosen logit minus the row's logsumexp, one sequence at a time, so that no second
    [B, T, V] tensor (a full log_softmax) is held at once; a [T, V] one is, per row."""
    chosen = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # [B, T]
    normalizer = torch.stack([torch.logsumexp(row, dim=-1) for row in logits])  # [B, T]
    return chosen - normalizer


def token_logprobs(model: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """log p(input_ids[:, t] | input_ids[:, :t]) for t >= 1, in fp32.  [B, T] -> [B, T-1]"""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]  # [B, T-1, V]
    return selected_logprobs(logits.float(), input_ids[:, 1:])


class NextTokenLoss:
    """Cross-entropy on the tokens where `loss_mask` is 1, averaged over those tokens.

    Batch keys: `input_ids` [B, T]; `loss_mask` [B, T] (1 = this token is a target: response
    tokens in SFT, every real token in pretraining); optional `attention_mask` [B, T]."""

    def units(self, batch: TensorBatch) -> torch.Tensor:
        return batch["loss_mask"][:, 1:].sum()

    def __call__(self, model, batch):
        mask = batch["loss_mask"][:, 1:].float()  # [B, T-1]
        logprobs = token_logprobs(model, batch["input_ids"], batch.get("attention_mask"))  # [B, T-1]
        nll_sum = -(logprobs * mask).sum()
        return nll_sum, {"loss": nll_sum.detach()}
