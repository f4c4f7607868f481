"""Served traffic for monitoring: window profiles of scored inputs (table ``traffic_profiles``)
and the signature skew counted from the prediction log (table ``predictions``).

A traffic profile is written once, when its window closes, by the server's prediction-log
writer; readers take the profiles whose window lies inside the one asked for, through the
``traffic_profiles_version`` index, and never the logged request bodies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from nbmlops.store._where import where
from nbmlops.store.db import Store

_COLUMNS = "endpoint_id, name, version, window_start, window_end, n_rows, profile, created_at"


class TrafficRow(NamedTuple):
    """A ``traffic_profiles`` row; ``profile`` is the parsed JSON (``traffic_id`` None before
    it is written)."""

    endpoint_id: str | None
    name: str
    version: int
    window_start: float
    window_end: float
    n_rows: int
    profile: dict[str, Any]
    created_at: float
    traffic_id: int | None = None


def insert_profiles(store: Store, rows: Sequence[TrafficRow]) -> None:
    """Append window profiles in one transaction."""
    with store.atomic() as conn:
        conn.executemany(
            f"INSERT INTO traffic_profiles ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.endpoint_id,
                    r.name,
                    r.version,
                    r.window_start,
                    r.window_end,
                    r.n_rows,
                    json.dumps(r.profile, separators=(",", ":"), allow_nan=False),
                    r.created_at,
                )
                for r in rows
            ],
        )


def profiles_in(
    store: Store, name: str, version: int | None, start: float, end: float
) -> list[TrafficRow]:
    """The profiles of ``name`` (one version, or every one when None) whose window lies in
    [``start``, ``end``], by version then window."""
    where = "name = ? AND window_start >= ? AND window_start < ? AND window_end <= ?"
    params: list[object] = [name, start, end, end]
    if version is not None:
        where += " AND version = ?"
        params.append(version)
    rows = store.query(
        f"SELECT traffic_id, {_COLUMNS} FROM traffic_profiles WHERE {where} "
        "ORDER BY version, window_start, traffic_id",
        params,
    )
    return [
        TrafficRow(e, n, int(v), ws, we, int(k), json.loads(p), c, int(t))
        for t, e, n, v, ws, we, k, p, c in rows
    ]


def versions_served(store: Store, name: str, start: float, end: float) -> list[int]:
    """The versions of ``name`` with a window profile in [``start``, ``end``] or a logged
    request in [``start``, ``end``): one index probe per registered version."""
    rows = store.query(
        "SELECT v.version FROM model_versions AS v WHERE v.name = ? AND ("
        "EXISTS (SELECT 1 FROM traffic_profiles AS t WHERE t.name = v.name "
        "AND t.version = v.version AND t.window_start >= ? AND t.window_start < ? "
        "AND t.window_end <= ?) "
        "OR EXISTS (SELECT 1 FROM predictions AS p WHERE p.name = v.name "
        "AND p.version = v.version AND p.at >= ? AND p.at < ?)) ORDER BY v.version",
        (name, start, end, end, start, end),
    )
    return [int(v) for (v,) in rows]


class SignatureCounts(NamedTuple):
    """One version's logged requests in a time range, by how they fit its signature."""

    version: int
    requests: int
    with_extra_columns: int
    signature_errors: int
    extra_columns: dict[str, int]  # extra column -> requests that sent it


def signature_counts(
    store: Store,
    name: str,
    version: int | None,
    since: float | None,
    until: float | None,
    error_patterns: Sequence[str],
) -> list[SignatureCounts]:
    """Per version of ``name`` (or one version): logged requests in [``since``, ``until``),
    those answered with extra columns logged, and the 4xx whose error message matches one of
    ``error_patterns`` (SQL LIKE patterns, bound), with each extra column's count. The count of
    requests reads the ``predictions_version`` index alone, the rest the partial index
    ``predictions_unusual`` of the requests with extra columns or an error."""
    conditions, params = where(
        ("name = ?", name), "version IS NOT NULL", ("version = ?", version),
        ("at >= ?", since), ("at < ?", until),
    )  # fmt: skip
    requests = dict(
        store.query(
            "SELECT version, COUNT(*) FROM predictions INDEXED BY predictions_version "
            f"WHERE {conditions} GROUP BY version",
            params,
        )
    )
    unusual = f"(extra_columns IS NOT NULL OR status >= 400) AND {conditions}"
    matches = " OR ".join("error LIKE ?" for _ in error_patterns) or "0"
    counted = {
        v: (e, s)
        for v, e, s in store.query(
            f"SELECT version, SUM(extra_columns IS NOT NULL), "
            f"SUM(status BETWEEN 400 AND 499 AND ({matches})) "
            f"FROM predictions INDEXED BY predictions_unusual WHERE {unusual} GROUP BY version",
            [*error_patterns, *params],
        )
    }
    extra: dict[int, dict[str, int]] = {}
    for v, column, count in store.query(
        # json_each's columns (key, value, type...) share no name with the predictions' ones.
        "SELECT version, j.value, COUNT(*) FROM predictions INDEXED BY predictions_unusual, "
        f"json_each(extra_columns) AS j WHERE {unusual} AND extra_columns IS NOT NULL "
        "GROUP BY version, j.value ORDER BY version, COUNT(*) DESC, j.value",
        params,
    ):
        extra.setdefault(int(v), {})[str(column)] = int(count)
    totals = [(v, n, *counted.get(v, (0, 0))) for v, n in sorted(requests.items())]
    return [
        SignatureCounts(int(v), int(n), int(e or 0), int(s or 0), extra.get(int(v), {}))
        for v, n, e, s in totals
    ]
