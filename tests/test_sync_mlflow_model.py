"""A pushed version is an MLflow model (issue #19): MLflow's own client, in its venv, loads it by
alias and by number with ``mlflow.pyfunc.load_model`` and predicts what nbmlops predicts; its
input schema is the version's signature, which MLflow then enforces."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import Ridge

import nbmlops as nbm
from mlflow_server import MlflowServer, mlflow_venv, running_server
from nbmlops.sync.push import push

X = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 4, "c": np.sin(np.arange(30.0))})
Y = 2 * X["a"] - X["b"] + X["c"]

LOAD = """
import json, pathlib, sys
import mlflow, pandas as pd
from mlflow.utils.virtualenv import _get_python_env  # what `mlflow models serve` builds from
X = pd.read_parquet(sys.argv[1])
out = {}
for uri in sys.argv[2:]:
    model = mlflow.pyfunc.load_model(uri)
    schema = model.metadata.get_input_schema()
    env = _get_python_env(pathlib.Path(mlflow.artifacts.download_artifacts(uri)))
    out[uri] = {
        "predictions": [float(p) for p in model.predict(X)],
        "flavours": sorted(model.metadata.flavors),
        "inputs": None if schema is None else schema.input_names(),
        "python": env.python,
        "requirements": pathlib.Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text(),
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with running_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def _load_in_mlflow(mlflow: MlflowServer, tmp_path: Path, uris: list[str]) -> dict:
    data = tmp_path / "x.parquet"
    X.to_parquet(data)
    env = os.environ | {
        "MLFLOW_TRACKING_URI": mlflow.url,
        # MLflow refuses every pickle and skops file without it: the test trusts its own models.
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "true",
    }
    done = subprocess.run(
        [str(mlflow_venv() / "bin" / "python"), "-c", LOAD, str(data), *uris],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mlflow_loads_each_pushed_version_and_predicts_as_nbmlops(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    with nbm.start_run(experiment="flavours") as run:
        ridge = Ridge().fit(X, Y)
        nbm.log_dataset(X, "X_train")
        nbm.log_model(ridge, "model")
    models = {
        "ridge": nbm.register_model(run.run_id, "ridge"),  # skops, under its training run
        "forest": nbm.register_model(
            RandomForestRegressor(n_estimators=5, random_state=0).fit(X, Y),
            "forest",
            format="pickle",
        ),
        "boost": nbm.register_model(xgboost.XGBRegressor(n_estimators=5).fit(X, Y), "boost"),
        "light": nbm.register_model(
            lightgbm.train(
                {"verbose": -1, "min_data_in_leaf": 2}, lightgbm.Dataset(X, Y), num_boost_round=5
            ),
            "light",
        ),
    }
    assert [mv.format for mv in models.values()] == [
        "skops",
        "pickle",
        "xgboost-ubj",
        "lightgbm-text",
    ]
    nbm.set_alias("ridge", "champion", models["ridge"].version)
    push(None, mlflow.url)

    uris = [f"models:/{name}/1" for name in models] + ["models:/ridge@champion"]
    loaded = _load_in_mlflow(mlflow, tmp_path, uris)
    for name, mv in models.items():
        ours = nbm.load_model(f"{name}/{mv.version}", allow_pickle=True).predict(X)
        theirs = loaded[f"models:/{name}/1"]
        np.testing.assert_allclose(theirs["predictions"], ours, rtol=1e-6, err_msg=name)
        assert "python_function" in theirs["flavours"]
        # The input schema where the signature has dtypes (a model trained in a run on logged
        # data); a live object's names alone give no MLflow type, so no schema.
        assert theirs["inputs"] == (["a", "b", "c"] if name == "ridge" else None), name
        libraries = mv.libraries
        assert theirs["python"] == libraries["python"], name
        assert theirs["requirements"].splitlines() == [
            f"{library}=={version}"
            for library, version in sorted(libraries.items())
            if library != "python"
        ], name
    assert loaded["models:/ridge@champion"] == loaded["models:/ridge/1"]
    flavours = {name: loaded[f"models:/{name}/1"]["flavours"] for name in models}
    assert flavours == {
        "ridge": ["python_function", "sklearn"],
        "forest": ["python_function", "sklearn"],
        "boost": ["python_function", "xgboost"],
        "light": ["lightgbm", "python_function"],
    }


def test_the_input_schema_names_mlflow_types_or_is_left_out():
    from nbmlops.sync.mlflow_model import _inputs

    columns = [{"name": "city", "dtype": "str"}, {"name": "age", "dtype": "float64"}]
    assert _inputs(json.dumps({"columns": columns}), []) == [
        {"type": "string", "name": "city", "required": True},
        {"type": "double", "name": "age", "required": True},
    ]
    # Names alone (a model's feature_names_in_) take their dtypes from the training data.
    names = [{"name": "city", "dtype": None}, {"name": "age", "dtype": None}]
    schemas = [{"churned": "int64"}, {"age": "int64", "city": "str", "other": "float64"}]
    assert [c["type"] for c in _inputs(json.dumps({"columns": names}), schemas)] == [
        "string",
        "long",
    ]
    assert _inputs(json.dumps({"columns": names}), schemas[:1]) is None
    # A dtype MLflow has no type for: no schema rather than one that refuses good input.
    unknown = [*columns, {"name": "when", "dtype": "timedelta64[ns]"}]
    assert _inputs(json.dumps({"columns": unknown}), []) is None
    assert _inputs(None, []) is None
