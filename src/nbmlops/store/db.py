"""The Store: one SQLite file plus the object folder. The only place that talks SQL.

Writes happen in short transactions (WAL mode, so readers never wait), with a busy timeout long
enough for several processes to share one store. :meth:`Store.atomic` nests the way sqlite-utils'
``Database.atomic`` does: the outermost block is a ``BEGIN IMMEDIATE`` transaction, inner blocks
are savepoints, so a domain function that writes atomically can be called inside a larger write.
The per-domain query modules (``store/runs.py``, ``store/cells.py``, ``store/registry.py``,
``store/drift.py``, ...) use only the public methods here: :meth:`Store.atomic`,
:meth:`Store.snapshot`, :meth:`Store.query` and :meth:`Store.query_dicts`. SQLite
errors are mapped to :mod:`nbmlops.errors` here, at the boundary, with the cause chained.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

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
from nbmlops.store.objects import ObjectStore

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

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: the queries inside see one state of the database, whatever
        other processes commit meanwhile (inside an :meth:`atomic` block: that block's)."""
        conn = self.connection()
        with self._lock:
            if conn.in_transaction:
                yield conn
                return
            self._execute_write(conn, "BEGIN")  # deferred: no lock is taken, readers never wait
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")

    # -- ids ---------------------------------------------------------------------------------

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
