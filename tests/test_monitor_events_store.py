"""The monitoring timeline's table: one firing per cooldown, steps linked, nothing rewritten."""

import sqlite3

import pytest

from nbmlops.errors import StoreError
from nbmlops.store import monitor_events as sql


def fired(at: float, alert: str = "drifted") -> dict[str, object]:
    return {"name": "wine", "alert": alert, "kind": "fired", "payload": {"x": 1}, "at": at}


def test_an_alert_fires_once_per_cooldown_and_each_alert_has_its_own(empty_store, db):
    first = sql.fire_unless_cooling(empty_store, fired(1000.0), cooldown_s=600)
    assert first is not None
    assert sql.fire_unless_cooling(empty_store, fired(1599.0), cooldown_s=600) is None
    assert sql.fire_unless_cooling(empty_store, fired(1001.0, "skewed"), cooldown_s=600)
    assert sql.fire_unless_cooling(empty_store, fired(1600.0), cooldown_s=600) is not None
    kinds = db.execute("SELECT alert, at FROM monitor_events ORDER BY event_id").fetchall()
    assert kinds == [("drifted", 1000.0), ("skewed", 1001.0), ("drifted", 1600.0)]


def test_the_steps_of_a_firing_read_back_with_it(empty_store):
    firing = sql.fire_unless_cooling(empty_store, fired(1000.0), cooldown_s=60)
    step = {"name": "wine", "alert": "drifted", "kind": "retrain_started", "at": 1001.0}
    sql.append_event(empty_store, {**step, "firing_id": firing, "payload": {"notebook": "r"}})
    sql.append_event(empty_store, {**fired(5000.0), "firing_id": None})
    rows = sql.events_of(empty_store, "wine", firing_id=firing)
    assert [(r.kind, r.firing_id, r.payload) for r in rows] == [
        ("fired", None, {"x": 1}),
        ("retrain_started", firing, {"notebook": "r"}),
    ]
    assert [r.at for r in sql.events_of(empty_store, "wine", since=2000.0)] == [5000.0]


def test_events_are_never_rewritten(empty_store, db):
    sql.fire_unless_cooling(empty_store, fired(1000.0), cooldown_s=60)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE monitor_events SET alert = 'other'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM monitor_events")


def test_an_unknown_kind_is_refused(empty_store):
    with pytest.raises(StoreError):
        sql.append_event(empty_store, {**fired(1.0), "kind": "exploded"})
