"""Sync queries: every SQL statement of :mod:`nbmlops.sync` (issue #19).

Tables (docs/schema.md, migration ``0014_sync``): ``sync_runs``, ``sync_items``,
``sync_metrics``, ``sync_model_versions``, ``sync_models``: what was pushed to which server.
A push picks the runs written since the server last confirmed them by their revision
(``runs.revision`` against ``sync_runs.revision``, migration ``0017_run_revisions``), reads the
state of those in a few bulk queries (:func:`run_states`), so that a push with nothing new costs
one query however many runs there are, and writes what a server confirmed for one run in one
:meth:`~nbmlops.store.Store.atomic` block (:func:`record_run`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from nbmlops.store import cells, runs
from nbmlops.store.db import Row, Store
from nbmlops.store.runs import run_conditions

if TYPE_CHECKING:
    from nbmlops.filter import Node


class MetricMark(NamedTuple):
    """The last point of a metric sent: by (timestamp, step), and how many were."""

    step: int
    timestamp: float
    sent: int


class MetricPoint(NamedTuple):
    key: str
    value: float | None  # None: NaN
    step: int
    timestamp: float


@dataclass
class RunState:
    """A run as a push sees it: its row, what it holds now and what was sent of it."""

    row: Row  # runs columns, experiment, git_commit, git_branch, git_dirty, cell_source
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[Row] = field(default_factory=list)
    datasets: list[Row] = field(default_factory=list)
    metric_counts: dict[str, int] = field(default_factory=dict)
    remote: Row | None = None  # the sync_runs row
    sent: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, key) -> digest
    marks: dict[str, MetricMark] = field(default_factory=dict)


def _changed(
    store: Store, server: str, where: Node | None, experiment: str | None
) -> tuple[list[str], list[str]]:
    """The runs the filter and experiment select, and those of them whose revision is not the
    one ``server`` holds (never pushed, pushed before migration 0017, or written since)."""
    clauses, bound = run_conditions(where, experiment)
    rows = store.query(
        "SELECT r.run_id, r.revision IS NOT s.revision FROM runs r "
        "JOIN experiments e ON e.experiment_id = r.experiment_id "
        "LEFT JOIN sync_runs s ON s.server = ? AND s.run_id = r.run_id"
        + (" WHERE " + " AND ".join(clauses) if clauses else ""),
        [server, *bound],
    )
    return [run_id for run_id, _ in rows], [run_id for run_id, changed in rows if changed]


def run_states(
    store: Store, server: str, where: Node | None = None, experiment: str | None = None
) -> tuple[list[str], list[RunState]]:
    """The runs the filter and experiment select, and the state of each of them that changed
    since ``server`` last confirmed it, oldest first, with what was sent of it.

    A run's records are read only when its ``revision`` differs from the one the server holds,
    so a push with nothing new costs one query however many runs and metric points there are.
    """
    with store.snapshot():  # one state of the store for every read
        selected, changed = _changed(store, server, where, experiment)
        if not changed:
            return selected, []
        subset = "run_id IN (SELECT value FROM json_each(?))"
        bound: list[object] = [_json_list(changed)]
        rows = store.query_dicts(
            "SELECT r.*, e.name AS experiment, env.git_commit, env.git_branch, env.git_dirty, "
            "cv.source AS cell_source FROM runs r "
            "JOIN experiments e ON e.experiment_id = r.experiment_id "
            "LEFT JOIN environments env ON env.environment_id = r.environment_id "
            "LEFT JOIN cell_versions cv ON cv.source_hash = r.cell_version "
            f"WHERE r.{subset} ORDER BY r.start_time, r.run_id",
            bound,
        )
        states = {r["run_id"]: RunState(r) for r in rows}
        for run_id, key, value in store.query(
            f"SELECT run_id, key, value FROM params WHERE {subset}", bound
        ):
            states[run_id].params[key] = value
        for run_id, key, value in store.query(
            f"SELECT run_id, key, value FROM tags WHERE {subset}", bound
        ):
            states[run_id].tags[key] = value
        for a in store.query_dicts(
            "SELECT run_id, name, kind, sha256, size, media_type FROM artifacts "
            f"WHERE {subset} ORDER BY created_at, name",
            bound,
        ):
            states[a.pop("run_id")].artifacts.append(a)
        for d in store.query_dicts(
            "SELECT rd.run_id, rd.role, rd.name, rd.dataset_id, d.kind, d.n_rows, d.n_columns, "
            "d.schema, rd.source FROM run_datasets rd JOIN datasets d "
            f"ON d.dataset_id = rd.dataset_id WHERE rd.{subset} ORDER BY rd.role, rd.name",
            bound,
        ):
            states[d.pop("run_id")].datasets.append(d)
        # Counted from the (run_id, key, step) index alone: no table row is read.
        for run_id, key, n in store.query(
            f"SELECT run_id, key, count(*) FROM metrics WHERE {subset} GROUP BY run_id, key",
            bound,
        ):
            states[run_id].metric_counts[key] = n
        for r in store.query_dicts(
            f"SELECT * FROM sync_runs WHERE server = ? AND {subset}", [server, *bound]
        ):
            states[r["run_id"]].remote = r
        for run_id, kind, key, digest in store.query(
            f"SELECT run_id, kind, key, digest FROM sync_items WHERE server = ? AND {subset}",
            [server, *bound],
        ):
            states[run_id].sent[(kind, key)] = digest
        for run_id, key, step, timestamp, sent in store.query(
            "SELECT run_id, key, step, timestamp, sent FROM sync_metrics "
            f"WHERE server = ? AND {subset}",
            [server, *bound],
        ):
            states[run_id].marks[key] = MetricMark(step, timestamp, sent)
    return selected, list(states.values())


def metrics_after(
    store: Store, run_id: str, marks: dict[str, MetricMark], keys: Iterable[str]
) -> list[MetricPoint]:
    """The points of these metrics logged after their marks (all of them for a key without one),
    in the order they were logged."""
    points: list[MetricPoint] = []
    for key in keys:
        mark = marks.get(key)
        if mark is None:
            rows = store.query(
                "SELECT key, value, step, timestamp FROM metrics WHERE run_id = ? AND key = ? "
                "ORDER BY timestamp, step",
                (run_id, key),
            )
        else:
            rows = store.query(
                "SELECT key, value, step, timestamp FROM metrics WHERE run_id = ? AND key = ? "
                "AND (timestamp, step) > (?, ?) ORDER BY timestamp, step",
                (run_id, key, mark.timestamp, mark.step),
            )
        points.extend(MetricPoint(*r) for r in rows)
    return points


def infinite_points(store: Store, run_id: str, key: str) -> list[MetricPoint]:
    """Every +inf/-inf point of a metric (MLflow keeps them as the largest finite doubles)."""
    rows = store.query(
        "SELECT key, value, step, timestamp FROM metrics WHERE run_id = ? AND key = ? "
        "AND abs(value) > 1.7976931348623157e308 ORDER BY timestamp, step",
        (run_id, key),
    )
    return [MetricPoint(*r) for r in rows]


def remember_remote_run(
    store: Store, server: str, run_id: str, remote_id: str, experiment_id: str
) -> None:
    """Record the MLflow run a run maps to, before anything else is sent to it: a push stopped
    after creating it finds it here instead of creating another."""
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO sync_runs (server, run_id, remote_id, experiment_id, status, end_time, "
            "pushed_at) VALUES (?, ?, ?, ?, NULL, NULL, ?) ON CONFLICT (server, run_id) "
            "DO UPDATE SET remote_id = excluded.remote_id, "
            "experiment_id = excluded.experiment_id",
            (server, run_id, remote_id, experiment_id, time.time()),
        )


def _record_held(
    conn: sqlite3.Connection,
    server: str,
    run_id: str,
    items: Sequence[tuple[str, str, str]],
    marks: dict[str, MetricMark],
) -> None:
    """What ``server`` holds of a run, pushed or pulled: its items and its metric marks."""
    conn.executemany(
        "INSERT OR REPLACE INTO sync_items (server, run_id, kind, key, digest) "
        "VALUES (?, ?, ?, ?, ?)",
        [(server, run_id, *item) for item in items],
    )
    conn.executemany(
        "INSERT OR REPLACE INTO sync_metrics (server, run_id, key, step, timestamp, sent) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(server, run_id, k, *m) for k, m in marks.items()],
    )


def record_run(
    store: Store,
    server: str,
    run_id: str,
    *,
    status: str,
    end_time: float | None,
    revision: int,
    items: Sequence[tuple[str, str, str]],
    marks: dict[str, MetricMark],
) -> None:
    """What the server confirmed for one run: its status, the items (kind, key, digest), the
    metric marks and the run's revision they were read at, together."""
    with store.atomic() as conn:
        conn.execute(
            "UPDATE sync_runs SET status = ?, end_time = ?, revision = ?, pushed_at = ? "
            "WHERE server = ? AND run_id = ?",
            (status, end_time, revision, time.time(), server, run_id),
        )
        _record_held(conn, server, run_id, items, marks)


def record_unchanged(store: Store, server: str, revisions: Sequence[tuple[str, int]]) -> None:
    """Runs (run_id, revision) whose records were compared with what ``server`` holds and had
    nothing to send: the next push skips them until they are written again."""
    if not revisions:
        return  # no write transaction for a push that compared nothing
    with store.atomic() as conn:
        conn.executemany(
            "UPDATE sync_runs SET revision = ? WHERE server = ? AND run_id = ?",
            [(revision, server, run_id) for run_id, revision in revisions],
        )


# -- registry -------------------------------------------------------------------------------


def models_to_push(store: Store, run_ids: Sequence[str] | None) -> list[Row]:
    """Registered models (name, description), all of them or those with a version trained by one
    of ``run_ids``."""
    if run_ids is None:
        return store.query_dicts("SELECT name, description FROM models ORDER BY name")
    return store.query_dicts(
        "SELECT name, description FROM models WHERE name IN (SELECT name FROM model_versions "
        "WHERE run_id IN (SELECT value FROM json_each(?))) ORDER BY name",
        (_json_list(run_ids),),
    )


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values))


def pushed_versions(store: Store, server: str, name: str) -> dict[int, str]:
    """version -> MLflow version number, for the versions of ``name`` pushed to ``server``."""
    rows = store.query(
        "SELECT version, remote_version FROM sync_model_versions WHERE server = ? AND name = ?",
        (server, name),
    )
    return {int(v): str(r) for v, r in rows}


def record_version(store: Store, server: str, name: str, version: int, remote: str) -> None:
    with store.atomic() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO sync_model_versions (server, name, version, remote_version) "
            "VALUES (?, ?, ?, ?)",
            (server, name, version, remote),
        )


def last_event_sent(store: Store, server: str, name: str) -> int:
    rows = store.query(
        "SELECT last_event_id FROM sync_models WHERE server = ? AND name = ?", (server, name)
    )
    return int(rows[0][0]) if rows else 0


def record_event_sent(store: Store, server: str, name: str, event_id: int) -> None:
    with store.atomic() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO sync_models (server, name, last_event_id) VALUES (?, ?, ?)",
            (server, name, event_id),
        )


def dataset_schemas(store: Store, dataset_ids: Sequence[str]) -> list[dict[str, str]]:
    """The schemas (column -> dtype) of these datasets, in that order (unknown ids left out)."""
    rows = dict(
        store.query(
            "SELECT dataset_id, schema FROM datasets WHERE dataset_id IN "
            "(SELECT value FROM json_each(?)) AND schema IS NOT NULL",
            (_json_list(dataset_ids),),
        )
    )
    schemas = [json.loads(rows[i]) for i in dataset_ids if i in rows]
    return [s for s in schemas if isinstance(s, dict)]


def remote_run_ids(store: Store, server: str, run_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """run_id -> (MLflow run id, MLflow experiment id) for these runs pushed to ``server``."""
    rows = store.query(
        "SELECT run_id, remote_id, experiment_id FROM sync_runs WHERE server = ? "
        "AND run_id IN (SELECT value FROM json_each(?))",
        (server, _json_list(list(run_ids))),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


# -- pull -----------------------------------------------------------------------------------


@dataclass
class PulledRun:
    """A run pulled from a server before: the local id and what of it was imported."""

    run_id: str
    remote_id: str
    status: str | None  # MLflow's status when last pulled
    end_time: float | None
    items: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, key) -> digest
    marks: dict[str, MetricMark] = field(default_factory=dict)


def pulled_runs(store: Store, server: str) -> dict[str, PulledRun]:
    """MLflow run id -> the local run it was pulled into, for runs tagged as pulled from
    ``server`` (runs pushed from this store are not among them)."""
    pulled = "run_id IN (SELECT run_id FROM tags WHERE key = 'nbmlops.pulled_from')"
    with store.snapshot():
        runs_by_id = {
            r["run_id"]: PulledRun(r["run_id"], r["remote_id"], r["status"], r["end_time"])
            for r in store.query_dicts(
                "SELECT run_id, remote_id, status, end_time FROM sync_runs "
                f"WHERE server = ? AND {pulled}",
                (server,),
            )
        }
        for run_id, kind, key, digest in store.query(
            f"SELECT run_id, kind, key, digest FROM sync_items WHERE server = ? AND {pulled}",
            (server,),
        ):
            runs_by_id[run_id].items[(kind, key)] = digest
        for run_id, key, step, timestamp, sent in store.query(
            "SELECT run_id, key, step, timestamp, sent FROM sync_metrics "
            f"WHERE server = ? AND {pulled}",
            (server,),
        ):
            runs_by_id[run_id].marks[key] = MetricMark(step, timestamp, sent)
    return {state.remote_id: state for state in runs_by_id.values()}


def local_run_exists(store: Store, run_id: str) -> bool:
    return bool(store.query("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)))


def save_pulled_run(
    store: Store,
    server: str,
    *,
    remote_id: str,
    remote_experiment_id: str,
    status: str,
    end_time: float | None,
    new_run: Row | None,
    experiment: str,
    cell_source: tuple[str, str] | None,
    data: dict[str, Any],
    items: Sequence[tuple[str, str, str]],
    marks: dict[str, MetricMark],
) -> None:
    """One pulled run in one transaction: the run (``new_run``: its ``runs`` columns but the
    experiment id, when it is not here yet), its new records (``data``: the keyword arguments
    of :func:`~nbmlops.store.runs.write_run_data`) and what the server holds of it in the
    ``sync_*`` tables, so that pushing to that server sends nothing of it back."""
    run_id = new_run["run_id"] if new_run is not None else data["run_id"]
    with store.atomic() as conn:
        if cell_source is not None:
            cells.insert_source(store, conn, cell_source[0], cell_source[1], time.time())
        if new_run is not None:
            conn.execute(
                "INSERT INTO runs (run_id, experiment_id, name, status, start_time, end_time, "
                "user, host, notebook, cell_id, cell_version, previous_run_id) VALUES "
                "(:run_id, :experiment_id, :name, :status, :start_time, :end_time, :user, "
                ":host, :notebook, :cell_id, :cell_version, :previous_run_id)",
                {**new_run, "experiment_id": runs.experiment_id(store, experiment)},
            )
        runs.write_run_data(store, run_id, **{k: v for k, v in data.items() if k != "run_id"})
        conn.execute(
            "INSERT INTO sync_runs (server, run_id, remote_id, experiment_id, status, end_time, "
            "revision, pushed_at) VALUES (?, ?, ?, ?, ?, ?, "
            "(SELECT revision FROM runs WHERE run_id = ?), ?) ON CONFLICT (server, run_id) "
            "DO UPDATE SET status = excluded.status, end_time = excluded.end_time, "
            "revision = excluded.revision",
            (
                server,
                run_id,
                remote_id,
                remote_experiment_id,
                status,
                end_time,
                run_id,
                time.time(),
            ),
        )
        _record_held(conn, server, run_id, items, marks)
