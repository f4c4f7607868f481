"""Feature store benchmark: nbmlops against Feast side by side, correctness counted (issue #17).

Run it directly, with Feast in its own venv (never in nbmlops' venv)::

    python3.11 -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip install 'feast[duckdb]'
    .venv/bin/python benchmarks/bench_features.py [--quick | --large] [--feast-python PATH]

The data, made once per run by this process and written as Parquet in a temporary folder that
both sides read: N drivers (10,000), feature rows (1M; ``--large`` 10M) with microsecond event
times spread over a window, a created time a little after each, 10 float64 features; 2% of the
rows repeat an earlier row's (driver, event time) with a later created time and other values.
The window is sized so that about 30% of the entity rows (100k; ``--large`` 1M; random drivers,
random times) have no feature row inside the TTL of 2 h. Rows are shuffled.

Cases (ratio = Feast / nbmlops for times, nbmlops / Feast for rates):

a. point-in-time join of 3 features: Feast's ``get_historical_features(...).to_df()`` (default
   offline store, ``dask``) against ours; time (best of the repeats) and the child's peak RSS.
   Target: >= 20x faster. Then **correctness**: an independent DuckDB window-function query in
   this process (not our engine) computes the exact semantics of issue #17 item 2 (event time in
   [T - ttl, T], latest event time wins, ties by the latest created time, left join), and every
   entity row of each side's output is compared with it: rows dropped, rows repeated, values
   that differ, and among those the created-time ties broken the wrong way. Target: 0 for us.
   With ``--large`` each join runs under a memory cap (``--cap-gb``, default 12): a side that
   passes it is stopped and reported "killed at X GB" (target: ours <= 3 s in <= 4 GB).
b. online reads, 1 entity x 3 features and 1 entity x 10 features: p50/p99 over 2,000 calls
   with random drivers, after materialising (Feast: SQLite online store). Target: our p99 <= 1/2
   of Feast's.
c. materialise every feature row into the online store: rows/s. Target: >= 2x Feast's rate.

Each side's cases run in child processes of their own (a join apart from the online cases, so
its peak RSS is the join's); the nbmlops side runs in this venv, Feast's with
``--feast-python``. Feast reads the Parquet files itself (a ``FileSource``); our side is handed
the same files. The files are in the page cache (written just before).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _common import (
    child_env,
    fmt_time,
    machine_lines,
    machine_load,
    run_side,
    table_lines,
    timed,
)

SCRIPT = Path(__file__).resolve()
DEFAULT_FEAST = "/tmp/feast-venv/bin/python"
FEATURES = 10
JOINED = 3  # features in the point-in-time join
NO_FEATURE_SHARE = 0.30  # entity rows with no feature inside the TTL, by design of the window
ENTITY_REPEATS = 0.01  # entity rows that repeat another's (driver, time)
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

Timings = dict[str, Any]


@dataclass(frozen=True)
class Sizes:
    drivers: int = 10_000
    entity_rows: int = 100_000
    feature_rows: int = 1_000_000
    duplicate_share: float = 0.02
    ttl_seconds: int = 7_200
    joins: int = 3  # repeats of the point-in-time join, best taken
    online_calls: int = 2_000
    cap_gb: float = 0.0  # a join child is stopped past this RSS (0: no cap)
    data: str = ""  # the folder of the Parquet files, set by the parent

    @classmethod
    def quick(cls) -> Sizes:
        return cls(drivers=1_000, entity_rows=10_000, feature_rows=100_000, online_calls=300)

    @classmethod
    def large(cls, cap_gb: float) -> Sizes:
        return cls(entity_rows=1_000_000, feature_rows=10_000_000, joins=1, cap_gb=cap_gb)

    @property
    def window_seconds(self) -> int:
        """The span of the event times: with r distinct rows per driver spread uniformly, the
        chance that none falls in the TTL before a random time is exp(-r * ttl / window)."""
        per_driver = self.feature_rows * (1 - self.duplicate_share) / self.drivers
        return round(per_driver * self.ttl_seconds / math.log(1 / NO_FEATURE_SHARE))


# -- the data (parent) ------------------------------------------------------------------------


def make_data(sizes: Sizes, folder: Path) -> Timings:
    """features.parquet (driver, event_ts, created_ts, f0..f9) and entities.parquet (row_id,
    driver, event_timestamp), both with UTC microsecond timestamps; what was made."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(17)
    duplicates = round(sizes.feature_rows * sizes.duplicate_share)
    unique = sizes.feature_rows - duplicates
    start_us = int(START.timestamp() * 1e6)
    window_us = sizes.window_seconds * 1_000_000
    driver = rng.integers(0, sizes.drivers, unique) + 1000
    event = start_us + rng.integers(0, window_us, unique)
    created = event + rng.integers(0, 600_000_000, unique)
    again = rng.choice(unique, duplicates, replace=False)
    driver = np.concatenate([driver, driver[again]])
    event = np.concatenate([event, event[again]])
    later = rng.integers(1_000_000, 3_600_000_000, duplicates)
    created = np.concatenate([created, created[again] + later])
    order = rng.permutation(sizes.feature_rows)
    columns: dict[str, Any] = {
        "driver": pa.array(driver[order]),
        "event_ts": pa.array(event[order], pa.timestamp("us", tz="UTC")),
        "created_ts": pa.array(created[order], pa.timestamp("us", tz="UTC")),
    }
    for k in range(FEATURES):
        columns[f"f{k}"] = pa.array(rng.standard_normal(sizes.feature_rows))
    pq.write_table(pa.table(columns), folder / "features.parquet")

    ttl_us = sizes.ttl_seconds * 1_000_000
    entity_times = start_us + ttl_us + rng.integers(0, window_us - ttl_us, sizes.entity_rows)
    entity_drivers = rng.integers(0, sizes.drivers, sizes.entity_rows) + 1000
    # Two entity rows may ask for the same driver at the same time (two orders, two labels):
    # both are answered. ENTITY_REPEATS of them copy an earlier row's (driver, time).
    repeats = round(sizes.entity_rows * ENTITY_REPEATS)
    chosen = rng.permutation(sizes.entity_rows)
    copy_to, copy_from = chosen[:repeats], chosen[repeats : 2 * repeats]
    entity_drivers[copy_to] = entity_drivers[copy_from]
    entity_times[copy_to] = entity_times[copy_from]
    entities = {
        "row_id": pa.array(np.arange(sizes.entity_rows)),
        "driver": pa.array(entity_drivers),
        "event_timestamp": pa.array(entity_times, pa.timestamp("us", tz="UTC")),
    }
    pq.write_table(pa.table(entities), folder / "entities.parquet")
    return {"duplicates": duplicates, "entity_repeats": repeats}


REFERENCE = """
CREATE TABLE reference AS
WITH candidates AS (
    SELECT e.row_id, f.event_ts, f.created_ts, {values},
           row_number() OVER (PARTITION BY e.row_id
                              ORDER BY f.event_ts DESC, f.created_ts DESC) AS rank,
           count(*) OVER (PARTITION BY e.row_id, f.event_ts) AS same_event,
           count(*) OVER (PARTITION BY e.row_id, f.event_ts, f.created_ts) AS same_created
    FROM read_parquet('{data}/entities.parquet') e
    JOIN read_parquet('{data}/features.parquet') f
      ON f.driver = e.driver
     AND f.event_ts <= e.event_timestamp
     AND f.event_ts >= e.event_timestamp - INTERVAL {ttl} SECOND
)
SELECT e.row_id, e.driver, c.event_ts, c.created_ts, c.same_event, c.same_created, {c_values},
       count(*) OVER (PARTITION BY e.driver, e.event_timestamp) > 1 AS repeated_entity
FROM read_parquet('{data}/entities.parquet') e
LEFT JOIN candidates c ON c.row_id = e.row_id AND c.rank = 1
"""


def reference(sizes: Sizes, data: Path) -> tuple[Any, Timings]:
    """The exact semantics of issue #17 item 2, computed by DuckDB with window functions
    (independent of our engine, which may use an ASOF join): a connection holding the table
    ``reference`` (one row per entity row), and its counts."""
    import duckdb

    values = [f"f{k}" for k in range(JOINED)]
    con = duckdb.connect()
    sql = REFERENCE.format(
        values=", ".join(f"f.{v}" for v in values),
        c_values=", ".join(f"c.{v}" for v in values),
        data=data,
        ttl=sizes.ttl_seconds,
    )
    started = time.perf_counter()
    con.execute(sql)
    seconds = time.perf_counter() - started
    (rows, empty, ties, ambiguous, repeated) = con.execute(
        "SELECT count(*), count(*) FILTER (event_ts IS NULL), count(*) FILTER (same_event > 1), "
        "count(*) FILTER (same_created > 1), count(*) FILTER (repeated_entity) FROM reference"
    ).fetchone()  # type: ignore[misc]
    assert rows == sizes.entity_rows, f"reference has {rows} rows for {sizes.entity_rows}"
    # Two eligible rows with the same event and created time would leave the answer undefined.
    assert ambiguous == 0, f"{ambiguous} entity rows have an undefined winner: change the seed"
    return con, {"seconds": seconds, "empty": empty, "ties": ties, "repeated": repeated}


DIFFERENCES = """
WITH side AS (SELECT * FROM read_parquet('{path}')),
counted AS (SELECT row_id, count(*) AS n FROM side GROUP BY row_id),
first AS (SELECT * FROM side QUALIFY row_number() OVER (PARTITION BY row_id) = 1),
compared AS (
    SELECT r.row_id, counted.n, r.event_ts AS winner_ts, r.driver,
           ({side_null}) AS side_null, ({ref_null}) AS ref_null, ({differs}) AS differs,
           r.repeated_entity,
           s.f0 AS side_f0
    FROM reference r
    LEFT JOIN counted USING (row_id)
    LEFT JOIN first s USING (row_id)
)
SELECT
    count(*) FILTER (n IS NULL) AS dropped,
    count(*) FILTER (n IS NULL AND ref_null) AS dropped_empty,
    count(*) FILTER (n IS NULL AND repeated_entity) AS dropped_repeat,
    coalesce(sum(n - 1) FILTER (n > 1), 0) AS repeated,
    count(*) FILTER (n IS NOT NULL AND differs) AS wrong,
    count(*) FILTER (n IS NOT NULL AND differs AND side_null AND NOT ref_null) AS wrong_null,
    count(*) FILTER (n IS NOT NULL AND differs AND NOT side_null AND ref_null) AS leaked,
    count(*) FILTER (n IS NOT NULL AND differs AND NOT side_null AND NOT ref_null
                     AND EXISTS (SELECT 1 FROM read_parquet('{data}/features.parquet') f
                                 WHERE f.driver = compared.driver
                                   AND f.event_ts = compared.winner_ts
                                   AND f.f0 = compared.side_f0)) AS wrong_tie,
    (SELECT count(*) FROM side WHERE row_id NOT IN (SELECT row_id FROM reference)) AS unknown
FROM compared
"""


def differences(con: Any, path: Path, data: Path) -> Timings:
    """How one side's output (Parquet: row_id, f0..f2) differs from the reference, per entity
    row: dropped (absent; of them, rows the reference leaves empty), repeated (extra copies),
    wrong values (of them: null where a feature exists, a value where none is eligible, and a
    created-time tie broken the wrong way: the value of another row with the winner's event
    time). The first copy of a repeated row is the one compared."""
    values = [f"f{k}" for k in range(JOINED)]
    sql = DIFFERENCES.format(
        path=path,
        data=data,
        side_null=" AND ".join(f"s.{v} IS NULL" for v in values),
        ref_null=" AND ".join(f"r.{v} IS NULL" for v in values),
        differs=" OR ".join(f"s.{v} IS DISTINCT FROM r.{v}" for v in values),
    )
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


LATEST = """
SELECT driver, epoch_us(event_ts) AS event_us, f0 FROM read_parquet('{data}/features.parquet')
WHERE event_ts <= '{end}'::TIMESTAMPTZ
QUALIFY row_number() OVER (PARTITION BY driver ORDER BY event_ts DESC, created_ts DESC) = 1
"""


def online_differences(con: Any, sizes: Sizes, answers: list[Any] | None) -> Timings | None:
    """How one side's online answers (f0 of each call) differ from the latest row of each
    driver (latest event time, then created time) at the end of the window, with the TTL
    enforced at that time: values older than the TTL returned, other wrong values, values
    missing."""
    if answers is None:
        return None
    end = window_end(sizes)
    latest = {
        driver: (event_us, f0)
        for driver, event_us, f0 in con.execute(
            LATEST.format(data=sizes.data, end=end.isoformat())
        ).fetchall()
    }
    oldest_us = (end.timestamp() - sizes.ttl_seconds) * 1e6
    found = {"expired_returned": 0, "wrong": 0, "missing": 0, "expired": 0}
    for driver, answer in zip(online_drivers(sizes), answers, strict=True):
        event_us, f0 = latest.get(driver, (None, None))
        expired = event_us is not None and event_us < oldest_us
        found["expired"] += expired
        if expired or event_us is None:
            found["expired_returned"] += answer is not None and expired
            found["wrong"] += answer is not None and not expired
        elif answer is None:
            found["missing"] += 1
        elif answer != f0:
            found["wrong"] += 1
    return found


# -- memory watch (children) ------------------------------------------------------------------


class MemoryWatch:
    """The process's peak resident memory, polled every 10 ms from a thread; past ``cap_gb``
    (0: no cap) it writes ``results`` with ``killed_at_gb`` to ``out`` and ends the process, so
    a side that runs out of memory is reported instead of taking the machine down with it."""

    def __init__(self, cap_gb: float, out: Path, results: Timings) -> None:
        self.cap = cap_gb * 1e9
        self.out, self.results = out, results
        self.peak = self.rss()
        threading.Thread(target=self._poll, daemon=True).start()

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def reset(self) -> int:
        self.peak = self.rss()
        return self.peak

    def _poll(self) -> None:
        while True:
            rss = self.rss()
            self.peak = max(self.peak, rss)
            if self.cap and rss > self.cap:
                self.results["killed_at_gb"] = rss / 1e9
                self.out.write_text(json.dumps(self.results))
                os._exit(0)
            time.sleep(0.01)


def read_entities(data: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(data / "entities.parquet")


def join_loop(
    sizes: Sizes, watch: MemoryWatch, out: Timings, join: Callable[[], Any], result: Path
) -> None:
    """Run ``join`` ``sizes.joins`` times; times, peak RSS above the process's before the first
    and in all, and the first result written to ``result`` (row_id and the joined features)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out["rss_before_gb"] = watch.reset() / 1e9
    out["join"] = []
    for i in range(sizes.joins):
        started = time.perf_counter()
        frame = join()
        out["join"].append(time.perf_counter() - started)
        if i == 0:
            out["peak_gb"] = watch.peak / 1e9
            columns = ["row_id", *(f"f{k}" for k in range(JOINED))]
            table = pa.Table.from_pandas(frame[columns], preserve_index=False)
            pq.write_table(table, result)
            out["order_kept"] = bool((frame["row_id"].to_numpy() == range(len(frame))).all())
            out["rows_out"] = len(frame)
        del frame


def latencies(call: Callable[[int], Any], drivers: list[int]) -> list[float]:
    for driver in drivers[:50]:  # warm-up: caches, connections, lazy imports
        call(driver)
    times = []
    for driver in drivers:
        started = time.perf_counter()
        call(driver)
        times.append(time.perf_counter() - started)
    return times


def window_end(sizes: Sizes) -> dt.datetime:
    """Where both sides materialise to and read online at: past every event time."""
    return START + dt.timedelta(seconds=sizes.window_seconds + 60)


def online_drivers(sizes: Sizes) -> list[int]:
    import random

    pick = random.Random(5)
    return [1000 + pick.randrange(sizes.drivers) for _ in range(sizes.online_calls)]


# -- Feast side (children, Feast's venv) ------------------------------------------------------

FEAST_REPO = """project: bench
registry: {folder}/registry.db
provider: local
online_store:
  type: sqlite
  path: {folder}/online.db
offline_store:
  type: dask
entity_key_serialization_version: 3
"""


def feast_store(sizes: Sizes, workdir: Path) -> Any:
    """A Feast repo in ``workdir``: one entity ``driver``, one FeatureView ``driver_stats``
    (f0..f9, ttl 2 h) over features.parquet, applied."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    (workdir / "feature_store.yaml").write_text(FEAST_REPO.format(folder=workdir))
    store = FeatureStore(repo_path=str(workdir))
    driver = Entity(name="driver", join_keys=["driver"], value_type=ValueType.INT64)
    source = FileSource(
        path=str(Path(sizes.data) / "features.parquet"),
        timestamp_field="event_ts",
        created_timestamp_column="created_ts",
    )
    view = FeatureView(
        name="driver_stats",
        entities=[driver],
        ttl=dt.timedelta(seconds=sizes.ttl_seconds),
        schema=[Field(name=f"f{k}", dtype=Float64) for k in range(FEATURES)],
        source=source,
    )
    store.apply([driver, view])
    return store


def feast_join(sizes: Sizes, workdir: Path, out_path: Path) -> Timings:
    out: Timings = {"feast": version("feast"), "pandas": version("pandas")}
    watch = MemoryWatch(sizes.cap_gb, out_path, out)
    store = feast_store(sizes, workdir)
    entities = read_entities(Path(sizes.data))
    refs = [f"driver_stats:f{k}" for k in range(JOINED)]

    def join() -> Any:
        return store.get_historical_features(entity_df=entities, features=refs).to_df()

    join_loop(sizes, watch, out, join, Path(sizes.data) / "feast_join.parquet")
    return out


def feast_online(sizes: Sizes, workdir: Path, out_path: Path) -> Timings:
    out: Timings = {}
    store = feast_store(sizes, workdir)
    end = window_end(sizes)
    started = time.perf_counter()
    store.materialize(start_date=START - dt.timedelta(days=1), end_date=end)
    out["materialize"] = time.perf_counter() - started
    drivers = online_drivers(sizes)
    for n in (3, FEATURES):
        refs = [f"driver_stats:f{k}" for k in range(n)]

        def call(driver: int, refs: list[str] = refs) -> Any:
            return store.get_online_features(features=refs, entity_rows=[{"driver": driver}])

        out[f"online_{n}"] = latencies(lambda d: call(d).to_dict(), drivers)
    out["answers"] = [call(d).to_dict()["f0"][0] for d in drivers]
    return out


# -- nbmlops side (children, this venv) -------------------------------------------------------


def nbmlops_view(sizes: Sizes, workdir: Path) -> Any:
    """nbmlops in a fresh store in ``workdir``, with the entity ``driver`` and the view
    ``driver_stats`` (f0..f9, ttl 2 h) over features.parquet defined: the module."""
    import nbmlops as nbm

    nbm.set_store(workdir / ".nbmlops")
    nbm.entity("driver", keys="driver")
    nbm.feature_view(
        name="driver_stats",
        entity="driver",
        timestamp="event_ts",
        created="created_ts",
        ttl=sizes.ttl_seconds,
        source=str(Path(sizes.data) / "features.parquet"),
    )
    return nbm


def nbmlops_join(sizes: Sizes, workdir: Path, out_path: Path) -> Timings:
    """``nbm.training_set(..., save=False)`` (the headline: Feast saves nothing either); then,
    for information, the engine alone (``point_in_time_join`` reading only the needed columns
    of the Parquet file) and ``nbm.training_set`` as a user calls it (saved as a dataset
    version)."""
    out: Timings = {"available": True}
    watch = MemoryWatch(sizes.cap_gb, out_path, out)
    try:
        from nbmlops.feature_store.point_in_time import FeatureTable, point_in_time_join

        started = time.perf_counter()
        nbm = nbmlops_view(sizes, workdir)
        out["define"] = time.perf_counter() - started
    except (ImportError, AttributeError) as exc:  # the tree in the middle of issue #17
        return {"available": False, "why": f"{type(exc).__name__}: {exc}"}
    entities = read_entities(Path(sizes.data))
    refs = [f"driver_stats:f{k}" for k in range(JOINED)]
    result = Path(sizes.data) / "nbmlops_join.parquet"
    join_loop(sizes, watch, out, lambda: nbm.training_set(entities, refs, save=False), result)
    table = FeatureTable(
        view="driver_stats",
        data=Path(sizes.data) / "features.parquet",
        keys=["driver"],
        timestamp="event_ts",
        features=[f"f{k}" for k in range(JOINED)],
        created="created_ts",
        ttl_seconds=sizes.ttl_seconds,
    )
    # As pandas, like Feast's to_df() and nbm.training_set.
    out["engine"] = [
        timed(lambda: point_in_time_join(entities, [table]).to_pandas()) for _ in range(sizes.joins)
    ]
    out["saved"] = [timed(lambda: nbm.training_set(entities, refs)) for _ in range(sizes.joins)]
    return out


def nbmlops_online(sizes: Sizes, workdir: Path, out_path: Path) -> Timings:
    """``nbm.materialize`` of the view, then ``nbm.online_features`` read at the end of the
    materialised window (the TTL is enforced at read time: at the time of the call every value
    of this data would be expired)."""
    try:
        nbm = nbmlops_view(sizes, workdir)
        materialize, online = nbm.materialize, nbm.online_features
    except (ImportError, AttributeError) as exc:  # the tree in the middle of issue #17
        return {"available": False, "why": f"{type(exc).__name__}: {exc}"}
    out: Timings = {"available": True}
    end = window_end(sizes)
    out["materialize"] = timed(lambda: materialize("driver_stats", end=end))
    drivers = online_drivers(sizes)
    for n in (3, FEATURES):
        refs = [f"driver_stats:f{k}" for k in range(n)]

        def call(driver: int, refs: list[str] = refs) -> Any:
            return online(refs, entity_rows=[{"driver": driver}], now=end)

        out[f"online_{n}"] = latencies(lambda d: call(d).to_dict(), drivers)
    out["answers"] = [call(d).to_dict()["f0"][0] for d in drivers]
    return out


SIDES: dict[str, Callable[[Sizes, Path, Path], Timings]] = {
    "feast_join": feast_join,
    "feast_online": feast_online,
    "nbmlops_join": nbmlops_join,
    "nbmlops_online": nbmlops_online,
}


# -- parent: orchestration and report ---------------------------------------------------------


def ratio(peer: float | None, ours: float | None) -> str:
    if peer is None or ours is None or ours == 0:
        return ""
    value = peer / ours
    return f"{value:,.0f}x" if value >= 10 else f"{value:.2f}x"


def verdict(ok: bool | None) -> str:
    return "pending" if ok is None else "MET" if ok else "MISSED"


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def join_rows(sizes: Sizes, feast: Timings, ours: Timings) -> list[tuple[str, ...]]:
    label = f"a. point-in-time join {sizes.entity_rows:,} x {sizes.feature_rows:,}, {JOINED} f"
    cells = []
    feast_t = min(feast["join"]) if feast.get("join") else None
    ours_t = min(ours["join"]) if ours.get("join") else None
    shown = {
        "feast": fmt_time(feast_t) if feast_t else killed(feast),
        "ours": fmt_time(ours_t) if ours_t else killed(ours) or "pending",
    }
    ok = None if ours_t is None else feast_t is None or feast_t / ours_t >= 20
    if sizes.cap_gb:
        ok = None if ours_t is None else ours_t <= 3 and ours["peak_gb"] <= 4
    if "killed_at_gb" in ours:
        ok = False
    target = "<= 3 s, <= 4 GB" if sizes.cap_gb else ">= 20x faster"
    cells.append(
        (label, shown["ours"], shown["feast"], ratio(feast_t, ours_t), target, verdict(ok))
    )
    peak = {
        k: f"{s['peak_gb']:.2f} GB" if "peak_gb" in s else killed(s)
        for k, s in (("feast", feast), ("ours", ours))
    }
    cells.append(("   peak RSS of the child", peak["ours"], peak["feast"], "", "info", ""))
    for key, label in (
        ("engine", "   the engine alone (point_in_time_join, Parquet path)"),
        ("saved", "   nbm.training_set saving a dataset version (default)"),
    ):
        if ours.get(key):
            best = min(ours[key])
            cells.append((label, fmt_time(best), "", ratio(feast_t, best), "info", ""))
    return cells


def killed(side: Timings) -> str:
    return f"killed at {side['killed_at_gb']:.1f} GB" if "killed_at_gb" in side else ""


def correctness_rows(diffs: dict[str, Timings | None], rows: int) -> list[tuple[str, ...]]:
    def shown(side: str, key: str) -> str:
        found = diffs.get(side)
        return "no output" if found is None else f"{found[key]:,}"

    labels = [
        ("entity rows differing from the semantics", "total"),
        ("   dropped (absent from the output)", "dropped"),
        ("     of them with no feature in the TTL", "dropped_empty"),
        ("     of them repeating another's (driver, time)", "dropped_repeat"),
        ("   repeated (extra copies)", "repeated"),
        ("   null where a feature is eligible", "wrong_null"),
        ("   a value where none is eligible", "leaked"),
        ("   created-time tie broken the wrong way", "wrong_tie"),
        ("   other wrong values", "other"),
    ]
    cells = []
    for label, key in labels:
        ok = None
        if key == "total" and diffs.get("ours") is not None:
            ok = diffs["ours"]["total"] == 0  # type: ignore[index]
        target = f"0 of {rows:,}" if key == "total" else ""
        cells.append(
            (
                label,
                shown("ours", key),
                shown("feast", key),
                "",
                target,
                verdict(ok) if key == "total" else "",
            )
        )
    return cells


def summarise(found: Timings) -> Timings:
    found["total"] = found["dropped"] + found["repeated"] + found["wrong"] + found["unknown"]
    found["other"] = found["wrong"] - found["wrong_null"] - found["leaked"] - found["wrong_tie"]
    return found


def online_rows(feast: Timings, ours: Timings) -> list[tuple[str, ...]]:
    cells = []
    for n in (3, FEATURES):
        key = f"online_{n}"
        f50, f99 = quantile(feast[key], 0.5), quantile(feast[key], 0.99)
        o = ours.get(key)
        o50, o99 = (quantile(o, 0.5), quantile(o, 0.99)) if o else (None, None)
        ok = None if o99 is None else o99 <= f99 / 2
        calls = len(feast[key])
        cells.append(
            (
                f"b. online_features 1 entity x {n} f, p50 ({calls:,} calls)",
                fmt_time(o50) if o50 else "pending",
                fmt_time(f50),
                ratio(f50, o50),
                "info",
                "",
            )
        )
        cells.append(
            (
                "   p99",
                fmt_time(o99) if o99 else "pending",
                fmt_time(f99),
                ratio(f99, o99),
                "<= 1/2 of Feast",
                verdict(ok),
            )
        )
    return cells


def online_check_rows(checks: dict[str, Timings | None], calls: int) -> list[tuple[str, ...]]:
    def shown(side: str, key: str) -> str:
        found = checks.get(side)
        return "no output" if found is None else f"{found[key]:,}"

    expired = next((c["expired"] for c in checks.values() if c is not None), 0)
    cells = [
        (
            f"   online answers differing ({calls:,} calls, {expired:,} expired)",
            shown("ours", "total"),
            shown("feast", "total"),
            "",
            "0",
            "pending" if checks.get("ours") is None else verdict(checks["ours"]["total"] == 0),
        )
    ]
    for label, key in (
        ("     a value older than the TTL returned", "expired_returned"),
        ("     a wrong value", "wrong"),
        ("     no value where one is fresh", "missing"),
    ):
        cells.append((label, shown("ours", key), shown("feast", key), "", "", ""))
    return cells


def materialize_row(sizes: Sizes, feast: Timings, ours: Timings) -> tuple[str, ...]:
    feast_rate = sizes.feature_rows / feast["materialize"]
    ours_rate = sizes.feature_rows / ours["materialize"] if "materialize" in ours else None
    ok = None if ours_rate is None else ours_rate >= 2 * feast_rate
    return (
        f"c. materialize {sizes.feature_rows:,} rows (rows/s)",
        f"{ours_rate:,.0f}" if ours_rate else "pending",
        f"{feast_rate:,.0f}",
        ratio(ours_rate, feast_rate) if ours_rate else "",
        ">= 2x Feast",
        verdict(ok),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    size.add_argument("--large", action="store_true", help="1M entity rows x 10M feature rows")
    parser.add_argument("--cap-gb", type=float, default=12.0, help="memory cap of a join (--large)")
    parser.add_argument("--feast-python", default=DEFAULT_FEAST, help="Feast venv's interpreter")
    parser.add_argument("--side", choices=sorted(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:  # a child process: one side's cases
        sizes = Sizes(**json.loads(args.sizes))
        args.out.write_text(json.dumps(SIDES[args.side](sizes, Path.cwd(), args.out)))
        return
    if not Path(args.feast_python).exists():
        raise SystemExit(
            f"Feast's interpreter not found at {args.feast_python}. Create its venv with: "
            "python3.11 -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip install "
            "'feast[duckdb]' (or pass --feast-python)."
        )
    sizes = Sizes.quick() if args.quick else Sizes.large(args.cap_gb) if args.large else Sizes()
    started = time.perf_counter()
    print("\n".join(machine_lines()), flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="bench-features-") as data,
        tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache,
    ):
        sizes = replace(sizes, data=data)
        made = make_data(sizes, Path(data))
        con, ref = reference(sizes, Path(data))
        env = child_env(Path(pycache))
        env.pop("OMP_NUM_THREADS")  # both sides' engines use the machine's cores, as a user's do
        found: dict[str, Timings] = {}
        for side in ("nbmlops_join", "feast_join", "nbmlops_online", "feast_online"):
            python = args.feast_python if side.startswith("feast") else sys.executable
            found[side] = run_side(SCRIPT, side, asdict(sizes), env, python=python)
            print(f"          after {side}: {machine_load()}", flush=True)
        feast = {**found["feast_join"], **found["feast_online"]}
        ours = {**found["nbmlops_join"], **found["nbmlops_online"]}
        checks: dict[str, Timings | None] = {}
        for name, side in (("feast", feast), ("ours", ours)):
            checks[name] = online_differences(con, sizes, side.get("answers"))
            if checks[name] is not None:
                checks[name]["total"] = sum(  # type: ignore[index]
                    checks[name][k]  # type: ignore[index]
                    for k in ("expired_returned", "wrong", "missing")
                )
        diffs: dict[str, Timings | None] = {}
        for name, prefix in (("feast", "feast"), ("ours", "nbmlops")):
            path = Path(data) / f"{prefix}_join.parquet"
            diffs[name] = summarise(differences(con, path, Path(data))) if path.exists() else None

    print(
        f"versions: python {platform.python_version()}, nbmlops {version('nbmlops')}, duckdb "
        f"{version('duckdb')}, pandas {version('pandas')}; Feast {feast.get('feast')} (pandas "
        f"{feast.get('pandas')}, offline store dask, online store SQLite)"
    )
    print(
        f"data:     {sizes.drivers:,} drivers, {sizes.feature_rows:,} feature rows ({FEATURES} "
        f"float64; {made['duplicates']:,} repeat a (driver, event time) with a later created "
        f"time) over {sizes.window_seconds / 86_400:.1f} days, {sizes.entity_rows:,} entity rows, "
        f"TTL {sizes.ttl_seconds / 3600:g} h; {ref['empty']:,} entity rows "
        f"({ref['empty'] / sizes.entity_rows:.1%}) have no feature in the TTL, {ref['ties']:,} "
        f"win by a created-time tie, {ref['repeated']:,} share their (driver, time) with "
        "another" + (" (--quick)" if args.quick else "")
    )
    print(
        f"          reference (DuckDB window functions, this process): {fmt_time(ref['seconds'])}"
    )
    for side in ("nbmlops_join", "nbmlops_online"):
        if not found[side]["available"]:
            print(f"nbmlops:  {side} pending: {found[side]['why']}")
    print()
    cells = [("case", "nbmlops", "Feast", "ratio", "target", "result")]
    cells += join_rows(sizes, feast, ours)
    cells += correctness_rows(diffs, sizes.entity_rows)
    cells += online_rows(feast, ours)
    cells += online_check_rows(checks, sizes.online_calls)
    cells.append(materialize_row(sizes, feast, ours))
    print("\n".join(table_lines(cells)))
    print()
    for name, side in (("Feast", feast), ("nbmlops", ours)):
        if side.get("join"):
            print(
                f"{name}: joins {', '.join(map(fmt_time, side['join']))}; RSS before "
                f"{side['rss_before_gb']:.2f} GB; {side['rows_out']:,} rows out, input order "
                f"{'kept' if side['order_kept'] else 'not kept'}"
            )
    print(
        f"\nbest of {sizes.joins} joins; total {time.perf_counter() - started:.0f} s; at end: "
        f"{machine_load()}"
    )


if __name__ == "__main__":
    main()
