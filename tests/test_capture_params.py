"""One value, one param: an estimator argument that holds a named param is that param."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell

import nbmlops as nbm

SETUP = (
    "import pandas as pd\nfrom sklearn.linear_model import LogisticRegression\n"
    "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
    "X = pd.DataFrame({'a': [0, 1, 0, 1, 0, 1], 'b': [1, 1, 0, 0, 1, 0]})\n"
    "y = pd.Series([0, 1, 0, 1, 0, 1])"
)


@pytest.fixture
def shell(shell: InteractiveShell) -> InteractiveShell:
    """The tracking shell, with the training data of SETUP defined."""
    shell.run_cell(SETUP, store_history=True, cell_id="setup")
    return shell


def params_and_sources(ip: InteractiveShell, source: str) -> tuple[dict, dict]:
    ip.run_cell(source, store_history=True, cell_id="fit")
    run = nbm.get_run(nbm.runs()["run_id"][0])
    sources = dict(nbm.sql("SELECT key, source FROM params").values.tolist())
    return run.params, sources


@pytest.mark.parametrize(
    ("cell", "params", "source_of_c"),
    [
        (
            "%%track\nC = 0.05\nclf = make_pipeline(StandardScaler(), "
            "LogisticRegression(C=C, max_iter=500))\nclf.fit(X, y)",
            {"C": 0.05, "LogisticRegression.max_iter": 500},
            "literal:2; estimator:3 LogisticRegression(C=C)",
        ),
        (
            "%%track --params C\nclf = LogisticRegression(C=C).fit(X, y)",
            {"C": 0.5},
            "--params; estimator:2 LogisticRegression(C=C)",
        ),
        (  # not the variable's value: two params, as before
            "%%track\nC = 0.05\nclf = LogisticRegression(C=C * 2).fit(X, y)",
            {"C": 0.05, "LogisticRegression.C": 0.1},
            "literal:2",
        ),
    ],
)
def test_an_estimator_argument_from_a_named_param_is_one_param(shell, cell, params, source_of_c):
    shell.user_ns["C"] = 0.5
    found, sources = params_and_sources(shell, cell)
    assert found == params
    assert sources["C"] == source_of_c
