"""run_summaries, the cache behind nbm.runs(): always equal to params/latest_metrics/tags."""

from __future__ import annotations

import json
import math
import random
import sqlite3
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbmlops as nbm
from nbmlops._params import decode_param
from nbmlops.store import schema

ALL_KINDS = {"int": 3, "neg": -2, "lr": 0.01, "flag": True, "opt": "adam", "layers": [64, 32]}


def _nan_free(values: dict[str, object]) -> dict[str, object]:
    return {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


def _from_summary(db: sqlite3.Connection, run_id: str) -> tuple[dict, dict, dict]:
    layout, packed, texts = db.execute(
        "SELECT layout, numbers, texts FROM run_summaries WHERE run_id = ?", (run_id,)
    ).fetchone()
    param_keys, kinds, metric_keys, tag_keys = json.loads(layout)
    numbers = struct.unpack(f"<{len(packed) // 8}d", packed)
    strings = iter(json.loads(texts))
    cast = {"i": int, "f": float, "b": bool}
    params = {
        k: next(strings) if kind == "s" else cast[kind](number)
        for k, kind, number in zip(param_keys, kinds, numbers, strict=False)
    }
    metrics = dict(zip(metric_keys, numbers[len(param_keys) :], strict=True))
    tags = {k: next(strings) for k in tag_keys}
    return _nan_free(params), _nan_free(metrics), tags


def _from_tables(db: sqlite3.Connection, run_id: str) -> tuple[dict, dict, dict]:
    params = db.execute("SELECT key, value, value_num FROM params WHERE run_id = ?", (run_id,))
    metrics = db.execute("SELECT key, value FROM latest_metrics WHERE run_id = ?", (run_id,))
    tags = db.execute("SELECT key, value FROM tags WHERE run_id = ?", (run_id,))
    return (
        _nan_free({k: decode_param(v, n) for k, v, n in params}),
        _nan_free({k: math.nan if v is None else v for k, v in metrics}),
        dict(tags),
    )


def _assert_summaries_match_tables(db: sqlite3.Connection) -> None:
    with_data = db.execute(
        "SELECT run_id FROM params UNION SELECT run_id FROM latest_metrics "
        "UNION SELECT run_id FROM tags"
    ).fetchall()
    summarized = db.execute("SELECT run_id FROM run_summaries").fetchall()
    assert sorted(summarized) == sorted(with_data)
    for (run_id,) in with_data:
        assert _from_summary(db, run_id) == _from_tables(db, run_id)


def test_summary_of_one_write_matches_the_tables(home: Path, db: sqlite3.Connection):
    with nbm.start_run(tags={"team": "a", "zone": "eu"}) as run:
        nbm.log_params({**ALL_KINDS, "nan": math.nan, "inf": math.inf, "np": np.int64(7)})
        nbm.log_metrics({"auc": 0.8444218515250481, "loss": math.nan, "big": -math.inf})
    _assert_summaries_match_tables(db)
    params, metrics, tags = _from_summary(db, run.run_id)
    assert params == {**ALL_KINDS, "layers": "[64, 32]", "nan": "nan", "inf": math.inf, "np": 7}
    assert metrics == {"auc": 0.8444218515250481, "big": -math.inf, "loss": "NaN"}
    assert tags == {"team": "a", "zone": "eu"}


def test_summary_follows_a_run_flushed_in_parts(home: Path, db: sqlite3.Connection):
    with nbm.start_run() as run:
        run.log_params({"lr": 0.1, "opt": "sgd"})
        run.log_metric("loss", 0.9)
        run.flush()
        assert _from_summary(db, run.run_id) == ({"lr": 0.1, "opt": "sgd"}, {"loss": 0.9}, {})
        run.log_params({"opt": "adam", "depth": 4})
        run.log_metric("loss", 0.4)
        run.set_tag("stage", "2")
    _assert_summaries_match_tables(db)
    expected = ({"depth": 4, "lr": 0.1, "opt": "adam"}, {"loss": 0.4}, {"stage": "2"})
    assert _from_summary(db, run.run_id) == expected


def test_a_lower_step_logged_later_does_not_replace_the_latest(home: Path, db: sqlite3.Connection):
    with nbm.start_run() as run:
        run.log_metric("acc", 0.7, step=10)
        run.flush()
        run.log_metric("acc", 0.1, step=2)
    _assert_summaries_match_tables(db)
    assert _from_summary(db, run.run_id)[1] == {"acc": 0.7}
    assert nbm.runs()["metrics.acc"].tolist() == [0.7]


def test_a_run_without_params_metrics_or_tags_has_no_summary(home, db: sqlite3.Connection):
    with nbm.start_run("empty"):
        pass
    assert db.execute("SELECT count(*) FROM run_summaries").fetchone() == (0,)
    frame = nbm.runs()
    assert frame["name"].tolist() == ["empty"]
    assert not [c for c in frame.columns if c.startswith(("params.", "metrics.", "tags."))]


@pytest.mark.parametrize(
    ("values", "dtype", "expected"),
    [
        ([3, None, -2], "Int64", [3, pd.NA, -2]),
        ([3, 0.5], "float64", [3.0, 0.5]),
        ([True, False, None], "boolean", [True, False, pd.NA]),  # issue #13: not 1.0/0.0
        ([True, 2.5], "float64", [1.0, 2.5]),
        ([math.inf, 1.5], "float64", [math.inf, 1.5]),
        (["adam", None], "str", ["adam", math.nan]),
        ([3, "adam", 0.5, True], "str", ["3", "adam", "0.5", "True"]),
        ([[64, 32], 1], "str", ["[64, 32]", "1"]),
        ([math.nan, 1.0], "str", ["nan", "1.0"]),
    ],
)
def test_param_column_types(home: Path, values: list, dtype: str, expected: list):
    for value in reversed(values):  # the frame is newest first
        with nbm.start_run():
            if value is not None:
                nbm.log_param("p", value)
    expected_column = pd.Series(expected, dtype=dtype, name="params.p")
    pd.testing.assert_series_equal(nbm.runs()["params.p"], expected_column)


def _reference_frame(db: sqlite3.Connection, run_ids: list[str]) -> dict[str, pd.Series]:
    """The params/metrics/tags columns of nbm.runs() as documented, built the slow way."""
    columns: dict[str, pd.Series] = {}
    params: dict[str, dict[str, tuple[str, float | None]]] = {}
    for run_id, key, text, number in db.execute("SELECT run_id, key, value, value_num FROM params"):
        params.setdefault(key, {})[run_id] = (text, number)
    for key, stored in sorted(params.items()):
        cells = [stored.get(run_id) for run_id in run_ids]
        if any(number is None for _, number in stored.values()):
            column = pd.Series([None if c is None else c[0] for c in cells])
        elif all(text in ("True", "False") for text, _ in stored.values()):
            column = pd.Series(
                [pd.NA if c is None else c[0] == "True" for c in cells], dtype="boolean"
            )
        elif all(text.lstrip("-").isdigit() for text, _ in stored.values()):
            column = pd.Series([None if c is None else int(c[0]) for c in cells], dtype="Int64")
        else:
            column = pd.Series([math.nan if c is None else c[1] for c in cells], dtype="float64")
        columns[f"params.{key}"] = column
    for table, prefix in (("latest_metrics", "metrics"), ("tags", "tags")):
        found: dict[str, dict[str, object]] = {}
        for run_id, key, value in db.execute(f"SELECT run_id, key, value FROM {table}"):
            found.setdefault(key, {})[run_id] = value
        for key, stored in sorted(found.items()):
            cells = [stored.get(run_id) for run_id in run_ids]
            if prefix == "metrics":
                cells = [math.nan if c is None else c for c in cells]
            columns[f"{prefix}.{key}"] = pd.Series(
                cells, dtype="float64" if prefix == "metrics" else None
            )
    return columns


def test_frame_matches_the_tables_over_many_layouts(home: Path, db: sqlite3.Connection):
    rng = random.Random(0)
    pools = {"a": [1, 2, -3], "b": [1, 0.5], "c": [1, "x"], "d": [True, False], "e": ["s", None]}
    for i in range(60):
        with nbm.start_run(f"r{i}") as run:
            run.log_params(
                {k: v for k, pool in pools.items() if (v := rng.choice(pool)) is not None}
            )
            run.log_metric(f"m{i % 3}", rng.choice([rng.random(), math.nan, math.inf]))
            if i % 4 == 0:
                run.flush()
                run.set_tag(f"t{i % 8}", str(i))
    _assert_summaries_match_tables(db)
    frame = nbm.runs()
    expected = _reference_frame(db, frame["run_id"].tolist())
    assert list(frame.columns[10:]) == list(expected)
    for name, column in expected.items():
        pd.testing.assert_series_equal(frame[name], column.rename(name))


def test_filter_and_experiment_select_runs_and_their_columns(home: Path):
    for lr, experiment in ((0.01, "a"), (0.1, "a"), (0.2, "b")):
        with nbm.start_run(f"lr{lr}", experiment=experiment):
            nbm.log_params({"lr": lr, f"only_{experiment}": 1})
            nbm.log_metric("auc", 1 - lr)
    assert nbm.runs("params.lr < 0.15")["name"].tolist() == ["lr0.1", "lr0.01"]
    picked = nbm.runs("metrics.auc > 0.85", experiment="a")
    assert picked["name"].tolist() == ["lr0.1", "lr0.01"]
    assert "params.only_b" not in picked.columns and picked["params.only_a"].tolist() == [1, 1]
    assert nbm.runs(experiment="b")["params.lr"].tolist() == [0.2]


def test_an_older_store_is_backfilled_on_open(home: Path):
    from sqlite_utils import Database, Migrations

    home.mkdir()
    old = Database(home / "nbmlops.db")
    migrations = Migrations(schema.MIGRATION_SET)
    schema.register(migrations)
    migrations.apply(old, stop_before="0005_run_summaries")
    old.execute("INSERT INTO experiments (experiment_id, name, created_at) VALUES (1, 'e', 0)")
    for i, run_id in enumerate(("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc")):
        old.execute(
            "INSERT INTO runs (run_id, experiment_id, status, start_time, end_time) "
            "VALUES (?, 1, 'finished', ?, ?)",
            (run_id, i, i + 1),
        )
    old.conn.executemany(
        "INSERT INTO params (run_id, key, value, value_num) VALUES (?, ?, ?, ?)",
        [
            ("aaaaaaaaaaaa", "lr", "0.1", 0.1),
            ("aaaaaaaaaaaa", "opt", "adam", None),
            ("bbbbbbbbbbbb", "depth", "3", 3.0),
        ],
    )
    old.execute(
        "INSERT INTO latest_metrics (run_id, key, value, step, timestamp) "
        "VALUES ('bbbbbbbbbbbb', 'auc', 0.9, 5, 0), ('aaaaaaaaaaaa', 'auc', NULL, 0, 0)"
    )
    old.execute("INSERT INTO tags (run_id, key, value) VALUES ('aaaaaaaaaaaa', 'team', 'x')")
    old.conn.commit()
    old.close()

    frame = nbm.runs()  # opens the store: migrates and backfills
    with sqlite3.connect(home / "nbmlops.db") as db:
        _assert_summaries_match_tables(db)
    assert frame["run_id"].tolist() == ["cccccccccccc", "bbbbbbbbbbbb", "aaaaaaaaaaaa"]
    assert frame["params.depth"].tolist() == [pd.NA, 3, pd.NA]
    assert frame["metrics.auc"].tolist()[1] == 0.9 and math.isnan(frame["metrics.auc"][2])
    assert frame["tags.team"].tolist()[2] == "x" and frame["params.opt"].tolist()[2] == "adam"
