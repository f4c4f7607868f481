"""Training/serving consistency: online values against point-in-time values (issue #17 item 4)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from nbmlops.errors import FeatureError
from nbmlops.feature_store.definitions import FeatureView, define_view
from nbmlops.feature_store.online import materialize
from nbmlops.feature_store.skew import check_feature_skew
from nbmlops.store import Store
from nbmlops.store.online import online_store

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def at(hours: float) -> float:
    return (T0 + dt.timedelta(hours=hours)).timestamp()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / ".nbmlops").create()
    yield opened
    online_store(opened.home).close()
    opened.close()


def view(store: Store, conv: list[float], ttl: str | float = 0, drivers: int = 3) -> FeatureView:
    """Driver d has rows at hours 1..len(conv), value conv[h-1] + d; a created-time tie at
    hour 2 (the later created row holds the value)."""
    rows: list[tuple[int, float, float, float]] = [
        (d, h, h, c + d) for d in range(drivers) for h, c in enumerate(conv, 1)
    ]
    rows += [(d, 2, 1.5, -1.0) for d in range(drivers)]  # older created, same event time
    source = pd.DataFrame(
        {
            "driver": [r[0] for r in rows],
            "event_ts": [T0 + dt.timedelta(hours=r[1]) for r in rows],
            "created_ts": [T0 + dt.timedelta(hours=r[2]) for r in rows],
            "conv": [r[3] for r in rows],
        }
    )
    return define_view(
        store,
        name="stats",
        entity="driver",
        timestamp="event_ts",
        created="created_ts",
        ttl=ttl,
        source=source,
    )


def test_no_skew_right_after_materialising(store: Store) -> None:
    v = view(store, [0.1, 0.2, 0.3], drivers=1000)
    materialize(store, v, end=at(2))
    materialize(store, v, end=at(10))
    report = check_feature_skew(store, v)
    assert report.ok and report.at == at(10)
    assert str(report) == "stats@1: 1,000 entities, 0 mismatches"
    assert check_feature_skew(store, v, at=at(2)).ok is False  # online already holds hour 3


def test_offline_rows_changed_after_materialising_are_listed(store: Store) -> None:
    v = view(store, [0.1, 0.2])
    materialize(store, v, end=at(10))
    changed = view(store, [0.1, 0.25])  # the same definition, recomputed rows
    report = check_feature_skew(store, changed)
    assert str(report) == "stats@1: 3 entities, 3 mismatches"
    first = report.mismatches[0]
    assert (first.entity, first.feature, first.online, first.offline) == ((0,), "conv", 0.2, 0.25)
    assert report.to_frame().columns.tolist() == ["driver", "feature", "online", "offline"]


def test_entities_on_one_side_only(store: Store) -> None:
    v = view(store, [0.1, 0.2], drivers=2)
    materialize(store, v, end=at(10))
    grown = view(store, [0.1, 0.2], drivers=4)
    report = check_feature_skew(store, grown)
    assert (report.only_offline, report.only_online, report.mismatches) == (((2,), (3,)), (), ())
    assert str(report) == "stats@1: 4 entities, 0 mismatches, 2 only offline"
    assert not report.ok


def test_expired_values_count_as_none_on_both_sides(store: Store) -> None:
    v = view(store, [0.1, 0.2], ttl="1h")
    materialize(store, v, end=at(10))
    report = check_feature_skew(store, v, at=at(2.5))
    assert report.ok and report.entities == 3
    assert check_feature_skew(store, v, at=at(9)).entities == 0


def test_a_view_never_materialised_is_refused(store: Store) -> None:
    v = view(store, [0.1])
    with pytest.raises(
        FeatureError,
        match=r"Feature view stats@1 is not materialised, .* run nbm.materialize\('stats'\) first",
    ):
        check_feature_skew(store, v)
