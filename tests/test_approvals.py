"""Approvals that gate promotion (issue #18 item 4): review.approved, a count of approvers,
self-approval refused by review.approved_by_other, and the decision record listing the
approvals and reviews it considered. Real stores, real runs and versions."""

from __future__ import annotations

import getpass
import sqlite3
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

import nbmlops as nbm
from nbmlops.capture.environment import current_user
from nbmlops.errors import RegistryError, RulesFileError
from nbmlops.registry.approvals import approvals, approve
from nbmlops.registry.rules_file import load_rules
from nbmlops.store import Store
from nbmlops.store import reviews as review_sql

ME = getpass.getuser()  # who trains and registers in these tests: the version's creator


def version(home: Path, rules: str) -> Store:
    """wine/1 trained and registered by ME, rules written beside the store."""
    (home.parent / "nbmlops.toml").write_text(f"[rules.wine]\nrequire = {rules}\n")
    X = pd.DataFrame({"a": np.arange(20.0)})
    with nbm.start_run() as run:
        nbm.log_metric("mae", 1.0)
        nbm.log_model(DummyRegressor().fit(X, X.a), "model")
    nbm.register_model(run.run_id, "wine")
    return nbm.get_store()


def approve_as(person: str, monkeypatch: pytest.MonkeyPatch, *args, **kwargs):  # type: ignore[no-untyped-def]
    """``approve`` recorded from ``person``'s account (the ``actor``), as on their machine."""
    with monkeypatch.context() as env:
        env.setenv("LOGNAME", person)
        current_user.cache_clear()  # the login name is read once per process
        try:
            return approve(*args, **kwargs)
        finally:
            current_user.cache_clear()


def test_an_unapproved_candidate_is_refused_and_told_how_to_approve(home: Path):
    store = version(home, '["review.approved"]')
    refused = nbm.promote("wine", 1)
    assert refused.outcome == "rejected"
    assert refused.results[0].reason == (
        "review.approved is false: wine/1 has no approval; approve it with: "
        "nbmlops review approve wine/1 --by NAME"
    )
    approve(store, "wine", 1, by="bob", comment="looks right")
    assert nbm.promote("wine", 1).outcome == "promoted"


def test_self_approval_does_not_count_when_the_rule_refuses_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
):
    store = version(home, '["review.approved_by_other"]')
    mine = approve(store, "wine", 1, by=ME.upper())  # names compared without case
    assert mine.self_approval
    refused = nbm.promote("wine", 1)
    assert refused.outcome == "rejected"
    assert f"approved by {ME.upper()} ({ME.upper()} made it: self-approval)" in refused.reason
    approve_as("carol", monkeypatch, store, "wine", 1, by="carol")
    assert nbm.promote("wine", 1).outcome == "promoted"


def test_the_creator_typing_another_name_is_still_a_self_approval(home: Path):
    store = version(home, '["review.approvals_by_others >= 1"]')
    assert approve(store, "wine", 1, by="bob").self_approval  # recorded from ME's account
    assert nbm.promote("wine", 1).outcome == "rejected"


def test_a_count_of_approvers_counts_each_person_once(home: Path, monkeypatch: pytest.MonkeyPatch):
    store = version(home, '["review.approvals >= 2", "review.approvals_by_others >= 1"]')
    approve_as("bob", monkeypatch, store, "wine", 1, by="bob")
    approve_as("bob", monkeypatch, store, "wine", 1, by="Bob")
    refused = nbm.promote("wine", 1)
    assert [r.reason.split(":")[0] for r in refused.failed] == ["review.approvals = 1 is not >= 2"]
    approve(store, "wine", 1, by=ME)
    assert nbm.promote("wine", 1).outcome == "promoted"


def test_the_decision_lists_the_approvals_and_reviews_it_considered(home: Path):
    store = version(home, '["review.approved"]')
    review_id = review_sql.add_review(
        store,
        {"kind": "model", "name": "wine", "version": 1, "notebook": "0" * 64, "summary": {}}
        | {"created_at": time.time()},
    )
    given = approve(store, "wine", 1, by="bob", review_id=review_id)
    decision = nbm.promote("wine", 1)
    payload = nbm.model_history("wine").payload.iloc[-2]  # the promotion, then alias_set
    assert payload["outcome"] == decision.outcome == "promoted"
    candidate = payload["inputs"]["candidate"]
    assert candidate["reviews"] == [review_id] and candidate["creators"] == [ME]
    assert candidate["approvals"] == [
        {"approval_id": given.approval_id, "by": "bob", "actor": ME, "at": given.at}
        | {"review_id": review_id, "comment": None}
    ]


def test_an_approval_is_committed_with_who_recorded_it(home: Path, db: sqlite3.Connection):
    store = version(home, '["review.approved"]')
    approve(store, "wine", 1, by="  bob ", comment="ok")
    row = db.execute("SELECT name, version, by, comment, actor FROM approvals").fetchone()
    assert row == ("wine", 1, "bob", "ok", ME)
    listed = approvals(store, "wine")
    # recorded from the creator's own account: a self-approval whatever name it gives
    assert [(a.ref, a.by, a.self_approval) for a in listed] == [("wine/1", "bob", True)]
    assert nbm.model_approvals("wine/1") == nbm.model_approvals("wine", 1) == listed
    assert repr(listed[0]).startswith("<Approval 1 of wine/1 by bob (self-approval) at ")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": " "}, "An approval of wine/1 needs the approver's name: by=' ' is empty"),
        ({"by": "bob", "review_id": 9}, "Review 9 not found; an approval of wine/1 can name"),
    ],
)
def test_a_bad_approval_is_refused_with_what_to_do(home: Path, kwargs, message):
    store = version(home, '["review.approved"]')
    with pytest.raises(RegistryError, match=message):
        approve(store, "wine", 1, **kwargs)
    assert approvals(store, "wine", 1) == []


def test_approvals_are_the_candidates_only(tmp_path: Path):
    path = tmp_path / "nbmlops.toml"
    path.write_text('[rules.wine]\nrequire = ["champion.review.approved"]\n')
    with pytest.raises(RulesFileError, match=r"the candidate's; use review\.approved"):
        load_rules(path)
