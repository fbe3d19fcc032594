"""Best-of-N: sample N responses per problem, extract and group their answers with the
verifier, score them with the reward model, and choose one answer per method
(`rl.selection`: majority vote, RM top-1, RM-weighted vote).

Used by `launch/best_of_n.py` (inference, gold answers optional) and by the evaluation
(`rl.evaluation`, which adds pass@k / maj@k / rm@k). Neither vLLM nor the reward model is
imported here at module level: the sampler is any callable from problems to N texts each,
and the scorer anything with `score(problems, responses) -> [float]`.

Sampling with a seed per problem: unseeded, `RolloutEngine.generate` draws every request from
the engine's one random stream, so a problem's samples would depend on which problems were
sampled before it in the same engine. `seeded_sampler` gives each problem its own seed,
derived from (rollout seed, problem id), so its samples do not depend on chunking, order or
an interrupted and resumed run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mathdata.problems import Problem
from mathdata.prompts import PromptConfig
from mathrl.config import require
from mathrl.device import DeviceName, DTypeName
from mathrl.seeding import problem_seeds
from rl.selection import Group, VoteWeight, at_k, choose, group_answer_lists, vote_weights

Sampler = Callable[[Sequence[Problem]], Sequence[Sequence[str]]]  # N response texts per problem


@dataclass(frozen=True)
class ScorerConfig:
    """How the reward model runs (its weights come from the stage's `reward_model_path`)."""

    batch_size: int = 32
    dtype: DTypeName = "float32"
    device: DeviceName = "auto"

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")


def load_scorer(model_path: str, cfg: ScorerConfig, prompt: PromptConfig):
    """The reward model as a scorer; imported here so that runs without one never load it."""
    from rewards.reward_model import RewardScorer

    return RewardScorer(model_path, device=cfg.device, batch_size=cfg.batch_size, dtype=cfg.dtype, prompt=prompt)


def seeded_sampler(engine, n: int, temperature: float, seed: int) -> Sampler:
    """N samples per problem from a `RolloutEngine`, each problem with its own seed (see the
    module docstring)."""

    def sample(problems: Sequence[Problem]) -> list[list[str]]:
        texts = engine.generate(problems, n=n, temperature=temperature, seeds=problem_seeds(seed, problems)).texts
        return [texts[i * n : (i + 1) * n] for i in range(len(problems))]

    return sample


@dataclass
class Candidates:
    """The N sampled responses of one problem, graded, grouped by answer and scored."""

    responses: list[str]  # [N]
    answers: list[str | None]  # [N] extracted final answers (None: none found)
    groups: list[Group]  # [N] answer group ids, see rl.selection
    status: list[str]  # [N] the verifier's status ("ok", "timeout", "error")
    correct: list[bool] | None = None  # [N] against the gold answer; None when there is none
    scores: list[float] | None = None  # [N] reward-model scores; None without an RM
    weight: VoteWeight = "sigmoid"
    chosen: dict[str, int] = field(init=False)  # method -> index of the chosen sample (all N)

    def __post_init__(self) -> None:
        self.chosen = choose(self.groups, self.scores, weight=self.weight)

    def at_k(self, ks: Sequence[int] | None = None) -> dict[str, float]:
        if self.correct is None:
            raise ValueError("pass@k and maj@k need gold answers")
        return at_k(self.groups, self.correct, self.scores, ks, self.weight)

    def record(self) -> dict[str, Any]:
        """JSON-ready: every candidate, the answer groups with their votes, and the choices."""
        candidates = []
        for i, (response, answer, group, status) in enumerate(zip(self.responses, self.answers, self.groups, self.status)):
            row: dict[str, Any] = {"response": response, "answer": answer, "group": group}
            if self.scores is not None:
                row["score"] = self.scores[i]
            if self.correct is not None:
                row["correct"] = self.correct[i]
            if status != "ok":
                row["status"] = status
            candidates.append(row)
        groups: dict[int, dict[str, Any]] = {}
        weights = vote_weights(self.scores, self.weight) if self.scores is not None else None
        for i, g in enumerate(self.groups):
            if g is not None:
                entry = groups.setdefault(g, {"answer": self.answers[i], "votes": 0})
                entry["votes"] += 1
                if weights is not None:  # what the RM-weighted vote summed
                    entry["rm_vote_weight"] = entry.get("rm_vote_weight", 0.0) + weights[i]
        chosen = {}
        for method, i in self.chosen.items():
            chosen[method] = {"index": i, "answer": self.answers[i]}
            if self.correct is not None:
                chosen[method]["correct"] = self.correct[i]
        return {
            "chosen": chosen,
            "answer_groups": [groups[g] for g in sorted(groups)],
            "no_answer": sum(g is None for g in self.groups),
            "candidates": candidates,
        }


def sample_candidates(
    problems: Sequence[Problem],
    responses: Sequence[Sequence[str]],
    verifier,  # a rewards.verifier.BatchVerifier (check, check_answers)
    scorer=None,  # anything with .score(problems, responses) -> [float]; None: no RM
    weight: VoteWeight = "sigmoid",
) -> list[Candidates]:
    """Grade, group and score the N responses of each problem (all problems in one batch).

    A problem with an empty gold answer (unlabelled inference input) gets `correct=None`;
    its responses still go through the verifier, which extracts their answers."""
    if len(responses) != len(problems):
        raise ValueError(f"sampler returned responses for {len(responses)} of {len(problems)} problems")
    counts = [len(rs) for rs in responses]
    if any(c < 1 for c in counts):
        raise ValueError(f"every problem needs at least one response, got counts {counts}")
    flat = [r for rs in responses for r in rs]
    owners = [p for p, rs in zip(problems, responses) for _ in rs]
    verdicts = verifier.check(flat, [p.answer for p in owners])
    fallback = None if _extracts_answers(verifier) else _default_extract()
    answers = [v.extracted if fallback is None else fallback(r) for v, r in zip(verdicts, flat)]
    scores = None
    if scorer is not None:
        scores = [float(s) for s in scorer.score([p.problem for p in owners], flat)]
        if len(scores) != len(flat):
            raise ValueError(f"scorer returned {len(scores)} scores for {len(flat)} responses")

    per_problem_answers = _split(answers, counts)
    groups = group_answer_lists(per_problem_answers, lambda preds, reps: [v.correct for v in verifier.check_answers(preds, reps)])
    per_status = _split([v.status for v in verdicts], counts)
    per_correct = _split([v.correct for v in verdicts], counts)
    per_scores = _split(scores, counts) if scores is not None else [None] * len(problems)
    return [
        Candidates(
            responses=list(rs),
            answers=a,
            groups=g,
            status=st,
            correct=c if p.answer.strip() else None,
            scores=s,
            weight=weight,
        )
        for p, rs, a, g, st, c, s in zip(problems, responses, per_problem_answers, groups, per_status, per_correct, per_scores)
    ]


def _split(values: list, counts: list[int]) -> list[list]:
    out, start = [], 0
    for c in counts:
        out.append(values[start : start + c])
        start += c
    return out


def _extracts_answers(verifier) -> bool:
    """Whether the verifier's verdicts carry the extracted answer (an `AnswerVerifier`); a
    plain custom verifier reports none, and the built-in extractor stands in for voting."""
    cfg = getattr(verifier, "cfg", None)
    if cfg is None:  # a test double: trust its verdicts
        return True
    from rewards.registry import AnswerVerifier, resolve_verifier

    return isinstance(resolve_verifier(cfg.verifier), AnswerVerifier)


def _default_extract():
    from rewards.extract import extract_answer

    return extract_answer


def problem_record(problem: Problem, candidates: Candidates) -> dict[str, Any]:
    """The best-of-N output line of one problem."""
    record: dict[str, Any] = {"id": problem.id, "problem": problem.problem}
    if problem.answer.strip():
        record["gold"] = problem.answer
    return record | {"n": len(candidates.responses)} | candidates.record()


def summarize_choices(records) -> dict[str, Any]:
    """Over best-of-N records (streamed): how often the methods agree, how many candidates had
    no answer, and, over the problems with a gold answer, each method's accuracy next to the
    first sample's and pass@N (the share with at least one correct candidate)."""
    count = labelled = agree = compared = 0
    no_answer = candidates = 0
    n_values: set[int] = set()
    correct: dict[str, float] = {}
    for record in records:
        count += 1
        n_values.add(record["n"])
        chosen = record["chosen"]
        if len(chosen) > 1:
            compared += 1
            agree += len({record["candidates"][c["index"]]["group"] for c in chosen.values()}) == 1
        no_answer += record["no_answer"]
        candidates += len(record["candidates"])
        if "gold" in record:
            labelled += 1
            for method, choice in chosen.items():
                correct[method] = correct.get(method, 0.0) + choice["correct"]
            correct["first_sample"] = correct.get("first_sample", 0.0) + record["candidates"][0]["correct"]
            correct["pass@n"] = correct.get("pass@n", 0.0) + any(c["correct"] for c in record["candidates"])
    summary: dict[str, Any] = {
        "num_problems": count,
        "n": sorted(n_values)[0] if len(n_values) == 1 else sorted(n_values),
        "no_answer_rate": no_answer / candidates if candidates else 0.0,  # candidates without an extractable answer
    }
    if compared:  # with a reward model: how often all methods chose the same answer group
        summary["methods_agree"] = agree / compared
    if labelled:
        summary["labelled_problems"] = labelled
        summary["accuracy"] = {name: value / labelled for name, value in correct.items()}
    return summary
