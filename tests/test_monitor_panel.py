"""The %monitor panel (issue #15 item 7) on a real store: two registered versions that served
requests written by the server's own log writer at chosen times, labels through the API, drift
reports of served windows, and an alert firing with its retrain steps in monitor_events."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import nbmlops as nbm
from nbmlops import drift, panels
from nbmlops.api._alerts import alert_events
from nbmlops.api._monitoring import log_labels, production_skew
from nbmlops.api._timeline import monitor_timeline
from nbmlops.errors import ModelNotFoundError
from nbmlops.headless import execute_notebook
from nbmlops.monitoring.timeline import timeline
from nbmlops.store import Store
from nbmlops.store.monitor_events import append_event, fire_unless_cooling
from nbmlops.store.predictions import COLUMNS, insert_predictions

HOUR = 3600.0
START = math.floor(time.time() / HOUR) * HOUR - 6 * HOUR  # six whole hours ago
RULES = """
[alerts.m_skew]
model = "m"
when = ["skew.mae > offline.mae * 1.2"]
window = "1h"
cooldown = "6h"
"""


@pytest.fixture
def model(home: Path) -> Path:
    """m/1 (offline mae 0.5) and m/2 (offline mae 0.25), m@champion -> 2, nothing served."""
    X = pd.DataFrame({"a": np.arange(20.0)})
    for slope, mae in ((1.0, 0.5), (2.0, 0.25)):
        with nbm.start_run() as run:
            nbm.log_metrics({"mae": mae})
            nbm.log_model(LinearRegression().fit(X, slope * X.a), "model")
        nbm.register_model(run.run_id, "m")
    nbm.set_alias("m", "champion", 2)
    return home


def _serve(home: Path, version: int, hour: int, n: int, error: float, labelled: int) -> None:
    """``n`` one-row requests to m/``version`` in hour ``hour`` after START; the first
    ``labelled`` get a label ``error`` away from the prediction."""
    rows = []
    for i in range(n):
        row = dict.fromkeys(COLUMNS)
        row.update(request_id=f"{version}-{hour}-{i}", name="m", version=version, status=200)
        row.update(
            at=START + hour * HOUR + i, latency_ms=1.0, n_rows=1, outputs=json.dumps([float(i)])
        )
        rows.append(row)
    insert_predictions(Store.open(home / "nbmlops.db"), rows)
    ids = [r["request_id"] for r in rows[:labelled]]
    log_labels(ids, [float(i) + error for i in range(labelled)])


def _drift_check(home: Path, version: int, hour: int, shift: float) -> None:
    reference = pd.DataFrame({"a": np.linspace(0, 1, 200)})
    report = drift.check_drift(reference, reference + shift, fingerprint=True)
    store = Store.open(home / "nbmlops.db")
    report = drift.save_report(store, report, model_name="m", model_version=version)
    with store.atomic() as conn:  # the window nbm.monitor_drift records with its reports
        conn.execute(
            "UPDATE drift_reports SET window_start = ?, window_end = ? WHERE report_id = ?",
            (START + hour * HOUR, START + (hour + 1) * HOUR, report.report_id),
        )


@pytest.fixture
def loop(model: Path) -> Path:
    """v1 served hours 0-2 on target (all labelled), v2 hours 3-5 twice its offline error
    (half labelled); drift checked each hour, shifted from hour 4; an alert fired ten minutes
    ago and its retrain promoted a candidate."""
    for hour in range(3):
        _serve(model, 1, hour, 40, 0.5, 40)
        _drift_check(model, 1, hour, 0.0)
    for hour in range(3, 6):
        _serve(model, 2, hour, 40, 0.5, 20)
        _drift_check(model, 2, hour, 0.0 if hour < 4 else 2.0)
    store = Store.open(model / "nbmlops.db")
    fired = {"name": "m", "alert": "m_skew", "version": 2, "at": time.time() - 600}
    (model.parent / "nbmlops.toml").write_text(RULES)
    payload = {
        "action": "retrain",
        "window": {"seconds": HOUR},
        "conditions": [{"rule": "skew.mae > offline.mae * 1.2", "passed": True}],
    }
    firing = fire_unless_cooling(store, {**fired, "payload": payload}, 6 * HOUR)
    for kind, extra in (
        ("retrain_started", {"notebook": "retrain.ipynb"}),
        ("retrain_finished", {"candidates": [3]}),
        ("candidate_promoted", {}),
    ):
        append_event(store, {**fired, "kind": kind, "firing_id": firing, "payload": extra})
    return model


def test_static_html_shows_both_versions_the_alert_badge_and_the_retrain(loop: Path):
    panel = panels.monitor_panel("m", window="1h")
    html = panel._repr_mimebundle_()["text/html"]
    assert "⚠ alert m_skew fired 10 min" in html and "in its cooldown until" in html
    assert html.count("data:image/png") == 1
    for text in ("retrain_finished", "candidates [3]", "candidate_promoted", "retrain: skew.mae"):
        assert text in html
    assert "No drift checks" not in html and "No labels yet" not in html
    frame = panel.to_frame()
    assert sorted(set(frame["version"])) == [1, 2] and len(frame) == 6
    assert list(frame["coverage"]) == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5]
    assert panel.figure.axes[2].get_ylabel() == "drift share"


def test_the_panel_and_alert_events_describe_each_event_alike(loop: Path):
    details = monitor_timeline("m").events_frame().query("kind != 'alias_set'")["detail"]
    assert list(details) == list(alert_events("m")["summary"])


def test_timeline_values_are_production_skew_and_the_drift_reports(loop: Path):
    timeline = monitor_timeline("m", window="1h")
    skew = production_skew("m", window="1h").versions
    assert [(p.served, p.offline, p.labelled) for p in timeline.points] == [
        (s.served, s.offline, s.n_labelled) for s in skew
    ]
    v2 = [p for p in timeline.points if p.version == 2]
    assert [p.served for p in v2] == pytest.approx([0.5] * 3) and v2[0].offline == 0.25
    assert v2[0].ci_low == pytest.approx(0.25 + skew[3].ci_low)
    assert [(d.version, d.dataset_drift) for d in timeline.drift] == [
        (1, False), (1, False), (1, False), (2, False), (2, True), (2, True)
    ]  # fmt: skip
    assert [a.alert for a in timeline.active] == ["m_skew"] and not timeline.stopped


def test_the_alert_badge_lasts_its_cooldown_in_nbmlops_toml(loop: Path):
    fired = monitor_timeline("m").active[0]
    assert fired.until - fired.fired_at == 6 * HOUR
    store = Store.open(loop / "nbmlops.db")
    assert timeline(store, "m", now=fired.until + 1).badges() == []
    (loop.parent / "nbmlops.toml").write_text("")  # the alert is gone: its firing's window
    assert monitor_timeline("m").active[0].until - fired.fired_at == HOUR
    (loop.parent / "nbmlops.toml").write_text("[alerts.m_skew]\nwhen = 3\n")
    notes = monitor_timeline("m").notes
    assert notes[0].startswith("Cooldowns taken as each firing's window:") and "toml:2:" in notes[0]


def test_retraining_stopped_is_a_badge_until_a_retrain_starts(model: Path):
    store = Store.open(model / "nbmlops.db")
    base = {"name": "m", "alert": "a", "firing_id": 1, "at": time.time() - 7 * HOUR}
    reason = {"reason": "3 retrains in a row promoted nothing"}
    append_event(store, {**base, "kind": "retraining_stopped", "payload": reason})
    badges = monitor_timeline("m").badges()
    assert len(badges) == 1 and badges[0].startswith("retraining for alert a stopped")
    assert "needs a new approach (3 retrains in a row promoted nothing)" in badges[0]
    append_event(store, {**base, "kind": "retrain_started", "at": time.time()})
    assert monitor_timeline("m").badges() == []


def test_a_model_with_nothing_yet_says_what_to_do(model: Path):
    panel = panels.monitor_panel("m")
    html = panel.to_html()
    assert "No requests logged: serve it with nbm.serve(&#x27;m@champion&#x27;)" in html
    assert "nbm.monitor_drift(&#x27;m&#x27;, window=&#x27;1h&#x27;)" in html
    assert "add an [alerts.m] table to nbmlops.toml and run `nbmlops monitor" in html
    assert "data:image/png" not in html and panel.timeline is not None
    assert panel.timeline.empty and repr(panel).startswith("<MonitorPanel m: 0 windows")


def test_served_without_labels_hints_at_log_labels(model: Path):
    _serve(model, 2, 5, 10, 0.0, 0)
    timeline = monitor_timeline("m", window="1h")
    assert [(p.rows, p.labelled, p.coverage, p.served) for p in timeline.points] == [
        (10, 0, 0.0, None)
    ]
    assert any(h.startswith("No labels yet: log ground truth with nbm.log_labels") for h in
               timeline.hints)  # fmt: skip


def test_a_version_without_an_offline_metric_keeps_its_coverage_with_a_note(model: Path):
    with nbm.start_run() as run:
        nbm.log_metrics({"auc": 0.9})
        nbm.log_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "model")
    nbm.register_model(run.run_id, "m")
    _serve(model, 3, 5, 10, 0.5, 4)
    timeline = monitor_timeline("m", window="1h")
    assert [(p.version, p.labelled, p.coverage, p.served) for p in timeline.points] == [
        (3, 4, 0.4, None)
    ]
    assert timeline.notes[0].startswith("No served metric for m/3: m/3 recorded no offline")


def test_an_unknown_model_is_an_error_naming_the_registered_ones(model: Path):
    with pytest.raises(ModelNotFoundError, match="registered models: m;"):
        panels.monitor_panel("nope")


def test_no_store_and_no_model_show_where_to_start(home: Path):
    panel = panels.monitor_panel()
    assert "No registered model: register one with nbm.register_model" in panel.to_html()


def test_monitor_magic_takes_the_name_and_window(loop: Path, shell):
    panel = shell.run_line_magic("monitor", "m --window 1h")
    assert panel.timeline.window == HOUR and panel.model.value == "m"
    panel.window.value = "6h"
    starts = panel.to_frame()["window_start"].map(lambda t: t.timestamp() % (6 * HOUR))
    assert panel.timeline.window == 6 * HOUR and set(starts) == {0.0}
    with pytest.raises(ValueError, match="window='1hour' is not a duration"):
        shell.run_line_magic("monitor", "m --window 1hour")


def test_an_executed_notebook_keeps_the_static_panel_and_stays_small(loop: Path, tmp_path: Path):
    notebook = tmp_path / "monitor.ipynb"
    cells = ["%load_ext nbmlops", "%monitor m --window 1h"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbformat.write(nb, notebook)
    out = tmp_path / "out.ipynb"
    execute_notebook(notebook, out, store=loop)
    output = nbformat.read(out, as_version=4).cells[1].outputs[0]
    assert "alert m_skew fired" in output.data["text/html"]
    assert out.stat().st_size < 80_000, out.stat().st_size
