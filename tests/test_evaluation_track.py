"""%%track and evaluation (issue #21 items 1-2, 6): the row hashes of a training cell's inputs,
the automatic evaluation of a model scored on other data, and the badge on the summary line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import nbmlops as nbm
from nbmlops import magics
from nbmlops.capture.scoring import Scored, scored_calls
from nbmlops.fingerprint import fingerprint, row_hashes

DATA = """
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
y = pd.Series(X["a"] * 3 + rng.normal(size=300), name="target")
X_train, y_train = X.iloc[:200], y.iloc[:200]
"""
TRAIN = """%%track fit
from sklearn.linear_model import LinearRegression
model = LinearRegression().fit(X_train, y_train)
"""
SCORE = """%%track score
from sklearn.metrics import mean_absolute_error
mae = mean_absolute_error(y_test, model.predict(X_test))
"""


@pytest.fixture
def tracked(shell: Any) -> Iterator[Any]:
    """The shell, its capture session evaluating with nbmlops.evaluation."""
    from nbmlops.evaluation.evaluate import evaluate

    assert magics._tracker is not None
    assert magics._tracker.capture.evaluator is evaluate
    shell.run_cell(DATA)
    yield shell


def _evaluations(run_id: str) -> list[dict[str, Any]]:
    return nbm.get_store().query_dicts(
        "SELECT run_id, model_run_id, status FROM evaluations WHERE run_id = ?", (run_id,)
    )


def test_a_training_cell_keeps_the_row_hashes_of_what_it_fits_on(shell):
    shell.run_cell(DATA)
    shell.run_cell(TRAIN)
    ns, store = shell.user_ns, nbm.get_store()
    for name in ("X_train", "y_train"):
        digest = fingerprint(ns[name]).digest
        (row,) = store.query_dicts(
            "SELECT n_rows, object FROM row_hashes WHERE dataset_id = ?", (digest,)
        )
        stored = np.frombuffer(store.objects.read_verified(row["object"]), dtype=np.uint64)
        assert row["n_rows"] == 200 and (stored == row_hashes(ns[name])).all()


def test_an_input_the_cell_changes_in_place_keeps_the_hashes_of_what_it_read(shell):
    shell.run_cell(DATA)
    read = shell.user_ns["X_train"].copy()
    shell.run_cell(TRAIN + "X_train.loc[:, 'a'] = 0.0\n")
    store = nbm.get_store()
    sql = "SELECT object FROM row_hashes WHERE dataset_id = ?"
    (row,) = store.query_dicts(sql, (fingerprint(read).digest,))
    stored = np.frombuffer(store.objects.read_verified(row["object"]), dtype=np.uint64)
    assert (stored == row_hashes(read)).all()


TRAIN_AND_SCORE = TRAIN + SCORE.partition("\n")[2] + "r2 = model.score(X_train, y_train)\n"
LEAKY = "X_test = pd.concat([X.iloc[200:], X_train.iloc[:18]])\ny_test = y.loc[X_test.index]"
CLEAN = "X_test, y_test = X.iloc[200:], y.iloc[200:]"


def test_a_leaky_split_is_flagged_on_the_summary_line_and_recorded(tracked, capsys):
    tracked.run_cell(LEAKY)
    tracked.run_cell(TRAIN_AND_SCORE)
    assert re.search(r" · mae=[\d.]+ \(leaky: 18 rows seen in training\) ", capsys.readouterr().out)
    run_id = nbm.runs().iloc[0]["run_id"]
    assert _evaluations(run_id) == [{"run_id": run_id, "model_run_id": run_id, "status": "leaky"}]


def test_a_clean_split_is_evaluated_unseen(tracked, capsys):
    tracked.run_cell(CLEAN)
    tracked.run_cell(TRAIN_AND_SCORE)  # its training score (r2 on X_train) is no evaluation
    assert "· evaluated: unseen" in capsys.readouterr().out
    assert [e["status"] for e in _evaluations(nbm.runs().iloc[0]["run_id"])] == ["unseen"]


def test_a_model_fitted_in_an_earlier_cell_is_checked_against_that_cells_data(tracked, capsys):
    tracked.run_cell(TRAIN)
    train_run = nbm.runs().iloc[0]["run_id"]
    tracked.run_cell(LEAKY)
    tracked.run_cell(SCORE)
    assert "(leaky: 18 rows seen in training)" in capsys.readouterr().out
    run_id = nbm.runs().iloc[0]["run_id"]
    assert _evaluations(run_id) == [
        {"run_id": run_id, "model_run_id": train_run, "status": "leaky"}
    ]


def test_a_cell_that_only_trains_evaluates_nothing(tracked, capsys):
    tracked.run_cell(TRAIN)
    assert "evaluated" not in capsys.readouterr().out
    assert nbm.get_store().query("SELECT count(*) FROM evaluations") == [(0,)]


def test_a_failing_evaluation_is_one_warning_and_the_cell_keeps_its_result(shell, capsys):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("evaluation store is gone")

    assert magics._tracker is not None
    magics._tracker.capture.evaluator = broken
    shell.run_cell(DATA + TRAIN.partition("\n")[2] + "X_test, y_test = X.iloc[200:], y.iloc[200:]")
    result = shell.run_cell(SCORE + "mae")
    captured = capsys.readouterr()
    assert result.result == shell.user_ns["mae"] and "mae=" in captured.out
    assert captured.err.count("nbmlops warning") == 1
    assert (
        "evaluation of model on X_test, y_test: RuntimeError: evaluation store is gone"
        in captured.err
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "m = f1_score(y_v, clf.predict(X_v))",
            [Scored("clf", "X_v", "y_v", 1, "m", ("f1_score",))],
        ),
        (
            "p = clf.predict_proba(X_v)[:, 1]\nauc = roc_auc_score(y_true=y_v, y_score=p)",
            [Scored("clf", "X_v", "y_v", 2, "auc", ("roc_auc_score",))],
        ),
        ("print(clf.score(X_v, y_v))", [Scored("clf", "X_v", "y_v", 1, None, None)]),
        ("clf.fit(X, y)\ntrain_acc = clf.score(X, y)", []),  # a training score
        ("clf = SVC().fit(X, y)\nprint(clf.score(X, y))", []),
        ("def f():\n    return f1_score(y_v, clf.predict(X_v))", []),  # not run by the cell
        ("f1_score(y_v, y_hat)", []),  # predictions of no model the cell names
    ],
)
def test_the_scores_a_cell_makes(source: str, expected: list[Scored]):
    assert list(scored_calls(source)) == expected


SPLIT_FIT_SCORE = """%%track split
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import train_test_split
X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=1)  # no chance drift
X_te = {test}
y_te = y.loc[X_te.index]
split_model = LinearRegression().fit(X_tr, y_tr)
mae = mean_absolute_error(y_te, split_model.predict(X_te))
"""


@pytest.mark.parametrize(
    ("test", "expected"),
    [("X_te", "unseen"), ("pd.concat([X_te, X_tr.iloc[:7]])", "leaky: 7 rows seen in training")],
)
def test_a_cell_that_splits_fits_and_scores_compares_with_the_rows_it_fitted_on(
    tracked, capsys, test, expected
):
    """Found in review: the training data was taken from the cell's inputs (the whole X the
    split came from), so every test row was 'seen' and a clean split was flagged leaky."""
    capsys.readouterr()
    assert tracked.run_cell(SPLIT_FIT_SCORE.format(test=test)).success
    line = capsys.readouterr().out
    assert expected in line, line
    (row,) = nbm.get_store().query_dicts("SELECT report FROM evaluations")
    assert '"name": "X_tr"' in row["report"] and '"training_rows": 225' in row["report"]


def test_training_data_pandas_cannot_hash_costs_no_warning(shell, capsys):
    """Found in review: every training cell on a frame with a column of lists warned."""
    shell.run_cell(DATA + "X_train = X_train.assign(tags=[[1, 2]] * len(X_train))")
    capsys.readouterr()
    shell.run_cell(TRAIN.replace("fit(X_train, y_train)", 'fit(X_train[["a", "b", "c"]], y_train)'))
    captured = capsys.readouterr()
    assert "row hashes" not in captured.out + captured.err
