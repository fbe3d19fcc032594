"""Bad datasets and configs given to the GRPO job fail with an error naming the file and line,
or the key, before Ray or any actor starts (`connect_ray` is replaced by a tripwire)."""

import pytest

import launch.grpo as grpo
from mathdata.loading import DatasetError

GOOD_ROW = '{"problem": "1+1", "answer": "2"}'

BAD_FILES = {
    "missing answer": (GOOD_ROW + '\n{"problem": "2+2"}\n', r"line 2: missing 'answer'"),
    "missing problem": (GOOD_ROW + '\n{"answer": "4"}\n', r"line 2: missing 'problem'"),
    "answer a list": ('{"problem": "1+1", "answer": ["2"]}\n', r"line 1: 'answer' .* must be a string or a number, got list"),
    "problem a dict": ('{"problem": {"text": "1+1"}, "answer": "2"}\n', r"line 1: 'problem' .* must be a string or a number, got dict"),
    "empty gold answer": ('{"problem": "1+1", "answer": "  "}\n', r"line 1: 'answer' .* is empty"),
    "invalid JSON": (GOOD_ROW + '\n{"problem": "2+2", "answer": "4"\n', r"line 2: invalid JSON"),
    "row not an object": (GOOD_ROW + "\n[1, 2]\n", r"line 2"),
    "empty file": ("", r"no problems found"),
}


@pytest.fixture
def no_ray(monkeypatch):
    def tripwire(*args, **kwargs):
        raise AssertionError("Ray was started before the bad input was caught")

    monkeypatch.setattr(grpo, "connect_ray", tripwire)


def run(tmp_path, *overrides):
    grpo.main([f"run.run_dir={tmp_path / 'run'}", "reward.shaping.mode=verifier-only", "reward.model_path=null",
               *overrides])


@pytest.mark.parametrize("key", ["data.path", "eval.data.path"])
@pytest.mark.parametrize("content, message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_dataset_names_file_and_line(tmp_path, tiny_model_dir, no_ray, key, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    good = tmp_path / "good.jsonl"
    good.write_text(GOOD_ROW + "\n")
    paths = {"data.path": good, "eval.data.path": good, key: bad}
    with pytest.raises(DatasetError, match=f"{bad}:.*{message}" if "line" in message else f"{bad}: {message}"):
        run(tmp_path, f"policy_path={tiny_model_dir}", *(f"{k}={v}" for k, v in paths.items()))


def test_missing_dataset_file(tmp_path, tiny_model_dir, no_ray):
    with pytest.raises(DatasetError, match="nowhere.jsonl: no such file"):
        run(tmp_path, f"policy_path={tiny_model_dir}", f"data.path={tmp_path / 'nowhere.jsonl'}")


BAD_CONFIGS = {
    "unknown key": (["rollout.temprature=0.5"], "rollout.temprature"),
    "n = 0": (["rollout.n=0"], "rollout.n"),
    "filter bounds": (["filter.low=5", "filter.high=2"], "filter"),
    "groups per step": (["batch.groups_per_step=0"], "batch.groups_per_step"),
    "wrong type": (["rollout.max_tokens=many"], "rollout.max_tokens"),
    "rm without a model": (["reward.shaping.mode=rm+verifier"], "reward.model_path"),
}


@pytest.mark.parametrize("overrides, key", BAD_CONFIGS.values(), ids=BAD_CONFIGS.keys())
def test_bad_config_names_the_key(tmp_path, tiny_model_dir, no_ray, capsys, overrides, key):
    with pytest.raises(SystemExit) as exit_info:
        run(tmp_path, f"policy_path={tiny_model_dir}", *overrides)
    assert exit_info.value.code == 2
    assert key in capsys.readouterr().err


@pytest.mark.parametrize("key", ["policy_path", "reward.model_path"])
def test_missing_model_directory_is_named(tmp_path, tiny_model_dir, shared_data, no_ray, key):
    paths = {"policy_path": tiny_model_dir, "reward.model_path": tiny_model_dir, key: tmp_path / "no_model"}
    with pytest.raises(FileNotFoundError, match="no_model"):
        run(tmp_path, f"data.path={shared_data / 'math500.jsonl'}", f"eval.data.path={shared_data / 'gsm8k_test.jsonl'}",
            "reward.shaping.mode=rm+verifier", *(f"{k}={v}" for k, v in paths.items()))
