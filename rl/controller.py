"""The GRPO controller: one training step as named, timed phases, and the loop around it.

    sample → rollout → verify → filter (2..5 of 8 correct) → [draw more] → reward_model →
    advantages → learner → weight_push → log; eval and checkpoint every so many steps.

The controller only talks to its parts through narrow methods, so it runs the same with the
Ray-wired parts of `launch/grpo.py` and with in-process ones in tests:

    rollout   .generate(problems, n=None, temperature=None, max_tokens=None, seeds=None) -> RolloutBatch
              .load_weights(state_dict)
    verifier  .check(responses, golds) -> [Verdict]
    scorer    .score_tokens(prompt_ids, response_ids) -> [float]   (None: verifier-only reward)
    learner   .update(batch, num_minibatches, epochs) -> metrics; .state_dict(); .save_checkpoint(root,
              client_state, keep); .load_latest(root) -> client_state | None; .export(dir)
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from mathdata.io import write_jsonl
from mathdata.problems import Problem
from mathrl.metrics import MetricsLogger
from rewards.shaping import shaped_reward
from rl.algorithms import group_advantages, keep_groups
from rl.config import GRPOConfig
from rl.evaluation import evaluate
from rl.policy_update import training_batch
from rl.sampler import ProblemSampler


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps produced non-finite rewards or losses."""


@dataclass
class Group:
    """The n samples of one problem that survived the filter."""

    problem: Problem
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    logprobs: list[list[float]]
    texts: list[str]
    correct: list[bool]


@dataclass
class PhaseTimer:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @contextmanager
    def __call__(self, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - start


@dataclass
class Collected:
    """What the draws of one step found."""

    groups: list[Group] = field(default_factory=list)
    problems_drawn: int = 0
    draws: int = 0
    samples: int = 0
    correct: int = 0
    truncated: int = 0
    response_tokens: int = 0
    verifier_failures: int = 0  # timeouts and errors: scored as wrong
    rollout_seconds: float = 0.0
    rollout_retries: int = 0


class GRPOController:
    def __init__(
        self,
        cfg: GRPOConfig,
        problems: list[Problem],
        rollout,
        verifier,
        learner,
        scorer=None,
        eval_problems: list[Problem] | None = None,
    ):
        if cfg.reward.shaping.mode != "verifier-only" and scorer is None:
            raise ValueError("reward shaping 'rm+verifier' needs a reward scorer")
        self.cfg = cfg
        self.rollout = rollout
        self.verifier = verifier
        self.learner = learner
        self.scorer = scorer
        self.sampler = ProblemSampler(problems, seed=cfg.run.seed)
        self.eval_problems = eval_problems or []
        self.run_dir = Path(cfg.run.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.step = 0
        self.bad_steps = 0

    # --- the loop --------------------------------------------------------------------------

    def resume(self) -> bool:
        """Continue from the newest complete checkpoint, if any: learner state, step, the
        sampler's position; the rollout engines get the checkpoint's weights."""
        state = self.learner.load_latest(str(self.run_dir / "checkpoints")) if self.cfg.run.resume else None
        if state is None:
            return False
        self.step = int(state["step"])
        self.sampler.position = int(state["sampler_position"])
        self.rollout.load_weights(self.learner.state_dict())
        print(f"resumed at step {self.step} (problems drawn: {self.sampler.position})")
        return True

    def train(self) -> dict[str, Any]:
        """Run to `run.steps`; returns the last step's metrics and the evaluations."""
        cfg = self.cfg.run
        resumed = self.resume()
        logger = MetricsLogger(self.run_dir)
        evals: dict[int, float] = {}
        if self.eval_problems and not resumed:
            evals[self.step] = self.evaluate(logger)
        bar = tqdm(total=cfg.steps, initial=self.step, desc="grpo", dynamic_ncols=True)
        metrics: dict[str, float] = {}
        try:
            while self.step < cfg.steps:
                metrics = self.train_step()
                bar.update(1)
                bar.set_postfix(
                    reward=f"{metrics.get('reward/mean', float('nan')):.3f}",
                    acc=f"{metrics['rollout/accuracy']:.3f}",
                    kept=f"{metrics['groups/kept']:.0f}/{metrics['groups/drawn']:.0f}",
                )
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    logger.log(self.step, metrics)
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.steps and self.eval_problems:
                    evals[self.step] = self.evaluate(logger)
                if cfg.save_every and self.step % cfg.save_every == 0 and self.step < cfg.steps:
                    self.save_checkpoint()
            bar.close()
            self.save_checkpoint()
            if self.eval_problems:
                evals[self.step] = self.evaluate(logger)
            final = self.learner.export(str(self.run_dir / "final"))
        finally:
            logger.close()
        return {"final": final, "step": self.step, "last": metrics, "eval_accuracy": evals}

    def save_checkpoint(self) -> str:
        state = {"step": self.step, "sampler_position": self.sampler.position}
        return self.learner.save_checkpoint(str(self.run_dir / "checkpoints"), state, self.cfg.run.keep_checkpoints)

    # --- one step --------------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        cfg = self.cfg
        timer = PhaseTimer()
        found = self.collect_groups(timer)
        groups = found.groups[: cfg.batch.groups_per_step]
        metrics = self._rollout_metrics(found, len(groups))
        if len(groups) < cfg.learner_group.num_processes:
            # Nothing (or not enough for every learner rank) to train on: the policy stays as it is.
            metrics["step/skipped"] = 1.0
            self.step += 1
            return self._finish(metrics, timer)

        correct = torch.tensor([g.correct for g in groups], dtype=torch.float32)  # [G, n]
        with timer("reward_model"):
            rm_scores = self._score(groups)
        with timer("advantages"):
            rewards = shaped_reward(correct.flatten(), rm_scores, cfg.reward.shaping).view_as(correct)
            advantages = group_advantages(rewards, normalize_std=cfg.loss.normalize_std)
        if not bool(torch.isfinite(advantages).all()):
            return self._bad_step(metrics, timer, "non-finite rewards or advantages")
        metrics.update({"reward/mean": float(rewards.mean()), "reward/std_in_group": float(rewards.std(dim=-1).mean())})
        if rm_scores is not None:
            metrics["reward/rm_score"] = float(rm_scores.mean())

        with timer("learner"):
            batch = training_batch(
                [ids for g in groups for ids in g.prompt_ids],
                [ids for g in groups for ids in g.response_ids],
                [lps for g in groups for lps in g.logprobs],
                advantages.flatten().tolist(),
                pad_id=0,  # padding sits behind the attention mask and outside the loss mask: any id works
            )
            learner_metrics = self.learner.update(
                batch, min(cfg.batch.updates_per_step, len(groups)), cfg.batch.epochs_per_step
            )
        if not math.isfinite(learner_metrics.get("loss", 0.0)):
            return self._bad_step(metrics, timer, "non-finite loss")
        metrics.update({f"learner/{k}": v for k, v in learner_metrics.items()})
        with timer("weight_push"):
            self.rollout.load_weights(self.learner.state_dict())
        self.bad_steps = 0
        self.step += 1
        self._log_samples(groups)
        return self._finish(metrics, timer)

    def collect_groups(self, timer: PhaseTimer) -> Collected:
        """Draw problems until enough groups pass the filter or the draw budget is spent."""
        cfg = self.cfg
        found = Collected()
        while len(found.groups) < cfg.batch.groups_per_step and found.draws < cfg.batch.max_draws:
            with timer("sample"):
                problems, seeds = self.sampler.draw_with_seeds(cfg.batch.problems_per_draw)
            with timer("rollout"):
                batch = self.rollout.generate(problems, seeds=seeds)
            with timer("verify"):
                verdicts = self.verifier.check(batch.texts, [problems[i].answer for i in batch.prompt_index])
            with timer("filter"):
                n = len(batch) // len(problems)
                correct = torch.tensor([v.correct for v in verdicts]).view(len(problems), n)
                kept = keep_groups(correct, cfg.filter.low, cfg.filter.high)
                for i in kept.nonzero().flatten().tolist():
                    rows = range(i * n, (i + 1) * n)
                    found.groups.append(
                        Group(
                            problem=problems[i],
                            prompt_ids=[batch.prompt_ids[r] for r in rows],
                            response_ids=[batch.response_ids[r] for r in rows],
                            logprobs=[batch.logprobs[r] for r in rows],
                            texts=[batch.texts[r] for r in rows],
                            correct=[bool(correct[i, k]) for k in range(n)],
                        )
                    )
            found.draws += 1
            found.problems_drawn += len(problems)
            found.samples += len(batch)
            found.correct += int(correct.sum())
            found.truncated += sum(reason == "length" for reason in batch.finish_reasons)
            found.response_tokens += sum(batch.response_lengths)
            found.verifier_failures += sum(v.status != "ok" for v in verdicts)
            found.rollout_seconds += batch.metrics.seconds
            found.rollout_retries += batch.metrics.retries
            if batch.metrics.retries:
                print(f"step {self.step + 1}: rollout worker(s) {batch.metrics.restarted_workers} died and were "
                      "restarted with the latest weights; their share of the batch was sampled again")
        return found

    # --- evaluation ------------------------------------------------------------------------

    def evaluate(self, logger: MetricsLogger | None = None) -> float:
        """Greedy accuracy on the held-out problems, through the rollout workers."""
        start = time.perf_counter()
        report = evaluate(
            self.eval_problems,
            lambda ps: self.rollout.generate(ps, n=1, temperature=0.0, max_tokens=self.cfg.eval.max_tokens).texts,
            self.verifier,
        )
        out = self.run_dir / "eval" / f"step_{self.step:06d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"step": self.step, **report.summary()}, indent=2))
        write_jsonl(report.records, out.with_suffix(".jsonl"))  # per problem: `python -m rl.compare_evals` pairs two evals
        metrics = {"eval/accuracy": report.accuracy, "eval/seconds": time.perf_counter() - start}
        for key, table in report.by.items():
            metrics.update({f"eval/{key}/{name}": value for name, value in table.items()})
        if logger is not None:
            logger.log(self.step, metrics)
        print(f"eval at step {self.step}: accuracy {report.accuracy:.3f} on {report.num_problems} problems")
        return report.accuracy

    # --- internals -------------------------------------------------------------------------

    def _score(self, groups: list[Group]) -> torch.Tensor | None:
        if self.cfg.reward.shaping.mode == "verifier-only":
            return None
        scores = self.scorer.score_tokens(
            [ids for g in groups for ids in g.prompt_ids], [ids for g in groups for ids in g.response_ids]
        )
        return torch.tensor(scores, dtype=torch.float32)

    def _rollout_metrics(self, found: Collected, kept: int) -> dict[str, float]:
        samples = max(found.samples, 1)
        return {
            "rollout/accuracy": found.correct / samples,
            "rollout/response_length": found.response_tokens / samples,
            "rollout/truncated_fraction": found.truncated / samples,
            "rollout/tokens_per_s": found.response_tokens / found.rollout_seconds if found.rollout_seconds else 0.0,
            "rollout/retries": float(found.rollout_retries),
            "verifier/failures": float(found.verifier_failures),
            "groups/drawn": float(found.problems_drawn),
            "groups/draws": float(found.draws),
            "groups/kept": float(kept),
            "groups/kept_fraction": len(found.groups) / max(found.problems_drawn, 1),
            "data/epoch": self.sampler.epoch,
        }

    def _bad_step(self, metrics: dict[str, float], timer: PhaseTimer, why: str) -> dict[str, float]:
        """Skip the update (the rollout engines keep the last good weights); stop after
        `max_bad_steps` in a row, leaving the last good checkpoint as it is."""
        self.bad_steps += 1
        print(f"step {self.step + 1}: {why}; update skipped ({self.bad_steps} in a row)")
        if self.bad_steps >= self.cfg.max_bad_steps:
            raise TrainingDiverged(
                f"{self.bad_steps} consecutive steps had {why}; stopping. The last good checkpoint is in "
                f"{self.run_dir / 'checkpoints'}; lower the learning rate or check the reward function, then resume."
            )
        metrics["step/skipped_nonfinite"] = 1.0
        self.step += 1
        return self._finish(metrics, timer)

    def _finish(self, metrics: dict[str, float], timer: PhaseTimer) -> dict[str, float]:
        metrics.setdefault("step/skipped", 0.0)
        total = sum(timer.seconds.values())
        metrics.update({f"time/{phase}": seconds for phase, seconds in timer.seconds.items()})
        metrics["time/step"] = total
        return metrics

    def _log_samples(self, groups: list[Group]) -> None:
        if not self.cfg.log_samples:
            return
        with (self.run_dir / "samples.jsonl").open("a") as f:
            for g in groups[: self.cfg.log_samples]:
                record = {"step": self.step, "problem": g.problem.problem, "gold": g.problem.answer,
                          "responses": g.texts, "correct": g.correct}
                f.write(json.dumps(record) + "\n")
