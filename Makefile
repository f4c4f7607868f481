# The two commands of the README: `make demo` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint imports typecheck pytest bench clean

# The JupyterLab extension is built by `pip install` (hatch-jupyter-builder runs npm): a change to
# its sources reinstalls.
LABEXT_SOURCES := $(wildcard labextension/src/*.ts labextension/style/*) labextension/package.json

$(STAMP): pyproject.toml $(LABEXT_SOURCES)
	@echo "[1/3] Creating $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "[2/3] Installing nbmlops with its test tools; the JupyterLab extension is built with npm"
	@echo "      from labextension/ on the way (2-4 minutes on a fresh machine, quiet while it runs)"
	$(BIN)/pip install --quiet -e '.[dev]'
	@echo "[3/3] Installed: $$($(BIN)/nbmlops --version 2>/dev/null || echo nbmlops)"
	touch $(STAMP)

# Runs the example notebooks headless in a real kernel, then shows what their %%track cells and
# the registry recorded. The store is named explicitly so no other .nbmlops/ up the tree is used.
DEMO_STORE := example_notebooks/.nbmlops
# The peers some tests run for real live in venvs of their own, never in .venv: an MLflow
# tracking server (the sync tests push to it) and DVC (it must accept our .dvc pointers). The
# tests create them too when missing (tests/side_venv.py); here they are made once, in order.
MLFLOW := .venv-mlflow/bin/mlflow
DVC := .venv-dvc/bin/dvc
$(MLFLOW):
	@echo "Creating .venv-mlflow (a real MLflow server for the sync tests, and the libraries it loads pushed models with; 1-2 minutes once)"
	$(PYTHON) -m venv .venv-mlflow
	.venv-mlflow/bin/pip install --quiet 'mlflow>=3,<4' skops xgboost-cpu lightgbm
$(DVC):
	@echo "Creating .venv-dvc (DVC, to check the .dvc pointers nbmlops writes; a minute once)"
	$(PYTHON) -m venv .venv-dvc
	.venv-dvc/bin/pip install --quiet 'dvc>=3,<4'

demo: $(STAMP) $(MLFLOW)
	rm -rf $(DEMO_STORE)
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/01_quickstart.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/02_registry.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/03_serving.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/04_monitoring.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/05_beyond_sklearn.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/06_data_versions.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/07_evaluation.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/08_feature_store.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) runs
	$(BIN)/nbmlops --store $(DEMO_STORE) show
	$(BIN)/nbmlops --store $(DEMO_STORE) models
	$(BIN)/nbmlops --store $(DEMO_STORE) model history diabetes
	$(BIN)/nbmlops --store $(DEMO_STORE) sql "SELECT version, status, COUNT(*) AS requests FROM predictions GROUP BY 1, 2"
	$(BIN)/nbmlops --store $(DEMO_STORE) model consumers diabetes 3
	$(BIN)/nbmlops --store $(DEMO_STORE) model history diabetes_live
	$(BIN)/nbmlops --store $(DEMO_STORE) sql "SELECT alert, kind, version FROM monitor_events ORDER BY event_id"
	$(BIN)/nbmlops --store $(DEMO_STORE) monitor --check
	$(BIN)/nbmlops --store $(DEMO_STORE) monitor --once
	$(BIN)/nbmlops --store $(DEMO_STORE) runs --experiment 05_beyond_sklearn --columns name,metrics.mae,params.XGBRegressor.max_depth,params.Adam.lr
	$(BIN)/nbmlops --store $(DEMO_STORE) data list
	$(BIN)/nbmlops --store $(DEMO_STORE) data show patients
	$(BIN)/nbmlops --store $(DEMO_STORE) data show patients@1
	$(BIN)/nbmlops --store $(DEMO_STORE) data diff patients@1 patients@3 --limit 8
	$(BIN)/nbmlops --store $(DEMO_STORE) model history cancer
	$(BIN)/nbmlops --store $(DEMO_STORE) sql "SELECT evaluation_id, name, version, status, n_rows, dataset_ref FROM evaluations"
	$(BIN)/nbmlops --store $(DEMO_STORE) features list
	$(BIN)/nbmlops --store $(DEMO_STORE) features show driver_hourly
	$(BIN)/nbmlops --store $(DEMO_STORE) rerun diabetes@champion
	$(BIN)/nbmlops --store $(DEMO_STORE) review model diabetes@champion
	$(BIN)/nbmlops --store $(DEMO_STORE) review rules
	@echo "Team use: push to a local MLflow tracking server, pull a teammate's run, MLflow loads the champion"
	$(BIN)/python example_notebooks/with_mlflow_server.py $(BIN)/nbmlops --store $(DEMO_STORE) execute example_notebooks/09_team_sync.ipynb
	$(BIN)/nbmlops --store $(DEMO_STORE) runs --experiment 02_registry --columns name,metrics.mae,tags.nbmlops.pulled_from

test: $(STAMP) $(MLFLOW) $(DVC) lint imports typecheck pytest

# The inner loop: no kernels, no browser, no many-process or many-seed tests (under a minute).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not kernel and not browser and not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks docs $(wildcard example_notebooks/*.py)
	$(BIN)/ruff format --check src tests benchmarks docs $(wildcard example_notebooks/*.py)

# The layers of ../shared/ARCHITECTURE.md and no import cycles (contracts in pyproject.toml).
imports: $(STAMP)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The UI tests drive Debian's Chromium; install it where it is missing (as root, else with sudo).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@echo "Installing Debian's chromium for the JupyterLab UI tests"
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
		chromium fonts-dejavu-core >/dev/null

pytest: $(STAMP) $(CHROMIUM)
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_store.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
	rm -rf labextension/node_modules labextension/lib labextension/tsconfig.tsbuildinfo \
		src/nbmlops/labextension
