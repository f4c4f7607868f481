"""DatasetVersion: one saved version of a named dataset, as the store recorded it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbmlops._display import size
from nbmlops.capture.run import active_run
from nbmlops.store.db import Store


@dataclass(frozen=True)
class DatasetVersion:
    """Immutable: a later save makes a new version, a restore too.

    ``ref`` (``"customers@3"``) is what ``load_dataset``, ``dataset_diff`` and ``dataset_usage``
    take. ``location`` is where the data lives: the Delta table's folder or URI (any engine
    reads version ``delta_version`` there), or the store's objects for a files dataset.
    """

    name: str
    version: int
    kind: str  # 'table' or 'files'
    location: str
    fingerprint: str | None
    n_rows: int | None  # rows of a table, files of a files dataset
    n_bytes: int
    added_bytes: int
    mode: str
    created_at: float
    delta_version: int | None = None
    key: list[str] | None = None
    schema: dict[str, Any] = field(default_factory=dict, repr=False)
    restored_from: int | None = None
    run_id: str | None = None
    actor: str | None = None
    host: str | None = None
    store: Store | None = field(default=None, repr=False, compare=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def created(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.created_at, dt.UTC)

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.schema.get("columns", [])]

    def __str__(self) -> str:
        what = f"{self.n_rows:,} rows" if self.kind == "table" else f"{self.n_rows:,} files"
        return f"{self.ref} ({what}, {size(self.n_bytes)}, {self.mode})"

    def __repr__(self) -> str:
        what = f"{self.n_rows:,} rows" if self.kind == "table" else f"{self.n_rows:,} files"
        added = "" if self.added_bytes == self.n_bytes else f" (+{size(self.added_bytes)})"
        origin = f" from @{self.restored_from}" if self.restored_from else ""
        digest = f" fingerprint={self.fingerprint[:12]}" if self.fingerprint else ""
        run = f" run={self.run_id}" if self.run_id else ""
        return (
            f"<DatasetVersion {self.ref} {what} {size(self.n_bytes)}{added} {self.mode}{origin}"
            f"{digest}{run}>"
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], location: str, store: Store) -> DatasetVersion:
        return cls(
            name=row["name"],
            version=int(row["version"]),
            kind=row["kind"],
            location=location,
            fingerprint=row["fingerprint"],
            n_rows=row["n_rows"],
            n_bytes=int(row["n_bytes"]),
            added_bytes=int(row["added_bytes"]),
            mode=row["mode"],
            created_at=float(row["created_at"]),
            delta_version=row["delta_version"],
            key=row["key"],
            schema=row["schema"],
            restored_from=row["restored_from"],
            run_id=row["run_id"],
            actor=row["actor"],
            host=row["host"],
            store=store,
        )


def table_location(store: Store, name: str, uri: str) -> str:
    """Where a table dataset's Delta table lives: its own URI, else a folder in the store."""
    return uri or str(Path(store.home) / "datasets" / name)


def location_of(store: Store, row: Mapping[str, Any]) -> str:
    """Where a version's data lives: its Delta table, or the store's objects for files."""
    if row["kind"] == "files":
        return str(store.objects.root)
    return table_location(store, row["name"], row["uri"])


def manifest_files(store: Store, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The entries of a version's manifest (its files, in row order for a table), the manifest
    object checked against its sha256 first."""
    return list(json.loads(store.objects.read_verified(row["manifest"]))["files"])


def run_here(store: Store) -> str | None:
    """The active run, if it records into ``store`` (a run in another store cannot be linked)."""
    run = active_run()
    if run is None or Path(run.store.home).resolve() != Path(store.home).resolve():
        return None
    return run.run_id
