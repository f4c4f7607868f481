"""The JupyterLab extension in a real JupyterLab (and Notebook 7) in Debian's Chromium: a
``%%track`` cell run from the browser gets a badge and a sidebar entry, the kernel stores the
notebook as it was in memory, and the badge opens the cell's history with diffs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import nbmlops as nbm
from jupyterlab_browser import (
    chromium_page,
    lab_server,
    open_notebook,
    replace_source,
    wait_for_execution,
)

pytestmark = pytest.mark.browser

FIT = "%%track fit --metrics mae\nalpha = 0.5\nmae = round(1 / (1 + alpha), 4)"
FIT_EDITED = "%%track fit --metrics mae\nalpha = 1.0\nmae = round(1 / (1 + alpha), 4)"
SCREENSHOTS = Path(__file__).parents[1] / "docs" / "img"


def write_notebook(folder: Path, name: str = "quick.ipynb") -> Path:
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [new_code_cell("%load_ext nbmlops"), new_code_cell(FIT)]
    path = folder / name
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), path)
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder with a notebook; its store is found by the location rule, as a user's would."""
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    nbm.set_store(None)
    write_notebook(tmp_path)
    yield tmp_path
    nbm.set_store(None)


def stored_notebook(run_id: str, store: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    run = nbm.get_run(run_id, store=store)
    [artifact] = [a for a in run.artifacts if a["kind"] == "notebook"]
    content = nbm.get_store(store).objects.path_of(artifact["sha256"]).read_bytes()
    return json.loads(content), artifact["meta"]


def save_screenshot(locator: Any, name: str) -> None:
    """Keep the picture for the README when asked (NBMLOPS_SCREENSHOTS=1, docs/screenshots.py)."""
    if os.environ.get("NBMLOPS_SCREENSHOTS") == "1":
        locator.screenshot(path=str(SCREENSHOTS / name))


def run_load_and_fit(page: Any) -> Any:
    """Run the notebook's two cells as a user would (Shift+Enter twice); its code cells."""
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    cells.nth(0).click()
    page.keyboard.press("Shift+Enter")
    wait_for_execution(page, cells.nth(0), 1)
    page.keyboard.press("Shift+Enter")
    wait_for_execution(page, cells.nth(1), 2)
    return cells


def test_badge_sidebar_snapshot_and_history_in_jupyterlab(project: Path):
    store = project / ".nbmlops"
    with lab_server(project) as lab, chromium_page() as page:
        open_notebook(page, lab, "quick.ipynb")
        cells = run_load_and_fit(page)

        # The badge: status, duration, headline metric, cell version.
        badge = cells.nth(1).locator(".nbmlops-badge")
        badge.wait_for(timeout=20_000)
        assert badge.get_attribute("data-status") == "finished"
        text = badge.text_content() or ""
        assert "finished" in text and "mae 0.6667" in text and "v1 of 1" in text

        # Edit the cell in the browser, do not save, run it again.
        replace_source(page, cells.nth(1), FIT_EDITED)
        page.keyboard.press("Shift+Enter")
        wait_for_execution(page, cells.nth(1), 3)
        page.wait_for_function(
            "el => el.textContent.includes('v2 of 2')", arg=badge.element_handle(), timeout=20_000
        )
        assert "mae 0.5" in (badge.text_content() or "")
        save_screenshot(cells.nth(1), "lab_badges.png")

        # The run stored the notebook as the browser held it, not as saved on disk.
        newest = nbm.runs(store=store)
        assert newest["name"].tolist() == ["fit", "fit"]
        saved_ids = [c.id for c in nbformat.read(project / "quick.ipynb", as_version=4).cells]
        assert newest["cell_id"].tolist() == [saved_ids[1]] * 2
        assert Path(newest["notebook"][0]) == project / "quick.ipynb"
        snapshot, meta = stored_notebook(newest["run_id"][0], store)
        assert [c["source"] for c in snapshot["cells"]][:2] == ["%load_ext nbmlops", FIT_EDITED]
        assert meta == {
            "origin": "front end",
            "notebook": str(project / "quick.ipynb"),
            "unsaved_edits": True,
            "cell_found": True,
            "cell_matches": True,
        }
        assert "alpha = 1.0" not in (project / "quick.ipynb").read_text()

        # The badge opens the cell's history, with the diff of its two versions.
        badge.click()
        dialog = page.locator(".jp-Dialog .nbmlops-history")
        dialog.locator(".nbmlops-diff").wait_for(timeout=20_000)
        assert "2 versions of cell" in (dialog.text_content() or "")
        assert dialog.locator(".nbmlops-diff-del").all_text_contents() == ["-alpha = 0.5\n"]
        assert dialog.locator(".nbmlops-diff-add").all_text_contents() == ["+alpha = 1.0\n"]
        save_screenshot(page.locator(".jp-Dialog-content"), "lab_history.png")
        page.locator(".jp-Dialog button:has-text('Close')").click()

        # The sidebar lists the notebook's runs; two ticked are compared.
        page.locator(".lm-TabBar-tab[data-id='nbmlops-runs']").click()
        sidebar = page.locator("#nbmlops-runs")
        runs = sidebar.locator(".nbmlops-run")
        runs.nth(1).wait_for(timeout=20_000)
        assert runs.count() == 2
        assert "2 runs in quick.ipynb" in (sidebar.locator(".nbmlops-status").text_content() or "")
        runs.nth(0).click()
        sidebar.locator(".nbmlops-detail h4:has-text('Params')").wait_for(timeout=20_000)
        assert "alpha" in (sidebar.locator(".nbmlops-detail").text_content() or "")
        runs.nth(0).locator(".nbmlops-select").check()
        runs.nth(1).locator(".nbmlops-select").check()
        sidebar.locator("button:has-text('Compare 2 runs')").click()
        sidebar.locator(".nbmlops-detail .nbmlops-diff").wait_for(timeout=20_000)
        detail = sidebar.locator(".nbmlops-detail").text_content() or ""
        assert "Params that differ" in detail and "alpha" in detail
        assert sidebar.locator(".nbmlops-best").all_text_contents() == ["0.5"]  # the lower mae
        diff = sidebar.locator(".nbmlops-detail .nbmlops-diff")
        assert diff.locator(".nbmlops-diff-add").all_text_contents() == ["+alpha = 1.0\n"]
        save_screenshot(page, "lab_sidebar.png")

        # A filter narrows the list; a malformed one gets the parser's message, not a crash.
        search = sidebar.locator(".nbmlops-filter")
        search.fill("params.alpha > 0.7")
        search.press("Enter")
        page.wait_for_function(
            "el => el.textContent.startsWith('1 run in')",
            arg=sidebar.locator(".nbmlops-status").element_handle(),
            timeout=20_000,
        )
        search.fill("metrics.mae <")
        search.press("Enter")
        error = sidebar.locator(".nbmlops-status.nbmlops-error")
        error.wait_for(timeout=20_000)
        assert "metrics.mae <" in (error.text_content() or "")
        # "all runs": every run in the store, not only this notebook's.
        search.fill("")
        search.press("Enter")
        sidebar.locator(".nbmlops-all-runs").check()
        page.wait_for_function(
            "el => el.textContent.endsWith('in the store')",
            arg=sidebar.locator(".nbmlops-status").element_handle(),
            timeout=20_000,
        )

        # Renamed in the browser: the kernel is told, and the next run names the new path.
        page.click(".lm-MenuBar-itemLabel:text-is('File')")
        page.click(".lm-Menu-itemLabel:text-is('Rename Notebook…')")
        page.locator(".jp-Dialog input").fill("renamed.ipynb")
        page.locator(".jp-Dialog button:has-text('Rename')").click()
        page.wait_for_selector(".lm-TabBar-tab:has-text('renamed.ipynb')", timeout=20_000)
        cells.nth(1).click()
        page.keyboard.press("Shift+Enter")
        wait_for_execution(page, cells.nth(1), 4)
        newest = nbm.runs(store=store).iloc[0]
        assert (newest["notebook"], newest["experiment"]) == (
            str(project / "renamed.ipynb"),
            "renamed",
        )


def test_run_all_on_a_fresh_kernel_stores_the_unsaved_notebook(project: Path):
    """Run All sends every cell before the kernel has run %load_ext nbmlops: the link to the
    kernel must still be there when the %%track cell is sent."""
    store = project / ".nbmlops"
    with lab_server(project) as lab, chromium_page() as page:
        open_notebook(page, lab, "quick.ipynb")
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        replace_source(page, cells.nth(1), FIT_EDITED)  # not saved
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        wait_for_execution(page, cells.nth(1), 2)
        cells.nth(1).locator(".nbmlops-badge[data-status='finished']").wait_for(timeout=20_000)
    snapshot, meta = stored_notebook(nbm.runs(store=store)["run_id"][0], store)
    assert meta == {
        "origin": "front end",
        "notebook": str(project / "quick.ipynb"),
        "unsaved_edits": True,
        "cell_found": True,
        "cell_matches": True,
    }
    assert snapshot["cells"][1]["source"] == FIT_EDITED
    assert "alpha = 1.0" not in (project / "quick.ipynb").read_text()


def test_notebook_7_shows_the_badge_and_the_sidebar(project: Path):
    with lab_server(project, app="notebook") as lab, chromium_page() as page:
        open_notebook(page, lab, "quick.ipynb", ui="notebooks")
        cells = run_load_and_fit(page)
        badge = cells.nth(1).locator(".nbmlops-badge")
        badge.wait_for(timeout=20_000)
        assert "mae 0.6667" in (badge.text_content() or "")
        _, meta = stored_notebook(
            nbm.runs(store=project / ".nbmlops")["run_id"][0], project / ".nbmlops"
        )
        assert meta["origin"] == "front end" and meta["cell_matches"]
        # Notebook 7 puts the sidebar in its left side panel, opened from the View menu.
        page.click(".lm-MenuBar-itemLabel:text-is('View')")
        page.hover(".lm-Menu-itemLabel:text-is('Left Sidebar')")
        page.click(".lm-Menu-itemLabel:text-is('Show nbmlops runs')")
        page.locator("#nbmlops-runs .nbmlops-run[data-status='finished']").wait_for(timeout=20_000)
        assert page.locator("#nbmlops-runs .nbmlops-run-name").all_text_contents() == ["fit"]


def test_without_the_server_extension_the_sidebar_says_what_to_do(project: Path):
    disabled = "--ServerApp.jpserver_extensions=nbmlops.jupyter=False"
    with lab_server(project, disabled) as lab, chromium_page() as page:
        open_notebook(page, lab, "quick.ipynb")
        page.locator(".lm-TabBar-tab[data-id='nbmlops-runs']").click()
        status = page.locator("#nbmlops-runs .nbmlops-status.nbmlops-error")
        status.wait_for(timeout=20_000)
        assert "server extension is not enabled" in (status.text_content() or "")


def test_both_extensions_are_installed_and_enabled():
    """What `make demo`'s install gives: `jupyter labextension list` and `jupyter server
    extension list` show nbmlops enabled."""
    jupyter = [sys.executable, "-m", "jupyter"]
    lab = subprocess.run([*jupyter, "labextension", "list"], capture_output=True, text=True)
    server = subprocess.run(
        [*jupyter, "server", "extension", "list"], capture_output=True, text=True
    )
    assert "nbmlops v0.1.0 \x1b[32menabled\x1b[0m \x1b[32mOK\x1b[0m" in lab.stdout + lab.stderr
    assert "nbmlops.jupyter \x1b[32menabled\x1b[0m" in server.stdout + server.stderr
    assert f"nbmlops.jupyter {nbm.__version__} \x1b[32mOK\x1b[0m" in server.stdout + server.stderr
