"""From sampled groups to the learner's batch, and the GRPO loss the learner minimises.

    batch = training_batch(prompt_ids, response_ids, old_logprobs, advantages, pad_id)
    metrics = learner.train_batch(batch, GRPOLoss(cfg))

A row is prompt + response, right-padded. All per-token tensors live in the *target* frame
of `policy.losses.token_logprobs` ([N, L-1]: position t predicts token t+1), where
`response_mask` marks the response's tokens, so the prompt never enters the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from policy.losses import TensorBatch, selected_logprobs
from rl.algorithms import PolicyLossConfig, aggregate, policy_loss


def training_batch(
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    old_logprobs: Sequence[Sequence[float]],
    advantages: Sequence[float],
    pad_id: int,
) -> TensorBatch:
    """Dense tensors for N sequences: input_ids/attention_mask [N, L]; response_mask,
    old_logprobs [N, L-1] (target frame); advantages [N]."""
    lengths = [len(p) + len(r) for p, r in zip(prompt_ids, response_ids)]
    width = max(lengths)
    n = len(lengths)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n, width), dtype=torch.long)
    response_mask = torch.zeros((n, width - 1), dtype=torch.float32)
    old = torch.zeros((n, width - 1), dtype=torch.float32)
    for row, (prompt, response, lps) in enumerate(zip(prompt_ids, response_ids, old_logprobs)):
        if len(lps) != len(response):
            raise ValueError(f"sequence {row}: {len(response)} response tokens but {len(lps)} logprobs")
        p, r = len(prompt), len(response)
        input_ids[row, : p + r] = torch.tensor([*prompt, *response], dtype=torch.long)
        attention_mask[row, : p + r] = 1
        # response token k sits at position p + k and is predicted from position p + k - 1
        response_mask[row, p - 1 : p - 1 + r] = 1
        old[row, p - 1 : p - 1 + r] = torch.tensor(lps, dtype=torch.float32)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "response_mask": response_mask,
        "old_logprobs": old,
        "advantages": torch.as_tensor(advantages, dtype=torch.float32),
    }


def by_length(batch: TensorBatch) -> TensorBatch:
    """The rows sorted longest first, so that the learner's micro-batches (consecutive rows)
    hold sequences of similar length and `trim_padding` cuts each to little more than its
    own. The loss sums over rows, so their order within an optimizer step changes nothing."""
    order = torch.argsort(batch["attention_mask"].sum(dim=1), descending=True, stable=True)
    return {k: v[order] for k, v in batch.items()}


def trim_padding(batch: TensorBatch) -> TensorBatch:
    """The columns up to the longest row's end. A batch is padded to its longest sequence;
    a micro-batch cut from it need not carry that width. Rows are right-padded, so the
    columns dropped hold only padding: `input_ids`/`attention_mask` ([N, L]) keep `width`
    columns, the target-frame tensors ([N, L-1]) `width - 1`, per-row tensors stay."""
    full = batch["input_ids"].shape[1]
    width = int(batch["attention_mask"].sum(dim=1).max())
    if width == full:
        return batch
    trimmed = {}
    for key, value in batch.items():
        if value.dim() < 2:
            trimmed[key] = value
        elif key in ("input_ids", "attention_mask"):
            trimmed[key] = value[:, :width]
        else:
            assert value.shape[1] == full - 1, f"{key}: {tuple(value.shape)} is in neither frame of a [N, {full}] batch"
            trimmed[key] = value[:, : width - 1]
    return trimmed


def logits_and_logprobs(model: torch.nn.Module, batch: TensorBatch, temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [N, L-1, V] (fp32, divided by `temperature`) and log-probs of the next tokens
    [N, L-1] under their softmax: the distribution a rollout at that temperature samples from."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    return logits, selected_logprobs(logits, batch["input_ids"][:, 1:])


@torch.no_grad()
def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Per-position entropy of the softmax over the vocabulary: [N, T, V] -> [N, T]."""
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


class GRPOLoss:
    """The clipped policy-gradient loss of `rl.algorithms.policy_loss` on a `training_batch`
    (plus `ref_logprobs` [N, L-1] when the KL term is on), as a `policy.losses.BatchLoss`.

    Metrics besides the loss's own: `entropy` of the sampling policy (at `cfg.temperature`) on
    response tokens, and `logprob_diff`, the mean |log π_learner − log π_rollout| — on the
    first update of a step (before the weights move) it measures how far the rollout engine's
    numerics are from the learner's."""

    def __init__(self, cfg: PolicyLossConfig):
        self.cfg = cfg

    def units(self, batch: TensorBatch) -> torch.Tensor:
        if self.cfg.aggregation == "token-mean":
            return batch["response_mask"].sum()
        return torch.tensor(float(batch["response_mask"].shape[0]))

    def __call__(self, model: torch.nn.Module, batch: TensorBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch = trim_padding(batch)
        logits, logprobs = logits_and_logprobs(model, batch, self.cfg.temperature)
        mask = batch["response_mask"]
        loss, metrics, _ = policy_loss(
            logprobs, batch["old_logprobs"], batch["advantages"], mask, self.cfg, batch.get("ref_logprobs")
        )
        extra = {
            "entropy": entropy_from_logits(logits),
            "logprob_diff": (logprobs.detach() - batch["old_logprobs"]).abs(),
        }
        metrics.pop("ratio")  # its sum over units is not a useful number; clip_fraction says it
        for name, per_token in extra.items():
            metrics[name] = aggregate(per_token, mask, self.cfg.aggregation)
        metrics["loss"] = loss.detach()
        return loss, metrics

