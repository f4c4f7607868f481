"""nbmlops.evaluation (issue #21 items 1-3): metrics, the unseen check and the comparability
check, on a real store with real scikit-learn models and registered versions."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

import nbmlops as nbm
from nbmlops.drift import profile_dataset
from nbmlops.errors import EvaluationError
from nbmlops.evaluation.evaluate import evaluate, evaluations_of
from nbmlops.fingerprint import fingerprint, row_hashes
from nbmlops.store import evaluations as evaluation_sql


def frame(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({c: rng.normal(size=n) for c in "abcde"})
    X["a"] += shift
    y = (X["a"] * 2 - X["b"] + rng.normal(scale=0.1, size=n)).rename("target")
    return X, y


def keep_training_records(X: pd.DataFrame, y: pd.Series) -> None:
    """What %%track keeps of a training cell's inputs: drift profiles and row hashes."""
    store = nbm.get_store()
    for data in (X, y):
        profile_dataset(store, data)
        digest = fingerprint(data).digest
        evaluation_sql.save_row_hashes(store, digest, row_hashes(data).tobytes(), len(data))


@pytest.fixture
def wine(home: Path) -> tuple[LinearRegression, pd.DataFrame, pd.Series]:
    """wine/1: a LinearRegression trained on 1600 rows, its training data's records kept."""
    X, y = frame(1600, seed=1)
    model = LinearRegression().fit(X, y)
    with nbm.start_run() as run:
        nbm.log_dataset(X, "X_train")
        nbm.log_dataset(y, "y_train")
        nbm.log_model(model, "model")
    keep_training_records(X, y)
    nbm.register_model(run.run_id, "wine")
    return model, X, y


def test_a_clean_split_is_unseen_and_comparable(wine):
    X_test, y_test = frame(400, seed=2)
    result = evaluate(nbm.get_store(), "wine/1", X_test, y_test)
    assert (result.status, result.unseen, result.comparable) == ("unseen", True, True)
    assert result.overlap == {
        "rows": 0, "rows_without_target": 0, "positions": [], "n_rows": 400,
        "training_rows": 1600,
    }  # fmt: skip
    assert (result.badge, result.model, result.failing_columns) == ("unseen", "wine/1", [])
    assert [e.evaluation_id for e in evaluations_of(nbm.get_store(), "wine")] == [1]


def test_a_test_set_sharing_five_percent_of_training_rows_is_leaky_and_lists_them(wine):
    _, X_train, y_train = wine
    X_test, y_test = frame(400, seed=2)
    at = np.arange(0, 400, 20)  # 20 rows: 5%
    X_test.iloc[at], y_test.iloc[at] = X_train.iloc[:20].to_numpy(), y_train.iloc[:20].to_numpy()
    result = evaluate(nbm.get_store(), wine[0], X_test, y_test)
    assert (result.status, result.unseen, result.model) == ("leaky", False, "wine/1")
    assert result.overlap["rows"] == result.overlap["rows_without_target"] == 20
    assert result.overlap["positions"] == at.tolist()
    assert str(result).startswith("evaluation of wine/1 on ") and "(leaky: 20 rows seen" in str(
        result
    )


def test_a_shuffled_copy_of_the_training_set_is_entirely_leaky(wine):
    _, X_train, y_train = wine
    order = np.random.default_rng(3).permutation(len(X_train))
    shuffled = X_train.iloc[order][list("edcba")]  # rows and columns reordered
    result = evaluate(nbm.get_store(), "wine/1", shuffled, y_train.iloc[order])
    assert result.status == "leaky"
    assert result.overlap["rows"] == result.overlap["rows_without_target"] == 1600


def test_a_feature_only_duplicate_with_another_label_still_counts_as_seen(wine):
    X_train = wine[1]
    X_test, y_test = frame(400, seed=2)
    X_test.iloc[:3] = X_train.iloc[:3].to_numpy()  # the targets stay y_test's
    result = evaluate(nbm.get_store(), "wine/1", X_test, y_test)
    assert (result.status, result.overlap["rows"], result.overlap["rows_without_target"]) == (
        "leaky", 0, 3,
    )  # fmt: skip


def test_a_shifted_distribution_is_not_comparable_and_names_the_column(wine):
    X_test, y_test = frame(400, seed=2, shift=3.0)
    result = evaluate(nbm.get_store(), "wine/1", X_test, y_test)
    assert (result.status, result.unseen, result.comparable) == ("not_comparable", True, False)
    assert result.failing_columns[0] == "a"
    assert "a" in result.report["drift"]["drifted"]
    assert "(not comparable: failing: a" in str(result)


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        (lambda X: X.assign(f=1.0), ["f"]),
        (lambda X: X.assign(c=X["c"].astype("float32")), ["c"]),
    ],
    ids=["extra column", "dtype changed"],
)
def test_extra_and_retyped_columns_are_not_comparable(wine, change, failing):
    X_test, y_test = frame(400, seed=2)
    result = evaluate(nbm.get_store(), "wine/1", change(X_test), y_test)
    assert (result.status, result.failing_columns) == ("not_comparable", failing)


def test_a_missing_column_is_refused_naming_it(wine):
    X_test, y_test = frame(400, seed=2)
    with pytest.raises(EvaluationError, match=r"X lacks the column b the model was trained on"):
        evaluate(nbm.get_store(), "wine/1", X_test.drop(columns="b"), y_test)


def test_a_model_no_record_names_is_unchecked_unless_train_is_given(home: Path):
    X, y = frame(500, seed=1)
    model = LinearRegression().fit(X, y)
    result = evaluate(nbm.get_store(), model, X.iloc[:50], y.iloc[:50])
    assert (result.status, result.unseen, result.comparable) == ("unchecked", None, None)
    assert "training data unknown" in result.report["note"]
    given = evaluate(nbm.get_store(), model, X.iloc[:50], y.iloc[:50], train=(X, y))
    assert (given.status, given.overlap["rows"], given.report["training"]["source"]) == (
        "leaky", 50, "train=",
    )  # fmt: skip


def test_inside_a_run_the_model_it_logged_is_found_and_the_metrics_logged_on_it(home: Path):
    X, y = frame(600, seed=1)
    X_test, y_test = frame(200, seed=2)
    with nbm.start_run() as run:
        model = LinearRegression().fit(X, y)
        nbm.log_dataset(X, "X_train")
        nbm.log_model(model, "model")
        nbm.log_metric("mae", 9.0)
        result = evaluate(nbm.get_store(), model, X_test, y_test)
    assert (result.run_id, result.model_run_id, result.model) == (run.run_id, run.run_id, None)
    assert result.report["training"]["features"]["name"] == "X_train"  # read before it is written
    metrics = nbm.get_run(run.run_id).metrics
    assert metrics["mae"] == 9.0 and metrics["eval.mae"] == result.metrics["mae"]
    assert metrics["r2"] == result.metrics["r2"]


def test_a_model_a_finished_run_logged_is_found_by_its_bytes(home: Path):
    """No active run, no registered version: the artifact's sha256 names the training run."""
    X, y = frame(600, seed=1)
    with nbm.start_run() as run:
        model = LinearRegression().fit(X, y)
        nbm.log_dataset(X, "X_train")
        nbm.log_dataset(y, "y_train")
        nbm.log_model(model, "model")
    keep_training_records(X, y)
    result = evaluate(nbm.get_store(), model, X.iloc[:50], y.iloc[:50])
    assert (result.model_run_id, result.status) == (run.run_id, "leaky")
    mv = nbm.register_model(run.run_id, "found")
    again = evaluate(nbm.get_store(), model, *frame(200, seed=2))
    assert (again.model, again.status) == (mv.ref, "unseen")


def test_regression_metrics_equal_sklearns(wine):
    model = wine[0]
    X_test, y_test = frame(400, seed=2)
    predicted = model.predict(X_test)
    result = evaluate(nbm.get_store(), model, X_test, y_test)
    assert result.task == "regression"
    assert result.metrics == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y_test, predicted),
            "rmse": math.sqrt(skm.mean_squared_error(y_test, predicted)),
            "r2": skm.r2_score(y_test, predicted),
        }
    )


@pytest.mark.parametrize("classes", [2, 3])
def test_classification_metrics_equal_sklearns(home: Path, classes: int):
    X, _ = frame(600, seed=1)
    y = pd.Series(np.digitize(X["a"] + X["b"], [-0.5, 0.5][: classes - 1]), name="label")
    model = LogisticRegression().fit(X.iloc[:400], y.iloc[:400])
    X_test, y_test = X.iloc[400:], y.iloc[400:]
    predicted, proba = model.predict(X_test), model.predict_proba(X_test)
    result = evaluate(nbm.get_store(), model, X_test, y_test)
    average = "binary" if classes == 2 else "macro"
    auc = (
        skm.roc_auc_score(y_test, proba[:, 1])
        if classes == 2
        else skm.roc_auc_score(y_test, proba, multi_class="ovr")
    )
    assert (result.task, result.report["metrics"]["f1_average"].split()[0]) == (
        "classification", average,
    )  # fmt: skip
    assert result.metrics == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y_test, predicted),
            "f1": skm.f1_score(y_test, predicted, average=average),
            "roc_auc": auc,
            "log_loss": skm.log_loss(y_test, proba),
        }
    )
    matrix = result.report["metrics"]["confusion_matrix"]
    assert matrix["matrix"] == skm.confusion_matrix(y_test, predicted).tolist()


def test_metrics_pick_a_subset_or_add_a_callable(wine):
    X_test, y_test = frame(100, seed=2)

    def max_error(y_true, y_pred):
        return float(np.max(np.abs(y_true - y_pred)))

    result = evaluate(nbm.get_store(), "wine/1", X_test, y_test, metrics=["mae", max_error])
    assert list(result.metrics) == ["mae", "max_error"]
    with pytest.raises(EvaluationError, match=r"'auc' is not a standard regression metric"):
        evaluate(nbm.get_store(), "wine/1", X_test, y_test, metrics=["auc"])


@pytest.mark.parametrize(
    ("model", "X", "y", "message"),
    [
        (LinearRegression(), np.ones((3, 2)), [1, 2], r"X has 3 rows and y 2; give a target"),
        (object(), np.ones((3, 2)), [1, 2, 3], r"A object has no predict method"),
        ("not-a-ref!", np.ones((3, 2)), [1, 2, 3], r"Model name 'not-a-ref!' is not valid"),
    ],
    ids=["length mismatch", "no predict", "bad reference"],
)
def test_bad_input_is_refused_with_a_message_saying_what_to_do(home: Path, model, X, y, message):
    with pytest.raises(nbm.NbmlopsError, match=message):
        evaluate(nbm.get_store(), model, X, y)


def test_the_evaluation_is_recorded_as_a_second_connection_sees_it(wine, home: Path):
    X_test, y_test = frame(400, seed=2)
    result = evaluate(nbm.get_store(), "wine/1", X_test, y_test, source="cell 3")
    with sqlite3.connect(home / "nbmlops.db") as conn:
        row = conn.execute(
            "SELECT name, version, status, unseen, comparable, dataset_id, n_rows "
            "FROM evaluations WHERE evaluation_id = ?",
            (result.evaluation_id,),
        ).fetchone()
    assert row == ("wine", 1, "unseen", 1, 1, fingerprint(X_test).digest, 400)
    assert result.report["source"] == "cell 3"


def test_html_and_plot_show_the_badge_the_overlap_and_the_drift(wine):
    X_test, y_test = frame(400, seed=2, shift=3.0)
    result = evaluate(nbm.get_store(), "wine/1", X_test, y_test)
    assert "not comparable" in result._repr_html_() and ">mae<" in result._repr_html_()
    figure = result.plot()
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == [
        "rows of the evaluation set",
        "drifted columns: effect size | minimum",
    ]


def test_rows_repeated_in_training_with_other_targets_are_matched_with_any_of_them(home: Path):
    X = pd.DataFrame({"a": [1.0, 1.0, 1.0, 2.0] * 50, "b": [0.0, 0.0, 0.0, 5.0] * 50})
    y = pd.Series([10.0, 20.0, 30.0, 40.0] * 50)
    model = LinearRegression().fit(X, y)
    X_test = pd.DataFrame({"a": [1.0, 1.0, 3.0], "b": [0.0, 0.0, 1.0]})
    result = evaluate(nbm.get_store(), model, X_test, [30.0, 31.0, 1.0], train=(X, y))
    assert (result.overlap["rows"], result.overlap["rows_without_target"]) == (1, 2)
    assert result.overlap["positions"] == [0, 1]


def test_two_models_of_one_run_keep_their_own_evaluations(home: Path):
    """Found in review: a version took on every evaluation of its training run, so m/2 was
    promoted on m/1's clean evaluation and m/1 refused for m/2's leaky one."""
    from sklearn.tree import DecisionTreeRegressor

    X, y = frame(600, seed=1)
    with nbm.start_run() as run:
        linear = LinearRegression().fit(X, y)
        tree = DecisionTreeRegressor(random_state=0).fit(X, y)
        nbm.log_dataset(X, "X_train")
        nbm.log_dataset(y, "y_train")
        nbm.log_model(linear, "linear")
        nbm.log_model(tree, "tree")
    keep_training_records(X, y)
    evaluate(nbm.get_store(), linear, *frame(200, seed=2))  # before registration: by its bytes
    evaluate(nbm.get_store(), tree, X.iloc[:40], y.iloc[:40])
    m1 = nbm.register_model(run.run_id, "m", artifact="linear")
    m2 = nbm.register_model(run.run_id, "m", artifact="tree")
    assert [e.status for e in nbm.evaluations(m1.ref)] == ["unseen"]
    assert [e.status for e in nbm.evaluations(m2.ref)] == ["leaky"]


def test_a_target_sklearn_refuses_and_a_negative_overlap_say_so(wine):
    """Found in review: scikit-learn's ValueError came through untranslated."""
    model = wine[0]
    X_test, y_test = frame(50, seed=2)
    with pytest.raises(EvaluationError, match=r"could not be computed on y \(50 values\)"):
        evaluate(nbm.get_store(), model, X_test, y_test.where(y_test > 0))
    with pytest.raises(EvaluationError, match="max_overlap=-1"):
        evaluate(nbm.get_store(), model, X_test, y_test, max_overlap=-1)
