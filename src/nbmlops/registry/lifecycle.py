"""Deprecation, deletion and consumers.

A deprecated version stays loadable, with a :class:`~nbmlops.errors.DeprecatedModelWarning`.
Deleting a version is refused while an alias points at it or while anyone loaded it within the
window (30 days unless told otherwise), so a version goes away only after its consumers moved.

Deleting records a ``deleted`` event: the version row is immutable and stays (its metadata is
history), ``load_model`` refuses it, and the artifact object stays in ``objects/`` because
content-addressed blobs may be shared by runs or other versions. Reclaiming the space is a
separate, explicit garbage collection (not done here).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING

from nbmlops._display import when
from nbmlops.errors import ModelInUseError, RegistryError
from nbmlops.registry.events import Moment, new_event, to_seconds
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.store import Store
from nbmlops.store import registry as sql

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_WINDOW = dt.timedelta(days=30)  # a load this recent blocks deleting the version


def deprecate_version(store: Store, name: str, version: int | str, reason: str) -> ModelVersion:
    """Mark ``name``/``version`` deprecated for ``reason``; it stays loadable, with a warning."""
    if not isinstance(reason, str) or not reason.strip():
        raise RegistryError("deprecate needs a reason, e.g. 'replaced by version 4 (lower MAE)'.")
    mv = resolve(store, f"{name}/{int(version)}")
    if mv.deleted:
        raise RegistryError(f"{mv.ref} was deleted; there is nothing left to deprecate.")
    event = new_event(mv.name, "deprecated", version=mv.version, payload={"reason": reason.strip()})
    sql.append_event(store, event)
    return mv


def delete_version(
    store: Store,
    name: str,
    version: int | str,
    *,
    window: dt.timedelta | float = DEFAULT_WINDOW,
    reason: str | None = None,
) -> None:
    """Delete ``name``/``version``: refused (ModelInUseError, saying why) while an alias points
    at it or while it was loaded within ``window`` (a timedelta, or seconds)."""
    mv = resolve(store, f"{name}/{int(version)}")
    if mv.deleted:
        raise RegistryError(f"{mv.ref} is already deleted.")
    seconds = window.total_seconds() if isinstance(window, dt.timedelta) else float(window)
    since = time.time() - seconds
    payload = {"reason": reason, "window_s": seconds}
    event = new_event(mv.name, "deleted", version=mv.version, payload=payload)
    aliases, loads = sql.record_deletion(store, event, since)
    if aliases:
        shown = ", ".join(f"@{a}" for a in aliases)
        raise ModelInUseError(
            f"{mv.ref} cannot be deleted: {shown} point{'s' if len(aliases) == 1 else ''} at it. "
            f"Move the alias first (nbmlops.set_alias or nbmlops.promote), then delete.",
            mv.name,
            mv.version,
        )
    if loads:
        days = seconds / 86400
        who = "; ".join(
            f"{row.consumer} on {row.host} (last {when(row.last_load)})" for row in loads[:5]
        )
        more = f" and {len(loads) - 5} more" if len(loads) > 5 else ""
        raise ModelInUseError(
            f"{mv.ref} cannot be deleted: {len(loads)} consumer{'s' if len(loads) > 1 else ''} "
            f"loaded it in the last {days:g} days: {who}{more}. Deprecate it "
            "(nbmlops.deprecate_model_version) so they get a warning, and delete it once they "
            "have moved, or pass a shorter window.",
            mv.name,
            mv.version,
        )


def consumers(
    store: Store, name: str, version: int | str, *, since: Moment | None = None
) -> pd.DataFrame:
    """Who loaded ``name``/``version``: one row per consumer and host with ``loads``,
    ``first_load``, ``last_load`` and ``last_pid``, most recent first."""
    import pandas as pd  # heavy: kept out of import nbmlops

    mv = resolve(store, f"{name}/{int(version)}")
    rows = sql.consumers_of(
        store, mv.name, mv.version, None if since is None else to_seconds(since)
    )
    return pd.DataFrame(
        {
            "consumer": [r.consumer for r in rows],
            "host": [r.host for r in rows],
            "loads": [int(r.loads) for r in rows],
            "first_load": pd.to_datetime([r.first_load for r in rows], unit="s", utc=True),
            "last_load": pd.to_datetime([r.last_load for r in rows], unit="s", utc=True),
            "last_pid": [r.last_pid for r in rows],
        }
    )
