"""Run queries: every SQL statement about runs, their records, experiments and environments.

Tables: docs/schema.md (``runs``, ``params``, ``metrics``, ``latest_metrics``, ``tags``,
``datasets``, ``run_datasets``, ``artifacts``, ``experiments``, ``environments``,
``run_summaries``). A run is written in two transactions, each one :meth:`Store.atomic` block:

1. :func:`start_run` when the run begins: its experiment, environment, cell source and the run
   row as ``running``. This one must commit before the user's code runs, so that other readers
   see the run while it runs and a crash leaves it detectable (``capture/liveness.py``).
2. :func:`write_run_data` when it ends: params, metrics, tags, datasets, artifacts, the cell
   execution that made it and its status, together. A run that logs for longer than
   ``capture.run.FLUSH_INTERVAL_S`` also writes what it has logged so far in between, through
   the same function, so that its progress is visible and survives a crash.

Experiment ids, environments and cell sources are written once; this process remembers those it
has seen committed, so a run usually costs one insert at start. Rows leave as the NamedTuples
below, or dicts keyed by column where a whole row is read.
"""

from __future__ import annotations

import difflib
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from nbmlops.errors import RunNotFoundError
from nbmlops.filter import Field
from nbmlops.store import cells
from nbmlops.store.db import Row, Store
from nbmlops.store.filter_sql import KEY_TABLES, compile_filter
from nbmlops.store.frames import build_runs_frame, refresh_summary

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.filter import Node


class ParamRow(NamedTuple):
    key: str
    value: str
    value_num: float | None
    source: str | None


class MetricRow(NamedTuple):
    """One logged metric value, as written (``value`` None for NaN)."""

    key: str
    value: float | None
    step: int
    timestamp: float
    source: str | None


class MetricPoint(NamedTuple):
    step: int
    value: float | None
    timestamp: float


class UnknownKey(NamedTuple):
    """A field a filter names that no run has, and the nearest fields of the store."""

    field: Field
    nearest: list[Field]


class RunningRun(NamedTuple):
    run_id: str
    pid: int | None
    start_time: float


@dataclass
class _Seen:
    """What this process knows is committed in one store."""

    experiments: dict[str, int] = field(default_factory=dict)
    environments: set[str] = field(default_factory=set)


_seen: weakref.WeakKeyDictionary[Store, _Seen] = weakref.WeakKeyDictionary()


def _seen_in(store: Store) -> _Seen:
    return _seen.setdefault(store, _Seen())


def _committed(store: Store) -> bool:
    return not store.connection().in_transaction


# -- writes ----------------------------------------------------------------------------------


def experiment_id(store: Store, name: str) -> int:
    """The id of experiment ``name``, created on first use."""
    cached = _seen_in(store).experiments.get(name)
    if cached is not None:
        return cached
    with store.atomic() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO experiments (name, created_at) VALUES (?, ?)",
            (name, time.time()),
        )
        (exp_id,) = conn.execute(
            "SELECT experiment_id FROM experiments WHERE name = ?", (name,)
        ).fetchone()
    if _committed(store):
        _seen_in(store).experiments[name] = int(exp_id)
    return int(exp_id)


def start_run(
    store: Store, run: Row, *, experiment: str, environment: Row, cell_source: str | None
) -> str | None:
    """Record a run as ``running``, in one transaction with its experiment, its environment,
    its cell's source (once per version) and the link to the previous run of the same cell,
    whose id is returned. ``run`` has the ``runs`` columns but the experiment id."""
    seen = _seen_in(store)
    env_id = environment["environment_id"]
    version = run.get("cell_version")
    with store.atomic() as conn:
        exp_id = experiment_id(store, experiment)
        if env_id not in seen.environments:
            conn.execute(
                "INSERT OR IGNORE INTO environments (environment_id, python, platform, packages, "
                "git_commit, git_branch, git_dirty, git_diff_sha256, created_at) "
                "VALUES (:environment_id, :python, :platform, :packages, :git_commit, "
                ":git_branch, :git_dirty, :git_diff_sha256, :created_at)",
                environment,
            )
        if cell_source is not None and version is not None:
            cells.insert_source(store, conn, version, cell_source, run["start_time"])
        previous = None
        if run.get("cell_id") is not None:
            row = conn.execute(
                "SELECT run_id FROM runs WHERE notebook IS ? AND cell_id = ? "
                "ORDER BY start_time DESC LIMIT 1",
                (run["notebook"], run["cell_id"]),
            ).fetchone()
            previous = None if row is None else str(row[0])
        conn.execute(
            "INSERT INTO runs (run_id, experiment_id, name, status, start_time, user, host, "
            "pid, notebook, cell_id, cell_version, execution_count, environment_id, "
            "previous_run_id) VALUES (:run_id, :experiment_id, :name, 'running', "
            ":start_time, :user, :host, :pid, :notebook, :cell_id, :cell_version, "
            ":execution_count, :environment_id, :previous_run_id)",
            {**run, "experiment_id": exp_id, "previous_run_id": previous},
        )
    if _committed(store):
        seen.experiments[experiment] = exp_id
        seen.environments.add(env_id)
    if cell_source is not None and version is not None:
        cells.remember_source(store, version)
    return previous


def write_run_data(
    store: Store,
    run_id: str,
    *,
    params: Iterable[tuple[str, str, float | None, str]] = (),
    metrics: Sequence[tuple[str, float | None, int, float, str]] = (),
    tags: Iterable[tuple[str, str]] = (),
    datasets: Iterable[Row] = (),
    artifacts: Iterable[Row] = (),
    finish: Row | None = None,
    execution: cells.CellExecution | None = None,
) -> None:
    """Write a run's buffered records, and its outcome if ``finish`` is given, atomically.

    ``params`` rows are (key, value, value_num, source); ``metrics`` rows are
    (key, value, step, timestamp, source); ``finish`` has status, end_time and the error
    columns; ``execution`` is the cell run that made the run.
    """
    with store.atomic() as conn:
        if execution is not None:
            cells.insert_execution(store, conn, execution)
        param_rows = [(run_id, *p) for p in params]
        if param_rows:
            conn.executemany(
                "INSERT OR REPLACE INTO params (run_id, key, value, value_num, source) "
                "VALUES (?, ?, ?, ?, ?)",
                param_rows,
            )
        if metrics:
            conn.executemany(
                "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES (?,?,?,?,?)",
                [(run_id, k, v, s, t) for k, v, s, t, _ in metrics],
            )
            conn.executemany(
                "INSERT INTO latest_metrics (run_id, key, value, step, timestamp, source) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET "
                "value = excluded.value, step = excluded.step, "
                "timestamp = excluded.timestamp, source = excluded.source "
                "WHERE excluded.step >= latest_metrics.step",
                [(run_id, *m) for m in _latest_per_key(metrics)],
            )
        tag_rows = [(run_id, k, v) for k, v in tags]
        if tag_rows:
            conn.executemany(
                "INSERT OR REPLACE INTO tags (run_id, key, value) VALUES (?, ?, ?)", tag_rows
            )
        if param_rows or metrics or tag_rows:
            refresh_summary(conn, run_id)
        for ds in datasets:
            conn.execute(
                "INSERT OR IGNORE INTO datasets (dataset_id, kind, n_rows, n_columns, schema, "
                "created_at) VALUES (:dataset_id, :kind, :n_rows, :n_columns, :schema, "
                ":created_at)",
                ds,
            )
            conn.execute(
                "INSERT OR REPLACE INTO run_datasets (run_id, dataset_id, role, name, source) "
                "VALUES (:run_id, :dataset_id, :role, :name, :source)",
                {**ds, "run_id": run_id},
            )
        artifact_rows = [{**a, "run_id": run_id} for a in artifacts]
        if artifact_rows:
            conn.executemany(
                "INSERT OR REPLACE INTO artifacts (run_id, name, kind, sha256, size, "
                "media_type, meta, created_at) VALUES (:run_id, :name, :kind, :sha256, "
                ":size, :media_type, :meta, :created_at)",
                artifact_rows,
            )
        if finish is not None:
            conn.execute(
                "UPDATE runs SET status = :status, end_time = :end_time, "
                "error_type = :error_type, error_message = :error_message, "
                "traceback = :traceback WHERE run_id = :run_id",
                {**finish, "run_id": run_id},
            )
    if execution is not None:
        cells.remember_source(store, execution.source_hash)


def _latest_per_key(
    metrics: Sequence[tuple[str, float | None, int, float, str]],
) -> list[tuple[str, float | None, int, float, str]]:
    latest: dict[str, tuple[str, float | None, int, float, str]] = {}
    for m in metrics:
        current = latest.get(m[0])
        if current is None or m[2] >= current[2]:
            latest[m[0]] = m
    return list(latest.values())


def mark_interrupted(store: Store, run_ids: Sequence[str], end_time: float) -> None:
    """Mark these runs ``interrupted`` if they are still ``running`` (not in a read-only store,
    which must stay readable as it is)."""
    if not run_ids or store.read_only:
        return
    with store.atomic() as conn:
        conn.executemany(
            "UPDATE runs SET status = 'interrupted', end_time = COALESCE(end_time, ?) "
            "WHERE run_id = ? AND status = 'running'",
            [(end_time, rid) for rid in run_ids],
        )


# -- reads -----------------------------------------------------------------------------------


def running_runs_on(store: Store, host: str) -> list[RunningRun]:
    rows = store.query(
        "SELECT run_id, pid, start_time FROM runs WHERE status = 'running' AND host = ?",
        (host,),
    )
    return [RunningRun(*r) for r in rows]


def run_row(store: Store, run_id: str) -> Row:
    """The ``runs`` row with its experiment's name as ``experiment``."""
    rows = store.query_dicts(
        "SELECT r.*, e.name AS experiment FROM runs r "
        "JOIN experiments e ON e.experiment_id = r.experiment_id WHERE r.run_id = ?",
        (run_id,),
    )
    if not rows:
        raise RunNotFoundError(run_id, store.db_path)
    return rows[0]


def params_of(store: Store, run_id: str) -> list[ParamRow]:
    rows = store.query(
        "SELECT key, value, value_num, source FROM params WHERE run_id = ? ORDER BY key",
        (run_id,),
    )
    return [ParamRow(*r) for r in rows]


def latest_metrics_of(store: Store, run_id: str) -> list[MetricRow]:
    """The latest value (highest step) of each metric, by key."""
    rows = store.query(
        "SELECT key, value, step, timestamp, source FROM latest_metrics WHERE run_id = ? "
        "ORDER BY key",
        (run_id,),
    )
    return [MetricRow(*r) for r in rows]


def metric_history(store: Store, run_id: str, key: str) -> list[MetricPoint]:
    rows = store.query(
        "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? "
        "ORDER BY step, timestamp, rowid",
        (run_id, key),
    )
    return [MetricPoint(*r) for r in rows]


def tags_of(store: Store, run_id: str) -> dict[str, str]:
    return dict(store.query("SELECT key, value FROM tags WHERE run_id = ?", (run_id,)))


def datasets_of(store: Store, run_id: str) -> list[Row]:
    return store.query_dicts(
        "SELECT rd.role, rd.name, rd.dataset_id, d.kind, d.n_rows, d.n_columns, d.schema, "
        "rd.source FROM run_datasets rd JOIN datasets d ON d.dataset_id = rd.dataset_id "
        "WHERE rd.run_id = ? ORDER BY rd.role, rd.name",
        (run_id,),
    )


def artifacts_of(store: Store, run_id: str) -> list[Row]:
    return store.query_dicts(
        "SELECT name, kind, sha256, size, media_type, meta, created_at FROM artifacts "
        "WHERE run_id = ? ORDER BY created_at, name",
        (run_id,),
    )


def environment(store: Store, environment_id: str) -> Row | None:
    rows = store.query_dicts(
        "SELECT * FROM environments WHERE environment_id = ?", (environment_id,)
    )
    return rows[0] if rows else None


def dataset_links(store: Store, dataset_ids: Sequence[str]) -> list[Row]:
    """Every run that read or produced any of these dataset versions."""
    if not dataset_ids:
        return []
    marks = ", ".join("?" * len(dataset_ids))  # placeholders only; values are bound
    return store.query_dicts(
        "SELECT rd.dataset_id, rd.role, rd.name, r.run_id, r.name AS run_name, r.status, "
        "r.start_time FROM run_datasets rd JOIN runs r ON r.run_id = rd.run_id "
        f"WHERE rd.dataset_id IN ({marks}) ORDER BY r.start_time",
        list(dataset_ids),
    )


def unknown_keys(store: Store, fields: Sequence[Field]) -> list[UnknownKey]:
    """The param, metric and tag ``fields`` (``nbmlops.filter.fields_named``) that no run in the
    store has, each with up to three of the store's keys of its namespace that are nearest to
    it (difflib's ratio), for a "did you mean" hint.

    The common case, every key present, costs one query that seeks the keys in their indexes;
    only a missing key costs a second one, over every distinct key of its namespace.
    """
    keyed = [f for f in fields if f.namespace in KEY_TABLES]
    if not keyed:
        return []
    present = {(ns, key) for ns, key in store.query(*_keys_query(keyed, named=True))}
    missing = [f for f in keyed if (f.namespace, f.key) not in present]
    if not missing:
        return []
    known: dict[str, list[str]] = {}
    for ns, key in store.query(*_keys_query(missing, named=False)):
        known.setdefault(ns, []).append(key)
    return [
        UnknownKey(
            f,
            [
                Field(f.namespace, near)
                for near in difflib.get_close_matches(f.key, known.get(f.namespace, []), n=3)
            ],
        )
        for f in missing
    ]


def _keys_query(fields: Sequence[Field], *, named: bool) -> tuple[str, list[object]]:
    """The distinct keys of the namespaces of ``fields`` as (namespace, key) rows: only the
    keys of ``fields`` if ``named``, else all of them."""
    parts: list[str] = []
    bound: list[object] = []
    for ns in sorted({f.namespace for f in fields}):
        table = KEY_TABLES[ns][0]
        keys = [f.key for f in fields if f.namespace == ns]
        where = f" WHERE key IN ({', '.join('?' * len(keys))})" if named else ""
        parts.append(f"SELECT ?, key FROM {table}{where} GROUP BY key")
        bound.extend([ns, *keys] if named else [ns])
    return " UNION ALL ".join(parts), bound


def run_conditions(where: Node | None, experiment: str | None) -> tuple[list[str], list[object]]:
    """The SQL conditions (over ``runs r`` joined to ``experiments e``) and their bound values
    that select the runs a filter tree and an experiment name allow."""
    clauses: list[str] = []
    bound: list[object] = []
    if where is not None:
        sql, values = compile_filter(where)
        clauses.append(f"({sql})")
        bound.extend(values)
    if experiment is not None:
        clauses.append("e.name = ?")
        bound.append(experiment)
    return clauses, bound


def runs_frame(
    store: Store, where: Node | None = None, experiment: str | None = None
) -> pd.DataFrame:
    """All runs matching the filter tree, newest first, params/metrics/tags pivoted."""
    clauses, bound = run_conditions(where, experiment)
    selection = "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id" + (
        " WHERE " + " AND ".join(clauses) if clauses else ""
    )
    with store.snapshot():  # both reads see the same state
        runs = store.query(
            "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, "
            "r.user, r.notebook, r.cell_id " + selection + " ORDER BY r.start_time DESC",
            bound,
        )
        # Read apart from the runs rather than joined: a scan in the table's own order
        # costs about half as much as looking each run's summary up by key.
        subset = "" if not clauses else f" WHERE run_id IN (SELECT r.run_id {selection})"
        summaries = store.query(
            "SELECT run_id, layout, numbers, texts FROM run_summaries" + subset, bound
        )
    return build_runs_frame(runs, summaries)
