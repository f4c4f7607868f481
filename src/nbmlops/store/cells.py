"""Cell queries: every executed cell (``cell_executions``) and each version of its source
(``cell_versions``, one row per source hash), for the cell history and "which code ran first".

Tables: docs/schema.md, migrations ``0001_initial`` (cell_versions) and ``0002_cell_executions``.
A source is written once per hash; this process remembers the hashes it has written, so that an
executed cell usually costs one insert. Only the Store's public methods are used here.
"""

from __future__ import annotations

import sqlite3
import weakref
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

from nbmlops.store.db import Row, Store

ExecutionStatus = Literal["ok", "error", "interrupted"]

# Source hashes known to be in each store's cell_versions (committed, never deleted).
_known_sources: weakref.WeakKeyDictionary[Store, set[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class CellExecution:
    """One executed cell: a ``cell_executions`` row and the source its hash names."""

    session: str
    notebook: str | None
    cell_id: str
    source: str
    source_hash: str
    execution_count: int | None
    start_time: float
    duration_s: float
    status: ExecutionStatus
    run_id: str | None = None


class CellRef(NamedTuple):
    """A cell, named by the notebook it belongs to and its id."""

    notebook: str | None
    cell_id: str


def insert_source(
    store: Store, conn: sqlite3.Connection, source_hash: str, source: str, at: float
) -> None:
    """Inside an :meth:`Store.atomic` block: a cell version, unless already stored."""
    if source_hash not in _known_sources.get(store, ()):
        conn.execute(
            "INSERT OR IGNORE INTO cell_versions (source_hash, source, created_at) "
            "VALUES (?, ?, ?)",
            (source_hash, source, at),
        )


def insert_execution(store: Store, conn: sqlite3.Connection, execution: CellExecution) -> None:
    """Inside an :meth:`Store.atomic` block: the execution row, and its source if new."""
    insert_source(store, conn, execution.source_hash, execution.source, execution.start_time)
    conn.execute(
        "INSERT INTO cell_executions (session, notebook, cell_id, source_hash, "
        "execution_count, start_time, duration_s, status, run_id) VALUES (:session, "
        ":notebook, :cell_id, :source_hash, :execution_count, :start_time, :duration_s, "
        ":status, :run_id)",
        asdict(execution),
    )


def remember_source(store: Store, source_hash: str) -> None:
    """Note a cell source as stored, once the transaction that wrote it has committed."""
    if not store.connection().in_transaction:  # inside an outer block it may still roll back
        _known_sources.setdefault(store, set()).add(source_hash)


def record_execution(store: Store, execution: CellExecution) -> None:
    """Record one executed cell (code identity and outcome) and its source, once per hash."""
    with store.atomic() as conn:
        insert_execution(store, conn, execution)
    remember_source(store, execution.source_hash)


def cell_source(store: Store, source_hash: str) -> str | None:
    rows = store.query("SELECT source FROM cell_versions WHERE source_hash = ?", (source_hash,))
    return str(rows[0][0]) if rows else None


def resolve_source_hash(store: Store, prefix: str) -> str | None:
    """The one source hash starting with ``prefix``; None when none or several do."""
    rows = store.query(
        "SELECT source_hash FROM cell_versions WHERE source_hash >= ? AND source_hash < ? LIMIT 2",
        (prefix, prefix + "\U0010ffff"),
    )
    return str(rows[0][0]) if len(rows) == 1 and prefix else None


def cells_matching(store: Store, cell_id: str) -> list[CellRef]:
    """Cells whose id is ``cell_id``, else those whose id starts with it (at most 11)."""
    rows = store.query(
        "SELECT DISTINCT notebook, cell_id FROM cell_executions "
        "WHERE cell_id >= ? AND cell_id < ? LIMIT 11",
        (cell_id, cell_id + "\U0010ffff"),
    )
    refs = [CellRef(r[0], r[1]) for r in rows]
    return [r for r in refs if r.cell_id == cell_id] or refs


def newest_run_named(store: Store, name: str) -> Row | None:
    """The newest run called ``name`` (run_id, notebook, cell_id), or None."""
    rows = store.query_dicts(
        "SELECT run_id, notebook, cell_id FROM runs WHERE name = ? "
        "ORDER BY start_time DESC LIMIT 1",
        (name,),
    )
    return rows[0] if rows else None


def names_and_cell_ids(store: Store, limit: int = 1000) -> list[str]:
    """Run names and cell ids, the newest first (at most ``limit`` of each): what a
    misspelt reference is compared with."""
    rows = store.query(
        "SELECT name FROM (SELECT name, MAX(start_time) AS t FROM runs "
        "WHERE name IS NOT NULL GROUP BY name ORDER BY t DESC LIMIT ?) "
        "UNION ALL SELECT cell_id FROM (SELECT cell_id, MAX(start_time) AS t "
        "FROM cell_executions GROUP BY cell_id ORDER BY t DESC LIMIT ?)",
        (limit, limit),
    )
    return [str(r[0]) for r in rows]


def versions_of(store: Store, cell: CellRef) -> list[Row]:
    """Each distinct source a cell has had, oldest first, with when and how often it ran."""
    return store.query_dicts(
        "SELECT ce.source_hash, cv.source, MIN(ce.start_time) AS first_run, "
        "MAX(ce.start_time) AS last_run, COUNT(*) AS executions, "
        "SUM(ce.status = 'error') AS errors FROM cell_executions ce "
        "JOIN cell_versions cv ON cv.source_hash = ce.source_hash "
        "WHERE ce.notebook IS ? AND ce.cell_id = ? "
        "GROUP BY ce.source_hash ORDER BY first_run",
        (cell.notebook, cell.cell_id),
    )


def runs_of(store: Store, cell: CellRef) -> list[Row]:
    """The runs a cell made, oldest first."""
    return store.query_dicts(
        "SELECT run_id, cell_version, status, start_time, end_time FROM runs "
        "WHERE notebook IS ? AND cell_id = ? ORDER BY start_time",
        (cell.notebook, cell.cell_id),
    )


def executions_before_run(store: Store, run_id: str, limit: int = 50) -> list[Row]:
    """The cells the run's kernel session executed before the run's cell, newest first,
    with their source: which code ran before this run."""
    return store.query_dicts(
        "SELECT ce.cell_id, ce.execution_count, ce.start_time, ce.status, ce.run_id, "
        "ce.source_hash, cv.source FROM cell_executions ce "
        "JOIN cell_versions cv ON cv.source_hash = ce.source_hash "
        "JOIN cell_executions this ON this.run_id = ? AND this.session = ce.session "
        "WHERE ce.start_time < this.start_time ORDER BY ce.start_time DESC LIMIT ?",
        (run_id, limit),
    )
