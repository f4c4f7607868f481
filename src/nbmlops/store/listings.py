"""Runs as lists show them, one statement each whatever their length: a page of runs with the
total, a notebook's latest run per cell, and the latest metrics of a set of runs with when each
was first logged (what the headline metric is chosen by, in :mod:`nbmlops.compare`).

The REST API, the panels and the CLI read these instead of looping over runs. Lists of values
(notebook paths, run ids) are bound as one JSON array read by ``json_each``, so the statement
text never grows with the list and no value enters it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from nbmlops.store.db import Store
from nbmlops.store.frames import RUN_COLUMNS, build_runs_frame
from nbmlops.store.runs import run_conditions

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.filter import Node


class RunsPage(NamedTuple):
    """One page of the runs a filter matches (the ``nbmlops.runs()`` frame), and how many match
    in all."""

    frame: pd.DataFrame
    total: int


class LatestCellRun(NamedTuple):
    """A tracked cell's newest run, and its cell's versions as the cell history counts them:
    ``version`` is the run's (1 = oldest source, None when the cell's executions were not
    recorded), ``versions`` and ``executions`` count every execution of the cell, tracked or not,
    and ``last_executed`` is the newest one's start (epoch seconds)."""

    cell_id: str
    run_id: str
    name: str | None
    status: str
    start_time: float
    end_time: float | None
    version: int | None
    versions: int
    executions: int
    last_executed: float | None


class RunMetric(NamedTuple):
    """A run's metric: its latest value (None for NaN) and when it was first logged."""

    run_id: str
    key: str
    value: float | None
    first_logged: float


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values))


def runs_page(
    store: Store,
    where: Node | None = None,
    experiment: str | None = None,
    notebooks: Sequence[str] | None = None,
    *,
    limit: int,
    offset: int = 0,
) -> RunsPage:
    """Runs matching the filter tree, the experiment and any of the notebook paths (None: any
    notebook), newest first, ``limit`` of them from ``offset``.

    One statement, so the page and the total come from the same snapshot: the page is LEFT
    JOINed to a one-row count, which keeps the total when the page is empty.
    """
    clauses, bound = run_conditions(where, experiment)
    if notebooks is not None:
        clauses.append("r.notebook IN (SELECT value FROM json_each(?))")
        bound.append(_json_list(notebooks))
    where_sql = " WHERE " + " AND ".join(clauses) if clauses else ""
    rows = store.query(
        "WITH matching AS (SELECT r.run_id, e.name AS experiment, r.name, r.status, "
        "r.start_time, r.end_time, r.user, r.notebook, r.cell_id "
        "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id"
        + where_sql
        + "), page AS (SELECT * FROM matching ORDER BY start_time DESC LIMIT ? OFFSET ?) "
        "SELECT total.n, page.*, s.layout, s.numbers, s.texts "
        "FROM (SELECT COUNT(*) AS n FROM matching) total "
        "LEFT JOIN page LEFT JOIN run_summaries s ON s.run_id = page.run_id "
        "ORDER BY page.start_time DESC",
        [*bound, limit, offset],
    )
    width = len(RUN_COLUMNS)
    runs = [tuple(row[1 : 1 + width]) for row in rows if row[1] is not None]
    summaries = [
        (row[1], row[1 + width], row[2 + width], row[3 + width])
        for row in rows
        if row[1] is not None and row[1 + width] is not None
    ]
    return RunsPage(build_runs_frame(runs, summaries), int(rows[0][0]))


def latest_run_per_cell(store: Store, notebooks: Sequence[str]) -> list[LatestCellRun]:
    """For each cell recorded under any of these notebook paths (one notebook's aliases), its
    newest run, with the cell's version counts from ``cell_executions``."""
    rows = store.query(
        "WITH newest AS (SELECT run_id, name, status, start_time, end_time, notebook, cell_id, "
        "cell_version, ROW_NUMBER() OVER (PARTITION BY cell_id ORDER BY start_time DESC) AS n "
        "FROM runs WHERE notebook IN (SELECT value FROM json_each(?)) AND cell_id IS NOT NULL), "
        "latest AS (SELECT * FROM newest WHERE n = 1), "
        # The versions of those cells, numbered in the order they first ran (as cell_history).
        "versions AS (SELECT ce.notebook, ce.cell_id, ce.source_hash, "
        "MIN(ce.start_time) AS first_run, MAX(ce.start_time) AS last_run, COUNT(*) AS executions "
        "FROM cell_executions ce JOIN cell_versions cv ON cv.source_hash = ce.source_hash "
        "JOIN latest l ON ce.notebook IS l.notebook AND ce.cell_id = l.cell_id "
        "GROUP BY ce.notebook, ce.cell_id, ce.source_hash), "
        "numbered AS (SELECT *, ROW_NUMBER() OVER (PARTITION BY notebook, cell_id "
        "ORDER BY first_run) AS version FROM versions) "
        "SELECT l.cell_id, l.run_id, l.name, l.status, l.start_time, l.end_time, "
        "MAX(CASE WHEN v.source_hash = l.cell_version THEN v.version END), "
        "COUNT(v.source_hash), COALESCE(SUM(v.executions), 0), MAX(v.last_run) "
        "FROM latest l LEFT JOIN numbered v ON v.notebook IS l.notebook AND v.cell_id = l.cell_id "
        "GROUP BY l.run_id ORDER BY l.start_time DESC",
        (_json_list(notebooks),),
    )
    return [LatestCellRun(*row) for row in rows]


def run_metrics(store: Store, run_ids: Sequence[str]) -> list[RunMetric]:
    """Every metric of these runs: latest value and first-logged time."""
    rows = store.query(
        "SELECT lm.run_id, lm.key, lm.value, COALESCE((SELECT MIN(m.timestamp) FROM metrics m "
        "WHERE m.run_id = lm.run_id AND m.key = lm.key), lm.timestamp) FROM latest_metrics lm "
        "WHERE lm.run_id IN (SELECT value FROM json_each(?)) ORDER BY lm.run_id, lm.key",
        (_json_list(run_ids),),
    )
    return [RunMetric(*row) for row in rows]
