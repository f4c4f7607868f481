"""Issue #19's "done when", checked in Chromium: two people's stores push to one MLflow server,
whose own UI shows both people's runs with their params, step-wise metrics, the cell source and
the registered champion with its input schema; then one store pulls and ``%runs`` lists the
other person's run.

Each person trains in a notebook executed by a kernel of their own (headless.execute_notebook),
under their own login name: the run's user is read once per process. MLflow 3 opens an
experiment in its GenAI view unless the browser chose "Model training" (``workflowType``).
Pictures for the docs (docs/img/mlflow_ui_*.png): NBMLOPS_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm
from jupyterlab_browser import chromium_page
from mlflow_server import MlflowServer, running_server
from nbmlops.headless import execute_notebook
from nbmlops.store import close_stores

pytestmark = pytest.mark.browser

TRAIN = """%%track {user}_lr --experiment churn
import pandas as pd
from sklearn.linear_model import LogisticRegression
C = {C}
X = pd.DataFrame({{"tenure": [1.0, 5.0, 20.0, 40.0], "calls": [9, 7, 2, 1]}})
y = pd.Series([1, 1, 0, 0], name="churned")
for epoch in range(5):
    nbm.log_metric("val_loss", C / (epoch + 1), step=epoch)
clf = LogisticRegression(C=C).fit(X, y)
"""
REGISTER = """version = nbm.register_model(nbm.runs()["run_id"][0], "churn", "churn classifier")
nbm.set_alias("churn", "champion", version.version)"""
ML = "?workflowType=machine_learning"  # MLflow's "Model training" view, not GenAI's
DOCS_IMG = Path(__file__).parents[1] / "docs" / "img"


def _train(folder: Path, user: str, *cells: str) -> Path:
    """``user``'s notebook, executed in a kernel logged in as ``user``; their store."""
    folder.mkdir()
    notebook = nbformat.v4.new_notebook()
    sources = ["%load_ext nbmlops\nimport nbmlops as nbm", *cells]
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(notebook, folder / "train.ipynb")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("USER", user)
        env.setenv("LOGNAME", user)
        execute_notebook(folder / "train.ipynb", store=folder / ".nbmlops")
    return folder / ".nbmlops"


def _people(root: Path) -> tuple[Path, Path]:
    alice = _train(root / "alice", "alice", TRAIN.format(user="alice", C=0.5), REGISTER)
    return alice, _train(root / "bob", "bob", TRAIN.format(user="bob", C=2.0))


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlflowServer, Path]]:
    """One MLflow server; alice's and bob's stores pushed to it; alice's store."""
    root = tmp_path_factory.mktemp("team")
    # The kernels train while the server starts: each takes about 20 s on a loaded machine.
    with ThreadPoolExecutor(1) as pool:
        people = pool.submit(_people, root)
        with running_server(root / "mlflow") as server:
            alice, bob = people.result()
            for store in (alice, bob):
                assert nbm.push_to_mlflow(server.url, store=store).created == 1
            yield server, alice
    close_stores()


@pytest.fixture  # per test: a Playwright loop left running past a test breaks
def page() -> Iterator[Any]:  # pytest-jupyter's autouse event-loop fixture at its teardown
    with chromium_page(1600, 1000) as page:
        page.set_default_timeout(30_000)
        yield page


def _open(page: Any, url: str, ready: str) -> None:
    """Open ``url`` and wait for the text ``ready``; close MLflow's assistant panel if it
    opened beside the page."""
    page.goto(url)
    page.get_by_text(ready, exact=True).first.wait_for()
    close = page.locator("button[data-component-id='mlflow.assistant.chat_panel.close']")
    if close.is_visible():
        close.click()


def _experiment(server: MlflowServer) -> str:
    found = server.api("GET", "experiments/get-by-name", params={"experiment_name": "churn"})
    return str(found["experiment"]["experiment_id"])


def _remote_run(server: MlflowServer, name: str) -> str:
    body = {"experiment_ids": [_experiment(server)], "filter": f"attributes.run_name = '{name}'"}
    [run] = server.api("POST", "runs/search", json=body)["runs"]
    return str(run["info"]["run_id"])


def _cell(page: Any, row: int, column: str) -> str:
    return str(
        page.locator(f".ag-row[row-index='{row}'] [col-id='attributes.`{column}`']").inner_text()
    )


def _screenshot(page: Any, name: str) -> None:
    if os.environ.get("NBMLOPS_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS_IMG / name))


def test_the_runs_table_lists_both_peoples_runs(team, page):
    server, _ = team
    _open(page, f"{server.url}/#/experiments/{_experiment(server)}/runs{ML}", "alice_lr")
    page.get_by_role("button", name="Columns").click()
    page.get_by_text("User", exact=True).click()  # MLflow hides its User column by default
    page.keyboard.press("Escape")
    page.locator(".ag-row [col-id='attributes.`User`']").nth(1).wait_for()
    rows = {  # ag-grid draws a row in two parts (pinned, scrolled): cells found by row index
        _cell(page, i, "Run Name").split()[-1]: {
            c: _cell(page, i, c) for c in ("User", "Source", "Dataset")
        }
        for i in range(2)
    }
    assert {name: row["User"] for name, row in rows.items()} == {
        "alice_lr": "alice",
        "bob_lr": "bob",
    }
    assert rows["bob_lr"]["Source"] == "train.ipynb"  # the notebook, from mlflow.source.name
    assert rows["bob_lr"]["Dataset"].startswith("X (")  # the cell's DataFrames: dataset inputs
    _screenshot(page, "mlflow_ui_runs.png")


def test_a_run_page_shows_params_the_stepwise_metric_and_the_cell_source(team, page):
    server, _ = team
    run = f"{server.url}/#/experiments/{_experiment(server)}/runs/{_remote_run(server, 'alice_lr')}"
    _open(page, run + ML, "Parameters (1)")
    assert page.get_by_role("row", name=re.compile(r"^C\s+0\.5$")).count() == 1
    assert page.get_by_role("row", name=re.compile(r"^val_loss\s+0\.1$")).count() == 1
    assert page.get_by_text("Created by").locator("..").inner_text().endswith("alice")
    _open(page, f"{run}/model-metrics{ML}", "val_loss")
    chart = page.locator("[data-testid='experiment-view-compare-runs-card']", has_text="val_loss")
    chart.locator(".scatterlayer .points path").nth(4).wait_for()  # one point per step, 0..4
    assert chart.locator(".scatterlayer .points path").count() == 5
    assert "Step" in chart.inner_text()
    _open(page, f"{run}/artifacts{ML}", "nbmlops")
    page.get_by_text("nbmlops", exact=True).click()
    page.get_by_text("cell.py", exact=True).click()
    page.get_by_text('nbm.log_metric("val_loss", C / (epoch + 1), step=epoch)').wait_for()
    assert page.get_by_text("%%track alice_lr --experiment churn").is_visible()
    _screenshot(page, "mlflow_ui_run.png")


def test_the_models_page_shows_the_champion(team, page):
    server, _ = team
    _open(page, f"{server.url}/#/models/churn{ML}", "Version 1")
    version = page.get_by_role("row", name=re.compile(r"^Version 1"))
    version.get_by_text("@ champion", exact=True).wait_for()  # the alias, not the event tag
    assert "churn classifier" in version.inner_text()
    _screenshot(page, "mlflow_ui_model.png")


def test_the_version_page_shows_the_input_schema_of_the_pushed_mlflow_model(team, page):
    # The version is an MLflow model folder (sync/mlflow_model.py): MLmodel's signature is the
    # schema MLflow shows: the columns the model was fitted on, typed from the training data.
    server, _ = team
    _open(page, f"{server.url}/#/models/churn/versions/1{ML}", "Inputs (2)")
    page.get_by_text("Inputs (2)", exact=True).click()
    page.get_by_text("tenure (required)", exact=True).wait_for()
    schema = page.inner_text("body").split("Inputs (2)", 1)[1]
    assert re.match(r"\s*tenure \(required\)\s+double\s+calls \(required\)\s+long", schema)
    _screenshot(page, "mlflow_ui_version.png")


def test_pulling_brings_bobs_run_into_percent_runs(team, monkeypatch):
    server, alice = team
    monkeypatch.setenv("NBMLOPS_HOME", str(alice))
    nbm.set_store(None)
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbmlops")
    try:
        report = nbm.pull_from_mlflow(server.url)
        assert (report.created, report.own) == (1, 1)
        panel = shell.run_line_magic("runs", "")
        runs = {run["name"]: run for run in panel.view.to_dict("records")}
        assert sorted(runs) == ["alice_lr", "bob_lr"]  # side by side, for comparison
        bob = runs["bob_lr"]
        assert (bob["user"], bob["params.C"], bob["metrics.val_loss"]) == ("bob", 2.0, 0.4)
        assert bob["tags.nbmlops.pulled_from"].startswith(f"{server.url}#")  # marked pulled
        assert pd.isna(runs["alice_lr"]["tags.nbmlops.pulled_from"])
        shown = panel.to_html()  # the table %runs draws
        assert ">bob_lr (pulled, bob)<" in shown and ">2<" in shown and ">0.4<" in shown
        assert ">alice_lr<" in shown  # a run of this store: no mark
    finally:
        shell.run_line_magic("unload_ext", "nbmlops")
        InteractiveShell.clear_instance()
        nbm.set_store(None)
