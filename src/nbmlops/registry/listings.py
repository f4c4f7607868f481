"""Listings of the registry as DataFrames: the models, and the versions of one model.

pandas and numpy are imported inside the functions: they are what makes a listing slow to
import, and ``import nbmlops`` must not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.store import Store
from nbmlops.store import registry as sql

if TYPE_CHECKING:
    import pandas as pd


def models_frame(store: Store) -> pd.DataFrame:
    """One row per model: name, latest version, versions, aliases, description, created,
    updated (the last event)."""
    import pandas as pd  # heavy: kept out of import nbmlops

    rows = sql.models_overview(store)
    aliases = sql.all_current_aliases(store)
    frame = pd.DataFrame(
        {
            "name": [r.name for r in rows],
            "latest_version": pd.array([r.latest_version for r in rows], dtype="Int64"),
            "versions": [int(r.versions) for r in rows],
            "aliases": [_alias_text(aliases.get(r.name, {})) for r in rows],
            "description": [r.description for r in rows],
            "created_at": _times([r.created_at for r in rows]),
            "updated_at": _times([r.updated_at for r in rows]),
        }
    )
    return frame


def versions_frame(store: Store, name: str) -> pd.DataFrame:
    """Every version of ``name``: version, created, aliases, status, class, format, size,
    sha256, run, creator, description, then one ``metrics.<k>`` column per metric."""
    import numpy as np  # heavy: kept out of import nbmlops
    import pandas as pd

    rows = sql.versions_of(store, name)
    if not rows:
        resolve(store, name)  # raises ModelNotFoundError, listing the models there are
    versions = [ModelVersion.from_row(store, r) for r in rows]
    aliases = sql.current_aliases(store, name)
    states: dict[int | None, str] = {}
    for event in sql.lifecycle_events(store, name):
        if event.kind == "deleted" or states.get(event.version) != "deleted":
            states[event.version] = event.kind
    columns: dict[str, Any] = {
        "version": [v.version for v in versions],
        "created_at": _times([v.created_at for v in versions]),
        "aliases": [
            ", ".join(sorted(a for a, n in aliases.items() if n == v.version)) for v in versions
        ],
        "status": [states.get(v.version, "active") for v in versions],
        "model_class": [v.model_class for v in versions],
        "format": [v.format for v in versions],
        "size": [v.size for v in versions],
        "sha256": [v.sha256 for v in versions],
        "run_id": [v.run_id for v in versions],
        "created_by": [v.created_by for v in versions],
        "description": [v.description for v in versions],
    }
    for key in sorted({k for v in versions for k in v.metrics}):
        columns[f"metrics.{key}"] = np.array([v.metrics.get(key, np.nan) for v in versions])
    return pd.DataFrame(columns)


def _alias_text(aliases: Mapping[str, int]) -> str:
    return ", ".join(f"{alias}={version}" for alias, version in sorted(aliases.items()))


def _times(values: Sequence[float | None]) -> Any:
    import numpy as np  # heavy: kept out of import nbmlops
    import pandas as pd

    seconds = np.array([np.nan if v is None else v for v in values], dtype="float64")
    return pd.to_datetime(seconds, unit="s", utc=True)
