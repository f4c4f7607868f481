"""Feature store records (tables ``feature_entities``, ``feature_views``, ``feature_view_data``,
``feature_materializations``, ``training_sets``; see docs/schema.md).

A view's definition is immutable: an edited definition (a new fingerprint) is the next version
under the same name. Its offline rows are a dataset version; which one each view version last
computed is ``feature_view_data``. The online values live in a separate SQLite file
(:mod:`nbmlops.store.online`), so serving reads never wait on tracking writes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.store.db import Row, Store

_VIEW_COLUMNS = (
    "name, version, fingerprint, entity, timestamp, created, ttl_seconds, features, "
    "source_kind, source, transform, description, owner, run_id, created_at"
)


def _view(row: Mapping[str, Any]) -> Row:
    out = dict(row)
    out["features"] = json.loads(out["features"])
    return out


def entity(store: Store, name: str) -> Row | None:
    rows = store.query_dicts("SELECT * FROM feature_entities WHERE name = ?", (name,))
    if not rows:
        return None
    return {**rows[0], "keys": json.loads(rows[0]["keys"])}


def entities(store: Store) -> list[Row]:
    rows = store.query_dicts("SELECT * FROM feature_entities ORDER BY name")
    return [{**r, "keys": json.loads(r["keys"])} for r in rows]


def add_entity(store: Store, name: str, keys: Sequence[str], description: str, at: float) -> None:
    """Record entity ``name``; one already recorded is left as it is (the caller compares keys)."""
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO feature_entities (name, keys, description, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
            (name, json.dumps(list(keys)), description, at),
        )


def view(store: Store, name: str, version: int | None = None) -> Row | None:
    """Version ``version`` of view ``name`` (the latest when None), or None."""
    if version is None:
        rows = store.query_dicts(
            f"SELECT {_VIEW_COLUMNS} FROM feature_views WHERE name = ? "
            "ORDER BY version DESC LIMIT 1",
            (name,),
        )
    else:
        rows = store.query_dicts(
            f"SELECT {_VIEW_COLUMNS} FROM feature_views WHERE name = ? AND version = ?",
            (name, version),
        )
    return _view(rows[0]) if rows else None


def view_versions(store: Store, name: str) -> list[Row]:
    rows = store.query_dicts(
        f"SELECT {_VIEW_COLUMNS} FROM feature_views WHERE name = ? ORDER BY version", (name,)
    )
    return [_view(r) for r in rows]


def latest_views(store: Store) -> list[Row]:
    """The latest version of every view, by name."""
    rows = store.query_dicts(
        f"SELECT {_VIEW_COLUMNS} FROM feature_views AS v WHERE version = "
        "(SELECT MAX(version) FROM feature_views WHERE name = v.name) ORDER BY name"
    )
    return [_view(r) for r in rows]


def views_with_fingerprint(store: Store, fingerprint: str) -> list[Row]:
    rows = store.query_dicts(
        f"SELECT {_VIEW_COLUMNS} FROM feature_views WHERE fingerprint = ? ORDER BY name, version",
        (fingerprint,),
    )
    return [_view(r) for r in rows]


def add_view(store: Store, row: Mapping[str, Any]) -> int:
    """Record a definition of ``row["name"]`` as the version one past the newest (numbered
    inside the write transaction); the version number. A definition with the fingerprint of the
    latest version is that version (re-running the defining cell writes nothing)."""
    with store.atomic() as conn:
        newest = conn.execute(
            "SELECT version, fingerprint FROM feature_views WHERE name = ? "
            "ORDER BY version DESC LIMIT 1",
            (row["name"],),
        ).fetchone()
        if newest is not None and newest[1] == row["fingerprint"]:
            return int(newest[0])
        number = 1 if newest is None else int(newest[0]) + 1
        conn.execute(
            f"INSERT INTO feature_views ({_VIEW_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["name"],
                number,
                row["fingerprint"],
                row["entity"],
                row["timestamp"],
                row.get("created"),
                float(row["ttl_seconds"]),
                json.dumps(list(row["features"])),
                row["source_kind"],
                row["source"],
                row.get("transform"),
                row.get("description") or "",
                row.get("owner"),
                row.get("run_id"),
                row["created_at"],
            ),
        )
        return number


def add_view_data(
    store: Store, name: str, version: int, dataset: str, dataset_version: int, at: float
) -> None:
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO feature_view_data (name, version, dataset, dataset_version, computed_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET computed_at = excluded.computed_at",
            (name, version, dataset, dataset_version, at),
        )


def view_data(store: Store, name: str, version: int) -> Row | None:
    """The dataset version holding view ``name`` version ``version``'s offline rows, the one
    computed last."""
    rows = store.query_dicts(
        "SELECT dataset, dataset_version, computed_at FROM feature_view_data "
        "WHERE name = ? AND version = ? ORDER BY computed_at DESC, dataset_version DESC LIMIT 1",
        (name, version),
    )
    return rows[0] if rows else None


def add_materialization(store: Store, row: Mapping[str, Any]) -> None:
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO feature_materializations (name, version, start_ts, end_ts, rows_read, "
            "rows_written, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["name"],
                row["version"],
                row.get("start_ts"),
                row["end_ts"],
                row["rows_read"],
                row["rows_written"],
                row["started_at"],
                row["finished_at"],
            ),
        )


def last_materialization(store: Store, name: str, version: int) -> Row | None:
    """The materialisation of view ``name`` version ``version`` that reached furthest."""
    rows = store.query_dicts(
        "SELECT * FROM feature_materializations WHERE name = ? AND version = ? "
        "ORDER BY end_ts DESC, materialization_id DESC LIMIT 1",
        (name, version),
    )
    return rows[0] if rows else None


def add_training_set(store: Store, row: Mapping[str, Any]) -> int:
    with store.atomic() as conn:
        cursor = conn.execute(
            "INSERT INTO training_sets (run_id, dataset, dataset_version, fingerprint, features, "
            "entity_rows, created_filter, contract, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row.get("run_id"),
                row.get("dataset"),
                row.get("dataset_version"),
                row["fingerprint"],
                json.dumps(list(row["features"]), sort_keys=True),
                row["entity_rows"],
                int(bool(row["created_filter"])),
                json.dumps(row["contract"], sort_keys=True),
                row["created_at"],
            ),
        )
        return int(cursor.lastrowid or 0)


def _training_set(row: Mapping[str, Any]) -> Row:
    out = dict(row)
    out["features"] = json.loads(out["features"])
    out["contract"] = json.loads(out["contract"])
    out["created_filter"] = bool(out["created_filter"])
    return out


def training_sets_of_run(store: Store, run_id: str) -> list[Row]:
    rows = store.query_dicts(
        "SELECT * FROM training_sets WHERE run_id = ? ORDER BY training_set_id", (run_id,)
    )
    return [_training_set(r) for r in rows]


def training_set_with_fingerprint(store: Store, fingerprint: str) -> Row | None:
    """The newest training set whose frame had ``fingerprint`` (a model trained on it, even
    outside the cell that built it, is linked to its features through this)."""
    rows = store.query_dicts(
        "SELECT * FROM training_sets WHERE fingerprint = ? ORDER BY training_set_id DESC LIMIT 1",
        (fingerprint,),
    )
    return _training_set(rows[0]) if rows else None


def models_using_view(store: Store, name: str) -> list[Row]:
    """The model versions trained from a training set built with view ``name`` (any version):
    by the run that built it, or by a run that read it (its fingerprint among the run's
    inputs); name, version, view_version."""
    return store.query_dicts(
        "WITH used AS (SELECT t.run_id AS run_id, t.fingerprint AS fingerprint, "
        "json_extract(f.value, '$.version') AS view_version "
        "FROM training_sets AS t, json_each(t.features) AS f "
        "WHERE json_extract(f.value, '$.view') = ?), "
        "runs_using AS (SELECT run_id, view_version FROM used WHERE run_id IS NOT NULL "
        "UNION SELECT d.run_id, u.view_version FROM used AS u JOIN run_datasets AS d "
        "ON d.dataset_id = u.fingerprint AND d.role = 'input') "
        "SELECT DISTINCT mv.name AS name, mv.version AS version, r.view_version AS view_version "
        "FROM runs_using AS r JOIN model_versions AS mv ON mv.run_id = r.run_id "
        "ORDER BY mv.name, mv.version, r.view_version",
        (name,),
    )
