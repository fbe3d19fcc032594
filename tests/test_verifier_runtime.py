"""BatchVerifier: hard timeouts, crashes, garbage, parallelism, caching, threads.

The misbehaving verifiers live in tests/verifier_fixtures.py. One pool per verifier spec
is shared by the whole module (spawning workers costs ~0.3 s each); every test that
breaks a worker checks that the pool still answers afterwards.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mathrl.config import ConfigError, from_dict
from rewards.math_equivalence import math_verifier
from rewards.verifier import BatchVerifier, Verdict, VerifierConfig

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 1.5
SLACK_S = 1.5  # killing and reaping a worker; the replacement starts in the background


@pytest.fixture(scope="module")
def pool() -> Iterator[BatchVerifier]:
    cfg = VerifierConfig(verifier="tests.verifier_fixtures:misbehave", num_workers=2, timeout_s=TIMEOUT_S, memory_limit_mb=1024)
    with BatchVerifier(cfg) as verifier:
        _assert_healthy(verifier)  # workers started and imported before any timing is taken
        yield verifier


@pytest.fixture(scope="module")
def call_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("calls") / "calls.txt"
    path.touch()
    old = os.environ.get("VERIFIER_CALL_LOG")
    os.environ["VERIFIER_CALL_LOG"] = str(path)  # set before the pools below spawn their workers
    yield path
    if old is None:
        del os.environ["VERIFIER_CALL_LOG"]
    else:
        os.environ["VERIFIER_CALL_LOG"] = old


@pytest.fixture(scope="module")
def answer_pool(call_log: Path) -> Iterator[BatchVerifier]:
    cfg = VerifierConfig(verifier="tests.verifier_fixtures:counted_last_word", num_workers=2, timeout_s=TIMEOUT_S)
    with BatchVerifier(cfg) as verifier:
        yield verifier


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _assert_healthy(verifier: BatchVerifier) -> None:
    verdicts = verifier.check([f"true:{time.monotonic_ns()}", f"false:{time.monotonic_ns()}"], ["", ""])
    assert [(v.status, v.score) for v in verdicts] == [("ok", 1.0), ("ok", 0.0)]


def _timed(fn, *args) -> tuple[list[Verdict], float]:
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


# --- config ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("verifier", ""), ("num_workers", 0), ("timeout_s", 0.0), ("timeout_s", math.inf), ("cache_size", -1), ("memory_limit_mb", 16)],
)
def test_config_rejects_bad_values_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        VerifierConfig(**{field: value})


def test_config_loads_from_yaml_values_with_dotted_errors() -> None:
    cfg = from_dict(VerifierConfig, {"verifier": "integer", "timeout_s": 2, "memory_limit_mb": None})
    assert (cfg.verifier, cfg.timeout_s, cfg.memory_limit_mb) == ("integer", 2.0, None)
    with pytest.raises(ConfigError, match=r"reward\.verifier\.num_workers: must be >= 1, got 0"):
        from_dict(VerifierConfig, {"num_workers": 0}, "reward.verifier")


def test_unknown_verifier_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown verifier 'no_such_verifier'"):
        BatchVerifier(VerifierConfig(verifier="no_such_verifier"))


def test_check_validates_its_arguments(pool: BatchVerifier) -> None:
    with pytest.raises(ValueError, match="2 responses but 1 gold"):
        pool.check(["true", "true"], ["x"])
    with pytest.raises(TypeError, match="response 1 is a NoneType"):
        pool.check(["true", None], ["x", "y"])  # type: ignore[list-item]
    assert pool.check([], []) == []


# --- timeouts, crashes, garbage ---------------------------------------------------------


def test_hanging_check_times_out_and_the_pool_recovers(pool: BatchVerifier) -> None:
    before = pool.metrics()
    verdicts, elapsed = _timed(pool.check, ["hang:a", "true:a"], ["", ""])
    assert [v.status for v in verdicts] == ["timeout", "ok"]
    assert verdicts[0].score == 0.0 and not verdicts[0].correct and "killed" in verdicts[0].error
    assert TIMEOUT_S <= elapsed < TIMEOUT_S + SLACK_S
    after = pool.metrics()
    assert after["timeouts"] - before["timeouts"] == 1
    assert after["worker_restarts"] - before["worker_restarts"] == 1
    _assert_healthy(pool)


def test_identical_hanging_pairs_cost_one_timeout_and_are_not_cached(pool: BatchVerifier) -> None:
    before = pool.metrics()
    verdicts, elapsed = _timed(pool.check, ["hang:same"] * 3, ["g"] * 3)
    assert [v.status for v in verdicts] == ["timeout"] * 3
    assert elapsed < TIMEOUT_S + SLACK_S  # one check, shared by the duplicates
    assert pool.metrics()["checks"] - before["checks"] == 1
    # A later batch checks the pair again: a timeout is not a cached "incorrect".
    verdicts = pool.check(["hang:same"], ["g"])
    assert verdicts[0].status == "timeout"
    assert pool.metrics()["checks"] - before["checks"] == 2
    _assert_healthy(pool)


def test_raising_verifier_scores_zero_and_is_counted(pool: BatchVerifier, caplog: pytest.LogCaptureFixture) -> None:
    before = pool.metrics()["errors"]
    with caplog.at_level(logging.WARNING, logger="rewards.verifier"):
        [verdict] = pool.check(["raise:one"], [""])
    assert (verdict.status, verdict.score, verdict.correct) == ("error", 0.0, False)
    assert verdict.error.startswith("ValueError: invalid literal for int()")
    assert pool.metrics()["errors"] == before + 1
    assert "ValueError" in caplog.text


def test_many_errors_are_logged_as_a_summary(pool: BatchVerifier, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rewards.verifier"):
        verdicts = pool.check([f"raise:{i}" for i in range(40)], [""] * 40)
    assert all(v.status == "error" for v in verdicts)
    records = [r for r in caplog.records if r.name == "rewards.verifier"]
    assert len(records) <= 4
    assert "40 of 40 checks failed" in records[-1].getMessage() and "ValueError x40" in records[-1].getMessage()


@pytest.mark.parametrize("value", ["none", "str", "nan", "inf", "big", "neg", "list"])
def test_garbage_return_values_score_zero_as_errors(pool: BatchVerifier, value: str) -> None:
    [verdict] = pool.check([value], [""])
    assert (verdict.status, verdict.score, verdict.correct) == ("error", 0.0, False)
    assert "verifier returned" in verdict.error


def test_valid_return_values_become_scores(pool: BatchVerifier) -> None:
    verdicts = pool.check(["true", "false", "half", "int1"], [""] * 4)
    assert [(v.status, v.score, v.correct) for v in verdicts] == [
        ("ok", 1.0, True), ("ok", 0.0, False), ("ok", 0.5, True), ("ok", 1.0, True),
    ]


@pytest.mark.parametrize(("command", "how"), [("exit", "exit status 3"), ("segfault", "signal SIGSEGV")])
def test_dying_worker_is_an_error_and_is_replaced(pool: BatchVerifier, command: str, how: str) -> None:
    before = pool.metrics()["worker_restarts"]
    verdicts, elapsed = _timed(pool.check, [command, "true:dying"], ["", ""])
    assert [v.status for v in verdicts] == ["error", "ok"]
    assert "worker process died" in verdicts[0].error and how in verdicts[0].error
    assert elapsed < TIMEOUT_S  # noticed at once, not at the deadline
    assert pool.metrics()["worker_restarts"] == before + 1
    _assert_healthy(pool)


def test_memory_hog_is_stopped_by_the_address_space_limit(pool: BatchVerifier) -> None:
    before = pool.metrics()["worker_restarts"]
    [verdict] = pool.check(["hog"], [""])
    assert verdict.status in ("error", "timeout") and verdict.score == 0.0
    assert verdict.status == "timeout" or "MemoryError" in verdict.error or "died" in verdict.error
    # Whichever way it ended, the worker is replaced: after a MemoryError it retires, since
    # what it allocated may still be held.
    assert pool.metrics()["worker_restarts"] == before + 1
    _assert_healthy(pool)


# --- scheduling -------------------------------------------------------------------------


def test_checks_run_in_parallel_and_deadlines_start_on_the_worker(pool: BatchVerifier) -> None:
    # 6 checks of 0.6 s on 2 workers: ~1.8 s in parallel (3.6 s serially). The last two wait
    # 1.2 s in the queue, so they would overrun the 1.5 s limit if it counted from submission.
    verdicts, elapsed = _timed(pool.check, [f"sleep:{i}:{time.monotonic_ns()}" for i in range(6)], [""] * 6)
    assert [v.status for v in verdicts] == ["ok"] * 6
    assert 1.7 < elapsed < 3.0


def test_check_works_from_another_thread(pool: BatchVerifier) -> None:
    results: list[list[Verdict]] = []
    thread = threading.Thread(target=lambda: results.append(pool.check(["hang:thread", "true:thread"], ["", ""])))
    thread.start()
    thread.join(timeout=TIMEOUT_S + SLACK_S + 5)
    assert not thread.is_alive()
    assert [v.status for v in results[0]] == ["timeout", "ok"]
    _assert_healthy(pool)


def test_close_then_check_starts_a_fresh_pool() -> None:
    verifier = BatchVerifier(VerifierConfig(verifier="tests.verifier_fixtures:exact", num_workers=1))
    with verifier:
        assert verifier.check(["a"], ["a"])[0].correct
    assert verifier._workers == []  # closed
    assert verifier.check(["b"], ["a"]) == [Verdict(correct=False, score=0.0, extracted=None)]
    verifier.close()


def test_registered_name_and_file_path_specs_resolve_in_workers() -> None:
    fixtures = ROOT / "tests" / "verifier_fixtures.py"
    for spec in ("fixture_exact", f"{fixtures}:exact"):
        with BatchVerifier(VerifierConfig(verifier=spec, num_workers=1)) as verifier:
            assert [v.correct for v in verifier.check(["x", "y"], ["x", "x"])] == [True, False]


def test_a_spec_that_only_fails_in_workers_raises_instead_of_restarting_forever(tmp_path: Path) -> None:
    module = tmp_path / "worker_only_failure.py"
    module.write_text(
        "import multiprocessing\n"
        "if multiprocessing.parent_process() is not None:\n"
        "    raise ImportError('missing in workers')\n"
        "def check(response, gold):\n"
        "    return True\n"
    )
    verifier = BatchVerifier(VerifierConfig(verifier=f"{module}:check", num_workers=1))
    with pytest.raises(RuntimeError, match="keep failing to start.*ImportError: missing in workers"):
        verifier.check(["a"], ["a"])
    verifier.close()


# --- answer verifiers and the cache -----------------------------------------------------


def test_extraction_and_cache_avoid_rechecking_the_same_answer(answer_pool: BatchVerifier, call_log: Path) -> None:
    start = len(_calls(call_log))
    responses = ["so it is 7", "I get 7", "answer: 7", "maybe 8", ""]
    verdicts = answer_pool.check(responses, ["7"] * 5)
    assert [(v.correct, v.extracted, v.status) for v in verdicts] == [
        (True, "7", "ok"), (True, "7", "ok"), (True, "7", "ok"), (False, "8", "ok"), (False, None, "ok"),
    ]
    assert sorted(_calls(call_log)[start:]) == ["7", "8"]  # one compare per distinct (answer, gold)
    metrics = answer_pool.metrics()
    assert metrics["no_answer"] >= 1 and metrics["extractions"] >= 5

    hits = metrics["cache_hits"]
    verdicts = answer_pool.check(["finally 7", "finally 8"], ["7", "7"])
    assert [v.correct for v in verdicts] == [True, False]
    assert answer_pool.check_answers(["7"], ["7"])[0] == Verdict(correct=True, score=1.0, extracted="7")
    assert len(_calls(call_log)) == start + 2  # all answered from the cache
    assert answer_pool.metrics()["cache_hits"] == hits + 3
    # Another gold is another key.
    assert not answer_pool.check(["it is 7"], ["8"])[0].correct
    assert len(_calls(call_log)) == start + 3


def test_extraction_timeout_is_a_timeout_verdict(answer_pool: BatchVerifier) -> None:
    verdicts = answer_pool.check(["HANG_EXTRACT 7", "so 7"], ["7", "7"])
    assert [(v.status, v.extracted, v.correct) for v in verdicts] == [("timeout", None, False), ("ok", "7", True)]


def test_plain_verifier_cache_is_keyed_by_response(call_log: Path) -> None:
    start = len(_calls(call_log))
    with BatchVerifier(VerifierConfig(verifier="tests.verifier_fixtures:counted_exact", num_workers=1)) as verifier:
        verdicts = verifier.check(["a", "a", "b", "a"], ["a", "a", "a", "b"])
        assert [v.correct for v in verdicts] == [True, True, False, False]
        assert verifier.check(["a"], ["a"])[0].correct
    assert sorted(_calls(call_log)[start:]) == ["a", "a", "b"]  # (a,a) once, (b,a), (a,b)


def test_math_verifier_in_the_pool_matches_in_process(shared_data: Path) -> None:
    rows = [json.loads(line) for line in (shared_data / "math500.jsonl").open()][:16]
    # 4 samples per problem, GRPO-style: right answers in different words, and wrong ones.
    responses = [f"Sample {i}. So the answer is $\\boxed{{{r['answer'] if i % 2 else i + 1}}}$." for r in rows for i in range(4)]
    golds = [r["answer"] for r in rows for _ in range(4)]
    with BatchVerifier(VerifierConfig(verifier="math", num_workers=2)) as verifier:
        verdicts = verifier.check(responses, golds)
        metrics = verifier.metrics()
    assert [v.status for v in verdicts] == ["ok"] * len(responses)
    assert [v.correct for v in verdicts] == [bool(math_verifier(r, g)) for r, g in zip(responses, golds)]
    assert sum(v.correct for v in verdicts) >= len(rows) * 2 - 1
    assert metrics["cache_hits"] >= len(rows)  # the two right samples of a problem share one check


@pytest.mark.slow
def test_inside_a_ray_actor() -> None:
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        actor = ray.remote(num_cpus=0)(BatchVerifier).remote(
            VerifierConfig(verifier="tests.verifier_fixtures:misbehave", num_workers=2, timeout_s=TIMEOUT_S)
        )
        verdicts = ray.get(actor.check.remote(["hang", "true", "exit"], [""] * 3), timeout=60)
        assert [v.status for v in verdicts] == ["timeout", "ok", "error"]
        assert ray.get(actor.metrics.remote())["worker_restarts"] == 2
    finally:
        ray.shutdown()


def test_modules_import_without_ray_vllm_deepspeed_or_sympy() -> None:
    code = (
        "import sys, rewards.verifier, rewards.registry, rewards.grade\n"
        "heavy = [m for m in ('ray', 'vllm', 'deepspeed', 'torch', 'sympy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_a_name_registered_by_a_file_loaded_by_path_resolves_in_workers(tmp_path: Path) -> None:
    """The registering file was loaded by path (its module name exists only in the parent):
    workers must load the same file, not try to import that name."""
    checks = tmp_path / "path_registered_checks.py"
    checks.write_text(
        "from rewards.registry import register_verifier\n"
        "@register_verifier('path_registered_exact')\n"
        "def exact(response, gold):\n"
        "    return response == gold\n"
    )
    from rewards.registry import resolve_verifier

    resolve_verifier(f"{checks}:exact")  # loads the file by path, registering the name
    with BatchVerifier(VerifierConfig(verifier="path_registered_exact", num_workers=1)) as verifier:
        assert [v.correct for v in verifier.check(["x", "y"], ["x", "x"])] == [True, False]
