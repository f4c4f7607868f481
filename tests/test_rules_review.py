"""Rule review with a backtest (issue #18 item 3): nbmlops.toml diffed between revisions of a
git repository made in the test, past promotion decisions and alert firings of a real store
evaluated again, and an exit code that is 1 only when a change flips a past decision."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

import nbmlops as nbm
from nbmlops.api._alerts import monitor
from nbmlops.errors import RegistryError, RulesFileError
from nbmlops.monitoring.alert_backtest import review_rules
from nbmlops.registry.approvals import approve
from nbmlops.store import Store
from nbmlops.store.predictions import COLUMNS, insert_predictions


def git(folder: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args]
    return subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True).stdout


def commit(home: Path, text: str, message: str = "rules") -> None:
    (home.parent / "nbmlops.toml").write_text(text)
    git(home.parent, "add", "nbmlops.toml")
    git(home.parent, "commit", "-q", "-m", message)


def rules(*require: str) -> str:
    return "[rules.wine]\nrequire = [\n" + "".join(f'  "{r}",\n' for r in require) + "]\n"


def promoted(home: Path, text: str, *maes: float) -> Store:
    """A git repository around the store with ``text`` committed; one version of wine per MAE,
    each promoted under those rules."""
    git(home.parent, "init", "-q")
    commit(home, text)
    X = pd.DataFrame({"a": np.arange(20.0)})
    for mae in maes:
        with nbm.start_run() as run:
            nbm.log_metric("mae", mae)
            nbm.log_model(DummyRegressor(strategy="constant", constant=mae).fit(X, X.a), "m")
        nbm.promote("wine", nbm.register_model(run.run_id, "wine").version)
    return nbm.get_store()


def test_a_tighter_bound_flips_a_past_promotion_and_exits_1(home: Path):
    store = promoted(home, rules("metrics.mae <= 50"), 30.0, 10.0)
    commit(home, rules("metrics.mae <= 20"))
    review = review_rules(store, "HEAD~1..HEAD")
    assert review.exit_code == 1
    assert [(r.model, r.version, r.old, r.new, r.rules) for r in review.flipped] == [
        ("wine", 1, "promoted", "rejected", ("metrics.mae <= 20",))
    ]
    text = str(review)
    assert text.startswith("nbmlops.toml HEAD~1 -> HEAD: 1 past decision(s) would have gone")
    assert "  FLIP wine/1 at " in text and " UTC: promoted -> rejected\n" in text
    assert "         by metrics.mae <= 20\n" in text
    assert "    - require: metrics.mae <= 50\n    + require: metrics.mae <= 20" in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "| wine/1 (promotion) | " in review.to_markdown()


def test_a_looser_bound_flips_a_rejection_naming_the_rule_it_drops(home: Path):
    store = promoted(home, rules("metrics.mae <= 20"), 30.0)
    commit(home, rules("metrics.mae <= 50"))
    flipped = review_rules(store, "HEAD~1..HEAD").flipped
    assert [(r.old, r.new, r.rules) for r in flipped] == [
        ("rejected", "promoted", ("metrics.mae <= 20",))
    ]


def test_a_change_that_flips_nothing_exits_0_and_shows_the_diff(home: Path):
    store = promoted(home, rules("metrics.mae <= 50"), 30.0, 10.0)
    (home.parent / "nbmlops.toml").write_text(rules("metrics.mae <= 40"))  # not committed
    review = review_rules(store)
    assert (review.old, review.new, review.exit_code) == ("HEAD", "working tree", 0)
    assert review.headline.endswith("no past decision would have gone the other way")
    assert str(review.backtests[0]).startswith("2 past promotion decision(s) checked: 0 would")
    assert '-  "metrics.mae <= 50",\n+  "metrics.mae <= 40",' in review.diff
    assert "```diff" in review.to_markdown() and ":white_check_mark:" in review.to_markdown()


def test_a_model_whose_rules_are_removed_would_be_refused(home: Path):
    store = promoted(home, rules("metrics.mae <= 50"), 30.0)
    commit(home, "[rules.other]\nrequire = ['metrics.mae <= 5']\n")
    review = review_rules(store, "HEAD~1..HEAD")
    assert [r.rules for r in review.flipped] == [("no [rules.wine] table: promotion is refused",)]
    assert [(c.table, c.status) for c in review.changes] == [
        ("rules.wine", "removed"),
        ("rules.other", "added"),
    ]


def test_requiring_approval_flips_unapproved_promotions_from_their_record(home: Path):
    store = promoted(home, rules("metrics.mae <= 50"), 30.0)
    approve(store, "wine", 1, by="bob")  # after the decision: it does not count for it
    commit(home, rules("metrics.mae <= 50", "review.approved"))
    flipped = review_rules(store, "HEAD~1..HEAD").flipped
    assert [(r.version, r.new, r.rules) for r in flipped] == [(1, "rejected", ("review.approved",))]


ALERT = """
[alerts.busy]
model = "wine"
when = [{when}]
"""


def test_an_alert_firing_a_raised_threshold_would_have_stopped_is_a_flip(home: Path):
    text = rules("metrics.mae <= 50") + ALERT.format(when='"requests.count >= 5"')
    store = promoted(home, text, 30.0)
    rows = []
    for i in range(8):
        row = dict.fromkeys(COLUMNS)
        row.update(request_id=f"r{i}", name="wine", version=1, status=200, n_rows=1)
        rows.append(row | {"at": time.time(), "latency_ms": 1.0, "outputs": json.dumps([1.0])})
    insert_predictions(store, rows)
    assert [o.status for o in monitor(store=home).outcomes] == ["fired"]
    commit(home, rules("metrics.mae <= 50") + ALERT.format(when='"requests.count >= 100"'))
    review = review_rules(store, "HEAD~1..HEAD")
    assert [(r.kind, r.old, r.new, r.rules) for r in review.flipped] == [
        ("alert", "fired", "quiet", ("requests.count >= 100",))
    ]
    assert "FLIP [alerts.busy] wine/1 at " in str(review) and review.exit_code == 1
    assert "by requests.count >= 100" in str(review)
    unknown = ALERT.format(when='"requests.count >= 5", "errors.rate < 0.5"')
    commit(home, rules("metrics.mae <= 50") + unknown)
    alerts = review_rules(store, "HEAD~2..HEAD").backtests[1]
    assert alerts.flips == [] and alerts.unknown[0].note == (
        "errors.rate was not computed when the alert fired"
    )
    assert "only firings are recorded" in alerts.notes[0]


def test_a_revision_that_is_not_a_commit_and_a_malformed_side_are_named(home: Path):
    store = promoted(home, rules("metrics.mae <= 50"), 30.0)
    with pytest.raises(RegistryError, match=r"'nope' \(in 'nope\.\.HEAD'\) is not a commit"):
        review_rules(store, "nope..HEAD")
    commit(home, "[rules.wine]\nrequire = ['metrics.mae <']\n")
    with pytest.raises(RulesFileError, match=r"^nbmlops\.toml at HEAD:2: rule 'metrics\.mae <'"):
        review_rules(store, "HEAD~1..HEAD")


def test_a_rules_file_outside_git_cannot_be_reviewed(home: Path):
    (home.parent / "nbmlops.toml").write_text(rules("metrics.mae <= 50"))
    with pytest.raises(RegistryError, match="is not in a git repository: a rules review"):
        review_rules(nbm.get_store())


def test_a_repository_with_no_commit_yet_reviews_every_rule_as_new(home: Path):
    git(home.parent, "init", "-q")
    (home.parent / "nbmlops.toml").write_text(rules("metrics.mae <= 50"))
    review = review_rules(nbm.get_store())
    assert (review.old, review.new, review.exit_code) == ("no commit yet", "working tree", 0)
    assert [(c.table, c.status, c.details) for c in review.changes] == [
        ("rules.wine", "added", ("+ require: metrics.mae <= 50",))
    ]
