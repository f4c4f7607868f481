"""Late labels and production skew (issue #15 items 1-2) on a real store file: two registered
versions with an offline MAE, requests written by the server's own log writer
(store/predictions.insert_predictions, which the server's batched writer calls), labels through
the API, checked from a second connection and against computations by hand."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics
from sklearn.linear_model import LinearRegression

import nbmlops as nbm
from nbmlops.api._monitoring import log_labels, production_skew
from nbmlops.errors import InvalidValueError, RegistryError
from nbmlops.monitoring import skew as skew_module
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.store import Store, close_stores
from nbmlops.store.labels import SUMS, insert_labels, labelled_sums
from nbmlops.store.predictions import COLUMNS, insert_predictions


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """m/1 (offline mae 0.5) and m/2 (offline mae 0.25, rmse 0.4); m@champion -> 2."""
    home = tmp_path / ".nbmlops"
    for slope, recorded in ((1.0, {"mae": 0.5}), (2.0, {"rmse": 0.4, "mae": 0.25})):
        X = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
        with nbm.start_run(store=home) as run:
            nbm.log_metrics(recorded)
            nbm.log_model(LinearRegression().fit(X, slope * X.a), "model")
        nbm.register_model(run.run_id, "m", store=home)
    nbm.set_alias("m", "champion", 2, store=home)
    yield home
    close_stores()


def _serve(home: Path, version: int, requests: dict[str, list[float]], name: str = "m") -> None:
    rows = []
    for rid, outputs in requests.items():
        row = dict.fromkeys(COLUMNS)
        row.update(request_id=rid, name=name, version=version, at=time.time(), status=200)
        row.update(latency_ms=1.0, n_rows=len(outputs), outputs=json.dumps(outputs))
        rows.append(row)
    insert_predictions(Store.open(home / "nbmlops.db"), rows)


def test_labels_are_matched_by_request_and_row_and_unknown_ids_kept(home: Path) -> None:
    _serve(home, 1, {"r1": [1.0], "r2": [2.0, 3.0]})
    logged = log_labels(
        ["r1", "r2", "ghost", "ghost"], [1.5, 2.5, 9, 8], rows=[0, 1, 0, 1], store=home
    )
    assert (logged.matched, logged.unknown, logged.unknown_ids) == (2, 2, ["ghost"])
    frame = pd.DataFrame({"request_id": ["r2"], "y": [np.float64(4.0)]})
    assert log_labels(frame, store=home, name="other").unknown_ids == ["r2"]
    with sqlite3.connect(home / "nbmlops.db") as conn:
        stored = conn.execute("SELECT request_id, row, label FROM labels ORDER BY label_id")
        assert stored.fetchall() == [
            ("r1", 0, 1.5),
            ("r2", 1, 2.5),
            ("ghost", 0, 9),
            ("ghost", 1, 8),
            ("r2", 0, 4.0),
        ]
        with pytest.raises(sqlite3.IntegrityError, match="labels is append-only"):
            conn.execute("UPDATE labels SET label = 0")


@pytest.mark.parametrize(
    ("ids", "labels", "message"),
    [
        (["r1"], [1.0, 2.0], "1 request ids but 2 labels; give one each"),
        (["r1"], [float("nan")], "a label is a finite number or a text"),
        ([""], [1.0], "a request id is the non-empty text the server returned"),
    ],
)
def test_bad_labels_are_refused_and_nothing_stored(home: Path, ids, labels, message) -> None:
    with pytest.raises(InvalidValueError, match=message):
        log_labels(ids, labels, store=home)
    with sqlite3.connect(home / "nbmlops.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM labels").fetchone() == (0,)


def test_skew_per_version_equals_a_hand_computation_and_later_labels_supersede(home: Path) -> None:
    _serve(home, 1, {"a": [1.0], "b": [2.0, 4.0]})
    _serve(home, 2, {"c": [10.0]})
    log_labels(["a", "b", "b", "c"], [0.0, 2.5, 4.0, 10.0], rows=[0, 0, 1, 0], store=home)
    log_labels(["a"], [1.5], store=home)  # supersedes a's 0.0
    skew = production_skew("m", store=home)
    v1, v2 = skew.versions
    assert (v1.version, v1.metric, v1.n_labelled) == (1, "mae", 3)
    assert v1.served == pytest.approx((0.5 + 0.5 + 0.0) / 3)
    assert v1.difference == pytest.approx(1 / 3 - 0.5)
    assert (v2.version, v2.served, v2.offline) == (2, 0.0, 0.25)
    assert list(skew.to_frame()["version"]) == [1, 2] and "<table>" in skew._repr_html_()
    assert [v.version for v in production_skew("m@champion", store=home).versions] == [2]
    assert production_skew("m/2", metric="rmse", store=home).versions[0].offline == 0.4


def test_few_labels_give_a_wide_interval_and_a_shift_is_significant(home: Path) -> None:
    rng = np.random.default_rng(1)
    outputs = rng.normal(size=200)
    _serve(home, 1, {f"r{i}": [float(y)] for i, y in enumerate(outputs)})
    noise = rng.normal(scale=0.6, size=200)  # E|noise| = 0.6 * sqrt(2/pi) = 0.48 ~ offline 0.5
    log_labels([f"r{i}" for i in range(8)], list(outputs[:8] + noise[:8]), store=home)
    few = production_skew("m/1", store=home).versions[0]
    assert few.n_labelled == 8 and not few.significant
    assert few.ci_low < 0 < few.ci_high and few.ci_high - few.ci_low > 0.3
    log_labels([f"r{i}" for i in range(200)], list(outputs + noise + 1.0), store=home)
    shifted = production_skew("m/1", store=home).versions[0]
    assert shifted.n_labelled == 200 and shifted.significant and shifted.ci_low > 0.3


def test_a_metric_the_version_did_not_record_is_an_error_naming_it(home: Path) -> None:
    _serve(home, 1, {"a": [1.0]})
    log_labels(["a"], [1.0], store=home)
    with pytest.raises(RegistryError, match=r"m/1 recorded no offline rmse .*its metrics: mae"):
        production_skew("m/1", metric="rmse", store=home)
    with pytest.raises(RegistryError, match="no metric 'auc'; use one of mae, mse"):
        production_skew("m", metric="auc", store=home)


def test_a_handful_of_identical_errors_is_never_significant(home: Path) -> None:
    _serve(home, 1, {f"r{i}": [100.0] for i in range(3)})
    log_labels(["r0", "r1", "r2"], [150.0, 150.0, 150.0], store=home)
    few = production_skew("m/1", store=home).versions[0]
    assert few.ci_low == few.ci_high > 0  # a one-point interval: no width to judge by
    assert few.n_labelled == 3 and not few.significant


def test_a_label_that_overtakes_its_request_is_matched_when_the_request_is_written(
    home: Path,
) -> None:
    early = log_labels(["late"], [3.0], store=home)
    assert (early.matched, early.unknown_ids) == (0, ["late"])
    assert production_skew("m/1", store=home).versions[0].n_labelled == 0
    _serve(home, 1, {"late": [1.0]})  # the server's writer flushes after the label arrived
    skew = production_skew("m/1", store=home).versions[0]
    assert (skew.n_labelled, skew.served) == (1, 2.0)


def test_the_newest_label_of_a_row_wins_whichever_order_they_are_written_in(home: Path) -> None:
    _serve(home, 1, {"a": [1.0]})
    store = Store.open(home / "nbmlops.db")
    insert_labels(store, [("a", 0, 5.0, 200.0)])
    insert_labels(store, [("a", 0, 9.0, 100.0)])  # logged later by a process with an older clock
    assert production_skew("m/1", store=home).versions[0].served == 4.0
    insert_labels(store, [("a", 0, 2.0, 300.0), ("a", 0, 3.0, 300.0)])  # same time: the last one
    assert production_skew("m/1", store=home).versions[0].served == 2.0


def _numbers(version: int, y: np.ndarray, outputs: np.ndarray, home: Path) -> None:
    _serve(home, version, {f"v{version}r{i}": [float(p)] for i, p in enumerate(outputs)})
    log_labels([f"v{version}r{i}" for i in range(len(y))], y, store=home)


def _sums(y: np.ndarray, served: np.ndarray) -> dict[str, float]:
    """store.labels.SUMS computed by numpy, for the simulations below."""
    d = y - served
    return {
        "n": len(y), "abs_d": np.abs(d).sum(), "d2": (d**2).sum(), "d4": (d**4).sum(),
        "y": y.sum(), "y2": (y**2).sum(), "y3": (y**3).sum(), "y4": (y**4).sum(),
        "d2_y": (d**2 * y).sum(), "d2_y2": (d**2 * y**2).sum(), "eq": (y == served).sum(),
        "tp": ((y == 1) & (served == 1)).sum(), "fp": ((y != 1) & (served == 1)).sum(),
        "fn": ((y == 1) & (served != 1)).sum(),
    }  # fmt: skip


def _with_offline(home: Path, metric: str, value: float) -> ModelVersion:
    mv = resolve(Store.open(home / "nbmlops.db"), "m/1")
    return dataclasses.replace(mv, metrics={metric: value})


@pytest.mark.parametrize("metric", ["mae", "mse", "rmse", "r2", "accuracy", "f1"])
def test_the_served_metric_is_scikit_learns_and_the_store_sums_are_numpys(
    home: Path, metric: str
) -> None:
    rng = np.random.default_rng(7)
    if metric in ("accuracy", "f1"):
        y = rng.integers(0, 2, size=500).astype(float)
        served = np.where(rng.random(500) < 0.8, y, 1 - y)
    else:
        y = rng.normal(size=500)
        served = y + rng.normal(scale=0.5, size=500)
    _numbers(1, y, served, home)
    stored = labelled_sums(Store.open(home / "nbmlops.db"), "m", 1, list(SUMS))[0].sums
    assert stored == pytest.approx(_sums(y, served), rel=1e-9)
    by_sklearn = {
        "mae": metrics.mean_absolute_error, "mse": metrics.mean_squared_error,
        "rmse": metrics.root_mean_squared_error, "r2": metrics.r2_score,
        "accuracy": metrics.accuracy_score, "f1": metrics.f1_score,
    }[metric](y, served)  # fmt: skip
    skew = skew_module._version_skew(
        _with_offline(home, metric, 0.3), (metric, metric), stored, None, None
    )
    assert skew.served == pytest.approx(by_sklearn, rel=1e-9)
    assert skew.ci_low < skew.difference < skew.ci_high


@pytest.mark.parametrize(("metric", "n"), [("mae", 30), ("mae", 200), ("rmse", 500), ("r2", 500)])
def test_false_alarms_on_unshifted_errors_stay_at_the_nominal_level(
    home: Path, metric: str, n: int
) -> None:
    """4,000 windows of n labelled rows whose errors have the offline metric's true value: the
    95% interval excludes 0 in at most 5.5% of them (it is asymptotic: skew.py's docstring has
    the rates measured over 40,000 windows, 4.9-5.5% here), plus two binomial standard errors."""
    rng = np.random.default_rng(2026)
    true = {"mae": math.sqrt(2 / math.pi), "rmse": 1.0, "r2": 0.5}[metric]
    mv = _with_offline(home, metric, true)
    windows, alarms = 4000, 0
    for _ in range(windows):
        y = rng.normal(size=n)
        served = y + rng.normal(size=n)
        if metric == "r2":  # y = s + e with Var s = Var e: R2 of predicting s is 0.5
            signal = rng.normal(size=n)
            y, served = signal + rng.normal(size=n), signal
        skew = skew_module._version_skew(mv, (metric, metric), _sums(y, served), None, None)
        alarms += skew.significant
    assert alarms / windows <= 0.055 + 2 * math.sqrt(0.055 * 0.945 / windows), alarms


def test_window_gives_the_served_metric_per_version_and_utc_window(home: Path) -> None:
    day = 86400.0
    rows = []
    for i, (at, error) in enumerate([(10 * day + 5, 1.0), (10 * day + 9, 3.0), (11 * day, 0.5)]):
        row = dict.fromkeys(COLUMNS)
        row.update(request_id=f"w{i}", name="m", version=1, at=at, status=200)
        row.update(latency_ms=1.0, n_rows=1, outputs=json.dumps([0.0]))
        rows.append(row)
        rows[-1]["label"] = error
    labels = [r.pop("label") for r in rows]
    insert_predictions(Store.open(home / "nbmlops.db"), rows)
    log_labels([r["request_id"] for r in rows], labels, store=home)
    daily = production_skew("m/1", window="1d", store=home).versions
    assert [(v.window_start, v.window_end, v.served, v.n_labelled) for v in daily] == [
        (10 * day, 11 * day, 2.0, 2),
        (11 * day, 12 * day, 0.5, 1),
    ]
    assert production_skew("m", since=11 * day, store=home).versions[0].n_labelled == 1
    frame = production_skew("m", window="1d", store=home).to_frame()
    assert list(frame["window_start"]) == [10 * day, 11 * day]
    with pytest.raises(ValueError, match="window='soon' is not a duration"):
        production_skew("m", window="soon", store=home)


def test_skew_reports_each_versions_feature_and_signature_skew(home: Path) -> None:
    _serve(home, 1, {"a": [1.0], "b": [2.0]})
    log_labels(["a", "b"], [1.0, 2.5], store=home)
    skew = production_skew("m", store=home)
    assert skew.features == {1: None}  # no profiled traffic: these rows were not served live
    assert skew.signature[1]["requests"] == 2 and skew.signature[1]["signature_errors"] == 0
    assert "features: no training profile or profiled traffic" in repr(skew)
    assert "2 requests" in skew._repr_html_()
    frame = skew.to_frame()
    assert frame["signature_share"].tolist() == [0.0]
    assert not production_skew("m", features=False, store=home).signature


def test_a_request_whose_outputs_are_not_json_never_fails_the_labels(home: Path) -> None:
    _serve(home, 1, {"good": [1.0]})
    row = dict.fromkeys(COLUMNS)
    row.update(request_id="bad", name="m", version=1, at=time.time(), status=200)
    row.update(latency_ms=1.0, n_rows=1, outputs="[np.float64(1.0)]")  # not written by a server
    insert_predictions(Store.open(home / "nbmlops.db"), [row])
    logged = log_labels(["good", "bad"], [2.0, 2.0], store=home)
    assert (logged.matched, logged.unknown, logged.unusable) == (1, 0, 1)  # bad: logged
    assert production_skew("m/1", store=home).versions[0].n_labelled == 1  # only one is usable


def test_a_request_id_logged_twice_is_labelled_once_and_lists_are_not_values(home: Path) -> None:
    _serve(home, 1, {"retried": [1.0], "ok": [3.0]})
    _serve(home, 1, {"retried": [1.0], "multi": [[1.0, 2.0]]})  # a client retried "retried"
    failed = dict.fromkeys(COLUMNS)
    failed.update(request_id="failed", name="m", version=1, at=time.time(), status=500)
    insert_predictions(Store.open(home / "nbmlops.db"), [{**failed, "latency_ms": 1.0}])
    logged = log_labels(
        ["retried", "ok", "multi", "retried", "failed", "ghost"], [2.0, 4.0, 1.0, 5.0, 1.0, 1.0],
        rows=[0, 0, 0, 1, 0, 0], store=home,
    )  # fmt: skip
    # multi: a list output; retried row 1: beyond its outputs; failed: no output at all
    assert (logged.matched, logged.unknown, logged.unusable) == (2, 1, 3)
    skew = production_skew("m/1", store=home).versions[0]
    assert (skew.n_labelled, skew.served) == (2, 1.0)  # retried counted once: |2-1|, |4-3|


def test_labels_logged_before_the_match_table_existed_are_matched_by_the_migration(
    tmp_path: Path,
) -> None:
    from sqlite_utils import Database, Migrations

    from nbmlops.store import schema

    folder = tmp_path / ".nbmlops"
    folder.mkdir()
    old = Database(folder / "nbmlops.db")
    migrations = Migrations(schema.MIGRATION_SET)
    schema.register(migrations)
    migrations.apply(old, stop_before="0011_monitoring")
    old.execute("INSERT INTO models (name, created_at) VALUES ('m', 0)")
    for rid, outputs in (("a", "[1.0]"), ("a", "[1.0]"), ("b", "[[1, 2]]")):
        old.execute(
            "INSERT INTO predictions (request_id, name, version, at, status, latency_ms, outputs)"
            " VALUES (?, 'm', 1, 5.0, 200, 1.0, ?)",
            (rid, outputs),
        )
    for rid, label, at in (("a", 3.0, 1.0), ("a", 2.0, 2.0), ("b", 1.0, 1.0)):
        old.execute("INSERT INTO labels (request_id, row, label, at) VALUES (?, 0, ?, ?)",
                    (rid, label, at))  # fmt: skip
    old.conn.commit()
    old.close()
    Store.open(folder).close()  # migrates
    with sqlite3.connect(folder / "nbmlops.db") as conn:
        matches = conn.execute("SELECT prediction_id, served, label FROM label_matches")
        assert matches.fetchall() == [(1, 1.0, 2.0)]  # the first answer, the newest label


@pytest.mark.parametrize(
    ("recorded", "chosen"),
    [
        ({"train_mae": 0.1, "val_mae": 0.5}, "val_mae"),
        ({"cv_mae": 0.3, "test_mae": 0.4, "mae": 0.2}, "test_mae"),
        ({"mae": 0.2, "train/mae": 0.1}, "mae"),
        ({"eval.mae": 0.3, "holdout_mae": 0.6}, "eval.mae"),
    ],
)
def test_the_offline_metric_is_a_held_out_sets_never_the_training_sets(
    home: Path, recorded: dict[str, float], chosen: str
) -> None:
    mv = dataclasses.replace(resolve(Store.open(home / "nbmlops.db"), "m/1"), metrics=recorded)
    assert skew_module.choose_metric(mv, None) == ("mae", chosen)


def test_only_a_training_metric_is_no_offline_metric_and_other_versions_keep_their_skew(
    home: Path,
) -> None:
    mv = dataclasses.replace(
        resolve(Store.open(home / "nbmlops.db"), "m/1"), metrics={"train_mae": 0.1}
    )
    with pytest.raises(RegistryError, match=r"training metrics such as train_mae do not count"):
        skew_module.choose_metric(mv, None)
    with nbm.start_run(store=home) as run:  # m/3: a bare model, no metric at all
        nbm.log_model(LinearRegression().fit(pd.DataFrame({"a": [0.0, 1.0]}), [0.0, 3.0]), "x")
    nbm.register_model(run.run_id, "m", store=home)
    _serve(home, 2, {"two": [1.0]})
    _serve(home, 3, {"three": [1.0]})
    log_labels(["two", "three"], [1.0, 1.0], store=home)
    skew = production_skew("m", store=home)
    assert [v.version for v in skew.versions] == [2] and list(skew.skipped) == [3]
    assert "v3 skipped: m/3 recorded no offline metric" in repr(skew)
    with pytest.raises(RegistryError, match="m/3 recorded no offline"):
        production_skew("m/3", store=home)


def test_rows_of_a_dataframe_not_labelled_yet_are_left_for_later_and_counted(home: Path) -> None:
    _serve(home, 1, {"a": [1.0], "b": [2.0]})
    frame = pd.DataFrame({"request_id": ["a", "b", "c"], "y": [1.5, np.nan, None]})
    logged = log_labels(frame, store=home)
    assert (logged.matched, logged.missing, logged.unknown) == (1, 2, 0)
    with pytest.raises(InvalidValueError, match="a label is a finite number or a text"):
        log_labels(["b"], [float("nan")], store=home)  # given one by one: a NaN is a mistake
