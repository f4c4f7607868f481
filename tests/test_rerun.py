"""Verified re-runs (issue #18 item 5): a run rebuilt from its recorded cells in a fresh kernel."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from click.testing import CliRunner

import nbmlops as nbm
from nbmlops.cli import main
from nbmlops.headless import execute_notebook
from nbmlops.reruns import RERUN_OF_TAG, find_differences, rerun
from nbmlops.store import Store, close_stores
from nbmlops.store import reviews as review_store

CELLS = [
    "%load_ext nbmlops\nimport numpy as np\nimport pandas as pd\nimport nbmlops as nbm\n"
    "from sklearn.ensemble import RandomForestClassifier\n"
    "from sklearn.metrics import accuracy_score",
    "df = pd.read_csv('data.csv')\nX, y = df[['a', 'b']], df['y']",
    "1 / 0",  # fails in the original kernel: skipped, and said so
    "%%track seeded\nmodel = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y)\n"
    "accuracy = accuracy_score(y, model.predict(X))",
    "%%track unseeded\nforest = RandomForestClassifier(n_estimators=5).fit(X, y)\n"
    "nbm.log_metric('noise', np.random.rand())",
    "%%track quiet\nsmall = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, y)",
]


def _data(rows: int = 60) -> str:
    lines = ["a,b,y", *(f"{i % 7},{(i * 3) % 5},{int(i % 7 > 3)}" for i in range(rows))]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Path, dict]]:
    """A notebook executed once headless: its store, its folder and its runs by name."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "data.csv").write_text(_data())
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(notebook, folder / "train.ipynb")
    execute_notebook(folder / "train.ipynb", store=folder / ".nbmlops", allow_errors=True)
    store = nbm.get_store(folder / ".nbmlops")
    runs = dict(store.query("SELECT name, run_id FROM runs"))
    yield store, folder, runs
    close_stores()


@pytest.mark.kernel
def test_a_seeded_run_is_reproduced_and_recorded(project: tuple[Store, Path, dict]):
    store, folder, runs = project
    result = rerun(store, runs["seeded"])
    assert result.outcome == "reproduced", result
    assert str(result).startswith(f"run {runs['seeded'][:6]} reproduced: 1 metric within 1e-06")
    assert result.inputs[0]["name"] in {"X", "y"} and not result.differences
    assert any("In [3]" in n and "skipped" in n for n in result.nondeterminism)
    assert nbm.get_run(result.new_run_id, store=store).tags[RERUN_OF_TAG] == runs["seeded"]
    with sqlite3.connect(folder / ".nbmlops" / "nbmlops.db") as db:
        outcome, sha = db.execute("SELECT outcome, notebook FROM reruns").fetchall()[-1]
    assert outcome == "reproduced"
    executed = json.loads(store.objects.read_verified(sha))
    assert "random_state=0" in "".join(executed["cells"][3]["source"])


@pytest.mark.kernel
def test_a_run_with_no_metrics_is_not_called_reproduced(project: tuple[Store, Path, dict]):
    store, folder, runs = project
    result = rerun(store, runs["quiet"])
    assert result.outcome == "unverified", result
    assert str(result).startswith(
        f"run {runs['quiet'][:6]} ran again, but nothing was verified: it recorded no metrics"
    )
    with sqlite3.connect(folder / ".nbmlops" / "nbmlops.db") as db:
        assert (
            db.execute("SELECT new_run_id FROM reruns WHERE outcome = 'unverified'").fetchone()[0]
            == result.new_run_id
        )


@pytest.mark.kernel
def test_unseeded_randomness_is_reported(project: tuple[Store, Path, dict]):
    store, _, runs = project
    result = rerun(store, runs["unseeded"])
    assert result.outcome == "differs"  # np.random.rand() is another number
    assert any(d.startswith("metric noise: recorded") for d in result.differences)
    text = "\n".join(result.nondeterminism)
    assert "RandomForestClassifier in `forest` has random_state=None" in text
    assert "numpy's global random state used (np.random.rand)" in text
    replayed = store.query("SELECT run_id, value FROM tags WHERE key = 'nbmlops.replayed_for'")
    # the seeded cell, replayed once for this re-run (other tests' re-runs replay it too)
    assert [value for _, value in replayed].count(runs["unseeded"]) == 1


@pytest.mark.kernel
def test_moved_data_differs_naming_the_input_and_the_cli_exits_1(
    project: tuple[Store, Path, dict],
):
    store, folder, runs = project
    data = folder / "data.csv"
    data.write_text(_data(rows=80))
    try:
        args = ["--store", str(store.home), "rerun", runs["seeded"][:6], "--tolerance", "1e-3"]
        result = CliRunner().invoke(main, args)
    finally:
        data.write_text(_data())
    assert result.exit_code == 1, result.output
    head = f"run {runs['seeded'][:6]} differs: input X: the data moved (recorded "
    assert result.output.startswith(head)
    assert "\ndifferences:\n  - input X: the data moved" in result.output
    newest = review_store.latest_reruns(store, [runs["seeded"]])[runs["seeded"]]
    assert newest["tolerance"] == 1e-3


@pytest.mark.kernel
def test_gone_data_could_not_run(project: tuple[Store, Path, dict]):
    store, folder, runs = project
    data = folder / "data.csv"
    data.unlink()
    try:
        result = rerun(store, runs["seeded"])
    finally:
        data.write_text(_data())
    assert result.outcome == "could_not_run"
    assert "In [2]" in result.reason and "df = pd.read_csv('data.csv')" in result.reason
    assert "raised FileNotFoundError" in result.reason and "data.csv" in result.reason
    assert str(result).startswith(f"run {runs['seeded'][:6]} could not run: In [2]")


def test_a_script_run_cannot_be_rerun(empty_store: Store):
    with nbm.start_run("script") as run:
        nbm.log_metric("m", 1.0)
    result = rerun(empty_store, run.run_id)
    assert result.outcome == "could_not_run"
    assert "was not made by a notebook cell" in result.reason


@pytest.mark.parametrize(
    ("recorded", "again", "tolerance", "differs"),
    [
        (0.5, 0.5 + 1e-7, 1e-6, False),  # absolute below 1
        (0.5, 0.5 + 1e-5, 1e-6, True),
        (1000.0, 1000.0005, 1e-6, False),  # relative above 1
        (1000.0, 1000.002, 1e-6, True),
        (1000.0, 1000.002, 1e-5, False),
        (None, None, 1e-6, False),  # NaN both times
        (None, 1.0, 1e-6, True),
    ],
)
def test_tolerance(recorded, again, tolerance, differs):
    found = find_differences({"m": recorded}, {"m": again}, [], tolerance)
    assert bool(found) is differs
    assert not found or found[0] == f"metric m: recorded {recorded!r}, re-run {again!r}"


def test_missing_and_new_metrics_and_unread_inputs_are_differences():
    inputs = [{"name": "df", "recorded": "a" * 32, "found": None}]
    assert find_differences({"old": 1.0}, {"new": 2.0}, inputs, 1e-6) == [
        f"input df (recorded {'a' * 12}) was not read by the re-run",
        "metric new = 2.0 is new in the re-run",
        "metric old = 1.0 was not logged by the re-run",
    ]
