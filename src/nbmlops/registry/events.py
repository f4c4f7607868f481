"""Aliases and the event timeline.

An alias is not a column anywhere: it is the last ``alias_set``/``alias_removed`` event for
(model, alias). So where an alias points now, where it pointed at any past moment
(:func:`who_served`), and who moved it and why (:func:`history`) all come from one append-only
table that SQLite triggers keep append-only. The timeline also shows what the model's servers did
(``endpoint_events``, written by :mod:`nbmlops.serving`: loads, alias swaps, failed swaps, stops),
so a swap reads as one more event of the model's history.

Current state follows commit order (``event_id``); a past moment is looked up by the events'
``at`` times (UTC seconds), which come from the clocks of the machines that wrote them.
"""

from __future__ import annotations

import datetime as dt
import heapq
import json
import time
import warnings
from typing import TYPE_CHECKING, Any

from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.errors import DeprecatedModelWarning, ModelNotFoundError, RegistryError
from nbmlops.registry.model_version import ModelVersion, check_alias, check_name, resolve
from nbmlops.store import Store
from nbmlops.store import endpoints as endpoint_sql
from nbmlops.store import registry as sql

if TYPE_CHECKING:
    import pandas as pd

Moment = float | int | str | dt.datetime


def set_alias(store: Store, name: str, alias: str, version: int | str) -> ModelVersion:
    """Point ``name@alias`` at ``version`` (recorded as an ``alias_set`` event)."""
    check_alias(alias)
    mv = resolve(store, f"{check_name(name)}/{int(version)}")
    status = mv.status
    if status == "deleted":
        raise RegistryError(f"{mv.ref} was deleted; an alias cannot point at it.")
    if status == "deprecated":
        warnings.warn(
            f"{name}@{alias} now points at {mv.ref}, which is deprecated.",
            DeprecatedModelWarning,
            stacklevel=3,
        )
    sql.move_alias(store, new_event(name, "alias_set", version=mv.version, alias=alias))
    return mv


def remove_alias(store: Store, name: str, alias: str) -> int | None:
    """Remove ``name@alias``; returns the version it pointed at (None if it was not set)."""
    check_alias(alias)
    resolve(store, check_name(name))
    return sql.move_alias(store, new_event(name, "alias_removed", alias=alias))


def who_served(store: Store, name: str, alias: str, at: Moment) -> ModelVersion | None:
    """The version ``name@alias`` pointed at, at moment ``at`` (None if it pointed nowhere).

    ``at``: UTC seconds since the epoch, a datetime (naive ones are read as UTC, the store's
    convention) or an ISO 8601 string. Which servers served ``name`` then, and which version
    each had loaded (a server follows its alias after a poll, or keeps a pinned version), is
    :func:`served_by`.
    """
    check_alias(alias)
    resolve(store, check_name(name))
    event = sql.alias_target_at(store, name, alias, to_seconds(at))
    if event is None or event.kind != "alias_set":
        return None
    return resolve(store, f"{name}/{event.version}")


def served_by(store: Store, name: str, at: Moment) -> list[endpoint_sql.ServedAt]:
    """The endpoints that served ``name`` at moment ``at``, each with the version it had loaded
    then (newest endpoint first; a server that failed to load anything served nothing)."""
    resolve(store, check_name(name))
    return endpoint_sql.served_at(store, name, to_seconds(at))


def to_seconds(at: Moment) -> float:
    """``at`` as UTC seconds since the epoch (a naive datetime is read as UTC)."""
    if isinstance(at, bool):
        raise TypeError("at must be a time, not a bool")
    if isinstance(at, int | float):
        return float(at)
    if isinstance(at, str):
        try:
            at = dt.datetime.fromisoformat(at.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"at={at!r} is not an ISO 8601 time such as '2026-05-01T14:00:00+00:00'"
            ) from None
    if isinstance(at, dt.datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.UTC)
        return at.timestamp()
    raise TypeError(f"at must be seconds, a datetime or an ISO string, not {type(at).__name__}")


def new_event(
    name: str,
    kind: str,
    *,
    version: int | None = None,
    alias: str | None = None,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``model_events`` row to write: who (the current user, this host) and when (now)."""
    return {
        "name": name,
        "version": version,
        "kind": kind,
        "alias": alias,
        "payload": payload or {},
        "actor": current_user(),
        "host": hostname(),
        "at": time.time(),
    }


# -- the timeline ---------------------------------------------------------------------------


def history(store: Store, name: str) -> pd.DataFrame:
    """Every event of ``name``, oldest first: ``event_id, at, kind, version, alias, actor,
    host, summary`` and the decoded ``payload`` (rule results of promotions, reasons...).

    The events of the model's servers are merged in by time as kinds ``served:loaded``,
    ``served:load_failed``, ``served:swapped``, ``served:swap_failed`` and ``served:stopped``
    (``event_id`` empty: they are numbered in ``endpoint_events``; ``host`` is the server's,
    ``actor`` empty; the payload adds ``endpoint_id`` and ``url``)."""
    import pandas as pd  # heavy: kept out of import nbmlops

    check_name(name)
    if not sql.model_exists(store, name):
        resolve(store, name)  # raises ModelNotFoundError with the list of models
    rows = [_model_event(r) for r in sql.events_of(store, name)]
    served = [_served_event(r) for r in endpoint_sql.events_of(store, name)]
    # Each list is in commit order; merging by time keeps that order within each.
    timeline = list(heapq.merge(rows, served, key=lambda e: e["at"]))
    return pd.DataFrame(
        {
            "event_id": pd.array([e["event_id"] for e in timeline], dtype="Int64"),
            "at": pd.to_datetime([e["at"] for e in timeline], unit="s", utc=True),
            "kind": [e["kind"] for e in timeline],
            "version": pd.array([e["version"] for e in timeline], dtype="Int64"),
            "alias": [e["alias"] for e in timeline],
            "actor": [e["actor"] for e in timeline],
            "host": [e["host"] for e in timeline],
            "summary": [e["summary"] for e in timeline],
            "payload": [e["payload"] for e in timeline],
        }
    )


def _model_event(row: sql.EventRow) -> dict[str, Any]:
    payload = json.loads(row.payload) if row.payload else {}
    return {**row._asdict(), "payload": payload, "summary": summarise(row, payload)}


def _served_event(row: endpoint_sql.EndpointEventRow) -> dict[str, Any]:
    payload = {
        "endpoint_id": row.endpoint_id,
        "url": row.url,
        **(json.loads(row.payload) if row.payload else {}),
    }
    return {
        "event_id": None,
        "at": row.at,
        "kind": f"served:{row.kind}",
        "version": row.version,
        "alias": payload.get("alias", row.alias),
        "actor": None,
        "host": row.host,
        "summary": summarise_served(row.kind, row.url, row.version, payload),
        "payload": payload,
    }


def summarise_served(kind: str, url: str, version: int | None, payload: dict[str, Any]) -> str:
    """One line saying what a server did, for the history table."""
    if kind == "loaded":
        return f"{url} serves version {version} (self-test {payload.get('self_test', '?')})"
    if kind == "load_failed":
        return f"{url} serves nothing: {payload.get('reason')}"
    if kind == "swapped":
        previous = payload.get("previous")
        return f"{url} swapped {previous} -> {version} following @{payload.get('alias')}"
    if kind == "swap_failed":
        return f"{url} did not swap to version {payload.get('candidate')}: {payload.get('reason')}"
    if kind == "stopped":
        log = payload.get("log") or {}
        served = f" (was serving version {version})" if version is not None else ""
        return (
            f"{url} stopped{served}; {log.get('logged', 0)} predictions logged, "
            f"{log.get('dropped', 0)} dropped"
        )
    return f"{url} {kind}"


def summarise(event: sql.EventRow, payload: dict[str, Any]) -> str:
    """One line saying what an event did, for the history table, the panel and the CLI."""
    kind, version, alias = event.kind, event.version, event.alias
    if kind == "registered":
        source = payload.get("source") or {}
        origin = (
            f"from run {source['run_id']} ({source.get('artifact')})"
            if source.get("run_id")
            else "from a live object"
        )
        return f"registered version {version} {origin}, {payload.get('format', '?')}"
    if kind == "alias_set":
        previous = payload.get("previous")
        moved = f"{previous} -> {version}" if previous is not None else f"-> {version}"
        via = " by promotion" if payload.get("promotion") else ""
        return f"@{alias} {moved}{via}"
    if kind == "alias_removed":
        return f"@{alias} removed (was {version})"
    if kind == "promotion":
        flag = " [uncommitted rules]" if (payload.get("rules_file") or {}).get("dirty") else ""
        return (
            f"promotion of version {version} to @{alias}: {payload.get('outcome')} - "
            f"{payload.get('reason', '')}{flag}"
        )
    if kind == "deprecated":
        return f"version {version} deprecated: {payload.get('reason')}"
    if kind == "deleted":
        reason = payload.get("reason")
        return f"version {version} deleted" + (f": {reason}" if reason else "")
    return str(kind)


def current_champion(store: Store, name: str, alias: str) -> ModelVersion | None:
    """The version ``name@alias`` points at now, or None."""
    version = sql.alias_target(store, name, alias)
    if version is None:
        return None
    try:
        return resolve(store, f"{name}/{version}")
    except ModelNotFoundError:  # pragma: no cover - an alias only points at existing versions
        return None
