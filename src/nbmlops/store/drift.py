"""SQL for drift profiles and reports (tables ``drift_profiles`` and ``drift_reports``).

Functions take a :class:`~nbmlops.store.Store`, use only its public methods (``atomic``,
``query``, ``query_dicts``), write in one ``store.atomic()`` and bind every value. Profiles and
the per-column table are JSON in TEXT columns (docs/schema.md); rows come back as
:class:`ProfileRow` and :class:`ReportRow` with that JSON parsed. What is recorded is not
changed: saving a profile or a report whose id is already stored keeps the stored row.

:func:`model_references` reads the registry's tables: it answers a drift question (what a check
can be made against) in one query, where the registry's own listings take one per model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from nbmlops.store.db import Row, Store

_PROFILE_COLUMNS = "profile_id, dataset_id, n_rows, profile, created_at"
_REPORT_COLUMNS = (
    "report_id, profile_id, current_id, run_id, model_name, model_version, dataset_drift, "
    "drift_share, columns, created_at, settings, window_start, window_end"
)
# ``curves`` is read only with one report (load_report), never in listings.
_REPORT_INSERT = _REPORT_COLUMNS + ", curves"
_PROFILE_INSERT = (
    f"INSERT OR IGNORE INTO drift_profiles ({_PROFILE_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
)


class ProfileRow(NamedTuple):
    """A ``drift_profiles`` row; ``profile`` is the parsed JSON."""

    profile_id: str
    dataset_id: str
    n_rows: int
    profile: dict[str, Any]
    created_at: float


class ReportRow(NamedTuple):
    """A ``drift_reports`` row, JSON parsed. ``curves`` is read with one report only
    (:func:`load_report`); ``dataset_id`` (the profile's) only in listings (:func:`reports`)."""

    report_id: str
    profile_id: str | None
    current_id: str | None
    run_id: str | None
    model_name: str | None
    model_version: int | None
    dataset_drift: bool
    drift_share: float
    columns: list[dict[str, Any]]
    created_at: float
    settings: dict[str, Any] | None
    window_start: float | None = None  # a check of served traffic: its window
    window_end: float | None = None
    curves: list[dict[str, Any]] | None = None
    dataset_id: str | None = None


class ModelReference(NamedTuple):
    """A registered version that is not deleted, with the aliases pointing at it now."""

    name: str
    version: int
    aliases: tuple[str, ...]


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _profile_values(row: ProfileRow) -> tuple[object, ...]:
    return (row.profile_id, row.dataset_id, row.n_rows, _dumps(row.profile), row.created_at)


def save_profile(store: Store, row: ProfileRow) -> bool:
    """Store a profile once; True when it was new."""
    with store.atomic() as conn:
        return conn.execute(_PROFILE_INSERT, _profile_values(row)).rowcount == 1


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


def _profile_row(row: Row) -> ProfileRow:
    return ProfileRow(**{**row, "profile": json.loads(row["profile"])})


def load_profile(store: Store, profile_id: str) -> ProfileRow | None:
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


def profiles_for_dataset(store: Store, dataset_id: str) -> list[ProfileRow]:
    """Every profile of one reference dataset (by fingerprint), newest first."""
    rows = store.query_dicts(
        f"SELECT {_PROFILE_COLUMNS} FROM drift_profiles WHERE dataset_id = ? "
        "ORDER BY created_at DESC, profile_id",
        (dataset_id,),
    )
    return [_profile_row(r) for r in rows]


def save_report(store: Store, report: ReportRow, profile: ProfileRow | None = None) -> bool:
    """Store a report (``dataset_id`` is the profile's and not stored with it); its profile too
    when given, in the same transaction. True when the report was new."""
    with store.atomic() as conn:
        if profile is not None:
            conn.execute(_PROFILE_INSERT, _profile_values(profile))
        cur = conn.execute(
            f"INSERT OR IGNORE INTO drift_reports ({_REPORT_INSERT}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                report.report_id,
                report.profile_id,
                report.current_id,
                report.run_id,
                report.model_name,
                report.model_version,
                int(report.dataset_drift),
                float(report.drift_share),
                _dumps(report.columns),
                report.created_at,
                None if report.settings is None else _dumps(report.settings),
                report.window_start,
                report.window_end,
                None if report.curves is None else _dumps(report.curves),
            ),
        )
        return cur.rowcount == 1


def _report_row(row: Row) -> ReportRow:
    def parsed(key: str) -> Any:
        text = row.get(key)
        return None if text is None else json.loads(text)

    return ReportRow(
        **{
            **row,
            "dataset_drift": bool(row["dataset_drift"]),
            "columns": json.loads(row["columns"]),
            "settings": parsed("settings"),
            "curves": parsed("curves"),
        }
    )


def load_report(store: Store, report_id: str) -> ReportRow | None:
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
) -> list[ReportRow]:
    """Stored reports matching every given filter, newest first (without their curves)."""
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


def model_references(store: Store) -> list[ModelReference]:
    """Every registered version not deleted, with its current aliases, by name then version.

    An alias's current target is its last ``alias_set`` / ``alias_removed`` event (as in
    :func:`nbmlops.store.registry.all_current_aliases`); a version is deleted by its ``deleted``
    event. One statement, however many models and versions."""
    rows = store.query(
        "WITH last_alias AS ("
        "SELECT e.name, e.alias, e.kind, e.version FROM model_events e JOIN ("
        "SELECT MAX(event_id) AS last FROM model_events "
        "WHERE kind IN ('alias_set', 'alias_removed') GROUP BY name, alias) m "
        "ON e.event_id = m.last) "
        "SELECT v.name, v.version, a.alias FROM model_versions v "
        "LEFT JOIN last_alias a ON a.name = v.name AND a.version = v.version "
        "AND a.kind = 'alias_set' "
        "WHERE NOT EXISTS (SELECT 1 FROM model_events d WHERE d.name = v.name "
        "AND d.version = v.version AND d.kind = 'deleted') "
        "ORDER BY v.name, v.version, a.alias"
    )
    out: list[ModelReference] = []
    for name, version, alias in rows:
        if not out or (out[-1].name, out[-1].version) != (name, version):
            out.append(ModelReference(str(name), int(version), ()))
        if alias is not None:
            last = out[-1]
            out[-1] = last._replace(aliases=(*last.aliases, str(alias)))
    return out


__all__: Sequence[str] = [
    "ModelReference",
    "ProfileRow",
    "ReportRow",
    "load_profile",
    "load_report",
    "model_references",
    "profile_exists",
    "profile_ids_for_datasets",
    "profiles_for_dataset",
    "reports",
    "save_profile",
    "save_report",
]
