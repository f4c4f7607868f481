"""The Store: one SQLite file plus the object folder. The only place that talks SQL.

Writes happen in short transactions (WAL mode, so readers never wait), with a busy timeout long
enough for several processes to share one store. :meth:`Store.atomic` nests the way sqlite-utils'
``Database.atomic`` does: the outermost block is a ``BEGIN IMMEDIATE`` transaction, inner blocks
are savepoints, so a domain function that writes atomically can be called inside a larger write.
The per-domain query modules (``store/registry.py``, ``store/drift.py``, ...) use only the public
methods here: :meth:`Store.atomic`, :meth:`Store.query` and :meth:`Store.query_dicts`. SQLite
errors are mapped to :mod:`nbmlops.errors` here, at the boundary, with the cause chained.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from nbmlops import config
from nbmlops.errors import (
    AmbiguousIdError,
    ReadOnlyQueryError,
    RunNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
)
from nbmlops.store import schema
from nbmlops.store._location import resolve_home
from nbmlops.store.frames import build_runs_frame, refresh_summary
from nbmlops.store.objects import ObjectStore

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.filter import Node

# Our own write transactions last milliseconds; waiting longer than this means something
# outside nbmlops holds the lock, and a notebook cell should not hang on it.
BUSY_TIMEOUT_S = 10.0
_SQLITE_HEADER = b"SQLite format 3\x00"

Row = dict[str, Any]


class Store:
    """An nbmlops store: ``<home>/nbmlops.db`` and ``<home>/objects/``.

    ``Store(path)`` takes the ``.nbmlops`` folder, the ``nbmlops.db`` file in it, or a project
    folder that holds one (``None``: the location rule). The directory and schema are created on
    first use and upgraded by migrations. A file at the path that is not an nbmlops store is
    never touched. Public functions take any of these as ``store=`` (see
    :func:`nbmlops.store.open_store`).
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = BUSY_TIMEOUT_S
    ) -> None:
        home = resolve_home(path)
        self.home = home
        self.busy_timeout = busy_timeout
        self.db_path = home / config.DB_FILENAME
        self.objects = ObjectStore(home / config.OBJECTS_DIRNAME)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._depth = 0  # how many atomic() blocks the lock holder is inside
        self._experiment_ids: dict[str, int] = {}
        self._known_rows: set[tuple[str, str]] = set()

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Store:
        """A store with its connection open (created and migrated if needed)."""
        store = cls(path)
        store.connection()
        return store

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    # -- connection --------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        if self._conn is None:
            with self._lock:
                if self._conn is None:
                    self._conn = self._connect()
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> sqlite3.Connection:
        self._check_is_sqlite()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the store folder {self.home}: {exc}", self.home
            ) from exc
        try:
            conn = sqlite3.connect(
                self.db_path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(exc) from exc
        try:
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_is_sqlite(self) -> None:
        if not self.db_path.exists() or self.db_path.stat().st_size == 0:
            return
        with open(self.db_path, "rb") as f:
            header = f.read(len(_SQLITE_HEADER))
        if header != _SQLITE_HEADER:
            raise StoreCorruptError(
                f"{self.db_path} is not an SQLite database, so it cannot be an nbmlops store. "
                "It was left untouched; move it away or point NBMLOPS_HOME elsewhere.",
                self.db_path,
            )

    def _corrupt(self, exc: BaseException) -> StoreCorruptError:
        return StoreCorruptError(
            f"{self.db_path} cannot be read as an nbmlops store ({exc}). It was left untouched; "
            "restore it from a backup or move it away to start a new store.",
            self.db_path,
        )

    def _migrate(self, conn: sqlite3.Connection) -> None:
        try:
            if not self._pending_migrations(conn):
                return
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if tables and "runs" not in tables and "_sqlite_migrations" not in tables:
                raise StoreCorruptError(
                    f"{self.db_path} is an SQLite database of something else (tables: "
                    f"{', '.join(sorted(tables)[:5])}). It was left untouched; choose another "
                    "store path.",
                    self.db_path,
                )
            # sqlite-utils imports pandas, so it is only loaded when a migration is due.
            from sqlite_utils import Database, Migrations

            migrations = Migrations(schema.MIGRATION_SET)
            schema.register(migrations)
            self._execute_write(conn, "BEGIN IMMEDIATE")
            try:
                migrations.apply(Database(conn))  # nested: each migration is a savepoint
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise self._map_error(exc) from exc

    @staticmethod
    def _pending_migrations(conn: sqlite3.Connection) -> list[str]:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='_sqlite_migrations'"
        ).fetchone()
        applied: set[str] = set()
        if has_table:
            applied = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                    (schema.MIGRATION_SET,),
                )
            }
        return [name for name in schema.MIGRATION_NAMES if name not in applied]

    def _map_error(self, exc: sqlite3.DatabaseError) -> StoreError:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            return StoreLockedError(
                f"The store {self.db_path} stayed locked by another process for more than "
                f"{self.busy_timeout:g} s ({exc}). The write was not made",
                self.db_path,
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return self._corrupt(exc)
        if "full" in text or "disk i/o" in text or "readonly" in text or "read-only" in text:
            return StoreError(f"Cannot write the store {self.db_path}: {exc}", self.db_path)
        return StoreError(f"Store {self.db_path}: {exc}", self.db_path)

    def _execute_write(self, conn: sqlite3.Connection, sql: str) -> None:
        try:
            conn.execute(sql)
        except sqlite3.OperationalError as exc:
            raise self._map_error(exc) from exc

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together or not at all.

        The outermost block is a ``BEGIN IMMEDIATE`` transaction; a block inside another is a
        savepoint, rolled back alone when its body raises. The store's lock is held throughout,
        so other threads of this process wait rather than interleave their statements.
        """
        conn = self.connection()
        with self._lock:
            savepoint = f"nbmlops_{self._depth}" if self._depth else None
            self._execute_write(conn, f"SAVEPOINT {savepoint}" if savepoint else "BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield conn
            except BaseException as exc:
                self._depth -= 1
                if savepoint:
                    conn.execute(f"ROLLBACK TO {savepoint}")
                    conn.execute(f"RELEASE {savepoint}")
                elif conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.DatabaseError):
                    raise self._map_error(exc) from exc
                raise
            self._depth -= 1
            try:
                conn.execute(f"RELEASE {savepoint}" if savepoint else "COMMIT")
            except sqlite3.DatabaseError as exc:
                if not savepoint and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._map_error(exc) from exc

    def query(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[Any]:
        """The rows of one read statement, as tuples."""
        try:
            return self.connection().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._map_error(exc) from exc

    def query_dicts(
        self, sql: str, params: Sequence[object] | Mapping[str, object] = ()
    ) -> list[Row]:
        """The rows of one read statement, as dicts keyed by column name."""
        try:
            cur = self.connection().execute(sql, params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        except sqlite3.DatabaseError as exc:
            raise self._map_error(exc) from exc

    # -- writes ------------------------------------------------------------------------------

    def experiment_id(self, name: str) -> int:
        """The id of experiment ``name``, created on first use."""
        cached = self._experiment_ids.get(name)
        if cached is not None:
            return cached
        with self.atomic() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO experiments (name, created_at) VALUES (?, ?)",
                (name, time.time()),
            )
            (exp_id,) = conn.execute(
                "SELECT experiment_id FROM experiments WHERE name = ?", (name,)
            ).fetchone()
        self._experiment_ids[name] = exp_id
        return int(exp_id)

    def put_environment(self, env: Row) -> None:
        if ("env", env["environment_id"]) in self._known_rows:
            return
        with self.atomic() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO environments (environment_id, python, platform, packages, "
                "git_commit, git_branch, git_dirty, git_diff_sha256, created_at) "
                "VALUES (:environment_id, :python, :platform, :packages, :git_commit, "
                ":git_branch, :git_dirty, :git_diff_sha256, :created_at)",
                env,
            )
        self._known_rows.add(("env", env["environment_id"]))

    def insert_run(self, run: Row, cell_source: str | None = None) -> str | None:
        """Record a run as ``running`` so that other readers see it and a crash is detectable.

        In the same transaction: the cell's source (once per version) and the link to the
        previous run of the same cell, whose id is returned.
        """
        with self.atomic() as conn:
            version = run.get("cell_version")
            if cell_source is not None and ("cell", version) not in self._known_rows:
                conn.execute(
                    "INSERT OR IGNORE INTO cell_versions (source_hash, source, created_at) "
                    "VALUES (?, ?, ?)",
                    (version, cell_source, run["start_time"]),
                )
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
                {**run, "previous_run_id": previous},
            )
        if cell_source is not None and version is not None:
            self._known_rows.add(("cell", version))
        return previous

    def write_run_data(
        self,
        run_id: str,
        *,
        params: Iterable[tuple[str, str, float | None, str]] = (),
        metrics: Sequence[tuple[str, float | None, int, float, str]] = (),
        tags: Iterable[tuple[str, str]] = (),
        datasets: Iterable[Row] = (),
        artifacts: Iterable[Row] = (),
        finish: Row | None = None,
        cell_execution: tuple[Row, str] | None = None,
    ) -> None:
        """Write a run's buffered records, and its outcome if ``finish`` is given, atomically.

        ``params`` rows are (key, value, value_num, source); ``metrics`` rows are
        (key, value, step, timestamp, source); ``finish`` has status, end_time and the error
        columns; ``cell_execution`` is the (row, source) of the cell run that made the run.
        """
        with self.atomic() as conn:
            if cell_execution is not None:
                self._insert_cell_execution(conn, *cell_execution)
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
        if cell_execution is not None:
            self._known_rows.add(("cell", cell_execution[0]["source_hash"]))

    def record_cell_execution(self, execution: Row, source: str) -> None:
        """Record one executed cell (code identity and outcome) and its source, once per hash."""
        with self.atomic() as conn:
            self._insert_cell_execution(conn, execution, source)
        self._known_rows.add(("cell", execution["source_hash"]))

    def _insert_cell_execution(self, conn: sqlite3.Connection, execution: Row, source: str) -> None:
        source_hash = execution["source_hash"]
        if ("cell", source_hash) not in self._known_rows:
            conn.execute(
                "INSERT OR IGNORE INTO cell_versions (source_hash, source, created_at) "
                "VALUES (?, ?, ?)",
                (source_hash, source, execution["start_time"]),
            )
        conn.execute(
            "INSERT INTO cell_executions (session, notebook, cell_id, source_hash, "
            "execution_count, start_time, duration_s, status, run_id) VALUES (:session, "
            ":notebook, :cell_id, :source_hash, :execution_count, :start_time, :duration_s, "
            ":status, :run_id)",
            execution,
        )

    def mark_interrupted(self, run_ids: Sequence[str], end_time: float) -> None:
        if not run_ids:
            return
        with self.atomic() as conn:
            conn.executemany(
                "UPDATE runs SET status = 'interrupted', end_time = COALESCE(end_time, ?) "
                "WHERE run_id = ? AND status = 'running'",
                [(end_time, rid) for rid in run_ids],
            )

    # -- reads -------------------------------------------------------------------------------

    def running_runs_on(self, host: str) -> list[tuple[str, int | None, float]]:
        rows = self.query(
            "SELECT run_id, pid, start_time FROM runs WHERE status = 'running' AND host = ?",
            (host,),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def resolve_run_id(self, run_id_or_prefix: str) -> str:
        """The full id of the run whose id is, or starts with, the given text."""
        exact = self.query("SELECT run_id FROM runs WHERE run_id = ?", (run_id_or_prefix,))
        if exact:
            return str(exact[0][0])
        # Prefix match by range, so the index is used and no LIKE wildcard can be smuggled in.
        rows = self.query(
            "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT 11",
            (run_id_or_prefix, run_id_or_prefix + "\U0010ffff"),
        )
        if not rows or not run_id_or_prefix:
            raise RunNotFoundError(run_id_or_prefix, self.db_path)
        if len(rows) > 1:
            raise AmbiguousIdError(run_id_or_prefix, [r[0] for r in rows])
        return str(rows[0][0])

    def run_row(self, run_id: str) -> Row:
        cur = self.connection().execute(
            "SELECT r.*, e.name AS experiment FROM runs r "
            "JOIN experiments e ON e.experiment_id = r.experiment_id WHERE r.run_id = ?",
            (run_id,),
        )
        row = cur.fetchone()
        if row is None:
            raise RunNotFoundError(run_id, self.db_path)
        return dict(zip([d[0] for d in cur.description], row, strict=True))

    def params_of(self, run_id: str) -> list[tuple[str, str, float | None, str | None]]:
        return [
            (r[0], r[1], r[2], r[3])
            for r in self.query(
                "SELECT key, value, value_num, source FROM params WHERE run_id = ? ORDER BY key",
                (run_id,),
            )
        ]

    def latest_metrics_of(self, run_id: str) -> list[tuple[str, float | None, int, str | None]]:
        return [
            (r[0], r[1], r[2], r[3])
            for r in self.query(
                "SELECT key, value, step, source FROM latest_metrics WHERE run_id = ? ORDER BY key",
                (run_id,),
            )
        ]

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float | None, float]]:
        return [
            (r[0], r[1], r[2])
            for r in self.query(
                "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? "
                "ORDER BY step, timestamp, rowid",
                (run_id, key),
            )
        ]

    def tags_of(self, run_id: str) -> dict[str, str]:
        return dict(self.query("SELECT key, value FROM tags WHERE run_id = ?", (run_id,)))

    def datasets_of(self, run_id: str) -> list[Row]:
        return self.query_dicts(
            "SELECT rd.role, rd.name, rd.dataset_id, d.kind, d.n_rows, d.n_columns, d.schema, "
            "rd.source FROM run_datasets rd JOIN datasets d ON d.dataset_id = rd.dataset_id "
            "WHERE rd.run_id = ? ORDER BY rd.role, rd.name",
            (run_id,),
        )

    def artifacts_of(self, run_id: str) -> list[Row]:
        return self.query_dicts(
            "SELECT name, kind, sha256, size, media_type, meta, created_at FROM artifacts "
            "WHERE run_id = ? ORDER BY created_at, name",
            (run_id,),
        )

    def environment(self, environment_id: str) -> Row | None:
        rows = self.query_dicts(
            "SELECT * FROM environments WHERE environment_id = ?", (environment_id,)
        )
        return rows[0] if rows else None

    def cell_source(self, source_hash: str) -> str | None:
        rows = self.query("SELECT source FROM cell_versions WHERE source_hash = ?", (source_hash,))
        return str(rows[0][0]) if rows else None

    def cells_matching(self, cell_id: str) -> list[tuple[str | None, str]]:
        """(notebook, cell_id) pairs whose cell id is, or starts with, ``cell_id``."""
        rows = self.query(
            "SELECT DISTINCT notebook, cell_id FROM cell_executions "
            "WHERE cell_id >= ? AND cell_id < ? LIMIT 11",
            (cell_id, cell_id + "\U0010ffff"),
        )
        exact = [(r[0], r[1]) for r in rows if r[1] == cell_id]
        return exact or [(r[0], r[1]) for r in rows]

    def cell_versions_of(self, notebook: str | None, cell_id: str) -> list[Row]:
        """Each distinct source a cell has had, oldest first, with when and how often it ran."""
        return self.query_dicts(
            "SELECT ce.source_hash, cv.source, MIN(ce.start_time) AS first_run, "
            "MAX(ce.start_time) AS last_run, COUNT(*) AS executions, "
            "SUM(ce.status = 'error') AS errors FROM cell_executions ce "
            "JOIN cell_versions cv ON cv.source_hash = ce.source_hash "
            "WHERE ce.notebook IS ? AND ce.cell_id = ? "
            "GROUP BY ce.source_hash ORDER BY first_run",
            (notebook, cell_id),
        )

    def runs_of_cell(self, notebook: str | None, cell_id: str) -> list[Row]:
        return self.query_dicts(
            "SELECT run_id, cell_version, status, start_time, end_time FROM runs "
            "WHERE notebook IS ? AND cell_id = ? ORDER BY start_time",
            (notebook, cell_id),
        )

    def executions_before_run(self, run_id: str, limit: int = 50) -> list[Row]:
        """The cells the run's kernel session executed before the run's cell, newest first,
        with their source: which code ran before this run."""
        return self.query_dicts(
            "SELECT ce.cell_id, ce.execution_count, ce.start_time, ce.status, ce.run_id, "
            "ce.source_hash, cv.source FROM cell_executions ce "
            "JOIN cell_versions cv ON cv.source_hash = ce.source_hash "
            "JOIN cell_executions this ON this.run_id = ? AND this.session = ce.session "
            "WHERE ce.start_time < this.start_time ORDER BY ce.start_time DESC LIMIT ?",
            (run_id, limit),
        )

    def resolve_source_hash(self, prefix: str) -> str | None:
        rows = self.query(
            "SELECT source_hash FROM cell_versions WHERE source_hash >= ? AND source_hash < ? "
            "LIMIT 2",
            (prefix, prefix + "\U0010ffff"),
        )
        return str(rows[0][0]) if len(rows) == 1 and prefix else None

    def dataset_links(self, dataset_ids: Sequence[str]) -> list[Row]:
        """Every run that read or produced any of these dataset versions."""
        if not dataset_ids:
            return []
        marks = ", ".join("?" * len(dataset_ids))  # placeholders only; values are bound
        return self.query_dicts(
            "SELECT rd.dataset_id, rd.role, rd.name, r.run_id, r.name AS run_name, r.status, "
            "r.start_time FROM run_datasets rd JOIN runs r ON r.run_id = rd.run_id "
            f"WHERE rd.dataset_id IN ({marks}) ORDER BY r.start_time",
            list(dataset_ids),
        )

    def runs_frame(self, where: Node | None = None, experiment: str | None = None) -> pd.DataFrame:
        """All runs matching the filter tree, newest first, params/metrics/tags pivoted."""
        clauses: list[str] = []
        bound: list[object] = []
        if where is not None:
            from nbmlops.store.filter_sql import compile_filter

            sql, values = compile_filter(where)
            clauses.append(f"({sql})")
            bound.extend(values)
        if experiment is not None:
            clauses.append("e.name = ?")
            bound.append(experiment)
        selection = "FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id" + (
            " WHERE " + " AND ".join(clauses) if clauses else ""
        )
        conn = self.connection()
        with self._lock:
            try:
                # One read transaction, so both reads see the same snapshot.
                conn.execute("BEGIN")
                runs = conn.execute(
                    "SELECT r.run_id, e.name, r.name, r.status, r.start_time, r.end_time, "
                    "r.user, r.notebook, r.cell_id " + selection + " ORDER BY r.start_time DESC",
                    bound,
                ).fetchall()
                # Read apart from the runs rather than joined: a scan in the table's own order
                # costs about half as much as looking each run's summary up by key.
                subset = "" if not clauses else f" WHERE run_id IN (SELECT r.run_id {selection})"
                summaries = conn.execute(
                    "SELECT run_id, layout, numbers, texts FROM run_summaries" + subset, bound
                ).fetchall()
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise self._map_error(exc) from exc
        return build_runs_frame(runs, summaries)

    def read_sql(self, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement on a separate read-only connection."""
        self.connection()  # creates and migrates the store if needed
        uri = f"{self.db_path.as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=self.busy_timeout)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.set_authorizer(_read_only_authorizer)
            try:
                cur = conn.execute(query)
            except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:
                if "one statement" in str(exc):
                    raise ReadOnlyQueryError(query, "give one statement at a time") from exc
                raise StoreError(f"SQL error: {exc}. Query was: {query.strip()[:200]!r}") from exc
            except sqlite3.DatabaseError as exc:
                if "not authorized" in str(exc):
                    raise ReadOnlyQueryError(query, "only SELECT statements are allowed") from exc
                raise StoreError(f"SQL error: {exc}. Query was: {query.strip()[:200]!r}") from exc
            if cur.description is None:
                raise ReadOnlyQueryError(query, "the statement returned no rows")
            return [d[0] for d in cur.description], cur.fetchall()
        finally:
            conn.close()


def _read_only_authorizer(action: int, *_args: object) -> int:
    allowed = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION}
    # WITH RECURSIVE and window functions report SQLITE_RECURSIVE (33).
    allowed.add(getattr(sqlite3, "SQLITE_RECURSIVE", 33))
    return sqlite3.SQLITE_OK if action in allowed else sqlite3.SQLITE_DENY


def _latest_per_key(
    metrics: Sequence[tuple[str, float | None, int, float, str]],
) -> list[tuple[str, float | None, int, float, str]]:
    latest: dict[str, tuple[str, float | None, int, float, str]] = {}
    for m in metrics:
        current = latest.get(m[0])
        if current is None or m[2] >= current[2]:
            latest[m[0]] = m
    return list(latest.values())
