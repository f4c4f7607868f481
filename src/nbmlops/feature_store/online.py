"""Materialisation into the online store and online reads (issue #17 item 3).

``materialize`` is incremental: it reads the offline rows whose event time is in
(start, end], start being where the last materialisation of that view version ended, keeps the
latest row per entity key (latest event time, ties by the latest created time: the order the
point-in-time join uses, so the online value is the training value at ``end``), and upserts
them under the online store's event-time guard (:mod:`nbmlops.store.online`). A new view
version is materialised into rows of its own; reads use the highest version materialised.

``online_features`` reads only the online file. The TTL is enforced at read time, as the
point-in-time join enforces it at training time: a value whose event time is before
``now - ttl`` is returned as None and flagged ``expired`` (Feast's SQLite store returns it,
feast#6821); an entity never materialised is None and ``missing``.

Times: event and created times are compared as integer nanoseconds since the epoch (naive
timestamps are UTC, dates are midnight UTC); window ends are epoch seconds, taken to the
microsecond, so consecutive windows neither overlap nor leave a gap.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.errors import EntityKeyError, FeatureError
from nbmlops.feature_store.definitions import FeatureView, offline_data, parse_feature_ref
from nbmlops.store import features as sql
from nbmlops.store.db import Store
from nbmlops.store.online import OnlineStore, OnlineView, encode_key, online_store

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

PRESENT, MISSING, EXPIRED = "present", "missing", "expired"
NO_CREATED = -(2**63)  # the created time of a row that has none: older than any


def to_ns(seconds: float) -> int:
    """Epoch seconds as integer nanoseconds, to the microsecond (window ends, ``now``)."""
    return round(seconds * 1_000_000) * 1000


def as_seconds(value: float | dt.datetime, what: str) -> float:
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FeatureError(
            f"{what}={value!r}: give epoch seconds (time.time()) or a datetime.", value=value
        )
    return float(value)


def quote(name: str) -> str:
    """``name`` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def epoch_ns_sql(data: pa.Table, column: str) -> str:
    """DuckDB expression for ``column`` of ``data`` in epoch nanoseconds (UTC)."""
    import pyarrow as pa

    if pa.types.is_date(data.schema.field(column).type):
        return f"epoch_ns(CAST({quote(column)} AS TIMESTAMP))"
    return f"epoch_ns({quote(column)})"


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):  # decoded by the view's binary dtype
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, decimal.Decimal):  # as text: a float would lose digits
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return str(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=_json_default)


def encode_values(values: Sequence[Any]) -> str:
    return _ENCODER.encode(list(values))


def value_decoder(dtype: str) -> Any:
    """How a value of an arrow ``dtype`` comes back from JSON (None: as JSON gives it)."""
    if dtype.startswith("timestamp"):
        return dt.datetime.fromisoformat
    if dtype.startswith("date"):
        return dt.date.fromisoformat
    if dtype in ("binary", "large_binary") or dtype.startswith("fixed_size_binary"):
        return base64.b64decode
    if dtype.startswith("decimal"):
        return decimal.Decimal
    return None


@dataclasses.dataclass(frozen=True)
class MaterializeReport:
    """What one materialisation of a view version read and wrote."""

    view: str  # name@version
    start: float | None  # event times in (start, end]; None: from the first row
    end: float
    rows_read: int
    rows_written: int
    seconds: float

    def __str__(self) -> str:
        since = "the start" if self.start is None else _when(self.start)
        return (
            f"{self.view}: {self.rows_read:,} rows read ({since} to {_when(self.end)}), "
            f"{self.rows_written:,} online rows written in {self.seconds:.2f} s"
        )


def _when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def materialize(
    store: Store,
    view: FeatureView,
    *,
    end: float | dt.datetime | None = None,
    start: float | dt.datetime | None = None,
) -> MaterializeReport:
    """Copy the latest offline row per entity with event time in (start, end] into the online
    store: ``start`` defaults to the end of the last materialisation of this view version
    (from the first row when none), ``end`` to now.

    The online write commits before the materialisation is recorded in the store: a run cut
    off in between is redone by the next one, and the event-time guard makes redoing it
    write nothing new.
    """
    started_at = time.time()
    clock = time.perf_counter()
    end_s = started_at if end is None else as_seconds(end, "end")
    if start is None:
        last = sql.last_materialization(store, view.name, view.version)
        start_s = None if last is None else float(last["end_ts"])
    else:
        start_s = as_seconds(start, "start")
    if start_s is not None and start_s > end_s:
        raise FeatureError(
            f"Feature view {view.ref}: start ({_when(start_s)}) is after end ({_when(end_s)}); "
            "materialise up to a later end.",
            view.name,
            (start_s, end_s),
        )
    needed = [*view.keys, view.timestamp, *([view.created] if view.created else [])]
    data, _ = offline_data(
        store, view, columns=[*needed, *view.feature_names], window=(start_s, end_s)
    )
    rows_read, rows = _latest_rows(data, view, start_s, end_s)
    online = OnlineView(view.name, view.version, view.keys, view.features, view.ttl_seconds, end_s)
    written = online_store(store.home).upsert(online, rows, time.time())
    seconds = time.perf_counter() - clock
    sql.add_materialization(
        store,
        {
            "name": view.name,
            "version": view.version,
            "start_ts": start_s,
            "end_ts": end_s,
            "rows_read": rows_read,
            "rows_written": written,
            "started_at": started_at,
            "finished_at": time.time(),
        },
    )
    return MaterializeReport(view.ref, start_s, end_s, rows_read, written, seconds)


def _latest_rows(
    data: pa.Table, view: FeatureView, start: float | None, end: float
) -> tuple[int, list[tuple[str, int, int, str]]]:
    """How many offline rows are in the window, and the latest per entity key among them as
    online rows (key, event_ns, created_ns, JSON values).

    One hash aggregate over the keys and times only (a window function sorting every row cost
    3x more at 1M rows): per key the maximum of (event time, created time, row number), the
    order the point-in-time join breaks ties in; the values are then taken from the Arrow
    rows by number, so they come back exactly as stored.
    """
    import duckdb  # heavy: only when materialising
    import numpy as np
    import pyarrow as pa

    names = [f"k{i}" for i in range(len(view.keys))]
    narrow = pa.Table.from_arrays(
        [
            *(data.column(k) for k in view.keys),
            data.column(view.timestamp),
            data.column(view.created) if view.created else pa.nulls(data.num_rows, pa.int64()),
            pa.array(np.arange(data.num_rows)),
        ],
        names=[*names, "t", "c", "r"],
    )
    event = epoch_ns_sql(narrow, "t")
    created = f"coalesce({epoch_ns_sql(narrow, 'c')}, {NO_CREATED})" if view.created else "c"
    window = f"{event} <= $end" + (f" AND {event} > $start" if start is not None else "")
    params: dict[str, Any] = {"end": to_ns(end)}
    if start is not None:
        params["start"] = to_ns(start)
    keys = ", ".join(names)
    with duckdb.connect() as con:
        con.register("offline", narrow)
        # Rows with a null key are counted as read, in their own groups, and written nowhere.
        groups = con.sql(
            f"SELECT {keys}, count(*) AS n, "
            f"max({{'t': {event}, 'c': coalesce({created}, {NO_CREATED}), 'r': r}}) AS o "
            f"FROM offline WHERE {window} GROUP BY ALL",
            params=params,
        ).to_arrow_table()
    rows_read = int(pa.compute.sum(groups.column("n")).as_py() or 0)
    valid = None
    for name in names:
        present = pa.compute.is_valid(groups.column(name))
        valid = present if valid is None else pa.compute.and_(valid, present)
    if valid is not None:
        groups = groups.filter(valid)
    won = groups.column("o").combine_chunks()
    take = won.field("r")
    key_columns = [groups.column(n).to_pylist() for n in names]
    events, createds = won.field("t").to_pylist(), won.field("c").to_pylist()
    value_columns = [c.to_pylist() for c in data.select(view.feature_names).take(take).columns]
    rows = [
        (
            encode_key(c[i] for c in key_columns),
            events[i],
            createds[i],
            encode_values([c[i] for c in value_columns]),
        )
        for i in range(groups.num_rows)
    ]
    return rows_read, rows


@dataclasses.dataclass(frozen=True)
class OnlineFeatures:
    """Online feature values, one row per entity row asked, in that order."""

    keys: tuple[str, ...]  # the key columns, as the entity rows gave them
    names: tuple[str, ...]  # the feature columns (view__feature where two views share a name)
    entity_rows: tuple[Mapping[str, Any], ...]
    values: tuple[tuple[Any, ...], ...]
    statuses: tuple[tuple[str, ...], ...]  # "present", "missing" or "expired"

    @property
    def status(self) -> list[dict[str, str]]:
        """Per entity row, each feature's status: present, missing (never materialised) or
        expired (older than the view's TTL at the time read)."""
        return [dict(zip(self.names, row, strict=True)) for row in self.statuses]

    def to_dict(self) -> dict[str, list[Any]]:
        """Columns, Feast-style: each key column, then each feature."""
        out: dict[str, list[Any]] = {k: [row.get(k) for row in self.entity_rows] for k in self.keys}
        for i, name in enumerate(self.names):
            out[name] = [row[i] for row in self.values]
        return out

    def to_pandas(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.to_dict())

    def __len__(self) -> int:
        return len(self.values)

    def __repr__(self) -> str:
        # Entity rows with some value missing or expired (a row may hold both, from two views).
        counts = ", ".join(
            f"{n} {status}"
            for status in (MISSING, EXPIRED)
            if (n := sum(status in row for row in self.statuses))
        )
        return (
            f"OnlineFeatures({len(self.values)} rows x {len(self.names)} features: "
            f"{', '.join(self.names)}{'; ' + counts if counts else ''})"
        )


def online_features(
    store: Store,
    refs: Sequence[str],
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    now: float | dt.datetime | None = None,
) -> OnlineFeatures:
    """The latest materialised values of ``refs`` ("view:feature", "view@2:feature") for
    ``entity_rows`` (each a mapping of the views' key columns to values), TTL enforced at
    ``now`` (default: the time of the call). Reads only the online file."""
    handle = online_store(store.home)
    if not handle.exists():
        raise FeatureError(
            f"No feature view is materialised in {store.home} (no {handle.path.name}); "
            "materialise one first: nbm.materialize('view').",
            value=list(refs) if not isinstance(refs, str) else refs,
        )
    plan = _plan(handle, refs)
    rows = tuple(_check_entity_rows(entity_rows, plan.keys))
    for view, _, _, kinds in plan.views:
        _check_key_kinds(rows, view, kinds)
    now_ns = to_ns(time.time() if now is None else as_seconds(now, "now"))
    values: list[list[Any]] = [[] for _ in rows]
    statuses: list[list[str]] = [[] for _ in rows]
    for view, picks, decoders, _ in plan.views:
        encoded = [encode_key(row[k] for k in view.keys) for row in rows]
        held = handle.rows(view, list(dict.fromkeys(encoded)))
        oldest = now_ns - to_ns(view.ttl_seconds) if view.ttl_seconds else None
        for i, key in enumerate(encoded):
            found = held.get(key)
            if found is None or (oldest is not None and found[0] < oldest):
                values[i].extend([None] * len(picks))
                statuses[i].extend([MISSING if found is None else EXPIRED] * len(picks))
                continue
            stored = json.loads(found[1])
            for pick, decode in zip(picks, decoders, strict=True):
                value = stored[pick]
                values[i].append(value if decode is None or value is None else decode(value))
            statuses[i].extend([PRESENT] * len(picks))
    return OnlineFeatures(
        keys=plan.keys,
        names=plan.names,
        entity_rows=rows,
        values=tuple(tuple(v) for v in values),
        statuses=tuple(tuple(s) for s in statuses),
    )


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a read of some feature references needs, worked out once per metadata state."""

    # per view: the positions of the features asked, their decoders, each key column's kind
    views: tuple[tuple[OnlineView, tuple[int, ...], tuple[Any, ...], tuple[str | None, ...]], ...]
    names: tuple[str, ...]
    keys: tuple[str, ...]


def _plan(handle: OnlineStore, refs: Sequence[str]) -> _Plan:
    """The read plan of ``refs``, cached with the online store's metadata (serving asks for
    the same references on every request)."""
    if not isinstance(refs, list | tuple) or not refs or not all(isinstance(r, str) for r in refs):
        raise FeatureError(
            f"features={refs!r}: give a list of 'view:feature' references "
            "(online_features(features, entity_rows)).",
            value=refs,
        )
    cache = handle.cache()
    key = ("plan", tuple(refs))
    plan: _Plan | None = cache.get(key)
    if plan is None:
        views = _views(handle, refs)
        steps = []
        for view, features in views:
            names = view.feature_names
            picks = tuple(names.index(f) for f in features)
            decoders = tuple(value_decoder(view.features[i][1]) for i in picks)
            sample = handle.sample_key(view)
            kinds = tuple(_kind(v) for v in sample) if sample else (None,) * len(view.keys)
            steps.append((view, picks, decoders, kinds))
        keys = tuple(dict.fromkeys(k for view, _ in views for k in view.keys))
        plan = cache[key] = _Plan(tuple(steps), _output_names(views), keys)
    return plan


def _views(handle: OnlineStore, refs: Sequence[str]) -> list[tuple[OnlineView, list[str]]]:
    """The materialised views ``refs`` name and the features asked of each, in the order
    first named; views never materialised and unknown features refused, naming them."""
    wanted: dict[tuple[str, int | None], list[str]] = {}
    for ref in refs:
        name, version, feature = parse_feature_ref(ref)
        wanted.setdefault((name, version), []).append(feature)
    out = []
    for (name, version), features in wanted.items():
        view = handle.view(name, version)
        if view is None:
            what = name if version is None else f"{name}@{version}"
            known = sorted({f"{v.name}@{v.version}" for v in handle.views()})
            raise FeatureError(
                f"Feature view {what} is not materialised (materialised: "
                f"{', '.join(known) or 'none'}); run nbm.materialize({name!r}) first.",
                name,
            )
        unknown = [f for f in features if f not in view.feature_names]
        if unknown:
            raise FeatureError(
                f"Feature view {view.name}@{view.version} has no feature(s) {unknown} online; "
                f"it has {view.feature_names}.",
                name,
                unknown,
            )
        out.append((view, features))
    return out


def _output_names(views: Sequence[tuple[OnlineView, Sequence[str]]]) -> tuple[str, ...]:
    """Each feature's column: its name, or view__feature where two views share the name."""
    seen: dict[str, int] = {}
    for _, features in views:
        for feature in features:
            seen[feature] = seen.get(feature, 0) + 1
    return tuple(
        f"{view.name}__{f}" if seen[f] > 1 else f for view, features in views for f in features
    )


def _check_entity_rows(
    entity_rows: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> list[Mapping[str, Any]]:
    if isinstance(entity_rows, Mapping | str):
        raise EntityKeyError(
            f"entity_rows={entity_rows!r}: give a list of mappings, e.g. [{{{keys[0]!r}: ...}}].",
            value=entity_rows,
        )
    rows = list(entity_rows)
    for row in rows:
        if not isinstance(row, Mapping):
            raise EntityKeyError(
                f"Entity row {row!r} is not a mapping of key columns {list(keys)} to values.",
                value=row,
            )
        unknown = [k for k in row if k not in keys]
        missing = [k for k in keys if k not in row]
        if unknown or missing:
            what = "; ".join(
                part
                for part in (
                    f"unknown key column(s) {unknown}" if unknown else "",
                    f"missing key column(s) {missing}" if missing else "",
                )
                if part
            )
            raise EntityKeyError(
                f"Entity row {dict(row)!r}: {what}; the features asked are keyed by {list(keys)}.",
                value=unknown or missing,
            )
    return rows


def _kind(value: Any) -> str | None:
    """ "text" or "number" for a key value (None: another kind, not checked)."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    if hasattr(value, "__index__") or hasattr(value, "item"):  # numpy scalars
        return "number"
    return None


def _check_key_kinds(
    rows: Sequence[Mapping[str, Any]], view: OnlineView, kinds: Sequence[str | None]
) -> None:
    """Refuse a key value of another kind than the view's keys: 1001 against keys held as
    text "1001" would find nothing and read as a missing entity."""
    for row in rows:
        for key, kind in zip(view.keys, kinds, strict=True):
            given = _kind(row[key])
            if kind is not None and given is not None and given != kind:
                raise EntityKeyError(
                    f"Entity row {dict(row)!r}: {key}={row[key]!r} is {given}, but "
                    f"{view.name}@{view.version} holds its {key} keys as {kind}; send "
                    f"{key} as {kind}.",
                    view.name,
                    row[key],
                )
