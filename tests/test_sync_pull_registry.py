"""Pull the model registry from a real MLflow tracking server (issue #19 items 2-3): push -> pull
into an empty store keeps every version and event field by field; pulling again adds nothing; a
file changed on the server is refused; MLflow's own versions are counted, not imported."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression

import nbmlops as nbm
from mlflow_server import MlflowServer, running_server
from nbmlops.store import Store
from nbmlops.sync.pull import pull
from nbmlops.sync.push import push

X = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
Y = 2 * X["a"] - X["b"]
RULES = '[rules.wine]\npromote_to = "champion"\nrequire = ["metrics.mae <= 1000"]\n'


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with running_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def _register(name: str, model: object, experiment: str) -> int:
    with nbm.start_run(experiment=experiment) as run:
        model.fit(X, Y)  # type: ignore[attr-defined]
        nbm.log_dataset(X, "X_train")
        nbm.log_metric("mae", float(np.mean(np.abs(model.predict(X) - Y))))  # type: ignore[attr-defined]
        nbm.log_model(model, "model")
    return nbm.register_model(run.run_id, name).version


def _registry(db: Path) -> dict[str, list]:
    with sqlite3.connect(db) as c:
        return {
            "models": c.execute("SELECT * FROM models ORDER BY name").fetchall(),
            "versions": c.execute("SELECT * FROM model_versions ORDER BY name, version").fetchall(),
            "events": c.execute(
                "SELECT name, version, kind, alias, payload, actor, host, at FROM model_events "
                "ORDER BY event_id"
            ).fetchall(),
        }


def test_push_then_pull_into_an_empty_store_keeps_the_registry(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    one = _register("wine", LinearRegression(), "reg")
    two = _register("wine", DummyRegressor(), "reg")
    nbm.promote("wine", one)
    nbm.set_alias("wine", "challenger", two)
    nbm.deprecate_model_version("wine", two, "worse than version 1")
    nbm.remove_alias("wine", "challenger")
    push(None, mlflow.url, experiment="reg")
    empty = Store(tmp_path / "empty" / ".nbmlops")
    report = pull(empty, mlflow.url, experiment="reg")
    assert (report.models, report.versions, report.refused) == (1, 2, [])
    assert _registry(empty.home / "nbmlops.db") == _registry(home / "nbmlops.db")
    kinds = {e[2] for e in _registry(home / "nbmlops.db")["events"]}
    assert kinds == {"registered", "promotion", "alias_set", "alias_removed", "deprecated"}
    pulled = nbm.load_model("wine@champion", store=empty)
    assert (pulled.predict(X) == nbm.load_model("wine@champion").predict(X)).all()
    again = pull(empty, mlflow.url, experiment="reg")
    assert (again.versions, again.events) == (0, 0)
    assert _registry(empty.home / "nbmlops.db") == _registry(home / "nbmlops.db")
    back = push(empty, mlflow.url)
    assert (back.versions, back.events) == (0, 0)


def test_a_model_file_changed_on_the_server_is_refused(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    _register("tampered", LinearRegression(), "tamper")
    push(None, mlflow.url, experiment="tamper")
    [model] = (mlflow.folder / "artifacts").rglob("registry/tampered/1/model.*")
    model.write_bytes(model.read_bytes() + b"\x00")
    empty = Store(tmp_path / "empty" / ".nbmlops")
    report = pull(empty, mlflow.url, experiment="tamper")
    assert (report.created, report.versions) == (1, 0)
    [refused] = report.refused
    assert refused.startswith("tampered MLflow version 1 (nbmlops version 1): its file ")
    assert "it was changed on the server after it was pushed. Nothing of it was stored" in refused
    assert "Refused (1)" in str(report) and nbm.models(store=empty).empty


def test_a_version_whose_folder_is_not_named_is_refused_saying_why(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    _register("unnamed", LinearRegression(), "unnamed")
    push(None, mlflow.url, experiment="unnamed")
    mlflow.api(
        "DELETE",
        "model-versions/delete-tag",
        json={"name": "unnamed", "version": "1", "key": "nbmlops.file"},
    )
    report = pull(Store(tmp_path / "empty" / ".nbmlops"), mlflow.url, experiment="unnamed")
    [refused] = report.refused
    assert "is not a model folder this nbmlops pushes (no nbmlops.file tag" in refused


def test_a_version_pushed_without_its_row_comes_back_from_its_tags(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    version = _register("older", LinearRegression(), "older")
    push(None, mlflow.url, experiment="older")
    [row] = (mlflow.folder / "artifacts").rglob("registry/older/1/version.json")
    row.unlink()
    empty = Store(tmp_path / "empty" / ".nbmlops")
    report = pull(empty, mlflow.url, experiment="older")
    assert report.versions == 1
    assert "pushed without version.json: its signature, datasets, metrics" in str(report)
    mv = nbm.get_model_version(f"older/{version}", store=empty)
    assert (mv.sha256, mv.signature) == (nbm.get_model_version("older/1").sha256, None)


def test_an_mlflow_native_version_is_counted_not_imported(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    mlflow.api("POST", "registered-models/create", json={"name": "native"})
    mlflow.api(
        "POST", "model-versions/create", json={"name": "native", "source": "s3://bucket/model"}
    )
    report = pull(Store(tmp_path / "empty" / ".nbmlops"), mlflow.url)
    assert report.foreign_versions >= 1
    assert "model 'native': MLflow version 1 without nbmlops tags not imported" in str(report)
    assert "native" not in nbm.models(store=tmp_path / "empty" / ".nbmlops")["name"].tolist()


def test_two_stores_pushing_a_different_version_1_without_a_run_keep_both_files(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    other = Store(tmp_path / "other" / ".nbmlops")
    nbm.register_model(LinearRegression().fit(X, Y), "runless")
    nbm.register_model(
        DummyRegressor(constant=1.0, strategy="constant").fit(X, Y), "runless", store=other
    )
    push(None, mlflow.url)
    push(other, mlflow.url)
    files = sorted((mlflow.folder / "artifacts").rglob("registry/runless/*/model.*"))
    assert len(files) == 2  # one folder per content: neither overwrote the other
    report = pull(Store(tmp_path / "empty" / ".nbmlops"), mlflow.url)
    assert not [r for r in report.refused if "runless" in r]
