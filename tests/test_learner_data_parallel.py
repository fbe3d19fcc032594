"""Data parallel equals one process: 2 ranks (torchrun, gloo, CPU) with half of a batch each
take the same steps as one process with the whole batch, under ZeRO stages 0, 2 and 3.

The ranks hold different numbers of target tokens (`tests/dp_worker.py` sorts the rows short to
long), so this checks the learner's global token normalisation and the global-norm gradient
clipping, not only that DeepSpeed averages gradients. Both sides run `tests/dp_worker.py` in
subprocesses, one thread per process, so the test process holds no process group and a hung
collective is killed by the timeout instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from policy.learner import free_port

WORKER = Path(__file__).with_name("dp_worker.py")
STAGES = (0, 2, 3)
STEPS = 3
TIMEOUT_S = 300  # each side takes 20-30 s here, more when other jobs load the cores
LAUNCHER_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR", "MASTER_PORT")


def run_worker(launcher: list[str], model_dir: Path, out_dir: Path) -> None:
    cmd = [*launcher, str(WORKER), str(model_dir), str(out_dir), "--stages", *map(str, STAGES), "--steps", str(STEPS)]
    # A learner made earlier in this pytest process left its 1-process group's RANK, MASTER_PORT,
    # ... in the environment: a child that inherited them would try to serve that same port.
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    # One thread per process: both ranks share the 2 cores, and the reference computes with
    # the same kernels as each rank.
    env["OMP_NUM_THREADS"] = "1"
    # A session of its own, so a timeout kills torchrun's workers too, not just torchrun.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish in {TIMEOUT_S} s:\n{output[-4000:]}")
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited with {proc.returncode}:\n{output[-4000:]}")


@pytest.fixture(scope="module")
def results(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data_parallel")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(free_port())]  # fmt: skip
    run_worker(torchrun, tiny_model_dir, out / "dp2")
    run_worker([sys.executable], tiny_model_dir, out / "single")  # no launcher: rank 0 of 1
    return out


def metrics(folder: Path, stage: int, rank: int = 0) -> list[dict[str, float]]:
    """Each step's metrics, less the timings (every rank has its own clock)."""
    steps = json.loads((folder / f"metrics_stage{stage}_rank{rank}.json").read_text())
    return [{k: v for k, v in m.items() if k not in ("tokens_per_s", "step_time_s")} for m in steps]


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_two_ranks_with_half_the_batch_each_match_one_process(results, tiny_model_dir, stage):
    dp, single = metrics(results / "dp2", stage), metrics(results / "single", stage)
    assert metrics(results / "dp2", stage, rank=1) == dp  # metrics are all-reduced: every rank reports the same

    for key in ("tokens", "units"):  # the global batch, not one rank's share
        assert [m[key] for m in dp] == [m[key] for m in single]
    for key in ("loss", "grad_norm"):
        assert [m[key] for m in dp] == pytest.approx([m[key] for m in single], rel=1e-5), key
    assert dp[-1]["loss"] < dp[0]["loss"]  # the steps really trained

    dp_weights = torch.load(results / "dp2" / f"weights_stage{stage}.pt")
    single_weights = torch.load(results / "single" / f"weights_stage{stage}.pt")
    assert dp_weights.keys() == single_weights.keys()
    for name, value in single_weights.items():
        torch.testing.assert_close(dp_weights[name], value, rtol=1e-5, atol=1e-5, msg=lambda m: f"{name}: {m}")

    # Elementwise closeness says little when an update is small next to the weights:
    # compare the two updates, relative to how far the weights moved.
    from policy.loading import load_causal_lm

    start = load_causal_lm(tiny_model_dir).state_dict()
    moved = sum(float((single_weights[k] - start[k]).pow(2).sum()) for k in start) ** 0.5
    apart = sum(float((dp_weights[k] - single_weights[k]).pow(2).sum()) for k in start) ** 0.5
    assert moved > 1.0, moved
    assert apart / moved < 1e-5, (apart, moved)
