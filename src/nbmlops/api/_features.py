"""The feature store's front door: definitions as code, point-in-time training sets, online
values, and the check that both sides agree.

    nbm.entity("driver", keys="driver_id")
    @nbm.feature_view(entity="driver", timestamp="event_ts", ttl="2h")
    def driver_stats():
        return pd.read_parquet("driver_stats.parquet")
    train = nbm.training_set(orders, ["driver_stats:conv_rate", "driver_stats:acc_rate"])
    nbm.materialize("driver_stats")
    nbm.online_features(["driver_stats:conv_rate"], entity_rows=[{"driver_id": 1001}])
    nbm.check_feature_skew("driver_stats")

Every function takes ``store=`` like the rest of the API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.errors import FeatureError
from nbmlops.feature_store import online
from nbmlops.feature_store import training_set as training_sets
from nbmlops.feature_store.definitions import (
    Entity,
    FeatureView,
    define_entity,
    define_view,
    get_view,
    view_rows,
)
from nbmlops.feature_store.online import MaterializeReport, OnlineFeatures
from nbmlops.feature_store.skew import SkewReport
from nbmlops.feature_store.skew import check_feature_skew as check_skew
from nbmlops.store import StoreLike, open_store, store_at
from nbmlops.store import features as sql

if TYPE_CHECKING:
    import pandas as pd


def entity(
    name: str, keys: str | Sequence[str], *, description: str = "", store: StoreLike = None
) -> Entity:
    """Declare what features describe (``"driver"``) and its key column(s), one or more:
    composite keys are compared as tuples, never concatenated. Declaring it again is a no-op;
    other keys for a declared name are refused."""
    return define_entity(open_store(store), name, keys, description)


def feature_view(
    function: Callable[..., Any] | None = None,
    *,
    entity: str,
    timestamp: str,
    ttl: str | float | dt.timedelta = 0,
    source: Any = None,
    created: str | None = None,
    keys: str | Sequence[str] | None = None,
    name: str | None = None,
    description: str = "",
    store: StoreLike = None,
) -> Any:
    """Define (and record) a feature view; as a decorator, the function computes it.

    ``@nbm.feature_view(entity=..., timestamp=..., ttl="2h")`` on ``def driver_stats(): ...``
    returning a DataFrame of key column(s), the event time ``timestamp``, optionally the
    created time ``created``, and the features; with ``source=`` (a DataFrame, a Parquet file or
    folder, a Delta table, a saved dataset ``"name@3"``, or SQL run by DuckDB) the function is a
    transformation taking the source as a pandas DataFrame. Called with ``name=`` and
    ``source=``, ``nbm.feature_view`` defines a view over the source as it is, no decorator;
    as a decorator ``name=`` overrides the function's name.
    ``ttl``: how old a value may be to count (``"2h"``; 0: no limit). ``entity``: a declared
    entity (:func:`entity`), or a key column name used as the entity.

    Returns the :class:`FeatureView` (``driver_stats@1``). Running the same definition again
    records nothing new; an edited one becomes the next version; a definition identical to a
    view under another name warns (DuplicateFeatureWarning).
    """
    options = {
        "entity": entity,
        "timestamp": timestamp,
        "ttl": ttl,
        "source": source,
        "created": created,
        "keys": keys,
        "description": description,
    }

    def define(fn: Callable[..., Any]) -> FeatureView:
        return define_view(
            open_store(store),
            name=name or fn.__name__,
            function=fn,
            **options,
        )

    if function is not None:
        return define(function)
    if name is not None and source is not None:
        return define_view(open_store(store), name=name, **options)
    return define


def get_feature_view(
    name: str, version: int | None = None, *, store: StoreLike = None
) -> FeatureView:
    """View ``name`` (``"driver_stats"``, the latest, or ``"driver_stats@2"``)."""
    if version is None and "@" in name:
        name, number = name.split("@", 1)
        if not number.isdigit():
            raise FeatureError(
                f"Feature view {name}@{number}: after '@' put a version number, e.g. {name}@2.",
                name,
                number,
            )
        version = int(number)
    return get_view(open_store(store, create=False), name, version)


def feature_view_versions(name: str, *, store: StoreLike = None) -> list[FeatureView]:
    """Every recorded version of view ``name``, oldest first."""
    opened = open_store(store, create=False)
    return [get_view(opened, name, row["version"]) for row in sql.view_versions(opened, name)]


def features(*, store: StoreLike = None) -> pd.DataFrame:
    """One row per feature view (its latest version): name, version, entity, keys, features,
    ttl_seconds, source_kind, owner, updated_at, models (the model versions trained from a
    training set that used it)."""
    import pandas as pd

    opened = open_store(store, create=False)
    rows = view_rows(opened) if opened.exists() else []
    entities = {e["name"]: e["keys"] for e in sql.entities(opened)} if rows else {}
    frame = pd.DataFrame(
        [
            {
                "name": r["name"],
                "version": r["version"],
                "entity": r["entity"],
                "keys": entities.get(r["entity"], []),
                "features": [f["name"] for f in r["features"]],
                "ttl_seconds": r["ttl_seconds"],
                "source_kind": r["source_kind"],
                "owner": r["owner"],
                "updated_at": r["created_at"],
                "models": r["models"],
            }
            for r in rows
        ],
        columns=[
            "name",
            "version",
            "entity",
            "keys",
            "features",
            "ttl_seconds",
            "source_kind",
            "owner",
            "updated_at",
            "models",
        ],
    )
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], unit="s", utc=True)
    return frame


def training_set(
    entity_df: Any,
    features: Sequence[str],
    *,
    timestamp: str = "event_timestamp",
    created_filter: bool = False,
    full_names: bool = False,
    name: str | None = None,
    save: bool = True,
    store: StoreLike = None,
) -> pd.DataFrame:
    """A point-in-time-correct training set: one row per row of ``entity_df`` (pandas, polars
    or pyarrow, with the entity key column(s) and the time ``timestamp``), in its order, with
    each feature of ``features`` (``["driver_stats:conv_rate", "driver_stats@2:acc_rate"]``)
    as it was known at that row's time.

    A feature row counts for an entity row at time T when its event time is <= T and, with a
    TTL, >= T - ttl (both inclusive); the latest event time wins, ties going to the latest
    created time (``created_filter=True`` also excludes rows created after T); an entity row
    with none gets nulls, never dropped. Computed by DuckDB. ``full_names=True`` names columns
    ``view__feature``. The result is saved as a version of dataset ``name`` (default
    ``training.<views>``; ``save=False``: only fingerprinted) and linked to the tracked run, with
    the data contract of its features, so a model trained from it knows its features."""
    return training_sets.training_set(
        open_store(store),
        entity_df,
        features,
        timestamp=timestamp,
        created_filter=created_filter,
        full_names=full_names,
        name=name,
        save=save,
    )


def _view(view: str | FeatureView, store: StoreLike) -> tuple[FeatureView, Any]:
    opened = open_store(store, create=False)
    if isinstance(view, FeatureView):
        return view, opened
    return get_feature_view(view, store=opened), opened


def materialize(
    view: str | FeatureView,
    *,
    end: float | dt.datetime | None = None,
    start: float | dt.datetime | None = None,
    store: StoreLike = None,
) -> MaterializeReport:
    """Copy the latest value per entity of ``view`` (``"driver_stats"``, its latest version,
    or ``"driver_stats@2"``) into the online store, incrementally: event times after the end
    of the last materialisation (or ``start``) up to ``end`` (default: now). An older row never
    overwrites a newer one, also when two materialisations run at once."""
    found, opened = _view(view, store)
    return online.materialize(opened, found, end=end, start=start)


def online_features(
    features: Sequence[str],
    entity_rows: Sequence[Mapping[str, Any]],
    *,
    now: float | dt.datetime | None = None,
    store: StoreLike = None,
) -> OnlineFeatures:
    """The latest materialised values of ``features`` (``["driver_stats:conv_rate"]``) for
    each of ``entity_rows`` (``[{"driver_id": 1001}]``), in that order. A value older than its
    view's TTL at ``now`` is None and flagged ``expired``; an entity never materialised is None,
    ``missing``. Reads only the online store's own file (``.nbmlops/online.sqlite``), which a
    server keeps open: ``.to_dict()`` (columnar), ``.to_pandas()``, ``.status``."""
    return online.online_features(store_at(store), features, entity_rows, now=now)


def check_feature_skew(
    view: str | FeatureView,
    at: float | dt.datetime | None = None,
    *,
    store: StoreLike = None,
) -> SkewReport:
    """Whether the online values of ``view`` equal its point-in-time values at ``at``
    (default: the end of its last materialisation) for every entity: the count and the list of
    mismatches (entity, feature, online, offline), and entities on one side only."""
    found, opened = _view(view, store)
    return check_skew(opened, found, at)
