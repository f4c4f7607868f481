"""Drift: keep a reference profile, check current data against a reference, check what a
model served.

The drift domain computes (detectors and ``nbmlops.drift.check_drift`` never touch a store);
this module resolves the store, decides whether to save (``save=``) and links the saved report
to the active run and to the model a reference names. ``save_reference`` is the public verb for
keeping data as a reference; ``nbmlops.drift.save_profile`` is the domain step it calls.
``monitor_drift`` checks served traffic (:mod:`nbmlops.monitoring.drift_windows`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from nbmlops._display import parse_duration
from nbmlops.capture import run as _run
from nbmlops.registry.events import Moment, to_seconds
from nbmlops.registry.model_version import parse_ref
from nbmlops.registry.model_version import resolve as resolve_version
from nbmlops.store import StoreLike, open_store

if TYPE_CHECKING:
    from nbmlops.drift import DriftReport
    from nbmlops.monitoring.drift_windows import ServedDrift


def save_reference(
    data: Any,
    columns: list[str] | None = None,
    *,
    max_rows: int | None = None,
    store: StoreLike = None,
) -> str:
    """Profile ``data`` (bins, counts, quantile sketch, category frequencies) and keep the
    profile in the store, keyed by the data's fingerprint; returns the profile id. Later drift
    checks against it (or against a model trained on it) never need the data again.
    ``max_rows`` profiles a deterministic sample of that many rows of longer data."""
    # nbmlops.drift loads pandas and numpy; `import nbmlops` must not.
    from nbmlops import drift

    return drift.save_profile(
        open_store(store), drift.build_profile(data, columns, max_rows=max_rows)
    )


def check_drift(
    reference: Any,
    current: Any,
    columns: list[str] | None = None,
    method: Any = None,
    *,
    save: bool = True,
    store: StoreLike = None,
    **options: Any,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    ``reference`` is a DataFrame/Series; the id (or a unique prefix) of a saved reference
    profile; the fingerprint of a dataset that has one (a run's input, see
    ``nbm.get_run(id).datasets``); or a registered model (``"name@alias"``, ``"name/3"``,
    ``"name"``), checked against its training data's profile: the one pinned when it was
    registered, else the newest one of that data (kept by ``%%track`` or
    ``nbm.save_reference(X_train)``). The report is saved in the store (linked to the active
    run, and to the model) unless ``save=False``. ``options``: ``threshold``, ``drift_share``,
    ``multiple_testing`` (see nbmlops.drift).
    """
    # nbmlops.drift loads pandas and numpy; `import nbmlops` must not.
    from nbmlops import drift

    model_name = model_version = None
    if isinstance(reference, str):  # a saved reference: read from an existing store
        found_in = open_store(store, create=False)
        found = drift.resolve_reference(
            found_in, reference, lambda ref: resolve_version(found_in, ref)
        )
        reference, model_name, model_version = found
    report = drift.check_drift(reference, current, columns, method, fingerprint=save, **options)
    if not save:
        return report
    st = open_store(store)
    active = _run.active_run()
    run_id = active.run_id if active is not None and active.store is st else None
    return drift.save_report(
        st,
        report,
        current=current,
        run_id=run_id,
        model_name=model_name,
        model_version=model_version,
    )


def monitor_drift(
    ref: str,
    *,
    window: str | float | dt.timedelta = "1h",
    end: Moment | None = None,
    save: bool = True,
    store: StoreLike = None,
) -> ServedDrift:
    """Check the inputs a model served in the last ``window`` against its training data.

    ``ref``: ``"name"`` (every version that served in the window), ``"name/3"`` or
    ``"name@champion"`` (that one version). ``window``: ``"1h"``, ``"5m"``, ``"1h30m"``,
    seconds or a timedelta; ``end``: the window's end (now; UTC seconds, a datetime or an ISO
    string). Each version's inputs are compared with its training profile, column by column
    (Evidently's default method per column), from the profiles its servers wrote each minute,
    never by re-reading the logged requests. Each report is saved, linked to the version and
    the window (``nbmlops.drift.drift_reports(store, model_name=...)``), unless
    ``save=False``. A version with no training profile, or nothing served in the window, gets
    a ``reason`` instead."""
    # nbmlops.monitoring.drift_windows loads pandas and numpy; `import nbmlops` must not.
    from nbmlops.monitoring import drift_windows

    seconds = parse_duration(window, what="window")
    stop = None if end is None else to_seconds(end)
    st = open_store(store, create=False)
    name, number, alias = parse_ref(ref)
    resolved = resolve_version(st, ref)  # an unknown model or alias: an error listing them
    version = None if number is None and alias is None else resolved.version
    return drift_windows.monitor_drift(st, name, version, window=seconds, end=stop, save=save)
