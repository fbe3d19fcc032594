"""Process environment for running offline on one machine or a cluster.

Called first thing by every entry point and by the test suite. Only sets defaults:
anything the user exported wins.
"""

from __future__ import annotations

import os

LOCAL_DEFAULTS = {
    # Nothing is fetched from a model or data hub at run time.
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    # No usage reporting; vLLM and Ray would otherwise try to reach the internet.
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Tokenizers' own thread pool fights with Ray/vLLM worker processes on small machines.
    "TOKENIZERS_PARALLELISM": "false",
}

LOOPBACK_DEFAULTS = {
    # Without these, vLLM's engine and Ray pick the machine's external address.
    "VLLM_HOST_IP": "127.0.0.1",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def set_local_defaults(loopback: bool = True) -> None:
    """Offline, no telemetry; with `loopback`, services bind to 127.0.0.1 (single-machine runs)."""
    for key, value in LOCAL_DEFAULTS.items():
        os.environ.setdefault(key, value)
    if loopback:
        for key, value in LOOPBACK_DEFAULTS.items():
            os.environ.setdefault(key, value)


# Set by the user to steer vLLM's CPU engines; actors must see them as the driver did.
_ENGINE_KNOBS = ["VLLM_CPU_OMP_THREADS_BIND", "VLLM_CPU_KVCACHE_SPACE"]


def forwarded_env() -> dict[str, str]:
    """The variables above as this process has them, for the `runtime_env` of Ray actors
    (on a cluster, actors do not inherit the driver's environment)."""
    names = [*LOCAL_DEFAULTS, *LOOPBACK_DEFAULTS, *_ENGINE_KNOBS]
    return {name: os.environ[name] for name in names if name in os.environ}
