"""Endpoint records: a server writes where it serves what, and every load, swap and stop.

``nbm.endpoints(name)`` reads them back, with each endpoint's state: ``serving`` (no stop
recorded and, on this host, its process alive), ``stopped``, or ``gone`` (its process died
without recording a stop, e.g. killed with SIGKILL).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from typing import TYPE_CHECKING, Any

from nbmlops.capture.liveness import hostname, process_alive
from nbmlops.registry.model_version import check_name
from nbmlops.store import Store
from nbmlops.store import endpoints as sql

if TYPE_CHECKING:
    import pandas as pd


def record_start(
    store: Store, name: str, ref: str, alias: str | None, url: str, settings: dict[str, Any]
) -> str:
    """Record a server process that starts serving ``ref`` at ``url``; returns its id."""
    endpoint_id = secrets.token_hex(6)
    sql.insert_endpoint(
        store,
        {
            "endpoint_id": endpoint_id,
            "name": name,
            "ref": ref,
            "alias": alias,
            "url": url,
            "host": hostname(),
            "pid": os.getpid(),
            "settings": settings,
            "started_at": time.time(),
        },
    )
    return endpoint_id


def record_event(
    store: Store,
    endpoint_id: str,
    kind: str,
    *,
    version: int | None = None,
    sha256: str | None = None,
    **payload: Any,
) -> None:
    """Append ``kind`` (loaded, load_failed, swapped, swap_failed, stopped) to the endpoint."""
    sql.insert_event(
        store,
        {
            "endpoint_id": endpoint_id,
            "kind": kind,
            "version": version,
            "sha256": sha256,
            "payload": payload,
            "at": time.time(),
        },
    )


def state(row: sql.EndpointRow) -> str:
    """``serving``, ``stopped`` or ``gone`` (no stop recorded but its process is dead)."""
    if row.stopped_at is not None:
        return "stopped"
    if row.host == hostname() and not process_alive(row.pid, row.started_at):
        return "gone"
    return "serving"


def endpoints_frame(store: Store, name: str | None = None) -> pd.DataFrame:
    """Every endpoint of ``name`` (all models' when None), newest first."""
    import pandas as pd  # heavy: kept out of import nbmlops

    if name is not None:
        check_name(name)
    rows = sql.endpoints_of(store, name)
    return pd.DataFrame(
        {
            "endpoint_id": [r.endpoint_id for r in rows],
            "name": [r.name for r in rows],
            "ref": [r.ref for r in rows],
            "version": pd.array([r.version for r in rows], dtype="Int64"),
            "url": [r.url for r in rows],
            "state": [state(r) for r in rows],
            "host": [r.host for r in rows],
            "pid": [r.pid for r in rows],
            "started_at": _times([r.started_at for r in rows]),
            "stopped_at": _times([r.stopped_at for r in rows]),
            "last_event": [r.last_kind for r in rows],
            "sha256": [r.sha256 for r in rows],
            "settings": [json.loads(r.settings or "{}") for r in rows],
        }
    )


def _times(seconds: list[float | None]) -> pd.Series[pd.Timestamp]:
    import pandas as pd

    return pd.to_datetime(pd.Series(seconds, dtype="float64"), unit="s", utc=True)


def events_frame(store: Store, name: str) -> pd.DataFrame:
    """Every event of every endpoint of ``name``, oldest first, with its decoded payload."""
    import pandas as pd

    check_name(name)
    rows = sql.events_of(store, name)
    return pd.DataFrame(
        {
            "event_id": [r.event_id for r in rows],
            "at": pd.to_datetime([r.at for r in rows], unit="s", utc=True),
            "endpoint_id": [r.endpoint_id for r in rows],
            "url": [r.url for r in rows],
            "kind": [r.kind for r in rows],
            "version": pd.array([r.version for r in rows], dtype="Int64"),
            "payload": [json.loads(r.payload or "{}") for r in rows],
        }
    )
