"""References without save_reference: profiles kept by fingerprint, pinned at registration."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import nbmlops as nbm
import nbmlops.drift as drift
from nbmlops.errors import DriftInputError, ModelNotFoundError
from nbmlops.fingerprint import fingerprint


def _frame(n: int, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.normal(shift, 1, n), "b": rng.normal(size=n)})


def _train(X: pd.DataFrame, name: str = "X_train", profile: bool = True) -> str:
    """A run that read X (profiled as %%track would) and logged a model fitted on it."""
    with nbm.start_run() as run:
        run.log_dataset(X, name=name)
        if profile:
            drift.profile_dataset(nbm.get_store(), X, dataset_id=fingerprint(X).digest)
        run.log_model(LinearRegression().fit(X, X["a"] * 2), "model")
    return run.run_id


def test_profile_dataset_keys_by_fingerprint_and_profiles_once(home: Path):
    store, X = nbm.get_store(), _frame(500)
    first = drift.profile_dataset(store, X)
    assert drift.load_profile(store, first).dataset_id == fingerprint(X).digest
    assert drift.profile_dataset(store, X.copy()) == first
    # with the caller's fingerprint a stored profile is found without reading the data
    assert drift.profile_dataset(store, X.iloc[:1], dataset_id=fingerprint(X).digest) == first
    assert nbm.sql("SELECT COUNT(*) AS n FROM drift_profiles")["n"].item() == 1


def test_long_data_is_profiled_from_the_same_sample_every_time(home: Path):
    X = _frame(150_000)
    a = drift.build_profile(X, max_rows=100_000)
    b = drift.load_profile(nbm.get_store(), drift.profile_dataset(nbm.get_store(), X))
    assert (b.n_rows, b.source_rows, b.sampled) == (100_000, 150_000, True)
    assert b.dataset_id == fingerprint(X).digest and a.profile_id == b.profile_id
    assert a.to_json() == b.to_json() and b.to_json()["source_rows"] == 150_000
    assert drift.build_profile(X).profile_id != a.profile_id
    assert "sampled from 150000" in repr(b)


@pytest.mark.parametrize(
    ("frame", "columns"),
    [
        (pd.DataFrame({"a": [1.0, 2.0], "t": pd.to_datetime(["2026-01-01", "2026-01-02"])}), ["a"]),
        (pd.DataFrame({"a": [1.0, 2.0], "l": [[1], [2]]}), ["a"]),
        (pd.DataFrame({"t": pd.to_datetime(["2026-01-01"])}), None),
        (pd.DataFrame({"a": []}, dtype=float), None),
    ],
)
def test_columns_drift_cannot_compare_are_left_out(home: Path, frame, columns):
    found = drift.profile_dataset(nbm.get_store(), frame)
    if columns is None:
        assert found is None
    else:
        assert list(drift.load_profile(nbm.get_store(), found).columns) == columns


def test_profile_dataset_refuses_what_is_not_a_frame(home: Path):
    with pytest.raises(DriftInputError, match="must be a pandas DataFrame or Series, not list"):
        drift.profile_dataset(nbm.get_store(), [1, 2, 3])
    with pytest.raises(DriftInputError, match="max_rows must be a positive number of rows"):
        drift.profile_dataset(nbm.get_store(), _frame(10), max_rows=0)


def test_a_registered_model_is_checked_against_its_training_profile(home: Path, db):
    X = _frame(800)
    version = nbm.register_model(_train(X), "wine")
    nbm.set_alias("wine", "champion", version.version)
    (payload,) = db.execute("SELECT payload FROM model_events WHERE kind = 'registered'").fetchone()
    pinned = json.loads(payload)["reference_profile"]
    assert pinned["dataset"] == "X_train" and pinned["fingerprint"] == fingerprint(X).digest
    report = nbm.check_drift("wine@champion", _frame(600, seed=1, shift=1.0))
    assert report.profile_id == pinned["profile_id"] and "a" in report.drifted_columns
    linked = db.execute("SELECT model_name, model_version, profile_id FROM drift_reports")
    assert linked.fetchall() == [("wine", 1, pinned["profile_id"])]


def test_the_pinned_reference_stays_when_the_data_is_profiled_again(home: Path):
    X = _frame(800)
    version = nbm.register_model(_train(X), "wine")
    pinned = version.reference_profile_id
    newer = nbm.save_reference(X, columns=["a"])
    assert newer != pinned and nbm.check_drift("wine/1", _frame(300)).profile_id == pinned


def test_a_reference_saved_after_registration_is_found(home: Path):
    X = _frame(800)
    nbm.register_model(_train(X, profile=False), "wine")
    assert nbm.get_model_version("wine").reference_profile_id is None
    saved = nbm.save_reference(X)
    assert nbm.check_drift("wine", _frame(300)).profile_id == saved


def test_a_run_input_fingerprint_is_a_reference(home: Path):
    X = _frame(800)
    run = nbm.get_run(_train(X))
    (dataset,) = [d for d in run.datasets if d["name"] == "X_train"]
    report = nbm.check_drift(dataset["dataset_id"], _frame(300, seed=2))
    assert (
        report.profile_id
        == drift.profiles_for_dataset(nbm.get_store(), fingerprint(X).digest)[0].profile_id
    )


@pytest.mark.parametrize(
    ("setup", "ref", "message"),
    [
        ("object", "wine/1", r"registered from a model object, not a run.*check_drift\(X_train"),
        ("arrays", "wine/1", r"recorded no input DataFrame matching the model's features"),
        ("unprofiled", "wine@latest", r"No saved reference for the training data of wine/1 "
         r"\(X_train \([0-9a-f]{12}\)\)\. .*nbm\.save_reference\(X_train\)"),
        ("unprofiled", "nope", r"'nope' is not a registered model, a saved profile id"),
    ],
)  # fmt: skip
def test_a_model_without_a_reference_says_what_to_do(home: Path, setup, ref, message):
    X = _frame(200)
    if setup == "object":
        nbm.register_model(LinearRegression().fit(X, X["a"]), "wine")
    elif setup == "arrays":
        with nbm.start_run() as run:
            run.log_dataset(X.to_numpy(), name="X")
            run.log_model(LinearRegression().fit(X.to_numpy(), X["a"]), "model")
        nbm.register_model(run.run_id, "wine")
    else:
        nbm.register_model(_train(X, profile=False), "wine")
    with pytest.raises(DriftInputError, match=message):
        nbm.check_drift(ref, X)


def test_an_unknown_model_reference_is_a_model_error(home: Path):
    nbm.register_model(_train(_frame(100)), "wine")
    with pytest.raises(ModelNotFoundError, match="wine has versions 1"):
        nbm.check_drift("wine/4", _frame(100))


def test_sampled_profile_round_trips_through_a_second_connection(home: Path):
    profile_id = drift.profile_dataset(nbm.get_store(), _frame(120_000), max_rows=50_000)
    with sqlite3.connect(home / "nbmlops.db") as conn:
        (n_rows, text) = conn.execute(
            "SELECT n_rows, profile FROM drift_profiles WHERE profile_id = ?", (profile_id,)
        ).fetchone()
    assert n_rows == 50_000 and json.loads(text)["source_rows"] == 120_000


def test_model_references_list_aliases_then_versions_newest_first(home: Path):
    for seed in range(3):
        nbm.register_model(_train(_frame(50, seed), profile=False), "wine")
    nbm.register_model(_train(_frame(50, 9), profile=False), "apple")
    for alias, version in (("champion", 2), ("b", 2), ("a", 3), ("old", 1)):
        nbm.set_alias("wine", alias, version)
    nbm.remove_alias("wine", "old")
    nbm.delete_model_version("wine", 1)
    assert drift.model_references(nbm.get_store()) == [
        "apple/1", "wine@b", "wine@champion", "wine@a", "wine/3", "wine/2",
    ]  # fmt: skip
