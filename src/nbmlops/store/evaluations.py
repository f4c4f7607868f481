"""Row hashes of training data and evaluations of models (tables ``row_hashes``,
``evaluations``; see docs/schema.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.store.db import Row, Store

_COLUMNS = (
    "evaluation_id, run_id, name, version, model_run_id, task, dataset_id, target_id, "
    "dataset_ref, n_rows, metrics, status, unseen, comparable, report, created_at"
)


def save_row_hashes(store: Store, dataset_id: str, hashes: bytes, n_rows: int) -> None:
    """Keep the row hashes of dataset ``dataset_id`` (a uint64 array's bytes); once."""
    digest, _ = store.objects.put_bytes(hashes)
    with store.atomic() as conn:
        conn.execute(
            "INSERT INTO row_hashes (dataset_id, n_rows, object, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (dataset_id) DO NOTHING",
            (dataset_id, n_rows, digest, time.time()),
        )


def row_hash_objects(store: Store, dataset_ids: Sequence[str]) -> dict[str, Row]:
    """For each of ``dataset_ids`` that has row hashes: its row (n_rows, object)."""
    found: dict[str, Row] = {}
    unique = sorted(set(dataset_ids))
    for start in range(0, len(unique), 500):  # SQLite's bound-parameter limit
        batch = unique[start : start + 500]
        marks = ", ".join("?" * len(batch))
        for row in store.query_dicts(
            f"SELECT dataset_id, n_rows, object FROM row_hashes WHERE dataset_id IN ({marks})",
            batch,
        ):
            found[row["dataset_id"]] = row
    return found


def has_row_hashes(store: Store, dataset_id: str) -> bool:
    return bool(store.query("SELECT 1 FROM row_hashes WHERE dataset_id = ?", (dataset_id,)))


def runs_with_model_artifact(store: Store, sha256: str) -> list[str]:
    """The runs that logged a model artifact with these bytes, newest first."""
    rows = store.query(
        "SELECT run_id FROM artifacts WHERE kind = 'model' AND sha256 = ? "
        "GROUP BY run_id ORDER BY MAX(created_at) DESC",
        (sha256,),
    )
    return [r[0] for r in rows]


def add_evaluation(store: Store, evaluation: Mapping[str, Any]) -> int:
    """Append an evaluation (keys: the columns but ``evaluation_id``); its id."""
    with store.atomic() as conn:
        cursor = conn.execute(
            f"INSERT INTO evaluations ({_COLUMNS.split(', ', 1)[1]}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                evaluation.get("run_id"),
                evaluation.get("name"),
                evaluation.get("version"),
                evaluation.get("model_run_id"),
                evaluation["task"],
                evaluation["dataset_id"],
                evaluation.get("target_id"),
                evaluation.get("dataset_ref"),
                evaluation["n_rows"],
                json.dumps(evaluation["metrics"], sort_keys=True),
                evaluation["status"],
                evaluation.get("unseen"),
                evaluation.get("comparable"),
                json.dumps(evaluation["report"], sort_keys=True, default=str),
                evaluation.get("created_at", time.time()),
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


def _decoded(row: Row) -> Row:
    row["metrics"] = json.loads(row["metrics"])
    row["report"] = json.loads(row["report"])
    for flag in ("unseen", "comparable"):
        row[flag] = None if row[flag] is None else bool(row[flag])
    return row


def evaluations_of_version(
    store: Store, name: str, version: int, model_run_id: str | None
) -> list[Row]:
    """The evaluations of a model version, oldest first: those naming it, and those of the
    model it was registered from, evaluated before it was registered (the training run's,
    with the same artifact bytes: a run that logged two models has evaluations of each)."""
    rows = store.query_dicts(
        f"SELECT {_COLUMNS} FROM evaluations WHERE (name = ? AND version = ?) "
        "OR (model_run_id IS NOT NULL AND model_run_id = ? "
        "    AND json_extract(report, '$.model_sha256') = ("
        "        SELECT json_extract(payload, '$.source.sha256') FROM model_events"
        "        WHERE name = ? AND version = ? AND kind = 'registered'"
        "        ORDER BY event_id LIMIT 1)) "
        "ORDER BY created_at, evaluation_id",
        (name, version, model_run_id, name, version),
    )
    return [_decoded(r) for r in rows]


def evaluations_of_runs(store: Store, run_ids: Sequence[str]) -> dict[str, list[Row]]:
    """The evaluations recorded on, or of the models trained by, each of ``run_ids``."""
    found: dict[str, list[Row]] = {}
    unique = sorted(set(run_ids))
    for start in range(0, len(unique), 400):
        batch = unique[start : start + 400]
        marks = ", ".join("?" * len(batch))
        rows = store.query_dicts(
            f"SELECT {_COLUMNS} FROM evaluations WHERE run_id IN ({marks}) "
            f"OR model_run_id IN ({marks}) ORDER BY created_at, evaluation_id",
            [*batch, *batch],
        )
        for row in rows:
            decoded = _decoded(row)
            for key in {decoded["run_id"], decoded["model_run_id"]} & set(batch):
                found.setdefault(key, []).append(decoded)
    return found


def evaluation(store: Store, evaluation_id: int) -> Row | None:
    rows = store.query_dicts(
        f"SELECT {_COLUMNS} FROM evaluations WHERE evaluation_id = ?", (evaluation_id,)
    )
    return _decoded(rows[0]) if rows else None
