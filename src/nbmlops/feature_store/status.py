"""What people ask of a feature view (issue #17 item 5): its versions and what each changed,
how fresh its online values are ("last materialised, staleness vs TTL"), which models use it.
One place for the panel (``%features``) and ``nbmlops features show``.

A materialisation copies the latest value per entity with event time up to its window end, so
no online value of that view version is newer than the end of the furthest window. Its age is
therefore the time since that end; once the age passes the view's TTL, every online value has
expired (reads return None, flagged ``expired``) until the view is materialised again: that is
what "stale" means here. A view with no TTL is never stale by this rule; its age is still shown.
Reads use the highest *materialised* version, so a newer version not yet materialised is said.
"""

from __future__ import annotations

import dataclasses
import time

from nbmlops import _display
from nbmlops.feature_store.changes import what_changed
from nbmlops.feature_store.definitions import FeatureView, get_view
from nbmlops.store import features as sql
from nbmlops.store.db import Store


def age_text(seconds: float | None) -> str:
    """An age as people read it: ``2 h 05 min``, past two days ``8.3 days``."""
    if seconds is not None and seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    return _display.duration(seconds)


@dataclasses.dataclass(frozen=True)
class Freshness:
    """The last materialisation of one view version, seen at ``now``."""

    view: str  # name@version
    ttl_seconds: float
    now: float
    materialized_at: float | None = None  # when the last materialisation finished
    end: float | None = None  # the furthest window end: no online value is newer
    rows_read: int | None = None
    rows_written: int | None = None

    @property
    def materialized(self) -> bool:
        return self.end is not None

    @property
    def age_seconds(self) -> float | None:
        """Time since the furthest materialised window end."""
        return None if self.end is None else max(self.now - self.end, 0.0)

    @property
    def stale(self) -> bool:
        """Older than the TTL: every online value of this version has expired."""
        age = self.age_seconds
        return bool(self.ttl_seconds) and age is not None and age > self.ttl_seconds

    def summary(self) -> str:
        """``3 h 05 min, over the TTL of 2 h 00 min: all values expired``: the age of the
        newest value there can be online."""
        if not self.materialized:
            return "never materialised"
        age = age_text(self.age_seconds)
        if not self.ttl_seconds:
            return f"{age} (no TTL)"
        ttl = _display.duration(self.ttl_seconds)
        if self.stale:
            return f"{age}, over the TTL of {ttl}: all values expired"
        return f"{age}, within the TTL of {ttl}"

    def facts(self) -> dict[str, str]:
        """Key/value lines for a listing (CLI ``features show``, the panel)."""
        if not self.materialized:
            return {"materialised": f"{self.view}: never"}
        return {
            "materialised": f"{self.view} at {_display.when(self.materialized_at)}",
            "values up to": _display.when(self.end),
            "rows": f"{self.rows_read:,} read, {self.rows_written:,} written",
            "age": self.summary(),
        }


def freshness(store: Store, view: FeatureView, now: float | None = None) -> Freshness:
    """The freshness of version ``view`` (never materialised: ``materialized`` False)."""
    now = time.time() if now is None else now
    last = sql.last_materialization(store, view.name, view.version) if store.exists() else None
    if last is None:
        return Freshness(view.ref, view.ttl_seconds, now)
    return Freshness(
        view.ref,
        view.ttl_seconds,
        now,
        materialized_at=float(last["finished_at"]),
        end=float(last["end_ts"]),
        rows_read=int(last["rows_read"]),
        rows_written=int(last["rows_written"]),
    )


@dataclasses.dataclass(frozen=True)
class ViewStatus:
    """One view: the version asked for, every version with what it changed, the freshness of
    each, and the model versions trained from a training set that used the view."""

    view: FeatureView
    versions: tuple[FeatureView, ...]  # oldest first
    changes: tuple[str, ...]  # what each version changed from the one before
    freshness: tuple[Freshness, ...]  # of each version
    models: tuple[dict[str, object], ...]  # name, version, view_version

    @property
    def served(self) -> Freshness | None:
        """The freshness of the version online reads use: the highest materialised one."""
        return next((f for f in reversed(self.freshness) if f.materialized), None)

    def model_refs(self) -> list[str]:
        """``churn/2 (from @1)`` for each model version."""
        return [f"{m['name']}/{m['version']} (from @{m['view_version']})" for m in self.models]


def view_status(
    store: Store, name: str, version: int | None = None, now: float | None = None
) -> ViewStatus:
    """The status of view ``name`` (at ``version``, the latest when None); FeatureError
    naming the known views when there is no such view."""
    view = get_view(store, name, version)
    now = time.time() if now is None else now
    versions = tuple(
        get_view(store, name, row["version"]) for row in sql.view_versions(store, name)
    )
    return ViewStatus(
        view=view,
        versions=versions,
        changes=tuple(
            what_changed(versions[i - 1] if i else None, v) for i, v in enumerate(versions)
        ),
        freshness=tuple(freshness(store, v, now) for v in versions),
        models=tuple(sql.models_using_view(store, name)),
    )
