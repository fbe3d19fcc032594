"""The locally built tokenizer and tiny Qwen2 models: deterministic, loadable by transformers
through the same path as any local checkpoint, and served by vLLM with matching logprobs."""

import json

import pytest
import torch

from policy.loading import load_causal_lm, load_tokenizer
from policy.tiny_model import PRESETS, TinyModelConfig, build_tiny_model, count_parameters
from policy.tokenizer import TokenizerConfig, train_tokenizer


@pytest.fixture(scope="module")
def corpus(shared_data):
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()]
    return [r["problem"] + "\n" + r["solution"] for r in rows]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("tiny")
    tokenizer = train_tokenizer(corpus, TokenizerConfig(vocab_size=1024), out)
    build_tiny_model(TinyModelConfig(preset="tiny-3m", seed=0), tokenizer, out)
    return out


def test_tokenizer_is_deterministic_and_round_trips(tmp_path, corpus, model_dir):
    train_tokenizer(corpus, TokenizerConfig(vocab_size=1024), tmp_path)
    assert (tmp_path / "tokenizer.json").read_bytes() == (model_dir / "tokenizer.json").read_bytes()
    tokenizer = load_tokenizer(model_dir)
    for text in corpus[:50] + ["ünïcødé π ≤ ∞ 中文 \\boxed{\\frac{3}{4}}", "  two  spaces\n\ttab"]:
        assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_digits_are_single_tokens(model_dir):
    tokenizer = load_tokenizer(model_dir)
    assert tokenizer.tokenize("12345") == list("12345")
    assert len(tokenizer) <= 1024


def test_chat_template_marks_only_the_assistant_turn(model_dir):
    tokenizer = load_tokenizer(model_dir)
    messages = [{"role": "user", "content": "What is 2+3?"}, {"role": "assistant", "content": "\\boxed{5}"}]
    out = tokenizer.apply_chat_template(messages, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    assistant = tokenizer.decode([t for t, m in zip(ids, mask) if m])
    assert assistant == "\\boxed{5}<|im_end|>"
    prompt = tokenizer.apply_chat_template(messages[:1], add_generation_prompt=True, tokenize=False)
    assert prompt == "<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n"


def test_model_is_deterministic_per_seed(model_dir):
    tokenizer = load_tokenizer(model_dir)
    a = build_tiny_model(TinyModelConfig(seed=0), tokenizer).state_dict()
    b = build_tiny_model(TinyModelConfig(seed=0), tokenizer).state_dict()
    c = build_tiny_model(TinyModelConfig(seed=1), tokenizer).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])


@pytest.mark.parametrize("preset, millions", [("tiny-3m", 3), ("tiny-3m-deep", 3), ("tiny-13m", 13), ("tiny-25m", 25), ("tiny-100m", 100)])
def test_preset_sizes_and_init(model_dir, preset, millions):
    tokenizer = load_tokenizer(model_dir)
    model = build_tiny_model(TinyModelConfig(preset=preset), tokenizer)
    assert 0.8 * millions < count_parameters(model) / 1e6 < 1.25 * millions
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied
    layers = PRESETS[preset].num_layers
    down = model.model.layers[0].mlp.down_proj.weight.std().item()
    q = model.model.layers[0].self_attn.q_proj.weight.std().item()
    assert down == pytest.approx(0.02 / (2 * layers) ** 0.5, rel=0.05)  # scaled residual init
    assert q == pytest.approx(0.02, rel=0.05)


def test_saved_model_reloads_with_identical_logits(model_dir):
    tokenizer = load_tokenizer(model_dir)
    built = build_tiny_model(TinyModelConfig(preset="tiny-3m", seed=0), tokenizer).eval()
    loaded = load_causal_lm(model_dir).eval()
    ids = torch.tensor([tokenizer("Solve 3x + 7 = 22.")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(built(ids).logits, loaded(ids).logits)


def test_loading_a_missing_directory_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a local Hugging Face model directory"):
        load_tokenizer(tmp_path / "Qwen2.5-Math-1.5B")


@pytest.mark.slow
def test_vllm_serves_the_tiny_model_with_hf_logprobs(model_dir):
    """Real vLLM (CPU build) on the built model: sampled-token logprobs equal HF's teacher-forced ones."""
    from vllm import LLM, SamplingParams

    tokenizer = load_tokenizer(model_dir)
    prompts = [
        tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
        for p in ["What is 2+3?", "Solve for x: 3x + 7 = 22."]
    ]
    llm = LLM(str(model_dir), dtype="float32", enforce_eager=True, max_model_len=256, seed=0)
    try:
        outputs = llm.generate(prompts, SamplingParams(n=2, max_tokens=12, temperature=1.0, logprobs=0, seed=0))
    finally:
        del llm
    hf = load_causal_lm(model_dir).eval()
    for request in outputs:
        prompt_ids = list(request.prompt_token_ids)
        for sample in request.outputs:
            assert len(sample.token_ids) == 12 and sample.finish_reason == "length"
            ids = torch.tensor([prompt_ids + list(sample.token_ids)])
            with torch.no_grad():
                logits = hf(ids).logits[0, len(prompt_ids) - 1 : -1]
            hf_logprobs = torch.log_softmax(logits.float(), -1).gather(-1, torch.tensor(sample.token_ids)[:, None])[:, 0]
            vllm_logprobs = torch.tensor([step[tok].logprob for step, tok in zip(sample.logprobs, sample.token_ids)])
            assert torch.allclose(vllm_logprobs, hf_logprobs, atol=1e-3), (vllm_logprobs, hf_logprobs)


def test_build_model_cli_gives_a_new_size_for_an_existing_tokenizer(tmp_path, model_dir, capsys):
    from launch.build_model import main

    out = main([f"tokenizer_path={model_dir}", f"output_dir={tmp_path / 'big'}", "model.preset=tiny-13m"])
    assert load_tokenizer(out).get_vocab() == load_tokenizer(model_dir).get_vocab()
    built = load_causal_lm(out)
    direct = build_tiny_model(TinyModelConfig(preset="tiny-13m"), load_tokenizer(model_dir)).state_dict()
    assert built.config.hidden_size == PRESETS["tiny-13m"].hidden_size
    assert all(torch.equal(value, direct[name]) for name, value in built.state_dict().items())  # what the docs' trials trained
    assert built.config.vocab_size == load_causal_lm(model_dir).config.vocab_size  # same vocabulary, other width

    with pytest.raises(SystemExit) as exit_info:
        main([f"tokenizer_path={model_dir}"])
    assert exit_info.value.code == 2 and "output_dir" in capsys.readouterr().err
