"""Reviews, approvals and verified re-runs (tables ``reviews``, ``approvals``, ``reruns``; see
docs/schema.md). All three are append-only: a later review, approval or re-run is a new row,
and the newest answers "what is the state now"."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from nbmlops.store.db import Row, Store

_JSON_REVIEW = ("summary",)
_JSON_RERUN = ("metrics", "differences", "inputs", "nondeterminism")


def _decoded(row: Mapping[str, Any], columns: tuple[str, ...]) -> Row:
    out = dict(row)
    for column in columns:
        if out.get(column) is not None:
            out[column] = json.loads(out[column])
    return out


def add_review(store: Store, row: Mapping[str, Any]) -> int:
    with store.atomic() as conn:
        cursor = conn.execute(
            "INSERT INTO reviews (kind, name, version, against, notebook, html, path, summary, "
            "actor, host, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["kind"],
                row.get("name"),
                row.get("version"),
                row.get("against"),
                row["notebook"],
                row.get("html"),
                row.get("path"),
                json.dumps(row["summary"], sort_keys=True, default=str),
                row.get("actor"),
                row.get("host"),
                row["created_at"],
            ),
        )
        return int(cursor.lastrowid or 0)


def review(store: Store, review_id: int) -> Row | None:
    rows = store.query_dicts("SELECT * FROM reviews WHERE review_id = ?", (review_id,))
    return _decoded(rows[0], _JSON_REVIEW) if rows else None


def reviews_of_version(store: Store, name: str, version: int) -> list[Row]:
    """The model reviews of ``name``/``version``, newest first."""
    rows = store.query_dicts(
        "SELECT * FROM reviews WHERE kind = 'model' AND name = ? AND version = ? "
        "ORDER BY created_at DESC, review_id DESC",
        (name, version),
    )
    return [_decoded(r, _JSON_REVIEW) for r in rows]


def reviews(store: Store, kind: str | None = None, limit: int = 100) -> list[Row]:
    """The newest reviews (of ``kind``), newest first."""
    rows = store.query_dicts(
        "SELECT * FROM reviews WHERE (? IS NULL OR kind = ?) "
        "ORDER BY created_at DESC, review_id DESC LIMIT ?",
        (kind, kind, limit),
    )
    return [_decoded(r, _JSON_REVIEW) for r in rows]


def add_approval(store: Store, row: Mapping[str, Any]) -> int:
    with store.atomic() as conn:
        cursor = conn.execute(
            "INSERT INTO approvals (name, version, by, comment, review_id, actor, host, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["name"],
                row["version"],
                row["by"],
                row.get("comment"),
                row.get("review_id"),
                row.get("actor"),
                row.get("host"),
                row["at"],
            ),
        )
        return int(cursor.lastrowid or 0)


def approvals_of(store: Store, name: str, version: int | None = None) -> list[Row]:
    """The approvals of ``name`` (of one ``version``), oldest first."""
    return store.query_dicts(
        "SELECT * FROM approvals WHERE name = ? AND (? IS NULL OR version = ?) "
        "ORDER BY at, approval_id",
        (name, version, version),
    )


def add_rerun(store: Store, row: Mapping[str, Any]) -> int:
    with store.atomic() as conn:
        cursor = conn.execute(
            "INSERT INTO reruns (run_id, new_run_id, outcome, tolerance, metrics, differences, "
            "inputs, nondeterminism, reason, notebook, actor, host, started_at, finished_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["run_id"],
                row.get("new_run_id"),
                row["outcome"],
                row["tolerance"],
                *(json.dumps(row[c], sort_keys=True, default=str) for c in _JSON_RERUN),
                row.get("reason"),
                row.get("notebook"),
                row.get("actor"),
                row.get("host"),
                row["started_at"],
                row["finished_at"],
            ),
        )
        return int(cursor.lastrowid or 0)


def latest_reruns(store: Store, run_ids: list[str]) -> dict[str, Row]:
    """The newest re-run of each of ``run_ids`` that has one."""
    if not run_ids:
        return {}
    marks = ", ".join("?" for _ in run_ids)
    rows = store.query_dicts(
        f"SELECT * FROM reruns AS r WHERE run_id IN ({marks}) AND rerun_id = "
        "(SELECT rerun_id FROM reruns WHERE run_id = r.run_id "
        "ORDER BY finished_at DESC, rerun_id DESC LIMIT 1)",
        tuple(run_ids),
    )
    return {r["run_id"]: _decoded(r, _JSON_RERUN) for r in rows}


def execution_of_run(store: Store, run_id: str) -> Row | None:
    """The ``cell_executions`` row of the cell that made ``run_id`` (None for a script run)."""
    rows = store.query_dicts(
        "SELECT * FROM cell_executions WHERE run_id = ? ORDER BY start_time DESC LIMIT 1",
        (run_id,),
    )
    return rows[0] if rows else None


def runs_in_notebook(store: Store, notebook: str) -> list[Row]:
    """The runs recorded for ``notebook`` (run_id, cell_version, status), oldest first: what a
    re-run's rebuilt notebook made."""
    return store.query_dicts(
        "SELECT run_id, cell_version, status FROM runs WHERE notebook = ? "
        "ORDER BY start_time, rowid",
        (notebook,),
    )


def latest_model_reviews(store: Store, name: str | None = None) -> list[Row]:
    """The newest model review of each reviewed version (of model ``name``), by name and
    version: what a panel or the JupyterLab sidebar shows next to a version."""
    rows = store.query_dicts(
        "SELECT * FROM reviews AS r WHERE kind = 'model' AND (? IS NULL OR name = ?) "
        "AND review_id = (SELECT review_id FROM reviews WHERE kind = 'model' "
        "AND name = r.name AND version = r.version "
        "ORDER BY created_at DESC, review_id DESC LIMIT 1) ORDER BY name, version",
        (name, name),
    )
    return [_decoded(r, _JSON_REVIEW) for r in rows]


def latest_review_of_run(store: Store, run_id: str) -> Row | None:
    """The newest model review of a version trained by ``run_id`` (None when none was)."""
    rows = store.query_dicts(
        "SELECT r.* FROM reviews AS r JOIN model_versions AS v "
        "ON v.name = r.name AND v.version = r.version "
        "WHERE r.kind = 'model' AND v.run_id = ? "
        "ORDER BY r.created_at DESC, r.review_id DESC LIMIT 1",
        (run_id,),
    )
    return _decoded(rows[0], _JSON_REVIEW) if rows else None
