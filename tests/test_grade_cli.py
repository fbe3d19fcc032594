"""`python -m rewards.grade` end to end, in a subprocess, plus its line parser in-process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewards.grade import parse_line

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "verifier_fixtures.py"


def _grade(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rewards.grade", *args],
        cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120,
    )


def _jsonl(rows: list[object]) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def test_grades_good_lines_and_reports_malformed_ones(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(_jsonl([
        {"id": 1, "response": "She pays 2,125 dollars in total.", "gold": "2,125"},   # line 1
        {"id": 2, "response": "The answer is 17.", "gold": "18"},                      # line 2
        "{not json",                                                                   # line 3
        "",                                                                            # line 4 (blank)
        {"id": 3, "answer": "$18", "gold": "18"},                                      # line 5
        {"id": 4, "response": "x", "answer": "1", "gold": "1"},                        # line 6: both
        {"id": 5, "response": "7"},                                                    # line 7: no gold
        {"id": 6, "answer": 18, "gold": "18"},                                         # line 8: number
        {"id": 7, "gold": "3"},                                                        # line 9: neither
        [1, 2],                                                                        # line 10
        {"id": 8, "answer": "18.5", "gold": "18"},                                     # line 11
    ]))
    out = tmp_path / "out.jsonl"
    result = _grade(str(source), "-o", str(out), "--verifier", "integer", "--workers", "1")

    assert result.returncode == 1, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["correct"], r["extracted"]) for r in rows] == [
        (1, True, "2,125"), (2, False, "17"), (3, True, "$18"), (8, False, "18.5"),
    ]
    assert rows[0]["response"] == "She pays 2,125 dollars in total." and "status" not in rows[0]
    reported = {
        int(line.split(":")[1]): line.split("malformed line skipped: ", 1)[1]
        for line in result.stderr.splitlines() if "malformed line skipped" in line
    }
    assert sorted(reported) == [3, 6, 7, 8, 9, 10]
    for line_no, reason in [(3, "invalid JSON"), (6, "found both"), (7, "missing 'gold'"),
                            (8, "'answer' must be a string, got int"), (9, "found neither"),
                            (10, "expected a JSON object")]:
        assert reason in reported[line_no]
    assert "graded 4 lines: 2 correct (accuracy 50.00%), 0 timeouts, 0 errors; 6 malformed lines skipped" in result.stderr


def test_stdout_chunks_keep_input_order_and_timeouts_are_verdicts(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"response": "HANG" if i == 2 else f"r{i % 3}", "gold": "r1"} for i in range(7)]
    source.write_text(_jsonl(rows))
    result = _grade(str(source), "--verifier", f"{FIXTURES}:hang_on_marker", "--timeout", "0.5",
                    "--workers", "2", "--chunk-size", "3")

    assert result.returncode == 0, result.stderr
    graded = [json.loads(line) for line in result.stdout.splitlines()]
    assert [g["response"] for g in graded] == [r["response"] for r in rows]
    assert [g["correct"] for g in graded] == [r["response"] == "r1" for r in rows]
    assert graded[2]["status"] == "timeout" and "error" in graded[2]
    assert "graded 7 lines: 2 correct (accuracy 28.57%), 1 timeouts, 0 errors" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = _grade("-", "--verifier", "no_such_verifier", stdin="")
    assert result.returncode == 2 and "unknown verifier 'no_such_verifier'" in result.stderr
    result = _grade(str(tmp_path / "missing.jsonl"), "--verifier", f"{FIXTURES}:exact")
    assert result.returncode == 2 and "missing.jsonl" in result.stderr


@pytest.mark.parametrize(("raw", "reason"), [
    (b"\xff\xfe", "not valid UTF-8"),
    (b'{"gold": "1", "response": null}', "'response' must be a string, got NoneType"),
    (b'{"gold": 1, "answer": "1"}', "'gold' must be a string, got int"),
    (b'"just a string"', "expected a JSON object, got str"),
])
def test_parse_line_rejects(raw: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_line(raw)


def test_parse_line_accepts_response_or_answer() -> None:
    row = parse_line(b'{"gold": "1", "answer": "1", "extra": [1]}')
    assert row.is_answer and row.text == "1" and row.record["extra"] == [1]
    assert not parse_line(b'{"gold": "1", "response": "so 1"}').is_answer
