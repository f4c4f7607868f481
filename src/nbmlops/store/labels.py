"""Late labels: append them, tell which request ids the prediction log knows, and read the
labelled rows of each version (the input of production skew).

Each labelled row of an answered request is kept in ``label_matches`` with its newest label,
written by whichever of the label and the prediction arrives second (here for labels,
:func:`nbmlops.store.predictions.insert_predictions` for predictions). Skew then reads one range
of the ``label_matches_version`` index, in SQL aggregates for large counts: joining a million
labels to the log on text request ids took 8 s, the aggregate over the matches 0.3 s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from nbmlops.store._where import where
from nbmlops.store.db import Store

# The labelled rows of answered requests into label_matches, for the labels (aliased l) and
# predictions (p) that {where} selects: a scalar output at the label's row (a failed request, a
# row beyond the outputs or an output that is a list has nothing to compare), of the request
# id's first answer (a client retrying with its X-Request-ID is logged twice, labelled once). A
# newer label of a row replaces an older one, never the reverse (labels may be logged out of
# order by several processes). {joined} is LABELS_FIRST for a batch of labels,
# PREDICTIONS_FIRST for a batch of predictions: the batch drives the join, the other side is
# found by its index. json_extract rather than ->> (SQLite 3.38): some system SQLites are older.
LABELS_FIRST = (
    "labels AS l CROSS JOIN predictions AS p INDEXED BY predictions_request "
    "ON p.request_id = l.request_id"
)
PREDICTIONS_FIRST = (
    "predictions AS p CROSS JOIN labels AS l INDEXED BY labels_request "
    "ON l.request_id = p.request_id"
)
MATCH_LABELS = """
INSERT INTO label_matches (prediction_id, row, label_id, name, version, at, served, label,
                           label_at)
SELECT p.prediction_id, l.row, l.label_id, p.name, p.version, p.at,
       json_extract(p.outputs, '$[' || l.row || ']'), l.label, l.at
FROM {joined}
WHERE p.status < 400 AND p.version IS NOT NULL AND {where}
    -- outputs the server did not write (another tool's rows) must not fail the labels' write
    AND json_valid(p.outputs)
    AND json_type(p.outputs, '$[' || l.row || ']') IN ('integer', 'real', 'text', 'true', 'false')
    AND NOT EXISTS (SELECT 1 FROM predictions AS q INDEXED BY predictions_request
                    WHERE q.request_id = p.request_id AND q.prediction_id < p.prediction_id
                        AND q.status < 400 AND q.version IS NOT NULL)
ORDER BY l.at, l.label_id
ON CONFLICT (prediction_id, row) DO UPDATE SET
    label_id = excluded.label_id, label = excluded.label, label_at = excluded.label_at
    WHERE (excluded.label_at, excluded.label_id) > (label_matches.label_at, label_matches.label_id)
"""
_MATCH_BATCH = MATCH_LABELS.format(joined=LABELS_FIRST, where="l.label_id > ?")
_MATCH_BATCH_OF_MODEL = MATCH_LABELS.format(
    joined=LABELS_FIRST, where="l.label_id > ? AND p.name = ?"
)


class LabelsInserted(NamedTuple):
    matched: int  # changes to label_matches: labels joined to an output to compare with
    unknown_ids: list[str]  # the request ids the log does not hold, in the order given, once
    unknown: int  # labels of those request ids


def insert_labels(
    store: Store, rows: Sequence[tuple[str, int, Any, float]], name: str | None = None
) -> LabelsInserted:
    """Append ``(request_id, row, label, at)`` rows and match them to the logged requests, in
    one transaction; which request ids the log holds (of model ``name`` if given)."""
    with store.atomic() as conn:
        (last,) = conn.execute("SELECT COALESCE(MAX(label_id), 0) FROM labels").fetchone()
        conn.executemany(
            "INSERT INTO labels (request_id, row, label, at) VALUES (?, ?, ?, ?)", rows
        )
        if name is None:
            matched = conn.execute(_MATCH_BATCH, (last,)).rowcount
        else:  # counted for this model; the other models' requests matched all the same
            matched = conn.execute(_MATCH_BATCH_OF_MODEL, (last, name)).rowcount
            conn.execute(_MATCH_BATCH, (last,))
        unknown = conn.execute(
            "SELECT l.request_id FROM labels AS l WHERE l.label_id > ? AND NOT EXISTS ("
            "SELECT 1 FROM predictions AS p INDEXED BY predictions_request "
            f"WHERE p.request_id = l.request_id{' AND p.name = ?' if name else ''}) "
            "ORDER BY l.label_id",
            (last, name) if name else (last,),
        ).fetchall()
    return LabelsInserted(matched, list(dict.fromkeys(r[0] for r in unknown)), len(unknown))


# The sums production skew may ask for, with d = label - served and y = label: enough for the
# mean and the covariance of every metric's per-row statistics. Each metric asks for its own
# few: every aggregate costs about 0.1 s per million rows.
SUMS = {
    "n": "COUNT(*)",
    "abs_d": "TOTAL(ABS(d))",
    "d2": "TOTAL(d * d)",
    "d4": "TOTAL(d * d * d * d)",
    "y": "TOTAL(y)",
    "y2": "TOTAL(y * y)",
    "y3": "TOTAL(y * y * y)",
    "y4": "TOTAL(y * y * y * y)",
    "d2_y": "TOTAL(d * d * y)",
    "d2_y2": "TOTAL(d * d * y * y)",
    "eq": "TOTAL(served = label)",  # exact matches
    "tp": "TOTAL(label = 1 AND served = 1)",  # the positive class is 1
    "fp": "TOTAL(label <> 1 AND served = 1)",
    "fn": "TOTAL(label = 1 AND served <> 1)",
}


class LabelledSums(NamedTuple):
    version: int
    window: int  # the window's index: it starts at ``window * seconds`` (0 without windows)
    sums: dict[str, float]  # the names asked for (``n`` always)


def labelled_versions(
    store: Store, name: str, *, since: float | None = None, until: float | None = None
) -> list[int]:
    """The versions of ``name`` with labelled rows of requests that arrived in the range."""
    conditions, params = where(("name = ?", name), ("at >= ?", since), ("at < ?", until))
    sql = f"SELECT DISTINCT version FROM label_matches WHERE {conditions} ORDER BY version"
    return [int(r[0]) for r in store.query(sql, params)]


def labelled_sums(
    store: Store,
    name: str,
    version: int,
    sums: Sequence[str],
    *,
    since: float | None = None,
    until: float | None = None,
    window: float | None = None,
) -> list[LabelledSums]:
    """The :data:`SUMS` named in ``sums`` over the labelled rows of ``name``/``version`` (per
    window of ``window`` seconds when given; windows start at multiples of ``window`` since the
    epoch, so "1d" windows are UTC days), from the covering index alone."""
    conditions, params = where(
        ("name = ?", name), ("version = ?", version), ("at >= ?", since), ("at < ?", until)
    )
    names = ["n", *(s for s in sums if s != "n")]
    bucket = "0"
    if window is not None:
        bucket = "CAST(at / ? AS INTEGER)"
        params = [window, *params]
    # d and y are computed once per row in the inner SELECT.
    sql = f"""
        SELECT bucket, {", ".join(SUMS[s] for s in names)}
        FROM (SELECT {bucket} AS bucket, served, label,
                     CAST(label AS REAL) - CAST(served AS REAL) AS d, CAST(label AS REAL) AS y
              FROM label_matches INDEXED BY label_matches_version WHERE {conditions})
        GROUP BY bucket ORDER BY bucket"""
    return [
        LabelledSums(version, int(r[0]), dict(zip(names, r[1:], strict=True)))
        for r in store.query(sql, params)
    ]
