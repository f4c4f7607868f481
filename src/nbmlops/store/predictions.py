"""The prediction log: one row per scoring request, written in batches by the server's writer.

Rows arrive as dicts whose JSON columns are already encoded (the writer thread encodes them, off
the request path). Reads filter by model, version and time through the ``predictions_name`` and
``predictions_version`` indexes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from nbmlops.store._where import where
from nbmlops.store.db import Row, Store
from nbmlops.store.labels import MATCH_LABELS, PREDICTIONS_FIRST

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


# The batch's requests that were labelled before they were written (a label can overtake the
# server's batched writer): one labels_request index probe per request, about 1 ms per 500.
_MATCH_BATCH = MATCH_LABELS.format(joined=PREDICTIONS_FIRST, where="p.prediction_id > ?")


def insert_predictions(store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append a batch of prediction rows in one transaction, matching labels that came first."""
    with store.atomic() as conn:
        (last,) = conn.execute("SELECT COALESCE(MAX(prediction_id), 0) FROM predictions").fetchone()
        conn.executemany(_INSERT, rows)
        conn.execute(_MATCH_BATCH, (last,))


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
    conditions, params = where(
        ("name = ?", name), ("version = ?", version), ("at >= ?", since), ("at < ?", until)
    )
    sql = f"SELECT prediction_id, {', '.join(COLUMNS)} FROM predictions WHERE {conditions}"
    if limit is not None:
        sql = f"SELECT * FROM ({sql} ORDER BY at DESC, prediction_id DESC LIMIT ?)"
        params.append(int(limit))
    return store.query_dicts(f"{sql} ORDER BY at, prediction_id", params)


class Traffic(NamedTuple):
    endpoint_id: str
    requests: int
    errors_4xx: int
    errors_5xx: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


# Nearest-rank percentiles (the ceil(p * n)-th smallest latency, numpy's method="inverted_cdf")
# of the answered requests (status < 400), per endpoint, in one pass over the model's rows:
# SQLite has no percentile function, so each answered row is ranked within its endpoint by a
# window function and the rows at the three ranks are picked by the aggregate. Done here rather
# than by reading the latencies into numpy, so that the panel and the CLI move one row per
# endpoint out of SQLite instead of every logged request, and import no numpy for it.
_TRAFFIC = """
WITH ranked AS (
    SELECT endpoint_id, status, latency_ms,
        ROW_NUMBER() OVER (PARTITION BY endpoint_id, status < 400 ORDER BY latency_ms) AS rank,
        SUM(status < 400) OVER (PARTITION BY endpoint_id) AS answered
    FROM predictions WHERE {where}
)
SELECT endpoint_id, COUNT(*), SUM(status BETWEEN 400 AND 499), SUM(status >= 500),
    MAX(CASE WHEN status < 400 AND rank = (50 * answered + 99) / 100 THEN latency_ms END),
    MAX(CASE WHEN status < 400 AND rank = (95 * answered + 99) / 100 THEN latency_ms END),
    MAX(CASE WHEN status < 400 AND rank = (99 * answered + 99) / 100 THEN latency_ms END)
FROM ranked GROUP BY endpoint_id
"""


def traffic_of(store: Store, name: str | None = None) -> dict[str, Traffic]:
    """Per endpoint of ``name`` (every model's when None): logged requests, 4xx and 5xx counts,
    and the latency p50/p95/p99 (ms) of the answered ones, in one query. Counts are of logged
    requests: under ``log_sample`` < 1 they are a sample."""
    where, params = ("name = ?", (name,)) if name is not None else ("1", ())
    rows = store.query(_TRAFFIC.format(where=where), params)
    return {r[0]: Traffic(*r) for r in rows}
