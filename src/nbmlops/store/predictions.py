"""The prediction log: one row per scoring request, written in batches by the server's writer.

Rows arrive as dicts whose JSON columns are already encoded (the writer thread encodes them, off
the request path). Reads filter by model, version and time through the ``predictions_name`` and
``predictions_version`` indexes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.store.db import Row, Store

COLUMNS = (
    "request_id",
    "endpoint_id",
    "name",
    "version",
    "sha256",
    "at",
    "status",
    "latency_ms",
    "format",
    "n_rows",
    "inputs",
    "inputs_digest",
    "outputs",
    "extra_columns",
    "error",
)
_INSERT = (
    f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
)


def insert_predictions(store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append a batch of prediction rows in one transaction."""
    with store.atomic() as conn:
        conn.executemany(_INSERT, rows)


def predictions_of(
    store: Store,
    name: str,
    *,
    since: float | None = None,
    until: float | None = None,
    version: int | None = None,
    limit: int | None = None,
) -> list[Row]:
    """The logged requests of ``name``, oldest first (the newest ``limit`` when given)."""
    where = ["name = ?"]
    params: list[object] = [name]
    if version is not None:
        where.append("version = ?")
        params.append(version)
    if since is not None:
        where.append("at >= ?")
        params.append(since)
    if until is not None:
        where.append("at < ?")
        params.append(until)
    sql = f"SELECT prediction_id, {', '.join(COLUMNS)} FROM predictions WHERE {' AND '.join(where)}"
    if limit is not None:
        sql = f"SELECT * FROM ({sql} ORDER BY at DESC, prediction_id DESC LIMIT ?)"
        params.append(int(limit))
    return store.query_dicts(f"{sql} ORDER BY at, prediction_id", params)
