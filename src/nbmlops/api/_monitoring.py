"""Monitoring: late labels and production skew per registry version (issue #15).

::

    nbm.log_labels(["a1b2...", "c3d4..."], [151.0, 75.0])        # request ids from the server
    nbm.log_labels(df, request_id="request_id", label="y")      # or a DataFrame
    nbm.production_skew("diabetes")                              # every version that served
    nbm.production_skew("diabetes@champion", since="2026-05-01")  # one version, recent traffic
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from nbmlops._display import parse_duration
from nbmlops.monitoring import labels, skew
from nbmlops.monitoring.labels import LabelsLogged
from nbmlops.monitoring.skew import ProductionSkew
from nbmlops.registry.events import Moment, to_seconds
from nbmlops.registry.model_version import parse_ref, resolve
from nbmlops.store import StoreLike, open_store


def log_labels(
    request_ids: object,
    y_true: Sequence[object] | None = None,
    *,
    rows: Sequence[object] | None = None,
    request_id: str = "request_id",
    label: str = "y",
    row: str = "row",
    name: str | None = None,
    store: StoreLike = None,
) -> LabelsLogged:
    """Record ground truth for served requests, by the request id the server returned.

    ``log_labels(request_ids, y_true)``: one label per request (its row 0); ``rows=``: the row
    of each label within a multi-row request. ``log_labels(df, request_id=..., label=...)``: a
    DataFrame with those columns (and ``row``'s, if it has one); its rows with no label yet
    (NaN, None) are left out and counted in ``missing``. Labels are appended; a later
    label for the same request and row supersedes an earlier one. Labels whose request the log
    does not hold are kept and counted in the result's ``unknown`` and ``unknown_ids`` (the
    server writes its log in batches: they match once it is flushed). ``name``: count as
    matched only requests to that model."""
    missing = 0
    if hasattr(request_ids, "columns"):
        if y_true is not None:
            raise TypeError("log_labels(df, ...) takes the labels from its column label=")
        frame: Any = request_ids
        absent = [c for c in (request_id, label) if c not in frame.columns]
        if absent:
            raise KeyError(
                f"log_labels: the DataFrame has no column {', '.join(map(repr, absent))}; "
                "name its columns with request_id= and label="
            )
        present = frame[frame[label].notna()]  # a row not labelled yet: left for later
        missing = len(frame) - len(present)
        request_ids, y_true = list(present[request_id]), list(present[label])
        if row in frame.columns:
            rows = list(present[row])
    if y_true is None:
        raise TypeError("log_labels(request_ids, y_true): give the labels")
    tolist = getattr(y_true, "tolist", None)  # numpy arrays, pandas Series: Python scalars
    y_true = tolist() if callable(tolist) else y_true
    ids: Any = request_ids
    ids = list(ids) if isinstance(ids, str) or not isinstance(ids, Sequence) else ids
    logged = labels.log_labels(open_store(store), ids, y_true, rows, name=name)
    return replace(logged, missing=missing) if missing else logged


def production_skew(
    ref: str,
    *,
    since: Moment | None = None,
    until: Moment | None = None,
    window: str | float | dt.timedelta | None = None,
    metric: str | None = None,
    features: bool = True,
    store: StoreLike = None,
) -> ProductionSkew:
    """The served metric of each version against the offline one it was registered with.

    ``ref``: ``"name"`` (every version that served labelled requests), ``"name/3"`` or
    ``"name@champion"`` (that one version). The served metric is computed from the labels
    joined to the logged outputs with the same formula as the offline one; ``metric``: one of
    mae, mse, rmse, r2, accuracy, f1 (default: the first of these the version recorded). Each
    version's difference comes with a 95% interval (the delta method's, from sums the store adds
    up: see :mod:`nbmlops.monitoring.skew` for its measured false-alarm rates) and is
    ``significant`` only when that interval excludes 0 and 30 rows or more were labelled.
    ``since``/``until``: requests that arrived in that range (UTC seconds, a datetime or an ISO
    string). ``window`` (``"1h"``, ``"1d"``, seconds): one row per version and window, the
    windows starting at multiples of it since the epoch ("1d": UTC days). ``features``: also
    each version's feature skew (its served inputs against its training profile, the drift
    detectors per column) and signature skew (requests refused by, or with columns beyond, its
    signature) over the same range: ``.features`` and ``.signature``."""
    st = open_store(store, create=False)
    model, number, alias = parse_ref(ref)
    resolved = resolve(st, ref)  # an unknown model or alias: an error that lists the known ones
    version = None if number is None and alias is None else resolved.version
    return skew.production_skew(
        st,
        model,
        version,
        since=None if since is None else to_seconds(since),
        until=None if until is None else to_seconds(until),
        window=None if window is None else parse_duration(window, what="window"),
        metric=metric,
        features=features,
    )
