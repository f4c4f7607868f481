"""Lineage between dataset versions, runs and models, both ways.

A run used a version when it loaded or saved it by name inside a tracked cell, or when a
DataFrame it read has the version's fingerprint (recorded by ``%%track`` with no call; the join
also finds runs recorded before the version was saved). A model used what its training run used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nbmlops.data.references import resolve_row
from nbmlops.errors import DatasetError
from nbmlops.registry.model_version import resolve
from nbmlops.store import datasets as sql
from nbmlops.store.db import Store

if TYPE_CHECKING:
    import pandas as pd


def data_lineage(store: Store, model: str) -> pd.DataFrame:
    """The dataset versions that trained model version ``model`` (``"diabetes@champion"``,
    ``"diabetes/3"``): one row per (version, how) with columns ref, name, version, how
    (loaded, saved, read) and variable (the input read, for 'read')."""
    import pandas as pd

    mv = resolve(store, model)
    if mv.run_id is None:
        raise DatasetError(
            f"Model {mv.ref} was registered without a training run, so nbmlops cannot say "
            "which data trained it."
        )
    rows = sql.versions_used_by(store, mv.run_id)
    frame = pd.DataFrame(rows, columns=["name", "version", "how", "variable"])
    frame.insert(0, "ref", [f"{r['name']}@{r['version']}" for r in rows])
    frame.attrs["model"] = mv.ref
    frame.attrs["run_id"] = mv.run_id
    return frame


def dataset_usage(store: Store, reference: str) -> pd.DataFrame:
    """The runs that used a dataset version and the models registered from them: one row per
    (run, how) with columns run_id, how (loaded, saved, read), variable, at and models (the
    model versions registered from that run, ``"diabetes/3"``)."""
    import pandas as pd

    row = resolve_row(store, reference)
    uses = sql.runs_using(store, row["name"], int(row["version"]))
    models: dict[str, list[str]] = {}
    for m in sql.models_of_runs(store, [u["run_id"] for u in uses]):
        models.setdefault(m["run_id"], []).append(f"{m['name']}/{m['version']}")
    frame = pd.DataFrame(uses, columns=["run_id", "how", "variable", "at"])
    frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True)
    frame["models"] = [models.get(u["run_id"], []) for u in uses]
    frame.attrs["ref"] = f"{row['name']}@{row['version']}"
    return frame
