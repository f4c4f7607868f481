"""Regenerate the README screenshots: the panels rendered in real JupyterLab, in Chromium.

    .venv/bin/python docs/screenshots.py     (after make test: jupyterlab, playwright, chromium)

It runs the quickstart notebook twice (the second time with the forest cell edited, so there is a
cell history), opens a notebook of panels in a live JupyterLab, runs it, and saves one PNG per
panel under docs/img/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from jupyterlab_browser import (  # noqa: E402
    chromium_page,
    lab_server,
    open_notebook,
    wait_for_execution,
)

OUT = ROOT / "docs" / "img"
PANELS = {
    "runs_panel": "%runs",
    "compare_metrics": (
        "panel = nbm.runs_panel()\n"
        "panel.select(*panel.view.run_id[:4])\n"
        "panel.compare()\n"
        "panel.compare_view.tabs.selected_index = 1\n"
        "panel"
    ),
    "compare_code": (
        "forest = nbm.runs(\"name = 'forest' AND experiment = '01_quickstart'\").run_id\n"
        "view = nbm.compare_panel(forest[1], forest[0])\n"
        "view.tabs.selected_index = 5\n"
        "view"
    ),
    "compare_parallel": (
        "quick = \"experiment = '01_quickstart' AND name IN ('forest', 'baseline')\"\n"
        "view = nbm.compare_panel(*nbm.runs(quick).run_id)\n"
        "view.parallel_metric.value = 'accuracy'\n"
        "view.tabs.selected_index = 3\n"
        "view"
    ),
    "cell_history": "%cellhistory {forest}",
    "lineage": "nbm.lineage(nbm.runs(\"name = 'prepare'\").run_id[0])",
    "drift_panel": (
        "from sklearn.datasets import load_wine\n"
        "wine = load_wine(as_frame=True).frame.drop(columns='target')\n"
        "reference = wine.sample(frac=0.5, random_state=0)\n"
        "current = wine.drop(reference.index)\n"
        "current['alcohol'] += 2 * wine['alcohol'].std()  # a shifted feature\n"
        "%drift reference current"
    ),
    "models_panel": (
        "models = nbm.models_panel('diabetes')\nmodels.version.value = 2\nmodels.evaluate()\nmodels"
    ),
}


def prepare_store(folder: Path) -> None:
    from nbmlops.headless import execute_notebook

    shutil.copytree(ROOT / "example_notebooks" / "data", folder / "data")
    quickstart = folder / "01_quickstart.ipynb"
    shutil.copy(ROOT / "example_notebooks" / "01_quickstart.ipynb", quickstart)
    execute_notebook(quickstart)
    notebook = nbformat.read(quickstart, as_version=4)
    for cell in notebook.cells:
        cell.source = cell.source.replace("n_estimators = 50", "n_estimators = 150").replace(
            "max_depth = 2", "max_depth = 3"
        )
    nbformat.write(notebook, quickstart)
    execute_notebook(quickstart)
    shutil.copy(ROOT / "example_notebooks" / "nbmlops.toml", folder / "nbmlops.toml")
    for name in ("02_registry.ipynb", "03_serving.ipynb"):  # 03: the panel's endpoints
        shutil.copy(ROOT / "example_notebooks" / name, folder / name)
        execute_notebook(folder / name)


def panels_notebook(folder: Path) -> Path:
    import nbmlops as nbm

    forest = nbm.runs(
        "name = 'forest' AND experiment = '01_quickstart'", store=folder / ".nbmlops"
    ).run_id[0]
    cells = [
        new_code_cell("%load_ext nbmlops\nimport nbmlops as nbm"),
        new_code_cell("%%track in_jupyterlab\nlab_param = 1"),
    ]
    cells += [new_code_cell(code.format(forest=forest)) for code in PANELS.values()]
    path = folder / "panels.ipynb"
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), path)
    return path


def click_through_compare(page: Any, runs_cell: Any) -> None:
    """As a user would: tick two runs in the %runs panel, press *compare selected*, open the
    Metrics tab; the result replaces runs_panel.png."""
    output = runs_cell.locator(".jp-OutputArea")
    boxes = output.locator(".widget-checkbox input[type=checkbox]")
    # Newest first: the JupyterLab cell, the registry notebook's two runs, then the second and
    # first quickstart runs; tick the two quickstart forests (rows 3 and 6).
    boxes.nth(3).check()
    boxes.nth(6).check()
    output.locator("button:has-text('compare selected')").click()
    output.locator("text=Comparing 2 runs").wait_for(timeout=30_000)
    output.locator(".lm-TabBar-tab:has-text('Metrics')").click()
    output.locator("img[src^='data:image/png']").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    output.scroll_into_view_if_needed()
    output.screenshot(path=str(OUT / "runs_panel.png"))
    print("saved docs/img/runs_panel.png (two runs ticked and compared in the browser)")


def check_jupyterlab_run(folder: Path, notebook: Path) -> None:
    """The %%track cell run by JupyterLab names its notebook and the front end's cell id."""
    import nbmlops as nbm

    run = nbm.runs("name = 'in_jupyterlab'", store=folder / ".nbmlops").iloc[0]
    saved_ids = [cell.id for cell in nbformat.read(notebook, as_version=4).cells]
    assert Path(run["notebook"]).resolve() == notebook.resolve(), run["notebook"]
    assert run["cell_id"] == saved_ids[1], (run["cell_id"], saved_ids)
    print(f"JupyterLab run {run['run_id']}: notebook {run['notebook']}, cell {run['cell_id']}")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="nbmlops-shots-"))
    try:
        prepare_store(folder)
        notebook = panels_notebook(folder)
        with lab_server(folder) as lab, chromium_page(1400, 2200) as page:
            open_notebook(page, lab, notebook.name)
            page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
            page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            count = cells.count()
            try:
                wait_for_execution(page, cells.nth(count - 1), count, timeout=180_000)
            except Exception:
                page.screenshot(path="/tmp/nbmlops-screens-failure.png", full_page=True)
                raise
            page.wait_for_timeout(3000)  # widgets render after the outputs arrive
            for i, name in enumerate(PANELS, start=2):
                output = cells.nth(i).locator(".jp-OutputArea")
                output.scroll_into_view_if_needed()
                output.screenshot(path=str(OUT / f"{name}.png"))
                print(f"saved docs/img/{name}.png")
            click_through_compare(page, cells.nth(2))
        check_jupyterlab_run(folder, notebook)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # The JupyterLab extension's own pictures (sidebar, badges, history) come from its UI test.
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "test_labextension.py")],
        env={**os.environ, "NBMLOPS_SCREENSHOTS": "1"},
        check=True,
    )


if __name__ == "__main__":
    main()
