"""Dataset names and references: ``customers``, ``customers@3``, ``customers@latest``,
``customers@2026-11-30T12:00`` (the version that was newest then; a time without a zone is UTC,
the store's convention, as for ``who_served``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from nbmlops.data.dataset_version import DatasetVersion, location_of
from nbmlops.errors import DatasetError, DatasetNotFoundError
from nbmlops.registry.events import to_seconds
from nbmlops.store import datasets as sql
from nbmlops.store.db import Row, Store

# Like model names: a folder name on every file system, no '@' (it separates the version).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")


def check_name(name: object) -> str:
    """``name`` if it is a valid dataset name, else DatasetError saying what is allowed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DatasetError(
            f"Dataset name {name!r} is not valid: use letters, digits, '_', '.' and '-' "
            "(up to 128 characters, no '/' or '@', which separates the version).",
            name if isinstance(name, str) else None,
        )
    return name


@dataclass(frozen=True)
class Reference:
    name: str
    version: int | None = None  # None: the latest, or the one newest at ``at``
    at: float | None = None

    @classmethod
    def parse(cls, text: object) -> Reference:
        if not isinstance(text, str):
            raise DatasetError(
                f"A dataset reference is a string such as 'customers@3', not {text!r}."
            )
        name, sep, tail = text.strip().partition("@")
        check_name(name)
        if not sep or tail == "latest":
            return cls(name)
        if tail.isdigit():
            return cls(name, version=int(tail))
        try:
            return cls(name, at=to_seconds(tail))
        except ValueError:
            raise DatasetError(
                f"Dataset reference {text!r}: after '@' put a version number, 'latest' or an "
                "ISO time such as 2026-11-30T12:00 (UTC unless it names a zone).",
                name,
            ) from None


def resolve_row(store: Store, reference: str | Reference) -> Row:
    """The ``dataset_versions`` row a reference names, with the dataset's kind, uri and key;
    DatasetNotFoundError listing the known datasets or versions otherwise."""
    ref = reference if isinstance(reference, Reference) else Reference.parse(reference)
    text = reference if isinstance(reference, str) else ref.name
    dataset = sql.dataset(store, ref.name) if store.exists() else None
    if dataset is None:
        names = sql.dataset_names(store) if store.exists() else []
        raise DatasetNotFoundError(text, names)
    if ref.version is not None:
        row = sql.version(store, ref.name, ref.version)
    elif ref.at is not None:
        row = sql.version_as_of(store, ref.name, ref.at)
    else:
        row = sql.latest_version(store, ref.name)
    if row is None:
        known = [f"{ref.name}@{v['version']}" for v in sql.versions(store, ref.name)]
        raise DatasetNotFoundError(text, known, what="dataset version")
    return {**row, "kind": dataset["kind"], "uri": dataset["uri"], "key": dataset["key"]}


def get_version(store: Store, reference: str | Reference) -> DatasetVersion:
    """The DatasetVersion a reference names (what was recorded; no data is read)."""
    row = resolve_row(store, reference)
    return DatasetVersion.from_row(row, location_of(store, row), store)
