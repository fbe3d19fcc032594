"""The reward model: the policy's backbone with a scalar MLP head, and the scorer that runs it.

    model  = RewardModel.from_policy("runs/sft_tiny/final", seed=0)   # fresh head on the SFT backbone
    scores = model(input_ids, attention_mask)                         # [B, T], [B, T] -> [B]
    model.save_pretrained("runs/rm/final", tokenizer=tokenizer)
    scorer = RewardScorer("runs/rm/final")                            # inference, sorted batches
    scorer.score(problems, responses) / scorer.score_tokens(prompt_ids, response_ids)

Architecture (Qwen2.5-Math-RM): the causal LM's transformer without its LM head, then
Linear(h, h) → ReLU → Linear(h, 1) on the hidden state of the LAST real token of each
sequence. Sequences are right-padded; the last real token is found from the attention
mask, so the score does not depend on how much padding a batch adds.

What is scored: the prompt (chat template applied, assistant header included) followed by
the response tokens, closed with the end-of-turn token unless the response already ends with
one of the policy's stop tokens (`with_end_token`). The training data and the scorer build
sequences through the same function, with the token ids recorded in the saved model, so a
sampled response (ids ending in its stop token) and its text (tokenized, no stop token) end
alike. Training uses the sampled ids, as GRPO's `score_tokens` does; re-tokenizing text can
split a few responses differently from how they were sampled.

On disk (Hugging Face layout; the weight names follow Qwen2.5-Math-RM's `Qwen2ForRewardModel`):
`model.safetensors` with the backbone under `model.*` and the head under `score.0.*` /
`score.2.*`, `config.json` (the backbone's config, `architectures: [<X>ForRewardModel]`,
`num_labels: 1`), `reward_model.json` (what marks the directory as a reward model: the head
and pooling, and the end-of-turn token ids), and the tokenizer.

`RewardScorer` is a plain class; `remote_scorer` wraps it in a Ray actor where a job wires it.
Importing this module loads neither ray, vllm nor deepspeed.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
from collections.abc import Iterable, Iterator, Sequence, Sized
from pathlib import Path
from typing import Any

import torch

from mathdata.problems import Problem
from mathdata.prompts import PromptConfig
from mathrl.device import DeviceName, DTypeName, resolve_device, resolve_dtype
from policy.loading import check_model_dir, load_tokenizer

META_FILE = "reward_model.json"
META_TYPE = "mathrl-reward-model"
META_VERSION = 1
HEAD = "linear-relu-linear"
POOLING = "last_non_pad_token"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def build_head(hidden_size: int) -> torch.nn.Sequential:
    """Linear(h, h) → ReLU → Linear(h, 1); parameters `0.*` and `2.*` (saved as `score.0/2.*`)."""
    return torch.nn.Sequential(
        torch.nn.Linear(hidden_size, hidden_size), torch.nn.ReLU(), torch.nn.Linear(hidden_size, 1)
    )


def init_head(head: torch.nn.Sequential, seed: int, out_std: float) -> None:
    """Seeded init, independent of the global RNG. The hidden layer gets std 1/sqrt(h) (its
    ReLU features stay O(1) on a normalised hidden state); the output layer starts small
    (`out_std`, the backbone's initializer_range) so first scores sit near 0."""
    generator = torch.Generator().manual_seed(seed)
    hidden, out = head[0], head[2]
    with torch.no_grad():
        hidden.weight.copy_(torch.randn(hidden.weight.shape, generator=generator) / math.sqrt(hidden.in_features))
        hidden.bias.zero_()
        out.weight.copy_(torch.randn(out.weight.shape, generator=generator) * out_std)
        out.bias.zero_()


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] -> [B]: position of the last 1 in each row (the last real token). The running
    count of real tokens peaks first at that position, whatever padding follows it."""
    return attention_mask.long().cumsum(dim=-1).argmax(dim=-1)


def with_end_token(response_ids: Sequence[int], end_ids: Iterable[int], eos_id: int) -> list[int]:
    """The response closed by an end-of-turn token: `eos_id` is appended unless the response
    already ends with one of `end_ids` (a sampled stop token). Used for training and scoring."""
    response = list(response_ids)
    if not response or response[-1] not in set(end_ids):
        response.append(eos_id)
    return response


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest. -> input_ids [B, T], attention_mask [B, T]"""
    width = max((len(s) for s in sequences), default=0)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


class RewardModel(torch.nn.Module):
    """A transformer backbone (`model`, e.g. a `Qwen2Model`) and a scalar head (`score`).

    Looks enough like an HF model for the learner: `config` (the backbone's),
    `gradient_checkpointing_enable`, and `save_pretrained(dir, state_dict=..., safe_serialization=True)`,
    which `Learner.export_hf` calls with the gathered weights."""

    def __init__(self, backbone: torch.nn.Module, head: torch.nn.Sequential, eos_token_id: int, end_token_ids: Sequence[int]):
        super().__init__()
        self.model = backbone
        self.score = head
        self.eos_token_id = int(eos_token_id)
        self.end_token_ids = tuple(int(t) for t in end_token_ids)

    @property
    def config(self):
        return self.model.config

    def gradient_checkpointing_enable(self, **kwargs) -> None:
        self.model.gradient_checkpointing_enable(**kwargs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] right-padded ids and mask -> [B] float32 scores."""
        return self.score(self.pooled(input_ids, attention_mask)).squeeze(-1).float()

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] right-padded ids and mask -> [B, H]: the backbone's hidden state at the last
        real token, what the head reads."""
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state  # [B, T, H]
        last = last_token_index(attention_mask)  # [B]
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]

    def sequence(self, prompt_ids: Sequence[int], response_ids: Sequence[int]) -> list[int]:
        """The token ids this model scores for one (prompt, response)."""
        return list(prompt_ids) + with_end_token(response_ids, self.end_token_ids, self.eos_token_id)

    # --- construction and persistence ---------------------------------------------------

    @classmethod
    def from_policy(cls, path: str | Path, seed: int = 0, dtype: DTypeName = "float32") -> RewardModel:
        """The backbone of the causal LM in `path` (its LM head is left out) and a fresh head
        (same seed → same head). The end-of-turn tokens are the tokenizer's EOS and the stop
        tokens of the policy's generation config (what vLLM stops on)."""
        from transformers import AutoModel

        path = check_model_dir(path)
        if is_reward_model(path):
            raise ValueError(f"{path} is already a reward model; load it with load_reward_model, or start from a policy directory")
        backbone = AutoModel.from_pretrained(path, dtype=resolve_dtype(dtype), local_files_only=True)
        head = build_head(backbone.config.hidden_size)
        init_head(head, seed, out_std=getattr(backbone.config, "initializer_range", 0.02))
        eos_id, end_ids = _policy_end_tokens(path)
        return cls(backbone, head.to(resolve_dtype(dtype)), eos_id, end_ids)

    def meta(self) -> dict[str, Any]:
        return {
            "type": META_TYPE,
            "version": META_VERSION,
            "backbone": type(self.model).__name__,
            "hidden_size": self.config.hidden_size,
            "head": HEAD,
            "pooling": POOLING,
            "eos_token_id": self.eos_token_id,
            "end_token_ids": list(self.end_token_ids),
        }

    def save_pretrained(
        self,
        save_directory: str | Path,
        state_dict: dict[str, torch.Tensor] | None = None,
        safe_serialization: bool = True,
        tokenizer=None,
        max_shard_size: int | str = "5GB",
    ) -> Path:
        """Write weights (safetensors, sharded past `max_shard_size`), config.json,
        reward_model.json and, if given, the tokenizer. `state_dict` defaults to this module's
        (the learner passes the full weights it gathered under ZeRO-3). Written to a
        `.partial` sibling and renamed, so a crash never leaves a complete-looking directory."""
        from huggingface_hub import split_torch_state_dict_into_shards
        from safetensors.torch import save_file

        if not safe_serialization:
            raise ValueError("reward models are saved as safetensors only (safe_serialization=True)")
        out = Path(save_directory)
        partial = out.with_name(f".{out.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)

        tensors = {k: v.detach().to("cpu").contiguous() for k, v in (state_dict if state_dict is not None else self.state_dict()).items()}
        stray = [k for k in tensors if not k.startswith(("model.", "score."))]
        if stray:
            raise ValueError(f"reward-model weights must sit under model.* or score.*, got {stray[:3]}")
        split = split_torch_state_dict_into_shards(tensors, max_shard_size=max_shard_size)
        for filename, names in split.filename_to_tensors.items():
            save_file({name: tensors[name] for name in names}, partial / filename, metadata={"format": "pt"})
        if split.is_sharded:
            index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
            (partial / WEIGHTS_INDEX).write_text(json.dumps(index, indent=2))

        config = copy.deepcopy(self.config)
        config.architectures = [type(self.model).__name__.removesuffix("Model") + "ForRewardModel"]
        config.num_labels = 1
        config.use_cache = True
        config.dtype = tensors["score.0.weight"].dtype
        config.save_pretrained(partial)
        (partial / META_FILE).write_text(json.dumps(self.meta(), indent=2) + "\n")
        if tokenizer is not None:
            tokenizer.save_pretrained(partial)
        shutil.rmtree(out, ignore_errors=True)
        partial.rename(out)
        return out


def is_reward_model(path: str | Path) -> bool:
    return (Path(path) / META_FILE).is_file()


def read_meta(path: str | Path) -> dict[str, Any]:
    path = check_model_dir(path)
    if not is_reward_model(path):
        raise ValueError(
            f"{path} is not a reward model (no {META_FILE}); train one with launch/train_rm.py "
            "or start one from a policy with RewardModel.from_policy"
        )
    meta = json.loads((path / META_FILE).read_text())
    if meta.get("type") != META_TYPE or meta.get("head") != HEAD or meta.get("pooling") != POOLING:
        raise ValueError(
            f"{path / META_FILE}: unsupported reward model (type {meta.get('type')!r}, "
            f"head {meta.get('head')!r}, pooling {meta.get('pooling')!r})"
        )
    if int(meta.get("version", 0)) > META_VERSION:
        raise ValueError(f"{path / META_FILE}: format version {meta['version']} is newer than this code reads ({META_VERSION})")
    return meta


def load_reward_model(path: str | Path, dtype: DTypeName = "float32", device: torch.device | str | None = None) -> RewardModel:
    """A reward model saved by `RewardModel.save_pretrained` (or exported by the learner)."""
    import transformers
    from transformers import AutoModel

    path = check_model_dir(path)
    meta = read_meta(path)
    # The backbone loads through transformers (sharding, prefix `model.` stripped); the head's
    # `score.*` weights are read separately below, so transformers' notice about them is noise.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        backbone = AutoModel.from_pretrained(path, dtype=resolve_dtype(dtype), local_files_only=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
    if backbone.config.hidden_size != meta["hidden_size"]:
        raise ValueError(f"{path}: config.json says hidden_size {backbone.config.hidden_size}, {META_FILE} says {meta['hidden_size']}")
    head = build_head(meta["hidden_size"])
    head.load_state_dict(_read_head_weights(path))
    model = RewardModel(backbone, head.to(resolve_dtype(dtype)), meta["eos_token_id"], meta["end_token_ids"])
    model.eval()
    return model.to(device) if device is not None else model


def _read_head_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    if (path / WEIGHTS_INDEX).is_file():
        weight_map = json.loads((path / WEIGHTS_INDEX).read_text())["weight_map"]
        files = {name: path / file for name, file in weight_map.items() if name.startswith("score.")}
    else:
        with safe_open(path / WEIGHTS_FILE, framework="pt") as f:
            files = {name: path / WEIGHTS_FILE for name in f.keys() if name.startswith("score.")}
    weights = {}
    for name, file in files.items():
        with safe_open(file, framework="pt") as f:
            weights[name.removeprefix("score.")] = f.get_tensor(name)
    if not weights:
        raise ValueError(f"{path}: no score.* (reward head) weights found")
    return weights


def _policy_end_tokens(path: Path) -> tuple[int, list[int]]:
    """(the token that closes an assistant turn, every token generation stops on)."""
    tokenizer = load_tokenizer(path)
    eos_id = tokenizer.eos_token_id
    end_ids = [eos_id]
    generation_config = path / "generation_config.json"
    if generation_config.is_file():
        stop = json.loads(generation_config.read_text()).get("eos_token_id")
        end_ids += [stop] if isinstance(stop, int) else list(stop or [])
    return eos_id, list(dict.fromkeys(end_ids))


def length_sorted_batches(sequences: Sequence[Sized], batch_size: int, sort_by_length: bool = True) -> Iterator[list[int]]:
    """Index lists of at most `batch_size` sequences, cut from them sorted by length, so each
    batch pads to a near-equal length (`sort_by_length=False`: in input order). Callers put
    each result back at its index."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i])) if sort_by_length else list(range(len(sequences)))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def score_sequences(
    model: torch.nn.Module,
    sequences: Sequence[Sequence[int]],
    pad_id: int,
    batch_size: int,
    device: torch.device | str,
    sort_by_length: bool = True,
) -> list[float]:
    """Scores of full token sequences, in input order. Batches are cut from the sequences
    sorted by length, so each batch pads to a near-equal length (`sort_by_length=False`
    keeps the input order: the baseline the benchmark compares against)."""
    if any(len(s) == 0 for s in sequences):
        raise ValueError("cannot score an empty sequence")
    scores = [0.0] * len(sequences)
    with torch.inference_mode():
        for rows in length_sorted_batches(sequences, batch_size, sort_by_length):
            ids, mask = pad_right([sequences[i] for i in rows], pad_id)
            for row, value in zip(rows, model(input_ids=ids.to(device), attention_mask=mask.to(device)).tolist()):
                scores[row] = float(value)
    return scores


class RewardScorer:
    """Scores (problem, response) pairs with a saved reward model, in inference mode.

    `score_tokens` takes the ids a rollout produced (prompt with chat template, sampled
    response); `score` takes text and builds the prompt exactly as the rollout engine does."""

    def __init__(
        self,
        model_path: str,
        device: DeviceName = "auto",
        batch_size: int = 32,
        dtype: DTypeName = "float32",
        prompt: PromptConfig = PromptConfig(),
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = str(model_path)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.prompt = prompt
        self.tokenizer = load_tokenizer(model_path)
        self.model = load_reward_model(model_path, dtype=dtype, device=self.device)

    def score_tokens(self, prompt_ids: list[list[int]], response_ids: list[list[int]]) -> list[float]:
        """One score per (prompt ids, response ids) pair."""
        if len(prompt_ids) != len(response_ids):
            raise ValueError(f"{len(prompt_ids)} prompts but {len(response_ids)} responses")
        sequences = [self.model.sequence(p, r) for p, r in zip(prompt_ids, response_ids)]
        return score_sequences(self.model, sequences, self.tokenizer.pad_token_id, self.batch_size, self.device)

    def score(self, problems: Sequence[str | Problem], responses: Sequence[str]) -> list[float]:
        """One score per (problem text or record, response text) pair."""
        from rollout.engine import encode_prompt  # the rollout's own prompt encoding (no vLLM import)

        if len(problems) != len(responses):
            raise ValueError(f"{len(problems)} problems but {len(responses)} responses")
        encoded: dict[str, list[int]] = {}  # the n responses of a problem share one prompt
        prompt_ids = []
        for problem in problems:
            text = problem.problem if isinstance(problem, Problem) else problem
            if text not in encoded:
                encoded[text] = encode_prompt(self.tokenizer, text, self.prompt)
            prompt_ids.append(encoded[text])
        response_ids = self.tokenizer(list(responses), add_special_tokens=False)["input_ids"] if responses else []
        return self.score_tokens(prompt_ids, response_ids)


def center_scores(
    model_path: str | Path,
    prompt_ids: Sequence[Sequence[int]],
    response_ids: Sequence[Sequence[int]],
    batch_size: int = 32,
    device: DeviceName = "auto",
) -> float:
    """Shift the saved reward model's output bias so that its mean score on these responses is
    0; rewrite it in place (same dtype) and return the mean it had.

    The ranking loss sees score differences only, so training leaves the level of the scores
    wherever it drifts (about +11 on the tiny pipeline). The shaped reward σ(coef·r) then sits
    at 1 for every response and the reward model no longer orders anything. A constant shift
    leaves every ranking and every score difference as it was."""
    if not response_ids:
        raise ValueError("center_scores needs at least one response")
    path = check_model_dir(model_path)
    scorer = RewardScorer(str(path), device=device, batch_size=batch_size)  # float32: an exact mean
    mean = sum(scorer.score_tokens(list(prompt_ids), list(response_ids))) / len(response_ids)
    model = scorer.model.cpu()
    saved_dtype = _saved_dtype(path)
    with torch.no_grad():
        model.score[-1].bias -= mean
    model.to(saved_dtype).save_pretrained(path, tokenizer=scorer.tokenizer)
    return mean


def _saved_dtype(path: Path) -> torch.dtype:
    config = json.loads((path / "config.json").read_text())
    return resolve_dtype(config.get("dtype") or config.get("torch_dtype") or "float32")


def remote_scorer(model_path: str, num_cpus: float = 1, num_gpus: float = 0, **scorer_kwargs):
    """A `RewardScorer` in its own Ray actor (call `.score.remote(...)` / `.score_tokens.remote(...)`).
    The actor gets this process's offline/loopback settings (`mathrl.env.forwarded_env`)."""
    import ray

    from mathrl.env import forwarded_env

    actor_cls = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, runtime_env={"env_vars": forwarded_env()})(RewardScorer)
    return actor_cls.remote(model_path, **scorer_kwargs)
