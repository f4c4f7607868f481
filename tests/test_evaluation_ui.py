"""Evaluation badges in the panels (issue #21 item 5): the runs panel and the models panel show
unseen / leaky / not comparable / unchecked next to metrics, with the data evaluated on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sklearn.dummy import DummyRegressor

import nbmlops as nbm
from nbmlops.listings import latest_evaluations
from nbmlops.store.evaluations import add_evaluation
from nbmlops.widgets.models_panel import ModelsPanel
from nbmlops.widgets.runs_panel import RunsPanel

LEAKY = {"overlap": {"rows": 8, "rows_without_target": 10, "positions": [3]}}


def trained(mae: float) -> str:
    with nbm.start_run() as run:
        nbm.log_metric("mae", mae)
        nbm.log_model(DummyRegressor().fit([[0.0]], [mae]), "model")
    return run.run_id


def evaluated(run_id: str, status: str, *, on: str | None = None, **row: Any) -> int:
    """An evaluation of the model ``run_id`` trained, recorded on run ``on`` (default: it)."""
    flags = {"unseen": (1, 1), "leaky": (0, 1), "not_comparable": (1, 0)}[status]
    record = {"run_id": on or run_id, "model_run_id": run_id, "task": "regression"}
    record |= {"dataset_id": "c" * 32, "n_rows": 200, "status": status, "metrics": {"mae": 1.0}}
    record |= {"unseen": flags[0], "comparable": flags[1], "report": LEAKY, **row}
    return add_evaluation(nbm.get_store(), record)


def test_the_runs_panel_shows_each_runs_newest_badge_before_the_metrics(home: Path):
    leaky, clean, plain = trained(1.0), trained(2.0), trained(3.0)
    evaluated(leaky, "leaky", dataset_ref="wine-test@2")
    evaluated(clean, "leaky")
    evaluated(clean, "unseen")  # the newest counts
    panel = RunsPanel(store=nbm.get_store())
    assert panel.columns[:6] == [
        "run_id",
        "name",
        "status",
        "start_time",
        "duration_s",
        "evaluation",
    ]
    badges = panel.to_frame().set_index("run_id")["evaluation"].fillna("")
    assert badges.to_dict() == {leaky: "leaky", clean: "unseen", plain: ""}
    grid = {w.value for w in panel.grid.children if hasattr(w, "value")}
    badge = next(v for v in grid if isinstance(v, str) and ">leaky</span>" in v)
    assert "title='evaluation 1 on wine-test@2: leaky (10 rows seen in training)'" in badge
    page = panel.to_html()
    assert re.search(r"color:#cf222e;font-weight:bold'>leaky</td>", page)
    assert re.search(r"color:#1a7f37;font-weight:bold'>unseen</td>", page)


def test_without_evaluations_the_runs_panel_has_no_badge_column(home: Path):
    trained(1.0)
    panel = RunsPanel(store=nbm.get_store())
    assert "evaluation" not in panel.columns and "evaluation" not in panel.to_html()


def test_a_models_evaluation_on_another_run_is_the_training_runs_too(home: Path):
    model, scoring = trained(1.0), trained(2.0)
    eid = evaluated(model, "not_comparable", on=scoring, report={"failing_columns": ["ph"]})
    found = latest_evaluations(nbm.get_store(), [model, scoring])
    assert {k: e.evaluation_id for k, e in found.items()} == {model: eid, scoring: eid}
    assert found[model].badge == "not comparable" and found[model].detail == "failing: ph"


def test_the_models_panel_shows_each_versions_badge_and_the_data(home: Path):
    first, second = trained(1.0), trained(2.0)
    nbm.register_model(first, "wine")
    nbm.register_model(second, "wine")
    evaluated(first, "leaky", name="wine", version=1, dataset_ref="wine-test@2")
    page = ModelsPanel("wine", store=nbm.get_store()).to_html()
    head = re.findall(r"<th[^>]*>([^<]*)</th>", page.split("</tr>")[0])
    assert head[6:9] == ["evaluation", "evaluated_on", "metrics.mae"]
    assert "font-weight:bold'>leaky (10 rows seen in training)</td>" in page
    assert ">wine-test@2</td>" in page
