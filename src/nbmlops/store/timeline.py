"""What the monitoring timeline (``%monitor``) reads besides skew and events: the rows each
version answered per window (the denominator of label coverage, counted as the alert operand
``labels.coverage`` counts it, :mod:`nbmlops.store.request_counts`) and the drift checks of
served traffic (``drift_reports`` rows with a window).

Windows start at multiples of their length since the epoch, as production skew's do
(:func:`nbmlops.store.labels.labelled_sums`), so a window's answered rows and its labelled rows
are counted over the same requests.
"""

from __future__ import annotations

from typing import NamedTuple

from nbmlops.store._where import where
from nbmlops.store.db import Store


class AnsweredRows(NamedTuple):
    version: int
    window: int  # the window's index: it starts at ``window * seconds``
    rows: int  # rows scored in requests the version answered (status < 400)


class DriftPoint(NamedTuple):
    """A drift check of the inputs ``version`` served in [``window_start``, ``window_end``)."""

    report_id: str
    version: int
    window_start: float
    window_end: float
    drift_share: float
    dataset_drift: bool


def served_span(store: Store, name: str) -> tuple[float, float] | None:
    """The arrival times of ``name``'s first and last logged requests; None before any."""
    first, last = store.query(
        "SELECT MIN(at), MAX(at) FROM predictions INDEXED BY predictions_name WHERE name = ?",
        (name,),
    )[0]
    return None if first is None else (float(first), float(last))


def answered_rows(
    store: Store, name: str, seconds: float, since: float | None, until: float | None
) -> list[AnsweredRows]:
    """Per version and window of ``seconds``, the rows it answered of requests that arrived in
    [``since``, ``until``), by version then window."""
    conditions, params = where(
        ("name = ?", name), "version IS NOT NULL", "status < 400", ("at >= ?", since),
        ("at < ?", until),
    )  # fmt: skip
    rows = store.query(
        "SELECT version, CAST(at / ? AS INTEGER) AS bucket, TOTAL(n_rows) "
        f"FROM predictions INDEXED BY predictions_version WHERE {conditions} "
        "GROUP BY version, bucket ORDER BY version, bucket",
        [seconds, *params],
    )
    return [AnsweredRows(int(v), int(b), int(n)) for v, b, n in rows]


def drift_points(
    store: Store, name: str, since: float | None, until: float | None
) -> list[DriftPoint]:
    """The drift checks of ``name``'s served traffic whose window ends in [``since``,
    ``until``], by window end."""
    conditions, params = where(
        ("model_name = ?", name), "window_end IS NOT NULL", "model_version IS NOT NULL",
        ("window_end >= ?", since), ("window_end <= ?", until),
    )  # fmt: skip
    rows = store.query(
        "SELECT report_id, model_version, window_start, window_end, drift_share, dataset_drift "
        f"FROM drift_reports WHERE {conditions} ORDER BY window_end, report_id",
        params,
    )
    return [
        DriftPoint(r, int(v), float(s), float(e), float(d), bool(x)) for r, v, s, e, d, x in rows
    ]
