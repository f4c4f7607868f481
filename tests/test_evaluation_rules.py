"""Promotion rules that see evaluations (issue #21 item 4): evaluation.unseen / comparable /
metrics, champion.evaluation.*, the different-data warning, and what a decision records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression

import nbmlops as nbm
from nbmlops.drift import profile_dataset
from nbmlops.errors import RulesFileError
from nbmlops.evaluation.evaluate import evaluate
from nbmlops.fingerprint import fingerprint, row_hashes
from nbmlops.registry.rule_language import parse_rule
from nbmlops.store.evaluations import add_evaluation, save_row_hashes

CLEAN, OTHER = "a" * 32, "b" * 32
FLAGS = {
    "unseen": (True, True),
    "leaky": (False, True),
    "not_comparable": (True, False),
    "unchecked": (None, None),
}


def version(mae: float = 1.0) -> nbm.ModelVersion:
    with nbm.start_run() as run:
        nbm.log_metric("mae", mae)
        nbm.log_model(DummyRegressor().fit([[0.0]], [mae]), "model")
    return nbm.register_model(run.run_id, "wine")


def evaluated(mv: Any, status: str, *, data: str = CLEAN, mae: float = 1.0, **report: Any) -> int:
    """An evaluation of ``mv`` recorded on its training run, as nbm.evaluate records one."""
    unseen, comparable = FLAGS[status]
    row = {"run_id": mv.run_id, "name": mv.name, "version": mv.version, "task": "regression"}
    row |= {"model_run_id": mv.run_id, "dataset_id": data, "n_rows": 200, "status": status}
    row |= {"metrics": {"mae": mae}, "unseen": unseen, "comparable": comparable, "report": report}
    return add_evaluation(nbm.get_store(), row)


def rules(tmp_path: Path, *require: str) -> None:
    listed = ", ".join(f'"{r}"' for r in require)
    (tmp_path / "nbmlops.toml").write_text(f"[rules.wine]\nrequire = [{listed}]\n")


def test_a_leaky_evaluation_is_refused_and_says_what_it_found(home: Path, tmp_path: Path):
    rules(tmp_path, "evaluation.unseen", "evaluation.comparable")
    mv = version()
    overlap = {"rows": 8, "rows_without_target": 10, "positions": [3, 7]}
    eid = evaluated(mv, "leaky", overlap=overlap)
    decision = nbm.promote("wine", mv.version)
    assert decision.outcome == "rejected"
    assert [r.status for r in decision.results] == ["failed", "passed"]
    assert decision.results[0].reason == (
        f"evaluation.unseen is false: evaluation {eid} of wine/1 on aaaaaaaaaaaa… (200 rows) is "
        "leaky: 10 of its 200 rows are in the training data (8 with the same target)"
    )
    assert decision.results[1].reason == "evaluation.comparable is true"


def test_a_clean_evaluation_passes_and_the_decision_records_it(home: Path, tmp_path: Path):
    rules(tmp_path, "evaluation.unseen", "evaluation.comparable", "evaluation.metrics.mae < 2")
    mv = version()
    evaluated(mv, "leaky", mae=0.1)  # an earlier, leaky evaluation: the latest one counts
    eid = evaluated(mv, "unseen", mae=1.5)
    decision = nbm.promote("wine", mv.version)
    assert decision.outcome == "promoted", decision.reason
    assert decision.results[2].reason == "evaluation.metrics.mae = 1.5 < 2"
    payload = nbm.model_history("wine").iloc[-2]["payload"]
    used = payload["inputs"]["candidate"]["evaluation"]
    assert (used["evaluation_id"], used["status"], used["dataset_id"]) == (eid, "unseen", CLEAN)
    assert used["metrics"] == {"mae": 1.5} and payload["inputs"]["values"]["evaluation.unseen"]


def test_columns_that_are_not_comparable_are_named(home: Path, tmp_path: Path):
    rules(tmp_path, "evaluation.status == 'unseen'")
    mv = version()
    evaluated(mv, "not_comparable", failing_columns=["ph", "alcohol"])
    result = nbm.promote("wine", mv.version, dry_run=True).results[0]
    assert not result.passed
    assert result.reason.endswith(
        "is not comparable: columns that differ from the training data: ph, alcohol"
    )


@pytest.mark.parametrize(
    ("rule", "candidate_data", "warned"),
    [
        ("evaluation.metrics.mae < champion.evaluation.metrics.mae", OTHER, True),
        ("evaluation.metrics.mae < champion.evaluation.metrics.mae", CLEAN, False),
        ("metrics.mae <= champion.metrics.mae", OTHER, True),  # measured on the training run
        ("evaluation.metrics.mae < 5", OTHER, False),  # no comparison with the champion
    ],
)
def test_comparing_with_the_champion_warns_of_different_data(
    home: Path, tmp_path: Path, rule: str, candidate_data: str, warned: bool
):
    rules(tmp_path, rule)
    champion, candidate = version(2.0), version(1.0)
    nbm.set_alias("wine", "champion", champion.version)
    evaluated(champion, "unseen", data=CLEAN, mae=2.0)
    evaluated(candidate, "unseen", data=candidate_data, mae=1.0)
    result = nbm.promote("wine", candidate.version, dry_run=True).results[0]
    assert result.passed
    warning = (
        "; warning: evaluated on different data: wine/2 on bbbbbbbbbbbb… (200 rows), "
        "wine/1 on aaaaaaaaaaaa… (200 rows)"
    )
    assert result.reason.endswith(warning) is warned
    assert ("warning" in result.reason) is warned


@pytest.mark.parametrize(
    ("status", "rule", "reason"),
    [
        (None, "evaluation.unseen", "evaluation.unseen: wine/1 has no evaluation; evaluate it"),
        (
            "unchecked",
            "evaluation.comparable",
            "(200 rows) was not checked (the model's training data is not known)",
        ),
        ("unseen", "evaluation.metrics.auc > 0.5", "has no metric 'auc' (metrics: mae)"),
    ],
)
def test_a_missing_evaluation_fails_its_rule_and_says_why(
    home: Path, tmp_path: Path, status: str | None, rule: str, reason: str
):
    rules(tmp_path, rule)
    mv = version()
    if status is not None:
        evaluated(mv, status)
    result = nbm.promote("wine", mv.version, dry_run=True).results[0]
    assert (result.passed, result.status) == (False, "missing")
    assert reason in result.reason


def test_the_champion_without_an_evaluation_fails_a_comparison(home: Path, tmp_path: Path):
    rules(tmp_path, "evaluation.metrics.mae < champion.evaluation.metrics.mae")
    champion, candidate = version(2.0), version(1.0)
    nbm.set_alias("wine", "champion", champion.version)
    evaluated(candidate, "unseen")
    result = nbm.promote("wine", candidate.version, dry_run=True).results[0]
    assert result.status == "missing"
    assert result.reason.startswith("champion.evaluation.metrics.mae: wine/1 has no evaluation")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("evaluation.leaky", "unknown operand 'evaluation.leaky': use evaluation.unseen, "),
        ("champion.evaluation.x == 1", "or champion.evaluation.metrics.<key>"),
        ("evaluation.metrics", "'evaluation.metrics' needs a key after 'metrics'"),
        ("evaluation.unseen < 1", "'<' orders numbers"),
        ("evaluation.unseen + 1 == 2", "'evaluation.unseen' is not a number"),
        ("-evaluation.comparable == 1", "a text or true/false value cannot be negated"),
        ("evaluation.status", "expected a comparison"),  # only true/false stands alone
        ("evaluation.metrics.mae", "expected a comparison"),
    ],
)
def test_malformed_evaluation_rules_explain_the_problem(rule: str, message: str):
    with pytest.raises(RulesFileError, match=message.replace("+", r"\+")):
        parse_rule(rule, path="nbmlops.toml", line=3)


def test_through_evaluate_a_leaky_split_is_refused_and_a_clean_one_promoted(
    home: Path, tmp_path: Path
):
    rules(tmp_path, "evaluation.unseen", "evaluation.comparable", "evaluation.metrics.mae < 1")
    rng = np.random.default_rng(0)
    X = pd.DataFrame({c: rng.normal(size=1200) for c in "abc"})
    y = (2 * X["a"] - X["b"] + rng.normal(scale=0.1, size=1200)).rename("target")
    X_train, y_train, X_test, y_test = X[:1000], y[:1000], X[1000:], y[1000:]
    with nbm.start_run() as run:
        nbm.log_dataset(X_train, "X_train")
        nbm.log_dataset(y_train, "y_train")
        nbm.log_model(LinearRegression().fit(X_train, y_train), "model")
    for data in (X_train, y_train):  # what %%track keeps of a training cell's inputs
        profile_dataset(nbm.get_store(), data)
        digest = fingerprint(data).digest
        save_row_hashes(nbm.get_store(), digest, row_hashes(data).tobytes(), len(data))
    nbm.register_model(run.run_id, "wine")
    leaky_X = pd.concat([X_test[:190], X_train[:10]])
    leaky_y = pd.concat([y_test[:190], y_train[:10]])
    assert evaluate(nbm.get_store(), "wine/1", leaky_X, leaky_y).status == "leaky"
    refused = nbm.promote("wine", 1)
    assert refused.outcome == "rejected" and [r.passed for r in refused.results] == [
        False, True, True,
    ]  # fmt: skip
    assert "is leaky: 10 of its 200 rows are in the training data" in refused.results[0].reason
    assert evaluate(nbm.get_store(), "wine/1", X_test, y_test).status == "unseen"
    assert nbm.promote("wine", 1).outcome == "promoted"
