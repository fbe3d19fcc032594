"""The README's main job, end to end at toy sizes: prepare -> pretrain -> SFT -> evaluate,
through the real entry points (config files, overrides, run directories, resume)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def launch(script: str, *overrides: str, cwd: Path) -> str:
    out = subprocess.run(
        [sys.executable, str(ROOT / "launch" / script), "--config", str(ROOT / "configs" / script.replace(".py", "_tiny.yaml")), *overrides],
        cwd=cwd, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, f"{script} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.mark.slow
def test_tiny_pipeline_runs_end_to_end(tmp_path):
    art = tmp_path / "artifacts"
    launch("prepare.py", f"output_dir={art}", "data.train_size=200", "data.test_size=20", "data.rl_size=30", "corpus_docs=200",
           "tokenizer.vocab_size=512", cwd=tmp_path)
    sets = {name: [json.loads(line) for line in (art / "data" / f"{name}.jsonl").read_text().splitlines()] for name in ("train", "test", "rl")}
    assert [len(rows) for rows in sets.values()] == [200, 20, 30]
    assert not {row["key"] for row in sets["rl"]} & {row["key"] for row in sets["train"] + sets["test"]}

    sources = f"{{corpus: {{path: {art}/data/corpus.jsonl}}, problems: {{path: {art}/data/train.jsonl, format: problems}}}}"
    stages = "[{steps: 2, mixture: {corpus: 1.0}, seq_len: 64, batch_size: 4}, {steps: 1, mixture: {problems: 1.0}, seq_len: 64, batch_size: 4}]"
    pretrain = tmp_path / "pretrain"
    launch("pretrain.py", f"model_path={art}/model", f"run.run_dir={pretrain}", f"data.sources={sources}", f"data.stages={stages}",
           "learner.micro_batch_size=4", "learner.schedule.warmup_steps=1", cwd=tmp_path)
    assert [r["step"] for r in map(json.loads, (pretrain / "metrics.jsonl").read_text().splitlines())] == [3]
    assert (pretrain / "final" / "model.safetensors").exists() and (pretrain / "config.yaml").exists()

    sft = tmp_path / "sft"
    sft_args = [f"model_path={pretrain}/final", f"run.run_dir={sft}", f"data.train.path={art}/data/train.jsonl",
                "data.batch_size=8", "epochs=0.08", "learner.micro_batch_size=8", "learner.schedule.warmup_steps=1"]
    assert "2 steps" in launch("sft.py", *sft_args, cwd=tmp_path)
    # a second start finds the finished run's checkpoint and only re-exports
    assert "resumed from" in launch("sft.py", *sft_args, cwd=tmp_path)

    evaluation = tmp_path / "eval"
    launch("evaluate.py", f"model_path={sft}/final", f"data.path={art}/data/test.jsonl", f"output_dir={evaluation}",
           "rollout.max_tokens=16", cwd=tmp_path)
    results = json.loads((evaluation / "results.json").read_text())
    assert results["num_problems"] == 20 and 0.0 <= results["accuracy"] <= 1.0
    assert len((evaluation / "responses.jsonl").read_text().splitlines()) == 20
