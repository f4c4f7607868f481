"""Notebooks run by a client with no front end: `nbmlops execute`, nbclient as nbconvert runs it."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import nbmlops as nbm
from nbmlops.headless import execute_notebook

pytestmark = pytest.mark.kernel


def write_notebook(path: Path, *sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return nb


def test_an_executed_notebook_with_a_panel_stays_small(home: Path, tmp_path: Path):
    notebook = tmp_path / "panel.ipynb"
    write_notebook(notebook, "%load_ext nbmlops", "%%track\nx = 1", "%runs")
    out = tmp_path / "out.ipynb"
    execute_notebook(notebook, out, store=home)
    text = out.read_text()
    assert "application/vnd.jupyter.widget-state+json" not in text
    assert "widgets" not in json.loads(text)["metadata"]
    assert out.stat().st_size < 20_000, out.stat().st_size
    panel = nbformat.read(out, as_version=4).cells[2].outputs[0]
    assert "<table" in panel.data["text/html"]  # the static fallback a saved notebook shows


def test_nbmlops_execute_sends_each_cell_id(home: Path, tmp_path: Path):
    notebook = tmp_path / "twins.ipynb"
    nb = write_notebook(notebook, "%load_ext nbmlops", "%%track\nx = 1", "%%track\nx = 1")
    execute_notebook(notebook, store=home)
    assert nbm.runs()["cell_id"].tolist() == [nb.cells[2].id, nb.cells[1].id]


def test_nbconvert_like_execution_finds_the_notebook_and_its_cell_ids(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    # A plain nbclient run, as `jupyter nbconvert --execute` does it: the kernelspec's `python`
    # (this venv's, as when it is activated), no NBMLOPS_NOTEBOOK, no cell ids sent.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{Path.cwd()}")
    monkeypatch.delenv("NBMLOPS_NOTEBOOK", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    notebook = tmp_path / "churn.ipynb"
    nb = write_notebook(notebook, "%load_ext nbmlops", "%%track fit\na = 1", "%%track\nb = 2")
    log = logging.getLogger("nbclient-under-test")
    client = NotebookClient(nb, resources={"metadata": {"path": str(tmp_path)}}, log=log)
    with caplog.at_level(logging.INFO, logger=log.name), client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        nb.cells[1].source = "%%track fit\na = 2"  # edited, not saved, run again
        client.execute_cell(nb.cells[1], 1)
    frame = nbm.runs()
    assert frame["cell_id"].tolist() == [nb.cells[1].id, nb.cells[2].id, nb.cells[1].id]
    assert set(frame["notebook"]) == {str(notebook)}
    assert set(frame["experiment"]) == {"churn"}
    assert "No handler found" not in caplog.text
    assert nbm.cell_history(nb.cells[1].id)["source"].str.contains("a = ").sum() == 2


def test_nbmlops_execute_takes_papermill_parameters(home: Path, tmp_path: Path):
    from click.testing import CliRunner

    from nbmlops.cli import main

    notebook = tmp_path / "params.ipynb"
    nb = write_notebook(notebook, "n = 1\nname = 'a'", "print(n * 2, name, flag)")
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells[1].source = "flag = None\nprint(n * 2, name, flag)"
    nbformat.write(nb, notebook)
    out = tmp_path / "out.ipynb"
    args = ["--store", str(home), "execute", str(notebook), "-o", str(out)]
    result = CliRunner().invoke(main, [*args, "-p", "n", "21", "-p", "name", "b c"])
    assert result.exit_code == 0, result.output
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[1].metadata["tags"] == ["injected-parameters"]
    assert executed.cells[2].outputs[0]["text"] == "42 b c None\n"
    assert executed.metadata["papermill"]["parameters"] == {"n": 21, "name": "b c"}
