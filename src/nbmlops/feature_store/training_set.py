"""Point-in-time-correct training sets: entity rows + feature references -> one row per entity
row, in the input order, no feature from the future, saved as a dataset version and linked to
the run that built it, with the data contract of its features.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from nbmlops.data import tables
from nbmlops.data.dataset_version import run_here
from nbmlops.data.references import resolve_row
from nbmlops.errors import DatasetError, NbmlopsWarning
from nbmlops.feature_store.contract import infer_contract
from nbmlops.feature_store.definitions import feature_table, resolve_refs
from nbmlops.feature_store.point_in_time import point_in_time_join
from nbmlops.fingerprint import fingerprint
from nbmlops.store import features as sql
from nbmlops.store.db import Store

if TYPE_CHECKING:
    import pandas as pd


def training_set(
    store: Store,
    entity: Any,
    features: Sequence[str],
    *,
    timestamp: str = "event_timestamp",
    created_filter: bool = False,
    full_names: bool = False,
    name: str | None = None,
    save: bool = True,
) -> pd.DataFrame:
    """See :func:`nbmlops.training_set`."""
    views = resolve_refs(store, features)
    joined = []
    used: list[dict[str, Any]] = []
    held_by_view: list[tuple[str | None, list[str]]] = []
    for view, wanted in views:
        table, held = feature_table(store, view, wanted)
        joined.append(table)
        held_by_view.append((held, wanted))
        used.extend(
            {
                "ref": f"{view.name}:{feature}",
                "view": view.name,
                "version": view.version,
                "fingerprint": view.fingerprint,
                "data": held,
            }
            for feature in wanted
        )
    result = point_in_time_join(
        entity, joined, timestamp=timestamp, created_filter=created_filter, full_names=full_names
    )
    frame: pd.DataFrame = result.to_pandas()
    columns = frame.columns[len(frame.columns) - len(used) :]
    _put_back_dtypes(store, frame, result, held_by_view, iter(columns))
    saved = None
    if save:
        dataset = name or _default_name([v for v, _ in views])
        try:
            saved = tables.save_table(store, frame, dataset)
        except DatasetError as error:  # the set is still returned, recorded by fingerprint
            warnings.warn(
                f"The training set was not saved as dataset {dataset!r} ({error}); it is "
                "recorded by its fingerprint only. save=False skips saving.",
                NbmlopsWarning,
                stacklevel=3,
            )
    sql.add_training_set(
        store,
        {
            "run_id": run_here(store),
            "dataset": saved.name if saved else None,
            "dataset_version": saved.version if saved else None,
            "fingerprint": saved.fingerprint if saved else fingerprint(frame).digest,
            "features": [{**u, "column": c} for u, c in zip(used, columns, strict=True)],
            "entity_rows": len(frame),
            "created_filter": created_filter,
            "contract": infer_contract(frame, list(columns)),
            "created_at": time.time(),
        },
    )
    return frame


def _put_back_dtypes(
    store: Store,
    frame: pd.DataFrame,
    result: Any,
    held_by_view: list[tuple[str | None, list[str]]],
    labels: Iterator[str],
) -> None:
    """Features whose rows are a saved dataset version (views over a function or a DataFrame)
    get the pandas dtype they were computed with: nullable Int64 and boolean, categories, time
    zones, as :func:`nbmlops.load_dataset` gives them back; an integer column with nulls from
    elsewhere is float64, as pandas reads Arrow. ``labels``: the feature columns, in order."""
    for held, wanted in held_by_view:
        saved = {} if held is None else resolve_row(store, held)["schema"]["columns"]
        by_name = {c["name"]: c for c in saved}
        for feature in wanted:
            label = next(labels)
            if feature in by_name:
                tables.put_back(frame, label, by_name[feature], result.column(label))


def _default_name(views: Sequence[Any]) -> str:
    joined = "_".join(dict.fromkeys(v.name for v in views))
    return "training." + re.sub(r"[^A-Za-z0-9_.-]", "_", joined)[:100]
