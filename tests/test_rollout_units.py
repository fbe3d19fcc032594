"""Rollout pieces that need neither vLLM nor Ray: splitting prompts over workers and merging
the shards back in order, the batch record, bucketed weight files, the broadcast metadata,
core binding and prompt formatting."""

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mathdata.problems import Problem
from policy.tiny_model import TinyModelConfig, build_tiny_model
from policy.tokenizer import TokenizerConfig, train_tokenizer
from rollout.batch import RolloutBatch, RolloutMetrics, split_evenly
from mathdata.prompts import PromptConfig
from rollout.engine import encode_prompt, prompt_messages
from rollout.weights import (
    NcclBroadcastWeightSync,
    SharedFileWeightSync,
    WeightUpdate,
    block_key,
    plan_buckets,
    unique_tensors,
    write_buckets,
)
from rollout.worker import cpu_core_lists

ROOT = Path(__file__).resolve().parents[1]


def make_batch(num_prompts: int, n: int, tag: str) -> RolloutBatch:
    """A shard whose rows say which prompt they answer (`tag:prompt:sample`)."""
    rows = [(p, s) for p in range(num_prompts) for s in range(n)]
    return RolloutBatch(
        prompt_index=[p for p, _ in rows],
        prompt_ids=[[100 + p] for p, _ in rows],
        response_ids=[[p] * (s + 1) for p, s in rows],
        logprobs=[[-0.5] * (s + 1) for p, s in rows],
        texts=[f"{tag}:{p}:{s}" for p, s in rows],
        finish_reasons=["stop" if s % 2 else "length" for p, s in rows],
        metrics=RolloutMetrics(num_prompts, len(rows), num_prompts, sum(s + 1 for _, s in rows), seconds=1.0 + len(tag)),
    )


# --- splitting and merging -------------------------------------------------------------------


@pytest.mark.parametrize("items, parts", [(10, 3), (7, 2), (2, 4), (0, 2), (8, 8), (1, 1)])
def test_split_evenly_covers_items_in_order(items, parts):
    ranges = split_evenly(items, parts)
    assert len(ranges) == parts
    assert [i for r in ranges for i in r] == list(range(items))  # contiguous, in order, each once
    sizes = [len(r) for r in ranges]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_split_evenly_rejects_zero_parts():
    with pytest.raises(ValueError):
        split_evenly(3, 0)


def test_concat_restores_the_callers_prompt_order():
    prompts = 7
    shards = split_evenly(prompts, 3)  # 3, 2, 2 prompts
    parts = [make_batch(len(r), n=2, tag=f"w{k}") for k, r in enumerate(shards)]
    merged = RolloutBatch.concat(parts, [r.start for r in shards])
    assert merged.prompt_index == [p for p in range(prompts) for _ in range(2)]  # prompt-major
    assert len(merged) == 14 and merged.num_prompts == prompts
    # Row k of the merge is the right shard's row for that prompt.
    assert merged.texts[6:8] == ["w1:0:0", "w1:0:1"]  # prompt 3 = worker 1's first prompt
    assert merged.metrics.generated_tokens == sum(p.metrics.generated_tokens for p in parts)
    assert merged.metrics.seconds == max(p.metrics.seconds for p in parts)  # shards ran in parallel
    assert merged.metrics.num_samples == 14


def test_batch_rejects_ragged_columns():
    with pytest.raises(ValueError, match="texts"):
        RolloutBatch([0], [[1]], [[2]], [[-1.0]], [], ["stop"])
    with pytest.raises(ValueError, match="logprobs"):
        RolloutBatch([0], [[1]], [[2, 3]], [[-1.0]], ["x"], ["stop"])


def test_padded_responses():
    batch = make_batch(2, n=2, tag="a")
    ids, logprobs, mask = batch.padded_responses(pad_id=-1)
    assert ids.shape == logprobs.shape == mask.shape == (4, 2)
    assert mask.sum(1).tolist() == batch.response_lengths == [1, 2, 1, 2]
    assert ids[0].tolist() == [0, -1] and logprobs[0].tolist() == [-0.5, 0.0]


def test_metrics_tokens_per_second():
    assert RolloutMetrics(generated_tokens=300, seconds=1.5).tokens_per_s == 200
    assert RolloutMetrics().tokens_per_s == 0.0


# --- weight buckets ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, shared_data):
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()]
    return train_tokenizer([r["problem"] for r in rows], TokenizerConfig(vocab_size=512), tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="module")
def state_dict(tokenizer):
    return build_tiny_model(TinyModelConfig(preset="tiny-3m", seed=3), tokenizer).state_dict()


@pytest.mark.parametrize(
    "name, block",
    [
        ("model.layers.3.self_attn.q_proj.weight", "model.layers.3"),
        ("model.layers.12.mlp.gate_proj.weight", "model.layers.12"),
        ("model.embed_tokens.weight", "model.embed_tokens.weight"),
        ("lm_head.weight", "lm_head.weight"),
    ],
)
def test_block_key(name, block):
    assert block_key(name) == block


def test_plan_buckets_keeps_blocks_whole_and_in_order():
    sizes = [("embed", 50)] + [(f"layers.{i}.{p}", 10) for i in range(4) for p in "qkv"] + [("norm", 1)]
    buckets = plan_buckets(sizes, bucket_bytes=60)
    assert [n for b in buckets for n in b] == [n for n, _ in sizes]  # order kept, nothing lost
    for bucket in buckets:
        blocks = {block_key(n) for n in bucket}
        for other in buckets:
            if other is not bucket:
                assert not blocks & {block_key(n) for n in other}  # no block split across buckets
        assert sum(dict(sizes)[n] for n in bucket) <= 60
    # A block bigger than the limit travels alone rather than being split.
    assert plan_buckets([("a.0.x", 5), ("a.0.y", 5)], bucket_bytes=4) == [["a.0.x", "a.0.y"]]


def test_unique_tensors_drops_the_tied_head(state_dict):
    assert state_dict["lm_head.weight"].data_ptr() == state_dict["model.embed_tokens.weight"].data_ptr()
    names = list(unique_tensors(state_dict))
    assert "lm_head.weight" not in names and "model.embed_tokens.weight" in names
    assert len(names) == len(state_dict) - 1


def test_write_buckets_round_trips_whole_blocks(tmp_path, state_dict):
    files = write_buckets(state_dict, tmp_path, bucket_bytes=2 * 2**20, dtype=torch.bfloat16)
    assert len(files) > 2
    loaded: dict[str, torch.Tensor] = {}
    owner: dict[str, Path] = {}
    for path in files:
        for name, tensor in load_file(path).items():
            loaded[name] = tensor
            assert owner.setdefault(block_key(name), path) == path, f"{block_key(name)} split across files"
    assert set(loaded) == set(state_dict) - {"lm_head.weight"}
    for name, tensor in loaded.items():
        assert tensor.dtype == torch.bfloat16
        assert torch.equal(tensor, state_dict[name].to(torch.bfloat16)), name


def test_shared_file_sync_versions_and_cleanup(tmp_path, state_dict):
    sync = SharedFileWeightSync(dtype="float32", root=tmp_path)
    first = sync.stage(state_dict)
    second = sync.stage(state_dict)
    assert (first.version, second.version) == (1, 2) and first.replayable
    assert Path(first.path).is_dir() and Path(second.path).is_dir()
    assert pickle.loads(pickle.dumps(second)) == second  # travels to actors as an argument
    sync.retire(second)
    assert not Path(first.path).exists() and Path(second.path).is_dir()  # a restarted engine still finds v2
    assert not list(sync.directory.glob(".*partial"))
    sync.close()
    assert not sync.directory.exists()


def test_broadcast_metadata_follows_the_bucket_order(state_dict):
    sync = NcclBroadcastWeightSync("127.0.0.1", 29500, dtype="bfloat16", bucket_bytes=2**20)
    assert sync.engine_kwargs() == {"weight_transfer_config": {"backend": "nccl"}}
    update = sync.stage(state_dict)
    assert isinstance(update, WeightUpdate) and update.transport == "nccl" and not update.replayable
    assert "lm_head.weight" not in update.names
    assert set(update.dtype_names) == {"bfloat16"}
    assert update.shapes[update.names.index("model.norm.weight")] == tuple(state_dict["model.norm.weight"].shape)
    # Each block's tensors are contiguous in the send order.
    blocks = [block_key(n) for n in update.names]
    assert all(blocks.index(b) == i or blocks[i - 1] == b for i, b in enumerate(blocks))


# --- workers' cores ----------------------------------------------------------------------------


def test_cpu_core_lists_are_disjoint_when_cores_suffice():
    assert cpu_core_lists(2, 1, [0, 1]) == ["0", "1"]
    assert cpu_core_lists(2, 2, [4, 5, 6, 7]) == ["4,5", "6,7"]
    assert cpu_core_lists(3, 1, [0, 1]) == ["0", "1", "0"]  # too few cores: wrap around
    assert cpu_core_lists(1, 8, [0, 1]) == ["0,1"]


# --- prompts -----------------------------------------------------------------------------------


def test_prompt_format_builds_chat_messages(tokenizer):
    fmt = PromptConfig(template="Solve: {problem}\nPut the answer in \\boxed{{}}.", system="Be brief.")
    problem = Problem(id="p1", problem="What is 2+3?", answer="5")
    assert prompt_messages(problem, fmt) == prompt_messages("What is 2+3?", fmt) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Solve: What is 2+3?\nPut the answer in \\boxed{}."},
    ]
    messages = [{"role": "user", "content": "hi"}]
    assert prompt_messages(messages, fmt) == messages  # chat prompts pass through untouched
    ids = encode_prompt(tokenizer, "What is 2+3?")
    assert tokenizer.decode(ids) == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(ValueError, match="problem"):
        PromptConfig(template="no placeholder")


def test_driver_side_modules_do_not_import_vllm():
    """A Ray driver wraps `RolloutEngine` in `ray.remote` without loading vLLM itself."""
    code = "import sys, rollout.worker, rollout.engine, rollout.weights, rollout.batch; print('vllm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
