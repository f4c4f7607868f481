"""The Store: one SQLite file plus the object folder. The only place that talks SQL.

Writes happen in short transactions (WAL mode, so readers never wait), with a busy timeout long
enough for several processes to share one store. :meth:`Store.atomic` nests the way sqlite-utils'
``Database.atomic`` does: the outermost block is a ``BEGIN IMMEDIATE`` transaction, inner blocks
are savepoints, so a domain function that writes atomically can be called inside a larger write.
The per-domain query modules (``store/runs.py``, ``store/cells.py``, ``store/registry.py``,
``store/drift.py``, ...) use only the public methods here: :meth:`Store.atomic`,
:meth:`Store.snapshot`, :meth:`Store.query` and :meth:`Store.query_dicts`. SQLite
errors are mapped to :mod:`nbmlops.errors` here, at the boundary, with the cause chained.

Opening is split in two, so that reading never changes anything on disk (issue #13):

- :meth:`Store.connection` opens for reading. With no store at the path it raises
  :class:`~nbmlops.errors.StoreNotFoundError` and creates nothing; a store this process cannot
  write (its file, folder or file system) is opened read-only, so reads still work and writes
  raise :class:`~nbmlops.errors.StoreReadOnlyError`.
- The first write (:meth:`Store.atomic`) or :meth:`Store.create` creates the folder and the
  schema. Before anything is written (``journal_mode=WAL``, a migration) the file is checked to be
  an nbmlops store: a foreign SQLite database or another file is refused byte for byte untouched.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbmlops import config
from nbmlops.errors import (
    AmbiguousIdError,
    ReadOnlyQueryError,
    RunNotFoundError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from nbmlops.store import schema
from nbmlops.store._location import locate
from nbmlops.store.objects import ObjectStore

# Our own write transactions last milliseconds; waiting longer than this means something
# outside nbmlops holds the lock, and a notebook cell should not hang on it.
BUSY_TIMEOUT_S = 10.0
_SQLITE_HEADER = b"SQLite format 3\x00"
# nbmlops.sql's default time budget: a notebook cell should not hang on a WITH RECURSIVE that
# never ends, and no query a person means to run over a store of this size takes as long.
SQL_TIMEOUT_S = 10.0
# How often (SQLite virtual machine steps) nbmlops.sql looks at the clock: about every 0.1 ms,
# far below the budget, and too rarely to cost anything measurable.
_PROGRESS_STEPS = 10_000

Row = dict[str, Any]


class Store:
    """An nbmlops store: ``<home>/nbmlops.db`` and ``<home>/objects/``.

    ``Store(path)`` takes the ``.nbmlops`` folder, the ``nbmlops.db`` file in it, or a project
    folder that holds one (``None``: the location rule); making one touches no file. The
    directory and schema are created by the first write and upgraded by migrations; reading a
    store that does not exist raises StoreNotFoundError. A file at the path that is not an
    nbmlops store is never touched. Public functions take any of these as ``store=`` (see
    :func:`nbmlops.store.open_store`).
    """

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, busy_timeout: float = BUSY_TIMEOUT_S
    ) -> None:
        self._location = locate(path)
        home = self.home = self._location.home
        self.busy_timeout = busy_timeout
        self.db_path = home / config.DB_FILENAME
        self.objects = ObjectStore(home / config.OBJECTS_DIRNAME)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()
        self._depth = 0  # how many atomic() blocks the lock holder is inside
        self._read_only = False

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Store:
        """A store with its connection open (created and migrated if needed)."""
        return cls(path).create()

    def __repr__(self) -> str:
        return f"Store({str(self.home)!r})"

    # -- connection --------------------------------------------------------------------------

    def connection(self, *, create: bool = False) -> sqlite3.Connection:
        """The store's connection, opened on first use: for reading (StoreNotFoundError where
        there is no store; nothing is created) unless ``create``, which creates the store."""
        if self._conn is None:
            with self._lock:
                if self._conn is None:
                    self._conn = self._connect(create)
        return self._conn

    def create(self) -> Store:
        """Open the store, creating its folder and schema if there is none yet."""
        self.connection(create=True)
        return self

    def exists(self) -> bool:
        """Whether there is a store here to read (its database file, not empty)."""
        if self._conn is not None:
            return True
        try:
            return self.db_path.is_file() and self.db_path.stat().st_size > 0
        except OSError:
            return False

    @property
    def read_only(self) -> bool:
        """Whether this process can only read the store (opened for reading if it was not)."""
        self.connection()
        return self._read_only

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self, create: bool) -> sqlite3.Connection:
        if not self.exists():
            if not create:
                raise StoreNotFoundError(self._location.searched, self._location.rule)
            self._make_home()
        self._check_is_sqlite()
        if self.db_path.exists() and not self._writable():
            return self._connect_read_only()
        try:
            conn = self._sqlite(str(self.db_path))
        except sqlite3.DatabaseError as exc:
            raise self._map_error(exc) from exc
        with self._closed_on_failure(conn):
            self._check_is_ours(conn)  # before anything is written (journal mode, migrations)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._migrate(conn)
        self._read_only = False
        return conn

    def _sqlite(self, target: str, uri: bool = False) -> sqlite3.Connection:
        return sqlite3.connect(
            target,
            uri=uri,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
        )

    def _writable(self) -> bool:
        # os.access asks the kernel, so a read-only mount (EROFS) counts as well as permissions.
        return os.access(self.db_path, os.W_OK) and os.access(self.home, os.W_OK)

    def _make_home(self) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"Cannot create the store folder {self.home}: {exc}", self.home
            ) from exc
        if not os.access(self.home, os.W_OK):
            raise StoreReadOnlyError(
                f"Cannot create a store at {self.db_path}: the folder {self.home} is read-only. "
                "Make it writable, or record into another store (store=, --store or "
                "NBMLOPS_HOME).",
                self.db_path,
            )

    def _connect_read_only(self) -> sqlite3.Connection:
        conn = self._read_only_connection()
        with self._closed_on_failure(conn):
            self._check_is_ours(conn)
            if self._pending_migrations(conn):
                raise self._read_only_error(
                    "and was made by an older nbmlops: its schema must be upgraded before it can "
                    "be read, which needs write access once"
                )
            conn.execute("PRAGMA query_only = ON")
        self._read_only = True
        return conn

    @contextmanager
    def _closed_on_failure(self, conn: sqlite3.Connection) -> Iterator[None]:
        """Set up a new connection: on any failure it is closed, SQLite's errors mapped."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise self._map_error(exc) from exc
        except BaseException:
            conn.close()
            raise

    def _read_only_connection(self) -> sqlite3.Connection:
        """A connection that cannot write (SQLite's ``mode=ro``), checked to open.

        A reader of a WAL database needs the ``-shm`` index, which SQLite creates next to the
        database. In a folder this process cannot write, and with no ``-wal`` content to miss
        (the last writer closed cleanly), the file is opened ``immutable`` instead: nobody can be
        writing it, so SQLite may skip the index and the locks.
        """
        uri = f"{self.db_path.as_uri()}?mode=ro"
        wal = self.db_path.with_name(self.db_path.name + "-wal")
        try:
            conn = self._sqlite(uri, uri=True)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                no_index = exc.sqlite_errorcode == sqlite3.SQLITE_CANTOPEN
                if not no_index or os.access(self.home, os.W_OK) or _has_content(wal):
                    raise
            conn = self._sqlite(f"{uri}&immutable=1", uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as exc:
            raise self._map_error(exc) from exc

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

    def _check_is_ours(self, conn: sqlite3.Connection) -> None:
        """Refuse an SQLite database of something else, having only read its table names."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "runs" not in tables and "_sqlite_migrations" not in tables:
            raise StoreCorruptError(
                f"{self.db_path} is an SQLite database of something else (tables: "
                f"{', '.join(sorted(tables)[:5])}). It was left untouched; choose another "
                "store path.",
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
        if "readonly" in text or "read-only" in text:
            return self._read_only_error(f"({exc})")
        if "full" in text or "disk i/o" in text:
            return StoreError(f"Cannot write the store {self.db_path}: {exc}", self.db_path)
        return StoreError(f"Store {self.db_path}: {exc}", self.db_path)

    def _read_only_error(self, why: str) -> StoreReadOnlyError:
        return StoreReadOnlyError(
            f"The store {self.db_path} is read-only {why}. It can be read, but nothing can be "
            "recorded in it: make the file and its folder writable, or record into another "
            "store (store=, --store or NBMLOPS_HOME).",
            self.db_path,
        )

    def _execute_write(self, conn: sqlite3.Connection, sql: str) -> None:
        try:
            conn.execute(sql)
        except sqlite3.OperationalError as exc:
            raise self._map_error(exc) from exc
        except sqlite3.DatabaseError as exc:
            # BEGIN IMMEDIATE against another connection's EXCLUSIVE lock has been seen to give
            # up with "no more rows available" (SQLite's SQLITE_DONE text) rather than "database
            # is locked" once the busy timeout ran out (seen once in CI under load): the same
            # lock, so the same StoreLockedError (a 503 to retry when served), not a crash.
            if "no more rows available" in str(exc).lower():
                locked = sqlite3.OperationalError(f"database is locked ({exc})")
                raise self._map_error(locked) from exc
            raise self._map_error(exc) from exc

    @contextmanager
    def atomic(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together or not at all.

        The outermost block is a ``BEGIN IMMEDIATE`` transaction; a block inside another is a
        savepoint, rolled back alone when its body raises. The store's lock is held throughout,
        so other threads of this process wait rather than interleave their statements.
        """
        conn = self.connection(create=True)
        if self._read_only:
            raise self._read_only_error("(its file, its folder or its file system is not writable)")
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

    def read_sql(
        self, query: str, *, timeout: float | None = SQL_TIMEOUT_S
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement on a separate read-only connection, stopped after
        ``timeout`` seconds (``None``: no limit)."""
        self.connection()  # StoreNotFoundError where there is none; migrates an old store
        conn = self._read_only_connection()
        try:
            conn.execute("PRAGMA query_only = ON")
            authorizer = _ReadOnlyAuthorizer()
            conn.set_authorizer(authorizer)
            if timeout is not None:
                deadline = time.monotonic() + timeout
                conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_STEPS)
            try:
                cur = conn.execute(query)
                if cur.description is None:
                    raise ReadOnlyQueryError(query, "the statement returned no rows")
                return [d[0] for d in cur.description], cur.fetchall()
            except (sqlite3.Warning, sqlite3.ProgrammingError) as exc:
                if "one statement" in str(exc):
                    raise ReadOnlyQueryError(query, "give one statement at a time") from exc
                raise StoreError(f"SQL error: {exc}. Query was: {query.strip()[:200]!r}") from exc
            except sqlite3.DatabaseError as exc:
                code = getattr(exc, "sqlite_errorcode", None)
                if code == sqlite3.SQLITE_INTERRUPT and timeout is not None:
                    raise StoreError(
                        f"nbmlops.sql stopped the query after {timeout:g} s, its time limit (a "
                        "WITH RECURSIVE without an end?). Give it longer with "
                        "nbmlops.sql(query, timeout=60), or timeout=None for no limit. Query "
                        f"was: {query.strip()[:200]!r}",
                        self.db_path,
                    ) from exc
                # Refused while preparing: "not authorized"; while running (VACUUM): SQLITE_AUTH.
                if code == sqlite3.SQLITE_AUTH or "not authorized" in str(exc):
                    reason = authorizer.refused or "only SELECT statements are allowed"
                    raise ReadOnlyQueryError(query, reason) from exc
                raise StoreError(f"SQL error: {exc}. Query was: {query.strip()[:200]!r}") from exc
        finally:
            conn.close()


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


# The functions nbmlops.sql may call: SQLite's documented core scalar, aggregate, window, date,
# math and JSON functions (sqlite.org/lang_corefunc.html, lang_aggfunc.html, windowfunctions.html,
# lang_datefunc.html, lang_mathfunc.html, json1.html). Anything else is refused, whatever a
# build adds: load_extension, fts3_tokenizer, readfile/writefile (the shell's), an application's.
_SQL_FUNCTIONS = frozenset(
    """
    abs changes char coalesce concat concat_ws format glob hex ifnull iif instr
    last_insert_rowid length like likelihood likely lower ltrim max min nullif octet_length
    printf quote random randomblob replace round rtrim sign soundex sqlite_compileoption_get
    sqlite_compileoption_used sqlite_offset sqlite_source_id sqlite_version substr substring
    total_changes trim typeof unhex unicode unlikely upper zeroblob
    avg count group_concat string_agg sum total
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value
    nth_value
    date time datetime julianday unixepoch strftime timediff current_date current_time
    current_timestamp
    acos acosh asin asinh atan atan2 atanh ceil ceiling cos cosh degrees exp floor ln log log10
    log2 mod pi pow power radians sin sinh sqrt tan tanh trunc
    json jsonb json_array jsonb_array json_array_length json_error_position json_extract
    jsonb_extract -> ->> json_insert jsonb_insert json_object jsonb_object json_patch
    jsonb_patch json_pretty json_remove jsonb_remove json_replace jsonb_replace json_set
    jsonb_set json_type json_valid json_quote json_group_array jsonb_group_array
    json_group_object jsonb_group_object
    """.split()  # noqa: SIM905 - grouped as the SQLite documentation groups them
)
# Statements that only read: SELECT, reading columns, function calls (checked by name above) and
# WITH RECURSIVE / window frames (SQLITE_RECURSIVE).
_READ_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


class _ReadOnlyAuthorizer:
    """SQLite's authorizer callback for nbmlops.sql; remembers why it refused, for the message."""

    def __init__(self) -> None:
        self.refused: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, *_: object) -> int:
        if action == sqlite3.SQLITE_FUNCTION:
            if arg2 is not None and arg2.lower() in _SQL_FUNCTIONS:
                return sqlite3.SQLITE_OK
            self.refused = (
                f"the function {arg2}() is not one it allows (SQLite's core, aggregate, window, "
                "date, math and JSON functions)"
            )
            return sqlite3.SQLITE_DENY
        if action in _READ_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_UPDATE and arg1 == "sqlite_master":
            # What SQLite asks when it first sets up a table-valued function (json_each,
            # json_tree) on a connection: nothing is written (the connection is read-only).
            return sqlite3.SQLITE_OK
        self.refused = self.refused or "only SELECT statements are allowed"
        return sqlite3.SQLITE_DENY
