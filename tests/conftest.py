import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mathrl.env import set_local_defaults  # noqa: E402

set_local_defaults()
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")

SHARED_DATA = ROOT.parent / "shared" / "data"

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The MATH-500 / GSM8K test files that sit beside the repository."""
    assert SHARED_DATA.is_dir(), f"expected the shared data folder at {SHARED_DATA}"
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, shared_data) -> Path:
    """A tokenizer trained on MATH-500 text and a freshly initialised tiny-3m Qwen2, in HF format."""
    import json

    from policy.tiny_model import TinyModelConfig, build_tiny_model
    from policy.tokenizer import TokenizerConfig, train_tokenizer

    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()]
    out = tmp_path_factory.mktemp("tiny_model")
    tokenizer = train_tokenizer([r["problem"] + "\n" + r["solution"] for r in rows], TokenizerConfig(vocab_size=768), out)
    build_tiny_model(TinyModelConfig(preset="tiny-3m", seed=0), tokenizer, out)
    return out
