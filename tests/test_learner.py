"""The DeepSpeed learner on CPU (real DeepSpeed, gloo): the invariances every stage relies on."""

import pytest
import torch

from mathrl import device as device_module
from policy.learner import Learner, LearnerConfig, OptimizerConfig, latest_checkpoint
from policy.loading import load_causal_lm, load_tokenizer
from policy.losses import NextTokenLoss, selected_logprobs
from policy.schedules import ScheduleConfig


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir):
    return tiny_model_dir


@pytest.fixture(scope="module")
def batch(model_dir):
    """8 rows of different lengths (padding) and partial loss masks: token-mean must weigh
    rows by their target tokens, which a per-micro-batch mean would get wrong."""
    tokenizer = load_tokenizer(model_dir)
    texts = [f"Compute {a} + {b}. {a} + {b} = {a + b}. The answer is \\boxed{{{a + b}}}." * (1 + i % 3) for i, (a, b) in enumerate(zip(range(11, 91, 10), range(7, 800, 97)))]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    loss_mask = enc["attention_mask"].clone()
    loss_mask[:, :5] = 0  # as if a prompt were masked out
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "loss_mask": loss_mask}


def test_selected_logprobs_equal_a_full_log_softmax_in_value_and_gradient():
    torch.manual_seed(0)
    logits = (torch.randn(3, 7, 50, dtype=torch.float64) * 20).requires_grad_()  # large logits: stability matters
    tokens = torch.randint(0, 50, (3, 7))
    ours = selected_logprobs(logits, tokens)
    full = torch.log_softmax(logits, dim=-1).gather(-1, tokens[..., None])[..., 0]
    torch.testing.assert_close(ours, full, rtol=0, atol=1e-12)
    weights = torch.randn(3, 7, dtype=torch.float64)
    (ours_grad,) = torch.autograd.grad((ours * weights).sum(), logits)
    (full_grad,) = torch.autograd.grad((full * weights).sum(), logits)
    torch.testing.assert_close(ours_grad, full_grad, rtol=0, atol=1e-12)
    assert bool((ours <= 0).all())


def make_learner(model_dir, **overrides) -> Learner:
    settings = dict(
        dtype="float32",
        micro_batch_size=8,
        optimizer=OptimizerConfig(lr=2e-3, weight_decay=0.1),
        schedule=ScheduleConfig(kind="wsd", warmup_steps=2, total_steps=8, decay_fraction=0.25),
    )
    settings.update(overrides)
    return Learner(load_causal_lm(model_dir), LearnerConfig(**settings), tokenizer=load_tokenizer(model_dir))


def run_steps(learner, batch, steps):
    return [learner.train_batch(batch, NextTokenLoss()) for _ in range(steps)]


def weights(learner):
    return {k: v.clone() for k, v in learner.full_state_dict().items()}


def test_loss_goes_down(model_dir, batch):
    learner = make_learner(model_dir, schedule=ScheduleConfig(kind="constant"))
    losses = [m["loss"] for m in run_steps(learner, batch, 12)]
    learner.close()
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(later < earlier for earlier, later in zip(losses[:4], losses[1:5]))


def test_bf16_trains(model_dir, batch):
    # half the batch, few steps: on a CPU without bf16 in hardware a bf16 step is ~23x an fp32 one (bench/learner_dtype.py)
    half = {k: v[:4] for k, v in batch.items()}
    learner = make_learner(
        model_dir, dtype="bfloat16", optimizer=OptimizerConfig(lr=2e-3), schedule=ScheduleConfig(kind="constant")
    )
    losses = [m["loss"] for m in run_steps(learner, half, 6)]
    learner.close()
    assert next(learner.module.parameters()).dtype == torch.bfloat16
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("fast_bf16, trained_in", [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_dtype_trains_in_bf16_only_where_the_hardware_has_it(model_dir, monkeypatch, capsys, fast_bf16, trained_in):
    monkeypatch.setattr(device_module, "has_fast_bf16", lambda device: fast_bf16)
    learner = make_learner(model_dir, dtype="auto")
    learner.close()
    name = str(trained_in).removeprefix("torch.")
    assert learner.cfg.dtype == name  # resolved: nothing downstream sees auto
    assert f"learner dtype: {name} (auto" in capsys.readouterr().out  # every stage's log says which
    assert {p.dtype for p in learner.module.parameters()} == {trained_in}


@pytest.mark.parametrize("zero_stage", [0, 2])
def test_bf16_first_update_is_adams_first_step(model_dir, batch, zero_stage):
    """Adam's first step moves every weight that has a gradient by lr (m̂/√v̂ = ±1), whatever
    the gradient's scale, and weight decay 0 leaves the rest. DeepSpeed's bf16 optimizer
    without ZeRO steps once on zero gradients when it is built; left alone, that made the
    first update ~0.73 lr and trained ZeRO-0 differently from ZeRO-2."""
    lr = 1e-2
    learner = make_learner(
        model_dir, dtype="bfloat16", zero_stage=zero_stage, optimizer=OptimizerConfig(lr=lr, weight_decay=0.0),
        schedule=ScheduleConfig(kind="constant"),
    )
    before = weights(learner)
    run_steps(learner, batch, 1)
    after = weights(learner)
    learner.close()
    # Matrices only, and weights under 0.05 in size: there a bf16 ulp is under lr/50, so
    # rounding the updated weight back to bf16 blurs the step by at most a few percent.
    moved = torch.cat([
        ((after[k].float() - before[k].float()) / lr).abs()[before[k].float().abs() < 0.05]
        for k in before if before[k].ndim == 2
    ])
    moved = moved[moved > 0]
    assert moved.numel() > 10_000
    assert float(moved.median()) == pytest.approx(1.0, abs=0.03)


def test_zero_stages_follow_the_same_trajectory(model_dir, batch):
    trajectories = {}
    for stage in (0, 2, 3):
        learner = make_learner(model_dir, zero_stage=stage, micro_batch_size=4)
        trajectories[stage] = [m["loss"] for m in run_steps(learner, batch, 5)]
        learner.close()
    for stage in (2, 3):
        assert trajectories[stage] == pytest.approx(trajectories[0], rel=1e-4), trajectories


@pytest.mark.parametrize("zero_stage", [0, 2])
def test_micro_batching_gives_the_same_update(model_dir, batch, zero_stage):
    """8x1 and 2x4 (micro-batch x accumulation) must take the same optimizer step."""
    results = {}
    for micro in (8, 2):
        learner = make_learner(model_dir, micro_batch_size=micro, zero_stage=zero_stage)
        metrics = run_steps(learner, batch, 2)
        results[micro] = (metrics, weights(learner))
        learner.close()
    (m8, w8), (m2, w2) = results[8], results[2]
    assert [m["loss"] for m in m2] == pytest.approx([m["loss"] for m in m8], rel=1e-5)
    assert m2[0]["grad_norm"] == pytest.approx(m8[0]["grad_norm"], rel=1e-4)
    for name in w8:
        torch.testing.assert_close(w2[name], w8[name], rtol=1e-4, atol=1e-5)


def test_resume_equals_uninterrupted(model_dir, batch, tmp_path):
    straight = make_learner(model_dir)
    expected = [m["loss"] for m in run_steps(straight, batch, 5)]
    expected_lr = straight.scheduler.get_last_lr()[0]
    expected_weights = weights(straight)
    straight.close()

    first = make_learner(model_dir)
    run_steps(first, batch, 2)
    first.save_checkpoint(tmp_path / "ckpt", client_state={"data_position": 17})
    first.close()

    resumed = make_learner(model_dir)  # fresh weights: everything must come from the checkpoint
    path = latest_checkpoint(tmp_path / "ckpt")
    assert path is not None and path.name == "step_00000002"
    assert resumed.load_checkpoint(path) == {"data_position": 17}
    assert resumed.step == 2
    losses = [m["loss"] for m in run_steps(resumed, batch, 3)]
    assert losses == pytest.approx(expected[2:], rel=1e-6)
    assert resumed.scheduler.get_last_lr()[0] == pytest.approx(expected_lr)
    for name, value in weights(resumed).items():
        torch.testing.assert_close(value, expected_weights[name], rtol=1e-6, atol=1e-7)
    resumed.close()


def test_partial_checkpoint_is_never_picked(tmp_path):
    root = tmp_path / "ckpt"
    (root / "step_00000004").mkdir(parents=True)
    (root / ".step_00000009.partial").mkdir()  # a crash while writing step 9
    assert latest_checkpoint(root).name == "step_00000004"
    assert latest_checkpoint(tmp_path / "none") is None


@pytest.mark.parametrize("zero_stage", [0, 3])
def test_export_hf_reloads_with_identical_logits(model_dir, batch, tmp_path, zero_stage):
    learner = make_learner(model_dir, zero_stage=zero_stage)
    run_steps(learner, batch, 2)
    out = learner.export_hf(tmp_path / "export")
    reloaded = load_causal_lm(out).eval()
    assert load_tokenizer(out).get_vocab() == load_tokenizer(model_dir).get_vocab()
    learner.engine.eval()
    state = weights(learner)
    learner.close()
    original = load_causal_lm(model_dir)
    original.load_state_dict(state)
    original.eval()
    with torch.no_grad():
        expected = original(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        got = reloaded(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.equal(got, expected)
    # and the export is really the trained model, not the initial one
    assert not torch.equal(load_causal_lm(model_dir).model.embed_tokens.weight, reloaded.model.embed_tokens.weight)


class PoisonedLoss(NextTokenLoss):
    """NextTokenLoss, made non-finite on every row."""

    def __call__(self, model, batch):
        loss_sum, metrics = super().__call__(model, batch)
        return loss_sum * float("nan"), metrics


@pytest.mark.parametrize("zero_stage", [0, 2])
def test_non_finite_loss_leaves_weights_optimizer_and_schedule_untouched(model_dir, batch, zero_stage):
    """A NaN loss takes no optimizer step, and leaves no gradient behind: the run after it
    follows the trajectory of a run that never saw it."""
    clean = make_learner(model_dir, zero_stage=zero_stage, micro_batch_size=4)
    expected = [m["loss"] for m in run_steps(clean, batch, 2)]
    expected_weights = weights(clean)
    clean.close()

    learner = make_learner(model_dir, zero_stage=zero_stage, micro_batch_size=4)
    before = weights(learner)
    poisoned = learner.train_batch(batch, PoisonedLoss())
    assert poisoned["skipped_nonfinite"] == 1.0 and learner.step == 0
    after = weights(learner)
    assert all(torch.equal(before[k], after[k]) for k in before)
    losses = [m["loss"] for m in run_steps(learner, batch, 2)]
    assert losses == pytest.approx(expected, rel=1e-5)
    for name, tensor in weights(learner).items():
        torch.testing.assert_close(tensor, expected_weights[name], rtol=1e-4, atol=1e-6)
    learner.close()


def test_each_rank_takes_the_gpu_its_launcher_names(monkeypatch):
    """torchrun and the deepspeed launcher show every GPU to every rank and name each rank's
    by LOCAL_RANK. No GPU here: `torch.cuda` is replaced by a 2-GPU stand-in that records which
    device was made current (bench/cuda_learner_check.py runs the learner on a real one)."""
    from policy.learner import local_device

    current = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert local_device(torch.device("cuda")) == torch.device("cuda", 1)
    assert current == [1]
    assert local_device(torch.device("cuda", 0)) == torch.device("cuda", 0)  # named explicitly: kept
    assert local_device(torch.device("cpu")) == torch.device("cpu")
    assert current == [1]
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(RuntimeError, match="LOCAL_RANK=2 but this process sees 2 CUDA"):
        local_device(torch.device("cuda"))
