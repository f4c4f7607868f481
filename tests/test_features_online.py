"""The online store: incremental materialisation, the event-time guard, TTL at read time,
composite keys, concurrent materialise + read, view versions (issue #17 item 3)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pytest

from nbmlops.errors import EntityKeyError, FeatureError
from nbmlops.feature_store.definitions import FeatureView, define_view
from nbmlops.feature_store.online import materialize, online_features
from nbmlops.store import Store
from nbmlops.store.online import online_store

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(hours: float) -> float:
    return (T0 + dt.timedelta(hours=hours)).timestamp()


def frame(rows: Sequence[tuple[object, ...]], keys: tuple[str, ...] = ("driver",)) -> pd.DataFrame:
    """Rows of (*keys, event hour, created hour, conv, trips)."""
    n = len(keys)
    return pd.DataFrame(
        {
            **{k: [r[i] for r in rows] for i, k in enumerate(keys)},
            "event_ts": [T0 + dt.timedelta(hours=float(r[n])) for r in rows],  # type: ignore[arg-type]
            "created_ts": [T0 + dt.timedelta(hours=float(r[n + 1])) for r in rows],  # type: ignore[arg-type]
            "conv": [r[n + 2] for r in rows],
            "trips": [r[n + 3] for r in rows],
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / ".nbmlops").create()
    yield opened
    online_store(opened.home).close()
    opened.close()


def view(
    store: Store, rows: Sequence[tuple[object, ...]], ttl: str | float = 0, **kw: object
) -> FeatureView:
    keys = kw.pop("keys", ("driver",))
    return define_view(
        store,
        name=str(kw.pop("name", "stats")),
        entity=str(kw.pop("entity", "driver")),
        timestamp="event_ts",
        created="created_ts",
        ttl=ttl,
        source=frame(rows, keys),  # type: ignore[arg-type]
        keys=list(keys),  # type: ignore[call-overload]
    )


def values(store: Store, drivers: list[object], now: float = at(100)) -> list[object]:
    got = online_features(store, ["stats:conv"], [{"driver": d} for d in drivers], now=now)
    return got.to_dict()["conv"]


def test_materialise_twice_reads_only_the_new_window(store: Store) -> None:
    v = view(store, [(1, 1, 1, 0.1, 5), (1, 3, 3, 0.3, 6), (2, 2, 2, 0.2, 7), (2, 5, 5, 0.5, 8)])
    first = materialize(store, v, end=at(2))
    assert (first.start, first.rows_read, first.rows_written) == (None, 2, 2)
    assert values(store, [1, 2]) == [0.1, 0.2]
    second = materialize(store, v, end=at(10))
    assert (second.start, second.rows_read, second.rows_written) == (at(2), 2, 2)
    assert values(store, [2, 1]) == [0.5, 0.3]
    assert "stats@1: 2 rows read (2026-01-01 02:00:00 UTC to 2026-01-01 10:00:00 UTC)" in str(
        second
    )
    rows = sqlite3.connect(store.db_path).execute(
        "SELECT start_ts, end_ts, rows_read, rows_written FROM feature_materializations"
    )
    assert rows.fetchall() == [(None, at(2), 2, 2), (at(2), at(10), 2, 2)]


def test_an_older_materialisation_after_a_newer_changes_nothing(store: Store) -> None:
    v = view(store, [(1, 1, 1, 0.1, 5), (1, 3, 3, 0.3, 6)])
    materialize(store, v, end=at(10))
    late = materialize(store, v, start=at(0), end=at(2))  # holds only the hour-1 row
    assert (late.rows_read, late.rows_written) == (1, 0)
    assert values(store, [1]) == [0.3]


def test_equal_event_time_the_later_created_wins_within_and_across_windows(store: Store) -> None:
    v = view(store, [(1, 2, 4, 0.4, 1), (1, 2, 3, 0.3, 1), (2, 2, 2, 0.2, 1)])
    materialize(store, v, end=at(10))
    assert values(store, [1, 2]) == [0.4, 0.2]
    v2 = view(store, [(1, 2, 4, 0.4, 1), (2, 2, 9, 0.9, 1), (2, 2, 1, 0.1, 1)])
    assert v2.version == 1  # a DataFrame source: same definition, new offline rows
    materialize(store, v2, start=at(0), end=at(10))
    assert values(store, [1, 2]) == [0.4, 0.9]


def test_ttl_is_enforced_at_read_time(store: Store) -> None:
    v = view(store, [(1, 1, 1, 0.1, 5), (2, 3, 3, 0.3, 6)], ttl="2h")
    materialize(store, v, end=at(10))
    got = online_features(
        store,
        ["stats:conv", "stats:trips"],
        [{"driver": 1}, {"driver": 2}, {"driver": 3}],
        now=at(3.5),
    )
    assert got.to_dict() == {
        "driver": [1, 2, 3],
        "conv": [None, 0.3, None],
        "trips": [None, 6, None],
    }
    assert [s["conv"] for s in got.status] == ["expired", "present", "missing"]
    assert repr(got) == "OnlineFeatures(3 rows x 2 features: conv, trips; 1 missing, 1 expired)"
    assert values(store, [2], now=at(5)) == [0.3]  # exactly ttl old: still fresh (inclusive)
    assert values(store, [2], now=at(5) + 1e-3) == [None]


def test_composite_keys_never_collide(store: Store) -> None:
    keys = ("a", "b")
    v = view(
        store, [("1", "23", 1, 1, 0.123, 1), ("12", "3", 1, 1, 0.312, 2)], keys=keys, entity="pair"
    )
    materialize(store, v, end=at(10))
    got = online_features(
        store, ["stats:conv"], [{"a": "12", "b": "3"}, {"a": "1", "b": "23"}, {"a": "1", "b": "2"}]
    )
    assert got.to_dict() == {
        "a": ["12", "1", "1"],
        "b": ["3", "23", "2"],
        "conv": [0.312, 0.123, None],
    }


def test_a_new_view_version_starts_fresh_and_reads_use_the_newest_materialised(
    store: Store,
) -> None:
    v1 = view(store, [(1, 1, 1, 0.1, 5)])
    materialize(store, v1, end=at(10))
    v2 = view(store, [(1, 1, 1, 0.1, 5)], ttl="1d")  # an edited definition: version 2
    assert v2.version == 2
    assert values(store, [1]) == [0.1]  # v2 not materialised yet: v1 is read
    report = materialize(store, v2, end=at(10))
    assert (report.view, report.start, report.rows_written) == ("stats@2", None, 1)
    assert online_features(store, ["stats@1:conv"], [{"driver": 1}], now=at(100)).to_dict()[
        "conv"
    ] == [0.1]
    assert values(store, [1], now=at(100)) == [None]  # v2's TTL of one day applies


def test_keys_given_as_floats_or_numpy_ints_find_the_driver(store: Store) -> None:
    import numpy as np

    materialize(store, view(store, [(1001, 1, 1, 0.5, 5)]), end=at(10))
    assert values(store, [1001.0, np.int64(1001)]) == [0.5, 0.5]
    with pytest.raises(EntityKeyError, match=r"driver='1001' is text, but stats@1 holds its"):
        values(store, ["1001"])  # text for number keys would find nothing: refused


def test_two_views_sharing_a_feature_name_get_full_names(store: Store) -> None:
    materialize(store, view(store, [(1, 1, 1, 0.1, 5)]), end=at(10))
    materialize(store, view(store, [(1, 1, 1, 0.7, 9)], name="other", ttl="9d"), end=at(10))
    got = online_features(
        store, ["stats:conv", "other:conv", "other:trips"], [{"driver": 1}], now=at(9)
    )
    assert got.to_dict() == {
        "driver": [1],
        "stats__conv": [0.1],
        "other__conv": [0.7],
        "trips": [9],
    }
    assert got.to_pandas().shape == (1, 4)


@pytest.mark.parametrize(
    ("refs", "rows", "message"),
    [
        (
            ["stats:speed"],
            [{"driver": 1}],
            "Feature view stats@1 has no feature(s) ['speed'] online; it has ['conv', 'trips']",
        ),
        (
            ["nope:conv"],
            [{"driver": 1}],
            "Feature view nope is not materialised (materialised: stats@1); "
            "run nbm.materialize('nope') first",
        ),
        (
            ["stats:conv"],
            [{"driver": 1, "car": 2}],
            "unknown key column(s) ['car']; the features asked are keyed by ['driver']",
        ),
        (
            ["stats:conv"],
            [{"id": 1}],
            "unknown key column(s) ['id']; missing key column(s) ['driver']",
        ),
        ("stats:conv", [{"driver": 1}], "give a list of 'view:feature' references"),
        # the two arguments swapped: refused by name, not a TypeError from the plan cache
        ({"driver": [1]}, ["stats:conv"], "give a list of 'view:feature' references"),
        ([1], [{"driver": 1}], "give a list of 'view:feature' references"),
        (["stats:conv"], {"driver": 1}, "give a list of mappings"),
    ],
)
def test_bad_reads_are_refused_naming_what_is_wrong(
    store: Store, refs: object, rows: object, message: str
) -> None:
    materialize(store, view(store, [(1, 1, 1, 0.1, 5)]), end=at(10))
    with pytest.raises(FeatureError) as caught:
        online_features(store, refs, rows)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_reading_before_any_materialisation_says_what_to_do(store: Store) -> None:
    view(store, [(1, 1, 1, 0.1, 5)])
    with pytest.raises(
        FeatureError, match=r"No feature view is materialised in .*materialise one first"
    ):
        online_features(store, ["stats:conv"], [{"driver": 1}])
    assert not (store.home / "online.sqlite").exists()


def test_a_start_after_the_end_is_refused(store: Store) -> None:
    v = view(store, [(1, 1, 1, 0.1, 5)])
    with pytest.raises(
        FeatureError, match=r"stats@1: start \(2026-01-01 05:00:00 UTC\) is after end"
    ):
        materialize(store, v, start=at(5), end=at(2))


def test_a_new_version_materialised_is_seen_at_once_by_a_warm_reader(store: Store) -> None:
    materialize(store, view(store, [(1, 1, 1, 0.1, 5)]), end=at(2))
    seen: list[object] = []

    def reader() -> None:  # its own thread: its own connection and metadata cache
        seen.append(values(store, [1])[0])
        event.wait()
        seen.append(values(store, [1])[0])
        online_store(store.home).close()

    event = threading.Event()
    thread = threading.Thread(target=reader)
    thread.start()
    while not seen:
        pass
    materialize(store, view(store, [(1, 3, 3, 0.3, 6)], ttl="9d"), end=at(10))  # version 2
    event.set()
    thread.join()
    assert seen == [0.1, 0.3]


def test_concurrent_materialise_and_read_never_see_a_torn_row_or_an_error(store: Store) -> None:
    hours = range(1, 41)
    rows = [(d, h, h, float(h), h) for h in hours for d in range(50)]
    v = view(store, rows)
    materialize(store, v, end=at(1))
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                got = online_features(
                    store,
                    ["stats:conv", "stats:trips"],
                    [{"driver": d} for d in range(50)],
                    now=at(100),
                )
                for conv, trips in zip(got.to_dict()["conv"], got.to_dict()["trips"], strict=True):
                    assert conv is None or conv == float(trips)  # both from one offline row
        except BaseException as error:
            errors.append(error)
        finally:
            online_store(store.home).close()

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    writers = [
        threading.Thread(
            target=materialize, args=(store, v), kwargs={"start": at(h - 10), "end": at(h)}
        )
        for h in (40, 30, 20, 10)
    ]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert values(store, list(range(50))) == [40.0] * 50
