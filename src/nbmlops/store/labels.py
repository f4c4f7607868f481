"""Late labels: append them, tell which request ids the prediction log knows, and join them to
the logged outputs (the input of production skew).

The join reads each label's request from the ``predictions_request`` index and picks the
labelled row out of the request's JSON ``outputs`` with ``json_extract``, so it touches only
the labelled requests, never the whole log; the newest label of a (request, row) wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from nbmlops.store.db import Store

# SQLite's default limit on bound parameters is 32766 since 3.32, 999 before.
_CHUNK = 900


def insert_labels(store: Store, rows: Sequence[tuple[str, int, Any, float]]) -> None:
    """Append ``(request_id, row, label, at)`` rows in one transaction."""
    with store.atomic() as conn:
        conn.executemany(
            "INSERT INTO labels (request_id, row, label, at) VALUES (?, ?, ?, ?)", rows
        )


def logged_request_ids(store: Store, request_ids: Iterable[str], name: str | None) -> set[str]:
    """The ids among ``request_ids`` that the prediction log holds (of model ``name`` if given)."""
    ids = list(dict.fromkeys(request_ids))
    found: set[str] = set()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT DISTINCT request_id FROM predictions WHERE request_id IN ({marks})"
        params: list[object] = list(chunk)
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        found.update(r[0] for r in store.query(sql, params))
    return found


# CROSS JOIN and INDEXED BY fix the plan: each label finds its request through the
# predictions_request index. With a plain JOIN the planner scanned the model's predictions and,
# for each, the materialized labels: quadratic (100k x 100k did not finish in minutes).
_LABELLED = """
WITH latest AS (
    SELECT request_id, row, label FROM (
        SELECT request_id, row, label, ROW_NUMBER() OVER (
            PARTITION BY request_id, row ORDER BY at DESC, label_id DESC) AS rank
        FROM labels)
    WHERE rank = 1
)
SELECT p.version, json_extract(p.outputs, '$[' || l.row || ']'), l.label
FROM latest AS l CROSS JOIN predictions AS p INDEXED BY predictions_request
    ON p.request_id = l.request_id
WHERE p.name = ? AND p.status < 400 AND p.version IS NOT NULL
    AND json_extract(p.outputs, '$[' || l.row || ']') IS NOT NULL {more}
ORDER BY p.version, p.at, p.prediction_id, l.row
"""


def labelled_outputs(
    store: Store, name: str, *, version: int | None = None, since: float | None = None
) -> list[tuple[int, Any, Any]]:
    """``(version, served output, label)`` for every labelled row of an answered request of
    ``name`` (of ``version`` only, and arrived at or after ``since``, when given), in one query.
    A request id logged twice (a client reusing X-Request-ID) yields both requests' rows."""
    more = ""
    params: list[object] = [name]
    if version is not None:
        more += " AND p.version = ?"
        params.append(version)
    if since is not None:
        more += " AND p.at >= ?"
        params.append(since)
    return [tuple(r) for r in store.query(_LABELLED.format(more=more), params)]
