"""`RolloutWorkers`: a group of `RolloutEngine` Ray actors that answers one batch of prompts.

- The prompts are split into contiguous, nearly equal shards, one per worker; the shards'
  results are put back in the caller's prompt order (`RolloutBatch.concat`).
- A worker that dies (`ray.exceptions.RayActorError`: a crash, OOM kill, `ray.kill`) is
  recreated with the same rank, given the latest pushed weights, and its shard is run
  again; the other shards keep running meanwhile. At most `max_restarts` restarts per call;
  each one is counted in the returned metrics (`retries`, `restarted_workers`).
  Ray's own actor restart is off: a bare restart would come back with the initial weights.
- `load_weights` publishes one version through a `WeightSync` (shared files on CPU, NCCL
  broadcast on GPU) and has every engine load it; `receive_weights` does the engines' half
  when the sender lives in another process (the learner).

`ray.remote` is applied here, where the job is wired; `RolloutEngine` stays a plain class.
On CPU each engine's compute threads are pinned to their own cores (vLLM's default would put
every engine of the machine on the same core).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mathrl.device import accelerator_kind
from mathrl.env import forwarded_env
from rollout.batch import RolloutBatch, split_evenly
from rollout.config import RolloutConfig, engine_dtype
from mathdata.prompts import PromptConfig
from rollout.engine import Prompt, RolloutEngine
from rollout.weights import SharedFileWeightSync, WeightPushMetrics, WeightSync, WeightUpdate


class RolloutWorkerError(RuntimeError):
    """A rollout worker kept dying: the restart budget of the call is spent."""


def cpu_core_lists(num_workers: int, cores_per_worker: int, available: Sequence[int]) -> list[str]:
    """Disjoint core lists for `num_workers` engines on one machine, as vLLM's
    VLLM_CPU_OMP_THREADS_BIND strings ("0", "2,3"). When there are too few cores the lists
    wrap around and share cores rather than fail."""
    cores = sorted(available)
    if not cores:
        raise ValueError("no CPU cores available to bind rollout workers to")
    per = max(1, min(cores_per_worker, len(cores)))
    return [",".join(str(cores[(rank * per + k) % len(cores)]) for k in range(per)) for rank in range(num_workers)]


class RolloutWorkers:
    """`cfg.num_workers` engine actors on `model_path`; needs a running Ray (`ray.init`)."""

    def __init__(
        self,
        model_path: str | Path,
        cfg: RolloutConfig,
        prompt: PromptConfig = PromptConfig(),
        weight_sync: WeightSync | None = None,
        max_restarts: int = 2,
        engine_kwargs: Mapping[str, Any] | None = None,
    ):
        """`weight_sync` is the sender `load_weights` uses when the weights are handed to this
        process (default: shared files in the engines' dtype); its engine arguments go to
        every engine and its `connect` runs here. When the sender lives elsewhere (learner
        rank 0 on GPU), pass that transport's `engine_kwargs`, let it `connect` through
        `join_weight_sync`, and push with `receive_weights`."""
        import ray

        self.model_path = str(model_path)
        self.cfg = cfg
        self.prompt = prompt
        self.max_restarts = max_restarts
        self.weight_sync = weight_sync if weight_sync is not None else SharedFileWeightSync(dtype=engine_dtype(cfg.engine))
        self._engine_kwargs = {**self.weight_sync.engine_kwargs(), **(engine_kwargs or {})}
        self._latest: WeightUpdate | None = None  # what a restarted engine must load
        self._in_process_group = False  # engines joined a broadcast group: a new one cannot
        self._actor_cls = ray.remote(
            num_cpus=cfg.cpus_per_worker,
            num_gpus=cfg.gpus_per_worker,
            max_restarts=0,  # we restart (see module docstring)
            runtime_env={"env_vars": forwarded_env()},
        )(RolloutEngine)
        self._cpu_cores: list[str | None] = [None] * cfg.num_workers
        if accelerator_kind() == "cpu" and cfg.num_workers > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
            # Assumes the workers share this machine (the CPU setups this project runs).
            self._cpu_cores = cpu_core_lists(cfg.num_workers, int(cfg.cpus_per_worker), os.sched_getaffinity(0))
        self._actors = [self._start(rank) for rank in range(cfg.num_workers)]
        ray.get([actor.__ray_ready__.remote() for actor in self._actors])
        self.weight_sync.connect(cfg.num_workers, self.join_weight_sync)

    @property
    def actors(self) -> list[Any]:
        """The live actor handles, by rank (for monitoring, or to kill one in a test)."""
        return list(self._actors)

    # --- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        ignore_eos: bool = False,
        seeds: Sequence[int] | None = None,
    ) -> RolloutBatch:
        """`RolloutEngine.generate` over the whole group; rows in the caller's prompt order.
        With `seeds` (one per prompt) the samples do not depend on the sharding, and a shard
        run again after a restart draws what the dead worker would have drawn."""
        start = time.perf_counter()
        prompts = list(prompts)
        shards = split_evenly(len(prompts), len(self._actors))
        kwargs = dict(n=n, temperature=temperature, max_tokens=max_tokens, ignore_eos=ignore_eos)

        def call(rank: int, shard: range):
            shard_seeds = None if seeds is None else [seeds[i] for i in shard]
            return self._actors[rank].generate.remote([prompts[i] for i in shard], **kwargs, seeds=shard_seeds)

        calls = {rank: functools.partial(call, rank, shard) for rank, shard in enumerate(shards) if len(shard)}
        results, restarted = self._run(calls, redo_after_restart=True)
        ranks = sorted(results)
        batch = RolloutBatch.concat([results[r] for r in ranks], [shards[r].start for r in ranks])
        batch.metrics.seconds = time.perf_counter() - start
        batch.metrics.retries = len(restarted)
        batch.metrics.restarted_workers = restarted
        return batch

    # --- weights ---------------------------------------------------------------------------

    def load_weights(self, state_dict: Mapping[str, torch.Tensor]) -> WeightPushMetrics:
        """Push the learner's weights (Hugging Face names) into every engine, in place,
        through this group's `weight_sync`."""
        start = time.perf_counter()
        update = self.weight_sync.stage(state_dict)
        stage_s = time.perf_counter() - start
        metrics = self.receive_weights(update, send=lambda: self.weight_sync.send(state_dict, update))
        self.weight_sync.retire(update)
        metrics.stage_s = stage_s
        metrics.total_s = time.perf_counter() - start
        return metrics

    def receive_weights(self, update: WeightUpdate, send: Callable[[], None] | None = None) -> WeightPushMetrics:
        """Have every engine load a version staged by some sender. `send` (if any) runs once
        all engines are receiving: a broadcast sender's `send` must meet them there."""
        start = time.perf_counter()
        if update.replayable:
            self._latest = update  # set first: an engine restarted during the push loads it
        calls = {rank: (lambda rank=rank: self._actors[rank].load_weights.remote(update)) for rank in range(len(self._actors))}
        _, restarted = self._run(calls, redo_after_restart=False, before_wait=send)
        seconds = time.perf_counter() - start
        return WeightPushMetrics(update.version, 0.0, seconds, seconds, restarted)

    def join_weight_sync(self, infos: list[dict[str, Any]]) -> Callable[[], None]:
        """Start engine i joining a broadcast transport with `infos[i]` (the `start_receivers`
        of `WeightSync.connect`); returns the function that waits for all of them."""
        import ray

        self._in_process_group = True
        refs = [actor.join_weight_sync.remote(info) for actor, info in zip(self._actors, infos)]
        return lambda: ray.get(refs)

    # --- lifecycle -------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop the engines and release the weight transport (files, process groups)."""
        import ray

        try:
            ray.get([actor.close.remote() for actor in self._actors], timeout=60)
        except (ray.exceptions.RayError, TimeoutError):
            pass  # a dead or stuck engine is killed below either way
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []
        self.weight_sync.close()

    # --- internals -------------------------------------------------------------------------

    def _start(self, rank: int):
        return self._actor_cls.remote(
            self.model_path,
            self.cfg,
            self.prompt,
            rank=rank,
            cpu_cores=self._cpu_cores[rank],
            engine_kwargs=self._engine_kwargs,
        )

    def _restart(self, rank: int) -> None:
        """Replace worker `rank` with a fresh engine that holds the latest pushed weights."""
        import ray

        if self._in_process_group:
            # The broadcast group was formed with the dead engine in it; a new engine cannot
            # take its rank, and the version it would need is not on disk.
            raise RolloutWorkerError(
                f"rollout worker {rank} died and a broadcast weight transport cannot take a new engine into its "
                "process group; rebuild RolloutWorkers, connect again and push the weights"
            )
        ray.kill(self._actors[rank], no_restart=True)  # in case it is only half dead
        actor = self._start(rank)
        if self._latest is not None:
            ray.get(actor.load_weights.remote(self._latest))
        else:
            ray.get(actor.__ray_ready__.remote())
        self._actors[rank] = actor

    def _run(
        self,
        calls: dict[int, Callable[[], Any]],
        redo_after_restart: bool,
        before_wait: Callable[[], None] | None = None,
    ) -> tuple[dict[int, Any], list[int]]:
        """Start `calls[rank]()` on every rank, collect the results; a rank whose worker died
        is restarted and (with `redo_after_restart`) called again. Returns the results by
        rank and the ranks restarted, in order."""
        import ray

        pending = {call(): rank for rank, call in calls.items()}
        if before_wait is not None:
            before_wait()
        results: dict[int, Any] = {}
        restarted: list[int] = []
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            rank = pending.pop(ref)
            try:
                results[rank] = ray.get(ref)
            except ray.exceptions.RayActorError as err:
                if len(restarted) >= self.max_restarts:
                    raise RolloutWorkerError(
                        f"rollout worker {rank} died and the restart budget ({self.max_restarts} per call) is spent"
                    ) from err
                restarted.append(rank)
                self._restart(rank)
                if redo_after_restart:
                    pending[calls[rank]()] = rank
                else:
                    results[rank] = None
        return results, restarted
