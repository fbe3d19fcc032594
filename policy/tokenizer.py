"""Train the tiny models' tokenizer locally: byte-level BPE on the project's own math corpus.

Choices, and why:
- Byte-level BPE (as GPT-2 and Qwen2) so any text, LaTeX and unicode included, round-trips.
- Every digit is its own pre-token (as Qwen2 and Llama do): numbers are then spelled digit
  by digit, which is what lets a small model learn carrying and place value.
- A Qwen-style chat template with `<|im_start|>`/`<|im_end|>`, so the same SFT, rollout and
  evaluation code works on the tiny model and on Qwen2.5-Math checkpoints. The assistant
  turn is wrapped in `{% generation %}` so transformers can return an assistant-token mask
  (completion-only SFT loss).
- `<|endoftext|>` separates pretraining documents and pads; `<|im_end|>` ends a chat turn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mathrl.config import require

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{{- '\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@dataclass(frozen=True)
class TokenizerConfig:
    vocab_size: int = 2048
    min_frequency: int = 2
    model_max_length: int = 1024

    def __post_init__(self) -> None:
        # 256 byte symbols + the special tokens must fit, with room for merges.
        require(self.vocab_size >= 512, "vocab_size", f"must be >= 512 (byte alphabet + merges), got {self.vocab_size}")
        require(self.min_frequency >= 1, "min_frequency", f"must be >= 1, got {self.min_frequency}")
        require(self.model_max_length >= 64, "model_max_length", f"must be >= 64, got {self.model_max_length}")


def train_tokenizer(texts: Iterable[str], cfg: TokenizerConfig, out_dir: str | Path):
    """Train on `texts` and save a Hugging Face tokenizer (tokenizer.json + config) to `out_dir`.

    Deterministic: the same texts in the same order give a byte-identical tokenizer.json.
    Returns the loaded `transformers` tokenizer.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\p{N}"), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        min_frequency=cfg.min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)

    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        model_max_length=cfg.model_max_length,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hf_tokenizer.save_pretrained(out_dir)
    return hf_tokenizer
