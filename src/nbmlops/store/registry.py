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
check inside the same :meth:`~nbmlops.store.Store.atomic` block as the write, so two processes
cannot interleave between them. Only the Store's public methods are used here, and rows leave as
the NamedTuples below (JSON columns still text: decoding them is the domain's business).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from nbmlops.errors import RegistryError
from nbmlops.store.db import Store
from nbmlops.store.objects import ChunkDigests

ALIAS_KINDS = ("alias_set", "alias_removed")


class VersionRow(NamedTuple):
    """A ``model_versions`` row (JSON columns still text) with its artifact's BLAKE3 digests,
    whole and per chunk (None until recorded)."""

    name: str
    version: int
    sha256: str
    size: int
    format: str
    model_class: str | None
    run_id: str | None
    signature: str | None
    datasets: str | None
    metrics: str | None
    libraries: str | None
    description: str | None
    created_by: str | None
    created_at: float
    blake3: str | None
    chunk_size: int | None
    chunked_size: int | None
    chunk_digests: bytes | None


class ModelSummary(NamedTuple):
    """One model of :func:`models_overview`: first registration, versions, last event."""

    name: str
    description: str | None
    created_at: float
    latest_version: int | None
    versions: int
    updated_at: float | None


class EventRow(NamedTuple):
    """A ``model_events`` row; ``payload`` is the JSON text as stored."""

    event_id: int
    at: float
    kind: str
    version: int | None
    alias: str | None
    actor: str | None
    host: str | None
    payload: str | None


class ConsumerRow(NamedTuple):
    """Who loaded a version: one consumer on one host."""

    consumer: str | None
    host: str | None
    loads: int
    first_load: float
    last_load: float
    last_pid: int | None


class Registered(NamedTuple):
    """What :func:`register_version` wrote: the version, and whether it is new."""

    row: VersionRow
    created: bool


class DeletionBlockers(NamedTuple):
    """Why :func:`record_deletion` wrote nothing: aliases pointing at the version and recent
    consumers (both empty when the ``deleted`` event was written)."""

    aliases: list[str]
    loads: list[ConsumerRow]


_VERSION_SELECT = (
    "SELECT v.name, v.version, v.sha256, v.size, v.format, v.class, v.run_id, v.signature, "
    "v.datasets, v.metrics, v.libraries, v.description, v.created_by, v.created_at, "
    "d.blake3, c.chunk_size, c.size, c.digests "
    "FROM model_versions v LEFT JOIN object_digests d ON d.sha256 = v.sha256 "
    "LEFT JOIN object_chunks c ON c.sha256 = v.sha256"
)
_EVENT_SELECT = "SELECT event_id, at, kind, version, alias, actor, host, payload FROM model_events"


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


_ALIAS_TARGET = (
    "SELECT kind, version FROM model_events WHERE name = ? AND alias = ? "
    "AND kind IN ('alias_set', 'alias_removed') ORDER BY event_id DESC LIMIT 1"
)


def _target(rows: Sequence[tuple[Any, ...]]) -> int | None:
    if not rows or rows[0][0] != "alias_set":
        return None
    return int(rows[0][1])


def _alias_target(conn: sqlite3.Connection, name: str, alias: str) -> int | None:
    """Inside an :meth:`Store.atomic` block: where the alias points, as this transaction sees."""
    return _target(conn.execute(_ALIAS_TARGET, (name, alias)).fetchall())


# -- models and versions --------------------------------------------------------------------


def model_names(store: Store) -> list[str]:
    return [str(r[0]) for r in store.query("SELECT name FROM models ORDER BY name")]


def model_exists(store: Store, name: str) -> bool:
    return bool(store.query("SELECT 1 FROM models WHERE name = ?", (name,)))


def version_row(store: Store, name: str, version: int) -> VersionRow | None:
    rows = store.query(f"{_VERSION_SELECT} WHERE v.name = ? AND v.version = ?", (name, version))
    return VersionRow(*rows[0]) if rows else None


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
) -> Registered:
    """Insert a new version of ``row['name']`` with the next number and its ``registered`` event,
    and the artifact's ``row['blake3']`` digest and ``row['chunks']`` digests unless they are
    recorded already.

    If the model already has a version with the same ``sha256``, no version is written and that
    version is returned with ``created=False``.
    """
    name = row["name"]
    with store.atomic() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO models (name, description, created_at) VALUES (?, ?, ?)",
            (name, model_description, row["created_at"]),
        )
        _insert_digest(conn, row["sha256"], row["blake3"], row["size"], row["created_at"])
        _insert_chunks(conn, row["sha256"], row["chunks"], row["created_at"])
        existing = conn.execute(
            f"{_VERSION_SELECT} WHERE v.name = ? AND v.sha256 = ?", (name, row["sha256"])
        ).fetchone()
        if existing is not None:
            return Registered(VersionRow(*existing), False)
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
        new = conn.execute(
            f"{_VERSION_SELECT} WHERE v.name = ? AND v.version = ?", (name, version)
        ).fetchone()
    return Registered(VersionRow(*new), True)


def versions_of(store: Store, name: str) -> list[VersionRow]:
    rows = store.query(f"{_VERSION_SELECT} WHERE v.name = ? ORDER BY v.version", (name,))
    return [VersionRow(*r) for r in rows]


def models_overview(store: Store) -> list[ModelSummary]:
    """One row per model: description, first registration, latest version, last event."""
    rows = store.query(
        "SELECT m.name, m.description, m.created_at, "
        "(SELECT MAX(version) FROM model_versions v WHERE v.name = m.name), "
        "(SELECT COUNT(*) FROM model_versions v WHERE v.name = m.name), "
        "(SELECT MAX(at) FROM model_events e WHERE e.name = m.name) "
        "FROM models m ORDER BY m.name",
    )
    return [ModelSummary(*r) for r in rows]


# -- version state: deprecated, deleted -----------------------------------------------------


def lifecycle_events(store: Store, name: str, version: int | None = None) -> list[EventRow]:
    """``deprecated`` and ``deleted`` events of a model (or one version), oldest first."""
    sql = f"{_EVENT_SELECT} WHERE name = ? AND kind IN ('deprecated', 'deleted')"
    params: list[object] = [name]
    if version is not None:
        sql += " AND version = ?"
        params.append(version)
    return [EventRow(*r) for r in store.query(sql + " ORDER BY event_id", params)]


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
    return _target(store.query(_ALIAS_TARGET, (name, alias)))


def alias_target_at(store: Store, name: str, alias: str, at: float) -> EventRow | None:
    """The last alias event of (``name``, ``alias``) at or before ``at``, or None."""
    rows = store.query(
        f"{_EVENT_SELECT} WHERE name = ? AND alias = ? "
        "AND kind IN ('alias_set', 'alias_removed') AND at <= ? "
        "ORDER BY at DESC, event_id DESC LIMIT 1",
        (name, alias, at),
    )
    return EventRow(*rows[0]) if rows else None


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


def events_of(store: Store, name: str) -> list[EventRow]:
    rows = store.query(f"{_EVENT_SELECT} WHERE name = ? ORDER BY at, event_id", (name,))
    return [EventRow(*r) for r in rows]


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
    *,
    sha256: str,
    size: int,
    blake3: str | None = None,
    chunks: ChunkDigests | None = None,
) -> None:
    """Record one load of the artifact ``sha256``; ``blake3`` also records its BLAKE3 digest,
    for a version registered before ``object_digests`` existed, and ``chunks`` its chunk
    digests, for one registered before ``object_chunks`` existed."""
    with store.atomic() as conn:
        if blake3 is not None:
            _insert_digest(conn, sha256, blake3, size, load["at"])
        if chunks is not None:
            _insert_chunks(conn, sha256, chunks, load["at"])
        conn.execute(
            "INSERT INTO model_loads (name, version, consumer, host, pid, at) "
            "VALUES (:name, :version, :consumer, :host, :pid, :at)",
            load,
        )


def _consumers_sql(since: float | None) -> str:
    where = "WHERE name = ? AND version = ?" + ("" if since is None else " AND at >= ?")
    return (
        "SELECT consumer, host, COUNT(*), MIN(at) AS first_load, MAX(at) AS last_load, "
        "(SELECT l2.pid FROM model_loads l2 WHERE l2.name = l.name AND l2.version = l.version "
        "AND l2.consumer IS l.consumer AND l2.host IS l.host ORDER BY l2.at DESC, l2.load_id DESC "
        f"LIMIT 1) FROM model_loads l {where} GROUP BY consumer, host ORDER BY last_load DESC"
    )


def consumers_of(
    store: Store, name: str, version: int, since: float | None = None
) -> list[ConsumerRow]:
    """Who loaded ``name``/``version`` (since a moment): one row per consumer and host."""
    params: list[object] = [name, version] + ([] if since is None else [since])
    return [ConsumerRow(*r) for r in store.query(_consumers_sql(since), params)]


def record_deletion(store: Store, event: Mapping[str, Any], loads_since: float) -> DeletionBlockers:
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
        rows = conn.execute(_consumers_sql(loads_since), (name, version, loads_since))
        loads = [ConsumerRow(*r) for r in rows.fetchall()]
        if aliases or loads:
            return DeletionBlockers(aliases, loads)
        _insert_event(conn, event)
    return DeletionBlockers([], [])
