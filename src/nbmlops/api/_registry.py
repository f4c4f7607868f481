"""The model registry's front door: register, resolve, load, promote, deprecate, delete.

Every function takes ``store=`` (a :class:`~nbmlops.store.Store`, a path, or None for the
default store) and calls one function of :mod:`nbmlops.registry`::

    mv = nbm.register_model(run_id, "wine")           # ModelVersion wine/1 (immutable)
    nbm.promote("wine", 1)                            # rules from nbmlops.toml; PromotionDecision
    model = nbm.load_model("wine@champion")           # verified before it is deserialised
    nbm.promote("wine", 2, dry_run=True)              # what the rules would decide; records nothing
    nbm.model_history("wine")                         # every event, with the rules' reasons
    nbm.who_served("wine", "champion", at="2026-05-01T12:00Z")

The verbs: ``promote(..., dry_run=True)`` previews a promotion; ``deprecate_model_version`` and
``delete_model_version`` are the pair that retires a version (named after the version, as
``get_model_version`` and ``register_model`` are, because a bare ``nbm.delete`` would not say
what it deletes once runs, datasets and features live in the same namespace).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops.capture.run import Run
from nbmlops.registry import events, lifecycle, listings, loading, promotion, registering
from nbmlops.registry.events import Moment
from nbmlops.registry.lifecycle import DEFAULT_WINDOW
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.registry.promotion import PromotionDecision
from nbmlops.registry.rules_file import RulesFile
from nbmlops.store import StoreLike, open_store, store_at

if TYPE_CHECKING:
    import pandas as pd


def register_model(
    run_id_or_model: object,
    name: str,
    description: str | None = None,
    *,
    artifact: str | None = None,
    format: str = "auto",
    store: StoreLike = None,
) -> ModelVersion:
    """Register a model as the next version of ``name``; returns the immutable ModelVersion.

    ``run_id_or_model``: a run id (or unique prefix) or a Run, whose logged model is registered
    with its datasets, metrics and library versions (``artifact=`` picks one when the run logged
    several); or a fitted model object, registered with no run. Identical content registered
    again under the same name returns the existing version. ``format``: ``"auto"`` stores
    scikit-learn models in skops' safe format when skops loads them with its default trusted
    types and they round-trip, else pickle; ``"skops"`` insists; ``"pickle"`` keeps a pickle.
    """
    if store is None and isinstance(run_id_or_model, Run):
        store = run_id_or_model.store
    return registering.register(
        open_store(store), run_id_or_model, name, description, artifact=artifact, format=format
    )


def get_model_version(
    ref: str, version: int | None = None, *, store: StoreLike = None
) -> ModelVersion:
    """The version ``ref`` names: ``"name/3"``, ``"name@alias"``, or ``"name"`` (the newest not
    deleted); ``get_model_version("name", 3)`` works too."""
    return resolve(open_store(store, create=False), ref, version)


def load_model(
    ref: str,
    version: int | None = None,
    *,
    consumer: str | None = None,
    trusted: Sequence[str] | None = None,
    allow_pickle: bool = True,
    record: bool = True,
    store: StoreLike = None,
) -> Any:
    """Load a registered model: no byte of it is deserialised before that byte has been checked
    against a digest recorded in the database at registration (a changed artifact raises
    ArtifactIntegrityError and no model is returned), library versions other than the recorded
    ones warn
    (LibraryVersionWarning), a deprecated version warns (DeprecatedModelWarning), a deleted one
    is refused. The load is recorded with its consumer (``consumer``, else the notebook or
    script) for :func:`consumers`, unless ``record=False`` or the store is read-only (a model
    served from a read-only volume loads; its loads are not recorded). ``trusted`` adds types to
    skops' default trusted set; ``allow_pickle=False`` refuses pickle artifacts."""
    st = open_store(store, create=False)
    return loading.load_model(
        st,
        ref,
        version=version,
        consumer=consumer,
        trusted=trusted,
        allow_pickle=allow_pickle,
        record=record and not st.read_only,
    )


def models(*, store: StoreLike = None) -> pd.DataFrame:
    """Registered models: name, latest_version, versions, aliases, description, created_at,
    updated_at."""
    return listings.models_frame(open_store(store, create=False))


def model_versions(name: str, *, store: StoreLike = None) -> pd.DataFrame:
    """Every version of ``name`` with aliases, status, class, format, size, sha256, run and
    ``metrics.<k>`` columns."""
    return listings.versions_frame(open_store(store, create=False), name)


def set_alias(name: str, alias: str, version: int, *, store: StoreLike = None) -> ModelVersion:
    """Point ``name@alias`` at ``version`` directly (no rules; use :func:`promote` for those)."""
    return events.set_alias(open_store(store), name, alias, version)


def remove_alias(name: str, alias: str, *, store: StoreLike = None) -> int | None:
    """Remove ``name@alias``; returns the version it pointed at."""
    return events.remove_alias(open_store(store), name, alias)


def model_history(name: str, *, store: StoreLike = None) -> pd.DataFrame:
    """The timeline of ``name``: registrations, alias moves, promotion decisions (with every
    rule's reason), deprecations and deletions, oldest first."""
    return events.history(open_store(store, create=False), name)


def who_served(
    name: str, alias: str, at: Moment, *, store: StoreLike = None
) -> ModelVersion | None:
    """The version ``name@alias`` pointed at, at moment ``at`` (UTC seconds, a datetime, naive
    read as UTC, or an ISO string); None if it pointed nowhere then.

    The registry's answer (where the alias pointed) stays this function's return value; the
    servers' answer is ``nbm.endpoints(name, at=at)``: the endpoints up at that moment, each
    with the version it had loaded, which after an alias move lags by up to one poll interval
    (or differs, for a pinned server or a failed swap)."""
    return events.who_served(open_store(store, create=False), name, alias, at)


def promote(
    name: str,
    version: int,
    *,
    rules_path: str | os.PathLike[str] | None = None,
    dry_run: bool = False,
    store: StoreLike = None,
) -> PromotionDecision:
    """Evaluate the ``[rules.<name>]`` table of ``nbmlops.toml`` (found from the store's folder
    upwards, or ``rules_path``) for ``name``/``version``; move its ``promote_to`` alias only if
    every rule passes. The decision, each rule's reason and the rules file's git commit (flagged
    when the file has uncommitted changes) are recorded in the history. ``dry_run=True`` says
    what would be decided, rule by rule, and records and moves nothing."""
    path = None if rules_path is None else Path(rules_path)
    st = open_store(store, create=not dry_run)
    return promotion.promote(st, name, version, rules_path=path, dry_run=dry_run)


def check_rules(
    rules_path: str | os.PathLike[str] | None = None, *, store: StoreLike = None
) -> RulesFile:
    """Parse and check the rules file without evaluating it (for CI and pre-commit hooks);
    a malformed file raises RulesFileError with its line. Needs no store: without
    ``rules_path`` the file is looked for from the store's folder upwards, whether or not a store
    was made there yet."""
    path = None if rules_path is None else Path(rules_path)
    return promotion.check_rules(store_at(store), path)


def deprecate_model_version(
    name: str, version: int, reason: str, *, store: StoreLike = None
) -> ModelVersion:
    """Mark a version deprecated for ``reason``: it stays loadable, with a
    DeprecatedModelWarning, until its consumers have moved and it can be deleted."""
    return lifecycle.deprecate_version(open_store(store), name, version, reason)


def delete_model_version(
    name: str,
    version: int,
    *,
    window: dt.timedelta | float = DEFAULT_WINDOW,
    reason: str | None = None,
    store: StoreLike = None,
) -> None:
    """Delete a version; refused with ModelInUseError (saying why) while an alias points at it
    or anyone loaded it within ``window`` (default 30 days; a timedelta or seconds). The version's
    record and artifact stay (history and content addressing); loading it is refused."""
    lifecycle.delete_version(open_store(store), name, version, window=window, reason=reason)


def consumers(
    name: str, version: int, *, since: Moment | None = None, store: StoreLike = None
) -> pd.DataFrame:
    """Who loaded ``name``/``version``: consumer, host, loads, first_load, last_load,
    last_pid; most recent first."""
    return lifecycle.consumers(open_store(store, create=False), name, version, since=since)
