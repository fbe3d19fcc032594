"""The verifier, the RL algorithms, the data code and the configs import without ray, vllm or
deepspeed (STYLE rule 9): they run in plain processes, verifier workers and unit tests."""

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIGHT_PACKAGES = ["mathrl", "mathdata", "rewards", "rl"]
LIGHT_MODULES = ["rollout.config", "policy.tokenizer", "policy.tiny_model", "policy.loading"]
HEAVY = ["ray", "vllm", "deepspeed"]


def light_modules() -> list[str]:
    names = list(LIGHT_MODULES)
    for package in LIGHT_PACKAGES:
        names.append(package)
        names += [f"{package}.{m.name}" for m in pkgutil.iter_modules([str(ROOT / package)])]
    return names


def test_light_modules_do_not_import_heavy_stacks():
    modules = light_modules()
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"heavy imports pulled in by {modules}: {out.stdout}"
