"""Datasets in the notebook panel, the ``nbmlops data`` commands and the JupyterLab sidebar's
run details (issue #16 item 7), over real stores with real saved versions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from click.testing import CliRunner
from nbformat.v4 import new_code_cell, new_notebook

import nbmlops as nbm
from jupyterlab_browser import chromium_page, lab_server, open_notebook, wait_for_execution
from nbmlops.cli import main
from nbmlops.errors import DatasetNotFoundError
from nbmlops.jupyter import payloads
from nbmlops.panels import datasets_panel


@pytest.fixture
def customers(home: Path) -> str:
    """customers@1 (3 rows), @2 (one row appended), @3 (a restore of @1); a run that loaded
    @2 and registered a model."""
    from sklearn.dummy import DummyRegressor

    nbm.save_dataset(pd.DataFrame({"id": [1, 2, 3], "x": [0.1, 0.2, 0.3]}), "customers", key="id")
    nbm.save_dataset(pd.DataFrame({"id": [4], "x": [0.4]}), "customers", mode="append")
    with nbm.start_run("train") as run:
        frame = nbm.load_dataset("customers@2")
        run.log_model(DummyRegressor().fit(frame[["x"]], frame["id"]), "m")
    nbm.register_model(run.run_id, "churn")
    nbm.restore_dataset("customers", 1)
    return run.run_id


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": "80"})
    assert result.exit_code == code, result.output
    return result.output


def test_panel_lists_every_dataset_and_renders_without_a_kernel(customers):
    panel = datasets_panel()
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    static = bundle["text/html"]
    assert ">customers<" in static and ">table<" in static and ">on disk (all versions)<" in static
    assert ">3<" in static  # versions
    assert repr(panel) == "<DatasetsPanel: 1 datasets>"


def test_panel_shows_versions_with_cost_and_the_runs_and_models_that_used_one(customers):
    panel = datasets_panel("customers")
    versions = panel.versions_html.value
    assert "customers: 3 versions" in versions and ">added on disk<" in versions
    assert ">append<" in versions and ">restore of @1<" in versions
    assert panel.version.value == "customers@3" and "no run used it yet" in panel.usage_html.value
    panel.version.value = "customers@2"
    assert f">{customers}<" in panel.usage_html.value and ">churn/1<" in panel.usage_html.value
    assert ">loaded<" in panel.to_html()


def test_panel_on_an_empty_folder_creates_no_store(tmp_path, monkeypatch):
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    nbm.set_store(None)
    panel = datasets_panel()
    assert "no datasets yet" in panel.to_html() and list(tmp_path.iterdir()) == []


def test_panel_for_an_unknown_dataset_lists_the_known(customers):
    with pytest.raises(DatasetNotFoundError, match="No dataset 'custmers'; known: customers"):
        datasets_panel("custmers")


def test_data_list_and_show_fit_80_columns(customers):
    listing = invoke("data", "list")
    assert listing.splitlines()[0].split() == [
        "name", "kind", "versions", "rows", "bytes", "on", "disk", "updated"
    ]  # fmt: skip
    shown = invoke("data", "show", "customers")
    assert "all 3 versions: actor" in shown and "restore of @1" in shown
    assert max(len(line) for line in (listing + shown).splitlines()) <= 80


def test_data_show_a_version_says_who_used_it(customers):
    out = invoke("data", "show", "customers@2")
    assert "dataset        customers@2 (table)" in out and "rows           4" in out
    assert "key            id" in out and "added on disk" in out
    used_by = out.split("used by\n", 1)[1]
    assert customers[:8] in used_by and "loaded" in used_by and "churn/1" in used_by
    lines = [line for line in out.splitlines() if not line.startswith("location")]  # copyable
    assert max(len(line) for line in lines) <= 80


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("customers@9", "No dataset version 'customers@9'; known: customers@1, customers@2"),
        ("nope", "No dataset 'nope'; known: customers."),
        ("customers@yesterday", "after '@' put a version number, 'latest' or an ISO time"),
    ],
)
def test_data_show_bad_reference_is_one_clean_line(customers, ref, message):
    out = invoke("data", "show", ref, code=1)
    assert out.startswith("Error: ") and message in out and "Traceback" not in out


def test_data_list_without_a_store_says_so(home):
    out = invoke("data", "list", code=1)
    assert "Error: " in out and "Traceback" not in out


def test_sidebar_run_details_name_the_dataset_versions_the_run_used(customers, home, tmp_path):
    with nbm.start_run("score"):
        nbm.log_dataset(nbm.load_dataset("customers@1"), name="scored")
    newest = nbm.runs()["run_id"][0]
    location = payloads.Location(home, tmp_path)
    assert payloads.run(location, customers)["dataset_versions"] == [
        {"ref": "customers@2", "name": "customers", "version": 2, "how": "loaded", "variable": None}
    ]
    used = payloads.run(location, newest)["dataset_versions"]
    # @3 restored @1: the frame the run read has the content of both.
    assert [(u["ref"], u["how"], u["variable"]) for u in used] == [
        ("customers@1", "loaded", None),
        ("customers@1", "read", "scored"),
        ("customers@3", "read", "scored"),
    ]


def test_panel_diffs_two_chosen_versions(customers):
    panel = datasets_panel("customers")
    panel.old.value, panel.new.value = "customers@1", "customers@2"
    panel.diff_button.click()
    assert "customers@1 &rarr; customers@2" in panel.diff_html.value
    assert "<h4 style='margin:10px 0 4px'>Diff</h4>" in panel.to_html()
    assert ">added<" in panel.diff_html.value and ">1<" in panel.diff_html.value


def _saves_with_appends(count: int) -> None:
    """customers@4..: appends of one row each to @3 (a restore of @1), so the newest version
    spans several files."""
    for i in range(count):
        frame = pd.DataFrame({"id": [10 + i], "x": [float(i)]})
        nbm.save_dataset(frame, "customers", mode="append")


def test_data_diff_of_a_multi_file_table_exits_0_in_a_subprocess(customers, home):
    """Issue #16 item 8: deltalake 1.6.6 aborted at exit (status 134) after reading a
    multi-file table one way; the command reads one, in a process of its own."""
    _saves_with_appends(3)
    done = subprocess.run(
        [sys.executable, "-m", "nbmlops.cli", "data", "diff", "customers@1", "customers@6"],
        capture_output=True,
        text=True,
        env={**os.environ, "NBMLOPS_HOME": str(home), "COLUMNS": "80"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "terminate called" not in done.stderr and done.stderr == ""
    assert done.stdout.startswith("customers@1 -> customers@6: +3 rows, -0 rows, 0 changed")
    assert max(len(line) for line in done.stdout.splitlines()) <= 80


def test_data_diff_lists_changed_values_in_80_columns(customers):
    changed = pd.DataFrame({"id": [1, 2, 3, 4], "x": [0.1, 0.25, 0.3, 0.4]})
    nbm.save_dataset(changed, "customers")
    out = invoke("data", "diff", "customers@2", "customers@4")
    assert out.startswith("customers@2 -> customers@4: +0 rows, -0 rows, 1 changed (x 1)")
    assert out.splitlines()[2].split() == ["id", "change", "column", "old", "new"]
    assert out.splitlines()[3].split() == ["2", "changed", "x", "0.2", "0.25"]
    assert max(len(line) for line in out.splitlines()) <= 80


def test_data_add_checkout_files_with_a_dvc_pointer(home, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.csv").write_text("id\n1\n")
    (raw / "b.csv").write_text("id\n2\n")
    assert invoke("data", "add", str(raw), "raw", "--dvc").startswith("raw@1 (2 files")
    assert (tmp_path / "raw.dvc").read_text().startswith("outs:\n- md5: ")
    (raw / "a.csv").write_text("id\n3\n")
    assert invoke("data", "add", str(raw), "raw").startswith("raw@2 (2 files")
    changed = invoke("data", "diff", "raw@1", "raw@2")
    assert changed.startswith("raw@1 -> raw@2: 0 added, 0 removed, 1 changed, 1 unchanged")
    assert changed.splitlines()[3].split() == ["a.csv", "changed", "5", "5"]
    out = tmp_path / "out"
    assert "raw@1: 2 files" in invoke("data", "checkout", "raw@1", "--to", str(out))
    assert (out / "a.csv").read_text() == "id\n1\n"
    refused = invoke("data", "checkout", "raw@2", "--to", str(out), code=1)
    assert "exist with other content" in refused and "Traceback" not in refused
    invoke("data", "checkout", "raw@2", "--to", str(out), "--force")
    assert (out / "a.csv").read_text() == "id\n3\n"


def test_data_add_table_reads_csv_with_its_key(home, tmp_path):
    (tmp_path / "c.csv").write_text("id,x\n1,0.5\n2,0.7\n")
    assert invoke("data", "add", "c.csv", "c", "--table", "--key", "id").startswith("c@1 (2 rows")
    assert "key            id" in invoke("data", "show", "c@1")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["notes.txt", "t", "--table"], 1, "notes.txt is not a .parquet or .csv file"),
        (["notes.txt", "t", "--key", "id"], 2, "--key is for --table datasets"),
        (["notes.txt", "t", "--table", "--dvc"], 2, "--dvc is for files"),
        (["missing.csv", "t"], 2, "'missing.csv' does not exist"),
    ],
)
def test_data_add_bad_input(home, tmp_path, args, code, message):
    (tmp_path / "notes.txt").write_text("hello")
    out = invoke("data", "add", *args, code=code)
    assert message in out and "Traceback" not in out


SAVE = (
    "import nbmlops as nbm, pandas as pd\n"
    "nbm.save_dataset(pd.DataFrame({'id': [1, 2, 3], 'x': [0.1, 0.2, 0.3]}), 'customers', "
    "key='id')\n"
    "nbm.save_dataset(pd.DataFrame({'id': [4], 'x': [0.4]}), 'customers', mode='append')"
)
FIT = "%%track fit --metrics n\ndf = nbm.load_dataset('customers@2')\nn = len(df)"
PANEL = "from nbmlops.panels import datasets_panel\ndatasets_panel('customers')"


@pytest.mark.browser
def test_sidebar_shows_the_dataset_versions_a_run_used_in_jupyterlab(tmp_path, monkeypatch):
    """In a real JupyterLab: the run's details in the sidebar name customers@2 (loaded), and
    the panel renders as a widget (pictures: NBMLOPS_SCREENSHOTS=1)."""
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    cells = [new_code_cell(s) for s in ("%load_ext nbmlops", SAVE, FIT, PANEL)]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(
        new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), tmp_path / "d.ipynb"
    )
    with lab_server(tmp_path) as lab, chromium_page() as page:
        open_notebook(page, lab, "d.ipynb")
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        code_cells = page.locator(".jp-Notebook .jp-CodeCell")
        wait_for_execution(page, code_cells.nth(3), 4)
        panel = code_cells.nth(3).locator(".jp-OutputArea-output")
        panel.locator("text=customers: 2 versions").wait_for(timeout=20_000)
        _screenshot(panel, "datasets_panel.png")
        page.locator(".lm-TabBar-tab[data-id='nbmlops-runs']").click()
        sidebar = page.locator("#nbmlops-runs")
        sidebar.locator(".nbmlops-run").first.click()
        used = sidebar.locator(".nbmlops-detail .nbmlops-dataset-version")
        used.first.wait_for(timeout=20_000)
        assert used.all_text_contents() == ["customers@2 (loaded)"]
        _screenshot(sidebar, "datasets_sidebar.png")


def _screenshot(locator, name: str) -> None:
    """Keep the picture for the docs when asked (NBMLOPS_SCREENSHOTS=1), as the lab tests do."""
    if os.environ.get("NBMLOPS_SCREENSHOTS") == "1":
        locator.screenshot(path=str(Path(__file__).parents[1] / "docs" / "img" / name))


def test_the_datasets_magic_shows_the_panel(customers, shell):
    every = shell.run_line_magic("datasets", "")
    assert repr(every) == "<DatasetsPanel: 1 datasets>"
    one = shell.run_line_magic("datasets", "customers")
    assert "customers: 3 versions" in one.versions_html.value
