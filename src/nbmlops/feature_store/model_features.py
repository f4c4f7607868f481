"""Which features a model version was trained with, and the data contract they imply (issue #17
items 3-4): what a model server needs to fetch a request's features online by entity key, and
to check the values it is given against what training saw.

A version is linked to a training set the way :func:`nbmlops.store.features.models_using_view`
links it: the training set was built by the version's run (one cell builds and fits), or its
frame's fingerprint is among the run's input datasets (built in one cell, fitted in another).
Only the features the model takes are kept: those whose training-set column is in the
version's signature (a model fitted on ``train[["conv_rate"]]`` of a set of three features
needs one). Where several training sets qualify, the one giving the most of the signature's
columns wins, then the newest. A version without a column signature gets none: nothing says
which of its inputs a feature became.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nbmlops.feature_store.definitions import get_view
from nbmlops.registry.model_version import ModelVersion
from nbmlops.store import features as sql
from nbmlops.store.db import Row, Store


@dataclass(frozen=True)
class ModelFeatures:
    """The features of one model version, grouped by view (the order ``online_features``
    returns them in), each with the input column it became."""

    training_set_id: int
    refs: tuple[str, ...]  # "view@version:feature": the view versions trained on, pinned
    columns: tuple[str, ...]  # the model input column of each ref
    keys: tuple[str, ...]  # the entity key columns, across the views
    contract: dict[str, Any]  # feature_store.contract's, for these columns only


def model_features(store: Store, mv: ModelVersion) -> ModelFeatures | None:
    """The features and contract ``mv`` was trained with (None: not trained from a training
    set, or no column signature to map them to)."""
    wanted = [str(c["name"]) for c in (mv.signature or {}).get("columns") or []]
    if not wanted:
        return None
    candidates = [] if mv.run_id is None else sql.training_sets_of_run(store, mv.run_id)
    for dataset in mv.datasets:
        if dataset.get("role") == "input" and dataset.get("fingerprint"):
            found = sql.training_set_with_fingerprint(store, str(dataset["fingerprint"]))
            if found is not None:
                candidates.append(found)
    scored = [(_used(t, wanted), t) for t in candidates]
    scored = [(used, t) for used, t in scored if used]
    if not scored:
        return None
    used, chosen = max(scored, key=lambda pair: (len(pair[0]), pair[1]["training_set_id"]))
    views: dict[tuple[str, int], list[Row]] = {}
    for feature in used:
        views.setdefault((feature["view"], int(feature["version"])), []).append(feature)
    grouped = [f for features in views.values() for f in features]
    keys = (k for name, version in views for k in get_view(store, name, version).keys)
    specs = chosen["contract"].get("columns", {})
    columns = tuple(str(f["column"]) for f in grouped)
    return ModelFeatures(
        training_set_id=int(chosen["training_set_id"]),
        refs=tuple(f"{f['view']}@{f['version']}:{f['ref'].split(':', 1)[1]}" for f in grouped),
        columns=columns,
        keys=tuple(dict.fromkeys(keys)),
        contract={"columns": {c: specs[c] for c in columns if c in specs}},
    )


def _used(training_set: Row, wanted: list[str]) -> list[Row]:
    """The features of ``training_set`` the model takes (their column is in ``wanted``)."""
    return [f for f in training_set["features"] if f.get("column") in wanted]
