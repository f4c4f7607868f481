"""Named datasets and their versions (tables ``named_datasets``, ``dataset_versions``,
``dataset_runs``; see docs/schema.md).

Lineage is a join on fingerprints: a run that read a DataFrame records its fingerprint in
``run_datasets`` (:mod:`nbmlops.capture`), a saved version records the fingerprint of its content,
and the two meet here, whichever was recorded first. Explicit loads and saves inside a tracked
cell add a ``dataset_runs`` row, for data the cell built itself (so it was never an input).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.store.db import Row, Store

_VERSION_COLUMNS = (
    "name, version, delta_version, fingerprint, schema, n_rows, n_bytes, added_bytes, manifest, "
    "mode, restored_from, run_id, actor, host, created_at"
)


def _version(row: Mapping[str, Any]) -> Row:
    out = dict(row)
    out["schema"] = json.loads(out["schema"])
    return out


def dataset(store: Store, name: str) -> Row | None:
    """The ``named_datasets`` row of ``name`` (its key decoded), or None."""
    rows = store.query_dicts("SELECT * FROM named_datasets WHERE name = ?", (name,))
    if not rows:
        return None
    row = rows[0]
    row["key"] = json.loads(row["key"]) if row["key"] else None
    return row


def dataset_names(store: Store) -> list[str]:
    return [r[0] for r in store.query("SELECT name FROM named_datasets ORDER BY name")]


def versions(store: Store, name: str) -> list[Row]:
    """Every version of ``name``, oldest first."""
    rows = store.query_dicts(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE name = ? ORDER BY version", (name,)
    )
    return [_version(r) for r in rows]


def version(store: Store, name: str, number: int) -> Row | None:
    rows = store.query_dicts(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE name = ? AND version = ?",
        (name, number),
    )
    return _version(rows[0]) if rows else None


def latest_version(store: Store, name: str) -> Row | None:
    rows = store.query_dicts(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE name = ? "
        "ORDER BY version DESC LIMIT 1",
        (name,),
    )
    return _version(rows[0]) if rows else None


def version_as_of(store: Store, name: str, at: float) -> Row | None:
    """The version of ``name`` that was the newest at time ``at`` (seconds since the epoch)."""
    rows = store.query_dicts(
        f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE name = ? AND created_at <= ? "
        "ORDER BY version DESC LIMIT 1",
        (name, at),
    )
    return _version(rows[0]) if rows else None


def add_version(
    store: Store, row: Mapping[str, Any], dataset: Mapping[str, Any] | None = None
) -> int:
    """Append a version of ``row["name"]`` (keys: the columns but ``version``), numbered one
    past the newest, and link its saving run; the new version number. Numbering happens inside
    the write transaction, so two processes saving at once get two numbers. ``dataset`` (kind,
    uri, key) records the dataset in the same transaction when it is new (and a key given to a
    dataset that had none), so a save that fails leaves no dataset without versions."""
    with store.atomic() as conn:
        if dataset is not None:
            key = json.dumps(list(dataset["key"])) if dataset.get("key") else None
            conn.execute(
                "INSERT INTO named_datasets (name, kind, uri, key, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (row["name"], dataset["kind"], dataset["uri"], key, row["created_at"]),
            )
            if key is not None:
                conn.execute(
                    "UPDATE named_datasets SET key = ? WHERE name = ? AND key IS NULL",
                    (key, row["name"]),
                )
        (newest,) = conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM dataset_versions WHERE name = ?",
            (row["name"],),
        ).fetchone()
        number = int(newest) + 1
        conn.execute(
            f"INSERT INTO dataset_versions ({_VERSION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                row["name"],
                number,
                row.get("delta_version"),
                row.get("fingerprint"),
                json.dumps(row["schema"], sort_keys=True),
                row.get("n_rows"),
                row["n_bytes"],
                row["added_bytes"],
                row["manifest"],
                row["mode"],
                row.get("restored_from"),
                row.get("run_id"),
                row.get("actor"),
                row.get("host"),
                row["created_at"],
            ),
        )
        if row.get("run_id"):
            _link(conn, row["run_id"], row["name"], number, "saved", row["created_at"])
        return number


def set_fingerprint(store: Store, name: str, number: int, fingerprint: str) -> None:
    """Record the content fingerprint of a version saved without one (an append)."""
    with store.atomic() as conn:
        conn.execute(
            "UPDATE dataset_versions SET fingerprint = ? "
            "WHERE name = ? AND version = ? AND fingerprint IS NULL",
            (fingerprint, name, number),
        )


def _link(conn: Any, run_id: str, name: str, number: int, how: str, at: float) -> None:
    conn.execute(
        "INSERT INTO dataset_runs (run_id, name, version, how, at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (run_id, name, number, how, at),
    )


def link_run(store: Store, run_id: str, name: str, number: int, how: str, at: float) -> None:
    """Record that run ``run_id`` loaded (``how='loaded'``) or saved a version."""
    with store.atomic() as conn:
        _link(conn, run_id, name, number, how, at)


def versions_with_fingerprints(store: Store, fingerprints: Sequence[str]) -> dict[str, list[Row]]:
    """The saved versions whose content has each of ``fingerprints``, oldest first."""
    found: dict[str, list[Row]] = {}
    unique = sorted(set(fingerprints))
    for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
        batch = unique[start : start + 500]
        marks = ", ".join("?" * len(batch))
        rows = store.query_dicts(
            f"SELECT {_VERSION_COLUMNS} FROM dataset_versions WHERE fingerprint IN ({marks}) "
            "ORDER BY name, version",
            batch,
        )
        for r in rows:
            found.setdefault(r["fingerprint"], []).append(_version(r))
    return found


# Runs that used a version: those that loaded or saved it by name, and those whose recorded
# inputs have its fingerprint (a DataFrame the cell read, however the user got it).
_USAGE = """
SELECT run_id, how, NULL AS variable, at FROM dataset_runs WHERE name = :name AND version = :version
UNION ALL
SELECT rd.run_id, 'read' AS how, rd.name AS variable, r.start_time AS at
FROM run_datasets AS rd JOIN runs AS r ON r.run_id = rd.run_id
WHERE rd.role = 'input' AND rd.dataset_id = (
    SELECT fingerprint FROM dataset_versions WHERE name = :name AND version = :version)
ORDER BY at
"""


def runs_using(store: Store, name: str, number: int) -> list[Row]:
    """Each run that used version ``number`` of ``name``: run_id, how (loaded, saved, read),
    variable (the input's name for 'read'), at."""
    return store.query_dicts(_USAGE, {"name": name, "version": number})


def models_of_runs(store: Store, run_ids: Sequence[str]) -> list[Row]:
    """The model versions registered from any of ``run_ids``: name, version, run_id."""
    if not run_ids:
        return []
    unique = sorted(set(run_ids))
    marks = ", ".join("?" * len(unique))
    return store.query_dicts(
        f"SELECT name, version, run_id FROM model_versions WHERE run_id IN ({marks}) "
        "ORDER BY name, version",
        unique,
    )


# The versions a run used: loaded or saved by name, or read as an input with their fingerprint.
_LINEAGE = """
SELECT dr.name, dr.version, dr.how, NULL AS variable
FROM dataset_runs AS dr WHERE dr.run_id = :run_id
UNION ALL
SELECT dv.name, dv.version, 'read' AS how, rd.name AS variable
FROM run_datasets AS rd JOIN dataset_versions AS dv ON dv.fingerprint = rd.dataset_id
WHERE rd.run_id = :run_id AND rd.role = 'input'
ORDER BY name, version
"""


def versions_used_by(store: Store, run_id: str) -> list[Row]:
    """Each dataset version run ``run_id`` used: name, version, how, variable."""
    return store.query_dicts(_LINEAGE, {"run_id": run_id})


def dataset_summaries(store: Store) -> list[Row]:
    """One row per dataset: name, kind, uri, key, versions, latest (number), n_rows and
    n_bytes of the latest, stored_bytes (sum of added_bytes), updated_at."""
    rows = store.query_dicts(
        """
        SELECT d.name, d.kind, d.uri, d.key, COUNT(v.version) AS versions,
               MAX(v.version) AS latest, SUM(v.added_bytes) AS stored_bytes,
               MAX(v.created_at) AS updated_at,
               (SELECT n_rows FROM dataset_versions WHERE name = d.name
                ORDER BY version DESC LIMIT 1) AS n_rows,
               (SELECT n_bytes FROM dataset_versions WHERE name = d.name
                ORDER BY version DESC LIMIT 1) AS n_bytes
        FROM named_datasets AS d LEFT JOIN dataset_versions AS v ON v.name = d.name
        GROUP BY d.name ORDER BY d.name
        """
    )
    for row in rows:
        row["key"] = json.loads(row["key"]) if row["key"] else None
    return rows
