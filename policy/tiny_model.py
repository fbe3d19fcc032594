"""Build small Qwen2-architecture causal LMs from size presets, locally and deterministically.

The tiny models are real `Qwen2ForCausalLM`s, so everything downstream (DeepSpeed, vLLM,
the reward-model head) treats them exactly like a Qwen2.5-Math checkpoint.

Departures from the stock Qwen2 initialisation (as in GPT-2 / MiniCPM-style small models):
- input and output embeddings are tied (a large share of a tiny model's parameters
  would otherwise sit in two vocab-sized matrices);
- the projections that write into the residual stream (`o_proj`, `down_proj`) start with
  std 0.02/sqrt(2L), so the residual stream's variance does not grow with depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from mathrl.config import require


@dataclass(frozen=True)
class ModelShape:
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int


# head_dim is 64 everywhere: a size vLLM's CPU and GPU attention kernels both support.
# Parameter counts (printed by `count_parameters`) assume a 2k vocabulary.
PRESETS: dict[str, ModelShape] = {
    "tiny-3m": ModelShape(hidden_size=256, num_layers=4, num_heads=4, num_kv_heads=2, intermediate_size=704),
    # tiny-3m's parameters in twice the depth, the tiny pipeline's model (configs/prepare_tiny.yaml):
    # after the tiny SFT, 69.0% greedy against tiny-3m's 56.4% (fp32), 77.8% against 61.6-62.6% (bf16),
    # at ~1.5x the training time on an AVX2 CPU (docs/results.md)
    "tiny-3m-deep": ModelShape(hidden_size=192, num_layers=8, num_heads=3, num_kv_heads=1, intermediate_size=480),
    # twice tiny-3m-deep's width at its depth, ~2.4x its step time on 2 CPU cores (bf16), not 4x:
    # the reward model's backbone-size trial (docs/results.md)
    "tiny-13m": ModelShape(hidden_size=384, num_layers=8, num_heads=6, num_kv_heads=2, intermediate_size=1024),
    "tiny-25m": ModelShape(hidden_size=512, num_layers=8, num_heads=8, num_kv_heads=4, intermediate_size=1536),
    "tiny-100m": ModelShape(hidden_size=768, num_layers=12, num_heads=12, num_kv_heads=4, intermediate_size=2816),
}


@dataclass(frozen=True)
class TinyModelConfig:
    preset: str = "tiny-3m"
    max_position_embeddings: int = 1024
    rope_theta: float = 10000.0
    init_std: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.preset in PRESETS, "preset", f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        require(self.max_position_embeddings >= 64, "max_position_embeddings", f"must be >= 64, got {self.max_position_embeddings}")
        require(self.init_std > 0, "init_std", f"must be > 0, got {self.init_std}")


def build_tiny_model(cfg: TinyModelConfig, tokenizer, out_dir: str | Path | None = None):
    """A freshly initialised Qwen2ForCausalLM sized by `cfg.preset`, for `tokenizer`.

    Same config and seed → bit-identical weights. Saved in Hugging Face format (safetensors,
    config.json, generation_config.json, and the tokenizer) when `out_dir` is given.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    shape = PRESETS[cfg.preset]
    eos_ids = [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")]
    config = Qwen2Config(
        vocab_size=_round_up(len(tokenizer), 64),  # padded rows are never sampled: no token maps to them
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        rope_theta=cfg.rope_theta,
        initializer_range=cfg.init_std,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_ids[0],
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(cfg.seed)
    model = Qwen2ForCausalLM(config)
    _init_weights(model, cfg.init_std, shape.num_layers, cfg.seed)
    model.generation_config = GenerationConfig(
        eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id, bos_token_id=None
    )
    if out_dir is not None:
        out_dir = Path(out_dir)
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return model


def count_parameters(model) -> int:
    """Unique parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def _init_weights(model, std: float, num_layers: int, seed: int) -> None:
    """Re-initialise every weight from one seeded generator so the result does not depend on
    how transformers happens to order its own init calls."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    residual_std = std / math.sqrt(2 * num_layers)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.fill_(1.0)
            elif name.endswith(".bias"):
                param.zero_()
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                param.copy_(torch.randn(param.shape, generator=generator) * residual_std)
            else:
                param.copy_(torch.randn(param.shape, generator=generator) * std)


def _round_up(n: int, multiple: int) -> int:
    return (n + multiple - 1) // multiple * multiple
