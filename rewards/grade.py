"""Grade a JSONL file of model outputs against gold answers.

    python -m rewards.grade INPUT.jsonl [-o OUTPUT.jsonl] [--verifier SPEC] [--timeout S] [--workers N]

Each input line is a JSON object with a string `gold` and exactly one of
- `response`: a full model output; the verifier extracts the final answer from it;
- `answer`: an answer that is already extracted; it is compared as it is (an
  `AnswerVerifier` skips extraction; a plain verifier receives it as the response).

Each output line is the input object plus `"correct": true|false` and `"extracted"` (the
answer that was judged, null if none was found), and `"status"`/`"error"` when the check
timed out or failed (which also makes it incorrect). Output goes to stdout without -o, in
input order; a summary goes to stderr.

Malformed lines (invalid JSON or UTF-8, not an object, missing or non-string `gold`,
neither or both of `response`/`answer`, a non-string one) are reported on stderr with
their line numbers and left out of the output; the rest are still graded, so one bad line
does not waste a long run. Blank lines are ignored.

Exit status: 0 when every line was graded, 1 when some lines were malformed, 2 for a
usage error (bad option, unknown verifier, unreadable input). Timeouts and verifier errors
are verdicts, not failures of the command: they are counted in the summary.

Lines are graded in chunks of --chunk-size, so memory does not grow with the file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from rewards.verifier import BatchVerifier, Verdict, VerifierConfig


@dataclass
class Summary:
    graded: int = 0
    correct: int = 0
    timeouts: int = 0
    errors: int = 0
    malformed: list[int] = field(default_factory=list)  # line numbers

    def add(self, verdict: Verdict) -> None:
        self.graded += 1
        self.correct += verdict.correct
        self.timeouts += verdict.status == "timeout"
        self.errors += verdict.status == "error"

    def line(self) -> str:
        accuracy = f"{self.correct / self.graded:.2%}" if self.graded else "n/a"
        text = (
            f"graded {self.graded} lines: {self.correct} correct (accuracy {accuracy}), "
            f"{self.timeouts} timeouts, {self.errors} errors"
        )
        if self.malformed:
            shown = ", ".join(map(str, self.malformed[:20])) + (", ..." if len(self.malformed) > 20 else "")
            text += f"; {len(self.malformed)} malformed lines skipped (lines {shown})"
        return text


@dataclass(frozen=True)
class _Row:
    record: dict[str, Any]
    text: str  # the response or the answer
    is_answer: bool


def parse_line(raw: bytes) -> _Row:
    """One input line as a gradable row; ValueError says what is wrong with it."""
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"not valid UTF-8 ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "gold" not in record:
        raise ValueError(f"missing 'gold'; the object has keys {sorted(record)}")
    present = [key for key in ("response", "answer") if key in record]
    if len(present) != 1:
        raise ValueError(
            "needs exactly one of 'response' (a full model output) or 'answer' (an extracted answer), "
            + ("found both" if present else "found neither")
        )
    for key in ("gold", present[0]):
        if not isinstance(record[key], str):
            raise ValueError(f"'{key}' must be a string, got {type(record[key]).__name__} {json.dumps(record[key])[:40]}")
    return _Row(record, record[present[0]], is_answer=present[0] == "answer")


def grade_rows(verifier: BatchVerifier, rows: list[_Row]) -> list[Verdict]:
    """Verdicts for `rows` in order; responses and answers go through their own calls."""
    verdicts: list[Verdict | None] = [None] * len(rows)
    for is_answer in (False, True):
        indices = [i for i, row in enumerate(rows) if row.is_answer == is_answer]
        if not indices:
            continue
        texts = [rows[i].text for i in indices]
        golds = [rows[i].record["gold"] for i in indices]
        check = verifier.check_answers if is_answer else verifier.check
        for i, verdict in zip(indices, check(texts, golds)):
            verdicts[i] = verdict
    return verdicts  # type: ignore[return-value]


def output_record(row: _Row, verdict: Verdict) -> dict[str, Any]:
    record = dict(row.record, correct=verdict.correct, extracted=verdict.extracted)
    if verdict.status != "ok":
        record.update(status=verdict.status, error=verdict.error)
    return record


def grade_stream(lines: Iterator[bytes], out: IO[str], verifier: BatchVerifier, chunk_size: int, source: str) -> Summary:
    summary = Summary()
    chunk: list[_Row] = []

    def flush() -> None:
        for row, verdict in zip(chunk, grade_rows(verifier, chunk)):
            summary.add(verdict)
            out.write(json.dumps(output_record(row, verdict), ensure_ascii=False) + "\n")
        out.flush()
        chunk.clear()

    for line_no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            chunk.append(parse_line(raw))
        except ValueError as err:
            summary.malformed.append(line_no)
            print(f"{source}:{line_no}: malformed line skipped: {err}", file=sys.stderr)
            continue
        if len(chunk) >= chunk_size:
            flush()
    if chunk:
        flush()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rewards.grade",
        description="Grade model outputs in a JSONL file (one object with 'gold' and 'response' or 'answer' per line).",
        epilog="Exit status: 0 all lines graded, 1 some lines malformed (reported, skipped), 2 usage error.",
    )
    defaults = VerifierConfig()
    parser.add_argument("input", help="JSONL file to grade, or - for stdin")
    parser.add_argument("-o", "--output", help="write graded lines here (default: stdout)")
    parser.add_argument("--verifier", default=defaults.verifier,
                        help="built-in name (math, multiple_choice, integer), module.path:function, or /path/file.py:function")
    parser.add_argument("--timeout", type=float, default=defaults.timeout_s, help="seconds per check (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8),
                        help="worker processes (default: the CPU count, at most 8)")
    parser.add_argument("--memory-limit-mb", type=int, default=defaults.memory_limit_mb,
                        help="address-space limit per worker, 0 for none (default: %(default)s)")
    parser.add_argument("--chunk-size", type=int, default=1024, help="lines graded per batch (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    try:
        if args.chunk_size < 1:
            raise ValueError(f"--chunk-size must be >= 1, got {args.chunk_size}")
        cfg = VerifierConfig(verifier=args.verifier, num_workers=args.workers, timeout_s=args.timeout,
                             memory_limit_mb=args.memory_limit_mb or None)
        source = sys.stdin.buffer if args.input == "-" else open(args.input, "rb")  # noqa: SIM115
        out = sys.stdout if args.output is None else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
        verifier = BatchVerifier(cfg)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        with source, verifier:
            summary = grade_stream(iter(source), out, verifier, args.chunk_size, args.input)
    except RuntimeError as err:  # the worker pool cannot start (see BatchVerifier)
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if out is not sys.stdout:
            out.close()
    print(summary.line(), file=sys.stderr)
    return 1 if summary.malformed else 0


if __name__ == "__main__":
    sys.exit(main())
