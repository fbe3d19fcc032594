"""Moving new policy weights from the learner into running vLLM engines, without a restart.

A transport has two halves that run in different processes:

- the **sender** (`WeightSync`), next to the learner's full state dict (learner rank 0 or the
  driver): `stage` prepares one version and returns a small picklable `WeightUpdate`;
  `send` pushes the bytes while the receivers are receiving;
- the **receiver** (`receive_weights`), inside each engine's process: pulls the version
  named by the `WeightUpdate` into its `LLM`, then drops the prefix cache.

Two transports:

- `SharedFileWeightSync` (CPU, tested): the state dict is written as safetensors buckets to
  a directory on /dev/shm and every engine re-reads it with vLLM's in-place
  `reload_weights`. On the CPU build this is the only working route: the CPU linear layers
  are repacked at load time, so `model.load_weights` on a running model fails, and tensors
  cannot travel as RPC arguments. The directory of the latest version is kept until the
  next one is published, so a restarted engine can load it on its own. Single node (or a
  shared filesystem as `root`).
- `NcclBroadcastWeightSync` (GPU, **designed, not run in CI**: this project's CI has no
  GPU): vLLM's built-in NCCL weight-transfer engine. Learner rank 0 opens an NCCL group
  with the engines' workers and broadcasts packed buckets; each engine receives them
  inside one layerwise-reload session. A restarted engine cannot join the existing group,
  so after a worker death the learner must re-`connect` all engines and push again.
  (When learner and engines share GPUs, vLLM's `ipc` backend — CUDA IPC handles instead of
  a broadcast — plugs in the same way: another `WeightSync` with the same three calls.)

Both send the tensors in `plan_buckets` order, one transformer block at a time: vLLM fuses
q/k/v and gate/up into one parameter and holds a layer's pieces in a side buffer until all
of them have arrived, so a block split across buckets costs memory (and a block missing
from a partial reload keeps its old weights).

On the receiving side a worker extension (`WeightReceiverExtension`) runs inside vLLM's
worker process. Besides the reload it re-derives a tied output head, which the reload
does not touch: on CPU the head keeps a pre-packed copy of the embedding matrix, and an
engine fed only the checkpoint tensors would sample from the new body with the old head.

Imports neither vLLM nor Ray at module level; the sender side needs only torch and
safetensors.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from mathrl.device import DTypeName, resolve_dtype

DEFAULT_BUCKET_BYTES = 512 * 2**20
_BLOCK_INDEX = re.compile(r"\.(\d+)\.")  # "model.layers.3.mlp.up_proj.weight" -> block "model.layers.3"


@dataclass(frozen=True)
class WeightUpdate:
    """One published weight version: what a receiver needs to pull it (small, picklable)."""

    version: int
    transport: Literal["files", "nccl"]
    path: str | None = None  # files: directory of safetensors buckets
    # nccl: the tensors in broadcast order; the receiver sizes its buffers from these
    names: tuple[str, ...] = ()
    dtype_names: tuple[str, ...] = ()
    shapes: tuple[tuple[int, ...], ...] = ()

    @property
    def replayable(self) -> bool:
        """Whether a freshly started engine can load this version on its own (files stay on
        disk until retired; a broadcast needs the sender in the loop)."""
        return self.transport == "files"


@dataclass
class WeightPushMetrics:
    version: int
    stage_s: float  # sender: write files / build metadata
    receive_s: float  # send + every engine loading it (engines load in parallel)
    total_s: float
    restarted_workers: list[int]  # engines that died during the push and were recreated with it

    def as_dict(self, prefix: str = "weights/") -> dict[str, float]:
        return {f"{prefix}version": float(self.version), f"{prefix}stage_s": self.stage_s,
                f"{prefix}receive_s": self.receive_s, f"{prefix}total_s": self.total_s}


# --- bucketing (shared by both transports) ----------------------------------------------


def block_key(name: str) -> str:
    """The group a tensor must travel with: its transformer block (`model.layers.3`) for
    block parameters, else the tensor itself (embeddings, final norm, head)."""
    match = _BLOCK_INDEX.search(name)
    return name[: match.end() - 1] if match else name


def unique_tensors(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict without aliases: a tied `lm_head.weight` shares storage with the input
    embedding, so it is sent once (vLLM ties it again on load; safetensors refuses shared
    storage anyway). The first name wins."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    out = {}
    for name, tensor in state_dict.items():
        key = (tensor.untyped_storage().data_ptr(), tensor.storage_offset(), tuple(tensor.shape))
        if tensor.numel() and key in seen:
            continue
        seen.add(key)
        out[name] = tensor
    return out


def plan_buckets(sizes: Sequence[tuple[str, int]], bucket_bytes: int) -> list[list[str]]:
    """Pack named tensors (name, bytes) into buckets of at most `bucket_bytes`, never splitting
    a block (`block_key`). Blocks keep their first-appearance order; a block larger than
    `bucket_bytes` gets a bucket of its own."""
    if bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be > 0, got {bucket_bytes}")
    blocks: dict[str, list[tuple[str, int]]] = {}
    for name, nbytes in sizes:
        blocks.setdefault(block_key(name), []).append((name, nbytes))
    buckets: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for members in blocks.values():
        block_bytes = sum(nbytes for _, nbytes in members)
        if current and current_bytes + block_bytes > bucket_bytes:
            buckets.append(current)
            current, current_bytes = [], 0
        current += [name for name, _ in members]
        current_bytes += block_bytes
    if current:
        buckets.append(current)
    return buckets


def _cast(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    # Floating tensors travel in the engine's dtype (half the bytes for a bf16 engine and an
    # fp32 learner); integer buffers keep theirs.
    if dtype is not None and tensor.is_floating_point():
        tensor = tensor.to(dtype)
    return tensor.detach().contiguous()


def _out_dtype(tensor: torch.Tensor, dtype: torch.dtype | None) -> torch.dtype:
    return dtype if dtype is not None and tensor.is_floating_point() else tensor.dtype


def bucket_order(
    state_dict: Mapping[str, torch.Tensor], bucket_bytes: int, dtype: torch.dtype | None = None
) -> tuple[dict[str, torch.Tensor], list[list[str]]]:
    """The de-aliased tensors and their names in buckets, sized as they will travel (cast)."""
    tensors = unique_tensors(state_dict)
    sizes = [(name, t.numel() * _out_dtype(t, dtype).itemsize) for name, t in tensors.items()]
    return tensors, plan_buckets(sizes, bucket_bytes)


def write_buckets(
    state_dict: Mapping[str, torch.Tensor],
    out_dir: str | Path,
    bucket_bytes: int = DEFAULT_BUCKET_BYTES,
    dtype: torch.dtype | None = None,
) -> list[Path]:
    """Write `state_dict` as `bucket-00000.safetensors`, ... into `out_dir` (created), one
    file per `plan_buckets` bucket, floating tensors cast to `dtype`. Returns the files."""
    from safetensors.torch import save_file

    tensors, buckets = bucket_order(state_dict, bucket_bytes, dtype)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for index, names in enumerate(buckets):
        path = out_dir / f"bucket-{index:05d}.safetensors"
        # Cast one bucket at a time: peak extra memory is one bucket, not a second model.
        save_file({name: _cast(tensors[name], dtype).cpu() for name in names}, str(path))
        files.append(path)
    return files


# --- senders ------------------------------------------------------------------------------

StartReceivers = Callable[[list[dict[str, Any]]], Callable[[], None]]


class WeightSync(ABC):
    """Sender half of a weight transport, in the process that holds the full weights (the
    driver, or learner rank 0). Per update (`RolloutWorkers.load_weights` does this when the
    sender is in the driver):

        update = sync.stage(state_dict)          # prepare version k
        [engine.load_weights(update) ...]        # start every receiver (non-blocking)
        sync.send(state_dict, update)            # push bytes while they receive
        [wait for the receivers]; sync.retire(update)
    """

    def engine_kwargs(self) -> dict[str, Any]:
        """Extra `vllm.LLM(...)` arguments every receiving engine must be built with."""
        return {}

    def connect(self, num_engines: int, start_receivers: StartReceivers) -> None:
        """Set up the channel to `num_engines` engines. `start_receivers(infos)` must start
        engine i's `join_weight_sync(infos[i])` without waiting and return a wait function."""

    @abstractmethod
    def stage(self, state_dict: Mapping[str, torch.Tensor]) -> WeightUpdate: ...

    def send(self, state_dict: Mapping[str, torch.Tensor], update: WeightUpdate) -> None:
        """Push the bytes of `update`; runs while the receivers are inside `receive_weights`."""

    def retire(self, update: WeightUpdate) -> None:
        """Every receiver holds `update`: release what older versions still occupy."""

    def close(self) -> None:
        """Release everything (files, process groups)."""


def shared_memory_root() -> Path:
    """/dev/shm when it exists (RAM-backed: writing and re-reading cost no disk I/O), else the
    temp directory."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class SharedFileWeightSync(WeightSync):
    """Publish each version as safetensors buckets in `<root>/mathrl-weights-<id>/v<k>/`.

    A version directory is written under a temporary name and renamed when complete, so a
    reader never sees half a version. `retire` deletes every version but the given one;
    `close` deletes the whole directory."""

    def __init__(
        self,
        dtype: DTypeName | None = None,
        root: str | Path | None = None,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
    ):
        self.dtype = resolve_dtype(dtype) if dtype is not None else None
        self.bucket_bytes = bucket_bytes
        root = Path(root) if root is not None else shared_memory_root()
        self.directory = root / f"mathrl-weights-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._versions = itertools.count(1)

    def stage(self, state_dict: Mapping[str, torch.Tensor]) -> WeightUpdate:
        version = next(self._versions)
        final = self.directory / f"v{version:06d}"
        partial = self.directory / f".v{version:06d}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        write_buckets(state_dict, partial, self.bucket_bytes, self.dtype)
        partial.rename(final)
        return WeightUpdate(version=version, transport="files", path=str(final))

    def retire(self, update: WeightUpdate) -> None:
        keep = Path(update.path).name if update.path else None
        for old in self.directory.glob("v*"):
            if old.name != keep:
                shutil.rmtree(old, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


class NcclBroadcastWeightSync(WeightSync):
    """GPU transport: NCCL broadcast from learner rank 0 to every engine's worker(s), using
    vLLM's built-in weight-transfer engine (`weight_transfer_config={"backend": "nccl"}`).

    NOT RUN IN CI (needs CUDA and NCCL; the CI machines are CPU-only). The calls mirror vLLM's
    own trainer-side engine (`vllm.distributed.weight_transfer.nccl_engine`):

    - `connect`: the group has ranks 0 (this process) and 1 + i*tp + j (worker j of engine
      i); engines block in `init_weight_transfer_engine` until rank 0 opens its endpoint,
      so their joins are started first and awaited after.
    - `stage`: metadata only (names, dtypes, shapes in `plan_buckets` order).
    - `send`: packed broadcast in buckets of `bucket_bytes` (double-buffered on two CUDA
      streams) while the engines run `update_weights` for the same metadata.

    The state dict must already be on this process's GPU, gathered (under ZeRO-3 the
    learner gathers each block on all ranks; only rank 0 calls `send`).
    """

    def __init__(
        self,
        master_address: str,
        master_port: int,
        workers_per_engine: int = 1,  # tensor-parallel size of each engine
        dtype: DTypeName | None = None,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
    ):
        self.master_address = master_address
        self.master_port = master_port
        self.workers_per_engine = workers_per_engine
        self.dtype = resolve_dtype(dtype) if dtype is not None else None
        self.bucket_bytes = bucket_bytes
        self._versions = itertools.count(1)
        self._group = None  # vLLM PyNcclCommunicator, rank 0

    def engine_kwargs(self) -> dict[str, Any]:
        return {"weight_transfer_config": {"backend": "nccl"}}

    def connect(self, num_engines: int, start_receivers: StartReceivers) -> None:
        from vllm.distributed.weight_transfer.nccl_common import trainer_init

        world_size = 1 + num_engines * self.workers_per_engine
        infos = [
            {
                "master_address": self.master_address,
                "master_port": self.master_port,
                "rank_offset": 1 + engine * self.workers_per_engine,
                "world_size": world_size,
                "packed": True,
                "packed_buffer_size_bytes": self.bucket_bytes,
            }
            for engine in range(num_engines)
        ]
        wait = start_receivers(infos)
        self._group = trainer_init(
            {"master_address": self.master_address, "master_port": self.master_port, "world_size": world_size}
        )
        wait()

    def stage(self, state_dict: Mapping[str, torch.Tensor]) -> WeightUpdate:
        tensors, buckets = bucket_order(state_dict, self.bucket_bytes, self.dtype)
        names = [name for bucket in buckets for name in bucket]
        return WeightUpdate(
            version=next(self._versions),
            transport="nccl",
            names=tuple(names),
            dtype_names=tuple(str(_out_dtype(tensors[n], self.dtype)).removeprefix("torch.") for n in names),
            shapes=tuple(tuple(tensors[n].shape) for n in names),
        )

    def send(self, state_dict: Mapping[str, torch.Tensor], update: WeightUpdate) -> None:
        from vllm.distributed.weight_transfer.packed_tensor import packed_nccl_broadcast_producer

        if self._group is None:
            raise RuntimeError("NcclBroadcastWeightSync.send before connect(): the engines have not joined")
        tensors = unique_tensors(state_dict)
        # The receivers sized their buffers from `update`: send exactly that order and dtype.
        packed_nccl_broadcast_producer(
            iterator=((name, _cast(tensors[name], self.dtype)) for name in update.names),
            group=self._group,
            src=0,
            post_iter_func=lambda item: item[1],
            buffer_size_bytes=self.bucket_bytes,
        )

    def close(self) -> None:
        if self._group is not None:
            self._group.destroy()
            self._group = None


# --- receiver (runs in the engine's process) ------------------------------------------------

# vLLM mixes this class into its worker (`LLM(worker_extension_cls=...)`), so its methods can
# be called by name through `llm.collective_rpc` in the process that holds the model.
RECEIVER_EXTENSION = "rollout.weights.WeightReceiverExtension"


class WeightReceiverExtension:
    """Worker-side methods of the weight receiver (run inside vLLM's worker process)."""

    def load_weights_from_directory(self, path: str) -> None:
        """Reload every safetensors file in `path` in place (vLLM's layerwise reload: each
        layer is re-processed, e.g. re-packed for the CPU kernels, once all of its weights
        have arrived).

        vLLM logs "RotaryEmbedding: Failed to load weights" at every reload: it counts the
        rotary cos/sin cache, a buffer no checkpoint holds, as loadable, finds nothing for it
        and puts the layer's own cache back (`finalize_layerwise_processing`). Harmless: after a
        push the engine's log-probs match the Hugging Face model's to 1e-4
        (tests/test_rollout.py::test_weight_push_replaces_the_policy_in_place)."""
        self.reload_weights(weights_path=path, is_checkpoint_format=True)
        self.refresh_tied_lm_head()

    def refresh_tied_lm_head(self) -> None:
        """Re-derive a tied output head from the (new) input embedding.

        With tied embeddings no checkpoint tensor names the head, so the reload skips it.
        On CPU the head keeps its own pre-packed copy of the embedding matrix for the logits
        GEMM: without this the engine would sample from the new body but the OLD head.
        (On GPU the head reads the shared weight directly and this changes nothing.)"""
        model = self.get_model()
        head = getattr(model, "lm_head", None)
        tied = getattr(self.model_config.hf_text_config, "tie_word_embeddings", False)
        method = getattr(head, "quant_method", None)
        if tied and method is not None:
            method.process_weights_after_loading(head)


def join_weight_sync(llm, init_info: dict[str, Any]) -> None:
    """Receiver half of `WeightSync.connect` (broadcast transports only)."""
    llm.init_weight_transfer_engine({"init_info": init_info})


def receive_weights(llm, update: WeightUpdate) -> None:
    """Load `update` into the running `vllm.LLM` (built with `RECEIVER_EXTENSION`) in place,
    then drop its prefix cache: cached KV blocks were computed by the old weights and would
    otherwise be reused for any prompt longer than one block."""
    if update.transport == "files":
        if not update.path or not Path(update.path).is_dir():
            raise FileNotFoundError(f"weight version {update.version}: {update.path} is gone (retired or never staged)")
        llm.collective_rpc("load_weights_from_directory", args=(update.path,))
    elif update.transport == "nccl":
        update_info = {
            "names": list(update.names),
            "dtype_names": list(update.dtype_names),
            "shapes": [list(s) for s in update.shapes],
        }
        llm.start_weight_update()
        llm.update_weights({"update_info": update_info})
        llm.finish_weight_update()
        llm.collective_rpc("refresh_tied_lm_head")
    else:
        raise ValueError(f"unknown weight transport {update.transport!r}")
    llm.reset_prefix_cache()
