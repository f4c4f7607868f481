"""Lineage both ways (issue #16 item 4): from a model to the dataset versions that trained it,
from a dataset version to the runs and models that used it; with no call in the tracked cell."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import nbmlops as nbm
from nbmlops.errors import DatasetError

SETUP = """
import numpy as np, pandas as pd
import nbmlops as nbm
from sklearn.linear_model import Ridge
rng = np.random.default_rng(0)
data = pd.DataFrame({"bmi": rng.normal(25, 4, 400), "age": rng.integers(20, 80, 400)})
data["target"] = 3 * data["bmi"] + 0.5 * data["age"] + rng.normal(0, 1, 400)
v1 = nbm.save_dataset(data, "diabetes")
newer = data.assign(bmi=data["bmi"] + 1)
v2 = nbm.save_dataset(newer, "diabetes")
"""

# Reads `data`, which is diabetes@1's content: no nbmlops call in the cell.
TRAIN_ON_READ = """%%track ridge
X, y = data[["bmi", "age"]], data["target"]
model = Ridge().fit(X, y)
"""

TRAIN_ON_LOAD = """%%track ridge_loaded
frame = nbm.load_dataset("diabetes@2")
model = Ridge().fit(frame[["bmi", "age"]], frame["target"])
"""

SAVE_IN_CELL = """%%track clean
cleaned = data[data["bmi"] > 20].reset_index(drop=True)
saved = nbm.save_dataset(cleaned, "diabetes_clean")
"""


def last_run(name: str) -> str:
    runs = nbm.runs()
    return str(runs.loc[runs["name"] == name, "run_id"].iloc[0])


def test_a_model_trained_on_a_saved_version_knows_it_without_a_call(shell, home: Path):
    assert shell.run_cell(SETUP).success
    assert shell.run_cell(TRAIN_ON_READ).success
    run_id = last_run("ridge")
    mv = nbm.register_model(run_id, "diabetes_model")
    nbm.set_alias("diabetes_model", "champion", mv.version)

    lineage = nbm.data_lineage("diabetes_model@champion")
    assert lineage[["ref", "how", "variable"]].to_dict("records") == [
        {"ref": "diabetes@1", "how": "read", "variable": "data"}
    ]
    assert mv.training_data == {"data": "diabetes@1"}

    usage = nbm.dataset_usage("diabetes@1")
    assert usage[["run_id", "how", "variable"]].to_dict("records") == [
        {"run_id": run_id, "how": "read", "variable": "data"}
    ]
    assert usage["models"].tolist() == [["diabetes_model/1"]]
    assert nbm.dataset_usage("diabetes@2").empty


def test_load_and_save_inside_a_tracked_cell_link_the_run(shell, home: Path):
    assert shell.run_cell(SETUP).success
    assert shell.run_cell(TRAIN_ON_LOAD).success
    loaded = last_run("ridge_loaded")
    mv = nbm.register_model(loaded, "m")
    assert nbm.data_lineage("m/1")[["ref", "how"]].to_dict("records") == [
        {"ref": "diabetes@2", "how": "loaded"}
    ]
    assert mv.training_data == {"diabetes": "diabetes@2"}
    restored = nbm.load_dataset(mv.training_data["diabetes"])
    assert restored["bmi"].tolist() == (shell.user_ns["data"]["bmi"] + 1).tolist()

    assert shell.run_cell(SAVE_IN_CELL).success
    saved = shell.user_ns["saved"]
    assert saved.run_id == last_run("clean")
    usage = nbm.dataset_usage("diabetes_clean@1")
    assert usage[["run_id", "how"]].to_dict("records") == [{"run_id": saved.run_id, "how": "saved"}]
    # The same cell read diabetes@1's content (`data`): both ways of using data are there.
    assert set(nbm.dataset_usage("diabetes@1")["run_id"]) == {saved.run_id}


def test_a_version_saved_after_the_run_is_still_found(shell, home: Path):
    """Lineage is a join on fingerprints: recorded in either order."""
    setup = SETUP.split("v1 = ")[0]
    assert shell.run_cell(setup).success
    assert shell.run_cell(TRAIN_ON_READ).success
    nbm.save_dataset(shell.user_ns["data"], "late")
    assert nbm.dataset_usage("late@1")["run_id"].tolist() == [last_run("ridge")]


def test_lineage_of_a_model_without_a_run_says_why(home: Path):
    from sklearn.dummy import DummyRegressor

    model = DummyRegressor().fit(pd.DataFrame({"a": [1.0, 2.0]}), [1.0, 2.0])
    nbm.register_model(model, "bare")
    with pytest.raises(DatasetError, match="without a training run"):
        nbm.data_lineage("bare/1")
