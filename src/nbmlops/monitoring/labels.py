"""Ground truth that arrives after the prediction, keyed by the request id the server logged.

A label whose request id the log does not (yet) hold is stored all the same and reported: the
server writes its log in batches, so a label may come before its request is flushed, and the
join of :mod:`nbmlops.monitoring.skew` picks it up once it is.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nbmlops.errors import InvalidValueError
from nbmlops.store import Store
from nbmlops.store import labels as labels_sql


@dataclass(frozen=True)
class LabelsLogged:
    """What :func:`nbmlops.log_labels` stored, every label kept: ``matched`` labels joined to
    an answered request's output they can be compared with; ``unknown`` labels whose request
    the log does not hold (yet: they match when it is written), with the distinct
    ``unknown_ids`` in the order given; ``unusable`` labels of logged requests with nothing to
    compare (a failed request, a row beyond its outputs, an output that is not a single value,
    a label older than the row's label, or a request of another model than ``name``)."""

    matched: int
    unknown: int
    unknown_ids: list[str] = field(default_factory=list)
    unusable: int = 0
    missing: int = 0  # rows of a DataFrame with no label yet: not stored


def log_labels(
    store: Store,
    request_ids: Sequence[str],
    labels: Sequence[object],
    rows: Sequence[object] | None = None,
    *,
    name: str | None = None,
) -> LabelsLogged:
    """Append one label per ``(request_ids[i], rows[i])`` (row 0 when ``rows`` is None), all in
    one transaction; ``name``: only requests to that model count as matched."""
    if len(request_ids) != len(labels):
        raise InvalidValueError(
            "labels", f"{len(request_ids)} request ids but {len(labels)} labels; give one each"
        )
    if rows is not None and len(rows) != len(labels):
        raise InvalidValueError("rows", f"{len(rows)} rows but {len(labels)} labels; give one each")
    at = time.time()
    records = [
        (
            rid,
            0 if rows is None else _row(rows[i], rid),
            _label(labels[i], rid),
            at,
        )
        for i, rid in enumerate(map(_request_id, request_ids))
    ]
    matched, unknown_ids, unknown = labels_sql.insert_labels(store, records, name)
    return LabelsLogged(matched, unknown, unknown_ids, len(records) - matched - unknown)


def _request_id(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidValueError(
            f"Request id {value!r}", "a request id is the non-empty text the server returned"
        )
    return value


def _row(value: object, rid: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise InvalidValueError(
            f"Row {value!r} of request {rid!r}", "a row is the index of the row in its request"
        )
    return int(value)


def _label(value: object, rid: str) -> Any:
    kind = type(value)  # the common cases first: the ABC checks below cost 3 us a label
    if (kind is float and math.isfinite(value)) or kind is int or kind is str:  # type: ignore[arg-type]
        return value
    item = getattr(value, "item", None)  # a numpy scalar: its Python value
    plain = item() if callable(item) and not isinstance(value, str) else value
    if isinstance(plain, bool):
        return int(plain)
    if isinstance(plain, numbers.Real) and math.isfinite(float(plain)):
        return plain
    if isinstance(plain, str):
        return plain
    raise InvalidValueError(
        f"Label {value!r} of request {rid!r}", "a label is a finite number or a text"
    )
