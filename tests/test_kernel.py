"""Real kernels: a notebook executed by nbclient, and a client that sends cellId like JupyterLab."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

import nbmlops as nbm
from nbmlops.headless import _this_python_kernel_manager, execute_notebook

pytestmark = pytest.mark.kernel

EXAMPLES = Path(__file__).parents[1] / "example_notebooks"


def test_quickstart_notebook_records_runs_with_no_logging_code(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the kernel runs in the notebook's folder, not here
    shutil.copytree(EXAMPLES / "data", tmp_path / "data")
    notebook = tmp_path / "01_quickstart.ipynb"
    shutil.copy(EXAMPLES / "01_quickstart.ipynb", notebook)
    assert "log_" not in notebook.read_text()

    execute_notebook(notebook, store=home)

    frame = nbm.runs()
    assert frame["name"].tolist() == ["forest", "baseline", "prepare"]
    assert set(frame["status"]) == {"finished"}
    assert set(frame["notebook"]) == {str(notebook)}
    forest = nbm.get_run(frame["run_id"][0])
    # n_estimators = 50, then RandomForestClassifier(n_estimators=n_estimators): one param
    assert forest.params["n_estimators"] == 50
    assert "RandomForestClassifier.n_estimators" not in forest.params
    assert 0.5 < forest.metrics["accuracy"] <= 1
    kinds = sorted(a["kind"] for a in forest.artifacts)
    assert kinds == ["figure", "model", "notebook"]
    prepare = nbm.get_run(frame["run_id"][2])
    files = [d for d in prepare.datasets if d["kind"] == "file"]
    assert [Path(f["name"]).name for f in files] == ["wine.csv"]
    produced = {d["dataset_id"] for d in prepare.datasets if d["role"] == "output"}
    consumed = {d["dataset_id"] for d in forest.datasets if d["role"] == "input"}
    assert consumed and consumed <= produced  # lineage: forest read what prepare made


@pytest.fixture
def kernel(home: Path, tmp_path: Path) -> Iterator[Any]:
    km = _this_python_kernel_manager()
    # As jupyter_server starts it: JPY_SESSION_NAME tells the kernel a front end may listen.
    session = str(tmp_path / "session.ipynb")
    km.start_kernel(
        cwd=str(tmp_path),
        env={**os.environ, "NBMLOPS_HOME": str(home), "JPY_SESSION_NAME": session},
    )
    client = km.blocking_client()  # the manager's own client is asynchronous, as nbclient's
    client.start_channels()
    client.wait_for_ready(timeout=60)
    yield client
    client.stop_channels()
    km.shutdown_kernel(now=True)


def execute(client: Any, code: str, cell_id: str | None = None) -> dict[str, Any]:
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    metadata = {"cellId": cell_id} if cell_id else {}
    msg = client.session.msg("execute_request", content, metadata=metadata)
    client.shell_channel.send(msg)
    while True:
        reply = client.get_shell_msg(timeout=60)
        if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
            return dict(reply["content"])


def test_cell_id_sent_by_the_front_end_names_the_cell(kernel: Any):
    assert execute(kernel, "%load_ext nbmlops")["status"] == "ok"
    assert execute(kernel, "%%track\nalpha = 0.3", cell_id="lab-cell-7")["status"] == "ok"
    assert execute(kernel, "%%track\nalpha = 0.4", cell_id="lab-cell-7")["status"] == "ok"
    reply = execute(kernel, "%%track\n1 / 0", cell_id="lab-cell-8")
    assert reply["status"] == "error" and reply["ename"] == "ZeroDivisionError"
    frame = nbm.runs()
    assert frame["cell_id"].tolist() == ["lab-cell-8", "lab-cell-7", "lab-cell-7"]
    assert frame["status"].tolist() == ["failed", "finished", "finished"]
    history = nbm.cell_history("lab-cell-7")
    assert history["source"].tolist() == ["%%track\nalpha = 0.3", "%%track\nalpha = 0.4"]


def announced_link(client: Any) -> str:
    """The comm id of the link the kernel opens when nbmlops loads (as JupyterLab sees it)."""
    while True:
        message = client.get_iopub_msg(timeout=30)
        content = message["content"]
        if message["msg_type"] == "comm_open" and content["target_name"] == "nbmlops":
            assert content["data"]["kind"] == "hello"
            return str(content["comm_id"])


def send_to_link(client: Any, comm_id: str, data: dict[str, Any]) -> None:
    client.shell_channel.send(client.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))


def notebook_json(*cells: tuple[str, str]) -> dict[str, Any]:
    return {
        "cells": [
            {
                "id": cell_id,
                "cell_type": "code",
                "source": source,
                "metadata": {},
                "execution_count": 4,
                "outputs": [{"output_type": "stream", "name": "stdout", "text": "old output"}],
            }
            for cell_id, source in cells
        ],
        "metadata": {"kernelspec": {"name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def stored_notebook(run: nbm.Run) -> tuple[dict[str, Any], dict[str, Any]]:
    """The notebook snapshot a run stored: (its JSON, the artifact's meta)."""
    import json

    [artifact] = [a for a in run.artifacts if a["kind"] == "notebook"]
    content = nbm.get_store().objects.path_of(artifact["sha256"]).read_bytes()
    return json.loads(content), artifact["meta"]


def test_the_front_end_gives_the_kernel_the_notebook_as_it_is_in_memory(
    kernel: Any, tmp_path: Path
):
    assert execute(kernel, "%load_ext nbmlops")["status"] == "ok"
    link = announced_link(kernel)
    # Never saved: the file does not exist, only the front end knows these cells.
    path = str(tmp_path / "unsaved.ipynb")
    cells = [("prep", "x = 20"), ("train", "%%track\ny = x + 1")]
    send_to_link(kernel, link, {"kind": "path", "path": path})
    send_to_link(
        kernel, link, {"kind": "snapshot", "path": path, "notebook": notebook_json(*cells)}
    )
    assert execute(kernel, "x = 20", cell_id="prep")["status"] == "ok"
    assert execute(kernel, "%%track\ny = x + 1", cell_id="train")["status"] == "ok"

    run = nbm.get_run(nbm.runs()["run_id"][0])
    assert run.info["notebook"] == path
    assert run.info["experiment"] == "unsaved"  # named after the notebook the front end gave
    notebook, meta = stored_notebook(run)
    assert [(c["id"], c["source"]) for c in notebook["cells"]] == cells
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in notebook["cells"])
    assert meta["origin"] == "front end"
    assert meta["cell_found"] and meta["cell_matches"]

    # An edit in the front end, sent before the cell runs again, is what the next run stores.
    edited = [("prep", "x = 30"), ("train", "%%track\ny = x + 2")]
    send_to_link(
        kernel,
        link,
        {"kind": "snapshot", "path": path, "notebook": notebook_json(*edited), "dirty": True},
    )
    assert execute(kernel, "%%track\ny = x + 2", cell_id="train")["status"] == "ok"
    newer = nbm.get_run(nbm.runs()["run_id"][0])
    notebook, meta = stored_notebook(newer)
    assert [c["source"] for c in notebook["cells"]] == ["x = 30", "%%track\ny = x + 2"]
    assert meta["unsaved_edits"] is True and meta["cell_matches"]


def test_a_bad_front_end_message_warns_once_and_the_cell_still_runs(kernel: Any, tmp_path: Path):
    assert execute(kernel, "%load_ext nbmlops")["status"] == "ok"
    link = announced_link(kernel)
    send_to_link(kernel, link, {"kind": "snapshot", "path": "x.ipynb", "notebook": {"cells": 3}})
    msg = kernel.execute("%%track\nz = 5\nprint(z)")
    warnings, printed = [], []
    while True:
        message = kernel.get_iopub_msg(timeout=30)
        if message["parent_header"].get("msg_id") != msg:
            continue
        if message["msg_type"] == "stream":
            target = warnings if message["content"]["name"] == "stderr" else printed
            target.append(message["content"]["text"])
        if message["msg_type"] == "status" and message["content"]["execution_state"] == "idle":
            break
    assert "5\n" in "".join(printed)
    [warning] = [w for w in warnings if "nbmlops warning" in w]
    assert "JupyterLab extension sent a message nbmlops cannot use" in warning
    assert "'cells' list" in warning
    assert nbm.runs()["status"].tolist() == ["finished"]


def saved_notebook(folder: Path) -> Path:
    """A saved notebook with one %%track cell."""
    notebook = folder / "saved.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext nbmlops"),
        nbformat.v4.new_code_cell("%%track\nq = 1"),
    ]
    nbformat.write(nb, notebook)
    return notebook


def test_without_a_front_end_the_saved_notebook_is_the_snapshot(home: Path, tmp_path: Path):
    execute_notebook(saved_notebook(tmp_path), store=home)
    run = nbm.get_run(nbm.runs()["run_id"][0])
    stored, meta = stored_notebook(run)
    assert [c["source"] for c in stored["cells"]] == ["%load_ext nbmlops", "%%track\nq = 1"]
    assert meta["origin"] == "saved file" and meta["cell_matches"]
    assert run.notebook() == stored


def test_nbmlops_notebook_writes_the_notebook_a_run_belonged_to(home: Path, tmp_path: Path):
    from click.testing import CliRunner

    from nbmlops.cli import main

    execute_notebook(saved_notebook(tmp_path), store=home)
    run_id = nbm.runs()["run_id"][0]
    out = tmp_path / "as_it_ran.ipynb"
    cli = CliRunner()
    result = cli.invoke(main, ["notebook", run_id, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "from the saved file" in result.output
    written = nbformat.read(out, as_version=4)
    nbformat.validate(written)
    assert [c.source for c in written.cells] == ["%load_ext nbmlops", "%%track\nq = 1"]
    again = cli.invoke(main, ["notebook", run_id, "-o", str(out)])
    assert again.exit_code != 0 and "pass --force" in again.output
    with nbm.start_run("script") as script:
        pass
    missing = cli.invoke(main, ["notebook", script.run_id, "-o", str(tmp_path / "x.ipynb")])
    assert missing.exit_code != 0 and "stored no notebook" in missing.output


def test_beyond_sklearn_notebook_tracks_three_libraries_and_serves_the_best(
    home: Path, tmp_path: Path
):
    for name in ("05_beyond_sklearn.ipynb", "mlp.py"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    execute_notebook(tmp_path / "05_beyond_sklearn.ipynb", store=home)
    runs = nbm.runs().set_index("name")
    assert set(runs.index) == {"forest", "xgboost", "mlp"}

    def model_formats(name: str) -> set[str]:
        run = nbm.get_run(runs.loc[name, "run_id"])
        return {a["meta"]["format"] for a in run.artifacts if a["kind"] == "model"}

    formats = {name: model_formats(name) for name in runs.index}
    assert formats["xgboost"] == {"xgboost-ubj"} and formats["mlp"] == {"torch-safetensors"}
    assert len(nbm.get_run(runs.loc["mlp", "run_id"]).metric_history("losses")) == 1500
    xgb_curve = nbm.get_run(runs.loc["xgboost", "run_id"]).metric_history("validation_0-rmse")
    assert len(xgb_curve) > 30
    served = nbm.endpoints("progression")
    assert len(served) == 1 and served["state"].tolist() == ["stopped"]


def test_data_versions_notebook_finds_restores_and_reads_the_champions_data(
    home: Path, tmp_path: Path
):
    """Issue #16's "done when", as `make demo` runs it."""
    shutil.copy(EXAMPLES / "06_data_versions.ipynb", tmp_path / "06_data_versions.ipynb")
    shutil.copytree(EXAMPLES / "data", tmp_path / "data")
    execute_notebook(tmp_path / "06_data_versions.ipynb", store=home)
    assert [v.mode for v in nbm.dataset_versions("patients")] == [
        "overwrite",
        "append",
        "overwrite",
        "restore",
    ]
    assert nbm.data_lineage("patients_model@champion")["ref"].tolist() == ["patients@1"]
    trained = {m: nbm.get_model_version(f"patients_model/{m}").training_data for m in (1, 2, 3)}
    assert trained == {m: {"patients": f"patients@{m}"} for m in (1, 2, 3)}
    diff = nbm.dataset_diff("patients@1", "patients@3")
    assert (diff.added, diff.removed, diff.changed) == (100, 0, 5)
    assert nbm.get_dataset("patients@4").fingerprint == nbm.get_dataset("patients@1").fingerprint
    assert nbm.get_dataset("raw_files").n_rows == len(list((EXAMPLES / "data").iterdir()))


def test_evaluation_notebook_refuses_the_leaky_split_and_promotes_on_the_clean_one(
    home: Path, tmp_path: Path
):
    """Issue #21's "done when", as `make demo` runs it."""
    for name in ("07_evaluation.ipynb", "nbmlops.toml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    executed = execute_notebook(tmp_path / "07_evaluation.ipynb", store=home)
    summary = "".join(
        o.get("text", "") for o in executed.cells[3].outputs if o.get("name") == "stdout"
    ) or str(executed.cells[3].outputs)
    assert "(leaky: 30 rows seen in training)" in summary
    first, second = nbm.evaluations("cancer/1")
    assert (first.status, first.n_rows, first.overlap["rows_without_target"]) == ("leaky", 144, 30)
    assert (second.status, second.dataset_ref) == ("unseen", "cancer_test@1")
    history = nbm.model_history("cancer")
    promotions = history[history["kind"] == "promotion"]
    assert [p["outcome"] for p in promotions["payload"]] == ["rejected", "promoted"]
    assert nbm.get_model_version("cancer@champion").version == 1


def test_feature_store_notebook_trains_from_a_point_in_time_set_and_serves_the_same_values(
    home: Path, tmp_path: Path
):
    """Issue #17's "done when", as `make demo` runs it."""
    shutil.copy(EXAMPLES / "08_feature_store.ipynb", tmp_path / "08_feature_store.ipynb")
    execute_notebook(tmp_path / "08_feature_store.ipynb", store=home)
    listed = nbm.features().set_index("name")
    assert listed.loc["driver_hourly", "version"] == 2
    assert listed.loc["driver_rating", "models"] == ["accept/1"]
    for view in ("driver_hourly@1", "driver_rating"):
        assert nbm.check_feature_skew(view).ok
    online = nbm.online_features(["driver_hourly@1:acc_rate"], [{"driver_id": 1001}])
    assert online.status[0]["acc_rate"] == "present"


def test_team_sync_notebook_pushes_pulls_a_teammates_run_and_mlflow_loads_the_champion(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Issue #19's "done when", as `make demo` runs it (example_notebooks/with_mlflow_server.py
    sets these two variables there)."""
    from mlflow_server import mlflow_venv, running_server

    for name in ("nbmlops.toml", "02_registry.ipynb", "09_team_sync.ipynb"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    execute_notebook(tmp_path / "02_registry.ipynb", store=home)
    with running_server(tmp_path / "mlflow") as server:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("NBMLOPS_DEMO_MLFLOW_PYTHON", str(mlflow_venv() / "bin" / "python"))
        executed = execute_notebook(tmp_path / "09_team_sync.ipynb", store=home)
    text = "".join(
        output.get("text", "") for cell in executed.cells for output in cell.get("outputs", [])
    )
    assert "Pushed to" in text and "(0 created, 0 with something new)" in text
    pulled = nbm.runs("name = 'bob-lasso'")
    assert str(pulled["tags.nbmlops.pulled_from"][0]).startswith(server.url)
    [mlflow_line] = [line for line in text.splitlines() if line.startswith("MLflow :")]
    [nbmlops_line] = [line for line in text.splitlines() if line.startswith("nbmlops:")]
    assert mlflow_line.split(":", 1)[1] == nbmlops_line.split(":", 1)[1]
