"""In-process stand-ins for the GRPO controller's parts (rollout, verifier, learner, reward
scorer), shared by the controller tests: see `rl/controller.py` for the interfaces."""

from __future__ import annotations

import math

import torch

from mathdata.problems import Problem
from mathrl.config import from_dict
from rewards.verifier import Verdict
from rl.config import GRPOConfig
from rollout.batch import RolloutBatch


class FakeRollout:
    """Samples "right" or "wrong" for each of n responses: problem k answers right for the
    first `k % (n + 1)` samples, so each problem has a known number of correct samples."""

    def __init__(self, n: int = 8):
        self.n = n
        self.generated: list[list[str]] = []
        self.seeds: list[list[int] | None] = []
        self.loaded = 0

    def generate(self, problems, n=None, temperature=None, max_tokens=None, seeds=None):
        n = n or self.n
        self.generated.append([p.id for p in problems])
        self.seeds.append(seeds)
        rows = [(i, k) for i in range(len(problems)) for k in range(n)]
        texts = []
        for i, k in rows:
            right = k < int(problems[i].answer) % (self.n + 1)
            texts.append(f"\\boxed{{{problems[i].answer if right else 'x'}}}")
        return RolloutBatch(
            prompt_index=[i for i, _ in rows],
            prompt_ids=[[1, 2] for _ in rows],
            response_ids=[[3 + k, 4] for _, k in rows],
            logprobs=[[-1.0, -1.0] for _ in rows],
            texts=texts,
            finish_reasons=["stop"] * len(rows),
        )

    def load_weights(self, state_dict):
        self.loaded += 1


class FakeVerifier:
    def check(self, responses, golds):
        return [Verdict(r == f"\\boxed{{{g}}}", float(r == f"\\boxed{{{g}}}"), None) for r, g in zip(responses, golds)]


class FakeLearner:
    def __init__(self, loss: float = 0.5):
        self.batches = []
        self.loss = loss
        self.saved: list[dict] = []
        self.passes: list[tuple[int, int]] = []  # (mini-batches, epochs) of each update

    def update(self, batch, num_minibatches, epochs=1):
        self.batches.append(batch)
        self.passes.append((num_minibatches, epochs))
        return {"loss": self.loss, "kl": 0.0}

    def state_dict(self):
        return {"w": torch.zeros(1)}

    def save_checkpoint(self, root, client_state, keep):
        self.saved.append(dict(client_state))
        return root

    def load_latest(self, root):
        return self.saved[-1] if self.saved else None

    def export(self, out_dir):
        return out_dir


class FakeScorer:
    def __init__(self, value=0.0):
        self.value = value

    def score_tokens(self, prompt_ids, response_ids):
        return [self.value if math.isnan(self.value) else float(r[0]) for r in response_ids]


def problems_with_correct_counts(counts):
    return [Problem(id=f"p{i}", problem=f"q{i}", answer=str(c)) for i, c in enumerate(counts)]


def grpo_cfg(tmp_path, **batch):
    return from_dict(
        GRPOConfig,
        {
            "reward": {"shaping": {"mode": "verifier-only"}},
            "batch": {"groups_per_step": 2, "problems_per_draw": 4, "max_draws": 3, **batch},
            "run": {"run_dir": str(tmp_path / "run"), "steps": 3, "save_every": 1},
        },
    )
