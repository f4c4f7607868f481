"""Aliases, history, promotion by rules, deprecation, deletion and consumers."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import mean_absolute_error

import nbmlops as nbm
from nbmlops import api as reg
from nbmlops.errors import (
    DeprecatedModelWarning,
    ModelInUseError,
    ModelNotFoundError,
    RegistryError,
)
from nbmlops.store import registry as registry_sql

RULES = """[rules.wine]
promote_to = "champion"
require = [
    "metrics.mae < champion.metrics.mae",
    "metrics.mae <= 50",
    "dataset.X_eval == champion.dataset.X_eval",
]
"""


def split(seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"alcohol": rng.normal(10, 1, 300), "acidity": rng.normal(3, 0.5, 300)})
    y = 20 * X["alcohol"] - 8 * X["acidity"] + rng.normal(scale=2, size=300)
    return X[:200], y[:200], X[200:], y[200:]


def train(model: object, eval_seed: int = 0) -> tuple[str, float]:
    """Fit on the training split, log MAE on the eval split; (run id, mae)."""
    X_train, y_train, X_eval, y_eval = split(eval_seed)
    with nbm.start_run() as run:
        model.fit(X_train, y_train)
        mae = mean_absolute_error(y_eval, model.predict(X_eval))
        nbm.log_dataset(X_train, "X_train")
        nbm.log_dataset(X_eval, "X_eval")
        nbm.log_metric("mae", mae)
        nbm.log_model(model, "model")
    return run.run_id, mae


def two_versions() -> tuple[reg.ModelVersion, reg.ModelVersion]:
    """wine/1 a random forest (the better MAE), wine/2 a mean predictor."""
    good = reg.register_model(
        train(RandomForestRegressor(n_estimators=20, random_state=0))[0], "wine"
    )
    weak = reg.register_model(train(DummyRegressor())[0], "wine")
    assert good.metrics["mae"] < weak.metrics["mae"]
    return good, weak


def git(folder: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args]
    return subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True).stdout


def test_only_the_lower_mae_becomes_champion(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, weak = two_versions()
    first = reg.promote("wine", good.version)
    second = reg.promote("wine", weak.version)
    assert (first.outcome, second.outcome) == ("promoted", "rejected")
    assert reg.get_model_version("wine@champion").version == good.version
    assert [r.status for r in first.results] == ["no champion", "passed", "no champion"]
    assert [r.passed for r in second.results] == [False, True, True]
    assert second.results[0].reason.startswith("metrics.mae = ")
    assert " is not < champion.metrics.mae = " in second.results[0].reason
    assert second.champion == good.version and second.event_id is not None


def test_the_decision_and_its_reasons_are_in_the_history(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, weak = two_versions()
    reg.promote("wine", good.version)
    reg.promote("wine", weak.version)
    history = reg.model_history("wine")
    assert history["kind"].tolist() == [
        "registered", "registered", "promotion", "alias_set", "promotion",
    ]  # fmt: skip
    rejected = history.iloc[-1]
    assert rejected["summary"].startswith("promotion of version 2 to @champion: rejected - 1 of 3")
    payload = rejected["payload"]
    assert payload["outcome"] == "rejected" and payload["champion"] == 1
    assert [r["line"] for r in payload["rules"]] == [4, 5, 6]
    assert payload["inputs"]["candidate"]["metrics"]["mae"] == weak.metrics["mae"]
    assert payload["inputs"]["champion"]["version"] == 1
    assert payload["rules_file"]["git_status"] == "not in git"
    assert history.iloc[3]["summary"] == "@champion -> 1 by promotion"


def test_a_better_version_replaces_the_champion_and_who_served_remembers(
    home: Path, tmp_path: Path
):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, weak = two_versions()
    before = time.time()
    time.sleep(0.01)
    reg.promote("wine", weak.version)
    time.sleep(0.01)
    between = time.time()
    time.sleep(0.01)
    decision = reg.promote("wine", good.version)
    assert decision.outcome == "promoted" and decision.champion == weak.version
    assert reg.who_served("wine", "champion", at=before) is None
    assert reg.who_served("wine", "champion", at=between).version == weak.version
    assert reg.who_served("wine", "champion", at=time.time()).version == good.version


def test_rules_file_git_state_is_recorded_and_uncommitted_rules_are_flagged(
    home: Path, tmp_path: Path
):
    rules = tmp_path / "nbmlops.toml"
    rules.write_text(RULES)
    git(tmp_path, "init", "-q")
    good, weak = two_versions()
    assert reg.promote("wine", good.version, dry_run=True).rules_file.git_status == "untracked"
    git(tmp_path, "add", "nbmlops.toml")
    git(tmp_path, "commit", "-q", "-m", "rules")
    head = git(tmp_path, "rev-parse", "HEAD").strip()
    clean = reg.promote("wine", good.version)
    assert (clean.rules_file.git_commit, clean.rules_file.git_status) == (head, "committed")
    assert not clean.uncommitted_rules
    rules.write_text(RULES.replace("<= 50", "<= 5000"))
    dirty = reg.promote("wine", weak.version)
    assert dirty.uncommitted_rules and dirty.rules_file.git_status == "modified"
    assert dirty.rules_file.git_commit == head
    assert "[uncommitted rules]" in reg.model_history("wine")["summary"].iloc[-1]
    assert "UNCOMMITTED RULES" in str(dirty) and "Uncommitted rules" in dirty._repr_html_()


def test_the_evaluated_rules_file_is_kept_by_its_hash(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, _ = two_versions()
    decision = reg.promote("wine", good.version)
    stored = nbm.get_store().objects.read_verified(decision.rules_file.sha256)
    assert stored.decode() == RULES


def test_a_dry_run_records_and_moves_nothing(home: Path, tmp_path: Path, db: sqlite3.Connection):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, _ = two_versions()
    decision = reg.promote("wine", good.version, dry_run=True)
    assert decision.dry_run and decision.passed and decision.event_id is None
    assert "would become @champion" in repr(decision)
    assert (
        db.execute("SELECT COUNT(*) FROM model_events WHERE kind != 'registered'").fetchone()[0]
        == 0
    )
    assert good.aliases == []


def test_promoting_the_champion_again_changes_nothing(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, _ = two_versions()
    reg.promote("wine", good.version)
    again = reg.promote("wine", good.version)
    assert again.outcome == "unchanged" and again.reason == "version 1 is already @champion"
    assert reg.model_history("wine")["kind"].tolist().count("alias_set") == 1


def test_a_champion_that_moved_during_evaluation_is_not_overwritten(home: Path):
    good, weak = two_versions()
    reg.set_alias("wine", "champion", weak.version)
    decision = {"name": "wine", "version": good.version, "kind": "promotion", "alias": "champion"}
    decision["at"] = time.time()
    with pytest.raises(RegistryError, match=r"wine@champion moved from version None to 2"):
        registry_sql.record_promotion(nbm.get_store(), decision, None, expected_champion=None)


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (None, r"No nbmlops.toml found from .* upwards"),
        ("[rules.other]\nrequire = ['metrics.a < 1']\n", r"has no \[rules.wine\] table"),
    ],
)
def test_promotion_without_rules_says_what_to_do(home: Path, tmp_path: Path, rules, message):
    if rules is not None:
        (tmp_path / "nbmlops.toml").write_text(rules)
    reg.register_model(train(DummyRegressor())[0], "wine")
    with pytest.raises(RegistryError, match=message):
        reg.promote("wine", 1)


def test_rules_path_and_check_rules(home: Path, tmp_path: Path):
    other = tmp_path / "ci" / "rules.toml"
    other.parent.mkdir()
    other.write_text(RULES)
    good, _ = two_versions()
    assert reg.promote("wine", good.version, rules_path=other).outcome == "promoted"
    assert list(reg.check_rules(other).models) == ["wine"]


def test_alias_moves_are_events_and_who_served_takes_several_time_forms(home: Path):
    good, weak = two_versions()
    reg.set_alias("wine", "staging", good.version)
    time.sleep(0.01)
    middle = dt.datetime.now(dt.UTC)
    time.sleep(0.01)
    reg.set_alias("wine", "staging", weak.version)
    assert reg.remove_alias("wine", "staging") == weak.version
    assert reg.who_served("wine", "staging", middle).version == good.version
    assert reg.who_served("wine", "staging", middle.isoformat()).version == good.version
    assert reg.who_served("wine", "staging", middle.replace(tzinfo=None)).version == 1
    assert reg.who_served("wine", "staging", time.time()) is None
    summaries = reg.model_history("wine")["summary"].tolist()[-3:]
    assert summaries == ["@staging -> 1", "@staging 1 -> 2", "@staging removed (was 2)"]


def test_deprecated_versions_load_with_a_warning_and_are_not_promoted(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, _ = two_versions()
    reg.deprecate_model_version("wine", good.version, "trained on 2024 data")
    with pytest.warns(DeprecatedModelWarning, match=r"wine/1 is deprecated \(trained on 2024"):
        assert isinstance(reg.load_model("wine/1"), RandomForestRegressor)
    decision = reg.promote("wine", good.version)
    assert decision.outcome == "rejected"
    assert decision.failed[0].reason == "wine/1 is deprecated: trained on 2024 data"
    assert reg.get_model_version("wine/1").status == "deprecated"


def test_delete_is_refused_while_an_alias_points_at_the_version(home: Path):
    good, _ = two_versions()
    reg.set_alias("wine", "champion", good.version)
    with pytest.raises(ModelInUseError, match=r"wine/1 cannot be deleted: @champion points at it"):
        reg.delete_model_version("wine", good.version)


def test_delete_is_refused_while_consumers_loaded_it_within_the_window(home: Path):
    good, _ = two_versions()
    reg.load_model("wine/1", consumer="churn-scoring.ipynb")
    with pytest.raises(ModelInUseError, match=r"1 consumer loaded it in the last 30 days: churn"):
        reg.delete_model_version("wine", good.version)
    reg.delete_model_version("wine", good.version, window=0, reason="replaced")
    with pytest.raises(ModelNotFoundError, match=r"'wine/1' not found .*it was deleted by"):
        reg.load_model("wine/1")
    assert reg.model_history("wine")["summary"].iloc[-1] == "version 1 deleted: replaced"
    assert reg.get_model_version("wine").version == 2


def test_deleted_versions_stay_deleted(home: Path):
    good, _ = two_versions()
    reg.delete_model_version("wine", good.version)
    with pytest.raises(RegistryError, match="is already deleted"):
        reg.delete_model_version("wine", good.version)
    with pytest.raises(RegistryError, match="was deleted; an alias cannot point at it"):
        reg.set_alias("wine", "champion", good.version)
    with pytest.raises(RegistryError, match="wine/1, which was deleted; a deleted version"):
        reg.register_model(good.run_id, "wine")
    assert reg.model_versions("wine")["status"].tolist() == ["deleted", "active"]


def test_consumers_lists_who_loaded_a_version(home: Path, monkeypatch: pytest.MonkeyPatch):
    good, _ = two_versions()
    monkeypatch.setenv("NBMLOPS_NOTEBOOK", "/work/notebooks/report.ipynb")
    reg.load_model("wine/1")
    reg.load_model("wine/1")
    reg.load_model("wine/1", consumer="batch-job")
    frame = reg.consumers("wine", good.version)
    assert sorted(zip(frame["consumer"], frame["loads"], strict=True)) == [
        ("/work/notebooks/report.ipynb", 2),
        ("batch-job", 1),
    ]
    assert set(frame["last_pid"]) == {__import__("os").getpid()}
    assert reg.consumers("wine", good.version, since=time.time() + 60).empty


def test_deprecation_needs_a_reason(home: Path):
    two_versions()
    with pytest.raises(RegistryError, match="deprecate needs a reason"):
        reg.deprecate_model_version("wine", 1, " ")


def test_decision_reprs_show_every_rule(home: Path, tmp_path: Path):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, weak = two_versions()
    reg.promote("wine", good.version)
    decision = reg.promote("wine", weak.version)
    text = str(decision)
    assert text.splitlines()[0] == "wine/2 was not promoted to @champion"
    assert "[FAIL] metrics.mae < champion.metrics.mae (line 4)" in text
    html = decision._repr_html_()
    assert html.count("<tr>") == 4 and "&#10008;" in html
    assert json.dumps(decision.to_dict())


@pytest.mark.parametrize("where", ["outside git", "git missing", "untracked"])
def test_the_rules_line_names_a_commit_only_for_a_tracked_file(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
):
    (tmp_path / "nbmlops.toml").write_text(RULES)
    good, _ = two_versions()
    if where == "untracked":
        (tmp_path / "other").write_text("x")
        git(tmp_path, "init", "-q")
        git(tmp_path, "add", "other")
        git(tmp_path, "commit", "-q", "-m", "other")
    if where == "git missing":
        monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    rules_line = str(reg.promote("wine", good.version, dry_run=True)).splitlines()[-1]
    expected = (
        "untracked, not in git) - UNCOMMITTED RULES" if where == "untracked" else "(not in git)"
    )
    assert rules_line.endswith(expected)
    assert " @ " not in rules_line
