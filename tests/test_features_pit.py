"""The point-in-time join (issue #17 item 2) against a brute-force reference written here in plain
Python: one loop over the entity rows, one over the feature rows, the semantics read literally."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nbmlops.errors import FeatureError
from nbmlops.feature_store.point_in_time import FeatureTable, point_in_time_join

UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
# Composite keys that would collide if concatenated: ("1", "23") and ("12", "3").
PAIRS = [("1", "23"), ("12", "3"), ("1", "2"), ("12", None), (None, "3")]
KEYSETS = [("a",), ("a", "b"), ("n",), ()]


def reference(entity: list[dict], tables: list[dict], created_filter: bool) -> list[list]:
    """For each entity row, each table's winning feature value, literally as specified."""
    out = []
    for row in entity:
        values = []
        for table in tables:
            best, value = None, None
            for i, feat in enumerate(table["rows"]):
                t, ts, cr = row["t"], feat["ts"], feat["cr"]
                if t is None or ts is None or ts > t:
                    continue
                if any(
                    row[k] is None or feat[k] is None or row[k] != feat[k] for k in table["keys"]
                ):
                    continue
                if table["ttl"] and ts < t - table["ttl"]:
                    continue
                if created_filter and table["created"] and (cr is None or cr > t):
                    continue
                rank = (ts, -math.inf if cr is None or not table["created"] else cr, i)
                if best is None or rank > best:
                    best, value = rank, feat["x"]
            values.append(value)
        out.append(values)
    return out


def times(seconds: list[int | None], unit: str, tz: str | None) -> pa.Array:
    return pa.array([None if s is None else s * UNITS[unit] for s in seconds], pa.int64()).cast(
        pa.timestamp(unit, tz=tz)
    )


clock = st.one_of(st.none(), st.integers(0, 12))
units = st.sampled_from(list(UNITS))
zones = st.sampled_from([None, "UTC", "Asia/Kolkata"])


@st.composite
def feature_rows(draw):
    rows = []
    for _ in range(draw(st.integers(0, 14))):
        pair = draw(st.sampled_from(PAIRS))
        row = {"a": pair[0], "b": pair[1], "n": draw(st.one_of(st.none(), st.integers(0, 2)))}
        row["ts"] = draw(clock)
        row["cr"] = draw(clock)
        rows.append(row)
        if draw(st.booleans()):  # a duplicate (keys, event time), maybe the same created
            rows.append({**row, "cr": draw(st.sampled_from([row["cr"], None, 5]))})
    for i, row in enumerate(rows):
        row["x"] = i
    return rows


# Clock ticks as seconds: one second apart, or 833,000,000 s (26 years) apart around 1970, where
# keys x span no longer fit int64 nanoseconds (the join numbers times by rank) and T - ts of two
# nanosecond times can overflow int64 (10**19 ns between the first and last tick).
SCALES = [(1, 0), (833_000_000, -6)]


@st.composite
def scenarios(draw):
    stride, offset = draw(st.sampled_from(SCALES))

    def at(tick: int | None) -> int | None:
        return None if tick is None else (tick + offset) * stride

    entity = [
        dict(zip("ab", draw(st.sampled_from(PAIRS)), strict=True))
        | {"n": draw(st.one_of(st.none(), st.integers(0, 2))), "t": at(draw(clock))}
        for _ in range(draw(st.integers(0, 10)))
    ]
    tables = []
    for v in range(draw(st.integers(1, 3))):
        keys = draw(st.sampled_from(KEYSETS))
        rows = [r | {"ts": at(r["ts"]), "cr": at(r["cr"])} for r in draw(feature_rows())]
        tables.append(
            {
                "view": f"v{v}",
                "keys": keys,
                "rows": rows,
                "ttl": draw(st.sampled_from([0, 1, 3, 4.5])) * stride,
                "created": draw(st.booleans()),
                "units": (draw(units), draw(units), draw(zones)),
            }
        )
    return entity, tables, draw(units), draw(zones)


def as_tables(tables: list[dict]) -> list[FeatureTable]:
    out = []
    for table in tables:
        rows, (unit, created_unit, tz) = table["rows"], table["units"]
        data = pa.table(
            {
                "a": pa.array([r["a"] for r in rows], pa.string()),
                "b": pa.array([r["b"] for r in rows], pa.large_string()),
                "n": pa.array([r["n"] for r in rows], pa.int32()),
                "ts": times([r["ts"] for r in rows], unit, tz),
                "cr": times([r["cr"] for r in rows], created_unit, None),
                "x": pa.array([r["x"] for r in rows], pa.int64()),
            }
        )
        out.append(
            FeatureTable(
                view=table["view"],
                data=data,
                keys=table["keys"],
                timestamp="ts",
                features=("x",),
                created="cr" if table["created"] else None,
                ttl_seconds=table["ttl"],
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(scenarios(), st.booleans())
def test_join_equals_the_brute_force_reference(scenario, created_filter):
    entity, tables, unit, tz = scenario
    frame = pa.table(
        {
            "a": pa.array([r["a"] for r in entity], pa.string()),
            "b": pa.array([r["b"] for r in entity], pa.string()),
            "n": pa.array([r["n"] for r in entity], pa.int64()),
            "event_timestamp": times([r["t"] for r in entity], unit, tz),
        }
    )
    got = point_in_time_join(
        frame, as_tables(tables), created_filter=created_filter, full_names=True
    )
    assert got.num_rows == len(entity)
    assert got.select(frame.column_names).equals(frame)
    features = [got.column(f"{t['view']}__x").to_pylist() for t in tables]
    assert [list(v) for v in zip(*features, strict=True)] == reference(
        entity, tables, created_filter
    )


def test_many_keys_are_numbered_as_tuples_without_overflowing():
    # Five key columns of 6,000 distinct values each: the product of their dictionaries (7.8e18)
    # passes int64, so the join renumbers the tuples before combining the fifth.
    import numpy as np

    rng = np.random.default_rng(5)
    n, keys = 6_000, ["k0", "k1", "k2", "k3", "k4"]
    values = {k: rng.permutation(n) for k in keys}
    ts = rng.integers(0, 10, n)
    data = pa.table({**values, "ts": pa.array(ts, pa.timestamp("s")), "x": np.arange(n)})
    ask = rng.integers(0, n, 2_000)
    shuffled = {k: v[ask].copy() for k, v in values.items()}
    shuffled["k4"][:500] = rng.integers(n, 2 * n, 500)  # tuples no feature row has
    t = rng.integers(0, 10, ask.size)
    entity = pa.table({**shuffled, "event_timestamp": pa.array(t, pa.timestamp("s"))})
    table = FeatureTable("many", data, keys, "ts", ("x",))
    got = point_in_time_join(entity, [table]).column("x").to_pylist()
    by_tuple = {tuple(values[k][i] for k in keys): i for i in range(n)}
    expected = []
    for j in range(ask.size):
        i = by_tuple.get(tuple(shuffled[k][j] for k in keys))
        expected.append(None if i is None or ts[i] > t[j] else i)
    assert got == expected


@pytest.mark.parametrize(
    ("entity_keys", "feature_keys"),
    [
        (pa.array([-0.0, float("nan"), 2.5]), pa.array([0.0, float("nan"), 2.5], pa.float32())),
        (
            pa.array([1, 2, 3], pa.decimal128(10, 2)),
            pa.array([1, 2, 3], pa.decimal128(12, 3)),
        ),
        (pa.array(["a", "b", "c"], pa.string_view()), pa.array(["a", "b", "c"], pa.large_string())),
        (
            pa.array([b"a", b"b", b"c"], pa.binary_view()),
            pa.array([b"a", b"b", b"c"]).dictionary_encode(),
        ),
        (pa.array([1, 2, 3], pa.uint8()), pa.array([1, 2, 3], pa.int64())),
    ],
    ids=["floats", "decimals", "string-views", "binary-views", "unsigned"],
)
def test_keys_of_one_kind_and_two_types_match(entity_keys, feature_keys):
    day = [dt.datetime(2024, 1, 1)] * 3
    data = pa.table({"driver": feature_keys, "ts": day, "x": [10, 11, 12]})
    entity = pa.table({"driver": entity_keys, "event_timestamp": day})
    assert point_in_time_join(entity, [view(data)]).column("x").to_pylist() == [10, 11, 12]


def test_keys_the_join_cannot_match_are_refused_by_name():
    lists = pa.array([[1], [2]], pa.list_(pa.int64()))
    data = pa.table({"driver": lists, "ts": [dt.datetime(2024, 1, 1)] * 2, "x": [1, 2]})
    entity = pa.table({"driver": lists, "event_timestamp": [dt.datetime(2024, 1, 2)] * 2})
    with pytest.raises(FeatureError, match="key 'driver' holds list<item: int64> values") as info:
        point_in_time_join(entity, [view(data)])
    assert info.value.view == "stats"


def test_a_null_in_a_key_column_of_one_value_still_matches_nothing():
    # The first key column holds one distinct value: its nulls must survive the second's codes.
    data = pa.table({"a": ["x"], "b": [1], "ts": [dt.datetime(2024, 1, 1)], "x": [42]})
    entity = pa.table(
        {"a": [None, "x"], "b": [1, 1], "event_timestamp": [dt.datetime(2024, 1, 2)] * 2}
    )
    got = point_in_time_join(entity, [view(data, keys=("a", "b"))]).column("x")
    assert got.to_pylist() == [None, 42]


def test_sparse_key_tuples_with_few_times_do_not_collide():
    # Five key columns whose dictionaries multiply to 2**62 and eight distinct times: numbering
    # (tuple, time) by tuple code x 8 would pass int64 and wrap onto another tuple's rows.
    import numpy as np

    i = np.arange(8192)
    keys = ("k0", "k1", "k2", "k3", "k4")
    seconds = pa.array(np.where(i == 0, 5, i % 8)).cast(pa.timestamp("s"))
    entity = pa.table({**dict.fromkeys(keys[:4], i), "k4": i % 1024, "event_timestamp": seconds})
    data = pa.table(
        {
            **{k: [4096, 4096] if k == "k0" else [0, 0] for k in keys},
            "ts": pa.array([1, 7]).cast(pa.timestamp("s")),
            "x": [99, 98],
        }
    )
    got = point_in_time_join(entity, [view(data, keys=keys)]).column("x").to_pylist()
    assert got == [None] * i.size  # no entity row has the feature rows' tuple (4096, 0, ...)


def test_unsigned_keys_past_int64_and_nans_of_other_bits_match_exactly():
    import numpy as np

    day = [dt.datetime(2024, 1, 1)] * 2
    data = pa.table({"driver": pa.array([7, -1], pa.int64()), "ts": day, "x": [1, 2]})
    entity = pa.table({"driver": pa.array([2**63 + 5, 7], pa.uint64()), "event_timestamp": day})
    assert point_in_time_join(entity, [view(data)]).column("x").to_pylist() == [None, 1]
    with np.errstate(invalid="ignore"):
        nans = np.array([np.nan, -np.nan, np.float64(0.0) / np.float64(0.0)])
    assert len({n.tobytes() for n in nans}) == 2  # two bit patterns of NaN
    data = pa.table({"driver": [float("nan")], "ts": day[:1], "x": [5]})
    entity = pa.table({"driver": nans, "event_timestamp": day + day[:1]})
    assert point_in_time_join(entity, [view(data)]).column("x").to_pylist() == [5, 5, 5]


def test_a_ttl_with_decimals_keeps_a_row_exactly_that_old():
    at = dt.datetime(2024, 1, 1, 12)
    data = pa.table({"driver": [1], "ts": pa.array([at], pa.timestamp("ms")), "x": [1]})
    entity = pa.table(
        {
            "driver": [1, 1],
            "event_timestamp": pa.array(
                [at + dt.timedelta(milliseconds=1001), at + dt.timedelta(milliseconds=1002)],
                pa.timestamp("ms"),
            ),
        }
    )
    got = point_in_time_join(entity, [view(data, ttl_seconds=1.001)]).column("x")
    assert got.to_pylist() == [1, None]


def view(data: pa.Table | str, **kwargs) -> FeatureTable:
    spec = {"view": "stats", "data": data, "keys": ("driver",), "timestamp": "ts"}
    return FeatureTable(**(spec | {"features": ("x",)} | kwargs))


def test_entity_order_and_columns_are_kept_from_pandas():
    when = pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02"])
    entity = pd.DataFrame(
        {"driver": [2, 1, 2], "event_timestamp": when, "city": pd.Categorical(["x", "y", "x"])},
        index=[10, 11, 12],
    )
    data = pa.table({"driver": [1, 2], "ts": pa.array(when[1:], pa.timestamp("ns")), "x": [7, 8]})
    got = point_in_time_join(entity, [view(data)]).to_pandas()
    assert got["x"].tolist() == [8, 7, 8]
    pd.testing.assert_frame_equal(got.drop(columns="x"), entity.reset_index(drop=True))


def test_categorical_keys_match_and_feature_dtypes_are_kept():
    entity = pd.DataFrame(
        {
            "driver": pd.Categorical(["b", "a"]),
            "event_timestamp": pd.to_datetime(["2024-01-02"] * 2),
        }
    )
    x = pa.array(["u", "v"]).dictionary_encode()  # and its dictionary is not the entity's
    drivers = pa.array(["a", "b"]).dictionary_encode()
    data = pa.table({"driver": drivers, "ts": [dt.datetime(2024, 1, 1)] * 2, "x": x})
    got = point_in_time_join(entity, [view(data)]).column("x")
    assert got.type == x.type and got.to_pylist() == ["v", "u"]


def test_units_time_zones_and_dates_compare_as_instants():
    noon_utc = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    ns = int(noon_utc.timestamp()) * 10**9
    entity = pl.DataFrame(
        {"driver": [1, 1, 1], "event_timestamp": [ns - 1, ns, ns + 1]}
    ).with_columns(pl.col("event_timestamp").cast(pl.Datetime("ns")))  # naive: UTC
    tokyo = pa.array([noon_utc], pa.timestamp("s", tz="Asia/Tokyo"))  # 21:00 in Tokyo
    got = point_in_time_join(entity, [view(pa.table({"driver": [1], "ts": tokyo, "x": [5]}))])
    assert got.column("x").to_pylist() == [None, 5, 5]
    day = pa.table({"driver": [1], "ts": pa.array([noon_utc.date()], pa.date32()), "x": [3]})
    assert point_in_time_join(entity, [view(day)]).column("x").to_pylist() == [3, 3, 3]


def test_ttl_bounds_are_inclusive():
    at = [dt.datetime(2024, 1, 1, 12, 0, s) for s in (0, 1)]
    entity = pa.table({"driver": [1, 1], "event_timestamp": pa.array(at, pa.timestamp("ms"))})
    data = pa.table({"driver": [1], "ts": pa.array([dt.datetime(2024, 1, 1, 11)]), "x": [1]})
    got = point_in_time_join(entity, [view(data, ttl_seconds=3600)])
    assert got.column("x").to_pylist() == [1, None]


def test_created_filter_and_ties_on_created_time():
    t = [dt.datetime(2024, 1, 1, h) for h in (1, 2, 3)]
    data = pa.table(
        {"driver": [1, 1], "ts": [t[0], t[0]], "cr": [t[0], t[2]], "x": ["early", "late"]}
    )
    entity = pa.table({"driver": [1, 1], "event_timestamp": [t[1], t[2]]})
    table = view(data, created="cr")
    assert point_in_time_join(entity, [table]).column("x").to_pylist() == ["late", "late"]
    got = point_in_time_join(entity, [table], created_filter=True)
    assert got.column("x").to_pylist() == ["early", "late"]


def test_parquet_files_are_read(tmp_path):
    path = tmp_path / "stats.parquet"
    pq.write_table(pa.table({"driver": [1], "ts": [dt.datetime(2024, 1, 1)], "x": [4]}), path)
    entity = pa.table({"driver": [1], "event_timestamp": [dt.datetime(2024, 1, 2)]})
    assert point_in_time_join(entity, [view(str(path))]).column("x").to_pylist() == [4]
    assert point_in_time_join(entity, [view([path])]).column("x").to_pylist() == [4]


DATA = pa.table({"driver": [1], "ts": [dt.datetime(2024, 1, 1)], "x": [1.0], "s": ["a"]})
ENTITY = pa.table({"driver": [1], "event_timestamp": [dt.datetime(2024, 1, 2)]})


@pytest.mark.parametrize(
    ("entity", "tables", "kwargs", "message"),
    [
        (ENTITY, [view(DATA)], {"timestamp": "when"}, "The entity frame has no column 'when'"),
        (ENTITY.rename_columns(["d", "event_timestamp"]), [view(DATA)], {}, "keyed by ['driver']"),
        (ENTITY, [view(DATA, features=("y",))], {}, "Feature view 'stats' has no column 'y'"),
        (ENTITY, [view(DATA, timestamp="s")], {}, "column 's' is string, not a timestamp"),
        (
            ENTITY.set_column(0, "driver", pa.array(["1"])),
            [view(DATA)],
            {},
            "Key 'driver' is string",
        ),
        (ENTITY, [view(DATA), view(DATA, view="other")], {}, "pass full_names=True"),
        (ENTITY, [view(DATA, features=("driver",))], {}, "which an entity column already has"),
        ([1, 2], [view(DATA)], {}, "The entity frame is a list, not a table"),
    ],
)
def test_errors_name_the_view_the_column_and_the_fix(entity, tables, kwargs, message):
    with pytest.raises(FeatureError, match=message.replace("[", r"\[").replace("]", r"\]")):
        point_in_time_join(entity, tables, **kwargs)


def test_a_negative_ttl_and_an_overflowing_unit_are_refused():
    with pytest.raises(FeatureError, match="ttl_seconds=-1 is not a finite number") as info:
        view(DATA, ttl_seconds=-1)
    assert info.value.view == "stats" and info.value.value == -1
    far = pa.table({"driver": [1], "ts": pa.array([dt.date(3000, 1, 1)]), "x": [1]})
    entity = ENTITY.set_column(1, "event_timestamp", pa.array([0], pa.timestamp("ns")))
    with pytest.raises(FeatureError, match="cannot be counted in ns"):
        point_in_time_join(entity, [view(far)])
