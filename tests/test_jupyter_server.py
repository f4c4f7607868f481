"""The jupyter_server extension: every handler through a real, token-protected Jupyter server
(pytest-jupyter's ``jp_fetch``), over real stores made with the public API and ``%%track``."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import nbmlops as nbm
import nbmlops.jupyter
from nbmlops.jupyter import payloads
from nbmlops.jupyter.handlers import ROUTES
from nbmlops.store import close_stores

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(request: pytest.FixtureRequest) -> Config:
    """The extension enabled, unauthenticated access disabled (pytest-jupyter sets a token);
    a test may add config with ``@pytest.mark.parametrize("jp_server_config", ..., indirect)``."""
    return Config(
        {
            "ServerApp": {
                # Terminals off: pytest-jupyter adds them otherwise, and they warn about auth.
                "jpserver_extensions": {"nbmlops.jupyter": True, "jupyter_server_terminals": False},
                "allow_unauthenticated_access": False,
            },
            **getattr(request, "param", {}),
        }
    )


async def get(jp_fetch: Any, *parts: str, **params: Any) -> tuple[int, Any]:
    """GET ``/nbmlops/api/<parts>`` with the server's token: (status, decoded JSON body)."""
    response = await jp_fetch("nbmlops", "api", *parts, params=params, raise_error=False)
    assert response.headers["Content-Type"] == "application/json"
    return response.code, json.loads(response.body)


@pytest.fixture
def two_runs(home: Path) -> tuple[str, str]:
    train = pd.DataFrame({"x": [1, 2, 3]})
    with nbm.start_run("small", experiment="churn", tags={"team": "a"}) as a:
        nbm.log_params({"lr": 0.1, "depth": 3})
        for loss in (0.9, 0.5, 0.3):
            nbm.log_metric("loss", loss)
        nbm.log_metric("train/acc", 0.7)
        nbm.log_metric("auc", float("nan"))
        nbm.log_dataset(train, name="train")
    with nbm.start_run("big", experiment="churn") as b:
        nbm.log_params({"lr": 0.01, "depth": 3})
        nbm.log_metric("loss", 0.2)
        nbm.log_dataset(train.assign(x=[4, 5, 6]), name="train")
    return a.run_id, b.run_id


@pytest.fixture
def notebook(home: Path, jp_root_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``analysis.ipynb`` in the server's root, run in IPython as JupyterLab runs it: an untracked
    cell, two versions of a tracked cell ``train`` and a failing tracked cell ``broken``."""
    path = jp_root_dir / "analysis.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbmlops")
    train = "%%track train\nimport nbmlops as nbm\nlr = {lr}\n"
    train += "nbm.log_metric('auc', {auc})\nnbm.log_metric('loss', 0.5)"
    for cell_id, source in [
        ("prep", "data = [1, 2, 3]"),
        ("train", train.format(lr=0.1, auc=0.8)),
        ("train", train.format(lr=0.2, auc=0.9)),
        ("broken", "%%track\n1 / 0"),
    ]:
        shell.run_cell(source, store_history=True, cell_id=cell_id)
    yield path
    shell.run_line_magic("unload_ext", "nbmlops")
    InteractiveShell.clear_instance()


# -- wiring and authentication ------------------------------------------------------------------


def test_extension_point_and_import_nbmlops_stays_free_of_jupyter_server():
    assert nbmlops.jupyter._jupyter_server_extension_points() == [{"module": "nbmlops.jupyter"}]
    code = "import sys, nbmlops; print('jupyter_server' in sys.modules, 'tornado' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_installed_config_file_enables_the_extension():
    folder = Path(nbmlops.jupyter.__file__).parent / "jupyter-config"
    config = json.loads((folder / "jupyter_server_config.d" / "nbmlops.json").read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"nbmlops.jupyter": True}}}


@pytest.mark.parametrize("pattern", [pattern for pattern, _ in ROUTES])
@pytest.mark.parametrize("token", [None, "not-the-token"])
async def test_request_without_the_token_is_refused(jp_fetch, jp_serverapp, home, pattern, token):
    assert jp_serverapp.identity_provider.token
    assert not jp_serverapp.web_app.settings["allow_unauthenticated_access"]
    path = re.sub(r"\([^)]*\)", "x", pattern)
    headers = {"Authorization": f"token {token}" if token else ""}
    response = await jp_fetch("nbmlops", "api", path, headers=headers, raise_error=False)
    assert response.code == 403
    assert "not authenticated" in json.loads(response.body)["error"]


# -- version handshake --------------------------------------------------------------------------


async def test_version_names_package_api_and_store(jp_fetch, jp_root_dir, home, two_runs):
    status, body = await get(jp_fetch, "version", api=1)
    assert status == 200
    assert body == {
        "version": nbm.__version__,
        "api": 1,
        "store": str(home),
        "store_exists": True,
        "root_dir": str(jp_root_dir),  # the front end tells the kernel <root>/<notebook path>
    }


@pytest.mark.parametrize("parts", [("version",), ("runs",), ("models",)])
async def test_front_end_for_another_api_version_gets_409(jp_fetch, home, parts):
    status, body = await get(jp_fetch, *parts, api=2)
    assert status == 409
    assert body["type"] == "ApiVersionMismatch"
    assert (body["client_api"], body["server_api"]) == (2, 1)
    assert "expects REST API version 2" in body["error"] and "serves version 1" in body["error"]


# -- runs ---------------------------------------------------------------------------------------


async def test_runs_are_json_records_newest_first_with_total(jp_fetch, two_runs):
    small, big = two_runs
    status, body = await get(jp_fetch, "runs", experiment="churn")
    assert status == 200 and body["total"] == 2
    assert [r["run_id"] for r in body["runs"]] == [big, small]
    newest = body["runs"][0]
    assert newest["params.lr"] == 0.01 and newest["metrics.auc"] is None  # NaN/missing: null
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", newest["start_time"])
    assert {"run_id", "params.lr", "metrics.loss", "tags.team"} <= set(body["columns"])


async def test_runs_filter_limit_and_offset(jp_fetch, two_runs):
    small, _ = two_runs
    status, body = await get(jp_fetch, "runs", filter="tags.team = 'a' AND params.lr > 0.05")
    assert status == 200 and [r["run_id"] for r in body["runs"]] == [small]
    status, body = await get(jp_fetch, "runs", limit=1, offset=1)
    assert (body["total"], body["limit"], body["offset"]) == (2, 1, 1)
    assert [r["run_id"] for r in body["runs"]] == [small]


@pytest.mark.parametrize(
    ("params", "parameter"),
    [({"limit": "ten"}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset")],
)
async def test_runs_bad_paging_is_400_naming_the_parameter(jp_fetch, two_runs, params, parameter):
    status, body = await get(jp_fetch, "runs", **params)
    assert status == 400
    assert body["type"] == "BadParameter" and body["parameter"] == parameter


async def test_bad_filter_is_400_with_the_position(jp_fetch, two_runs):
    status, body = await get(jp_fetch, "runs", filter="params.lr < 0.1 AND AND")
    assert status == 400
    assert body["type"] == "FilterSyntaxError"
    assert body["position"] == 20 and body["filter"] == "params.lr < 0.1 AND AND"
    assert "at position 20" in body["error"] and "traceback" not in body


async def test_one_run_with_everything_recorded(jp_fetch, two_runs):
    small, _ = two_runs
    status, body = await get(jp_fetch, "runs", small[:6])  # a unique prefix is enough
    assert status == 200 and body["run_id"] == small
    assert body["info"]["name"] == "small" and body["info"]["status"] == "finished"
    assert body["params"] == {"depth": 3, "lr": 0.1}
    assert body["metrics"] == {"auc": None, "loss": 0.3, "train/acc": 0.7}
    assert body["tags"] == {"team": "a"}
    assert [d["name"] for d in body["datasets"]] == ["train"]
    assert body["info"]["end_time"].endswith("Z") and "python" in body["environment"]


async def test_unknown_run_is_404(jp_fetch, two_runs):
    status, body = await get(jp_fetch, "runs", "ffffffffffff")
    assert status == 404
    assert body["type"] == "RunNotFoundError" and "'ffffffffffff' not found" in body["error"]


async def test_metric_history_even_for_keys_with_a_slash(jp_fetch, two_runs):
    small, _ = two_runs
    status, body = await get(jp_fetch, "runs", small, "metrics", "loss")
    assert status == 200
    assert [(h["step"], h["value"]) for h in body["history"]] == [(0, 0.9), (1, 0.5), (2, 0.3)]
    status, body = await get(jp_fetch, "runs", small, "metrics", "train/acc")
    assert status == 200 and body["key"] == "train/acc" and len(body["history"]) == 1
    status, body = await get(jp_fetch, "runs", small, "metrics", "nope")
    assert status == 404 and "its metrics: auc, loss, train/acc" in body["error"]


async def test_lineage_links_runs_by_dataset_fingerprint(jp_fetch, home):
    data = pd.DataFrame({"x": [1.0, 2.0]})
    with nbm.start_run("prepare") as prepare:
        nbm.log_dataset(data, name="clean", role="output")
    with nbm.start_run("train") as train:
        nbm.log_dataset(data, name="features")
    status, body = await get(jp_fetch, "runs", train.run_id, "lineage")
    assert status == 200
    assert [(i["name"], i["linked"]) for i in body["inputs"]] == [("features", [prepare.run_id])]


async def test_compare_runs(jp_fetch, two_runs):
    small, big = two_runs
    status, body = await get(jp_fetch, "compare", runs=f"{small},{big}")
    assert status == 200
    assert body["params"] == {"lr": {small: 0.1, big: 0.01}}  # depth is the same: left out
    assert body["metrics"]["loss"] == {
        "values": {small: 0.3, big: 0.2},
        "best": big,
        "lower_is_better": True,
    }
    assert body["datasets"]["input train"]["same"] is False
    assert [d["a"] for d in body["source_diffs"]] == [small]


@pytest.mark.parametrize("runs", ["", "abc", "abc,abc"])
async def test_compare_needs_two_distinct_runs(jp_fetch, two_runs, runs):
    status, body = await get(jp_fetch, "compare", runs=runs)
    assert status == 400 and body["parameter"] == "runs"


# -- cells --------------------------------------------------------------------------------------


async def test_cell_history_lists_every_version_with_its_runs(jp_fetch, notebook):
    status, body = await get(jp_fetch, "cells", "train", "history")
    assert status == 200
    assert body["notebook"] == str(notebook) and body["cell_id"] == "train"
    assert [v["version"] for v in body["versions"]] == [1, 2]
    assert "lr = 0.2" in body["versions"][1]["source"]
    assert all(len(v["runs"]) == 1 for v in body["versions"])


async def test_cell_diff_of_two_runs(jp_fetch, notebook):
    _, history = await get(jp_fetch, "cells", "train", "history")
    first, second = (v["runs"][0] for v in history["versions"])
    status, body = await get(jp_fetch, "cells", "diff", a=first, b=second)
    assert status == 200 and body["same"] is False
    assert "-lr = 0.1" in body["lines"] and "+lr = 0.2" in body["lines"]
    status, body = await get(jp_fetch, "cells", "diff", a=first)
    assert status == 400 and body["parameter"] == "b"


async def test_latest_cells_give_the_badges_of_a_notebook(jp_fetch, notebook):
    status, body = await get(jp_fetch, "cells", "latest", notebook="analysis.ipynb")
    assert status == 200 and set(body["cells"]) == {"train", "broken"}  # prep is untracked
    train = body["cells"]["train"]
    assert train["status"] == "finished" and (train["version"], train["versions"]) == (2, 2)
    assert train["headline"] == {"key": "auc", "value": 0.9}
    assert train["metrics"] == {"auc": 0.9, "loss": 0.5} and train["duration_s"] >= 0
    # The cell's execution starts (pre_run_cell) just before its run does.
    assert train["executions"] == 2 and train["last_executed"] <= train["start_time"]
    assert body["cells"]["broken"]["status"] == "failed"
    assert body["cells"]["broken"]["headline"] is None


def _run_tracked_cells(path: Path, cells: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """``cells`` tracked cells of notebook ``path``, run in IPython as JupyterLab runs them."""
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "nbmlops")
    for i in range(cells):
        source = f"%%track\nimport nbmlops as nbm\nnbm.log_metric('m{i % 3}', {i})"
        shell.run_cell(source, store_history=True, cell_id=f"c{i}")
    shell.run_line_magic("unload_ext", "nbmlops")
    InteractiveShell.clear_instance()


def test_latest_cells_read_the_same_number_of_statements_for_3_or_30_cells(
    home, tmp_path, monkeypatch
):
    statements: dict[int, list[str]] = {3: [], 30: []}
    for cells, seen in statements.items():
        _run_tracked_cells(tmp_path / f"n{cells}.ipynb", cells, monkeypatch)
        connection = nbm.get_store().connection()
        connection.set_trace_callback(seen.append)
        location = payloads.Location(home, tmp_path)
        body = payloads.latest_cells(location, f"n{cells}.ipynb")
        connection.set_trace_callback(None)
        assert len(body["cells"]) == cells and body["cells"]["c1"]["headline"]["key"] == "m1"
    assert len(statements[3]) == len(statements[30]) <= 5


async def test_runs_of_one_notebook(jp_fetch, notebook, two_runs):
    status, body = await get(jp_fetch, "runs", notebook="analysis.ipynb", filter="name = 'train'")
    assert status == 200 and body["total"] == 2
    assert {r["notebook"] for r in body["runs"]} == {str(notebook)}


# -- models and drift ---------------------------------------------------------------------------


@pytest.fixture
def model(home: Path) -> str:
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression().fit([[0.0], [1.0], [0.0], [1.0]], [0, 1, 0, 1])
    nbm.register_model(fitted, "m")
    return "m"


async def test_models_and_one_model_with_versions_and_history(jp_fetch, model):
    status, body = await get(jp_fetch, "models")
    assert status == 200
    assert [(m["name"], m["latest_version"]) for m in body["models"]] == [("m", 1)]
    status, body = await get(jp_fetch, "models", "m")
    assert status == 200 and [v["version"] for v in body["versions"]] == [1]
    assert body["versions"][0]["model_class"].endswith("LogisticRegression")
    assert [e["kind"] for e in body["history"]] == ["registered"]


async def test_unknown_model_is_404(jp_fetch, model):
    status, body = await get(jp_fetch, "models", "nope")
    assert status == 404 and body["type"] == "ModelNotFoundError"


async def test_drift_reports_and_one_report(jp_fetch, two_runs):
    from nbmlops import drift

    small, _ = two_runs
    reference = pd.DataFrame({"age": [float(i) for i in range(200)]})
    current = pd.DataFrame({"age": [float(i) for i in range(100, 300)]})
    report = drift.check_drift(reference, current, fingerprint=True)
    drift.save_report(nbm.get_store(), report, current=current, run_id=small)
    status, body = await get(jp_fetch, "drift", "reports", run_id=small[:6])
    assert status == 200 and len(body["reports"]) == 1
    summary = body["reports"][0]
    assert summary["dataset_drift"] is True and summary["drifted_columns"] == ["age"]
    status, body = await get(jp_fetch, "drift", "reports", summary["report_id"])
    assert status == 200 and [c["column"] for c in body["columns"]] == ["age"]
    assert body["created_at"].endswith("Z")
    status, body = await get(jp_fetch, "drift", "reports", "nope")
    assert status == 404


async def test_a_broken_store_is_500_with_the_reason_and_no_traceback(jp_fetch, home):
    home.mkdir()
    (home / "nbmlops.db").write_text("not a database")
    status, body = await get(jp_fetch, "runs")
    assert status == 500 and body["type"] == "StoreCorruptError"
    assert "is not an SQLite database" in body["error"] and "Traceback" not in json.dumps(body)


# -- which store --------------------------------------------------------------------------------


@pytest.fixture
def no_env_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No NBMLOPS_HOME: the server finds its store by the location rule."""
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    nbm.set_store(None)
    yield
    close_stores()


async def test_without_a_store_lists_are_empty_and_nothing_is_created(
    jp_fetch, jp_root_dir, no_env_store
):
    status, body = await get(jp_fetch, "version")
    assert body["store"] == str(jp_root_dir / ".nbmlops") and body["store_exists"] is False
    assert (await get(jp_fetch, "runs"))[1]["runs"] == []
    assert (await get(jp_fetch, "models"))[1]["models"] == []
    assert (await get(jp_fetch, "cells", "latest", notebook="a.ipynb"))[1]["cells"] == {}
    status, body = await get(jp_fetch, "runs", "abc")
    assert status == 404 and "No nbmlops store at" in body["error"]
    assert not (jp_root_dir / ".nbmlops").exists()


async def test_store_is_found_from_the_notebook_folder(jp_fetch, jp_root_dir, no_env_store):
    project = jp_root_dir / "project"
    with nbm.start_run("in project", store=project / ".nbmlops"):
        pass
    _, body = await get(jp_fetch, "version", path="project/nb.ipynb")
    assert body["store"] == str(project / ".nbmlops") and body["store_exists"] is True
    assert (await get(jp_fetch, "runs", path="project"))[1]["total"] == 1
    assert (await get(jp_fetch, "runs"))[1]["total"] == 0  # the root has no store
    status, body = await get(jp_fetch, "version", path="../elsewhere")
    assert status == 400 and body["parameter"] == "path"


async def test_a_store_link_pointing_outside_the_root_is_refused(
    jp_fetch, jp_root_dir, tmp_path, no_env_store
):
    outside = tmp_path / "outside" / ".nbmlops"
    with nbm.start_run("secret", store=outside):
        pass
    (jp_root_dir / "project").mkdir()
    (jp_root_dir / "project" / ".nbmlops").symlink_to(outside, target_is_directory=True)
    status, body = await get(jp_fetch, "runs", notebook="project/nb.ipynb")
    assert status == 400 and body["parameter"] == "notebook"
    assert f"links to {outside}, outside the server's root folder" in body["error"]
    status, body = await get(jp_fetch, "version", path="project")
    assert status == 400 and "c.NbmlopsExtension.store or NBMLOPS_HOME" in body["error"]


async def test_a_store_above_the_root_is_not_served(jp_fetch, jp_root_dir, no_env_store):
    with nbm.start_run("above", store=jp_root_dir.parent / ".nbmlops"):
        pass
    _, body = await get(jp_fetch, "version")
    assert body["store"] == str(jp_root_dir.resolve() / ".nbmlops") and not body["store_exists"]
    assert (await get(jp_fetch, "runs"))[1]["total"] == 0


def test_jupyter_server_extension_list_shows_the_version():
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
    )
    line = f"nbmlops.jupyter {nbmlops.__version__} \x1b[32mOK\x1b[0m"
    assert line in listed.stdout + listed.stderr


@pytest.mark.parametrize(
    "jp_server_config", [{"NbmlopsExtension": {"store": "stores/team"}}], indirect=True
)
async def test_configured_store_wins(jp_fetch, jp_root_dir, home, jp_server_config):
    team = jp_root_dir / "stores" / "team"
    with nbm.start_run("team run", store=team):
        pass
    _, body = await get(jp_fetch, "version")
    assert body["store"] == str(team) and body["store_exists"] is True
    _, body = await get(jp_fetch, "runs")
    assert [r["name"] for r in body["runs"]] == ["team run"]


# -- the event loop -----------------------------------------------------------------------------


async def test_a_store_call_waiting_on_a_lock_does_not_block_other_requests(jp_fetch, home):
    # A process that dies mid-run leaves a 'running' run; the next read marks it interrupted,
    # which needs the write lock. Holding that lock from a second connection makes the read wait.
    code = "import os, nbmlops as nbm; nbm.start_run('crashed'); os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True)
    lock = sqlite3.connect(home / "nbmlops.db", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    slow = asyncio.ensure_future(get(jp_fetch, "runs"))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    status, _ = await get(jp_fetch, "version")
    assert status == 200 and time.monotonic() - started < 2 and not slow.done()
    lock.execute("ROLLBACK")
    status, body = await slow
    assert status == 200 and body["runs"][0]["status"] == "interrupted"
    lock.close()
