from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import nbmlops as nbm
from nbmlops.errors import AmbiguousIdError, NbmlopsError, NoActiveRunError, RunNotFoundError
from nbmlops.store import Store


def test_params_keep_their_types(home: Path):
    values = {"lr": 0.01, "depth": 3, "neg": -2, "flag": True, "opt": "adam", "layers": [64, 32]}
    with nbm.start_run() as run:
        nbm.log_params(values)
    assert nbm.get_run(run.run_id).params == {**values, "layers": "[64, 32]"}


def test_metric_steps_count_up_and_latest_is_the_highest_step(home: Path):
    with nbm.start_run() as run:
        for loss in (0.9, 0.5, 0.3):
            nbm.log_metric("loss", loss)
        nbm.log_metric("acc", 0.7, step=10)
        nbm.log_metric("acc", 0.1, step=2)
    history = run.metric_history("loss")
    assert history[["step", "value"]].values.tolist() == [[0, 0.9], [1, 0.5], [2, 0.3]]
    assert run.metrics == {"acc": 0.7, "loss": 0.3}


def test_nan_metric_is_kept_as_nan(home: Path):
    with nbm.start_run() as run:
        nbm.log_metric("loss", float("nan"))
    assert math.isnan(run.metrics["loss"])


@pytest.mark.parametrize("value", ["0.5", None, [1.0], True])
def test_non_numeric_metric_is_refused_with_its_name(home: Path, value: object):
    with nbm.start_run(), pytest.raises(TypeError, match="Metric 'auc' must be a real number"):
        nbm.log_metric("auc", value)


def test_logging_without_a_run_says_what_to_do(home: Path):
    with pytest.raises(NoActiveRunError, match=r"log_metric needs an active run.*start_run"):
        nbm.log_metric("auc", 1.0)


def test_failure_inside_run_is_recorded_and_reraised(home: Path):
    with pytest.raises(ZeroDivisionError), nbm.start_run() as run:
        nbm.log_metric("before", 1.0)
        1 / 0  # noqa: B018
    record = nbm.get_run(run.run_id)
    assert record.status == "failed"
    assert record.metrics == {"before": 1.0}
    assert record.info["error_type"] == "ZeroDivisionError"
    assert "1 / 0" in record.info["traceback"]


def test_keyboard_interrupt_marks_run_interrupted(home: Path):
    with pytest.raises(KeyboardInterrupt), nbm.start_run() as run:
        raise KeyboardInterrupt
    assert nbm.get_run(run.run_id).status == "interrupted"


def test_logging_to_an_ended_run_is_refused(home: Path):
    with nbm.start_run() as run:
        pass
    with pytest.raises(NbmlopsError, match="has ended"):
        run.log_metric("late", 1.0)


def test_runs_frame_has_the_documented_columns(home: Path):
    with nbm.start_run("first", experiment="e1", tags={"team": "a"}):
        nbm.log_params({"lr": 0.1})
        nbm.log_metric("auc", 0.8)
    with nbm.start_run("second", experiment="e2"):
        nbm.log_metric("auc", 0.9)
    frame = nbm.runs()
    expected = ["run_id", "experiment", "name", "status", "start_time", "end_time", "duration_s"]
    assert list(frame.columns[:7]) == expected
    assert {"params.lr", "metrics.auc", "tags.team"} <= set(frame.columns)
    assert frame["name"].tolist() == ["second", "first"]
    assert frame["metrics.auc"].tolist() == [0.9, 0.8]
    assert nbm.runs(experiment="e1")["name"].tolist() == ["first"]


def test_runs_of_an_empty_store_is_an_empty_frame(empty_store: Store):
    frame = nbm.runs()
    assert frame.empty and "run_id" in frame.columns


def test_get_run_accepts_a_unique_prefix(home: Path):
    with nbm.start_run() as run:
        pass
    assert nbm.get_run(run.run_id[:6]).run_id == run.run_id


def test_get_run_unknown_id_names_the_store(empty_store: Store):
    with pytest.raises(RunNotFoundError, match=r"Run 'nope' not found in store .*nbmlops\.db"):
        nbm.get_run("nope")


def test_get_run_ambiguous_prefix_lists_matches(home: Path):
    for _ in range(40):
        with nbm.start_run():
            pass
    ids = nbm.runs()["run_id"].tolist()
    shared = next(a[0] for a in ids if sum(b[0] == a[0] for b in ids) > 1)
    with pytest.raises(AmbiguousIdError, match=f"prefix '{shared}' matches"):
        nbm.get_run(shared)


def test_artifact_figure_and_model_are_stored_by_hash(home: Path, tmp_path: Path):
    import hashlib

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.linear_model import LinearRegression

    (tmp_path / "notes.txt").write_text("hello")
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with nbm.start_run() as run:
        nbm.log_artifact(tmp_path / "notes.txt")
        nbm.log_figure(fig, "curve")
        nbm.log_model(LinearRegression().fit([[0], [1]], [0, 1]), "model")
    stored = {a["name"]: a for a in run.artifacts}
    assert set(stored) == {"notes.txt", "curve.png", "model"}
    for artifact in stored.values():
        blob = (home / "objects" / artifact["sha256"][:2] / artifact["sha256"][2:]).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == artifact["sha256"]
    assert stored["curve.png"]["media_type"] == "image/png"
    assert stored["model"]["meta"]["libraries"]["scikit-learn"]


def test_dataset_fingerprints_link_to_the_run(home: Path, tmp_path: Path):
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2, 3]})
    (tmp_path / "data.csv").write_text("x\n1\n2\n")
    with nbm.start_run() as run:
        digest = nbm.log_dataset(frame, name="train")
        nbm.log_dataset(tmp_path / "data.csv")
        nbm.log_dataset(frame.assign(y=1), name="pred", role="output")
    datasets = {d["name"]: d for d in run.datasets}
    assert datasets["train"]["dataset_id"] == digest and len(digest) == 32
    assert datasets["train"]["schema"] == {"x": "int64"}
    assert datasets["pred"]["role"] == "output"
    assert datasets[str(tmp_path / "data.csv")]["kind"] == "file"


def test_environment_records_python_packages_and_git(home: Path, tmp_path: Path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with nbm.start_run() as run:
        pass
    env = run.environment
    assert env is not None
    assert env["python"] == sys.version.split()[0]
    assert "pandas" in env["packages"]
    assert env["git_dirty"] in (0, 1)


def _run_script(tmp_path: Path, home: Path, code: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    env = {"NBMLOPS_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )


def test_run_of_a_killed_process_shows_as_interrupted(home: Path, tmp_path: Path):
    done = _run_script(
        tmp_path,
        home,
        """
        import os, nbmlops as nbm
        run = nbm.start_run("doomed")
        print(run.run_id, flush=True)
        os._exit(3)
        """,
    )
    assert done.returncode == 3
    assert nbm.get_run(done.stdout.strip()).status == "interrupted"


@pytest.mark.parametrize(
    ("tail", "status"), [("", "finished"), ("raise ValueError('boom')", "failed")]
)
def test_script_exiting_with_an_open_run_ends_it(home: Path, tmp_path: Path, tail: str, status):
    done = _run_script(
        tmp_path,
        home,
        f"""
        import nbmlops as nbm
        run = nbm.start_run("script")
        nbm.log_metric("m", 1.0)
        print(run.run_id, flush=True)
        {tail}
        """,
    )
    run = nbm.get_run(done.stdout.split()[0])
    assert (run.status, run.metrics) == (status, {"m": 1.0})
    assert run.info["notebook"] == str(tmp_path / "script.py")


def test_buffered_metrics_survive_a_failing_write(home: Path, db: sqlite3.Connection):
    run = nbm.start_run()
    nbm.log_metric("m", 1.0)
    blocker = sqlite3.connect(home / "nbmlops.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    run.store.busy_timeout = 0.1
    run.store.close()
    with pytest.raises(NbmlopsError, match="locked"):
        run.flush()
    blocker.execute("ROLLBACK")
    run.end()
    assert db.execute("SELECT key, value FROM metrics").fetchall() == [("m", 1.0)]


def test_a_run_is_written_in_one_transaction_at_start_and_one_at_end(home: Path):
    store = nbm.get_store()
    statements: list[str] = []
    store.connection().set_trace_callback(statements.append)
    with nbm.start_run("once", experiment="new", tags={"k": "v"}, store=store):
        nbm.log_params({"a": 1, "b": "x"})
        nbm.log_metric("m", 0.5)
    store.connection().set_trace_callback(None)
    assert [s for s in statements if s.startswith(("BEGIN", "SAVEPOINT"))] == [
        "BEGIN IMMEDIATE",
        "SAVEPOINT nbmlops_1",  # the experiment, created inside the start's transaction
        "BEGIN IMMEDIATE",
    ]
