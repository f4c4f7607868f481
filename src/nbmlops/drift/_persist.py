"""Profiles and reports in the store: the domain side (SQL lives in nbmlops.store.drift).

Checking computes and never saves; these functions are the one place that does, called by
``nbmlops.check_drift`` / ``nbmlops.save_reference`` (which decide *whether* to save) or by a
user holding a :class:`~nbmlops.store.Store`. A report carries the profile it was checked
against, so :func:`save_report` keeps both in one transaction.

A stored report keeps its per-column table (``columns``), how it was judged (``settings``: the
drift-share threshold, the multiple-testing correction, each column's method, parameters and
nominal threshold, the warnings) and what its plots need (``curves``: the current data's side,
101 quantiles of a numeric column or the shares of the plotted values; the reference side is
recomputed from the stored profile, exactly as the check computed it).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nbmlops.drift._base import CURVE_PROBS
from nbmlops.drift._profile import (
    ColumnProfile,
    Profile,
    _b64,
    _label_from_json,
    _unb64,
    as_frame,
)
from nbmlops.drift.report import ColumnDrift, DriftReport
from nbmlops.errors import DriftInputError, NotFoundError
from nbmlops.fingerprint import fingerprint
from nbmlops.store import drift as sql

if TYPE_CHECKING:
    from nbmlops.store import Store


def _profile_row(profile: Profile) -> sql.ProfileRow:
    if profile.dataset_id is None:
        raise DriftInputError(
            "This profile was built without the reference's fingerprint, so the store cannot "
            "key it; build it with build_profile(reference) (fingerprint=True, the default)."
        )
    return sql.ProfileRow(
        profile.profile_id, profile.dataset_id, profile.n_rows, profile.to_json(), time.time()
    )


def save_profile(store: Store, profile: Profile) -> str:
    """Store a reference profile (once per id); returns its id. (``nbmlops.save_reference``
    is the public verb: it profiles data, then calls this.)"""
    sql.save_profile(store, _profile_row(profile))
    return profile.profile_id


def load_profile(store: Store, profile_id: str) -> Profile:
    """The stored profile with this id (or unique id prefix)."""
    row = sql.load_profile(store, profile_id)
    if row is None:
        raise NotFoundError(
            f"Drift profile {profile_id!r} not found in store {store.db_path}; save one with "
            "nbmlops.save_reference(data) or nbmlops.drift.save_profile(store, profile)."
        )
    return _from_row(row)


def _from_row(row: sql.ProfileRow) -> Profile:
    profile = Profile.from_json(row.profile, row.dataset_id)
    if profile.profile_id != row.profile_id:  # keep the stored id authoritative
        profile._id[:] = [row.profile_id]
    return profile


def profiles_for_dataset(store: Store, dataset_id: str) -> list[Profile]:
    """Every stored profile of the reference dataset with this fingerprint, newest first."""
    return [_from_row(r) for r in sql.profiles_for_dataset(store, dataset_id)]


def save_report(
    store: Store,
    report: DriftReport,
    *,
    profile: Profile | None = None,
    current: pd.DataFrame | pd.Series[Any] | None = None,
    run_id: str | None = None,
    model_name: str | None = None,
    model_version: int | None = None,
    window_start: float | None = None,
    window_end: float | None = None,
) -> DriftReport:
    """Store a report, linked to a run and/or a registered model version; returns the report
    with its ``report_id`` (and ``current_id`` when ``current`` is given) filled in.
    ``window_start`` / ``window_end`` (epoch seconds) record the span of served traffic a
    check of it covered, in the same row (``nbmlops.monitor_drift`` passes them).

    The profile checked against is stored with it: ``profile``, else the one the report
    carries; it must have the reference's fingerprint (checks that will be saved are made with
    ``fingerprint=True``), unless it is in the store already.
    """
    if run_id is not None:
        run_id = store.resolve_run_id(run_id)
    if report.profile_id is None:
        raise NotFoundError("This report has no reference profile id, so it cannot be stored.")
    if profile is None and report._profile is not None and report._profile.dataset_id is not None:
        profile = report._profile
    if profile is None and not sql.profile_exists(store, report.profile_id):
        raise NotFoundError(
            f"Drift profile {report.profile_id!r} of this report is not in store "
            f"{store.db_path}, and the report's profile has no fingerprint to key it by; pass "
            "profile= or check with fingerprint=True."
        )
    report_id = report.report_id or os.urandom(6).hex()
    current_id = report.current_id
    if current is not None and current_id is None:
        try:
            current_id = fingerprint(as_frame(current, "current")).digest
        except TypeError:
            current_id = None
    report = dataclasses.replace(report, current_id=current_id, report_id=report_id)
    row = sql.ReportRow(
        report_id=report_id,
        profile_id=report.profile_id,
        current_id=report.current_id,
        run_id=run_id,
        model_name=model_name,
        model_version=model_version,
        dataset_drift=report.dataset_drift,
        drift_share=report.drift_share,
        columns=[c.to_dict() for c in report.columns],
        created_at=report.created_at,
        settings=_settings_json(report),
        window_start=window_start,
        window_end=window_end,
        curves=_curves_json(report),
    )
    sql.save_report(store, row, _profile_row(profile) if profile is not None else None)
    return report


def _settings_json(report: DriftReport) -> dict[str, Any]:
    return {
        "drift_share_threshold": report.drift_share_threshold,
        "multiple_testing": report.multiple_testing,
        "warnings": list(report.warnings),
        "columns": [dict(s) for s in report.column_settings],
    }


def _curves_json(report: DriftReport) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for column, curve in report._curves.items():
        if curve["type"] == "ecdf":
            out.append({"column": column, "type": "ecdf", "current": _b64(curve["current"], "<f8")})
        else:
            shares = [float(x) for x in curve["current"]]
            out.append(
                {"column": column, "type": "bars", "keys": list(curve["keys"]), "current": shares}
            )
    return out


def _curves_from_json(items: list[dict[str, Any]], profile: Profile) -> dict[Any, dict[str, Any]]:
    """The plotted curves of a stored report: its current side with the reference side
    recomputed from the profile (as ``_base._curve`` computed it)."""
    curves: dict[Any, dict[str, Any]] = {}
    for item in items:
        column = _label_from_json(item["column"])
        ref: ColumnProfile | None = profile.columns.get(column)
        if ref is None:
            continue
        if item["type"] == "ecdf" and ref.numeric is not None:
            curves[column] = {
                "type": "ecdf",
                "probs": CURVE_PROBS,
                "reference": ref.numeric.quantiles(CURVE_PROBS),
                "current": _unb64(item["current"], "<f8"),
            }
        elif item["type"] == "bars":
            keys, counts = ref.frequencies()
            total = max(int(counts.sum()), 1)
            by_key = dict(zip(keys, counts.tolist(), strict=True))
            curves[column] = {
                "type": "bars",
                "keys": list(item["keys"]),
                "reference": np.array([by_key.get(k, 0) / total for k in item["keys"]]),
                "current": np.array(item["current"], dtype=np.float64),
            }
    return curves


def load_report(store: Store, report_id: str) -> DriftReport:
    """A stored report: its verdict, settings, per-column table and (for reports saved since
    store migration 0007) what ``plot()`` needs."""
    row = sql.load_report(store, report_id)
    if row is None:
        raise NotFoundError(
            f"Drift report {report_id!r} not found in store {store.db_path}; list reports "
            "with nbmlops.drift.drift_reports(store)."
        )
    curves: dict[Any, dict[str, Any]] = {}
    profile: Profile | None = None
    if row.profile_id is not None:
        profile_row = sql.load_profile(store, row.profile_id)
        profile = None if profile_row is None else _from_row(profile_row)
    if row.curves and profile is not None:
        curves = _curves_from_json(row.curves, profile)
    return _report_from_row(row, curves, profile)


def _report_from_row(
    row: sql.ReportRow, curves: dict[Any, dict[str, Any]], profile: Profile | None
) -> DriftReport:
    # Reports saved before migration 0007 have no settings: the defaults are a guess for them.
    settings = row.settings or {}
    column_settings = tuple(
        {**s, "column": _label_from_json(s["column"])} for s in settings.get("columns", [])
    )
    return DriftReport(
        columns=tuple(ColumnDrift.from_dict(c) for c in row.columns),
        dataset_drift=row.dataset_drift,
        drift_share=float(row.drift_share),
        drift_share_threshold=float(settings.get("drift_share_threshold", 0.5)),
        multiple_testing=settings.get("multiple_testing"),
        profile_id=row.profile_id,
        current_id=row.current_id,
        report_id=row.report_id,
        created_at=float(row.created_at),
        warnings=tuple(settings.get("warnings", ())),
        column_settings=column_settings,
        _curves=curves,
        _profile=profile,
    )


def drift_reports(
    store: Store,
    *,
    profile_id: str | None = None,
    dataset_id: str | None = None,
    run_id: str | None = None,
    model_name: str | None = None,
    model_version: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Stored reports, newest first: one row per report with its verdict and links, and for a
    check of served traffic the window it covered (``window_start`` / ``window_end``, UTC;
    NaT for the others)."""
    rows = sql.reports(
        store,
        profile_id=profile_id,
        dataset_id=dataset_id,
        run_id=run_id,
        model_name=model_name,
        model_version=model_version,
        limit=limit,
    )
    out = []
    for r in rows:
        drifted = [c["column"] for c in r.columns if c["drifted"]]
        out.append(
            {
                "report_id": r.report_id,
                "created_at": pd.Timestamp(r.created_at, unit="s", tz="UTC"),
                "dataset_drift": r.dataset_drift,
                "drift_share": r.drift_share,
                "n_columns": len(r.columns),
                "drifted_columns": drifted,
                "profile_id": r.profile_id,
                "dataset_id": r.dataset_id,
                "current_id": r.current_id,
                "run_id": r.run_id,
                "model_name": r.model_name,
                "model_version": r.model_version,
                "window_start": _utc(r.window_start),
                "window_end": _utc(r.window_end),
            }
        )
    columns = [
        "report_id",
        "created_at",
        "dataset_drift",
        "drift_share",
        "n_columns",
        "drifted_columns",
        "profile_id",
        "dataset_id",
        "current_id",
        "run_id",
        "model_name",
        "model_version",
        "window_start",
        "window_end",
    ]
    frame = pd.DataFrame(out, columns=columns)
    for column in ("window_start", "window_end"):  # NaT, not object, when no row has one
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _utc(seconds: float | None) -> pd.Timestamp | None:
    return None if seconds is None else pd.Timestamp(seconds, unit="s", tz="UTC")
