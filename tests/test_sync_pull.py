"""Pull from a real MLflow tracking server (issue #19 items 2-3): the round trip push -> pull into
an empty store, field by field; pulling again; other people's runs and MLflow's own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbmlops as nbm
from mlflow_server import MlflowServer, running_server
from nbmlops.store import Store
from nbmlops.sync.pull import pull
from nbmlops.sync.push import push


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with running_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def _fields(db: Path) -> dict[str, dict]:
    """Every run of a store as plain values: what the round trip must keep."""
    with sqlite3.connect(db) as c:
        out = {}
        for run_id, name, status, start, end, user, host, notebook in c.execute(
            "SELECT run_id, name, status, start_time, end_time, user, host, notebook FROM runs"
        ):

            def q(sql: str, run_id: str = run_id) -> list:
                return c.execute(sql, (run_id,)).fetchall()

            out[run_id] = {
                "run": (name, status, round(start * 1000), round(end * 1000), user, host, notebook),
                "params": dict(q("SELECT key, value FROM params WHERE run_id = ?")),
                "metrics": sorted(
                    (k, s, v, round(t * 1000))
                    for k, v, s, t in q(
                        "SELECT key, value, step, timestamp FROM metrics WHERE run_id = ?"
                    )
                ),
                "tags": {
                    k: v
                    for k, v in q("SELECT key, value FROM tags WHERE run_id = ?")
                    if k != "nbmlops.pulled_from"
                },
                "artifacts": dict(q("SELECT name, sha256 FROM artifacts WHERE run_id = ?")),
                "datasets": sorted(
                    q("SELECT role, name, dataset_id FROM run_datasets WHERE run_id = ?")
                ),
            }
    return out


def _train(experiment: str, name: str) -> str:
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    with nbm.start_run(name, experiment=experiment, tags={"team": "a"}) as run:
        nbm.log_params({"lr": 0.1, "layers": "[64, 64]", "prompt": "p" * 7000, "bad key!": 3})
        for step in range(3):
            nbm.log_metric("loss", 1.0 / (step + 1), step=step)
        nbm.log_metric("odd", float("nan"), step=0)
        nbm.log_metric("gain", float("inf"), step=1)
        nbm.log_dataset(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), "train")
        nbm.log_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "model")
    return run.run_id


def test_push_then_pull_into_an_empty_store_keeps_every_field(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    _train("trip", "a")
    _train("trip", "b")
    push(None, mlflow.url, experiment="trip")
    empty = tmp_path / "empty" / ".nbmlops"
    report = pull(Store(empty), mlflow.url, experiment="trip")
    assert (report.runs, report.created, report.own) == (2, 2, 0)
    assert _fields(empty / "nbmlops.db") == _fields(home / "nbmlops.db")
    # ours are not duplicated when this store pulls what it pushed
    again = pull(None, mlflow.url, experiment="trip")
    assert (again.created, again.own) == (0, 2)
    pulled = nbm.runs(store=empty, filter="params.lr = 0.1")
    assert len(pulled) == 2 and set(pulled["tags.nbmlops.pulled_from"].str.split("#").str[0]) == {
        mlflow.url
    }


def test_pulling_again_imports_only_new_runs_and_new_steps(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    other = Store(tmp_path / "other" / ".nbmlops")
    exp = mlflow.api("POST", "experiments/create", json={"name": "foreign"})["experiment_id"]
    info = mlflow.api(
        "POST", "runs/create", json={"experiment_id": exp, "run_name": "theirs", "start_time": 1000}
    )["run"]["info"]
    mlflow.api(
        "POST",
        "runs/log-batch",
        json={
            "run_id": info["run_id"],
            "params": [{"key": "depth", "value": "4"}],
            "metrics": [{"key": "acc", "value": 0.5, "step": 0, "timestamp": 2000}],
        },
    )
    first = pull(other, mlflow.url, experiment="foreign")
    assert (first.created, first.params, first.metrics) == (1, 1, 1)
    assert (pull(other, mlflow.url, experiment="foreign").updated, first.runs) == (0, 1)
    mlflow.api(
        "POST",
        "runs/log-batch",
        json={
            "run_id": info["run_id"],
            "metrics": [{"key": "acc", "value": 0.75, "step": 1, "timestamp": 3000}],
        },
    )
    mlflow.api(
        "POST",
        "runs/update",
        json={"run_id": info["run_id"], "status": "FINISHED", "end_time": 4000},
    )
    third = pull(other, mlflow.url, experiment="foreign")
    assert (third.updated, third.metrics) == (1, 1)
    [run] = nbm.runs(store=other).to_dict("records")
    assert (run["name"], run["status"], run["params.depth"], run["metrics.acc"]) == (
        "theirs",
        "finished",
        4,
        0.75,
    )
    # pushing the pulled run back to its server sends nothing
    back = push(other, mlflow.url)
    assert (back.created, back.updated) == (0, 0)


def test_an_unknown_experiment_is_named(home: Path, mlflow: MlflowServer):
    with pytest.raises(nbm.SyncError) as caught:
        pull(None, mlflow.url, experiment="nowhere")
    assert f"The MLflow server {mlflow.url} has no experiment 'nowhere'" in str(caught.value)


def test_nbmlops_pull_of_a_tracking_server_imports_its_runs(home: Path, mlflow: MlflowServer):
    from click.testing import CliRunner

    from nbmlops.cli import main

    source = home.parent / "elsewhere" / ".nbmlops"
    with nbm.start_run("shared", store=source) as run:
        run.log_metric("auc", 0.75)
    push(source, mlflow.url)
    result = CliRunner().invoke(main, ["--store", str(home), "pull", mlflow.url])
    assert result.exit_code == 0, result.output
    pulled = nbm.runs()
    assert pulled.loc[pulled["name"] == "shared", "metrics.auc"].tolist() == [0.75]
    model = CliRunner().invoke(main, ["pull", "m@champion"])
    assert model.exit_code == 2 and "Pulling a model needs --to FOLDER" in model.output


def test_mlflow_s_own_source_tags_and_train_context_come_back_as_they_were(
    shell, home: Path, mlflow: MlflowServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("NBMLOPS_NOTEBOOK", str(tmp_path / "train.ipynb"))
    cell = (
        "%%track fit --experiment context\nimport pandas as pd\n"
        "from sklearn.linear_model import LinearRegression\n"
        "X = pd.DataFrame({'x': [0.0, 1.0, 2.0]})\ny = pd.Series([0.0, 1.0, 2.0])\n"
        "model = LinearRegression().fit(X, y)\n"
    )
    assert shell.run_cell(cell, cell_id="c-1").success
    exp = mlflow.api("POST", "experiments/create", json={"name": "context"})["experiment_id"]
    job = mlflow.api("POST", "runs/create", json={"experiment_id": exp, "run_name": "job"})
    mlflow.api(  # MLflow's own run, from a job
        "POST",
        "runs/log-batch",
        json={
            "run_id": job["run"]["info"]["run_id"],
            "tags": [{"key": "mlflow.source.type", "value": "JOB"}],
        },
    )
    mlflow.api(
        "POST",
        "runs/update",
        json={"run_id": job["run"]["info"]["run_id"], "status": "FINISHED", "end_time": 2000},
    )
    push(None, mlflow.url, experiment="context")
    empty = tmp_path / "empty" / ".nbmlops"
    assert pull(Store(empty), mlflow.url, experiment="context").created == 2
    here, there = _fields(home / "nbmlops.db"), _fields(empty / "nbmlops.db")
    [run_id] = here
    assert there[run_id] == here[run_id]  # roles "output", no mlflow.source.* tags
    assert [r for r, _, _ in here[run_id]["datasets"]] == ["output", "output"]
    [job_id] = set(there) - set(here)
    assert there[job_id]["tags"] == {"mlflow.source.type": "JOB"}
    back = push(Store(empty), mlflow.url)
    assert (back.created, back.updated, back.tags, back.inputs) == (0, 0, 0, 0)
