"""Drift on served traffic: the inputs each version scored in a window against its training
profile, from the window profiles the servers wrote (:mod:`nbmlops.monitoring.traffic`).

Profiles, not re-reads: a check reads the ``traffic_profiles`` rows of its window (a minute's
rows each), adds them up into one profile of the served inputs
(:func:`nbmlops.drift.pool_profiles`) and checks that profile against the version's training
profile (``ModelVersion.reference_profile_id``), with the existing detectors and Evidently's
default choice of method per column. It never decodes a logged request, and never rebuilds a
row: its cost depends on the profiles' size (60 minute windows of 1,000 knots a column), not
on the rows they counted. Statistics are the served rows' ones exactly where the windows
summarise their values exactly, and within the pooled sketch's recorded error bounds
(``ks_error``, ``w1_error``: the windows' count-weighted bound plus one re-sketch of their
exact mixture, which does not grow with the number of windows) otherwise; p-values use the
real number of rows.

A window [start, end) takes the profiles of windows that lie inside it; the window a server has
open is written when it closes (a minute, by default), so a check of "the last hour" sees up to
the last full minute.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from nbmlops import drift
from nbmlops.drift import DriftReport, Profile, pool_profiles
from nbmlops.errors import DriftInputError
from nbmlops.registry.model_version import resolve
from nbmlops.store import Store
from nbmlops.store import traffic as traffic_sql

# The 4xx a request gets when its columns do not fit the version's signature
# (nbmlops.serving.signature.InputSchema.prepare), as SQL LIKE patterns of the logged message.
SIGNATURE_ERRORS = (
    "Missing column(s) %",
    "% are not in the signature of %",
    "Rows without column names must have %",
    "% expects % features per row%",
    "Column % of % expects %; row % holds %",
)


@dataclass(frozen=True)
class VersionDrift:
    """One version's check: ``n_rows`` scored rows in ``n_windows`` traffic profiles, the
    ``report`` (None with the ``reason``: no training profile, or no traffic in the window)
    and its ``report_id`` when saved."""

    version: int
    n_rows: int
    report: DriftReport | None
    report_id: str | None
    reason: str | None = None
    n_windows: int = 0

    @property
    def drift_share(self) -> float | None:
        return None if self.report is None else self.report.drift_share

    @property
    def dataset_drift(self) -> bool | None:
        return None if self.report is None else self.report.dataset_drift


@dataclass(frozen=True)
class ServedDrift:
    """Drift of the inputs ``name`` served in [``window_start``, ``window_end``), per version."""

    name: str
    window_start: float
    window_end: float
    versions: list[VersionDrift]

    @property
    def drifted(self) -> list[int]:
        """The versions whose served inputs drifted."""
        return [v.version for v in self.versions if v.dataset_drift]

    def to_frame(self) -> pd.DataFrame:
        """One row per version: rows, windows, verdict, drift share, drifted columns, report."""
        return pd.DataFrame(
            [
                {
                    "version": v.version,
                    "n_rows": v.n_rows,
                    "n_windows": v.n_windows,
                    "dataset_drift": v.dataset_drift,
                    "drift_share": v.drift_share,
                    "drifted_columns": None if v.report is None else v.report.drifted_columns,
                    "report_id": v.report_id,
                    "reason": v.reason,
                }
                for v in self.versions
            ],
            columns=[
                "version",
                "n_rows",
                "n_windows",
                "dataset_drift",
                "drift_share",
                "drifted_columns",
                "report_id",
                "reason",
            ],
        )

    def _span(self) -> str:
        start = pd.Timestamp(self.window_start, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
        end = pd.Timestamp(self.window_end, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
        return f"{start} to {end} UTC"

    def __repr__(self) -> str:
        lines = [f"ServedDrift({self.name!r}, {self._span()})"]
        for v in self.versions:
            lines.append(f"  {self.name}/{v.version}: {_verdict(v)}")
        if not self.versions:
            lines.append("  no version served profiled rows in this window")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{v.version}</td><td>{v.n_rows}</td><td>{html.escape(_verdict(v))}</td>"
            f"<td>{html.escape(v.report_id or '')}</td></tr>"
            for v in self.versions
        )
        title = f"Drift of the inputs {html.escape(self.name)} served, {self._span()}"
        head = "<tr><th>version</th><th>rows</th><th>verdict</th><th>report</th></tr>"
        return f"<b>{title}</b><table>{head}{rows}</table>"


def _verdict(v: VersionDrift) -> str:
    if v.report is None:
        return f"not checked: {v.reason}"
    r = v.report
    state = "DRIFT" if r.dataset_drift else "no drift"
    drifted = ", ".join(map(str, r.drifted_columns))
    return (
        f"{state}, {r.n_drifted}/{len(r.columns)} columns drifted (share {r.drift_share:.2f})"
        f"{': ' + drifted if drifted else ''}, {v.n_rows} rows"
    )


def served_profile(
    store: Store, name: str, version: int, start: float, end: float
) -> Profile | None:
    """One profile of the inputs ``name/version`` scored in [``start``, ``end``): its window
    profiles pooled; None when there are none. Profiles with other columns than the newest one
    (written before the version's training profile was saved) are left out."""
    same = window_profiles(store, name, version, start, end)
    return pool_profiles(same) if same else None


def window_profiles(
    store: Store, name: str, version: int, start: float, end: float
) -> list[Profile]:
    """The traffic profiles of ``name/version`` whose windows lie in [``start``, ``end``], oldest
    first, those with the newest one's columns and kinds only."""
    rows = traffic_sql.profiles_in(store, name, version, start, end)
    profiles = [Profile.from_json(r.profile, None) for r in rows]
    if not profiles:
        return []
    layout = _layout(profiles[-1])
    return [p for p in profiles if _layout(p) == layout]


def _layout(profile: Profile) -> list[tuple[Any, str, bool]]:
    return [(c.name, c.kind, c.numeric is None) for c in profile.columns.values()]


def monitor_drift(
    store: Store,
    name: str,
    version: int | None,
    *,
    window: float,
    end: float | None = None,
    save: bool = True,
    drift_share: float = 0.5,
) -> ServedDrift:
    """Check the inputs ``name/version`` (every version that served in the window when None)
    scored in the ``window`` seconds before ``end`` (now) against its training profile; each
    report is saved, linked to the version and the window, unless ``save=False``."""
    if not (isinstance(window, int | float) and math.isfinite(window) and window > 0):
        raise ValueError(f"window={window!r} must be a positive, finite number of seconds.")
    stop = time.time() if end is None else float(end)
    start = stop - float(window)
    if version is None:
        versions = traffic_sql.versions_served(store, name, start, stop)
    else:
        versions = [version]
    checked = [
        _check_version(store, name, v, start, stop, save=save, drift_share=drift_share)
        for v in versions
    ]
    return ServedDrift(name, start, stop, checked)


def _check_version(
    store: Store,
    name: str,
    version: int,
    start: float,
    end: float,
    *,
    save: bool,
    drift_share: float,
) -> VersionDrift:
    mv = resolve(store, f"{name}/{version}")
    reference_id = mv.reference_profile_id
    if reference_id is None:
        reason = (
            f"{mv.ref} has no training profile to compare with; save one with "
            "nbm.save_reference(X_train) (its training data) or register it from a tracked run"
        )
        return VersionDrift(version, 0, None, None, reason)
    windows = window_profiles(store, name, version, start, end)
    if not windows:
        reason = "no traffic profile in this window (no scored rows, or its window is still open)"
        return VersionDrift(version, 0, None, None, reason)
    n_rows, n_windows = sum(w.n_rows for w in windows), len(windows)
    reference = drift.load_profile(store, reference_id)
    try:
        report = check_profiles(reference, windows, drift_share=drift_share)
    except DriftInputError as exc:
        return VersionDrift(version, n_rows, None, None, str(exc), n_windows)
    report_id = None
    if save:
        report = drift.save_report(
            store,
            report,
            model_name=name,
            model_version=version,
            window_start=start,
            window_end=end,
        )
        report_id = report.report_id
    return VersionDrift(version, n_rows, report, report_id, None, n_windows)


def check_profiles(
    reference: Profile, windows: Sequence[Profile], *, drift_share: float = 0.5
) -> DriftReport:
    """Check the rows the ``windows`` (profiles of the same columns) summarise against
    ``reference``, on the columns they share: their pooled profile against it."""
    first = windows[0]
    columns = [c for c in reference.columns if c in first.columns]
    if not columns:
        raise DriftInputError(
            f"The served inputs share no column with the training profile (it has "
            f"{list(reference.columns)[:10]}, the traffic {list(first.columns)[:10]}).",
            [str(c) for c in first.columns],
        )
    current = pool_profiles(windows)
    return drift.check_drift(reference, current, columns, drift_share=drift_share)


def feature_skew(
    store: Store, name: str, version: int, since: float | None, until: float | None
) -> DriftReport | None:
    """The inputs ``name/version`` served in [``since``, ``until``) (from the first window,
    until now, when None) against its training profile; not saved. None when it has no
    training profile or no profiled traffic in that span."""
    stop = time.time() if until is None else float(until)
    begin = 0.0 if since is None else float(since)
    if stop <= begin:
        return None
    checked = monitor_drift(store, name, version, window=stop - begin, end=stop, save=False)
    return checked.versions[0].report


def signature_skew(
    store: Store, name: str, version: int, since: float | None, until: float | None
) -> dict[str, Any]:
    """How the requests to ``name/version`` in [``since``, ``until``) fitted its signature:
    ``requests`` logged, ``with_extra_columns`` (answered, extra columns logged: the server's
    ``log`` policy), ``signature_errors`` (refused with a 4xx because columns were missing, of
    the wrong type or count, or extra under the ``error`` policy), ``extra_columns`` (each
    extra column's request count) and ``share`` (both kinds over requests). Counts are of the
    logged requests: a sample when the server ran with ``log_sample`` < 1."""
    found = traffic_sql.signature_counts(store, name, version, since, until, SIGNATURE_ERRORS)
    if not found:
        return {
            "requests": 0,
            "with_extra_columns": 0,
            "signature_errors": 0,
            "extra_columns": {},
            "share": None,
        }
    c = found[0]
    return {
        "requests": c.requests,
        "with_extra_columns": c.with_extra_columns,
        "signature_errors": c.signature_errors,
        "extra_columns": c.extra_columns,
        "share": (c.with_extra_columns + c.signature_errors) / c.requests,
    }


__all__ = [
    "SIGNATURE_ERRORS",
    "ServedDrift",
    "VersionDrift",
    "check_profiles",
    "feature_skew",
    "monitor_drift",
    "served_profile",
    "signature_skew",
    "window_profiles",
]
