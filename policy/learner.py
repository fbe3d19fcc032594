"""The learner: one causal LM in a DeepSpeed engine, trained one batch at a time.

Every stage (pretraining, SFT, the reward model, GRPO) trains through the same narrow
interface:

    learner = Learner(model, LearnerConfig(...))
    metrics = learner.train_batch(batch, loss_fn)   # one optimizer step
    learner.save_checkpoint(run_dir / "checkpoints", step, client_state={...})
    learner.export_hf(out_dir)                       # full weights, HF format, even under ZeRO-3

DeepSpeed is imported in this module only. The engine runs in *unmanaged* gradient
accumulation: `train_batch` cuts the batch into micro-batches, back-propagates each, and
steps once, so a batch may hold any number of rows (GRPO batches vary with how many
problem groups survive the filter). Losses return sums; the learner normalises by the
global unit count (see `policy.losses`).

One process needs no launcher (rank 0 of 1, gloo on 127.0.0.1); under torchrun, the
deepspeed launcher or Ray actors that set RANK/WORLD_SIZE/MASTER_ADDR, the same class
runs data parallel. The backend follows the device: gloo on CPU, NCCL on CUDA.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import socket
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from mathrl.config import ConfigError, require
from mathrl.device import DeviceName, TrainingDType, resolve_auto_dtype, resolve_device
from policy.losses import BatchLoss, TensorBatch
from policy.schedules import ScheduleConfig, lr_factor

CHECKPOINT_PREFIX = "step_"


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float = 3e-4
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # global L2 norm; 0 disables clipping

    def __post_init__(self) -> None:
        require(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        require(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        require(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1", "beta1 and beta2 must be in [0, 1)")
        require(self.grad_clip >= 0, "grad_clip", f"must be >= 0 (0 = off), got {self.grad_clip}")


@dataclass(frozen=True)
class LearnerConfig:
    zero_stage: int = 0
    # bf16: bf16 weights, fp32 master copy in the optimizer. auto: bf16 where the device does bf16
    # in hardware, fp32 elsewhere (mathrl.device.has_fast_bf16); on a cluster of mixed machines
    # the ranks could resolve it differently, which the learner refuses at start: name it there.
    dtype: TrainingDType = "auto"
    micro_batch_size: int = 8  # rows per forward/backward; a batch is cut into as many as it needs
    offload_optimizer: bool = False  # ZeRO optimizer state on the host (stage >= 1)
    gradient_checkpointing: bool = False
    device: DeviceName = "auto"
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        require(self.zero_stage in (0, 1, 2, 3), "zero_stage", f"must be 0, 1, 2 or 3, got {self.zero_stage}")
        require(self.micro_batch_size >= 1, "micro_batch_size", f"must be >= 1, got {self.micro_batch_size}")
        require(
            not self.offload_optimizer or self.zero_stage >= 1,
            "offload_optimizer",
            "needs zero_stage >= 1 (ZeRO owns the optimizer state it offloads)",
        )


class Learner:
    def __init__(self, model: torch.nn.Module, cfg: LearnerConfig, tokenizer=None):
        """`model` is an HF causal LM (fp32 weights; the engine casts for bf16), e.g. from
        `policy.loading.load_causal_lm`, or another module with an HF `config` and
        `save_pretrained(dir, state_dict=..., safe_serialization=True)` (the reward model).
        `tokenizer`, if given, is saved with exports."""
        import deepspeed

        self.device = local_device(resolve_device(cfg.device))
        requested_dtype = cfg.dtype
        cfg = replace(cfg, dtype=resolve_auto_dtype(cfg.dtype, self.device))
        self.cfg = cfg  # with the dtype it trains in, never auto
        self.tokenizer = tokenizer
        init_distributed(self.device)
        self.rank = torch.distributed.get_rank()
        self.world_size = torch.distributed.get_world_size()
        require_one_dtype(cfg.dtype, self.device)
        if requested_dtype == "auto" and self.rank == 0:
            print(f"learner dtype: {cfg.dtype} (auto: bf16 only where {self.device.type} has it in hardware)")
        torch.manual_seed(cfg.seed)
        if cfg.gradient_checkpointing:
            model.gradient_checkpointing_enable()
        model.config.use_cache = False

        optimizer = None if cfg.offload_optimizer else torch.optim.AdamW(
            _param_groups(model, cfg.optimizer.weight_decay),
            lr=cfg.optimizer.lr,
            betas=(cfg.optimizer.beta1, cfg.optimizer.beta2),
            eps=cfg.optimizer.eps,
        )
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            model_parameters=None if optimizer else _param_groups(model, cfg.optimizer.weight_decay),
            # A callable: DeepSpeed hands it the optimizer it finally uses (ZeRO wraps ours).
            lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg.schedule)),
            config=deepspeed_config(cfg, self.world_size),
        )
        if cfg.zero_stage == 0 and cfg.dtype == "float32":
            _record_plain_grad_norm(self.engine)
        if cfg.zero_stage == 0 and cfg.dtype == "bfloat16":
            _undo_zero_gradient_step(self.optimizer)
        self.step = 0  # optimizer steps taken (restored by load_checkpoint)

    @property
    def module(self) -> torch.nn.Module:
        return self.engine.module

    def train_batch(self, batch: TensorBatch, loss_fn: BatchLoss) -> dict[str, float]:
        """One optimizer step on `batch` (all tensors [B, ...], this rank's share)."""
        start = time.perf_counter()
        micro_batches = split_batch(batch, self.cfg.micro_batch_size)
        local_units = sum(float(loss_fn.units(mb)) for mb in micro_batches)
        total_units = all_reduce_sum(local_units, self.device)
        if total_units == 0:
            return {"skipped": 1.0}
        self.engine.train()
        sums: dict[str, float] = defaultdict(float)
        finite = True
        for mb in micro_batches:
            mb = {k: v.to(self.device) for k, v in mb.items()}
            loss_sum, metric_sums = loss_fn(self.engine, mb)
            finite = finite and bool(torch.isfinite(loss_sum))
            # DeepSpeed averages gradients over ranks: scaling by world/total makes the
            # update the mean over every unit of the global batch.
            self.engine.backward(loss_sum * (self.world_size / total_units), scale_wrt_gas=False)
            for name, value in metric_sums.items():
                sums[name] += float(value)
        if all_reduce_sum(0.0 if finite else 1.0, self.device) > 0:
            # A non-finite loss on any rank: its gradients would turn every weight into NaN.
            # Every rank drops this batch's gradients; weights, optimizer state and the LR
            # schedule stay as they were. ZeRO's optimizers hold the reduced gradients in
            # their own buffers and skip (and clear) a step whose gradients are non-finite;
            # without ZeRO the gradients sit on the parameters.
            if self.cfg.zero_stage > 0:
                self.engine.step()
            else:
                self.engine.zero_grad()
            return {"loss": float("nan"), "skipped_nonfinite": 1.0, "step_time_s": time.perf_counter() - start}
        lr = self.scheduler.get_last_lr()[0]
        self.engine.step()
        self.step += 1
        metrics = {name: all_reduce_sum(value, self.device) / total_units for name, value in sums.items()}
        grad_norm = self.engine.get_global_grad_norm()
        tokens = all_reduce_sum(float(batch["attention_mask"].sum()) if "attention_mask" in batch else float(batch["input_ids"].numel()), self.device)
        elapsed = time.perf_counter() - start
        metrics.update(
            lr=lr,
            grad_norm=float(grad_norm) if grad_norm is not None else float("nan"),
            units=total_units,
            tokens=tokens,
            tokens_per_s=tokens / elapsed,
            step_time_s=elapsed,
        )
        return metrics

    # --- checkpoints ------------------------------------------------------------------

    def save_checkpoint(self, root: str | Path, client_state: dict[str, Any] | None = None) -> Path:
        """Save weights, optimizer, scheduler, step, RNG and `client_state` (e.g. the data
        position) to root/step_XXXXXXXX. Written under a temporary name and renamed when
        every rank is done, so a crash mid-write never leaves a directory that looks complete."""
        root = Path(root)
        final = root / f"{CHECKPOINT_PREFIX}{self.step:08d}"
        partial = root / f".{final.name}.partial"
        if self.rank == 0:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        barrier()
        state = {"step": self.step, "client_state": client_state or {}}
        self.engine.save_checkpoint(str(partial), tag="engine", client_state=state, save_latest=False)
        torch.save(_rng_state(), partial / f"rng_rank{self.rank}.pt")
        barrier()
        if self.rank == 0:
            shutil.rmtree(final, ignore_errors=True)
            partial.rename(final)
        barrier()
        return final

    def load_checkpoint(self, path: str | Path) -> dict[str, Any]:
        """Restore everything `save_checkpoint` wrote; returns the saved `client_state`."""
        path = Path(path)
        _, state = self.engine.load_checkpoint(
            str(path), tag="engine", load_optimizer_states=True, load_lr_scheduler_states=True
        )
        if state is None:
            raise FileNotFoundError(f"{path} holds no readable DeepSpeed checkpoint")
        self.step = int(state["step"])
        rng_file = path / f"rng_rank{self.rank}.pt"
        if rng_file.exists():
            _set_rng_state(torch.load(rng_file, weights_only=False))
        return state["client_state"]

    # --- export -----------------------------------------------------------------------

    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        """All weights on rank 0 (None elsewhere). Collective under ZeRO-3: call on every rank."""
        import deepspeed

        module = self.engine.module
        if self.cfg.zero_stage == 3:
            with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
                return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()} if self.rank == 0 else None
        return {k: v.detach().cpu() for k, v in module.state_dict().items()} if self.rank == 0 else None

    def export_hf(self, out_dir: str | Path) -> Path:
        """Write the current policy in Hugging Face format (safetensors + config + tokenizer),
        loadable by transformers and vLLM. Collective: call on every rank."""
        out_dir = Path(out_dir)
        state_dict = self.full_state_dict()
        if self.rank == 0:
            partial = out_dir.with_name(f".{out_dir.name}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            module = self.engine.module
            module.config.use_cache = True
            module.save_pretrained(partial, state_dict=state_dict, safe_serialization=True)
            module.config.use_cache = False
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(partial)
            shutil.rmtree(out_dir, ignore_errors=True)
            partial.rename(out_dir)
        barrier()
        return out_dir

    def close(self) -> None:
        self.engine.destroy()


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint under `root` (partial ones are never returned)."""
    root = Path(root)
    if not root.is_dir():
        return None
    complete = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX)]
    return max(complete, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]), default=None)


def deepspeed_config(cfg: LearnerConfig, world_size: int) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": False}
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": 1,
        "train_batch_size": cfg.micro_batch_size * world_size,
        # train_batch_size above is bookkeeping only: `train_batch` decides the accumulation.
        "managed_gradient_accumulation": False,
        "gradient_clipping": cfg.optimizer.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": cfg.dtype == "bfloat16"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    if cfg.offload_optimizer:  # DeepSpeed's CPU Adam: our torch optimizer cannot live on the host
        config["optimizer"] = {
            "type": "AdamW",
            "params": {
                "lr": cfg.optimizer.lr,
                "betas": [cfg.optimizer.beta1, cfg.optimizer.beta2],
                "eps": cfg.optimizer.eps,
                "weight_decay": cfg.optimizer.weight_decay,
            },
        }
    return config


def split_batch(batch: TensorBatch, micro_batch_size: int) -> list[TensorBatch]:
    rows = next(iter(batch.values())).shape[0]
    return [{k: v[i : i + micro_batch_size] for k, v in batch.items()} for i in range(0, rows, micro_batch_size)]


# Where ranks that share a machine meet: a file rather than torch's TCPStore, whose server
# listens on every network interface (it takes no bind address). See `init_distributed`.
FILE_STORE_ENV = "MATHRL_DIST_STORE_FILE"


def local_device(device: torch.device) -> torch.device:
    """This rank's device, made current. A launcher that starts one process per GPU with
    every GPU visible (torchrun, the deepspeed launcher) tells each its GPU by LOCAL_RANK;
    our Ray actors see only their own GPU and have LOCAL_RANK 0. Made current so that NCCL,
    DeepSpeed and our tensors all use the same GPU."""
    if device.type != "cuda" or device.index is not None:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    visible = torch.cuda.device_count()
    if not 0 <= local_rank < visible:
        raise RuntimeError(
            f"LOCAL_RANK={local_rank} but this process sees {visible} CUDA device(s): start at most one "
            "learner process per visible GPU (CUDA_VISIBLE_DEVICES), or set learner.device"
        )
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def init_distributed(device: torch.device) -> None:
    """Join the process group a launcher describes (RANK, WORLD_SIZE, and MASTER_ADDR/PORT
    from torchrun, the deepspeed launcher or our Ray actors on several machines, or a
    MATHRL_DIST_STORE_FILE shared by ranks on one machine), or, alone, create rank 0 of 1.
    Ranks on one machine, and a lone rank, rendezvous through a file: no port is opened
    beyond gloo's own, on 127.0.0.1.
    The single-process group is made without writing RANK/WORLD_SIZE/MASTER_* into the
    environment, where a subprocess would inherit them and try to join the same group.
    LOCAL_RANK is the exception: DeepSpeed's engine reads it (also during ZeRO-3 training).
    Libraries that take LOCAL_RANK as a sign of a distributed launch (accelerate) should not
    share a process with a learner."""
    import deepspeed

    if torch.distributed.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    # NCCL binds the group to this rank's GPU up front instead of guessing it at the first collective.
    bound = {"device_id": device} if device.type == "cuda" else {}
    if "RANK" not in os.environ:
        init_method = f"file://{new_store_file()}"
        torch.distributed.init_process_group(backend, init_method=init_method, rank=0, world_size=1, **bound)
        os.environ.setdefault("LOCAL_RANK", "0")
    elif FILE_STORE_ENV in os.environ:
        torch.distributed.init_process_group(
            backend,
            init_method=f"file://{os.environ[FILE_STORE_ENV]}",
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
            **bound,
        )
    deepspeed.init_distributed(dist_backend=backend, verbose=False)  # adopts an existing group


def new_store_file() -> str:
    """A path for a rendezvous file store that no other group uses (the file must not exist);
    its directory goes when this process exits."""
    directory = tempfile.mkdtemp(prefix="mathrl-dist-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return os.path.join(directory, "store")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def barrier() -> None:
    if torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1:
        torch.distributed.barrier()


def require_one_dtype(dtype: str, device: torch.device) -> None:
    """Every rank must train in the same dtype. Ranks on different kinds of machine can resolve
    `auto` differently, and DeepSpeed would then all-reduce bf16 gradients with fp32 ones."""
    bf16_ranks = all_reduce_sum(float(dtype == "bfloat16"), device)
    world_size = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    if bf16_ranks not in (0, world_size):
        raise ConfigError(
            "learner.dtype",
            f"{int(bf16_ranks)} of {world_size} ranks train in bfloat16 and the others in float32 "
            f"(this rank: {dtype}); the machines differ, so name the dtype (float32 or bfloat16) instead of auto",
        )


def all_reduce_sum(value: float, device: torch.device) -> float:
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return float(tensor.item())


def _record_plain_grad_norm(engine) -> None:
    """With a plain fp32 optimizer (ZeRO-0) DeepSpeed clips gradients but keeps no record of
    their norm, which every other mode reports through `get_global_grad_norm`. Route its
    clipping call through one that records the norm (pre-clip, as the other modes do)."""
    from deepspeed.runtime.utils import clip_grad_norm_

    def clip_and_record() -> None:
        engine._global_grad_norm = clip_grad_norm_(
            parameters=engine.module.parameters(), max_norm=engine.gradient_clipping(), mpu=engine.mpu
        )

    engine.clip_fp32_gradients = clip_and_record


def _undo_zero_gradient_step(optimizer) -> None:
    """bf16 without ZeRO runs DeepSpeed's FP16_UnfusedOptimizer, which builds its optimizer
    state by stepping once on zero gradients. For AdamW that step is not free: it applies one
    weight decay to the fp32 master weights, and it counts, so the bias correction of the
    first real updates assumes one more step than was taken and shrinks them (~0.73x the
    first). Copy the master weights back from the model's (they were cloned from it) and
    drop the optimizer state, so the first real step is Adam's first step, as under ZeRO."""
    from deepspeed.runtime.fp16.unfused_optimizer import FP16_UnfusedOptimizer

    if not isinstance(optimizer, FP16_UnfusedOptimizer):
        return
    with torch.no_grad():
        for masters, params in zip(optimizer.fp32_groups, optimizer.fp16_groups):
            for master, param in zip(masters, params):
                master.copy_(param)
    optimizer.optimizer.state.clear()


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on norms, biases and embeddings (the usual LM practice)."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim < 2 or "embed" in name or "norm" in name else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _rng_state() -> dict[str, Any]:
    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
