"""XGBoost, LightGBM and statsmodels under %%track with no logging code (issue #20): each API
in a real IPython shell, the same predictions with and without %%track, boosters registered in
their own portable format and loaded without pickle, one XGBoost model served over REST."""

from __future__ import annotations

import json
import pickle

import httpx
import numpy as np
import pytest

import nbmlops as nbm

SETUP = """
import numpy as np, pandas as pd
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(400, 4)), columns=["a", "b", "c", "d"])
y = (X["a"] + 0.5 * X["b"] + rng.normal(scale=0.5, size=400) > 0).astype(int)
X_train, y_train, X_val, y_val = X[:300], y[:300], X[300:], y[300:]
"""

CELLS = {
    "xgb_sklearn": """
import xgboost as xgb
model = xgb.XGBClassifier(n_estimators=30, max_depth=3, early_stopping_rounds=5)
model.fit(X_train, y_train, eval_set=[(X_val, y_val)], verbose=False)
pred = model.predict_proba(X_val)[:, 1]
""",
    "lgb_sklearn": """
import lightgbm as lgb
model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1)
model.fit(X_train, y_train, eval_set=[(X_val, y_val)])
pred = model.predict_proba(X_val)[:, 1]
""",
    "xgb_native": """
import xgboost as xgb
params = {"objective": "binary:logistic", "max_depth": 3, "eta": 0.3, "eval_metric": "logloss"}
dtrain, dval = xgb.DMatrix(X_train, y_train), xgb.DMatrix(X_val, y_val)
booster = xgb.train(params, dtrain, num_boost_round=25, evals=[(dval, "val")], verbose_eval=False)
pred = booster.predict(dval)
""",
    "lgb_native": """
import lightgbm as lgb
params = {"objective": "binary", "num_leaves": 7, "verbose": -1}
train_set = lgb.Dataset(X_train, y_train)
val_set = lgb.Dataset(X_val, y_val, reference=train_set)
booster = lgb.train(
    params, train_set, num_boost_round=15, valid_sets=[val_set], valid_names=["val"]
)
pred = booster.predict(X_val)
""",
}


def _run_cell(shell, source: str, track: bool) -> np.ndarray:
    result = shell.run_cell(("%%track\n" if track else "") + source)
    assert result.success, result.error_in_exec
    return np.asarray(shell.user_ns["pred"])


@pytest.mark.parametrize("api", CELLS)
def test_same_predictions_with_and_without_track(shell, api: str):
    shell.run_cell(SETUP)
    untracked = _run_cell(shell, CELLS[api], track=False)
    tracked = _run_cell(shell, CELLS[api], track=True)
    np.testing.assert_array_equal(tracked, untracked)
    assert nbm.runs()["status"].tolist() == ["finished"]


@pytest.mark.parametrize(
    ("api", "params", "curve", "steps", "model", "fmt"),
    [
        ("xgb_sklearn", {"XGBClassifier.max_depth": 3}, "validation_0-logloss", None,
         "xgboost.sklearn.XGBClassifier", "xgboost-ubj"),
        ("lgb_sklearn", {"LGBMClassifier.num_leaves": 7}, "valid_0-binary_logloss", 20,
         "lightgbm.sklearn.LGBMClassifier", "pickle"),
        ("xgb_native", {"xgboost.train.max_depth": 3, "xgboost.train.num_boost_round": 25},
         "val-logloss", 25, "xgboost.core.Booster", "xgboost-ubj"),
        ("lgb_native", {"lightgbm.train.num_leaves": 7, "lightgbm.train.num_boost_round": 15},
         "val-binary_logloss", 15, "lightgbm.basic.Booster", "lightgbm-text"),
    ],
)  # fmt: skip
def test_each_api_records_params_curves_model_and_importances(
    shell, api, params, curve, steps, model, fmt
):
    shell.run_cell(SETUP)
    _run_cell(shell, CELLS[api], track=True)
    run = nbm.get_run(nbm.runs()["run_id"][0])
    assert params.items() <= run.params.items()
    assert "params" not in run.params  # the native params dict is logged key by key
    history = run.metric_history(curve)
    assert history["step"].tolist() == list(range(steps or len(history)))
    models = [a for a in run.artifacts if a["kind"] == "model"]
    assert [(m["meta"]["class"], m["meta"]["format"]) for m in models] == [(model, fmt)]
    importances = [a["name"] for a in run.artifacts if a["name"].endswith("importances.json")]
    assert importances == [f"{models[0]['name']}.feature_importances.json"]


def test_wrapper_params_are_what_the_user_set_and_best_iteration_is_recorded(shell):
    shell.run_cell(SETUP)
    _run_cell(shell, CELLS["xgb_sklearn"], track=True)
    run = nbm.get_run(nbm.runs()["run_id"][0])
    assert run.params == {  # XGBoost's defaults are None: only what the cell set
        "XGBClassifier.early_stopping_rounds": 5,
        "XGBClassifier.max_depth": 3,
        "XGBClassifier.n_estimators": 30,
    }
    assert run.metrics["best_iteration"] == shell.user_ns["model"].best_iteration
    assert len(run.metric_history("validation_0-logloss")) == run.metrics["best_iteration"] + 6


def test_native_train_is_restored_after_the_cell(shell):
    import xgboost

    original = xgboost.train
    shell.run_cell(SETUP)
    _run_cell(shell, CELLS["xgb_native"], track=True)
    assert xgboost.train is original


@pytest.mark.parametrize(
    ("api", "fmt"),
    [
        ("xgb_native", "xgboost-ubj"),
        ("lgb_native", "lightgbm-text"),
        ("xgb_sklearn", "xgboost-ubj"),
    ],
)
def test_portable_formats_round_trip_through_the_registry_without_pickle(
    shell, monkeypatch, api, fmt
):
    shell.run_cell(SETUP)
    expected = _run_cell(shell, CELLS[api], track=True)
    version = nbm.register_model(nbm.runs()["run_id"][0], "boost")
    assert version.format == fmt
    assert version.reference_profile_id is not None  # drift has its training data's profile

    def refuse(*_args, **_kwargs):
        raise AssertionError("a portable model was unpickled")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = nbm.load_model("boost", allow_pickle=False)
    assert type(loaded) is type(shell.user_ns["model" if api == "xgb_sklearn" else "booster"])
    features = shell.user_ns["X_val"]
    if api == "xgb_sklearn":
        got = loaded.predict_proba(features)[:, 1]
    elif api == "xgb_native":
        got = loaded.predict(shell.user_ns["dval"])
    else:
        got = loaded.predict(features)
    np.testing.assert_array_equal(got, expected)


def test_statsmodels_results_are_metrics_and_a_summary(shell):
    shell.run_cell(SETUP)
    shell.run_cell(
        "%%track\nimport statsmodels.formula.api as smf\n"
        "data = X.assign(y=y)\nres = smf.ols('y ~ a + b', data).fit()\n"
    )
    res = shell.user_ns["res"]
    run = nbm.get_run(nbm.runs()["run_id"][0])
    assert run.metrics["coef.a"] == pytest.approx(res.params["a"])
    assert run.metrics["coef.Intercept"] == pytest.approx(res.params["Intercept"])
    for key in ("aic", "bic", "rsquared", "rsquared_adj"):
        assert run.metrics[key] == pytest.approx(getattr(res, key))
    summary = next(a for a in run.artifacts if a["name"] == "res.summary.txt")
    text = run.store.objects.read_verified(summary["sha256"]).decode()
    assert "OLS Regression Results" in text and "R-squared" in text


@pytest.mark.parametrize("api", ["xgb_sklearn", "xgb_native"])
def test_an_xgboost_model_from_a_tracked_cell_is_served_over_rest(shell, api: str):
    """The wrapper as the classifier it is (labels), a native Booster by inplace_predict (its
    predict wants a DMatrix): probabilities."""
    shell.run_cell(SETUP)
    expected = _run_cell(shell, CELLS[api], track=True)
    nbm.register_model(nbm.runs()["run_id"][0], "churn")
    nbm.set_alias("churn", "champion", 1)
    rows = shell.user_ns["X_val"][:5]
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.values.tolist()}}
    with nbm.serve("churn@champion", port=0) as handle:
        answer = httpx.post(f"{handle.url}/invocations", json=body)
    assert answer.status_code == 200, answer.text
    got = json.loads(answer.text)["predictions"]
    if api == "xgb_sklearn":
        assert got == (expected[:5] > 0.5).astype(int).tolist()
    else:
        np.testing.assert_allclose(got, expected[:5], rtol=1e-6)


def test_a_live_xgboost_model_registered_directly_is_stored_in_its_own_format(shell):
    shell.run_cell(SETUP)
    _run_cell(shell, CELLS["xgb_sklearn"], track=False)
    version = nbm.register_model(shell.user_ns["model"], "live-boost")
    assert version.format == "xgboost-ubj"
    assert "xgboost-cpu" in version.libraries  # the distribution that reads the format
    with pytest.raises(ValueError, match="format must be auto or one of skops, pickle, xgboost"):
        nbm.register_model(shell.user_ns["model"], "live-boost", format="onnx")
