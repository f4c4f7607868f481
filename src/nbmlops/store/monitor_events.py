"""The monitoring timeline (table ``monitor_events``): alert firings and the steps they started.

Append-only, like ``model_events``. The one decision taken in SQL is deduplication: whether an
alert may fire is checked and its ``fired`` row written in one write transaction
(:meth:`Store.atomic` begins IMMEDIATE), so two monitors evaluating the same alert at once
record one firing, never two.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any, NamedTuple

from nbmlops.store._where import where
from nbmlops.store.db import Store


class MonitorEventRow(NamedTuple):
    event_id: int
    name: str
    alert: str
    kind: str
    firing_id: int | None
    version: int | None
    payload: dict[str, Any]
    actor: str | None
    host: str | None
    at: float


_COLUMNS = "event_id, name, alert, kind, firing_id, version, payload, actor, host, at"


def _insert(conn: sqlite3.Connection, event: Mapping[str, Any]) -> int:
    payload = event.get("payload")
    cursor = conn.execute(
        "INSERT INTO monitor_events (name, alert, kind, firing_id, version, payload, actor, "
        "host, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event["name"],
            event["alert"],
            event["kind"],
            event.get("firing_id"),
            event.get("version"),
            None if payload is None else json.dumps(payload, sort_keys=True, default=str),
            event.get("actor"),
            event.get("host"),
            event["at"],
        ),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def append_event(store: Store, event: Mapping[str, Any]) -> int:
    """Append one event (keys: the table's columns but ``event_id``); its ``event_id``."""
    with store.atomic() as conn:
        return _insert(conn, event)


def fire_unless_cooling(store: Store, event: Mapping[str, Any], cooldown_s: float) -> int | None:
    """Append the ``fired`` ``event`` unless the same (name, alert) fired less than
    ``cooldown_s`` seconds before its ``at``: its ``event_id``, or None when deduplicated."""
    with store.atomic() as conn:
        recent = conn.execute(
            "SELECT 1 FROM monitor_events WHERE name = ? AND alert = ? AND kind = 'fired' "
            "AND at > ? LIMIT 1",
            (event["name"], event["alert"], float(event["at"]) - cooldown_s),
        ).fetchone()
        if recent is not None:
            return None
        return _insert(conn, {**event, "kind": "fired", "firing_id": None})


def events_of(
    store: Store,
    name: str,
    *,
    alert: str | None = None,
    since: float | None = None,
    firing_id: int | None = None,
) -> list[MonitorEventRow]:
    """The events of model ``name`` (of one ``alert``, from ``since``, of one firing: the
    ``fired`` event and its steps), in the order they were written."""
    conditions, params = where(
        ("name = ?", name),
        ("alert = ?", alert),
        ("at >= ?", since),
        ("? IN (event_id, firing_id)", firing_id),
    )
    rows = store.query(
        f"SELECT {_COLUMNS} FROM monitor_events WHERE {conditions} ORDER BY event_id", params
    )
    return [
        MonitorEventRow(
            event_id,
            name,
            alert,
            kind,
            firing,
            version,
            json.loads(payload or "{}"),
            actor,
            host,
            at,
        )
        for event_id, name, alert, kind, firing, version, payload, actor, host, at in rows
    ]
