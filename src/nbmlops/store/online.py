"""The online store: the latest feature values per entity, in ``<store home>/online.sqlite``.

A file of its own beside ``nbmlops.db`` (WAL), so a model server reading features never waits
on a tracking write, and a read touches only this file. Its content is derived: every row can
be rebuilt by materialising again from the offline rows, so it is not part of the documented
schema's migrations; ``PRAGMA user_version`` says which layout a file has.

Tables:

- ``online_views``: one row per materialised (view, version): its key columns, features
  ([name, arrow dtype] pairs), TTL and the end of the furthest materialised window. A read
  uses the highest materialised version of a view unless it names one.
- ``online_rows``: one row per (view, version, entity key): the event and created time of the
  offline row it holds (integer nanoseconds since the epoch, UTC, so comparisons are exact),
  when it was written, and the feature values as a JSON array in the view's feature order.
  The key is the JSON array of the key values: ``["1","23"]`` and ``["12","3"]`` stay apart,
  unlike Feast's concatenated composite keys.

Writes upsert under an **event-time guard**: a row replaces the held one only when its
(event time, created time) is not earlier, in the same statement, so an older materialisation
finishing after a newer one, or two at once, never puts older values back (a full tie is won by
the later write: offline rows corrected in place reach the online store).

Reads are the hot path of serving (issue #17: p99 at most half of Feast's 0.36 ms). Each thread
keeps one connection per file, and each connection a cache of the views' metadata checked
against ``PRAGMA data_version`` on every read: a materialisation by any other connection is
seen at once (Feast's registry cache is stale for up to 600 s, feast#5664).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nbmlops.errors import StoreError

FILENAME = "online.sqlite"
_LAYOUT = 1
_BUSY_TIMEOUT_S = 10.0
# Bound parameters per IN (...) list: far below SQLite's limit of 32,766.
_CHUNK = 500

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS online_views (
        name        TEXT NOT NULL,
        version     INTEGER NOT NULL,
        keys        TEXT NOT NULL,      -- JSON list of the key columns
        features    TEXT NOT NULL,      -- JSON [[name, arrow dtype], ...], the values' order
        ttl_seconds REAL NOT NULL,      -- 0: no TTL
        end_ts      REAL NOT NULL,      -- the furthest materialised window end (epoch seconds)
        updated_at  REAL NOT NULL,
        PRIMARY KEY (name, version)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS online_rows (
        view            TEXT NOT NULL,
        version         INTEGER NOT NULL,
        entity_key      TEXT NOT NULL,  -- JSON array of the key values
        event_ns        INTEGER NOT NULL,
        created_ns      INTEGER NOT NULL,  -- of the offline row; -2**63 when none
        materialized_at REAL NOT NULL,
        feature_values  TEXT NOT NULL,  -- JSON array, in online_views.features order
        PRIMARY KEY (view, version, entity_key)
    ) WITHOUT ROWID""",
)

_UPSERT = (
    "INSERT INTO online_rows (view, version, entity_key, event_ns, created_ns, "
    "materialized_at, feature_values) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (view, version, entity_key) DO UPDATE SET event_ns = excluded.event_ns, "
    "created_ns = excluded.created_ns, materialized_at = excluded.materialized_at, "
    "feature_values = excluded.feature_values "
    "WHERE (excluded.event_ns, excluded.created_ns) "
    ">= (online_rows.event_ns, online_rows.created_ns)"
)


@dataclass(frozen=True)
class OnlineView:
    """What a read needs of one materialised view version, from the online file alone."""

    name: str
    version: int
    keys: tuple[str, ...]
    features: tuple[tuple[str, str], ...]
    ttl_seconds: float
    end_ts: float

    @property
    def feature_names(self) -> list[str]:
        return [name for name, _ in self.features]


def encode_key(values: Iterable[Any]) -> str:
    """The online key of one entity: the JSON array of its key values. Integral numbers are
    written as integers (a driver 1001 asked as 1001.0 or numpy.int64(1001) is the same
    driver); other values as JSON writes them, strings quoted, so no two tuples collide."""
    return json.dumps([_key_part(v) for v in values], separators=(",", ":"), default=str)


def _key_part(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if hasattr(value, "__index__"):  # numpy integers
        return int(value.__index__())
    if hasattr(value, "item"):  # other numpy scalars
        return _key_part(value.item())
    return value


def decode_key(key: str) -> list[Any]:
    return list(json.loads(key))


class OnlineStore:
    """The online file of one store home; one connection per thread (and per process: a
    connection inherited over ``fork`` is never used)."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / FILENAME
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"OnlineStore({str(self.path)!r})"

    def exists(self) -> bool:
        """Whether the file is there (this thread holding a connection to it says so)."""
        if getattr(self._local, "conn", None) is not None and self._local.pid == os.getpid():
            return True
        return self.path.is_file()

    def _conn(self, create: bool = False) -> sqlite3.Connection:
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid():
            return conn
        if not create and not self.exists():
            raise StoreError(f"There is no online store at {self.path}.", self.path)
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(self.path),
                timeout=_BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            layout = conn.execute("PRAGMA user_version").fetchone()[0]
            if layout == 0:
                conn.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_LAYOUT}")
                conn.execute("COMMIT")
            elif layout != _LAYOUT:
                conn.close()
                raise StoreError(
                    f"The online store {self.path} has layout {layout}, this nbmlops reads "
                    f"{_LAYOUT}; delete the file and materialise again (it only holds copies "
                    "of offline rows).",
                    self.path,
                )
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Online store {self.path}: {exc}", self.path) from exc
        local.conn, local.pid, local.views, local.seen = conn, os.getpid(), {}, None
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- reads ---------------------------------------------------------------------------------

    def cache(self) -> dict[Any, Any]:
        """This thread's cache of what was read of the metadata, emptied whenever any
        connection has committed to the file since it was last asked for."""
        conn = self._conn()
        local = self._local
        seen = conn.execute("PRAGMA data_version").fetchone()[0]
        if seen != local.seen:
            local.views = {}
            local.seen = seen
        cached: dict[Any, Any] = local.views
        return cached

    def view(self, name: str, version: int | None = None) -> OnlineView | None:
        """The materialised version ``version`` of ``name`` (the highest when None), or None;
        cached (:meth:`cache`)."""
        cached = self.cache()
        key = ("view", name, version)
        if key not in cached:
            conn = self._conn()
            if version is None:
                row = conn.execute(
                    "SELECT name, version, keys, features, ttl_seconds, end_ts FROM online_views "
                    "WHERE name = ? ORDER BY version DESC LIMIT 1",
                    (name,),
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT name, version, keys, features, ttl_seconds, end_ts FROM online_views "
                    "WHERE name = ? AND version = ?",
                    (name, version),
                ).fetchone()
            cached[key] = None if row is None else _online_view(row)
        view: OnlineView | None = cached[key]
        return view

    def views(self) -> list[OnlineView]:
        rows = self._conn().execute(
            "SELECT name, version, keys, features, ttl_seconds, end_ts FROM online_views "
            "ORDER BY name, version"
        )
        return [_online_view(r) for r in rows]

    def rows(self, view: OnlineView, keys: Sequence[str]) -> dict[str, tuple[int, str]]:
        """The held rows of ``keys`` (encoded): key -> (event_ns, JSON values)."""
        conn = self._conn()
        out: dict[str, tuple[int, str]] = {}
        if len(keys) == 1:
            row = conn.execute(
                "SELECT event_ns, feature_values FROM online_rows "
                "WHERE view = ? AND version = ? AND entity_key = ?",
                (view.name, view.version, keys[0]),
            ).fetchone()
            if row is not None:
                out[keys[0]] = row
            return out
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start : start + _CHUNK])
            marks = ", ".join("?" * len(chunk))
            for key, event_ns, values in conn.execute(
                "SELECT entity_key, event_ns, feature_values FROM online_rows "
                f"WHERE view = ? AND version = ? AND entity_key IN ({marks})",
                (view.name, view.version, *chunk),
            ):
                out[key] = (event_ns, values)
        return out

    def sample_key(self, view: OnlineView) -> list[Any] | None:
        """One held entity key of a view version (decoded), None when it holds none: what
        kind of value each key column has."""
        row = (
            self._conn()
            .execute(
                "SELECT entity_key FROM online_rows WHERE view = ? AND version = ? LIMIT 1",
                (view.name, view.version),
            )
            .fetchone()
        )
        return None if row is None else decode_key(row[0])

    def all_rows(self, name: str, version: int) -> list[tuple[str, int, int, str]]:
        """Every held row of a view version: (key, event_ns, created_ns, JSON values)."""
        return (
            self._conn()
            .execute(
                "SELECT entity_key, event_ns, created_ns, feature_values FROM online_rows "
                "WHERE view = ? AND version = ? ORDER BY entity_key",
                (name, version),
            )
            .fetchall()
        )

    # -- writes --------------------------------------------------------------------------------

    def upsert(
        self,
        view: OnlineView,
        rows: Iterable[tuple[str, int, int, str]],
        materialized_at: float,
    ) -> int:
        """Write ``rows`` (key, event_ns, created_ns, JSON values) under the event-time guard
        and record the view's metadata, in one transaction; how many rows were inserted or
        replaced (a row earlier than the held one is not written)."""
        conn = self._conn(create=True)
        params = (
            (view.name, view.version, key, event_ns, created_ns, materialized_at, values)
            for key, event_ns, created_ns, values in rows
        )
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                written = conn.executemany(_UPSERT, params).rowcount
                conn.execute(
                    "INSERT INTO online_views (name, version, keys, features, ttl_seconds, "
                    "end_ts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (name, version) DO UPDATE SET "
                    "end_ts = max(end_ts, excluded.end_ts), updated_at = excluded.updated_at",
                    (
                        view.name,
                        view.version,
                        json.dumps(list(view.keys)),
                        json.dumps([list(f) for f in view.features]),
                        view.ttl_seconds,
                        view.end_ts,
                        materialized_at,
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Online store {self.path}: {exc}", self.path) from exc
        # This connection's own commit does not move its data_version.
        self._local.seen = None
        return max(written, 0)


def _online_view(row: Sequence[Any]) -> OnlineView:
    return OnlineView(
        name=row[0],
        version=int(row[1]),
        keys=tuple(json.loads(row[2])),
        features=tuple((f[0], f[1]) for f in json.loads(row[3])),
        ttl_seconds=float(row[4]),
        end_ts=float(row[5]),
    )


_handles: dict[Path, OnlineStore] = {}
_handles_lock = threading.Lock()


def online_store(home: Path) -> OnlineStore:
    """The process' one :class:`OnlineStore` for the store at ``home``."""
    handle = _handles.get(home)
    if handle is None:
        with _handles_lock:
            handle = _handles.setdefault(home, OnlineStore(home))
    return handle
