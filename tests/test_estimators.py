from __future__ import annotations

import json
import subprocess
import sys
import timeit

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, StackingClassifier, VotingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from nbmlops.capture.estimators import is_estimator, is_fitted, non_default_params

X = np.random.default_rng(0).normal(size=(30, 2))
Y = np.arange(30) % 2


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (LogisticRegression(), {}),
        (
            RandomForestClassifier(n_estimators=50, max_depth=3),
            {"RandomForestClassifier.n_estimators": 50, "RandomForestClassifier.max_depth": 3},
        ),
        (
            make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=0.5)),
            {"StandardScaler.with_mean": False, "LogisticRegression.C": 0.5},
        ),
        (
            GridSearchCV(SVC(), {"C": [1, 10]}, cv=3),
            {"GridSearchCV.param_grid": {"C": [1, 10]}, "GridSearchCV.cv": 3},
        ),
        (
            GridSearchCV(estimator=SVC(C=2), param_grid={"gamma": np.array([0.1, 1.0])}),
            {"GridSearchCV.param_grid": {"gamma": [0.1, 1.0]}, "SVC.C": 2},
        ),
        (
            VotingClassifier([("lr", LogisticRegression(C=2)), ("svc", SVC())], voting="soft"),
            {"VotingClassifier.voting": "soft", "LogisticRegression.C": 2},
        ),
    ],
)
def test_non_default_params(estimator, expected):
    found = non_default_params(estimator)
    assert found == expected
    assert json.loads(json.dumps(found)) == found


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (
            ColumnTransformer(
                [("num", StandardScaler(), ["a"]), ("num2", StandardScaler(with_mean=False), ["b"])]
            ),
            {"StandardScaler[num2].with_mean": False},
        ),
        (
            ColumnTransformer(
                [
                    ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a"]),
                    (
                        "cat",
                        make_pipeline(SimpleImputer(strategy="constant"), OneHotEncoder()),
                        [1],
                    ),
                ]
            ),
            {"SimpleImputer[cat__simpleimputer].strategy": "constant"},
        ),
        (
            StackingClassifier([("lr", LogisticRegression(C=2))], LogisticRegression(C=3)),
            {"LogisticRegression[lr].C": 2, "LogisticRegression[final_estimator].C": 3},
        ),
    ],
)
def test_same_class_twice_is_qualified_by_path(estimator, expected):
    assert non_default_params(estimator) == expected


KFOLD = "KFold(n_splits=4, random_state=None, shuffle=False)"


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (LogisticRegression(C=np.float64(1.0), max_iter=np.int64(100)), {}),
        (SimpleImputer(missing_values=np.nan), {}),  # NaN default equals NaN
        (LogisticRegression(class_weight={0: 1, 1: np.float64(2.5)}), {"0": 1, "1": 2.5}),
        (LogisticRegression(class_weight=("a", {"b"})), ["a", ["b"]]),
        (GridSearchCV(SVC(), {}, scoring=f1_score), "sklearn.metrics._classification.f1_score"),
        (GridSearchCV(SVC(), {}, cv=KFold(4)), KFOLD),
    ],
)
def test_values_are_json_able(estimator, expected):
    found = non_default_params(estimator)
    found.pop("GridSearchCV.param_grid", None)
    assert list(found.values()) == ([] if expected == {} else [expected])
    assert json.loads(json.dumps(found)) == found


def test_long_values_become_a_truncated_repr():
    found = non_default_params(LogisticRegression(C=np.arange(500.0)))
    assert found["LogisticRegression.C"].startswith("array([  0.,   1.,")
    assert len(found["LogisticRegression.C"]) == 200


@pytest.mark.parametrize("obj", [None, 3, "SVC", SVC, object(), {"C": 1}])
def test_not_estimators(obj):
    assert not is_estimator(obj)
    assert not is_fitted(obj)
    assert non_default_params(obj) == {}


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(),
        make_pipeline(StandardScaler(), SVC()),
        GridSearchCV(SVC(), {"C": [1, 2]}, cv=2),
    ],
)
def test_is_fitted_before_and_after_fit(estimator):
    assert is_estimator(estimator)
    assert not is_fitted(estimator)
    estimator.fit(X, Y)
    assert is_fitted(estimator)


def test_nothing_imported_without_sklearn():
    code = (
        "import sys; from nbmlops.capture import estimators as e; "
        "print(e.is_estimator(1), e.non_default_params(1), 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False {} False"


def test_speed_of_a_small_pipeline():
    pipe = make_pipeline(StandardScaler(with_mean=False), LogisticRegression(C=0.5))
    # ~25 us on the 2-core VM of benchmarks/README.md; the budget catches a 10x regression.
    per_call = min(timeit.repeat(lambda: non_default_params(pipe), number=1000, repeat=3)) / 1000
    assert per_call < 300e-6
