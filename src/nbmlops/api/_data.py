"""Data versioning's front door: save, load, restore, list, and the lineage both ways.

    v = nbm.save_dataset(df, "customers", key="customer_id")   # DatasetVersion customers@1
    nbm.save_dataset(new_rows, "customers", mode="append")      # customers@2, new files only
    df = nbm.load_dataset("customers@1")                        # the same fingerprint as saved
    nbm.dataset_diff("customers@1", "customers@2")              # rows added, removed, changed
    nbm.restore_dataset("customers", 1)                         # customers@3 equal to @1
    nbm.data_lineage("diabetes@champion")                       # which versions trained it
    nbm.dataset_usage("customers@1")                            # which runs and models used it

Every function takes ``store=`` like the rest of the API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops.data import diff, files, lineage, tables
from nbmlops.data.dataset_version import DatasetVersion, location_of
from nbmlops.data.diff import DatasetDiff
from nbmlops.data.files import FileDiff
from nbmlops.data.references import check_name, get_version, resolve_row
from nbmlops.errors import DatasetError
from nbmlops.store import StoreLike, open_store
from nbmlops.store import datasets as sql

if TYPE_CHECKING:
    import pandas as pd


def save_dataset(
    data: Any,
    name: str,
    *,
    key: str | list[str] | None = None,
    mode: str = "overwrite",
    schema_mode: str | None = None,
    uri: str | None = None,
    storage_options: dict[str, str] | None = None,
    dvc: bool = False,
    store: StoreLike = None,
) -> DatasetVersion:
    """Save ``data`` as the next version of dataset ``name``; returns the DatasetVersion.

    ``data``: a pandas, polars or pyarrow table, written as a version of a Delta Lake table; or
    the path of a file or folder, whose files are stored content-addressed (deduplicated across
    versions) with a manifest, restored by :func:`checkout_dataset`; ``dvc=True`` also writes a
    DVC 3 ``.dvc`` pointer beside the path (``dvc status`` accepts it).
    Content identical to the latest version writes nothing and returns that version.
    ``key``: the column(s) identifying a row (checked unique; kept for later versions; what
    ``dataset_diff`` matches rows by). ``mode="append"`` adds the rows to the latest version,
    writing only their files; a schema change is refused unless ``schema_mode="merge"`` (new
    columns added, missing ones null). ``uri``: where the Delta table lives, for a new dataset
    (a path, ``file:///...``, ``s3://bucket/path`` with ``storage_options`` as delta-rs takes
    them); by default a folder in the store. Inside a tracked cell the run is linked to it.
    """
    if isinstance(data, str | os.PathLike):
        given = (
            ("key", key),
            ("mode", None if mode == "overwrite" else mode),
            ("schema_mode", schema_mode),
            ("uri", uri),
            ("storage_options", storage_options),
        )
        wrong = [k for k, v in given if v is not None]
        if wrong:
            raise DatasetError(
                f"Dataset {name!r}: {os.fspath(data)} is a path to files; "
                f"{', '.join(wrong)} are for tables (DataFrames).",
                name,
            )
        return files.save_files(open_store(store), data, name, dvc=dvc)
    if dvc:
        raise DatasetError(
            f"Dataset {name!r}: dvc=True writes a .dvc pointer for files; pass a path.", name
        )
    return tables.save_table(
        open_store(store),
        data,
        name,
        key=key,
        mode=mode,
        schema_mode=schema_mode,
        uri=uri,
        storage_options=storage_options,
    )


def load_dataset(
    ref: str,
    *,
    output: str = "pandas",
    storage_options: dict[str, str] | None = None,
    store: StoreLike = None,
) -> Any:
    """The content of dataset version ``ref`` (``"customers@3"``, ``"customers@latest"`` or
    ``"customers"``, ``"customers@2026-11-30T12:00"``: the newest then, UTC unless a zone is
    given), its files checked against what was saved. ``output``: ``"pandas"`` (the DataFrame
    as saved: dtypes, index, identical fingerprint), ``"polars"`` or ``"arrow"``. Inside a
    tracked cell the run is linked to the version. ``storage_options``: delta-rs' options for a
    dataset in object storage (read by delta-rs, its content checked by fingerprint)."""
    opened = open_store(store, create=False)
    row = resolve_row(opened, ref)
    if row["kind"] != "table":
        raise DatasetError(
            f"Dataset {row['name']!r} holds files; check them out with "
            f"nbm.checkout_dataset({ref!r}, to=...) or `nbmlops data checkout`.",
            row["name"],
        )
    data = tables.load_table(opened, row, output, storage_options)  # type: ignore[arg-type]
    tables.link_loaded(opened, row["name"], int(row["version"]))
    return data


def checkout_dataset(
    ref: str, to: str | os.PathLike[str], *, force: bool = False, store: StoreLike = None
) -> Path:
    """Write the files of files-dataset version ``ref`` under folder ``to``, byte-identical
    (each checked before it takes its name), modes restored; a file there with other content is
    refused unless ``force``. Returns the folder. Inside a tracked cell the run is linked."""
    opened = open_store(store, create=False)
    row = resolve_row(opened, ref)
    if row["kind"] != "files":
        raise DatasetError(
            f"Dataset {row['name']!r} is a table; read it with nbm.load_dataset({ref!r}).",
            row["name"],
        )
    folder = files.checkout_files(opened, row, Path(to), force=force)
    tables.link_loaded(opened, row["name"], int(row["version"]))
    return folder


def get_dataset(ref: str, *, store: StoreLike = None) -> DatasetVersion:
    """The DatasetVersion ``ref`` names (what was recorded; the data is not read)."""
    return get_version(open_store(store, create=False), ref)


def dataset_versions(name: str, *, store: StoreLike = None) -> list[DatasetVersion]:
    """Every version of dataset ``name``, oldest first."""
    opened = open_store(store, create=False)
    latest = resolve_row(opened, check_name(name))
    location = location_of(opened, latest)
    extra = {"kind": latest["kind"], "uri": latest["uri"], "key": latest["key"]}
    return [
        DatasetVersion.from_row({**row, **extra}, location, opened)
        for row in sql.versions(opened, name)
    ]


def datasets(*, store: StoreLike = None) -> pd.DataFrame:
    """One row per dataset: name, kind, key, versions, latest, n_rows and n_bytes of the
    latest, stored_bytes (on disk for all versions), updated_at, uri."""
    import pandas as pd

    rows = sql.dataset_summaries(open_store(store, create=False))
    frame = pd.DataFrame(
        rows,
        columns=[
            "name",
            "kind",
            "key",
            "versions",
            "latest",
            "n_rows",
            "n_bytes",
            "stored_bytes",
            "updated_at",
            "uri",
        ],
    )
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], unit="s", utc=True)
    return frame


def restore_dataset(
    name: str,
    version: int,
    *,
    storage_options: dict[str, str] | None = None,
    store: StoreLike = None,
) -> DatasetVersion:
    """A new version of ``name`` equal to ``version`` (history is never rewritten)."""
    opened = open_store(store)
    if resolve_row(opened, check_name(name))["kind"] == "files":
        return files.restore_files(opened, name, version)
    return tables.restore_table(opened, name, version, storage_options)


def dataset_diff(
    old_ref: str, new_ref: str, *, limit: int = 10_000, store: StoreLike = None
) -> DatasetDiff | FileDiff:
    """What changed from ``old_ref`` to ``new_ref``: for a table, rows added, removed and
    changed (matched by the dataset's key, with the changed columns' old and new values) and
    schema changes, counted in full, the first ``limit`` lines in ``.rows``; for files, the
    files added, removed and changed. ``print(diff)`` is the summary."""
    opened = open_store(store, create=False)
    old, new = resolve_row(opened, old_ref), resolve_row(opened, new_ref)
    if old["kind"] != new["kind"]:
        raise DatasetError(
            f"{old_ref} holds {old['kind']} and {new_ref} {new['kind']}: "
            "diff two versions of one kind.",
            new["name"],
        )
    if old["kind"] == "files":
        return files.diff_files(opened, old, new)
    return diff.diff_tables(opened, old, new, limit=limit)


def data_lineage(model: str, *, store: StoreLike = None) -> pd.DataFrame:
    """The dataset versions that trained ``model`` (``"diabetes@champion"``)."""
    return lineage.data_lineage(open_store(store, create=False), model)


def dataset_usage(ref: str, *, store: StoreLike = None) -> pd.DataFrame:
    """The runs that used dataset version ``ref`` and the models registered from them."""
    return lineage.dataset_usage(open_store(store, create=False), ref)
