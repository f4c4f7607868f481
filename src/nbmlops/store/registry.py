"""The model registry's queries: every SQL statement of :mod:`nbmlops.registry` lives here.

Tables (docs/schema.md, migrations ``0003_registry``, ``0006_object_digests`` and
``0008_object_chunks``): ``models``, ``model_versions`` (immutable: triggers refuse UPDATE and
DELETE), ``model_events`` (append-only, same triggers), ``model_loads``, ``object_digests`` (each
artifact's BLAKE3 digest, keyed by its sha256; append-only) and ``object_chunks`` (the BLAKE3
digest of each chunk of it; append-only). Nothing here updates or deletes a row: where an alias
points, whether a version is deprecated or deleted, are all read from the events.

Current state is read in commit order (``event_id``); "at a past moment" is read by the events'
``at`` time, ties broken by ``event_id``. Writes that check something before writing (the next
version number, an alias still pointing where a promotion saw it, a version nobody uses) do the
check inside the same ``BEGIN IMMEDIATE`` transaction as the write, so two processes cannot
interleave between them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.errors import RegistryError
from nbmlops.store.db import Row, Store
from nbmlops.store.objects import ChunkDigests

ALIAS_KINDS = ("alias_set", "alias_removed")

_VERSION_COLUMNS = (
    "name, version, sha256, size, format, class, run_id, signature, datasets, metrics, "
    "libraries, description, created_by, created_at"
)
# A version with its artifact's BLAKE3 digests, whole and per chunk (NULL until recorded).
_VERSION_SELECT = (
    "SELECT "
    + ", ".join(f"v.{c.strip()}" for c in _VERSION_COLUMNS.split(","))
    + ", d.blake3, c.chunk_size, c.size AS chunked_size, c.digests AS chunk_digests "
    "FROM model_versions v LEFT JOIN object_digests d ON d.sha256 = v.sha256 "
    "LEFT JOIN object_chunks c ON c.sha256 = v.sha256"
)


def _rows(cursor: sqlite3.Cursor) -> list[Row]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _read(store: Store, sql: str, params: Sequence[object] = ()) -> list[Row]:
    return store.query_dicts(sql, params)


def _insert_event(conn: sqlite3.Connection, event: Mapping[str, Any]) -> int:
    payload = event.get("payload")
    cursor = conn.execute(
        "INSERT INTO model_events (name, version, kind, alias, payload, actor, host, at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event["name"],
            event.get("version"),
            event["kind"],
            event.get("alias"),
            None if payload is None else json.dumps(payload, sort_keys=True, default=str),
            event.get("actor"),
            event.get("host"),
            event["at"],
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _insert_digest(
    conn: sqlite3.Connection, sha256: str, blake3: str, size: int, at: float
) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO object_digests (sha256, blake3, size, created_at) "
        "VALUES (?, ?, ?, ?)",
        (sha256, blake3, size, at),
    )


def _insert_chunks(conn: sqlite3.Connection, sha256: str, chunks: ChunkDigests, at: float) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO object_chunks (sha256, chunk_size, size, digests, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (sha256, chunks.chunk_size, chunks.size, chunks.digests, at),
    )


def _alias_target(conn: sqlite3.Connection, name: str, alias: str) -> int | None:
    row = conn.execute(
        "SELECT kind, version FROM model_events WHERE name = ? AND alias = ? "
        "AND kind IN ('alias_set', 'alias_removed') ORDER BY event_id DESC LIMIT 1",
        (name, alias),
    ).fetchone()
    if row is None or row[0] != "alias_set":
        return None
    return int(row[1])


# -- models and versions --------------------------------------------------------------------


def model_names(store: Store) -> list[str]:
    return [str(r[0]) for r in store.query("SELECT name FROM models ORDER BY name")]


def model_row(store: Store, name: str) -> Row | None:
    rows = _read(store, "SELECT name, description, created_at FROM models WHERE name = ?", (name,))
    return rows[0] if rows else None


def version_row(store: Store, name: str, version: int) -> Row | None:
    rows = _read(
        store,
        f"{_VERSION_SELECT} WHERE v.name = ? AND v.version = ?",
        (name, version),
    )
    return rows[0] if rows else None


def version_numbers(store: Store, name: str) -> list[int]:
    rows = store.query(
        "SELECT version FROM model_versions WHERE name = ? ORDER BY version", (name,)
    )
    return [int(r[0]) for r in rows]


def latest_live_version(store: Store, name: str) -> int | None:
    """The highest version of ``name`` that has not been deleted."""
    rows = store.query(
        "SELECT MAX(version) FROM model_versions v WHERE name = ? AND NOT EXISTS ("
        "SELECT 1 FROM model_events e WHERE e.name = v.name AND e.version = v.version "
        "AND e.kind = 'deleted')",
        (name,),
    )
    return None if not rows or rows[0][0] is None else int(rows[0][0])


def register_version(
    store: Store, row: Mapping[str, Any], event: Mapping[str, Any], model_description: str | None
) -> tuple[Row, bool]:
    """Insert a new version of ``row['name']`` with the next number and its ``registered`` event,
    and the artifact's ``row['blake3']`` digest and ``row['chunks']`` digests unless they are
    recorded already.

    If the model already has a version with the same ``sha256``, no version is written and that
    version is returned with ``False``.
    """
    name = row["name"]
    with store.atomic() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO models (name, description, created_at) VALUES (?, ?, ?)",
            (name, model_description, row["created_at"]),
        )
        _insert_digest(conn, row["sha256"], row["blake3"], row["size"], row["created_at"])
        _insert_chunks(conn, row["sha256"], row["chunks"], row["created_at"])
        existing = _rows(
            conn.execute(
                f"{_VERSION_SELECT} WHERE v.name = ? AND v.sha256 = ?",
                (name, row["sha256"]),
            )
        )
        if existing:
            return existing[0], False
        last = conn.execute(
            "SELECT MAX(version) FROM model_versions WHERE name = ?", (name,)
        ).fetchone()[0]
        version = 1 if last is None else int(last) + 1
        conn.execute(
            "INSERT INTO model_versions (name, version, sha256, size, format, class, run_id, "
            "signature, datasets, metrics, libraries, description, created_by, created_at) "
            "VALUES (:name, :version, :sha256, :size, :format, :class, :run_id, :signature, "
            ":datasets, :metrics, :libraries, :description, :created_by, :created_at)",
            {**row, "version": version},
        )
        _insert_event(conn, {**event, "name": name, "version": version, "kind": "registered"})
        # Read back with the digests as recorded (an object registered before keeps its own).
        new = _rows(
            conn.execute(f"{_VERSION_SELECT} WHERE v.name = ? AND v.version = ?", (name, version))
        )
    return new[0], True


def versions_of(store: Store, name: str) -> list[Row]:
    return _read(
        store,
        f"{_VERSION_SELECT} WHERE v.name = ? ORDER BY v.version",
        (name,),
    )


def models_overview(store: Store) -> list[Row]:
    """One row per model: description, first registration, latest version, last event."""
    return _read(
        store,
        "SELECT m.name, m.description, m.created_at, "
        "(SELECT MAX(version) FROM model_versions v WHERE v.name = m.name) AS latest_version, "
        "(SELECT COUNT(*) FROM model_versions v WHERE v.name = m.name) AS versions, "
        "(SELECT MAX(at) FROM model_events e WHERE e.name = m.name) AS updated_at "
        "FROM models m ORDER BY m.name",
    )


# -- version state: deprecated, deleted -----------------------------------------------------


def lifecycle_events(store: Store, name: str, version: int | None = None) -> list[Row]:
    """``deprecated`` and ``deleted`` events of a model (or one version), oldest first."""
    sql = (
        "SELECT event_id, version, kind, payload, actor, at FROM model_events "
        "WHERE name = ? AND kind IN ('deprecated', 'deleted')"
    )
    params: list[object] = [name]
    if version is not None:
        sql += " AND version = ?"
        params.append(version)
    return _read(store, sql + " ORDER BY event_id", params)


# -- aliases --------------------------------------------------------------------------------


def current_aliases(store: Store, name: str) -> dict[str, int]:
    """alias -> version, for every alias of ``name`` that points somewhere now."""
    rows = store.query(
        "SELECT e.alias, e.kind, e.version FROM model_events e JOIN ("
        "SELECT MAX(event_id) AS last FROM model_events WHERE name = ? "
        "AND kind IN ('alias_set', 'alias_removed') GROUP BY alias) m ON e.event_id = m.last "
        "ORDER BY e.alias",
        (name,),
    )
    return {str(r[0]): int(r[2]) for r in rows if r[1] == "alias_set"}


def all_current_aliases(store: Store) -> dict[str, dict[str, int]]:
    """model -> {alias -> version} for every model."""
    rows = store.query(
        "SELECT e.name, e.alias, e.kind, e.version FROM model_events e JOIN ("
        "SELECT MAX(event_id) AS last FROM model_events "
        "WHERE kind IN ('alias_set', 'alias_removed') GROUP BY name, alias) m "
        "ON e.event_id = m.last ORDER BY e.name, e.alias"
    )
    out: dict[str, dict[str, int]] = {}
    for model, alias, kind, version in rows:
        if kind == "alias_set":
            out.setdefault(str(model), {})[str(alias)] = int(version)
    return out


def alias_target(store: Store, name: str, alias: str) -> int | None:
    return _alias_target(store.connection(), name, alias)


def alias_target_at(store: Store, name: str, alias: str, at: float) -> Row | None:
    """The last alias event of (``name``, ``alias``) at or before ``at``, or None."""
    rows = _read(
        store,
        "SELECT event_id, kind, version, at, actor FROM model_events "
        "WHERE name = ? AND alias = ? AND kind IN ('alias_set', 'alias_removed') AND at <= ? "
        "ORDER BY at DESC, event_id DESC LIMIT 1",
        (name, alias, at),
    )
    return rows[0] if rows else None


def move_alias(store: Store, event: Mapping[str, Any]) -> int | None:
    """Record an ``alias_set`` or ``alias_removed`` event; returns where the alias pointed."""
    with store.atomic() as conn:
        previous = _alias_target(conn, event["name"], event["alias"])
        if event["kind"] == "alias_removed":
            if previous is None:
                return None
            event = {**event, "version": previous}
        elif previous == event["version"]:
            return previous  # already there: not a move, nothing to record
        _insert_event(
            conn, {**event, "payload": {**event.get("payload", {}), "previous": previous}}
        )
    return previous


# -- events ---------------------------------------------------------------------------------


def append_event(store: Store, event: Mapping[str, Any]) -> int:
    with store.atomic() as conn:
        return _insert_event(conn, event)


def registration_payload(store: Store, name: str, version: int) -> dict[str, Any]:
    """The payload of the ``registered`` event of ``name``/``version`` ({} if it has none)."""
    rows = store.query(
        "SELECT payload FROM model_events WHERE name = ? AND version = ? AND kind = 'registered' "
        "ORDER BY event_id LIMIT 1",
        (name, version),
    )
    if not rows or rows[0][0] is None:
        return {}
    payload = json.loads(rows[0][0])
    return payload if isinstance(payload, dict) else {}


def events_of(store: Store, name: str) -> list[Row]:
    return _read(
        store,
        "SELECT event_id, at, kind, version, alias, actor, host, payload FROM model_events "
        "WHERE name = ? ORDER BY at, event_id",
        (name,),
    )


def record_promotion(
    store: Store,
    decision: Mapping[str, Any],
    alias_event: Mapping[str, Any] | None,
    expected_champion: int | None,
) -> int:
    """Record a promotion decision and, when it passed, the alias move, in one transaction.

    The rules were evaluated against ``expected_champion``; if the alias moved since, nothing is
    written and a RegistryError asks for the promotion to be run again.
    """
    name, alias = decision["name"], decision["alias"]
    with store.atomic() as conn:
        now = _alias_target(conn, name, alias)
        if now != expected_champion:
            raise RegistryError(
                f"{name}@{alias} moved from version {expected_champion} to {now} while version "
                f"{decision['version']} was being evaluated; nothing was recorded. Run the "
                "promotion again to evaluate against the new champion."
            )
        event_id = _insert_event(conn, decision)
        if alias_event is not None:
            payload = {**alias_event.get("payload", {}), "previous": now, "promotion": event_id}
            _insert_event(conn, {**alias_event, "payload": payload})
    return event_id


# -- loads and deletion ---------------------------------------------------------------------


def record_load(
    store: Store,
    load: Mapping[str, Any],
    digest: tuple[str, str, int] | None = None,
    chunks: tuple[str, ChunkDigests] | None = None,
) -> None:
    """Record one load; ``digest`` (sha256, blake3, size) also records the artifact's BLAKE3
    digest, for a version registered before ``object_digests`` existed, and ``chunks`` (sha256,
    chunk digests) its chunk digests, for one registered before ``object_chunks`` existed."""
    with store.atomic() as conn:
        if digest is not None:
            _insert_digest(conn, *digest, load["at"])
        if chunks is not None:
            _insert_chunks(conn, *chunks, load["at"])
        conn.execute(
            "INSERT INTO model_loads (name, version, consumer, host, pid, at) "
            "VALUES (:name, :version, :consumer, :host, :pid, :at)",
            load,
        )


def _consumers_sql(since: float | None) -> tuple[str, str]:
    where = "WHERE name = ? AND version = ?" + ("" if since is None else " AND at >= ?")
    return (
        "SELECT consumer, host, COUNT(*) AS loads, MIN(at) AS first_load, MAX(at) AS last_load, "
        "(SELECT l2.pid FROM model_loads l2 WHERE l2.name = l.name AND l2.version = l.version "
        "AND l2.consumer IS l.consumer AND l2.host IS l.host ORDER BY l2.at DESC, l2.load_id DESC "
        f"LIMIT 1) AS last_pid FROM model_loads l {where} GROUP BY consumer, host "
        "ORDER BY last_load DESC",
        where,
    )


def consumers_of(store: Store, name: str, version: int, since: float | None = None) -> list[Row]:
    """Who loaded ``name``/``version`` (since a moment): one row per consumer and host."""
    sql, _ = _consumers_sql(since)
    params: list[object] = [name, version] + ([] if since is None else [since])
    return _read(store, sql, params)


def record_deletion(
    store: Store, event: Mapping[str, Any], loads_since: float
) -> tuple[list[str], list[Row]]:
    """Record a ``deleted`` event unless an alias points at the version or it was loaded since
    ``loads_since``; returns those aliases and consumers (both empty when the event was written).
    """
    name, version = event["name"], event["version"]
    with store.atomic() as conn:
        alias_rows = conn.execute(
            "SELECT e.alias, e.kind, e.version FROM model_events e JOIN ("
            "SELECT MAX(event_id) AS last FROM model_events WHERE name = ? "
            "AND kind IN ('alias_set', 'alias_removed') GROUP BY alias) m "
            "ON e.event_id = m.last",
            (name,),
        ).fetchall()
        aliases = sorted(
            str(a) for a, kind, v in alias_rows if kind == "alias_set" and v == version
        )
        sql, _ = _consumers_sql(loads_since)
        loads = _rows(conn.execute(sql, (name, version, loads_since)))
        if aliases or loads:
            return aliases, loads
        _insert_event(conn, event)
    return [], []
