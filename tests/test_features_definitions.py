"""Feature view definitions and training sets through the public API (issue #17 items 1-2, 4):
versions by fingerprint, "same definition, other name", every kind of source, a training set
saved, linked to its run and to the model trained from it, with its data contract."""

from __future__ import annotations

import datetime as dt
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm
from nbmlops.api import _features as features_api
from nbmlops.errors import DuplicateFeatureWarning, FeatureError

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _stats(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "driver_id": rng.integers(1000, 1010, n),
            "event_ts": T0 + pd.to_timedelta(rng.integers(0, 86400, n), unit="s"),
            "conv_rate": rng.random(n),
            "trips": rng.integers(0, 50, n),
        }
    )


STATS = _stats()


def _define(ttl: str = "2h", name: str | None = None):  # type: ignore[no-untyped-def]
    @features_api.feature_view(entity="driver", timestamp="event_ts", ttl=ttl, name=name)
    def driver_stats() -> pd.DataFrame:
        return STATS

    return driver_stats


def test_a_definition_is_recorded_once_and_an_edit_is_the_next_version(home: Path):
    features_api.entity("driver", keys="driver_id")
    first = _define()
    assert str(first) == "driver_stats@1 (driver: driver_id; 2 features, ttl 2h; function)"
    assert first.feature_names == ["conv_rate", "trips"]
    assert _define().version == 1  # the same cell run again: nothing new

    @features_api.feature_view(entity="driver", timestamp="event_ts", ttl="2h")
    def driver_stats() -> pd.DataFrame:
        """Reformatted, commented, documented: still the same definition."""
        # the same rows
        return STATS

    assert driver_stats.version == 1
    edited = _define(ttl="3h")
    assert edited.ref == "driver_stats@2"
    assert [v.ttl_seconds for v in features_api.feature_view_versions("driver_stats")] == [
        7200.0,
        10800.0,
    ]
    assert features_api.get_feature_view("driver_stats@1").ttl_seconds == 7200.0


def test_the_same_definition_under_another_name_is_warned_about(home: Path):
    with pytest.raises(FeatureError, match=r"entity 'driver' is not declared and the data has"):
        _define()
    features_api.entity("driver", keys="driver_id")
    _define()
    with pytest.warns(DuplicateFeatureWarning, match=r"same definition as driver_stats@1"):
        _define(name="driver_stats_copy")

    @features_api.feature_view(entity="driver", timestamp="event_ts")
    def different() -> pd.DataFrame:
        return STATS.assign(conv_rate=STATS["conv_rate"] * 2)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert different.version == 1


def test_entities_keep_their_keys(home: Path):
    features_api.entity("trip", keys=["city", "trip_id"])
    assert features_api.entity("trip", keys=["city", "trip_id"]).keys == ("city", "trip_id")
    with pytest.raises(FeatureError, match=r"recorded with keys \['city', 'trip_id'\]"):
        features_api.entity("trip", keys="trip_id")


def test_bad_definitions_name_the_problem(home: Path):
    with pytest.raises(FeatureError, match=r"no column\(s\) \['ts'\]"):
        features_api.feature_view(name="v", entity="driver_id", timestamp="ts", source=STATS)
    with pytest.raises(FeatureError, match=r"'trips' is int64, not a timestamp"):
        features_api.feature_view(name="v", entity="driver_id", timestamp="trips", source=STATS)
    with pytest.raises(FeatureError, match=r"neither an existing path"):
        features_api.feature_view(name="v", entity="driver_id", timestamp="ts", source="nope@1")
    with pytest.raises(FeatureError, match=r"Feature view 'v': ttl='soon' is not a duration"):
        features_api.feature_view(
            name="v", entity="driver_id", timestamp="event_ts", ttl="soon", source=STATS
        )
    with pytest.raises(FeatureError, match=r"No feature view 'ghost'; none defined yet"):
        features_api.training_set(STATS, ["ghost:x"])
    features_api.feature_view(name="v", entity="driver_id", timestamp="event_ts", source=STATS)
    with pytest.raises(FeatureError, match=r"v@1 has no feature\(s\) \['speed'\]"):
        features_api.training_set(STATS, ["v:speed"])
    with pytest.raises(FeatureError, match=r"write 'view:feature'"):
        features_api.training_set(STATS, ["conv_rate"])


def _orders() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "driver_id": [1001, 1002, 1003, 9999],
            "event_timestamp": [T0 + pd.Timedelta(hours=h) for h in (5, 10, 20, 3)],
            "label": [0, 1, 0, 1],
        }
    )


def _expected(orders: pd.DataFrame, ttl: float) -> list[float | None]:
    """The latest conv_rate at or before each order, within the TTL (a plain loop)."""
    out: list[float | None] = []
    for driver, at in zip(orders["driver_id"], orders["event_timestamp"], strict=True):
        rows = STATS[(STATS["driver_id"] == driver) & (STATS["event_ts"] <= at)]
        rows = rows[rows["event_ts"] >= at - pd.Timedelta(seconds=ttl)] if ttl else rows
        latest = rows.sort_values("event_ts")["conv_rate"]
        out.append(None if rows.empty else float(latest.iloc[-1]))
    return out


@pytest.mark.parametrize("kind", ["function", "dataframe", "parquet", "delta", "dataset", "sql"])
def test_every_kind_of_source_gives_the_same_point_in_time_values(home: Path, kind: str):
    path = home.parent / "stats.parquet"
    STATS.to_parquet(path)
    source: object = {
        "dataframe": STATS,
        "parquet": path,
        "delta": None,
        "dataset": None,
        "sql": f"SELECT * FROM read_parquet('{path}')",
    }.get(kind)
    if kind in ("delta", "dataset"):
        saved = nbm.save_dataset(STATS, "stats")
        source = saved.location if kind == "delta" else saved.ref
    if kind == "function":
        features_api.entity("driver", keys="driver_id")
        view = _define()
    else:
        view = features_api.feature_view(
            name="driver_stats", entity="driver_id", timestamp="event_ts", ttl="2h", source=source
        )
    assert view.source_kind == kind
    got = features_api.training_set(_orders(), ["driver_stats:conv_rate", "driver_stats:trips"])
    assert list(got.columns) == ["driver_id", "event_timestamp", "label", "conv_rate", "trips"]
    values = [None if pd.isna(v) else float(v) for v in got["conv_rate"]]
    assert values == _expected(_orders(), 7200.0)
    assert values[-1] is None  # driver 9999 has no feature: kept, with nulls
    features_api.materialize("driver_stats", end=T0 + pd.Timedelta(days=1))
    assert features_api.check_feature_skew("driver_stats").ok


def test_a_transformation_over_a_source_is_part_of_the_definition(home: Path):
    @features_api.feature_view(entity="driver_id", timestamp="event_ts", source=STATS)
    def pct(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(conv_rate=frame["conv_rate"] * 100)

    assert pct.transform is not None
    got = features_api.training_set(_orders(), ["pct:conv_rate"], save=False)
    assert got["conv_rate"].iloc[0] == pytest.approx(
        100 * pd.Series(_expected(_orders(), 0.0)).iloc[0]
    )


def _define_in(shell: InteractiveShell) -> None:
    """The driver entity and the driver_stats view, defined in a cell of ``shell``."""
    shell.user_ns.update(STATS=STATS, orders=_orders(), features_api=features_api)
    shell.run_cell(
        "features_api.entity('driver', keys='driver_id')\n"
        "@features_api.feature_view(entity='driver', timestamp='event_ts', ttl='1d')\n"
        "def driver_stats():\n"
        "    return STATS\n"
    ).raise_error()


def test_a_training_set_is_saved_linked_to_its_run_and_to_the_model_trained_from_it(
    shell: InteractiveShell, home: Path
):
    _define_in(shell)
    result = shell.run_cell(
        "%%track\n"
        "train = features_api.training_set(orders, ['driver_stats:conv_rate', "
        "'driver_stats:trips'])\n"
    )
    result.raise_error()
    result = shell.run_cell(
        "%%track eta_lr\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "model = LogisticRegression().fit(train[['conv_rate', 'trips']].fillna(0), "
        "train['label'])\n"
    )
    result.raise_error()
    nbm.register_model(nbm.runs("name = 'eta_lr'")["run_id"][0], "eta")
    listed = features_api.features()
    assert listed.loc[0, "models"] == ["eta/1"]
    with sqlite3.connect(home / "nbmlops.db") as db:
        (dataset, version, features, contract, run_id) = db.execute(
            "SELECT dataset, dataset_version, features, contract, run_id FROM training_sets"
        ).fetchone()
    assert (dataset, version) == ("training.driver_stats", 1)
    assert run_id is not None
    assert '"view": "driver_stats"' in features and '"version": 1' in features
    assert '"conv_rate": {"dtype": "float64"' in contract
    assert nbm.load_dataset("training.driver_stats@1").equals(shell.user_ns["train"])


def test_a_training_set_gives_features_the_pandas_dtypes_they_were_computed_with(home: Path):
    source = pd.DataFrame(
        {
            "driver_id": [1, 1, 2],
            "event_ts": [T0, T0 + pd.Timedelta("1h"), T0],
            "trips": pd.array([3, None, 2**60], dtype="Int64"),  # above 2**53: not via float
            "active": pd.array([True, None, False], dtype="boolean"),
            "city": pd.Categorical(["b", "a", "b"], categories=["a", "b", "c"]),
            "seen": pd.to_datetime(["2026-01-01 08:00"] * 3).tz_localize("Europe/Paris"),
            "plain": [1, 2, 3],
            "flag": [True, False, True],
        }
    )
    features_api.feature_view(name="v", entity="driver_id", timestamp="event_ts", source=source)
    entity = pd.DataFrame(
        {
            "driver_id": [1, 2, 3],
            "event_timestamp": [T0 + pd.Timedelta("2h"), T0 + pd.Timedelta("2h"), T0],
        }
    )
    refs = ["v:trips", "v:active", "v:city", "v:seen", "v:plain", "v:flag"]
    got = features_api.training_set(entity, refs, save=False)
    assert {c: str(got[c].dtype) for c in [r[2:] for r in refs]} == {
        "trips": "Int64",
        "active": "boolean",
        "city": "category",
        "seen": "datetime64[us, Europe/Paris]",
        # numpy int64 and bool cannot hold the null of the row with no feature: as pandas
        # reads Arrow, never a made-up False
        "plain": "float64",
        "flag": "object",
    }
    assert got["flag"].tolist() == [False, True, None]
    assert got["trips"].tolist()[:2] == [pd.NA, 2**60] and pd.isna(got["trips"][2])
    assert got["city"].cat.categories.tolist() == ["a", "b", "c"]
    assert got["active"].tolist()[:2] == [pd.NA, False]


def test_two_bare_dataframes_with_the_same_columns_are_not_called_duplicates(home: Path):
    features_api.feature_view(name="a", entity="driver_id", timestamp="event_ts", source=STATS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        other = features_api.feature_view(
            name="b", entity="driver_id", timestamp="event_ts", source=_stats(seed=1)
        )
    assert other.ref == "b@1"


def test_a_training_set_that_delta_cannot_hold_is_returned_and_recorded_with_a_warning(
    home: Path,
):
    features_api.feature_view(name="v", entity="driver_id", timestamp="event_ts", source=STATS)
    orders = _orders().assign(event_timestamp=lambda f: f["event_timestamp"] + pd.Timedelta(1))
    with pytest.warns(nbm.NbmlopsWarning, match=r"not saved as dataset 'training.v' .*micro"):
        got = features_api.training_set(orders, ["v:conv_rate"])
    assert len(got) == 4
    with sqlite3.connect(home / "nbmlops.db") as db:
        assert db.execute("SELECT dataset FROM training_sets").fetchall() == [(None,)]


def test_a_training_cell_reading_columns_that_claim_features_with_other_values_is_flagged(
    shell: InteractiveShell, home: Path
):
    _define_in(shell)
    shell.run_cell(
        "train = features_api.training_set(orders, ['driver_stats:conv_rate'])\n"
        "forged = train.assign(conv_rate=train['conv_rate'].fillna(0.5) + 0.01)\n"
    ).raise_error()
    fit = "from sklearn.linear_model import LogisticRegression\n"
    fit += "model = LogisticRegression().fit({0}[['conv_rate']].fillna(0), {0}['label'])\n"
    shell.run_cell("%%track honest\n" + fit.format("train")).raise_error()
    shell.run_cell("%%track forged\n" + fit.format("forged")).raise_error()
    runs = nbm.runs().set_index("name")
    assert pd.isna(runs.loc["honest"].get("tags.feature_mismatch"))
    flagged = runs.loc["forged", "tags.feature_mismatch"]
    assert flagged.startswith(
        "forged: columns named like features of driver_stats@1 hold other values than the "
        "feature store's at those keys and times: conv_rate differs in 4 of 4 rows (row 0: "
    )


@pytest.mark.parametrize("zero", [0, "0", "0s", "0h", dt.timedelta(0), None])
def test_any_zero_ttl_means_no_ttl(home: Path, zero: object):
    view = features_api.feature_view(
        name="v", entity="driver_id", timestamp="event_ts", ttl=zero, source=STATS
    )
    assert view.ttl_seconds == 0.0


def test_binary_and_decimal_features_come_back_online_as_they_are_offline(home: Path):
    import decimal

    import pyarrow as pa

    rows = pa.table(
        {
            "driver_id": ["a", "b"],
            "event_ts": pa.array([T0, T0], type=pa.timestamp("us", tz="UTC")),
            "raw": pa.array([b"\x00\x01", b"x"], type=pa.binary()),
            "fee": pa.array([decimal.Decimal("1.10"), None], type=pa.decimal128(5, 2)),
        }
    )
    features_api.feature_view(name="w", entity="driver_id", timestamp="event_ts", source=rows)
    features_api.materialize("w", end=T0 + pd.Timedelta(hours=1))
    got = features_api.online_features(
        ["w:raw", "w:fee"], [{"driver_id": "a"}, {"driver_id": "b"}]
    ).to_dict()
    assert got["raw"] == [b"\x00\x01", b"x"]
    assert got["fee"] == [decimal.Decimal("1.10"), None]
    assert features_api.check_feature_skew("w").ok


def test_a_key_of_another_kind_than_the_views_is_refused_not_missing(home: Path):
    features_api.feature_view(
        name="s",
        entity="driver_id",
        timestamp="event_ts",
        source=STATS.assign(driver_id=STATS["driver_id"].astype(str)),
    )
    features_api.materialize("s", end=T0 + pd.Timedelta(days=1))
    with pytest.raises(nbm.EntityKeyError, match=r"driver_id=1001 is number, but s@1 holds its"):
        features_api.online_features(["s:conv_rate"], [{"driver_id": 1001}])
    found = features_api.online_features(["s:conv_rate"], [{"driver_id": "1001"}])
    assert found.status[0]["conv_rate"] == "present"
