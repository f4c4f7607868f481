# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Runs the example notebooks headless in a real kernel, then shows what their %%track cells and
# the registry recorded. The store is named explicitly so no other .nbmlops/ up the tree is used.
DEMO_STORE := example_notebooks/.nbmlops
demo: $(STAMP)
	rm -rf $(DEMO_STORE)
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/01_quickstart.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/02_registry.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) runs
	$(BIN)/nbmlops --store $(DEMO_STORE) show
	$(BIN)/nbmlops --store $(DEMO_STORE) models
	$(BIN)/nbmlops --store $(DEMO_STORE) model history diabetes

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs
	$(BIN)/ruff format --check src tests benchmarks docs

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_store.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
