"""Batches for language-model training: packed pretraining mixtures and SFT conversations.

Both are *functions of the step*: `batch(step)` draws from an RNG seeded by (seed, step), so
a resumed run sees exactly the batches an uninterrupted one would, with no data-loader state
to checkpoint beyond the step counter.

Pretraining follows MiniMATH / MiniCPM: training is a list of stages, each with its own
mixture of sources (weights), sequence length and batch size (which makes the batch-size
schedule a per-stage setting). Documents are packed: tokenised, joined with
`<|endoftext|>`, and cut into full rows, so no compute goes to padding. Attention is not
masked at document boundaries (the GPT-2 / nanoGPT convention): the separator token teaches
the model where a document ends.

SFT renders each problem as a chat (user: prompt, assistant: solution) with the model's chat
template; only the assistant's tokens carry loss (the template's generation mask). Rows are
right-padded to the longest in the batch.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from mathdata.loading import ProblemFileConfig, load_problems
from mathdata.prompts import PromptConfig, chat_messages
from mathrl.config import require
from mathrl.seeding import derive_seed
from policy.losses import TensorBatch


@dataclass(frozen=True)
class SourceConfig:
    path: str
    # text: JSONL rows {"text": ...}; problems: problem files rendered as chats (prompt -> solution)
    format: Literal["text", "problems"] = "text"


@dataclass(frozen=True)
class DataStageConfig:
    steps: int
    mixture: dict[str, float]  # source name -> relative weight
    seq_len: int = 512
    batch_size: int = 32  # packed rows per optimizer step

    def __post_init__(self) -> None:
        require(self.steps >= 1, "steps", f"must be >= 1, got {self.steps}")
        require(bool(self.mixture), "mixture", "must name at least one source with a weight")
        require(all(w > 0 for w in self.mixture.values()), "mixture", f"weights must be > 0, got {self.mixture}")
        require(self.seq_len >= 16, "seq_len", f"must be >= 16, got {self.seq_len}")
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")


@dataclass(frozen=True)
class StagedMixtureConfig:
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    stages: list[DataStageConfig] = field(default_factory=list)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        require(bool(self.stages), "stages", "must list at least one stage")
        for i, stage in enumerate(self.stages):
            unknown = sorted(set(stage.mixture) - set(self.sources))
            require(not unknown, f"stages[{i}].mixture", f"names unknown sources {unknown}; defined: {sorted(self.sources)}")

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)


def render_documents(source: SourceConfig, tokenizer, prompt: PromptConfig) -> list[list[int]]:
    """Token ids of every document of `source`, each ending in `<|endoftext|>`."""
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if source.format == "problems":
        texts = [
            tokenizer.apply_chat_template(chat_messages(p.problem, prompt, p.solution or p.answer), tokenize=False)
            for p in load_problems(ProblemFileConfig(path=source.path)).problems
        ]
    else:
        texts = [_text_row(line, source.path, n) for n, line in enumerate(Path(source.path).open(encoding="utf-8"), 1) if line.strip()]
    if not texts:
        raise ValueError(f"{source.path}: no documents")
    return [ids + [eos] for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]


def _text_row(line: str, path: str, line_no: int) -> str:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:line {line_no}: invalid JSON ({err.msg})") from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise ValueError(f"{path}:line {line_no}: expected an object with a string 'text' field")
    return row["text"]


class PackedMixture:
    """Packed pretraining batches for every step of a staged mixture."""

    def __init__(self, cfg: StagedMixtureConfig, tokenizer):
        self.cfg = cfg
        self.docs = {name: render_documents(src, tokenizer, cfg.prompt) for name, src in cfg.sources.items()}

    @property
    def total_steps(self) -> int:
        return self.cfg.total_steps

    def stage_at(self, step: int) -> tuple[int, DataStageConfig]:
        end = 0
        for index, stage in enumerate(self.cfg.stages):
            end += stage.steps
            if step < end:
                return index, stage
        raise IndexError(f"step {step} is past the last stage (total {self.total_steps} steps)")

    def batch(self, step: int) -> TensorBatch:
        _, stage = self.stage_at(step)
        rng = random.Random(derive_seed("pretrain", self.cfg.seed, step))
        names = list(stage.mixture)
        weights = [stage.mixture[n] for n in names]
        need = stage.batch_size * stage.seq_len
        stream: list[int] = []
        while len(stream) < need:
            docs = self.docs[rng.choices(names, weights)[0]]
            stream.extend(docs[rng.randrange(len(docs))])
        input_ids = torch.tensor(stream[:need]).view(stage.batch_size, stage.seq_len)
        ones = torch.ones_like(input_ids)
        return {"input_ids": input_ids, "attention_mask": ones, "loss_mask": ones}


@dataclass(frozen=True)
class SFTDataConfig:
    train: ProblemFileConfig = field(default_factory=lambda: ProblemFileConfig(path="artifacts/tiny/data/train.jsonl"))
    prompt: PromptConfig = field(default_factory=PromptConfig)
    batch_size: int = 32  # conversations per optimizer step
    max_len: int = 512  # longer conversations are dropped (and counted), never cut mid-answer
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        require(self.max_len >= 16, "max_len", f"must be >= 16, got {self.max_len}")


class SFTBatches:
    """Epochs over the conversations, reshuffled per epoch from (seed, epoch)."""

    def __init__(self, cfg: SFTDataConfig, tokenizer):
        self.cfg = cfg
        self.pad_id = tokenizer.pad_token_id
        self.examples: list[tuple[list[int], list[int]]] = []
        self.dropped_too_long = 0
        for problem in load_problems(cfg.train).problems:
            ids, mask = chat_example(tokenizer, chat_messages(problem.problem, cfg.prompt, problem.solution or problem.answer))
            if len(ids) > cfg.max_len:
                self.dropped_too_long += 1
                continue
            self.examples.append((ids, mask))
        if not self.examples:
            raise ValueError(f"{cfg.train.path}: every conversation is longer than max_len={cfg.max_len}")

    @property
    def steps_per_epoch(self) -> int:
        return len(self.examples) // self.cfg.batch_size or 1

    def batch(self, step: int) -> TensorBatch:
        epoch, index = divmod(step, self.steps_per_epoch)
        order = list(range(len(self.examples)))
        random.Random(derive_seed("sft", self.cfg.seed, epoch)).shuffle(order)
        rows = [self.examples[i] for i in order[index * self.cfg.batch_size : (index + 1) * self.cfg.batch_size]]
        return pad_batch(rows, self.pad_id)


def chat_example(tokenizer, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """(token ids, 1 where the token is the assistant's) for one conversation."""
    out = tokenizer.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    return list(out["input_ids"]), list(out["assistant_masks"])


def pad_batch(rows: list[tuple[list[int], list[int]]], pad_id: int) -> TensorBatch:
    """Right-pad (ids, loss mask) rows to the longest. -> input_ids, attention_mask, loss_mask [B, T]"""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    loss_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (ids, mask) in enumerate(rows):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        attention_mask[r, : len(ids)] = 1
        loss_mask[r, : len(ids)] = torch.tensor(mask)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "loss_mask": loss_mask}
