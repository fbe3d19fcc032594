"""Problem files: the shared test sets load, and every bad row names its file and line."""

import json

import pytest

from mathdata.loading import DatasetError, ProblemFileConfig, load_problems, to_hf_dataset
from mathrl.config import ConfigError, from_dict


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def test_shared_sets_load(shared_data):
    math500 = load_problems(shared_data / "math500.jsonl").problems
    gsm8k = load_problems(shared_data / "gsm8k_test.jsonl").problems
    assert len(math500) == 500 and len(gsm8k) == 1319
    first = math500[0]
    assert first.id.startswith("test/") and first.answer and first.solution and "\\boxed" in first.solution
    assert first.meta["subject"] and first.meta["level"]
    # GSM8K uses `question`; its thousands separators are kept for the verifier to handle
    assert any("," in p.answer for p in gsm8k)
    assert len({p.id for p in gsm8k}) == len(gsm8k)


def test_parquet_goes_through_datasets(tmp_path, shared_data):
    problems = load_problems(shared_data / "math500.jsonl").problems[:20]
    path = tmp_path / "p.parquet"
    to_hf_dataset(problems).to_parquet(str(path))
    again = load_problems(path).problems
    assert [(p.id, p.problem, p.answer) for p in again] == [(p.id, p.problem, p.answer) for p in problems]


GOOD = json.dumps({"problem": "1+1?", "answer": "2"})


@pytest.mark.parametrize(
    "bad_line, fragment",
    [
        ('{"problem": "1+1?", "answer": ', "invalid JSON"),
        ('["problem", "answer"]', "expected a JSON object"),
        ('{"problem": "1+1?"}', "missing 'answer'"),
        ('{"answer": "2"}', "missing 'problem'"),
        ('{"problem": "1+1?", "answer": "  "}', "'answer' (the gold answer) is empty"),
        ('{"problem": "1+1?", "answer": null}', "missing 'answer'"),
        ('{"problem": "1+1?", "answer": [2]}', "must be a string or a number"),
        ('{"problem": "1+1?", "answer": true}', "must be a string or a number"),
        ('{"problem": 5, "answer": "2"}', None),  # numbers become text: allowed
        ('{"problem": "1+1?", "answer": "2", "solution": 3}', "'solution' must be a string"),
    ],
)
def test_bad_row_names_file_and_line(tmp_path, bad_line, fragment):
    path = write_lines(tmp_path / "set.jsonl", [GOOD, "", GOOD, bad_line, GOOD])
    if fragment is None:
        assert len(load_problems(path).problems) == 4
        return
    with pytest.raises(DatasetError) as info:
        load_problems(path)
    message = str(info.value)
    assert f"{path}:line 4:" in message  # the blank line 2 still counts
    assert fragment in message


def test_skip_mode_counts_and_keeps_the_rest(tmp_path):
    path = write_lines(tmp_path / "set.jsonl", [GOOD, "{oops", '{"question": "q", "answer": 7}', '{"problem": "p"}'])
    loaded = load_problems(ProblemFileConfig(path=str(path), on_error="skip"))
    assert [p.answer for p in loaded.problems] == ["2", "7"]
    assert len(loaded.skipped) == 2
    assert "line 2" in loaded.skipped[0] and "line 4" in loaded.skipped[1]


def test_empty_and_all_bad_files_are_errors(tmp_path):
    with pytest.raises(DatasetError, match="no problems found"):
        load_problems(write_lines(tmp_path / "empty.jsonl", [""]))
    all_bad = write_lines(tmp_path / "bad.jsonl", ["{", "{"])
    with pytest.raises(DatasetError, match="all 2 rows were malformed"):
        load_problems(ProblemFileConfig(path=str(all_bad), on_error="skip"))
    with pytest.raises(DatasetError, match="no such file"):
        load_problems(tmp_path / "missing.jsonl")


def test_renamed_keys_limit_and_ids(tmp_path):
    rows = [json.dumps({"q": f"problem {i}", "gold": str(i), "idx": 100 + i}) for i in range(5)]
    path = write_lines(tmp_path / "custom.jsonl", rows)
    loaded = load_problems(ProblemFileConfig(path=str(path), problem_key="q", answer_key="gold", limit=3))
    assert [(p.id, p.problem, p.answer) for p in loaded.problems] == [("100", "problem 0", "0"), ("101", "problem 1", "1"), ("102", "problem 2", "2")]


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="^path: .*must end in .jsonl"):
        from_dict(ProblemFileConfig, {"path": "data.csv"})
    with pytest.raises(ConfigError, match="^on_error: 'ignore' is not allowed"):
        from_dict(ProblemFileConfig, {"path": "a.jsonl", "on_error": "ignore"})
