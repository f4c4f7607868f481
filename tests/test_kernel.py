"""Real kernels: a notebook executed by nbclient, and a client that sends cellId like JupyterLab."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nbmlops as nbm
from nbmlops.headless import _this_python_kernel_manager, execute_notebook

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
    assert forest.params["RandomForestClassifier.n_estimators"] == 50
    assert 0.5 < forest.metrics["accuracy"] <= 1
    kinds = sorted(a["kind"] for a in forest.artifacts)
    assert kinds == ["figure", "model"]
    prepare = nbm.get_run(frame["run_id"][2])
    files = [d for d in prepare.datasets if d["kind"] == "file"]
    assert [Path(f["name"]).name for f in files] == ["wine.csv"]
    produced = {d["dataset_id"] for d in prepare.datasets if d["role"] == "output"}
    consumed = {d["dataset_id"] for d in forest.datasets if d["role"] == "input"}
    assert consumed and consumed <= produced  # lineage: forest read what prepare made


@pytest.fixture
def kernel(home: Path, tmp_path: Path) -> Iterator[Any]:
    km = _this_python_kernel_manager()
    km.start_kernel(cwd=str(tmp_path), env={**os.environ, "NBMLOPS_HOME": str(home)})
    client = km.client()
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
