# Two commands do all set-up: `make lab` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is newer than pyproject.toml once the install has succeeded,
# so re-running a target does not reinstall.
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300

.PHONY: lab test test-unit test-notebooks test-browser notebooks lint format benchmark bench-seeds clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: $(STAMP)
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/

test: $(STAMP) lint test-unit test-notebooks

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-unit: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest -q tests

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest -q $(NBVAL_FLAGS) $(NOTEBOOKS)

# Re-execute every lesson in place so the committed outputs are fresh.
# Lesson 07 reuses the model lesson 06 saves in notebooks/checkpoints/; start without it.
notebooks: $(STAMP)
	rm -rf notebooks/checkpoints
	$(BIN)/python tools/run_notebooks.py $(NOTEBOOKS)

test-browser: $(STAMP)
	$(BIN)/python tests/browser/run_browser_test.py

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bench_matching.py
	$(BIN)/python benchmarks/bench_loss.py
	$(BIN)/python benchmarks/bench_nms.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_load.py

# Ten seeds of lesson 06's training: no NaN, every seed's mAP@0.5 >= 0.85 (about 4 minutes on 2 cores).
bench-seeds: $(STAMP)
	$(BIN)/python benchmarks/bench_seeds.py

clean:
	rm -rf $(VENV) build .pytest_cache
