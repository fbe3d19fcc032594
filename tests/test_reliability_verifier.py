"""Answer checking under hostile input, fast enough for every run.

(a) Adversarial model outputs from the generator of the 10,000-output drill
    (`bench/drills/adversarial_inputs.py`, run by `bench/drills/adversarial_verifier.py`)
    through the real pool: every check ends in a bounded time with a well-formed verdict,
    garbage scores 0 and no payload runs.
(b) A GRPO step whose custom verifier raises, hangs or returns garbage for some samples
    (`tests.verifier_fixtures:sabotaged_boxed`, in the real pool): those samples count as
    wrong, `verifier/failures` counts them, and training goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from bench.drills.adversarial_inputs import CATEGORIES, WRAPS, adversarial_responses
from rewards.verifier import BatchVerifier, VerifierConfig
from rl.controller import GRPOController
from tests.grpo_fakes import FakeLearner, FakeRollout, grpo_cfg, problems_with_correct_counts

TIMEOUT_S = 2.0
# Killing and replacing a worker, and moving megabytes through a pipe, on a busy machine.
SLACK_S = 3.0


def test_adversarial_outputs_get_bounded_verdicts_and_run_nothing(tmp_path: Path) -> None:
    cases = list(adversarial_responses(20 * len(CATEGORIES), seed=1, marker_dir=tmp_path))
    assert {c.category for c in cases} == set(CATEGORIES) and {c.wrap for c in cases} == set(WRAPS)
    with BatchVerifier(VerifierConfig(timeout_s=TIMEOUT_S)) as verifier:
        # Started, and past the first (slow) LaTeX parse, in both workers before timing.
        verifier.check(["\\boxed{\\frac{1}{2}}", "\\boxed{2\\sqrt{2}}"], ["0.5", "\\sqrt{8}"])
        for case in cases:
            start = time.perf_counter()
            [verdict] = verifier.check([case.response], [case.gold])
            seconds = time.perf_counter() - start
            where = (case.index, case.category, case.wrap, case.response[:60], verdict)
            assert seconds < TIMEOUT_S + SLACK_S, where
            assert verdict.status in ("ok", "timeout", "error"), where
            assert 0.0 <= verdict.score <= 1.0 and (verdict.status == "ok" or verdict.score == 0.0), where
            if case.expect is False:
                assert verdict.score == 0.0, where
            elif case.expect is True:  # a slow moment on a busy machine may time it out, nothing else
                assert verdict.correct or verdict.status == "timeout", where
        assert verifier.check(["So it is \\boxed{\\frac{1}{2}}."], ["0.5"])[0].correct  # still grading
    assert list(tmp_path.iterdir()) == []  # no payload created its marker file


class SabotagedRollout(FakeRollout):
    """FakeRollout whose samples carry the tags `sabotaged_boxed` acts on: sample 0 of every
    group "RAISE", sample 2 "GARBAGE", and sample 1 of each draw's first problem "HANG"."""

    def generate(self, problems, **kwargs):
        batch = super().generate(problems, **kwargs)
        n = len(batch) // len(problems)
        texts = [text + sabotage_tag(*divmod(row, n)) for row, text in enumerate(batch.texts)]
        return replace(batch, texts=texts)


def sabotage_tag(problem: int, sample: int) -> str:
    if (problem, sample) == (0, 1):
        return " HANG"
    return {0: " RAISE", 2: " GARBAGE"}.get(sample, "")


def test_a_broken_custom_verifier_scores_zero_and_training_goes_on(tmp_path: Path) -> None:
    # Every problem has samples 0-4 of 8 right; sabotage takes samples 0 and 2 (and sample 1 of
    # a draw's first problem) from them, leaving 3 right (2) per group: all four groups pass
    # the 2..5 filter, and one draw of 4 problems makes a step of 2 groups.
    steps, timeout_s = 3, 1.0
    cfg = VerifierConfig(verifier="tests.verifier_fixtures:sabotaged_boxed", num_workers=2, timeout_s=timeout_s)
    rollout, learner = SabotagedRollout(), FakeLearner()
    with BatchVerifier(cfg) as verifier:
        controller = GRPOController(grpo_cfg(tmp_path), problems_with_correct_counts([5] * 12), rollout, verifier, learner)
        metrics = [controller.train_step() for _ in range(steps)]
        pool = verifier.metrics()

    per_draw = {"raised": 4, "garbage": 4, "hung": 1}
    for m in metrics:
        assert m["groups/draws"] == 1 and m["step/skipped"] == 0
        assert m["verifier/failures"] == sum(per_draw.values())
        assert m["rollout/accuracy"] == pytest.approx((3 * 3 + 2) / 32)  # the sabotaged samples scored 0
        assert timeout_s <= m["time/verify"] < timeout_s + SLACK_S  # the hang cost one timeout, no more
    assert controller.step == steps and len(learner.batches) == steps and rollout.loaded == steps
    assert (pool["timeouts"], pool["errors"], pool["worker_restarts"]) == (
        steps * per_draw["hung"], steps * (per_draw["raised"] + per_draw["garbage"]), steps * per_draw["hung"])

    # Sabotaged samples are wrong samples to the update: the lowest advantage of their group.
    for batch in learner.batches:
        advantages = batch["advantages"].view(-1, 8)  # [G, n]
        lowest = advantages.min(dim=1).values
        assert (lowest < 0).all()
        assert (advantages[:, [0, 2]] == lowest[:, None]).all()
    # And what the run logged as correct is the verifier's verdict on untagged samples only.
    for record in map(json.loads, (tmp_path / "run" / "samples.jsonl").open()):
        assert record["correct"] == [text == f"\\boxed{{{record['gold']}}}" for text in record["responses"]]
