"""Push to a real MLflow tracking server (issue #19 items 1 and 6), read back over its REST API."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

import nbmlops as nbm
from mlflow_server import MlflowServer, Outage, running_server
from nbmlops.cli import main
from nbmlops.errors import SyncError
from nbmlops.store import Store
from nbmlops.store.runs import write_run_data
from nbmlops.store.sync import run_states
from nbmlops.sync import mlflow_rest
from nbmlops.sync.push import push, source_type


@pytest.fixture(scope="session")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with running_server(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


def _train(experiment: str, name: str = "fit", steps: int = 3) -> str:
    import pandas as pd

    with nbm.start_run(name, experiment=experiment, tags={"team": "a"}) as run:
        nbm.log_params({"lr": 0.1, "layers": "[64, 64]"})
        for step in range(steps):
            nbm.log_metric("loss", 1.0 / (step + 1), step=step)
        nbm.log_metric("odd", float("nan"), step=0)
        nbm.log_dataset(pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1, 2, 3]}), "train")
    return run.run_id


def _remote_runs(mlflow: MlflowServer, experiment: str, run_id: str) -> list[dict]:
    exp = mlflow.api("GET", "experiments/get-by-name", params={"experiment_name": experiment})
    found = mlflow.api(
        "POST",
        "runs/search",
        json={
            "experiment_ids": [exp["experiment"]["experiment_id"]],
            "filter": f"tags.`nbmlops.run_id` = '{run_id}'",
        },
    )
    return found.get("runs", [])


def _history(mlflow: MlflowServer, remote_id: str, key: str) -> list[tuple]:
    points = mlflow.api(
        "GET", "metrics/get-history", params={"run_id": remote_id, "metric_key": key}
    )["metrics"]
    return sorted((p["step"], p["value"], p["timestamp"]) for p in points)


def test_a_run_is_pushed_field_by_field(home: Path, mlflow: MlflowServer):
    run_id = _train("fields")
    report = push(None, mlflow.url.replace("http://", "mlflow://"))
    [remote] = _remote_runs(mlflow, "fields", run_id)
    info, data = remote["info"], remote["data"]
    local = sqlite3.connect(home / "nbmlops.db")
    start, end = local.execute("SELECT start_time, end_time FROM runs").fetchone()
    assert (info["run_name"], info["status"]) == ("fit", "FINISHED")
    assert (info["start_time"], info["end_time"]) == (round(start * 1000), round(end * 1000))
    assert {p["key"]: p["value"] for p in data["params"]} == {"lr": "0.1", "layers": "[64, 64]"}
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["nbmlops.run_id"] == run_id and tags["team"] == "a"
    history = local.execute("SELECT step, value, timestamp FROM metrics WHERE key = 'loss'")
    assert _history(mlflow, info["run_id"], "loss") == sorted(
        (s, v, round(t * 1000)) for s, v, t in history
    )
    assert _history(mlflow, info["run_id"], "odd")[0][1] == "NaN"
    [dataset] = remote["inputs"]["dataset_inputs"]
    assert dataset["dataset"]["name"] == "train"
    assert (
        dataset["dataset"]["digest"]
        == local.execute("SELECT dataset_id FROM datasets").fetchone()[0]
    )
    assert json.loads(dataset["dataset"]["profile"])["num_rows"] == 3
    assert (report.created, report.metrics, report.notes) == (1, 4, [])


def test_pushing_again_sends_nothing_then_only_new_steps(home: Path, mlflow: MlflowServer):
    run_id = _train("again")
    push(None, mlflow.url)
    second = push(None, mlflow.url)
    assert (second.runs, second.created, second.updated, second.metrics) == (1, 0, 0, 0)
    store = nbm.get_store()
    assert run_states(store, mlflow.url) == ([run_id], [])  # not one record of the run read
    write_run_data(
        store, run_id, metrics=[("loss", 0.2, 3, 2e9, "api"), ("loss", 0.1, 4, 2e9 + 1, "api")]
    )
    [changed] = run_states(store, mlflow.url)[1]
    assert changed.row["run_id"] == run_id
    third = push(None, mlflow.url)
    assert (third.updated, third.metrics) == (1, 2)
    assert run_states(store, mlflow.url) == ([run_id], [])
    [remote] = _remote_runs(mlflow, "again", run_id)
    assert [s for s, _, _ in _history(mlflow, remote["info"]["run_id"], "loss")] == [0, 1, 2, 3, 4]


def test_runs_pushed_before_revisions_are_compared_once_then_skipped(
    home: Path, mlflow: MlflowServer
):
    # A store pushed before migration 0017 holds no revision in sync_runs: its runs are compared
    # with what the server holds once, found the same, and not read again.
    kept = _train("old-store")
    _train("old-store", "other")
    push(None, mlflow.url)
    store = nbm.get_store()
    with store.atomic() as conn:
        conn.execute("UPDATE sync_runs SET revision = NULL")
    assert len(run_states(store, mlflow.url)[1]) == 2
    first = push(None, mlflow.url)
    assert (first.runs, first.updated, first.metrics) == (2, 0, 0)
    assert run_states(store, mlflow.url)[1] == []
    assert kept in {r[0] for r in store.query("SELECT run_id FROM sync_runs WHERE revision > 0")}


def test_two_stores_pushing_the_same_run_make_one_mlflow_run(
    home: Path, mlflow: MlflowServer, tmp_path: Path
):
    run_id = _train("shared")
    nbm.get_store().close()
    shutil.copytree(home, tmp_path / "other" / ".nbmlops")
    push(None, mlflow.url)
    other = push(Store(tmp_path / "other" / ".nbmlops"), mlflow.url)
    [remote] = _remote_runs(mlflow, "shared", run_id)
    assert other.created == 0  # found by its nbmlops.run_id tag; MLflow ignores repeated points
    assert [s for s, _, _ in _history(mlflow, remote["info"]["run_id"], "loss")] == [0, 1, 2]


def test_a_long_param_is_sent_cut_and_kept_whole_as_an_artifact(home: Path, mlflow: MlflowServer):
    text = "x" * 7000
    with nbm.start_run("long", experiment="long") as run:
        nbm.log_param("prompt", text)
    report = push(None, mlflow.url)
    [remote] = _remote_runs(mlflow, "long", run.run_id)
    param = {p["key"]: p["value"] for p in remote["data"]["params"]}["prompt"]
    assert len(param) <= 6000 and param.endswith(
        "the whole value is the artifact params/prompt.txt]"
    )
    tags = {t["key"]: t["value"] for t in remote["data"]["tags"]}
    assert tags["nbmlops.long_param.prompt"] == "params/prompt.txt"
    root = remote["info"]["artifact_uri"].split(":", 1)[1].strip("/")
    whole = httpx.get(f"{mlflow.url}/api/2.0/mlflow-artifacts/artifacts/{root}/params/prompt.txt")
    assert whole.text == text
    assert report.notes == [
        f"run {run.run_id} (long): param 'prompt' has 7,000 characters, over MLflow's 6,000: sent "
        "cut, whole in the artifact params/prompt.txt"
    ]


def test_a_registered_model_its_alias_and_history(home: Path, mlflow: MlflowServer):
    from sklearn.linear_model import LinearRegression

    with nbm.start_run("model", experiment="models") as run:
        nbm.log_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "model")
    version = nbm.register_model(run.run_id, "pushed", "a line")
    nbm.set_alias("pushed", "champion", version.version)
    report = push(None, mlflow.url)
    model = mlflow.api("GET", "registered-models/get", params={"name": "pushed"})[
        "registered_model"
    ]
    assert model["description"] == "a line"
    assert {a["alias"]: a["version"] for a in model["aliases"]} == {"champion": "1"}
    remote = mlflow.api("GET", "model-versions/get", params={"name": "pushed", "version": "1"})
    tags = {t["key"]: t["value"] for t in remote["model_version"]["tags"]}
    assert tags["nbmlops.sha256"] == version.sha256
    assert [
        json.loads(v)["kind"] for k, v in sorted(tags.items()) if k.startswith("nbmlops.event.")
    ] == ["registered", "alias_set"]
    assert (report.versions, report.events) == (1, 2)
    assert push(None, mlflow.url).versions == 0


def test_a_push_of_one_experiment_sends_its_models_new_versions_and_events(
    home: Path, mlflow: MlflowServer
):
    # Registering a version or moving an alias writes no run: a filtered push must still send
    # the models of the runs it selects, changed or not.
    from sklearn.linear_model import LinearRegression

    with nbm.start_run("model", experiment="selected") as run:
        nbm.log_model(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "model")
    push(None, mlflow.url, experiment="selected")
    version = nbm.register_model(run.run_id, "filtered")
    second = push(None, mlflow.url, experiment="selected")
    nbm.set_alias("filtered", "champion", version.version)
    third = push(None, mlflow.url, experiment="selected")
    assert (second.updated, second.versions, second.events) == (0, 1, 1)
    assert (third.versions, third.events) == (0, 1)


def test_a_server_that_goes_away_mid_push_loses_nothing_and_the_push_resumes(
    home: Path, mlflow: MlflowServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(mlflow_rest, "BACKOFF_S", 0.01)
    run_ids = [_train("outage", f"r{i}") for i in range(3)]
    outage = Outage(int(mlflow.url.rsplit(":", 1)[1]))
    with pytest.raises(SyncError) as caught:
        push(None, outage.url, progress=lambda done, total: outage.cut())
    assert f"The MLflow server {outage.url} did not answer POST" in str(caught.value)
    assert "push again once it is back" in str(caught.value)
    with sqlite3.connect(home / "nbmlops.db") as db:
        assert db.execute("SELECT count(*) FROM sync_runs WHERE status IS NOT NULL").fetchone() == (
            1,
        )
    outage.restore()
    resumed = push(None, outage.url)
    assert (resumed.created, resumed.updated) == (2, 2)
    assert [len(_remote_runs(mlflow, "outage", r)) for r in run_ids] == [1, 1, 1]


def test_push_command_prints_a_summary(home: Path, mlflow: MlflowServer):
    _train("cli")
    result = CliRunner().invoke(
        main, ["push", mlflow.url, "--experiment", "cli", "--filter", "metrics.loss < 1"]
    )
    assert result.exit_code == 0, result.output
    assert f"Pushed to {mlflow.url} in" in result.output
    assert "1 run (1 created, 1 with something new), 2 params" in result.output
    assert "4 metric points" in result.output


def test_infinite_points_and_rejected_keys_are_kept_as_artifacts(home: Path, mlflow: MlflowServer):
    with nbm.start_run("odd", experiment="odd") as run:
        nbm.log_param("bad key!", 1)
        nbm.log_metric("gain", float("inf"), step=0)
    report = push(None, mlflow.url)
    [remote] = _remote_runs(mlflow, "odd", run.run_id)
    root = remote["info"]["artifact_uri"].split(":", 1)[1].strip("/")
    artifact = f"{mlflow.url}/api/2.0/mlflow-artifacts/artifacts/{root}"
    assert httpx.get(f"{artifact}/nbmlops/rejected_keys.json").json() == {
        "params": {"bad key!": "1"}
    }
    assert httpx.get(f"{artifact}/metrics/gain.infinite.json").json()[0]["value"] == "inf"
    assert _history(mlflow, remote["info"]["run_id"], "gain")[0][1] == 1.7976931348623157e308
    assert [n.split(": ", 1)[1] for n in report.notes] == [
        "param 'bad key!': a key MLflow rejects, kept in nbmlops/rejected_keys.json",
        "metric 'gain' has +/-inf points: MLflow stores them as +/-1.8e308; the exact points are "
        "the artifact metrics/gain.infinite.json",
    ]


def test_a_tracked_cell_pushes_its_source_and_identity(shell, home: Path, mlflow: MlflowServer):
    assert shell.run_cell("%%track cellpush\nalpha = 0.5\n", cell_id="c-1").success
    [run] = nbm.runs().to_dict("records")
    push(None, mlflow.url)
    [remote] = _remote_runs(mlflow, run["experiment"], run["run_id"])
    tags = {t["key"]: t["value"] for t in remote["data"]["tags"]}
    source, version = (
        sqlite3.connect(home / "nbmlops.db")
        .execute("SELECT source, source_hash FROM cell_versions")
        .fetchone()
    )
    assert (tags["nbmlops.cell_id"], tags["nbmlops.cell_version"]) == ("c-1", version)
    root = remote["info"]["artifact_uri"].split(":", 1)[1].strip("/")
    cell = httpx.get(f"{mlflow.url}/api/2.0/mlflow-artifacts/artifacts/{root}/nbmlops/cell.py")
    assert cell.text == source and "alpha = 0.5" in source


TRAIN_CELL = """%%track fit
import pandas as pd
from sklearn.linear_model import LinearRegression
X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
y = pd.Series([0.0, 1.0, 2.0], name="y")
scale = X * 2
model = LinearRegression().fit(X, y)
"""


@pytest.fixture
def git_head(home: Path) -> str:
    """The store's folder is a git work tree on branch main with one commit: its id. Made
    before the shell, whose %load_ext reads (and caches) the folder's git state."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=home.parent, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q", "-b", "main")
    (home.parent / "README").write_text("x\n")
    git("add", "README")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    return git("rev-parse", "HEAD")


def test_mlflow_reads_the_source_git_state_and_training_data_as_its_own(
    git_head: str, shell, home: Path, mlflow: MlflowServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("NBMLOPS_NOTEBOOK", str(home.parent / "train.ipynb"))
    assert shell.run_cell(TRAIN_CELL, cell_id="c-1").success
    [run] = nbm.runs().to_dict("records")
    push(None, mlflow.url)
    [remote] = _remote_runs(mlflow, run["experiment"], run["run_id"])
    tags = {t["key"]: t["value"] for t in remote["data"]["tags"]}
    assert {k: v for k, v in tags.items() if k.startswith("mlflow.source.")} == {
        "mlflow.source.name": str(home.parent / "train.ipynb"),
        "mlflow.source.type": "NOTEBOOK",
        "mlflow.source.git.commit": git_head,
        "mlflow.source.git.branch": "main",
    }
    assert "nbmlops.git_branch" not in tags
    contexts = {
        d["dataset"]["name"]: {t["key"]: t["value"] for t in d["tags"]}
        for d in remote["inputs"]["dataset_inputs"]
    }
    assert contexts == {  # X and y: what the model was fitted on; scale: only made
        "X": {"mlflow.data.context": "train", "nbmlops.role": "output"},
        "y": {"mlflow.data.context": "train", "nbmlops.role": "output"},
        "scale": {"mlflow.data.context": "output", "nbmlops.role": "output"},
    }
    assert (push(None, mlflow.url).updated, source_type("script.py")) == (0, "LOCAL")
