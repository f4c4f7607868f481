"""Monitoring benchmark: a drift window check over 1M served rows against Evidently 0.7, and
production skew over 1M labelled predictions.

    .venv/bin/python benchmarks/bench_monitoring.py [--quick] [--evidently-python PATH]

Drift (``bench_drift_window``): the data of ``bench_drift.py`` (20 numeric + 5 categorical
columns, 8 of them shifted). A model version is registered with 100,000 rows as its training
data (its drift reference); 1,000,000 served rows arrive as 10,000 requests of 100 rows over an
hour and are folded into one traffic profile per minute by the prediction-log writer's
:class:`~nbmlops.monitoring.traffic.TrafficProfiler` (the fold is timed too: it is the writer
thread's share of a request), written to ``traffic_profiles``. Then ``monitor_drift`` checks the
hour, from the store, and saves its report: best of ``--repeats``. Target (issue #15): <= 1 s.
Evidently's ``DataDriftPreset`` runs on the same reference and the same 1M rows read from
Parquet, in its own virtual environment as in ``bench_drift.py``, once; the per-column methods
and verdicts of both are compared.

Skew (``bench_skew``): 1,000,000 single-row requests of two versions logged in the server
writer's batches of 500, then 1,000,000 labels for them through ``nbm.log_labels`` (which stores
them and matches each to its request: the join), then ``nbm.production_skew`` per version from
the store, best of ``--repeats``. Target (issue #15): joining and computing the skew <= 2 s;
the skew is timed apart from the labels' ingest, and the obvious way without a store-side join
(both tables read into pandas, merged on the request id, scikit-learn's MAE per version) beside
it, with a check that both give the same MAE.

Each part is a function returning its figures, so that ``main`` can run several.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_drift import (
    add_evidently_options,
    best_of,
    compare,
    evidently_python_of,
    machine,
    make_data,
    run_evidently,
    truth,
)
from sklearn.dummy import DummyRegressor

import nbmlops as nbm
from nbmlops.monitoring import drift_windows
from nbmlops.monitoring.traffic import TrafficProfiler
from nbmlops.store import open_store
from nbmlops.store import traffic as traffic_sql

HOUR = 3600.0
START = 60.0 * 29_000_000  # an hour aligned to the profiles' minutes


def fold(home: Path, name: str, version: int, served: pd.DataFrame, requests: int) -> float:
    """Fold ``served`` as ``requests`` equal requests spread over an hour, write the profiles;
    returns the seconds the fold took (add + close, not the insert)."""
    store = open_store(home)
    profiler = TrafficProfiler()
    size = len(served) // requests
    frames = [served.iloc[i * size : (i + 1) * size] for i in range(requests)]
    begin = time.perf_counter()
    for i, frame in enumerate(frames):
        profiler.add(store, name, version, None, START + HOUR * i / requests, frame)
    rows = profiler.close(store, START + HOUR, everything=True)
    seconds = time.perf_counter() - begin
    traffic_sql.insert_profiles(store, rows)
    return seconds


def bench_drift_window(
    served_rows: int, training_rows: int, repeats: int, evidently_python: str | None
) -> dict[str, Any]:
    """Figures of the drift half: fold time, check time (and its parts), Evidently's time."""
    reference, _ = make_data(training_rows, seed=1)
    _, served = make_data(served_rows, seed=2)
    requests = max(served_rows // 100, 1)
    out: dict[str, Any] = {"served_rows": served_rows, "requests": requests}
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / ".nbmlops"
        nbm.save_reference(reference, store=home)
        with nbm.start_run(store=home) as run:
            nbm.log_dataset(reference, "X_train")
            nbm.log_model(DummyRegressor().fit(reference, np.zeros(len(reference))), "model")
        version = nbm.register_model(run.run_id, "bench", store=home).version
        out["fold"] = fold(home, "bench", version, served, requests)
        store = open_store(home)
        out["windows"] = len(traffic_sql.profiles_in(store, "bench", version, START, START + HOUR))
        out["merge"], current = best_of(
            repeats,
            lambda: drift_windows.served_profile(store, "bench", version, START, START + HOUR),
        )
        out["check"], result = best_of(
            repeats,
            lambda: drift_windows.monitor_drift(
                store, "bench", version, window=HOUR, end=START + HOUR
            ),
        )
        report = result.versions[0].report
        assert report is not None and current is not None
        out["n_rows"] = result.versions[0].n_rows
        out["drifted"] = set(report.drifted_columns)
        out["profile_kb"] = (
            sum(
                len(str(r.profile))
                for r in traffic_sql.profiles_in(store, "bench", version, START, START + HOUR)
            )
            / out["windows"]
            / 1000
        )
        if evidently_python is not None:
            ev = run_evidently(evidently_python, reference, served, Path(folder))
            out["evidently"] = ev["seconds"]
            out["evidently_version"] = ev["version"]
            out["agreement"] = compare(report, ev)
        store.close()
    return out


def print_drift(t: dict[str, Any]) -> None:
    rows, requests = t["served_rows"], t["requests"]
    print(
        f"fold      {rows:,} rows as {requests:,} requests into {t['windows']} minute profiles: "
        f"{t['fold']:.2f} s ({t['fold'] / requests * 1e6:.0f} us a request on the writer "
        f"thread), {t['profile_kb']:.0f} kB a profile"
    )
    print(
        f"check     monitor_drift over the hour ({t['n_rows']:,} rows), saved: {t['check']:.3f} s"
        f" (reading and pooling the profiles alone {t['merge']:.3f} s); drifted "
        f"{len(t['drifted'])}/25, {'= truth' if t['drifted'] == truth() else 'differs from truth'}"
    )
    ev = t.get("evidently")
    if ev is not None:
        worst, methods, verdicts = t["agreement"]
        print(
            f"Evidently {t['evidently_version']} DataDriftPreset on the same {rows:,} rows: "
            f"{ev:.1f} s | same method on {25 - methods}/25 columns, same verdict on "
            f"{25 - verdicts}/25, largest score difference {worst:.2g}"
        )
    print("\n| target | nbmlops | Evidently 0.7 | ratio | status |")
    print("|---|---|---|---|---|")
    ev_text = "not run" if ev is None else f"{ev:.1f} s"
    ratio = "-" if ev is None else f"{ev / t['check']:.0f}x"
    status = "MET" if t["check"] <= 1.0 else "MISSED"
    print(
        f"| drift window check over {rows:,} served rows <= 1 s | {t['check']:.3f} s | "
        f"{ev_text} | {ratio} | {status} |"
    )


def bench_skew(labelled: int, repeats: int) -> dict[str, Any]:
    """Production skew over ``labelled`` logged single-row requests of two versions, every one
    labelled later: the writer's batched inserts, ``log_labels`` (which stores the labels and
    joins them to their requests), then ``production_skew`` from the store, best of
    ``repeats``; against reading both tables into pandas, merging on the request id and
    computing scikit-learn's MAE per version, the obvious way without a store-side join."""
    import sqlite3

    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import mean_absolute_error

    from nbmlops.store.predictions import COLUMNS, insert_predictions

    home = Path(tempfile.mkdtemp()) / ".nbmlops"
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
    for slope in (1.0, 2.0):
        with nbm.start_run(store=home) as run:
            nbm.log_metrics({"mae": 0.8})
            nbm.log_model(LinearRegression().fit(X, slope * X.a), "model")
        nbm.register_model(run.run_id, "skewed", store=home)
    store = open_store(home)
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=labelled)
    ids = [f"{i:032x}" for i in range(labelled)]
    start = time.time() - 3600
    template = dict.fromkeys(COLUMNS)
    began = time.perf_counter()
    for first in range(0, labelled, 500):  # the writer thread's batch
        insert_predictions(
            store,
            [
                {**template, "request_id": ids[i], "name": "skewed", "version": 1 + i % 2,
                 "at": start + i * 3600 / labelled, "status": 200, "latency_ms": 1.0,
                 "n_rows": 1, "outputs": f"[{float(outputs[i])!r}]"}
                for i in range(first, min(first + 500, labelled))
            ],
        )  # fmt: skip
    write = time.perf_counter() - began
    labels = outputs + rng.normal(size=labelled)
    began = time.perf_counter()
    logged = nbm.log_labels(ids, labels, store=home)
    log = time.perf_counter() - began
    assert logged.matched == labelled, logged
    seconds, skew = best_of(repeats, lambda: nbm.production_skew("skewed", store=home))

    def by_pandas() -> dict[int, float]:
        with sqlite3.connect(home / "nbmlops.db") as conn:
            served = pd.read_sql("SELECT request_id, version, outputs FROM predictions", conn)
            truth_ = pd.read_sql("SELECT request_id, label FROM labels", conn)
        served["served"] = served.outputs.str.slice(1, -1).astype(float)
        joined = served.merge(truth_, on="request_id")
        return {
            int(v): mean_absolute_error(g.label, g.served) for v, g in joined.groupby("version")
        }

    pandas_seconds, maes = best_of(repeats, by_pandas)
    same = all(abs(v.served - maes[v.version]) < 1e-9 for v in skew.versions)
    return {
        "labelled": labelled, "write": write, "log_labels": log, "skew": seconds,
        "pandas": pandas_seconds, "same": same, "skew_repr": repr(skew),
    }  # fmt: skip


def print_skew(t: dict[str, Any]) -> None:
    n = t["labelled"]
    print(f"\nlog       {n:,} requests written by the writer's batches of 500: {t['write']:.1f} s")
    print(f"labels    nbm.log_labels of {n:,} labels (stored and joined): {t['log_labels']:.1f} s")
    print(
        f"skew      nbm.production_skew, 2 versions: {t['skew']:.3f} s; pandas read + merge + "
        f"sklearn MAE: {t['pandas']:.2f} s; same MAE: {t['same']}"
    )
    print(t["skew_repr"])
    status = "MET" if t["skew"] <= 2.0 else "MISSED"
    print("\n| target | nbmlops | pandas merge | ratio | status |")
    print("|---|---|---|---|---|")
    print(
        f"| per-version skew over {n:,} labelled predictions <= 2 s | {t['skew']:.3f} s | "
        f"{t['pandas']:.2f} s | {t['pandas'] / t['skew']:.1f}x | {status} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100,000 served rows")
    parser.add_argument("--repeats", type=int, default=3)
    add_evidently_options(parser)
    args = parser.parse_args()
    evidently_python = evidently_python_of(args)
    print(f"date      {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}")
    print(f"machine   {machine()}")
    print(
        f"versions  python {platform.python_version()}, nbmlops {nbm.__version__}, numpy "
        f"{np.__version__}, pandas {pd.__version__}\n"
    )
    served = 100_000 if args.quick else 1_000_000
    print_drift(bench_drift_window(served, 100_000, args.repeats, evidently_python))
    print_skew(bench_skew(served, args.repeats))


if __name__ == "__main__":
    main()
