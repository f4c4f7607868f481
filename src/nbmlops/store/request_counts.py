"""Counts of the prediction log over a window, for the values alert conditions name
(``requests.count``, ``errors.rate``, the denominator of ``labels.coverage``).

One pass over the window's rows of the model through the ``predictions_name`` index; the
request bodies are not read.
"""

from __future__ import annotations

from typing import NamedTuple

from nbmlops.store.db import Store


class WindowCounts(NamedTuple):
    requests: int  # logged requests of the model, whatever version answered (or none did)
    errors: int  # of those, answered with a 4xx or 5xx
    rows_answered: int  # rows scored by the given version in requests it answered (status < 400)


def window_counts(
    store: Store, name: str, version: int | None, since: float, until: float
) -> WindowCounts:
    """The counts of ``name``'s requests that arrived in [``since``, ``until``)."""
    row = store.query(
        "SELECT COUNT(*), COALESCE(SUM(status >= 400), 0), "
        "COALESCE(SUM(CASE WHEN version = ? AND status < 400 THEN n_rows END), 0) "
        "FROM predictions INDEXED BY predictions_name WHERE name = ? AND at >= ? AND at < ?",
        (version, name, since, until),
    )[0]
    return WindowCounts(int(row[0]), int(row[1]), int(row[2]))
