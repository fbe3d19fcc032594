"""Run a verifier over many (response, gold) pairs with a hard time limit per check.

`BatchVerifier.check(responses, golds) -> list[Verdict]` is what the reward stage calls.
Checks run in a pool of worker processes started with the "spawn" method (fork is unsafe
in the threaded processes Ray and vLLM create; signal.alarm only works on the main thread
and cannot interrupt C code). A check that overruns its deadline gets its worker killed
and replaced; the verifier itself never needs to cooperate. Workers resolve the verifier
spec themselves (see `rewards.registry`), so custom verifiers need no pickling; like any
spawned process they re-import the main script, which must keep its work under
`if __name__ == "__main__":`.

Rules (a verdict is never an exception and never a hang):

- timeout: the check ran past `timeout_s` from the moment a worker picked it up (queueing
  time does not count) -> score 0, status "timeout".
- error -> score 0, status "error", `Verdict.error` says why, when the verifier raised;
  or returned anything but a bool or a finite real in [0, 1] (None, a string, NaN, inf,
  1.5, a numpy or sympy boolean all count as errors, so a broken custom verifier shows up
  in the metrics instead of silently scoring 0); or its worker died (segfault, os._exit,
  the OOM killer); or it hit the worker's address-space limit (`memory_limit_mb`, via
  RLIMIT_AS), after which the worker retires and is replaced, since caches may still hold
  the memory. Failures are logged with the exception type and message: the first few of
  each batch in full, the rest as one summary line per batch.
- `correct` is `score >= 0.5`; bool verifiers give scores of exactly 0 or 1.
- If workers keep failing to *start* (the spec does not import in a fresh process, the
  memory limit is too low), `check` raises RuntimeError instead of restarting forever.

Where extraction runs: in the workers, under the same time limit, because the extractor
is model-facing parsing code like the comparison and must not be able to stall the
caller. For an `AnswerVerifier` each distinct response is extracted first; then each
distinct (extracted answer, gold) pair is compared once. A response with no extractable
answer scores 0 (status "ok", `extracted=None`) without a comparison. The extra round
trip costs tens of microseconds per response, nothing next to a sympy comparison.

Cache: an LRU of scores keyed by (extracted answer, gold) for `AnswerVerifier`s and by
(response, gold) for plain verifiers (stored as 16-byte digests so long golds and
responses do not pin memory); the verifier spec is fixed per instance. It assumes, as
the registry does, that verifiers are pure. Only "ok" results are cached: a timeout
depends on machine load and on `timeout_s`, and caching it would make a slow moment a
permanent false negative; errors are often worker deaths caused by the environment.
Within one batch, duplicates of a pair that is already being checked wait for that one
check (timeouts and errors included), so 8 identical pathological answers cost one
timeout, not eight.

`check` may be called from any thread (calls are serialized). This module imports neither
ray, vllm nor deepspeed, so the class can be wrapped with `ray.remote` where the job is wired.
"""

from __future__ import annotations

import hashlib
import logging
import math
import multiprocessing
import multiprocessing.connection
import numbers
import os
import signal
import threading
import time
import weakref
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Literal

from mathrl.config import require
from rewards.registry import AnswerVerifier, load_registering_module, registering_module, resolve_verifier

logger = logging.getLogger(__name__)

Status = Literal["ok", "timeout", "error"]
CORRECT_THRESHOLD = 0.5
METRIC_NAMES = ("items", "checks", "extractions", "cache_hits", "no_answer", "timeouts", "errors", "worker_restarts")

# A worker that has not said "ready" this long after starting is treated as failed.
_STARTUP_TIMEOUT_S = 120.0
# This many workers failing to start in a row (bad memory limit, spec not importable in a
# fresh process) is a configuration error: raise instead of restarting forever.
_MAX_STARTUP_FAILURES = 3
# Errors logged in full per batch; the rest are summarized in one line.
_LOGGED_ERRORS_PER_BATCH = 3
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class VerifierConfig:
    verifier: str = "math"  # a spec for rewards.registry.resolve_verifier
    num_workers: int = 2
    timeout_s: float = 5.0  # per check, from the moment a worker starts it
    cache_size: int = 100_000  # LRU entries; 0 disables the cache
    memory_limit_mb: int | None = 2048  # address-space limit per worker; None: unlimited

    def __post_init__(self) -> None:
        require(isinstance(self.verifier, str) and bool(self.verifier.strip()), "verifier",
                f"must name a verifier (e.g. 'math' or 'my_pkg.checks:strict'), got {self.verifier!r}")
        require(self.num_workers >= 1, "num_workers", f"must be >= 1, got {self.num_workers}")
        require(self.timeout_s > 0 and math.isfinite(self.timeout_s), "timeout_s",
                f"must be a positive number of seconds, got {self.timeout_s}")
        require(self.cache_size >= 0, "cache_size", f"must be >= 0 (0 disables the cache), got {self.cache_size}")
        require(self.memory_limit_mb is None or self.memory_limit_mb >= 256, "memory_limit_mb",
                f"must be >= 256 (a worker needs that much to import sympy) or null for no limit, got {self.memory_limit_mb}")


@dataclass(frozen=True)
class Verdict:
    correct: bool
    score: float  # in [0, 1]; 0 for timeouts and errors
    extracted: str | None  # the final answer the verifier judged (None: none found, or a plain verifier)
    status: Status = "ok"
    error: str | None = None  # why, when status is not "ok"


# --- the parent side -------------------------------------------------------------------


@dataclass
class _Job:
    kind: Literal["extract", "compare", "verify"]
    args: tuple[str, str]
    done: Callable[[Status, Any, str | None], None]  # (status, value, error)


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection
    started: float
    ready: bool = False
    job: _Job | None = None
    job_started: float = 0.0


@dataclass
class _Batch:
    """Per-item results of one `check` call, filled in as jobs finish."""

    n: int
    scores: list[float | None] = field(init=False)
    extracted: list[str | None] = field(init=False)
    status: list[Status] = field(init=False)
    errors: list[str | None] = field(init=False)

    def __post_init__(self) -> None:
        self.scores = [None] * self.n
        self.extracted = [None] * self.n
        self.status = ["ok"] * self.n
        self.errors = [None] * self.n

    def settle(self, indices: Sequence[int], status: Status, score: float, error: str | None) -> None:
        for i in indices:
            self.scores[i], self.status[i], self.errors[i] = score, status, error

    def verdicts(self) -> list[Verdict]:
        return [
            Verdict(correct=s >= CORRECT_THRESHOLD, score=s, extracted=x, status=st, error=e)
            for s, x, st, e in zip(self.scores, self.extracted, self.status, self.errors)  # type: ignore[arg-type]
        ]


class BatchVerifier:
    """Checks batches of responses against gold answers in a pool of worker processes.

    >>> with BatchVerifier(VerifierConfig(verifier="math", timeout_s=5)) as verifier:
    ...     verdicts = verifier.check(["... so the answer is \\\\boxed{4}."], ["4"])
    """

    def __init__(self, cfg: VerifierConfig) -> None:
        self.cfg = cfg
        # Resolve here too, so a bad spec fails now with the registry's message, and so we
        # know whether the verifier can be split into extract + compare.
        self._is_answer_verifier = isinstance(resolve_verifier(cfg.verifier), AnswerVerifier)
        self._worker_args = (cfg.verifier, registering_module(cfg.verifier), cfg.memory_limit_mb)
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        # All keys up front: metrics() may copy the dict while another thread is in check().
        self._counters: dict[str, int] = dict.fromkeys(METRIC_NAMES, 0)
        self._startup_failures = 0
        self._lock = threading.Lock()
        # Kill the workers when this object is collected without close() (they would exit on
        # their own once the pipe closes, but not while stuck in a long check).
        self._finalizer = weakref.finalize(self, _stop_workers, self._workers)
        self._start_workers()  # they import while the caller prepares the first batch

    # -- public API --

    def check(self, responses: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        """One verdict per (full model response, gold) pair, in order."""
        return self._check(responses, golds, extracted=False)

    def check_answers(self, answers: Sequence[str], golds: Sequence[str]) -> list[Verdict]:
        """Like `check`, for answers that are already extracted: an `AnswerVerifier` compares
        them directly; a plain verifier receives the answer as its response."""
        return self._check(answers, golds, extracted=True)

    def metrics(self) -> dict[str, int]:
        """Cumulative counters since construction (diff two calls for per-step values).

        items: verdicts returned; checks / extractions: verifier calls run in workers;
        cache_hits: items that needed no check of their own (LRU hit, or a duplicate of a pair
        checked in the same batch); no_answer: responses with no extractable answer;
        timeouts / errors: items with that status; worker_restarts: workers replaced after a
        timeout or a death.
        """
        return dict(self._counters)

    def close(self) -> None:
        """Stop the workers. A later `check` starts a fresh pool."""
        with self._lock:
            _stop_workers(self._workers)

    def __enter__(self) -> BatchVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scheduling --

    def _check(self, texts: Sequence[str], golds: Sequence[str], extracted: bool) -> list[Verdict]:
        if len(texts) != len(golds):
            raise ValueError(f"got {len(texts)} responses but {len(golds)} gold answers")
        for name, values in (("response", texts), ("gold", golds)):
            bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
            if bad is not None:
                raise TypeError(f"{name} {bad} is a {type(values[bad]).__name__}, expected str")
        with self._lock:
            batch = _Batch(len(texts))
            queue: deque[_Job] = deque()
            waiting: dict[bytes, list[int]] = {}  # cache key -> items waiting for that check

            def check_pair(i: int, kind: Literal["compare", "verify"], text: str) -> None:
                key = _cache_key(kind, text, golds[i])
                if key in waiting:
                    waiting[key].append(i)
                    self._counters["cache_hits"] += 1
                    return
                cached = self._cache_get(key)
                if cached is not None:
                    batch.settle([i], "ok", cached, None)
                    self._counters["cache_hits"] += 1
                    return
                waiting[key] = [i]
                self._counters["checks"] += 1

                def done(status: Status, score: Any, error: str | None) -> None:
                    if status == "ok":
                        self._cache_put(key, score)
                    batch.settle(waiting.pop(key), status, score if status == "ok" else 0.0, error)

                queue.append(_Job(kind, (text, golds[i]), done))

            def extract(response: str, indices: list[int]) -> None:
                self._counters["extractions"] += 1

                def done(status: Status, answer: Any, error: str | None) -> None:
                    if status != "ok":
                        batch.settle(indices, status, 0.0, error)
                        return
                    for i in indices:
                        batch.extracted[i] = answer
                        if answer is None:
                            self._counters["no_answer"] += 1
                            batch.settle([i], "ok", 0.0, None)
                        else:
                            check_pair(i, "compare", answer)

                queue.append(_Job("extract", (response, ""), done))

            if not self._is_answer_verifier:
                for i, text in enumerate(texts):
                    check_pair(i, "verify", text)
            elif extracted:
                for i, text in enumerate(texts):
                    batch.extracted[i] = text
                    check_pair(i, "compare", text)
            else:
                by_response: dict[str, list[int]] = {}
                for i, text in enumerate(texts):
                    by_response.setdefault(text, []).append(i)
                for text, indices in by_response.items():
                    extract(text, indices)

            try:
                self._run(queue)
            except BaseException:
                # Interrupted (or the pool cannot start): workers may hold jobs of this batch.
                _stop_workers(self._workers)
                raise
            verdicts = batch.verdicts()
            self._counters["items"] += len(verdicts)
            self._counters["timeouts"] += sum(v.status == "timeout" for v in verdicts)
            self._counters["errors"] += sum(v.status == "error" for v in verdicts)
        _log_failures(verdicts, self.cfg)
        return verdicts

    def _run(self, queue: deque[_Job]) -> None:
        """Run `queue` (which job callbacks may extend) to completion on the workers."""
        while queue or any(w.job is not None for w in self._workers):
            self._start_workers()
            for worker in self._workers:
                if not queue:
                    break
                if worker.ready and worker.job is None:
                    job = queue.popleft()
                    try:
                        worker.conn.send((job.kind, *job.args))
                    except (OSError, ValueError):  # it died while idle: the job never started
                        queue.appendleft(job)
                        continue  # the dead sentinel is handled below
                    worker.job, worker.job_started = job, time.monotonic()
            waitables = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
            ready = set(multiprocessing.connection.wait(waitables, timeout=self._seconds_to_next_deadline()))
            for worker in list(self._workers):
                if worker not in self._workers:  # replaced earlier in this pass
                    continue
                if worker.conn in ready and self._receive(worker):
                    continue
                if worker.conn in ready or worker.process.sentinel in ready:  # EOF or exit
                    self._on_death(worker)
            now = time.monotonic()
            for worker in list(self._workers):
                if worker.job is not None and now - worker.job_started > self.cfg.timeout_s:
                    job, worker.job = worker.job, None
                    self._replace(worker)
                    job.done("timeout", None, f"no verdict after {self.cfg.timeout_s:g} s; the worker was killed")
                elif not worker.ready and now - worker.started > _STARTUP_TIMEOUT_S:
                    self._replace(worker)
                    self._startup_failed(f"a worker did not start within {_STARTUP_TIMEOUT_S:g} s")

    def _receive(self, worker: _Worker) -> bool:
        """Handle one message from `worker`; False if the pipe is closed (it died)."""
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return False
        tag, payload = message
        if tag == "ready":
            worker.ready = True
            self._startup_failures = 0
        elif tag == "init_error":
            self._replace(worker)
            self._startup_failed(payload)
        elif worker.job is not None:
            job, worker.job = worker.job, None
            if tag == "retire":  # an error after which the worker exits
                self._replace(worker)
                tag = "error"
            job.done(tag, payload if tag == "ok" else None, None if tag == "ok" else payload)
        return True

    def _on_death(self, worker: _Worker) -> None:
        if worker.conn.poll():  # a last message sent just before exiting (or EOF)
            self._receive(worker)
        if worker not in self._workers:
            return
        worker.process.join(timeout=1.0)
        how = _exit_description(worker.process.exitcode)
        job, worker.job = worker.job, None
        was_ready = worker.ready
        self._replace(worker)
        if job is not None:
            job.done("error", None, f"the verifier's worker process died ({how})")
        elif not was_ready:
            self._startup_failed(f"a worker exited during start-up ({how})")

    def _seconds_to_next_deadline(self) -> float | None:
        deadlines = [w.job_started + self.cfg.timeout_s for w in self._workers if w.job is not None]
        deadlines += [w.started + _STARTUP_TIMEOUT_S for w in self._workers if not w.ready]
        # A hair past the deadline, so the overrun check after waking sees it expired.
        return max(0.0, min(deadlines) - time.monotonic() + 0.001) if deadlines else None

    def _startup_failed(self, reason: str) -> None:
        self._startup_failures += 1
        if self._startup_failures >= _MAX_STARTUP_FAILURES:
            self._startup_failures = 0
            _stop_workers(self._workers)
            raise RuntimeError(
                f"verifier workers for {self.cfg.verifier!r} keep failing to start: {reason}. "
                "Check that the spec imports in a fresh Python process, that memory_limit_mb is large enough, "
                "and that the main script starts its work under `if __name__ == \"__main__\":` (workers are spawned "
                "and re-import it)."
            )

    # -- the pool --

    def _start_workers(self) -> None:
        while len(self._workers) < self.cfg.num_workers:
            parent_conn, child_conn = self._context.Pipe(duplex=True)
            process = self._context.Process(
                target=_worker_main, args=(child_conn, *self._worker_args), name="mathrl-verifier", daemon=True
            )
            process.start()
            child_conn.close()  # the parent keeps only its end, so a dead worker reads as EOF
            self._workers.append(_Worker(process, parent_conn, started=time.monotonic()))

    def _replace(self, worker: _Worker) -> None:
        _stop_worker(worker)
        self._workers.remove(worker)
        self._counters["worker_restarts"] += 1
        self._start_workers()

    # -- cache --

    def _cache_get(self, key: bytes) -> float | None:
        score = self._cache.get(key)
        if score is not None:
            self._cache.move_to_end(key)
        return score

    def _cache_put(self, key: bytes, score: float) -> None:
        if self.cfg.cache_size == 0:
            return
        self._cache[key] = score
        self._cache.move_to_end(key)
        while len(self._cache) > self.cfg.cache_size:
            self._cache.popitem(last=False)


def _cache_key(kind: str, text: str, gold: str) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in (kind, text, gold):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))  # length-prefixed: ("ab","c") != ("a","bc")
        digest.update(data)
    return digest.digest()


def _stop_worker(worker: _Worker) -> None:
    if worker.process.is_alive():
        worker.process.kill()
    worker.process.join(timeout=5.0)
    worker.conn.close()


def _stop_workers(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.job is None and worker.process.is_alive():
            try:
                worker.conn.send(None)  # ask idle workers to exit cleanly
            except (OSError, ValueError):
                pass
    deadline = time.monotonic() + 1.0
    for worker in workers:
        worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
        _stop_worker(worker)
    workers.clear()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "still exiting"
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def _log_failures(verdicts: list[Verdict], cfg: VerifierConfig) -> None:
    failed = [v for v in verdicts if v.status != "ok"]
    if not failed:
        return
    for verdict in failed[:_LOGGED_ERRORS_PER_BATCH]:
        logger.warning("verifier %r: %s (%s)", cfg.verifier, verdict.status, verdict.error)
    if len(failed) > _LOGGED_ERRORS_PER_BATCH:
        kinds = Counter((v.error or v.status).split(":", 1)[0] for v in failed)
        summary = ", ".join(f"{kind} x{count}" for kind, count in kinds.most_common(5))
        logger.warning("verifier %r: %d of %d checks failed in this batch (%s)", cfg.verifier, len(failed), len(verdicts), summary)


# --- the worker side -------------------------------------------------------------------


def _worker_main(conn: Connection, spec: str, preload: str | None, memory_limit_mb: int | None) -> None:
    """Resolve the verifier, say "ready", then answer (kind, a, b) requests until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent()
    try:
        if memory_limit_mb is not None:
            _limit_memory(memory_limit_mb)
        if preload and preload not in ("__main__", "__mp_main__"):
            load_registering_module(preload)  # re-runs its @register_verifier in this process
        verifier = resolve_verifier(spec)
    except BaseException as err:
        conn.send(("init_error", _describe(err)))
        return
    conn.send(("ready", None))
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        kind, a, b = request
        try:
            if kind == "extract":
                reply = ("ok", _as_answer(verifier.extract(a)))  # type: ignore[union-attr]
            elif kind == "compare":
                reply = ("ok", _as_score(verifier.compare(a, b)))  # type: ignore[union-attr]
            else:
                reply = ("ok", _as_score(verifier(a, b)))
        except MemoryError:
            limit = f"the worker's limit of {memory_limit_mb} MB" if memory_limit_mb else "the machine's memory"
            # Retire rather than go on: caches (sympy's included) may still hold most of the
            # memory. The parent replaces a worker that retires.
            conn.send(("retire", f"MemoryError: the check needed more than {limit}"))
            return
        except BaseException as err:  # SystemExit from verifier code included
            reply = ("error", _describe(err))
        conn.send(reply)


def _as_score(value: object) -> float:
    """A verifier's return value as a score, or ValueError for anything that is not one."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        score = float(value)
        if math.isfinite(score) and 0.0 <= score <= 1.0:
            return score
        raise ValueError(f"verifier returned {score!r}; a score must be a finite number in [0, 1]")
    raise ValueError(f"verifier returned a {type(value).__name__} ({_short(repr(value))}); expected a bool or a number in [0, 1]")


def _as_answer(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"extractor returned a {type(value).__name__}; expected a str or None")


def _limit_memory(megabytes: int) -> None:
    import resource  # Unix only; imported here so the parent module imports everywhere

    limit = megabytes * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _exit_with_parent() -> None:
    """Exit if the parent goes away, even while a check is stuck in a loop.

    (PR_SET_PDEATHSIG would fire when the parent *thread* that started us exits, and
    `check` may run on short-lived threads, so poll the parent pid instead.)"""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _describe(err: BaseException) -> str:
    return _short(f"{type(err).__name__}: {err}")


def _short(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."
