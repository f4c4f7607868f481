"""Training data checked against the feature store: a DataFrame a training cell reads whose
columns claim feature names (and carry the view's keys and a time) must hold the values the
store gives for those keys at those times, the seed's "features used for training are validated
to be the same as in the feature store". A frame that is a training set the store built (its
fingerprint recorded) is the store's by construction and costs one lookup.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nbmlops.feature_store.definitions import FeatureView, feature_table, get_view
from nbmlops.feature_store.point_in_time import point_in_time_join
from nbmlops.store import features as sql
from nbmlops.store.db import Store

TIME_COLUMNS = ("event_timestamp",)  # nbm.training_set's default entity time column
MAX_ROWS = 1_000_000  # larger frames are not re-joined in a cell's time: skipped, said so


def check_training_inputs(store: Store, inputs: Mapping[str, tuple[str, object]]) -> list[str]:
    """One line per input (name -> (fingerprint, object)) whose feature-named columns differ
    from the store's point-in-time values; empty when all agree or nothing claims a feature."""
    if not store.exists():
        return []
    views = [get_view(store, row["name"]) for row in sql.latest_views(store)]
    if not views:
        return []
    findings: list[str] = []
    for name, (digest, frame) in inputs.items():
        if type(frame).__name__ != "DataFrame" or not hasattr(frame, "columns"):
            continue
        if sql.training_set_with_fingerprint(store, digest) is not None:
            continue
        for view in views:
            finding = _check(store, name, frame, view)
            if finding:
                findings.append(finding)
    return findings


def _check(store: Store, name: str, frame: Any, view: FeatureView) -> str | None:
    columns = set(map(str, frame.columns))
    claimed = [f for f in view.feature_names if f in columns]
    time = next((c for c in (*TIME_COLUMNS, view.timestamp) if c in columns), None)
    if not claimed or time is None or not set(view.keys) <= columns:
        return None
    if len(frame) > MAX_ROWS:
        return (
            f"{name}: columns {claimed} look like features of {view.ref} but the frame has "
            f"{len(frame):,} rows, more than checked in a cell ({MAX_ROWS:,}); build it with "
            "nbm.training_set to be sure of its values."
        )
    entity = frame[[*view.keys, time]].reset_index(drop=True)
    table, _ = feature_table(store, view, claimed)
    joined = point_in_time_join(entity, [table], timestamp=time).to_pandas()
    differing = {}
    for feature in claimed:
        mine = frame[feature].reset_index(drop=True)
        rows = _differing_rows(mine.tolist(), joined[feature].tolist())
        if rows:
            differing[feature] = rows
    if not differing:
        return None
    parts = []
    for feature, rows in differing.items():
        first = rows[0]
        parts.append(
            f"{feature} differs in {len(rows):,} of {len(frame):,} rows (row {first}: "
            f"{frame[feature].iloc[first]!r}, the store has {joined[feature].iloc[first]!r})"
        )
    return (
        f"{name}: columns named like features of {view.ref} hold other values than the feature "
        f"store's at those keys and times: {'; '.join(parts)}. Build training data with "
        "nbm.training_set, or rename the columns if they are not those features."
    )


def _differing_rows(mine: Sequence[Any], store: Sequence[Any]) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(mine, store, strict=True)) if not _same(a, b)]


def _same(a: Any, b: Any) -> bool:
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _missing(value: Any) -> bool:
    import pandas as pd  # the frames checked are pandas'

    return pd.api.types.is_scalar(value) and bool(pd.isna(value))
