"""Regenerate the README screenshots: the panels rendered in real JupyterLab, in Chromium.

    .venv/bin/python docs/screenshots.py     (after make test: jupyterlab, playwright, chromium)
    .venv/bin/python docs/screenshots.py monitor_panel    (only these PNGs)

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
import time
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
    "monitor_panel": "%monitor diabetes --window 1h",
}
HOUR = 3600.0
ALERT = """
[alerts.diabetes_skew]
model = "diabetes"
ref = 2
when = ["skew.mae > offline.mae * 1.2", "labels.count >= 30"]
window = "1h"
cooldown = "6h"
"""


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
    served_hours(folder)


def served_hours(folder: Path, hours: int = 8, shifted_from: int = 5) -> None:
    """For %monitor: the eight hours before the current one served by diabetes/2, written as
    its server writes them (the prediction log, a traffic profile per minute), 60% of requests
    labelled; from hour 5 three inputs are shifted and the model's error grows. Drift is
    checked each hour (nbm.monitor_drift) and an alert on the served MAE is evaluated at each
    hour's end (nbmlops monitor's round, at that moment)."""
    import json

    import numpy as np
    from sklearn.datasets import load_diabetes

    import nbmlops as nbm
    from nbmlops.api._drift import monitor_drift
    from nbmlops.monitoring.alerts import load_alerts
    from nbmlops.monitoring.monitor import evaluate
    from nbmlops.monitoring.traffic import TrafficProfiler
    from nbmlops.store import open_store
    from nbmlops.store.predictions import COLUMNS, insert_predictions
    from nbmlops.store.traffic import insert_profiles

    home = folder / ".nbmlops"
    store = open_store(home)
    rules = folder / "nbmlops.toml"
    rules.write_text(rules.read_text() + ALERT)
    model = nbm.load_model("diabetes/2", store=home)
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    start = (time.time() // HOUR - hours) * HOUR
    for hour in range(hours):
        profiler, rows, labelled = TrafficProfiler(), [], {}
        for i in range(60):
            pick = rng.choice(len(X), 5)
            frame, truth = X.iloc[pick].copy(), y.iloc[pick].to_numpy()
            if hour >= shifted_from:  # a miscalibrated intake: the true outcome is unchanged
                for column in ("bmi", "bp", "s5"):
                    frame[column] += X[column].std()
            at, request_id = start + hour * HOUR + i * 60 + 1, f"sim-{hour}-{i}"
            outputs = model.predict(frame).tolist()
            row = dict.fromkeys(COLUMNS)
            row.update(request_id=request_id, name="diabetes", version=2, at=at, status=200)
            row.update(latency_ms=2.0, format="dataframe_split", n_rows=5)
            row.update(outputs=json.dumps(outputs))
            rows.append(row)
            profiler.add(store, "diabetes", 2, None, at, frame)
            if rng.random() < 0.6:
                labelled[request_id] = truth.tolist()
        insert_predictions(store, rows)
        insert_profiles(store, profiler.close(store, start + (hour + 1) * HOUR, everything=True))
        ids = [r for r, truth in labelled.items() for _ in truth]
        rows_of = [k for truth in labelled.values() for k in range(len(truth))]
        values = [v for truth in labelled.values() for v in truth]
        nbm.log_labels(ids, values, rows=rows_of, store=home)
        end = start + (hour + 1) * HOUR
        monitor_drift("diabetes/2", window="1h", end=end, store=home)
        evaluate(store, load_alerts(rules), now=end)


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
    only = set(sys.argv[1:]) or set(PANELS)
    unknown = only - set(PANELS)
    if unknown:
        raise SystemExit(f"No panel {', '.join(sorted(unknown))}; choose from {', '.join(PANELS)}")
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
                if name not in only:
                    continue
                output = cells.nth(i).locator(".jp-OutputArea")
                output.scroll_into_view_if_needed()
                output.screenshot(path=str(OUT / f"{name}.png"))
                print(f"saved docs/img/{name}.png")
            if "runs_panel" in only:
                click_through_compare(page, cells.nth(2))
        check_jupyterlab_run(folder, notebook)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if only != set(PANELS):
        return
    # The JupyterLab extension's own pictures (sidebar, badges, history) come from its UI test.
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "test_labextension.py")],
        env={**os.environ, "NBMLOPS_SCREENSHOTS": "1"},
        check=True,
    )


if __name__ == "__main__":
    main()
