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
