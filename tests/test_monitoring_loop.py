"""The monitoring loop end to end, as `make demo` runs it: 04_monitoring.ipynb executed in a real
kernel, with its real model server on 127.0.0.1, the rules of nbmlops.toml and the retrain
notebook run headless by the monitor, checked from the store afterwards (issue #15)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import nbformat
import pytest

import nbmlops as nbm
from nbmlops.headless import execute_notebook

pytestmark = [pytest.mark.kernel, pytest.mark.slow]
EXAMPLES = Path(__file__).parents[1] / "example_notebooks"


def test_drift_retrains_and_promotes_then_a_retrain_that_cannot_improve_stops_retraining(
    home: Path, tmp_path: Path
) -> None:
    for name in ("04_monitoring.ipynb", "retrain_diabetes.ipynb", "nbmlops.toml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    out = tmp_path / "executed.ipynb"
    execute_notebook(tmp_path / "04_monitoring.ipynb", out, store=home)

    with sqlite3.connect(home / "nbmlops.db") as conn:
        steps = conn.execute(
            "SELECT alert, kind, version FROM monitor_events ORDER BY event_id"
        ).fetchall()
        promoted = conn.execute(
            "SELECT version FROM model_events WHERE name = 'diabetes_live' AND kind = "
            "'alias_set' ORDER BY event_id"
        ).fetchall()
        swapped = conn.execute(
            "SELECT version FROM endpoint_events WHERE kind = 'swapped'"
        ).fetchall()
    assert steps == [
        ("diabetes_live_drift", "fired", 1),
        ("diabetes_live_drift", "notified", 1),
        ("diabetes_live_drift", "retrain_started", 1),
        ("diabetes_live_drift", "retrain_finished", 2),
        ("diabetes_live_drift", "candidate_promoted", 2),
        ("diabetes_live_skew", "fired", 2),
        ("diabetes_live_skew", "notified", 2),
        ("diabetes_live_skew", "retrain_started", 2),
        ("diabetes_live_skew", "retrain_finished", 3),
        ("diabetes_live_skew", "candidate_rejected", 3),
        ("diabetes_live_skew", "retraining_stopped", 2),
        ("diabetes_live_skew", "notified", 2),  # "needs a new approach", on the alert's channels
    ]
    assert promoted == [(1,), (2,)] and swapped == [(2,)]  # the server followed the alias
    last = nbm.alert_events("diabetes_live").iloc[-1]
    assert "retraining stopped, needs a new approach" in last.payload["about"]
    versions = nbm.model_versions("diabetes_live").set_index("version")
    assert versions.loc[3, "status"] == "deprecated"
    assert versions.loc[2, "metrics.mae"] < versions.loc[1, "metrics.mae"]
    skew = nbm.production_skew("diabetes_live/2")
    assert skew.versions[0].significant and skew.features[2] is not None
    executed = nbformat.read(out, as_version=4)
    panel = next(c for c in executed.cells if c.source.startswith("%monitor"))
    html = panel.outputs[0]["data"]["text/html"]
    assert "retraining for alert diabetes_live_skew stopped" in html
    assert out.stat().st_size < 200_000, out.stat().st_size
