"""Load a policy (tokenizer + causal LM) from a local Hugging Face directory.

One path for every model: the tiny models built by `policy.tiny_model` and a user's own
checkpoint (e.g. a downloaded Qwen2.5-Math-1.5B) load the same way. Nothing is fetched
from a hub: a name that is not a local directory is an error that says so.
"""

from __future__ import annotations

from pathlib import Path

from mathrl.device import DTypeName, resolve_dtype


def check_model_dir(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a local Hugging Face model directory (no config.json). "
            "Build a tiny model with `python launch/prepare.py`, or point to a downloaded checkpoint."
        )
    return path


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(check_model_dir(path), local_files_only=True)
    if tokenizer.pad_token is None:  # some base checkpoints ship without one
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: str | Path, dtype: DTypeName = "float32", device=None):
    """`AutoModelForCausalLM` from a local directory, in `dtype`, on `device` (default: CPU)."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        check_model_dir(path), dtype=resolve_dtype(dtype), local_files_only=True
    )
    return model.to(device) if device is not None else model
