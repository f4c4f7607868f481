"""Training/serving consistency of a feature view, checked (issue #17 item 4).

``check_feature_skew(store, view, at=T)`` compares, for every entity, the value the online
store serves at T with the value a training set built for time T gets from the point-in-time
join over the offline rows. They differ when the offline rows changed after materialising (a
corrected table, a recomputed view), when a window was skipped or materialised out of order by
hand, or when the online store was written by something else. The TTL is applied to the online
value at T as reads apply it, so an entity whose latest value expired is None on both sides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.errors import FeatureError
from nbmlops.feature_store.definitions import FeatureView, feature_table
from nbmlops.feature_store.online import as_seconds, epoch_ns_sql, quote, to_ns, value_decoder
from nbmlops.feature_store.point_in_time import FeatureTable, point_in_time_join
from nbmlops.store.db import Store
from nbmlops.store.online import decode_key, encode_key, online_store

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

_AT = "__nbmlops_at"


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One feature of one entity whose online value is not its point-in-time value."""

    entity: tuple[Any, ...]
    feature: str
    online: Any
    offline: Any


@dataclasses.dataclass(frozen=True)
class SkewReport:
    """The online values of a view version against its point-in-time values at ``at``."""

    view: str  # name@version
    at: float
    keys: tuple[str, ...]
    entities: int  # entities online or with an offline row eligible at ``at``
    mismatches: tuple[Mismatch, ...]
    only_online: tuple[tuple[Any, ...], ...]  # served, but no offline row eligible at ``at``
    only_offline: tuple[tuple[Any, ...], ...]  # an offline row eligible, none (live) online

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.only_online or self.only_offline)

    def __str__(self) -> str:
        sides = "".join(
            f", {len(found):,} only {side}"
            for side, found in (("online", self.only_online), ("offline", self.only_offline))
            if found
        )
        return (
            f"{self.view}: {self.entities:,} entities, {len(self.mismatches):,} mismatches{sides}"
        )

    def to_frame(self) -> pd.DataFrame:
        """The mismatches, one row each: the key columns, feature, online, offline."""
        import pandas as pd

        return pd.DataFrame(
            [
                {**dict(zip(self.keys, m.entity, strict=True)), **dataclasses.asdict(m)}
                for m in self.mismatches
            ],
            columns=[*self.keys, "entity", "feature", "online", "offline"],
        ).drop(columns="entity")


def check_feature_skew(
    store: Store, view: FeatureView, at: float | dt.datetime | None = None
) -> SkewReport:
    """Compare every entity's online value of ``view`` with its point-in-time value at ``at``
    (default: the end of the view version's furthest materialisation)."""

    handle = online_store(store.home)
    online = handle.view(view.name, view.version) if handle.exists() else None
    if online is None:
        raise FeatureError(
            f"Feature view {view.ref} is not materialised, so there are no online values to "
            f"check; run nbm.materialize({view.name!r}) first.",
            view.name,
        )
    at_s = online.end_ts if at is None else as_seconds(at, "at")
    at_ns = to_ns(at_s)
    oldest = at_ns - to_ns(view.ttl_seconds) if view.ttl_seconds else None
    served: dict[str, list[Any]] = {}
    decoders = [value_decoder(dtype) for _, dtype in online.features]
    for key, event_ns, _, values in handle.all_rows(view.name, view.version):
        if event_ns <= at_ns and (oldest is None or event_ns >= oldest):
            served[key] = [
                v if d is None or v is None else d(v)
                for v, d in zip(json.loads(values), decoders, strict=True)
            ]
    table, _ = feature_table(store, view, view.feature_names, arrow=True)
    eligible = _eligible_keys(table.data, view, at_ns, oldest)
    both = sorted(served.keys() & eligible.keys())
    offline = _point_in_time(table, [eligible[k] for k in both], at_s, view)
    mismatches = [
        Mismatch(tuple(eligible[key]), feature, served[key][i], offline[i][row])
        for row, key in enumerate(both)
        for i, feature in enumerate(view.feature_names)
        if not _same(served[key][i], offline[i][row])
    ]
    return SkewReport(
        view=view.ref,
        at=at_s,
        keys=view.keys,
        entities=len(served.keys() | eligible.keys()),
        mismatches=tuple(mismatches),
        only_online=tuple(tuple(decode_key(k)) for k in sorted(served.keys() - eligible.keys())),
        only_offline=tuple(tuple(eligible[k]) for k in sorted(eligible.keys() - served.keys())),
    )


def _eligible_keys(
    data: pa.Table, view: FeatureView, at_ns: int, oldest: int | None
) -> dict[str, list[Any]]:
    """The entities with an offline row eligible at ``at``: encoded key -> key values."""
    import duckdb  # heavy: only when checking

    event = epoch_ns_sql(data, view.timestamp)
    fresh = f" AND {event} >= {int(oldest)}" if oldest is not None else ""
    keys = ", ".join(quote(k) for k in view.keys)
    not_null = " AND ".join(f"{quote(k)} IS NOT NULL" for k in view.keys)
    with duckdb.connect() as con:
        con.register("offline", data)
        found = con.sql(
            f"SELECT DISTINCT {keys} FROM offline WHERE {event} <= $at{fresh} AND {not_null}",
            params={"at": at_ns},
        ).to_arrow_table()
    columns = [c.to_pylist() for c in found.columns]
    return {encode_key(values): list(values) for values in zip(*columns, strict=True)}


def _point_in_time(
    table: FeatureTable, entities: Sequence[list[Any]], at_s: float, view: FeatureView
) -> list[list[Any]]:
    """The point-in-time values of every feature (a column each) for ``entities`` at ``at``."""
    import pyarrow as pa

    schema = table.data.schema
    columns = {
        key: pa.array([e[i] for e in entities], type=_key_type(schema.field(key).type))
        for i, key in enumerate(view.keys)
    }
    moment = dt.datetime.fromtimestamp(at_s, dt.UTC)
    columns[_AT] = pa.array([moment] * len(entities), pa.timestamp("us", tz="UTC"))
    joined = point_in_time_join(pa.table(columns), [table], timestamp=_AT)
    return [joined.column(f).to_pylist() for f in view.feature_names]


def _key_type(dtype: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    return dtype.value_type if pa.types.is_dictionary(dtype) else dtype


def _same(online: Any, offline: Any) -> bool:
    if isinstance(online, float) and isinstance(offline, float):
        return online == offline or (math.isnan(online) and math.isnan(offline))
    return bool(online == offline)
