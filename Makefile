# Two commands do all set-up: `make lab` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The stamp is newer than pyproject.toml once the install has succeeded,
# so re-running a target does not reinstall.
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=300

.PHONY: lab test test-unit test-notebooks test-browser notebooks lint format benchmark bench-seeds ablations clean site slides handout check-classroom

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,test,site]" -c constraints.txt
	touch $(STAMP)

# Jupyter refuses to run as root unless told; containers and CI machines often are root.
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

# Learners need only the lessons' packages (`make test` installs the rest on top).
LAB_STAMP := $(VENV)/.installed-lab
$(LAB_STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab]" -c constraints.txt
	touch $(LAB_STAMP)

lab: $(LAB_STAMP)
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

# The classroom kit (see teaching/README.md). All three are built from the stored outputs and
# load nothing from the internet; npm installs MathJax and reveal.js into site/node_modules once.
site: $(STAMP)
	$(BIN)/python tools/build_site.py
	$(BIN)/python tools/check_site.py site

slides: $(STAMP)
	$(BIN)/python tools/build_slides.py
	$(BIN)/python tools/check_site.py slides

CHROMIUM ?= chromium
handout: site
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --no-pdf-header-footer \
		--print-to-pdf=build/handout.pdf file://$(CURDIR)/build/site/_build/html/handout-print.html 2>/dev/null
	$(BIN)/python tools/check_site.py handout

# CITATION.cff against its schema, and Binder's build order (PyTorch installed before the
# repository is copied), in a separate tools venv: cffconvert pins an old jsonschema.
TOOLS := build/tools-venv
check-classroom:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "cffconvert==2.0.0" "jupyter-repo2docker==2026.4.0"
	$(TOOLS)/bin/cffconvert --validate -i CITATION.cff
	$(TOOLS)/bin/python tools/check_binder.py

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

# Lesson 08's experiments at full size, 3 seeds: prints the table, saves notebooks/ablations/results.json
# (about 21 minutes on 2 cores; lesson 08 reads the file).
ablations: $(STAMP)
	$(BIN)/python -m ssd_lesson.ablation_runs --seeds 0 1 2 --out notebooks/ablations/results.json

clean:
	rm -rf $(VENV) build .pytest_cache site/node_modules
