"""Reviews' front door in the plain API: verified re-runs and approvals.

    nbm.rerun(run_id)                          # reproduced / differs / could not run
    nbm.approve_model("cancer/2", by="ana")    # an approval promotion rules may require

Review notebooks (``nbm.review_model``, ``nbm.review_changes``) are an interface over this API
(:mod:`nbmlops.review`); every function takes ``store=`` like the rest of the API.
"""

from __future__ import annotations

from pathlib import Path

from nbmlops import reruns
from nbmlops.errors import RegistryError
from nbmlops.monitoring import alert_backtest
from nbmlops.registry import approvals
from nbmlops.registry.approvals import Approval
from nbmlops.registry.backtest import RulesReview
from nbmlops.registry.model_version import resolve
from nbmlops.reruns import RerunResult
from nbmlops.store import StoreLike, open_store


def rerun(
    run_id: str, tolerance: float = 1e-6, *, timeout: int = 600, store: StoreLike = None
) -> RerunResult:
    """Re-run tracked run ``run_id`` in a fresh kernel from what its kernel executed (the cells
    before it and its own cell, at their recorded versions), check that its inputs have the
    recorded fingerprints and every metric matches within ``tolerance`` (absolute, relative
    above 1), and record the outcome: reproduced, differs (with the differences) or could not
    run (with the reason), listing the sources of nondeterminism it saw (unseeded estimators
    and generators, threads, changed library versions). The re-run is itself a tracked run,
    tagged ``nbmlops.rerun_of``. ``run_id`` may also name a model version (``"diabetes@champion"``,
    ``"diabetes/3"``): its training run is re-run."""
    opened = open_store(store, create=False)
    if "@" in run_id or "/" in run_id:
        trained_by = resolve(opened, run_id).run_id
        if trained_by is None:
            raise RegistryError(
                f"{run_id} was registered from a live object, not a tracked run: there is no "
                "run to re-run."
            )
        run_id = trained_by
    return reruns.rerun(opened, run_id, tolerance=tolerance, timeout=timeout)


def approve_model(
    ref: str,
    *,
    by: str,
    comment: str | None = None,
    review_id: int | None = None,
    store: StoreLike = None,
) -> Approval:
    """Record that ``by`` approves model version ``ref`` (``"cancer/2"``), on review
    ``review_id`` if given. Promotion rules may require approvals (``require =
    ["review.approved"]``, ``"review.approvals >= 2"``, ``"review.approved_by_other"``: one
    by someone other than the version's creator)."""
    name, _, version = ref.rpartition("/")
    if not name or not version.isdigit():
        raise RegistryError(f"approve_model({ref!r}): give NAME/VERSION, e.g. 'cancer/2'.")
    return approvals.approve(open_store(store), name, int(version), by, comment, review_id)


def model_approvals(
    name: str, version: int | None = None, *, store: StoreLike = None
) -> list[Approval]:
    """The approvals of model ``name`` (of one ``version``), oldest first."""
    return approvals.approvals(open_store(store, create=False), name, version)


def review_rules(
    rev_range: str | None = None,
    *,
    path: str | Path | None = None,
    store: StoreLike = None,
) -> RulesReview:
    """Review a change of ``nbmlops.toml`` over ``rev_range`` (None: the working tree against
    HEAD; ``"A..B"``, ``"A...B"``): its diff, the promotion and alert tables changed, and every
    past promotion decision and alert firing evaluated again under the new rules.
    ``.flipped`` lists the decisions that would have gone the other way; ``.exit_code`` is 1
    when there is one (CI can require a human look); ``.to_markdown()`` for a PR comment."""
    return alert_backtest.review_rules(open_store(store, create=False), rev_range, path=path)
