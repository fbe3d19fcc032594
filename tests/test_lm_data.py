"""LM training data: packed mixtures and SFT batches are pure functions of the step, and the
SFT loss covers exactly the assistant's tokens."""

import json

import pytest
import torch

from mathdata.prompts import PromptConfig, chat_messages  # noqa: F401
from mathrl.config import ConfigError, from_dict
from policy.lm_data import DataStageConfig, PackedMixture, SFTBatches, SFTDataConfig, SourceConfig, StagedMixtureConfig
from policy.loading import load_tokenizer
from mathdata.loading import ProblemFileConfig


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("lmdata")
    (root / "a.jsonl").write_text("".join(json.dumps({"text": f"alpha document {i} " * 5}) + "\n" for i in range(50)))
    (root / "b.jsonl").write_text("".join(json.dumps({"text": f"beta {i}"}) + "\n" for i in range(50)))
    problems = [{"problem": f"What is {i} + {i}?", "answer": str(2 * i), "solution": f"{i} + {i} = {2 * i}. The answer is \\\\boxed{{{2 * i}}}."} for i in range(40)]
    (root / "p.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    return root


def mixture(files, **stage2):
    return StagedMixtureConfig(
        sources={
            "a": SourceConfig(path=str(files / "a.jsonl")),
            "b": SourceConfig(path=str(files / "b.jsonl")),
            "p": SourceConfig(path=str(files / "p.jsonl"), format="problems"),
        },
        stages=[
            DataStageConfig(steps=3, mixture={"a": 1.0}, seq_len=32, batch_size=4),
            DataStageConfig(steps=2, mixture=stage2 or {"b": 1.0, "p": 1.0}, seq_len=64, batch_size=2),
        ],
        seed=3,
    )


def test_packed_batches_follow_stages_and_are_pure_functions_of_step(files, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    data = PackedMixture(mixture(files), tokenizer)
    assert data.total_steps == 5
    first = data.batch(0)
    assert first["input_ids"].shape == (4, 32) and bool(first["loss_mask"].all())
    assert data.batch(3)["input_ids"].shape == (2, 64)  # stage 2: its own length and batch size
    again = PackedMixture(mixture(files), tokenizer)
    for step in range(5):  # a resumed run sees the same batch at the same step
        assert torch.equal(data.batch(step)["input_ids"], again.batch(step)["input_ids"])
    assert not torch.equal(data.batch(0)["input_ids"], data.batch(1)["input_ids"])
    stage1_text = tokenizer.decode(data.batch(1)["input_ids"].flatten())
    stage2_text = tokenizer.decode(data.batch(4)["input_ids"].flatten())
    assert "alpha" in stage1_text and "beta" not in stage1_text
    assert "alpha" not in stage2_text and "<|endoftext|>" in stage2_text
    assert "<|im_start|>assistant" in tokenizer.decode(PackedMixture(mixture(files, p=1.0), tokenizer).batch(3)["input_ids"].flatten())


def test_unknown_source_in_a_stage_names_the_key(files):
    with pytest.raises(ConfigError) as info:
        from_dict(StagedMixtureConfig, {"sources": {"a": {"path": "x.jsonl"}}, "stages": [{"steps": 1, "mixture": {"c": 1.0}}]})
    assert info.value.key == "stages[0].mixture" and "unknown sources ['c']" in str(info.value)


def test_sft_loss_mask_covers_only_the_answer(files, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    cfg = SFTDataConfig(train=ProblemFileConfig(path=str(files / "p.jsonl")), batch_size=8, max_len=256, seed=1)
    data = SFTBatches(cfg, tokenizer)
    assert data.steps_per_epoch == 5 and data.dropped_too_long == 0
    batch = data.batch(0)
    for ids, attn, mask in zip(batch["input_ids"], batch["attention_mask"], batch["loss_mask"]):
        text = tokenizer.decode(ids[attn.bool()])
        target = tokenizer.decode(ids[mask.bool()])
        assert target.endswith("<|im_end|>") and "The answer is" in target
        assert "What is" not in target and text.index(target) > text.index("<|im_start|>assistant")
        assert not bool((mask.bool() & ~attn.bool()).any())  # padding never carries loss
    # an epoch visits every conversation once; the next epoch reshuffles
    epoch0 = torch.cat([data.batch(s)["input_ids"][:, :12] for s in range(5)])
    epoch1 = torch.cat([data.batch(s)["input_ids"][:, :12] for s in range(5, 10)])
    assert len({tuple(r.tolist()) for r in epoch0}) == 40
    assert not torch.equal(epoch0, epoch1)


def test_too_long_conversations_are_dropped_and_counted(files, tiny_model_dir):
    tokenizer = load_tokenizer(tiny_model_dir)
    full = SFTBatches(SFTDataConfig(train=ProblemFileConfig(path=str(files / "p.jsonl")), max_len=512), tokenizer)
    lengths = sorted(len(ids) for ids, _ in full.examples)
    cut = lengths[0]  # keep only the shortest conversations
    cfg = SFTDataConfig(train=ProblemFileConfig(path=str(files / "p.jsonl")), batch_size=4, max_len=cut)
    data = SFTBatches(cfg, tokenizer)
    assert data.dropped_too_long == sum(length > cut for length in lengths) > 0
    assert all(len(ids) <= cut for ids, _ in data.examples)


def test_prompt_template_validation():
    assert chat_messages("2+2?", PromptConfig(template="Q: {problem}", system="Be brief.")) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: 2+2?"},
    ]
    with pytest.raises(ConfigError, match="^template: must be one of plain, qwen-math-cot"):
        PromptConfig(template="no placeholder")
    cot = chat_messages("2+2?", PromptConfig(template="qwen-math-cot"))[0]["content"]
    assert cot == "2+2?\nPlease reason step by step, and put your final answer within \\boxed{}."
