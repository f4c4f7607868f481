"""The issue's "done when": two regressors trained with %%track, both registered, and promote
lets only the one with the lower MAE become champion, with the decision in the history."""

from __future__ import annotations

from pathlib import Path

import nbmlops as nbm
from nbmlops import api as reg

SETUP = """
import numpy as np, pandas as pd
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error
rng = np.random.default_rng(0)
X = pd.DataFrame({"alcohol": rng.normal(10, 1, 300), "acidity": rng.normal(3, 0.5, 300)})
y = 20 * X["alcohol"] - 8 * X["acidity"] + rng.normal(scale=2, size=300)
X_train, y_train, X_eval, y_eval = X[:200], y[:200], X[200:], y[200:]
"""

TRAIN = """%%track {name}
model = {estimator}
model.fit(X_train, y_train)
mae = mean_absolute_error(y_eval, model.predict(X_eval))
"""

RULES = """[rules.wine]
promote_to = "champion"
require = [
    "metrics.mae < champion.metrics.mae",
    "metrics.mae <= 50",
    "dataset.X_eval == champion.dataset.X_eval",
]
"""


def test_track_register_promote_only_the_better_regressor(shell, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    shell.run_cell(SETUP, cell_id="setup")
    for name, estimator in [
        ("forest", "RandomForestRegressor(random_state=0)"),
        ("mean", "DummyRegressor()"),
    ]:
        result = shell.run_cell(TRAIN.format(name=name, estimator=estimator), cell_id=name)
        assert result.success
    runs = nbm.runs().set_index("name")
    forest = reg.register_model(runs.loc["forest", "run_id"], "wine")
    mean = reg.register_model(runs.loc["mean", "run_id"], "wine")
    assert forest.metrics["mae"] < mean.metrics["mae"]
    assert {d["name"] for d in forest.datasets} >= {"X_train", "X_eval", "y_eval"}
    decisions = [reg.promote("wine", forest.version), reg.promote("wine", mean.version)]
    assert [d.outcome for d in decisions] == ["promoted", "rejected"]
    assert reg.get_model_version("wine@champion").version == forest.version
    history = reg.model_history("wine")
    assert history.loc[history["kind"] == "alias_set", "version"].tolist() == [forest.version]
    rejected = history.iloc[-1]
    assert rejected["kind"] == "promotion"
    assert "rejected - 1 of 3 rules failed: metrics.mae = " in rejected["summary"]
    assert [r["passed"] for r in rejected["payload"]["rules"]] == [False, True, True]
