"""A process pool with a hard wall-clock limit per task, for the verifier benchmark.

Standard library only, because two interpreters import it: `bench/verifier.py` (our
virtualenv, to time our checker called directly) and `bench/verifier_mathverify_runner.py`
(math-verify's own virtualenv). Both sides get the same treatment: each task runs in a
worker process, its latency is measured inside the worker around the call alone, and a task
that overruns `timeout_s` has its worker killed and replaced (a "timeout" result whose
latency is the time it was allowed). Worker start-up and warm-up are not timed; a
replacement's start-up is, because a timeout really costs that.

    results, wall_s = run_tasks("module:function", tasks, workers=2, timeout_s=5.0)

`module:function` is imported in each worker; it takes one task (a dict) and returns a
JSON-able dict, which is merged into that task's result.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.connection
import time
from typing import Any

_STARTUP_TIMEOUT_S = 180.0


def run_tasks(
    target: str,
    tasks: list[dict[str, Any]],
    workers: int,
    timeout_s: float,
    warmup: list[dict[str, Any]] | None = None,
    memory_limit_mb: int | None = None,
) -> tuple[list[dict[str, Any]], float]:
    """Run `target` on every task; return (results in task order, wall seconds)."""
    ctx = multiprocessing.get_context("spawn")
    args = (target, warmup or [], memory_limit_mb)
    pool = [_start(ctx, args) for _ in range(min(workers, max(1, len(tasks))))]
    for w in pool:
        _wait_ready(w)
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    pending = list(range(len(tasks) - 1, -1, -1))  # popped from the end: task order
    busy: dict[int, tuple[int, float]] = {}  # worker slot -> (task index, start time)
    t0 = time.perf_counter()
    try:
        while pending or busy:
            for slot, w in enumerate(pool):
                if slot not in busy and pending:
                    i = pending.pop()
                    w["conn"].send((i, tasks[i]))
                    busy[slot] = (i, time.perf_counter())
            now = time.perf_counter()
            wait_s = max(0.0, min(start + timeout_s for _, start in busy.values()) - now)
            ready = multiprocessing.connection.wait([pool[s]["conn"] for s in busy], timeout=wait_s)
            now = time.perf_counter()
            for slot in list(busy):
                w = pool[slot]
                i, start = busy[slot]
                if w["conn"] in ready:
                    try:
                        _, status, latency, out = w["conn"].recv()
                    except (EOFError, OSError):
                        results[i] = {"status": "error", "latency_s": now - start, "error": "worker died"}
                        pool[slot] = _restart(ctx, args, w)
                    else:
                        results[i] = {"status": status, "latency_s": latency, **out}
                    del busy[slot]
                elif now - start >= timeout_s:
                    results[i] = {"status": "timeout", "latency_s": timeout_s}
                    pool[slot] = _restart(ctx, args, w)
                    del busy[slot]
        wall = time.perf_counter() - t0
    finally:
        for w in pool:
            _stop(w)
    return results, wall  # type: ignore[return-value]


def _start(ctx: Any, args: tuple) -> dict[str, Any]:
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_worker_main, args=(child, *args), daemon=True)
    proc.start()
    child.close()
    return {"proc": proc, "conn": parent}


def _wait_ready(w: dict[str, Any]) -> None:
    if not w["conn"].poll(_STARTUP_TIMEOUT_S):
        raise RuntimeError(f"a benchmark worker did not start within {_STARTUP_TIMEOUT_S:.0f} s")
    msg = w["conn"].recv()
    if msg != "ready":
        raise RuntimeError(f"a benchmark worker failed to start: {msg}")


def _restart(ctx: Any, args: tuple, w: dict[str, Any]) -> dict[str, Any]:
    _stop(w)
    fresh = _start(ctx, args)
    _wait_ready(fresh)
    return fresh


def _stop(w: dict[str, Any]) -> None:
    if w["proc"].is_alive():
        w["proc"].kill()
    w["proc"].join(5)
    w["conn"].close()


def _worker_main(conn: Any, target: str, warmup: list[dict[str, Any]], memory_limit_mb: int | None) -> None:
    try:
        if memory_limit_mb is not None:
            import resource

            limit = memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        module, _, name = target.partition(":")
        fn = getattr(importlib.import_module(module), name)
        for task in warmup:  # first calls pay lazy imports and parser construction
            fn(task)
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(f"{type(err).__name__}: {err}")
        return
    conn.send("ready")
    while True:
        try:
            i, task = conn.recv()
        except EOFError:
            return
        start = time.perf_counter()
        try:
            out = fn(task)
            status = "ok"
        except Exception as err:  # noqa: BLE001 - a failed check is a result, not a crash
            out, status = {"error": f"{type(err).__name__}: {str(err)[:300]}"}, "error"
        conn.send((i, status, time.perf_counter() - start, out))
