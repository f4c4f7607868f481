"""Approvals of model versions, which promotion rules may require (issue #18 item 4).

An approval is a row of the append-only table ``approvals``: who approves (``by``, a name the
approver gives, as a pull request's reviewer would), an optional comment and the review it was
given on, with the OS user and host that recorded it. It is never withdrawn in place: a later
version is approved or not on its own.

The rules name them as ``review.approved`` and ``review.approvals`` (each person counted once),
and refuse self-approval with ``review.approved_by_other`` / ``review.approvals_by_others``: an
approval whose ``by`` is the version's creator (``model_versions.created_by``, or the user of
its training run, compared without case) does not count there
(:mod:`nbmlops.registry.rule_language`). A promotion records the approvals it considered, so the
decision links them, and the backtest of a rules change can count them again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.capture.run import Run
from nbmlops.errors import RegistryError, RunNotFoundError
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.registry.rule_language import is_self_approval
from nbmlops.store import Store
from nbmlops.store import reviews as review_sql


@dataclass(frozen=True)
class Approval:
    """One approval of ``name``/``version``; ``self_approval`` when ``by`` made the version."""

    approval_id: int
    name: str
    version: int
    by: str
    comment: str | None
    review_id: int | None
    actor: str | None
    host: str | None
    at: float
    self_approval: bool = False

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.at, dt.UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approval_id": self.approval_id,
            "name": self.name,
            "version": self.version,
            "by": self.by,
            "comment": self.comment,
            "review_id": self.review_id,
            "actor": self.actor,
            "host": self.host,
            "at": self.at,
            "self_approval": self.self_approval,
        }

    def __repr__(self) -> str:
        review = f" on review {self.review_id}" if self.review_id is not None else ""
        own = " (self-approval)" if self.self_approval else ""
        comment = f": {self.comment!r}" if self.comment else ""
        return (
            f"<Approval {self.approval_id} of {self.ref} by {self.by}{own}{review} "
            f"at {self.when:%Y-%m-%d %H:%M} UTC{comment}>"
        )

    def _repr_html_(self) -> str:
        return f"<code>{html.escape(repr(self))}</code>"


def approve(
    store: Store,
    name: str,
    version: int | str,
    by: str,
    comment: str | None = None,
    review_id: int | None = None,
) -> Approval:
    """Record that ``by`` approves ``name``/``version`` (on review ``review_id``, if given)."""
    mv = resolve(store, f"{name}/{int(version)}")
    if mv.deleted:
        raise RegistryError(f"{mv.ref} was deleted; it cannot be approved.")
    if not isinstance(by, str) or not by.strip():
        raise RegistryError(
            f"An approval of {mv.ref} needs the approver's name: by={by!r} is empty. Pass "
            f"--by NAME (nbmlops review approve {mv.ref} --by NAME)."
        )
    if review_id is not None:
        _check_review(store, mv, review_id)
    row = {
        "name": mv.name,
        "version": mv.version,
        "by": by.strip(),
        "comment": comment or None,
        "review_id": review_id,
        "actor": current_user(),
        "host": hostname(),
        "at": time.time(),
    }
    approval_id = review_sql.add_approval(store, row)
    return _approval({**row, "approval_id": approval_id}, creators(mv))


def approvals(store: Store, name: str, version: int | str | None = None) -> list[Approval]:
    """The approvals of ``name`` (of one ``version``), oldest first."""
    if version is None and ("/" in name or "@" in name):  # "cancer/2", "cancer@champion"
        mv = resolve(store, name)
        rows = review_sql.approvals_of(store, mv.name, mv.version)
        name = mv.name
    elif version is None:
        resolve(store, name)  # ModelNotFoundError listing the models there are
        rows = review_sql.approvals_of(store, name)
    else:
        mv = resolve(store, f"{name}/{int(version)}")
        rows = review_sql.approvals_of(store, mv.name, mv.version)
    made: dict[int, tuple[str, ...]] = {}
    found = []
    for row in rows:
        version_number = int(row["version"])
        if version_number not in made:
            made[version_number] = creators(resolve(store, f"{name}/{version_number}"))
        found.append(_approval(row, made[version_number]))
    return found


def creators(mv: ModelVersion) -> tuple[str, ...]:
    """Who made ``mv``: who registered it and who ran its training run (either may approve
    it, and neither approval counts for ``review.approved_by_other``)."""
    found = [mv.created_by]
    if mv.run_id is not None:
        # A store copied without the run still knows who registered the version.
        with contextlib.suppress(RunNotFoundError):
            found.append(Run(mv.store, mv.run_id).info.get("user"))
    return tuple(dict.fromkeys(str(f) for f in found if f))


def approvals_at(
    store: Store, mv: ModelVersion, at: float | None = None
) -> list[Mapping[str, Any]]:
    """The approvals of ``mv`` recorded at or before ``at`` (all when None), as a promotion
    records them: who, when, on which review."""
    rows = review_sql.approvals_of(store, mv.name, mv.version)
    return [
        {k: row[k] for k in ("approval_id", "by", "actor", "at", "review_id", "comment")}
        for row in rows
        if at is None or float(row["at"]) <= at
    ]


def _approval(row: Mapping[str, Any], made_by: tuple[str, ...]) -> Approval:
    own = is_self_approval(row, made_by)
    return Approval(
        approval_id=int(row["approval_id"]),
        name=str(row["name"]),
        version=int(row["version"]),
        by=str(row["by"]),
        comment=row.get("comment"),
        review_id=None if row.get("review_id") is None else int(row["review_id"]),
        actor=row.get("actor"),
        host=row.get("host"),
        at=float(row["at"]),
        self_approval=own,
    )


def _check_review(store: Store, mv: ModelVersion, review_id: int) -> None:
    found = review_sql.review(store, int(review_id))
    if found is None:
        raise RegistryError(
            f"Review {review_id} not found; an approval of {mv.ref} can name a review of it "
            f"(generate one with nbmlops review model {mv.ref}), or none."
        )
    if found["kind"] == "model" and (found["name"], found["version"]) != (mv.name, mv.version):
        raise RegistryError(
            f"Review {review_id} is a review of {found['name']}/{found['version']}, not of "
            f"{mv.ref}; approve {mv.ref} on one of its own reviews, or on none."
        )
