"""The point-in-time join: for each entity row, the feature values it could have seen at its time.

Pure: Arrow data in, Arrow data out, no store. The semantics are Feast's, made exact (issue #17
item 2). A feature row is *eligible* for an entity row at time T when its keys equal the entity
row's keys (compared as tuples, never concatenated; a null key matches nothing), its event time
is <= T and, when the view has a TTL, >= T - ttl (both inclusive; ttl 0 means none). With
``created_filter=True`` a row created after T (or with no created time) is not eligible either.
Among eligible rows the latest event time wins, ties broken by the latest created time (no
created time loses), and a full tie by the row that comes last in the feature data, so the
answer is deterministic and an online store can reproduce it. Rows with the same (keys, event
time) are all kept until then: never dropped as duplicates (feast#6787, #5590). An entity row
with no eligible row gets nulls (a left join: Feast's offline store dropped them); every entity
row comes back, in the input order, its columns unchanged.

How: numpy and DuckDB, not a Python loop. Times become int64 counts of the finest unit among
the columns used (naive times are UTC, dates are midnight UTC), so second, millisecond,
microsecond and nanosecond columns, tz-aware or not, compare exactly. Without
``created_filter`` (the usual join) the winner is found by one sort of the feature rows by
(keys, event time) as single int64 numbers and one binary search per entity row
(:func:`_latest_winners`): 2.7x faster than DuckDB's ASOF join at 100k x 1M rows and 1.5-1.8x
at 1M x 10M (benchmarks/README.md). With ``created_filter`` a row is eligible from
``max(event time, created time)`` on: in DuckDB, a running maximum of the event time in that
order (a window) and an ASOF join at T give the winning event time, then a second ASOF join
over the rows with those keys and that event time the latest created by T. Both return only the
winning row numbers; the feature columns are then taken from the Arrow data itself, so their
dtypes come back exactly as given.
"""

from __future__ import annotations

import contextlib
import decimal
import math
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops.errors import FeatureError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

# Units per second of each Arrow time unit; dates count as seconds (midnight UTC).
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
_FIX_VIEW = "Add the column to its data or fix the view's definition."


@dataclass(frozen=True)
class FeatureTable:
    """One feature view's offline rows and what a join takes from them.

    ``data`` is an Arrow table (pandas and polars frames are converted) or the path(s) of
    Parquet files, of which only the columns needed are read. ``keys`` name the entity key
    columns, which the entity frame has under the same names.
    """

    view: str
    data: Any
    keys: tuple[str, ...]
    timestamp: str
    features: tuple[str, ...]
    created: str | None = None
    ttl_seconds: float = 0.0

    def __post_init__(self) -> None:
        # Lists are accepted for keys and features; kept as tuples so the table stays hashable.
        object.__setattr__(self, "keys", tuple(self.keys))
        object.__setattr__(self, "features", tuple(self.features))
        ttl = self.ttl_seconds
        if not (isinstance(ttl, int | float) and math.isfinite(ttl) and ttl >= 0):
            raise FeatureError(
                f"Feature view {self.view!r}: ttl_seconds={ttl!r} is not a finite number of "
                "seconds >= 0; give 0 for no TTL.",
                self.view,
                ttl,
            )
        if len(set(self.features)) != len(self.features):
            raise FeatureError(
                f"Feature view {self.view!r}: features {list(self.features)} name a column "
                "twice; ask for each feature once.",
                self.view,
                list(self.features),
            )


def point_in_time_join(
    entity: Any,
    tables: Sequence[FeatureTable],
    *,
    timestamp: str = "event_timestamp",
    created_filter: bool = False,
    full_names: bool = False,
) -> pa.Table:
    """The entity rows with, for each table, the features of the row eligible at their time.

    ``entity`` is an Arrow table, a pandas or a polars DataFrame (a pandas index is not kept)
    with the ``timestamp`` column and every table's key columns. The result has the entity's
    columns, then each feature as ``feature`` (``view__feature`` with ``full_names=True``).
    ``created_filter`` has no effect on a table without a ``created`` column: none of its rows
    is known to have been created after T.
    """
    import pyarrow as pa  # heavy imports stay out of `import nbmlops`

    frame = _as_arrow(entity, "The entity frame")
    names = _output_names(frame, tables, full_names)
    _require(
        frame.schema, [timestamp], "The entity frame", None, "Name its event time with timestamp=."
    )
    feature_data = [_feature_columns(table) for table in tables]
    for table, data in zip(tables, feature_data, strict=True):
        _require(
            frame.schema,
            table.keys,
            "The entity frame",
            table.view,
            f"Feature view {table.view!r} is keyed by {list(table.keys)}: add those columns.",
        )
        _check_key_types(frame, data, table)
    unit = _finest_unit(
        [(frame, timestamp, "The entity frame", None)]
        + [
            (data, column, f"Feature view {table.view!r}", table.view)
            for table, data in zip(tables, feature_data, strict=True)
            for column in (table.timestamp, table.created)
            if column is not None
        ]
    )
    entity_time = _as_ints(frame, timestamp, unit, "The entity frame", None)
    columns = list(frame.columns)
    for table, data in zip(tables, feature_data, strict=True):
        if created_filter and table.created:
            with _connect() as con:
                winners = _created_winners(
                    con, frame, entity_time, table, data, unit, table.created
                )
        else:
            winners = _latest_winners(frame, entity_time, table, data, unit)
        picked = data.select(list(table.features)).take(winners)
        columns.extend(picked.columns)
    return pa.Table.from_arrays(columns, names=frame.column_names + names).replace_schema_metadata(
        frame.schema.metadata
    )


# -- inputs -------------------------------------------------------------------------------------


def _as_arrow(data: Any, what: str) -> pa.Table:
    """An Arrow table from a pyarrow table, a pandas or polars frame (anything that exports the
    Arrow C stream)."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise FeatureError(
        f"{what} is a {type(data).__name__}, not a table; give a pyarrow Table or a pandas or "
        "polars DataFrame.",
        None,
        type(data).__name__,
    )


def _feature_columns(table: FeatureTable) -> pa.Table:
    """The columns of ``table.data`` the join needs, checked; Parquet paths are read here, the
    one place a later source kind (a file list in DuckDB) would change."""
    needed = list(
        dict.fromkeys([*table.keys, table.timestamp, *([table.created] if table.created else [])])
    )
    needed += [f for f in table.features if f not in needed]
    what = f"Feature view {table.view!r}"
    if isinstance(table.data, str | os.PathLike) or (
        isinstance(table.data, Sequence)
        and table.data
        and all(isinstance(p, str | os.PathLike) for p in table.data)
    ):
        import pyarrow.dataset as ds

        paths = [table.data] if isinstance(table.data, str | os.PathLike) else list(table.data)
        source = ds.dataset([str(Path(p)) for p in paths], format="parquet")
        _require(source.schema, needed, what, table.view, _FIX_VIEW)
        return source.to_table(columns=needed)
    data = _as_arrow(table.data, what)
    _require(data.schema, needed, what, table.view, _FIX_VIEW)
    return data.select(needed)


def _require(
    schema: pa.Schema, columns: Sequence[str], what: str, view: str | None, hint: str
) -> None:
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise FeatureError(
            f"{what} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{schema.names}. {hint}",
            view,
            missing[0],
        )


def _output_names(frame: pa.Table, tables: Sequence[FeatureTable], full_names: bool) -> list[str]:
    """Each feature's column name; a clash with an entity column or between views is refused."""
    owner: dict[str, str | None] = dict.fromkeys(frame.column_names)
    names = []
    for table in tables:
        for feature in table.features:
            name = f"{table.view}__{feature}" if full_names else feature
            if name in owner:
                other = owner[name]
                where = "an entity column" if other is None else f"feature view {other!r}"
                fix = (
                    "rename the entity column"
                    if other is None and full_names
                    else "ask for the view once"
                    if other == table.view
                    else "pass full_names=True to name the columns view__feature"
                )
                raise FeatureError(
                    f"Feature {feature!r} of feature view {table.view!r} would be column "
                    f"{name!r}, which {where} already has; {fix}.",
                    table.view,
                    name,
                )
            owner[name] = table.view
            names.append(name)
    return names


_KEY_KINDS = (
    ("integer", "is_integer"),
    ("string", "is_string"),
    ("string", "is_large_string"),
    ("string", "is_string_view"),
    ("binary", "is_binary"),
    ("binary", "is_large_binary"),
    ("binary", "is_binary_view"),
    ("float", "is_floating"),
    ("decimal", "is_decimal"),
)


def _key_kind(dtype: pa.DataType) -> str:
    """What a key column holds, for the question "can these be compared": int32 against int64
    keys match, an integer key against a string key never would (every row would get nulls)."""
    import pyarrow as pa

    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    for kind, test in _KEY_KINDS:
        if getattr(pa.types, test)(dtype):
            return kind
    return str(dtype)


def _check_key_types(frame: pa.Table, data: pa.Table, table: FeatureTable) -> None:
    for key in table.keys:
        mine, theirs = frame.schema.field(key).type, data.schema.field(key).type
        if _key_kind(mine) != _key_kind(theirs):
            raise FeatureError(
                f"Key {key!r} is {mine} in the entity frame but {theirs} in feature view "
                f"{table.view!r}; keys only match values of the same kind: cast the entity "
                "column to the view's type.",
                table.view,
                str(mine),
            )


def _time_unit(data: pa.Table, column: str, what: str, view: str | None) -> str:
    import pyarrow as pa

    dtype = data.schema.field(column).type
    if pa.types.is_timestamp(dtype):
        return str(dtype.unit)
    if pa.types.is_date(dtype):
        return "s"
    raise FeatureError(
        f"{what}: column {column!r} is {dtype}, not a timestamp or a date; convert it "
        "(pandas.to_datetime, polars .str.to_datetime) before the join.",
        view,
        str(dtype),
    )


def _finest_unit(columns: Sequence[tuple[pa.Table, str, str, str | None]]) -> str:
    units = [_time_unit(*column) for column in columns]
    return max(units, key=_PER_SECOND.__getitem__)


def _as_ints(
    data: pa.Table, column: str, unit: str, what: str, view: str | None
) -> pa.ChunkedArray:
    """The column as int64 counts of ``unit`` since the epoch, UTC. Arrow stores tz-aware
    timestamps as UTC and naive ones as wall time, read here as UTC."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values = data.column(column)
    dtype = values.type
    if pa.types.is_date32(dtype):
        ints, factor = values.cast(pa.int32()).cast(pa.int64()), 86_400 * _PER_SECOND[unit]
    elif pa.types.is_date64(dtype):
        ints, factor = values.cast(pa.int64()), _PER_SECOND[unit] // 1_000
    else:
        ints, factor = values.cast(pa.int64()), _PER_SECOND[unit] // _PER_SECOND[dtype.unit]
    if factor == 1:
        return ints
    try:
        return pc.multiply_checked(ints, factor)
    except pa.ArrowInvalid as exc:
        raise FeatureError(
            f"{what}: column {column!r} holds a time that cannot be counted in {unit} "
            f"(another column of the join has that unit) without overflowing int64; cast the "
            "columns to one coarser unit.",
            view,
            column,
        ) from exc


# -- the join -----------------------------------------------------------------------------------


_database: tuple[int, duckdb.DuckDBPyConnection] | None = None
_database_lock = threading.Lock()


@contextlib.contextmanager
def _connect() -> Iterator[duckdb.DuckDBPyConnection]:
    """A cursor on this process's in-memory DuckDB database, closed after the join.

    Opening a DuckDB database costs about 60 ms (duckdb 2.0) and a cursor 10 us, so the
    database is opened once per process (again after a fork); each join gets its own cursor,
    whose registered tables no other join sees, so threads can join at once.
    """
    import duckdb

    global _database
    with _database_lock:
        if _database is None or _database[0] != os.getpid():
            _database = (os.getpid(), duckdb.connect(config=_duckdb_config()))
        cursor = _database[1].cursor()
    try:
        yield cursor
    finally:
        cursor.close()


def _duckdb_config() -> dict[str, str | bool | int | float | list[str]]:
    """Insertion order is not needed (results are ordered by row number) and keeping it costs
    memory in the sorts. DuckDB's working memory is capped at half the RAM, not its default 80%:
    the Arrow data joined are outside its count, in the same process; past the cap it spills to
    a folder of the system's temporary directory, not to ``.tmp`` in the notebook's folder
    (DuckDB's default for an in-memory database)."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "preserve_insertion_order": False,
        "temp_directory": os.path.join(tempfile.gettempdir(), f"nbmlops-duckdb-{os.getpid()}"),
    }
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no sysconf (Windows)
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        config["memory_limit"] = f"{ram // 2 // 2**20}MB"
    return config


def _latest_winners(
    frame: pa.Table, entity_time: pa.ChunkedArray, table: FeatureTable, data: pa.Table, unit: str
) -> pa.Array:
    """For each entity row in order, the row number in ``data`` of its winning feature row, or
    null when none is eligible (without ``created_filter``: the latest by (event time, created
    time, row number) among the rows with its keys and an event time in [T - ttl, T]).

    An ASOF join done as one sort and one binary search: each feature row gets the int64
    ``code * span + time``, where ``code`` numbers its key tuple and ``time`` its event time
    from the earliest, so that sorting those numbers orders the rows by keys, then event time.
    An entity row's winner is the last row at or before ``code * span + T`` that has its code.
    When ``codes * span`` does not fit int64 (nanoseconds over centuries), times are numbered by
    rank among all the times of both sides instead, which keeps their order. Rows with equal
    numbers (same keys and event time) are put in (created time, row number) order. 2.7x faster
    than DuckDB's ASOF join at 100k x 1M rows, which sorted structs.
    """
    import numpy as np  # heavy imports stay out of `import nbmlops`
    import pyarrow as pa

    what = f"Feature view {table.view!r}"
    entity_code, feature_code, codes = _key_codes(frame, data, table)
    event = _as_ints(data, table.timestamp, unit, what, table.view)
    won = np.full(frame.num_rows, -1, np.int64)
    # The eligible feature rows' numbers, increasing: ordering by position among them orders by
    # row number.
    eligible = (feature_code >= 0) & _present(event)
    if eligible.all():
        rows, code, ts = np.arange(data.num_rows), feature_code, _filled(event)
    else:
        rows = np.flatnonzero(eligible)
        code, ts = feature_code[rows], _filled(event)[rows]
    if not rows.size:
        return pa.array(won, mask=won < 0)
    t, asking = _filled(entity_time), (entity_code >= 0) & _present(entity_time)
    low, high = int(ts.min()), int(ts.max())
    span = high - low + 1
    if codes * span <= _INT64_MAX:
        asking &= t >= low
        feature_at, entity_at = ts - low, np.minimum(t, high) - low
    else:
        times = np.unique(np.concatenate([ts, t[asking]]))
        span = times.size
        feature_at, entity_at = np.searchsorted(times, ts), np.searchsorted(times, t)
    number = code * span
    number += feature_at

    def created() -> Any:
        if table.created is None:
            return np.zeros(rows.size, np.int64)
        return _filled(_as_ints(data, table.created, unit, what, table.view), _INT64_MIN)[rows]

    order, ordered = _ordered(number, created)
    ask = np.flatnonzero(asking)
    asked = entity_code[ask] * span + entity_at[ask]
    by_number = np.argsort(asked)  # a binary search of sorted keys reuses its last bound
    ask, asked = ask[by_number], asked[by_number]
    last = np.searchsorted(ordered, asked, side="right") - 1
    found = last >= 0
    ask, last = ask[found], last[found]
    same_keys = ordered[last] >= entity_code[ask] * span
    ask, winner = ask[same_keys], order[last[same_keys]]
    ttl = _ttl_units(table.ttl_seconds, unit)
    if ttl is not None and ttl < 2**64:
        # T - ts as uint64 is exact (ts <= T, and the difference is under 2**64) where the
        # int64 difference of two nanosecond times centuries apart would overflow.
        age = t[ask].view(np.uint64) - ts[winner].view(np.uint64)
        fresh = age <= np.uint64(ttl)
        ask, winner = ask[fresh], winner[fresh]
    won[ask] = rows[winner]
    return pa.array(won, mask=won < 0)


def _ordered(number: Any, created: Callable[[], Any]) -> tuple[Any, Any]:
    """The positions that sort ``number``, and the sorted numbers; equal numbers (same keys and
    event time) in (created time, position) order, ``created()`` giving the created times.
    numpy's argsort is not stable, and a stable one cost 2.7x at 10M rows: only the few ties
    are sorted again."""
    import numpy as np

    order = np.argsort(number)
    ordered = number[order]
    first = np.flatnonzero(ordered[1:] == ordered[:-1])
    if first.size:
        in_tie = np.zeros(number.size, bool)
        in_tie[first] = in_tie[first + 1] = True
        at = np.flatnonzero(in_tie)
        tied = order[at]
        order[at] = tied[np.lexsort((tied, created()[tied], number[tied]))]
    return order, ordered


def _key_codes(frame: pa.Table, data: pa.Table, table: FeatureTable) -> tuple[Any, Any, int]:
    """Dense numbers of the entity rows' and the feature rows' key tuples, from one dictionary
    (equal tuples, equal numbers; -1 for a tuple holding a null), and how many numbers there
    are (at most the number of rows: ``codes * span`` must fit int64). Each key column is
    encoded over both sides at once, then the codes combined."""
    import numpy as np

    entity_code = np.zeros(frame.num_rows, np.int64)
    feature_code = np.zeros(data.num_rows, np.int64)
    codes = 1
    for i, key in enumerate(table.keys):
        entity_key, feature_key, count = _column_codes(
            frame.column(key), data.column(key), table, key
        )
        if i == 0:
            entity_code, feature_code, codes = entity_key, feature_key, count
            continue
        if codes * count > 2**62:  # renumber the tuples so far densely before combining more
            entity_code, feature_code, codes = _dense(entity_code, feature_code)
        entity_code = np.where(
            (entity_code < 0) | (entity_key < 0), -1, entity_code * count + entity_key
        )
        feature_code = np.where(
            (feature_code < 0) | (feature_key < 0), -1, feature_code * count + feature_key
        )
        codes *= count
    if codes > frame.num_rows + data.num_rows:  # combined sparsely: renumber the tuples seen
        entity_code, feature_code, codes = _dense(entity_code, feature_code)
    return entity_code, feature_code, codes


def _column_codes(
    entity: pa.ChunkedArray, feature: pa.ChunkedArray, table: FeatureTable, key: str
) -> tuple[Any, Any, int]:
    """One key column of both sides as codes of one dictionary (-1: null) and its size. The
    columns are cast to one type first (int32 and int64, uint64 and int64, string and
    large_string, decimals of two scales); -0.0 is counted as 0.0 and NaN as NaN, as DuckDB
    compares them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def plain(values: pa.ChunkedArray) -> pa.ChunkedArray:
        dtype = values.type
        if pa.types.is_dictionary(dtype):
            values, dtype = values.cast(dtype.value_type), dtype.value_type
        if pa.types.is_string_view(dtype):
            return values.cast(pa.large_string())
        if pa.types.is_binary_view(dtype):
            return values.cast(pa.large_binary())
        return values

    entity, feature = plain(entity), plain(feature)
    kinds = (entity.type, feature.type)
    try:
        if any(pa.types.is_uint64(t) for t in kinds) and any(
            pa.types.is_signed_integer(t) for t in kinds
        ):
            common = pa.decimal128(20, 0)  # every uint64 and int64 value, compared exactly
        else:
            common = (
                pa.unify_schemas(
                    [pa.schema([("k", entity.type)]), pa.schema([("k", feature.type)])],
                    promote_options="permissive",
                )
                .field("k")
                .type
            )
        both = pa.chunked_array(
            [*entity.cast(common).chunks, *feature.cast(common).chunks], common
        ).combine_chunks()
        if pa.types.is_floating(common):
            # -0.0 + 0.0 is 0.0; every NaN (float("nan"), 0.0/0.0 and -nan differ in their
            # bits) becomes one NaN.
            both = pc.add(both, pa.scalar(0.0, common))
            both = pc.if_else(pc.is_nan(both), pa.scalar(math.nan, common), both)
        encoded = pc.dictionary_encode(both)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise FeatureError(
            f"Feature view {table.view!r}: key {key!r} holds {feature.type} values (the entity "
            f"frame's: {entity.type}), which the join cannot match ({exc}); use keys of one "
            "scalar kind on both sides: integers, strings, binary, decimals, floats.",
            table.view,
            str(feature.type),
        ) from exc
    numbers = encoded.indices.fill_null(-1).to_numpy().astype("int64")
    return numbers[: len(entity)], numbers[len(entity) :], len(encoded.dictionary)


def _dense(entity_code: Any, feature_code: Any) -> tuple[Any, Any, int]:
    """Both sides' non-negative codes renumbered 0..n-1 together (-1 stays -1), and n."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    both = np.concatenate([entity_code, feature_code])
    encoded = pc.dictionary_encode(pa.array(both, mask=both < 0))
    dense = encoded.indices.fill_null(-1).to_numpy().astype(np.int64)
    return dense[: entity_code.size], dense[entity_code.size :], len(encoded.dictionary)


def _present(values: pa.ChunkedArray) -> Any:
    """Which values are not null, as a numpy bool array."""
    import numpy as np

    if values.null_count == 0:
        return np.ones(len(values), bool)
    return values.is_valid().to_numpy()


def _filled(values: pa.ChunkedArray, fill: int = 0) -> Any:
    """An int64 column as a numpy array, nulls as ``fill``."""
    return values.fill_null(fill).to_numpy() if values.null_count else values.to_numpy()


def _created_winners(
    con: duckdb.DuckDBPyConnection,
    frame: pa.Table,
    entity_time: pa.ChunkedArray,
    table: FeatureTable,
    data: pa.Table,
    unit: str,
    created: str,
) -> pa.Array:
    """For each entity row in order, the row number in ``data`` of its winning feature row with
    ``created_filter`` (:func:`_created_query`; ``created``: the view's created time column), or
    null when none is eligible."""
    import numpy as np  # heavy imports stay out of `import nbmlops`
    import pyarrow as pa

    what = f"Feature view {table.view!r}"
    keys = [f"k{i}" for i in range(len(table.keys))]
    entity_side = pa.Table.from_arrays(
        [
            *(frame.column(k) for k in table.keys),
            entity_time,
            pa.array(np.arange(frame.num_rows)),
        ],
        names=[*keys, "t", "rn"],
    )
    feature_side = pa.Table.from_arrays(
        [
            *(data.column(k) for k in table.keys),
            _as_ints(data, table.timestamp, unit, what, table.view),
            _as_ints(data, created, unit, what, table.view),
            pa.array(np.arange(data.num_rows)),
        ],
        names=[*keys, "ts", "cr", "rn"],
    )
    con.register("entity_side", entity_side)
    con.register("feature_side", feature_side)
    try:
        winners = con.sql(
            _created_query(keys, _ttl_units(table.ttl_seconds, unit))
        ).to_arrow_table()
    finally:
        con.unregister("entity_side")
        con.unregister("feature_side")
    return winners.column("won").combine_chunks()


def _ttl_units(ttl_seconds: float, unit: str) -> int | None:
    """The TTL in ``unit``, rounded down (event time differences are whole units, so
    ``difference <= ttl`` holds exactly when it holds for the floor); None: no TTL."""
    if ttl_seconds <= 0:
        return None
    # In decimal: 1.001 s * 1000 is 1000.9999999999999 in binary floating point, whose floor
    # would drop a row exactly 1,001 ms old.
    return math.floor(decimal.Decimal(repr(ttl_seconds)) * _PER_SECOND[unit])


def _created_query(keys: Sequence[str], ttl: int | None) -> str:
    """The SQL that numbers each entity row's winner (``won``), in entity row order, with
    ``created_filter``. Null created times, null entity times and null keys match nothing
    (ASOF equality never matches NULL). A difference of two int64 times can overflow int64
    (nanoseconds 300 years apart), hence the HUGEINT in the TTL test.

    A row is eligible from ``greatest(ts, cr)`` on, so the winning
    event time at T is the running maximum of ``ts`` in that order (``latest``, a window over
    integers: a running maximum of the (ts, cr, rn) struct cost 2-4x more), found by an ASOF join
    at T (``best``); the row among those with the keys and that event time is then the latest
    created by T, then the last (``won``, an ASOF join over those candidate rows only)."""
    known = " AND ".join([*(f"{k} IS NOT NULL" for k in keys), "ts IS NOT NULL"])
    columns = "".join(f"{k}, " for k in keys)
    partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
    fresh = "" if ttl is None else f" WHERE e.t::HUGEINT - l.ts <= {ttl}"
    return f"""
        WITH latest AS (
            SELECT {columns}greatest(ts, cr) AS av, max(ts) OVER (
                {partition}ORDER BY greatest(ts, cr)
                RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
            ) AS ts
            FROM feature_side WHERE {known} AND cr IS NOT NULL
        ), best AS (
            SELECT e.rn, {"".join(f"e.{k}, " for k in keys)}e.t, l.ts
            FROM entity_side e ASOF JOIN latest l
            ON {"".join(f"e.{k} = l.{k} AND " for k in keys)}e.t >= l.av{fresh}
        ), candidates AS (
            SELECT {columns}ts, cr, rn FROM feature_side f
            SEMI JOIN best b ON {"".join(f"f.{k} = b.{k} AND " for k in keys)}f.ts = b.ts
            WHERE cr IS NOT NULL
        ), won AS (
            SELECT b.rn, c.rn AS won FROM best b ASOF JOIN candidates c
            ON {"".join(f"b.{k} = c.{k} AND " for k in keys)}b.ts = c.ts
            AND {{'c': b.t, 'r': {_INT64_MAX}}} >= {{'c': c.cr, 'r': c.rn}}
        )
        SELECT w.won FROM entity_side e LEFT JOIN won w ON e.rn = w.rn ORDER BY e.rn"""
