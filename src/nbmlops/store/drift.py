"""SQL for drift profiles and reports (tables ``drift_profiles`` and ``drift_reports``).

Functions take a :class:`~nbmlops.store.Store`, write in one ``store.atomic()`` and bind
every value. Profiles and the per-column table are JSON in TEXT columns (docs/schema.md); rows
come back as dicts with that JSON parsed. What is recorded is not changed: saving a profile or a
report whose id is already stored keeps the stored row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.store.db import Row, Store

_PROFILE_COLUMNS = "profile_id, dataset_id, n_rows, profile, created_at"
_REPORT_COLUMNS = (
    "report_id, profile_id, current_id, run_id, model_name, model_version, dataset_drift, "
    "drift_share, columns, created_at, settings"
)
# ``curves`` is read only with one report (load_report), never in listings.
_REPORT_INSERT = _REPORT_COLUMNS + ", curves"


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def save_profile(
    store: Store,
    *,
    profile_id: str,
    dataset_id: str,
    n_rows: int,
    profile: Mapping[str, Any],
    created_at: float | None = None,
) -> bool:
    """Store a profile once; True when it was new."""
    with store.atomic() as conn:
        cur = conn.execute(
            f"INSERT OR IGNORE INTO drift_profiles ({_PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
            (profile_id, dataset_id, n_rows, _dumps(profile), created_at or time.time()),
        )
        return cur.rowcount == 1


def _by_id_or_prefix(store: Store, table: str, key: str, columns: str, value: str) -> Row | None:
    """The row whose ``key`` is ``value`` or, failing that, uniquely starts with it. ``table``,
    ``key`` and ``columns`` are this module's constants; ``value`` is always bound."""
    rows = store.query_dicts(f"SELECT {columns} FROM {table} WHERE {key} = ?", (value,))
    if not rows and value:
        rows = store.query_dicts(
            f"SELECT {columns} FROM {table} WHERE {key} >= ? AND {key} < ? LIMIT 2",
            (value, value + "\U0010ffff"),
        )
    return rows[0] if len(rows) == 1 else None


def _profile_row(row: Row) -> Row:
    return {**row, "profile": json.loads(row["profile"])}


def load_profile(store: Store, profile_id: str) -> Row | None:
    """The profile whose id is, or uniquely starts with, ``profile_id``; None if none does."""
    row = _by_id_or_prefix(store, "drift_profiles", "profile_id", _PROFILE_COLUMNS, profile_id)
    return None if row is None else _profile_row(row)


def profile_exists(store: Store, profile_id: str) -> bool:
    return bool(store.query("SELECT 1 FROM drift_profiles WHERE profile_id = ?", (profile_id,)))


def profile_ids_for_datasets(store: Store, dataset_ids: Sequence[str]) -> dict[str, list[str]]:
    """dataset_id -> the ids of its stored profiles, newest first (the profiles' JSON unread)."""
    out: dict[str, list[str]] = {d: [] for d in dataset_ids}
    if not dataset_ids:
        return out
    marks = ", ".join("?" for _ in dataset_ids)
    rows = store.query(
        f"SELECT dataset_id, profile_id FROM drift_profiles WHERE dataset_id IN ({marks}) "
        "ORDER BY created_at DESC, profile_id",
        list(dataset_ids),
    )
    for dataset_id, profile_id in rows:
        out[str(dataset_id)].append(str(profile_id))
    return out


def profiles_for_dataset(store: Store, dataset_id: str) -> list[Row]:
    """Every profile of one reference dataset (by fingerprint), newest first."""
    rows = store.query_dicts(
        f"SELECT {_PROFILE_COLUMNS} FROM drift_profiles WHERE dataset_id = ? "
        "ORDER BY created_at DESC, profile_id",
        (dataset_id,),
    )
    return [_profile_row(r) for r in rows]


def save_report(store: Store, report: Mapping[str, Any], profile: Row | None = None) -> bool:
    """Store a report (keys as the table's columns; ``columns`` a list of dicts, ``settings`` a
    dict and ``curves`` a list, or None); its profile too when given, in the same transaction.
    True when the report was new."""
    with store.atomic() as conn:
        if profile is not None:
            conn.execute(
                f"INSERT OR IGNORE INTO drift_profiles ({_PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (
                    profile["profile_id"],
                    profile["dataset_id"],
                    profile["n_rows"],
                    _dumps(profile["profile"]),
                    profile.get("created_at") or time.time(),
                ),
            )
        settings, curves = report.get("settings"), report.get("curves")
        cur = conn.execute(
            f"INSERT OR IGNORE INTO drift_reports ({_REPORT_INSERT}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report["report_id"],
                report["profile_id"],
                report.get("current_id"),
                report.get("run_id"),
                report.get("model_name"),
                report.get("model_version"),
                int(bool(report["dataset_drift"])),
                float(report["drift_share"]),
                _dumps(list(report["columns"])),
                report.get("created_at") or time.time(),
                None if settings is None else _dumps(settings),
                None if curves is None else _dumps(curves),
            ),
        )
        return cur.rowcount == 1


def _report_row(row: Row) -> Row:
    out = {
        **row,
        "dataset_drift": bool(row["dataset_drift"]),
        "columns": json.loads(row["columns"]),
        "settings": None if row["settings"] is None else json.loads(row["settings"]),
    }
    if "curves" in row:
        out["curves"] = None if row["curves"] is None else json.loads(row["curves"])
    return out


def load_report(store: Store, report_id: str) -> Row | None:
    """The report whose id is, or uniquely starts with, ``report_id`` (with its ``curves``)."""
    row = _by_id_or_prefix(store, "drift_reports", "report_id", _REPORT_INSERT, report_id)
    return None if row is None else _report_row(row)


def reports(
    store: Store,
    *,
    profile_id: str | None = None,
    dataset_id: str | None = None,
    run_id: str | None = None,
    model_name: str | None = None,
    model_version: int | None = None,
    limit: int | None = None,
) -> list[Row]:
    """Stored reports matching every given filter, newest first."""
    clauses: list[str] = []
    values: list[object] = []
    for column, value in (
        ("r.profile_id", profile_id),
        ("p.dataset_id", dataset_id),
        ("r.run_id", run_id),
        ("r.model_name", model_name),
        ("r.model_version", model_version),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")  # column names are fixed above; values are bound
            values.append(value)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    columns = ", ".join(f"r.{c.strip()}" for c in _REPORT_COLUMNS.split(","))
    sql = (
        f"SELECT {columns}, p.dataset_id FROM drift_reports r "
        f"LEFT JOIN drift_profiles p ON p.profile_id = r.profile_id{where} "
        "ORDER BY r.created_at DESC, r.report_id"
    )
    if limit is not None:
        sql += " LIMIT ?"
        values.append(int(limit))
    return [_report_row(r) for r in store.query_dicts(sql, values)]


__all__: Sequence[str] = [
    "load_profile",
    "load_report",
    "profile_exists",
    "profile_ids_for_datasets",
    "profiles_for_dataset",
    "reports",
    "save_profile",
    "save_report",
]
