"""`LearnerGroup`: `PolicyTrainer` ranks in Ray actors that form one DeepSpeed (gloo) data-parallel
group. Two ranks on one machine meet through a file store, so the group opens no port beyond
gloo's own on 127.0.0.1; updates split over them move the weights as one trainer given the
whole batches does (the loss is normalised by the global token count, and each rank's share
is cut into micro-batches differently from the single trainer's)."""

import os
import random

import pytest
import torch

from policy.learner import LearnerConfig, OptimizerConfig
from policy.loading import load_causal_lm
from policy.schedules import ScheduleConfig
from rl.algorithms import PolicyLossConfig
from rl.config import LearnerGroupConfig
from rl.policy_update import training_batch
from tests.sockets import exposed_listeners

pytestmark = pytest.mark.slow


def grpo_batch(vocab: int, rows: int = 8, seed: int = 0):
    """Prompts and responses of different lengths (so the ranks' shares hold different token
    counts), old logprobs near the model's, advantages of both signs."""
    rng = random.Random(seed)
    prompts = [[rng.randrange(3, vocab) for _ in range(rng.randint(3, 9))] for _ in range(rows)]
    responses = [[rng.randrange(3, vocab) for _ in range(rng.randint(1, 12))] for _ in range(rows)]
    logprobs = [[-6.5 + rng.uniform(-0.2, 0.2) for _ in r] for r in responses]
    advantages = [rng.uniform(-1.5, 1.5) for _ in range(rows)]
    return training_batch(prompts, responses, logprobs, advantages, pad_id=0)


def comparable_learner_cfg(micro_batch_size: int) -> LearnerConfig:
    """fp32, a constant large learning rate (updates far above float noise) and an Adam eps
    well above float noise in the gradients: Adam's first steps are lr·g/(|g| + eps), which
    would turn noise in a near-zero gradient into a full lr-sized step. Two trainers fed the
    same work then end on weights that agree to ~1e-6."""
    return LearnerConfig(
        dtype="float32",
        micro_batch_size=micro_batch_size,
        optimizer=OptimizerConfig(lr=1e-2, weight_decay=0.0, eps=1e-3),
        schedule=ScheduleConfig(kind="constant", warmup_steps=0),
    )


def test_two_ranks_update_like_one_trainer_on_the_whole_batch(tiny_model_dir):
    import ray

    from rl.trainer import LearnerGroup, PolicyTrainer

    learner_cfg = comparable_learner_cfg(micro_batch_size=3)
    loss_cfg = PolicyLossConfig(clip_low=0.2, clip_high=0.28, kl_coef=0.05)
    vocab = 768
    batches = [grpo_batch(vocab, seed=s) for s in (0, 1)]

    ray.init(num_cpus=2, address="local", include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        group = LearnerGroup(str(tiny_model_dir), learner_cfg, loss_cfg, LearnerGroupConfig(num_processes=2, cpus_per_process=1))
        pids = ray.get([actor.__ray_call__.remote(lambda actor: os.getpid()) for actor in group.actors])
        group_metrics = [group.update(batch, num_minibatches=1) for batch in batches]
        group_weights = group.state_dict()
        exposed = exposed_listeners(pids)
        group.shutdown()
    finally:
        ray.shutdown()

    single = PolicyTrainer(str(tiny_model_dir), learner_cfg, loss_cfg)
    single_metrics = [single.update(batch, num_minibatches=1) for batch in batches]
    single_weights = single.state_dict()

    assert exposed == []  # no TCP rendezvous store listening on every interface
    initial = load_causal_lm(tiny_model_dir).state_dict()
    assert max((single_weights[k] - initial[k]).abs().max() for k in initial) > 1e-3  # the updates moved it
    diff = max((group_weights[k] - single_weights[k]).abs().max() for k in single_weights)
    assert diff < 1e-5, diff
    for g, s in zip(group_metrics, single_metrics):
        assert g["loss"] == pytest.approx(s["loss"], rel=1e-5, abs=1e-7)
        assert g["kl"] == pytest.approx(s["kl"], rel=1e-4, abs=1e-8)
