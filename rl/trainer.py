"""The learner side of GRPO: the policy in DeepSpeed, the frozen reference, one update per step.

`PolicyTrainer` is a plain class that runs in one process (tests use it so); `LearnerGroup`
puts `num_processes` of them in Ray actors that form one DeepSpeed data-parallel group and
hands each rank its share of every batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from policy.learner import FILE_STORE_ENV, Learner, LearnerConfig, free_port, latest_checkpoint, new_store_file, split_batch
from policy.loading import load_causal_lm, load_tokenizer
from policy.losses import TensorBatch
from policy.train_loop import save_and_prune
from rl.algorithms import PolicyLossConfig
from rl.policy_update import GRPOLoss, by_length, logits_and_logprobs, trim_padding


class PolicyTrainer:
    """One rank of the GRPO learner. With `kl_coef` 0 no reference model is loaded."""

    def __init__(
        self,
        policy_path: str,
        learner_cfg: LearnerConfig,
        loss_cfg: PolicyLossConfig,
        dist_env: dict[str, str] | None = None,
        torch_threads: int = 0,
    ):
        """`dist_env` (RANK, WORLD_SIZE, MASTER_ADDR, ...) joins a data-parallel group; without
        it the trainer is rank 0 of 1."""
        if dist_env:
            os.environ.update(dist_env)
        if torch_threads:
            torch.set_num_threads(torch_threads)
        self.tokenizer = load_tokenizer(policy_path)
        self.learner = Learner(load_causal_lm(policy_path), learner_cfg, tokenizer=self.tokenizer)
        self.loss = GRPOLoss(loss_cfg)
        self.reference = None
        if loss_cfg.kl_coef > 0:
            self.reference = load_causal_lm(policy_path, dtype=self.learner.cfg.dtype, device=self.learner.device).eval()
            self.reference.requires_grad_(False)

    @property
    def step(self) -> int:
        return self.learner.step

    @torch.no_grad()
    def reference_logprobs(self, batch: TensorBatch) -> torch.Tensor:
        """log π_ref of the next tokens at the loss's temperature, [N, L-1] (0 past each row's end), computed
        micro-batch by micro-batch, each cut to its own width."""
        out = torch.zeros(batch["input_ids"].shape[0], batch["input_ids"].shape[1] - 1)
        row = 0
        for mb in split_batch(batch, self.learner.cfg.micro_batch_size):
            mb = {k: v.to(self.learner.device) for k, v in trim_padding(mb).items()}
            logprobs = logits_and_logprobs(self.reference, mb, self.loss.cfg.temperature)[1].cpu()
            out[row : row + logprobs.shape[0], : logprobs.shape[1]] = logprobs
            row += logprobs.shape[0]
        return out

    def update(self, batch: TensorBatch, num_minibatches: int = 1, epochs: int = 1) -> dict[str, float]:
        """Optimizer steps on `batch` (this rank's rows), one per mini-batch, in `epochs` passes
        over it; every pass's ratios are taken against the rollout's log-probs, so the clip
        bounds how far the later passes move the policy. Metrics are the mini-batches' mean,
        except `rollout_logprob_diff`, taken from the first mini-batch, before the weights moved."""
        if self.reference is not None:
            batch = {**batch, "ref_logprobs": self.reference_logprobs(batch)}
        rows = batch["input_ids"].shape[0]
        size = -(-rows // num_minibatches)
        minibatches = [by_length(mb) for mb in split_batch(batch, size)]  # micro-batches of similar lengths
        per_update = [self.learner.train_batch(mb, self.loss) for _ in range(epochs) for mb in minibatches]
        metrics = {k: sum(m.get(k, 0.0) for m in per_update) / len(per_update) for k in per_update[0]}
        metrics["rollout_logprob_diff"] = per_update[0].get("logprob_diff", float("nan"))
        metrics["optimizer_steps"] = float(len(per_update))
        return metrics

    def state_dict(self) -> dict[str, torch.Tensor] | None:
        """Full weights on rank 0 (None elsewhere); collective under ZeRO-3."""
        return self.learner.full_state_dict()

    def save_checkpoint(self, root: str, client_state: dict[str, Any], keep: int) -> str:
        """Checkpoint under `root` (named by optimizer steps); `client_state` holds the job's own
        position (GRPO step, sampler). Collective: call on every rank."""
        return str(save_and_prune(self.learner, Path(root), keep, client_state))

    def load_latest(self, root: str) -> dict[str, Any] | None:
        """Restore the newest complete checkpoint under `root`; its client state, or None."""
        latest = latest_checkpoint(root)
        return self.learner.load_checkpoint(latest) if latest is not None else None

    def export(self, out_dir: str) -> str:
        return str(self.learner.export_hf(out_dir))


class _TrainerHost:
    """A Ray actor that builds its `PolicyTrainer` only once the group's rendezvous is known
    (rank 0 is asked for it first), then forwards calls to it."""

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def rendezvous(self, world_size: int, same_node: bool) -> list[dict[str, str]]:
        """The environment of each rank of a group with this actor as rank 0: a file store on
        this machine when every rank runs here, else rank 0's address and a free port."""
        import ray

        if same_node:
            meet = {FILE_STORE_ENV: new_store_file()}
        else:
            meet = {"MASTER_ADDR": ray.util.get_node_ip_address(), "MASTER_PORT": str(free_port())}
        # LOCAL_RANK 0: each actor sees only its own device
        return [{"RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": "0", **meet} for rank in range(world_size)]

    def start(self, *args, **kwargs) -> None:
        self.trainer = PolicyTrainer(*args, **kwargs)

    def call(self, method: str, *args, **kwargs):
        return getattr(self.trainer, method)(*args, **kwargs)


class LearnerGroup:
    """`cfg.num_processes` `PolicyTrainer`s in Ray actors, one DeepSpeed data-parallel group.
    Every method is collective: it runs on every rank and returns rank 0's answer."""

    def __init__(self, policy_path: str, learner_cfg: LearnerConfig, loss_cfg: PolicyLossConfig, cfg) -> None:
        import ray

        from mathrl.env import forwarded_env

        host = ray.remote(
            num_cpus=cfg.cpus_per_process,
            num_gpus=cfg.gpus_per_process,
            runtime_env={"env_vars": forwarded_env()},
        )(_TrainerHost)
        self.actors = [host.remote() for _ in range(cfg.num_processes)]
        envs: list[dict[str, str] | None] = [None]
        if cfg.num_processes > 1:
            same_node = len(set(ray.get([actor.node_id.remote() for actor in self.actors]))) == 1
            envs = ray.get(self.actors[0].rendezvous.remote(cfg.num_processes, same_node))
        ray.get(
            [
                actor.start.remote(policy_path, learner_cfg, loss_cfg, dist_env=env, torch_threads=cfg.torch_threads)
                for actor, env in zip(self.actors, envs)
            ]
        )

    def _per_rank(self, method: str, args_by_rank: Sequence[tuple]):
        import ray

        return ray.get([actor.call.remote(method, *args) for actor, args in zip(self.actors, args_by_rank)])[0]

    def _all(self, method: str, *args):
        return self._per_rank(method, [args] * len(self.actors))

    def update(self, batch: TensorBatch, num_minibatches: int, epochs: int = 1) -> dict[str, float]:
        """Each rank trains on its contiguous share of the rows; metrics are global."""
        from rollout.batch import split_evenly

        rows = batch["input_ids"].shape[0]
        shares = split_evenly(rows, len(self.actors))
        return self._per_rank(
            "update", [({k: v[s.start : s.stop] for k, v in batch.items()}, num_minibatches, epochs) for s in shares]
        )

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._all("state_dict")

    def save_checkpoint(self, root: str, client_state: dict[str, Any], keep: int) -> str:
        return self._all("save_checkpoint", root, client_state, keep)

    def load_latest(self, root: str) -> dict[str, Any] | None:
        return self._all("load_latest", root)

    def export(self, out_dir: str) -> str:
        return self._all("export", out_dir)

    def shutdown(self) -> None:
        import ray

        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
