"""Endpoint records: which server serves which model where, and what happened to it.

An endpoint row is written once when a server process starts (immutable); everything after that
(the first load, alias swaps, a failed swap, the stop) is an ``endpoint_events`` row, so the
version an endpoint served at any moment is the last ``loaded``/``swapped`` event before it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from nbmlops.store.db import Store


class EndpointRow(NamedTuple):
    endpoint_id: str
    name: str
    ref: str
    alias: str | None
    url: str
    host: str
    pid: int
    settings: str | None
    started_at: float
    version: int | None  # the version served after the last load or swap
    sha256: str | None
    last_kind: str | None  # the kind of the endpoint's last event
    last_at: float | None
    stopped_at: float | None


class EndpointEventRow(NamedTuple):
    event_id: int
    endpoint_id: str
    url: str
    kind: str
    version: int | None
    sha256: str | None
    payload: str | None
    at: float
    host: str
    alias: str | None  # the alias the endpoint follows (None: a pinned version)


def insert_endpoint(store: Store, endpoint: Mapping[str, Any]) -> None:
    """Record a server that just started (``settings`` is encoded as JSON here)."""
    row = {**endpoint, "settings": json.dumps(endpoint.get("settings") or {})}
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO endpoints (endpoint_id, name, ref, alias, url, host, pid, settings, "
            "started_at) VALUES (:endpoint_id, :name, :ref, :alias, :url, :host, :pid, "
            ":settings, :started_at)",
            row,
        )


def insert_event(store: Store, event: Mapping[str, Any]) -> None:
    """Append one endpoint event (``payload`` is encoded as JSON here)."""
    row = {**event, "payload": json.dumps(event.get("payload") or {})}
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO endpoint_events (endpoint_id, kind, version, sha256, payload, at) "
            "VALUES (:endpoint_id, :kind, :version, :sha256, :payload, :at)",
            row,
        )


_ENDPOINTS = """
SELECT e.endpoint_id, e.name, e.ref, e.alias, e.url, e.host, e.pid, e.settings, e.started_at,
    (SELECT v.version FROM endpoint_events v WHERE v.endpoint_id = e.endpoint_id
        AND v.kind IN ('loaded', 'swapped') ORDER BY v.event_id DESC LIMIT 1),
    (SELECT v.sha256 FROM endpoint_events v WHERE v.endpoint_id = e.endpoint_id
        AND v.kind IN ('loaded', 'swapped') ORDER BY v.event_id DESC LIMIT 1),
    (SELECT l.kind FROM endpoint_events l WHERE l.endpoint_id = e.endpoint_id
        ORDER BY l.event_id DESC LIMIT 1),
    (SELECT l.at FROM endpoint_events l WHERE l.endpoint_id = e.endpoint_id
        ORDER BY l.event_id DESC LIMIT 1),
    (SELECT s.at FROM endpoint_events s WHERE s.endpoint_id = e.endpoint_id
        AND s.kind = 'stopped' LIMIT 1)
FROM endpoints e
"""


def endpoints_of(store: Store, name: str | None = None) -> list[EndpointRow]:
    """Every endpoint of ``name`` (every model's when None), newest first."""
    where, params = ("WHERE e.name = ? ", (name,)) if name is not None else ("", ())
    rows = store.query(f"{_ENDPOINTS}{where}ORDER BY e.started_at DESC", params)
    return [EndpointRow(*r) for r in rows]


def events_of(store: Store, name: str) -> list[EndpointEventRow]:
    """Every event of every endpoint of ``name``, oldest first."""
    rows = store.query(
        "SELECT v.event_id, v.endpoint_id, e.url, v.kind, v.version, v.sha256, v.payload, v.at, "
        "e.host, e.alias FROM endpoint_events v JOIN endpoints e ON e.endpoint_id = v.endpoint_id "
        "WHERE e.name = ? ORDER BY v.event_id",
        (name,),
    )
    return [EndpointEventRow(*r) for r in rows]


class ServedAt(NamedTuple):
    endpoint_id: str
    version: int
    sha256: str | None


_SERVED_AT = """
SELECT * FROM (
    SELECT e.endpoint_id,
        (SELECT v.version FROM endpoint_events v WHERE v.endpoint_id = e.endpoint_id
            AND v.kind IN ('loaded', 'swapped') AND v.at <= :at ORDER BY v.event_id DESC LIMIT 1)
            AS version,
        (SELECT v.sha256 FROM endpoint_events v WHERE v.endpoint_id = e.endpoint_id
            AND v.kind IN ('loaded', 'swapped') AND v.at <= :at ORDER BY v.event_id DESC LIMIT 1)
    FROM endpoints e
    WHERE e.name = :name AND e.started_at <= :at AND NOT EXISTS (
        SELECT 1 FROM endpoint_events s
        WHERE s.endpoint_id = e.endpoint_id AND s.kind = 'stopped' AND s.at <= :at)
    ORDER BY e.started_at DESC
) WHERE version IS NOT NULL
"""


def served_at(store: Store, name: str, at: float) -> list[ServedAt]:
    """The endpoints of ``name`` that were up at ``at`` (started, no stop recorded by then) and
    had a version loaded, with that version: the last ``loaded``/``swapped`` event before ``at``.
    A server killed without a stop cannot say when it died: it counts as up after its death."""
    rows = store.query(_SERVED_AT, {"name": name, "at": at})
    return [ServedAt(*r) for r in rows]
