# fewmol: `make demo` and `make test` set everything up themselves (idempotent).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fewmol-installed
DATA ?= ../shared/data
DEMO_EPOCHS ?= 30

.PHONY: setup demo test test-all lint format bench-speed bench-speed-long clean

setup: $(STAMP)

# Re-install only when the dependency list changes. torch is installed first and pinned:
# an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/fewmol finetune bbbp --init graphmvp --split scaffold --epochs $(DEMO_EPOCHS) \
		--seeds 0 --out runs/demo-bbbp --force --quiet

test: setup
	$(BIN)/python -m pytest

test-all: setup
	$(BIN)/python -m pytest -m ""

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench-speed: setup
	$(BIN)/python benchmarks/speed/featurize_speed.py
	$(BIN)/python benchmarks/speed/gin_speed.py
	$(BIN)/python benchmarks/speed/finetune_step_speed.py
	$(BIN)/python benchmarks/speed/embedding_speed.py
	$(BIN)/python benchmarks/speed/schnet_speed.py
	$(BIN)/python benchmarks/speed/precision_speed.py
	$(BIN)/python benchmarks/speed/metrics_speed.py
	$(BIN)/python benchmarks/speed/tanimoto_speed.py
	$(BIN)/python benchmarks/speed/sgnn_fold_speed.py
	$(BIN)/python benchmarks/speed/explain_speed.py
	$(BIN)/python benchmarks/speed/startup_speed.py
	$(BIN)/python benchmarks/speed/allocator_speed.py

# The long ones (conformers for 200 molecules, 1M-molecule prediction, DTA epochs, multi-task
# grids of up to 6,821 edges, pre-training steps): tens of minutes on 2 cores.
bench-speed-long: setup
	$(BIN)/python benchmarks/speed/conformer_speed.py
	$(BIN)/python benchmarks/speed/pretrain_speed.py
	$(BIN)/python benchmarks/speed/predict_speed.py
	$(BIN)/python benchmarks/speed/multitask_speed.py
	$(BIN)/python benchmarks/speed/dta_speed.py
	$(BIN)/python benchmarks/speed/dta_eval_speed.py

clean:
	rm -rf runs .pytest_cache
