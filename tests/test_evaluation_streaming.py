"""Evaluation with N samples, streamed to disk: pass@k / maj@k / rm@k summaries, breakdowns,
and resume. An interrupted run (killed mid-chunk, its last line half written) started
again must produce the same records and the same summary as a run that was never stopped.

The fast tests use deterministic fake samplers keyed by problem id (what per-problem seeds
give real sampling) and `FakeScorer`, a stand-in with the `score(problems, responses)`
method of `rewards.reward_model.RewardScorer`. The slow test does the same through real
vLLM with the tiny model.
"""

import json
import zlib

import pytest

from mathdata.io import append_jsonl, iter_jsonl, repair_jsonl_tail
from mathdata.problems import Problem
from mathrl.config import ConfigError
from rewards.verifier import BatchVerifier, VerifierConfig
from rl.compare_evals import compare
from rl.eval_report import curves, markdown, plot_accuracy_vs_n
from rl.evaluation import evaluate_to_file, pending, start_or_resume, summarize_file

N = 4
FORMS = {"1": ["1", "1.0", "\\frac{2}{2}"], "2": ["2", "\\frac{4}{2}", "2.0"], "3": ["3", "\\frac{6}{2}", "3.00"]}


class FakeScorer:
    """Stands in for `RewardScorer`: same `score` method; scores are a hash of the text."""

    def score(self, problems, responses):
        return [(zlib.crc32(r.encode()) % 1000) / 250 - 2 for r in responses]


def make_problems(count: int = 10) -> list[Problem]:
    subjects = ["Algebra", "Geometry"]
    return [
        Problem(id=f"p{i}", problem=f"Problem {i}", answer=str(i % 3 + 1), meta={"subject": subjects[i % 2], "level": i % 3 + 1})
        for i in range(count)
    ]


def greedy(problems):
    return [f"so \\boxed{{{p.answer if int(p.id[1:]) % 2 == 0 else 0}}}" for p in problems]


class Sampler:
    """N responses per problem, a function of the problem id only; counts what it was asked."""

    def __init__(self, fail_after: int | None = None):
        self.seen: list[str] = []
        self.fail_after = fail_after

    def __call__(self, problems):
        if self.fail_after is not None and len(self.seen) + len(problems) > self.fail_after:
            raise KeyboardInterrupt  # killed in the middle of a chunk
        self.seen += [p.id for p in problems]
        out = []
        for p in problems:
            h = zlib.crc32(p.id.encode())
            forms = FORMS[p.answer]
            # Correct answers written in different forms, a wrong one, a missing one.
            wrong = ["no answer", "\\boxed{7}"]
            out.append([f"\\boxed{{{forms[(h + j) % 3]}}}" if (h >> j) % 3 else wrong[j % 2] for j in range(N)])
        return out


@pytest.fixture(scope="module")
def verifier():
    with BatchVerifier(VerifierConfig(num_workers=1, timeout_s=10)) as v:
        yield v


def run(problems, verifier, path, sampler, chunk_size=3):
    return evaluate_to_file(problems, greedy, verifier, path, sample=sampler, samples=N, scorer=FakeScorer(),
                            chunk_size=chunk_size, progress=False)


def test_resume_after_interruption_gives_the_same_results(verifier, tmp_path):
    problems = make_problems(10)
    full = run(problems, verifier, tmp_path / "full.jsonl", Sampler())

    path = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(problems, verifier, path, Sampler(fail_after=7))  # chunks of 3: dies in the third
    assert len(list(iter_jsonl(path))) == 6
    with path.open("a") as f:
        f.write('{"id": "p6", "gold": "1", "extr')  # the write the kill cut short
    second = Sampler()
    resumed = run(problems, verifier, path, second)

    assert second.seen == [f"p{i}" for i in range(6, 10)]  # only what was missing
    assert list(iter_jsonl(path)) == list(iter_jsonl(tmp_path / "full.jsonl"))
    assert resumed.summary() == full.summary()
    assert run(problems, verifier, path, Sampler(fail_after=0)).summary() == full.summary()  # nothing left to do


def test_summary_pass_maj_rm_and_breakdowns(verifier, tmp_path):
    problems = make_problems(10)
    report = run(problems, verifier, tmp_path / "r.jsonl", Sampler())
    records = list(iter_jsonl(tmp_path / "r.jsonl"))
    summary = report.summary()
    assert summary["accuracy"] == 0.5 and summary["samples"] == N and summary["num_problems"] == 10
    assert set(summary["at_k"]) == {f"{m}@{k}" for m in ("pass", "maj", "rm", "rm_vote") for k in (1, 2, 4)}
    for name, value in summary["at_k"].items():
        assert value == pytest.approx(sum(r["at_k"][name] for r in records) / 10)
    # Each problem's first sample is its maj@1 and rm@1 pick.
    assert summary["at_k"]["maj@1"] == summary["at_k"]["rm@1"] == pytest.approx(sum(r["candidates"][0]["correct"] for r in records) / 10)
    assert summary["at_k"]["pass@4"] >= summary["at_k"]["maj@4"]
    # what rl.compare_evals --metric reads from these records
    for name in ("pass@1", "maj@4"):
        assert compare(records, records, metric=name).accuracy_a == pytest.approx(summary["at_k"][name])
    algebra = summary["breakdown"]["subject"]["Algebra"]
    assert algebra["problems"] == 5 and algebra["greedy"] == 1.0  # even ids are algebra, answered right greedily
    assert set(algebra) == {"problems", "greedy", "pass@4", "maj@4", "rm@4", "rm_vote@4"}
    assert summary["by"] == {"level": {"1": 2 / 4, "2": 1 / 3, "3": 2 / 3}, "subject": {"Algebra": 1.0, "Geometry": 0.0}}
    # Equivalent forms of the right answer were counted as one answer.
    assert any(len({c["answer"] for c in r["candidates"] if c["correct"]}) > 1 for r in records)
    assert all(len({c["group"] for c in r["candidates"] if c["correct"]}) <= 1 for r in records)
    assert all(len(r["answer_groups"]) <= 2 for r in records)


def test_greedy_only_records_keep_their_shape(verifier, tmp_path):
    report = evaluate_to_file(make_problems(3), greedy, verifier, tmp_path / "g.jsonl", progress=False)
    (record, *_) = iter_jsonl(tmp_path / "g.jsonl")
    assert set(record) == {"id", "gold", "extracted", "correct", "status", "response", "subject", "level"}
    assert "at_k" not in report.summary() and report.samples == 1


def test_a_file_from_another_run_is_not_continued(verifier, tmp_path):
    path = tmp_path / "responses.jsonl"
    assert start_or_resume(path, {"model_path": "a", "samples": N}, resume=True) is False
    run(make_problems(2), verifier, path, Sampler())
    with pytest.raises(ConfigError, match="model_path: 'a' -> 'b'"):
        start_or_resume(path, {"model_path": "b", "samples": N}, resume=True)
    with pytest.raises(ConfigError, match="with 4 samples per problem and this run asks for 8"):
        pending(make_problems(2), path, samples=8)
    assert start_or_resume(path, {"model_path": "a", "samples": N}, resume=True) is True
    assert start_or_resume(path, {"model_path": "b", "samples": N}, resume=False) is False and not path.exists()


def test_repair_jsonl_tail(tmp_path):
    path = tmp_path / "x.jsonl"
    append_jsonl([{"id": 1}, {"id": 2}], path)
    complete = path.read_bytes()
    assert repair_jsonl_tail(path) == 0 and path.read_bytes() == complete
    for torn in (b'{"id": 3', b'{"id": 3}', b'{"id": \n'):  # cut mid-object; before its newline; garbage
        path.write_bytes(complete + torn)
        assert repair_jsonl_tail(path) == len(torn) and path.read_bytes() == complete
    path.write_bytes(b'{"id": 1')
    assert repair_jsonl_tail(path) == 8 and path.read_bytes() == b""
    long = {"id": 4, "text": "y" * 200_000}  # longer than one backward-read block
    append_jsonl([long], path)
    path.write_bytes(path.read_bytes()[:-10])
    assert repair_jsonl_tail(path) > 200_000 and path.read_bytes() == b""
    assert repair_jsonl_tail(tmp_path / "missing.jsonl") == 0


def test_markdown_and_plot(verifier, tmp_path):
    problems = make_problems(6)
    run(problems, verifier, tmp_path / "r.jsonl", Sampler())
    summary = summarize_file(tmp_path / "r.jsonl", problems).summary()
    assert list(curves(summary)) == ["pass", "maj", "rm", "rm_vote"] and list(curves(summary)["maj"]) == [1, 2, 4]
    text = markdown(summary)
    assert "| k | pass@k | maj@k |" in text and "## By subject" in text and "| Algebra | 3 |" in text
    png = plot_accuracy_vs_n(summary, tmp_path / "plot.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_accuracy_vs_n({"accuracy": 0.5, "num_problems": 1}, tmp_path / "none.png") is None


# --- the entry point ------------------------------------------------------------------------


class FakeEngine:
    built = 0

    def __init__(self, model_path, cfg, prompt):
        FakeEngine.built += 1

    def generate(self, problems):
        class Batch:
            texts = greedy(problems)

        return Batch()

    def close(self):
        pass


def test_launch_evaluate_with_samples_and_rm(tmp_path, monkeypatch):
    import launch.evaluate as cli

    data = tmp_path / "set.jsonl"
    data.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in make_problems(5)))
    monkeypatch.setattr(cli, "RolloutEngine", FakeEngine)
    monkeypatch.setattr(cli, "seeded_sampler", lambda engine, n, temperature, seed: Sampler())
    monkeypatch.setattr(cli, "load_scorer", lambda path, cfg, prompt: FakeScorer())
    out = tmp_path / "eval"
    args = [f"data.path={data}", f"output_dir={out}", f"samples={N}", "reward_model_path=rm", "chunk_size=2", "verifier.num_workers=1"]
    summary = cli.main(args)
    assert summary["num_problems"] == 5 and "rm_vote@4" in summary["at_k"]
    assert json.loads((out / "results.json").read_text()) == summary
    assert "rm@k" in (out / "results.md").read_text() and (out / "accuracy_vs_n.png").exists()
    built = FakeEngine.built
    assert cli.main(args) == summary and FakeEngine.built == built  # all graded: no engine started
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*args, "sample_temperature=0.5"])  # other sampling settings: not continued
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_resume_through_vllm_gives_the_same_results(tiny_model_dir, shared_data, tmp_path):
    """Greedy and seeded samples from the tiny model: a run stopped after its first chunk and
    resumed equals a run that was never stopped (in the same engine, whose random stream has
    moved on in between: the per-problem seeds make that irrelevant)."""
    from mathdata.loading import load_problems
    from rl.best_of_n import seeded_sampler
    from rollout.config import EngineConfig, RolloutConfig
    from rollout.engine import RolloutEngine

    problems = load_problems(shared_data / "math500.jsonl").problems[:4]
    cfg = RolloutConfig(n=1, temperature=0.0, max_tokens=8, engine=EngineConfig(dtype="float32", max_model_len=1024, kv_cache_gb=0.25))
    engine = RolloutEngine(tiny_model_dir, cfg)
    try:
        def evaluate(subset, path):
            return evaluate_to_file(subset, lambda ps: engine.generate(ps).texts, verifier_, path,
                                    sample=seeded_sampler(engine, 3, 1.0, seed=0), samples=3, chunk_size=2, progress=False)

        with BatchVerifier(VerifierConfig(num_workers=1, timeout_s=10)) as verifier_:
            full = evaluate(problems, tmp_path / "full.jsonl")
            evaluate(problems[:2], tmp_path / "resumed.jsonl")  # stopped after the first chunk
            resumed = evaluate(problems, tmp_path / "resumed.jsonl")
    finally:
        engine.close()
    assert list(iter_jsonl(tmp_path / "resumed.jsonl")) == list(iter_jsonl(tmp_path / "full.jsonl"))
    assert resumed.summary() == full.summary() and full.num_problems == 4
    assert set(full.breakdown) == {"level", "subject"}
