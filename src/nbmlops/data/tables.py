"""Table datasets: each version of a named DataFrame is a version of one Delta Lake table.

The table is plain Delta Lake, written by ``deltalake`` (delta-rs, no JVM) in the store's
``datasets/<name>/`` folder or at a URI the user gives: Spark, DuckDB, polars and pandas read any
version there by its Delta version number. An append writes only the new rows' files; a restore
is a Delta restore (a new commit pointing at the old files, nothing copied).

What nbmlops adds on top is the record and the check. Each version's row in the store holds the
content fingerprint (the one ``%%track`` records for the data a cell reads, so lineage is a
join), the pandas schema that Parquet cannot carry (index, categories, time zones, nullable
integers), and a manifest: every Parquet file of the version, in row order, with its size and
BLAKE3. ``load`` reads exactly those files, each checked before it is decoded, so a table edited
behind nbmlops' back is refused rather than read, and a save refuses to write onto a table whose
Delta log moved without nbmlops. Reading the files ourselves (pyarrow, one thread a file) also
avoids the read path that aborted the process at exit (issue #16 item 8: deltalake 1.6.6,
``DeltaTable.to_pyarrow_table`` on a multi-file table; covered by a test of exit status).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.data.dataset_version import DatasetVersion, manifest_files, run_here, table_location
from nbmlops.data.references import Reference, check_name, get_version, resolve_row
from nbmlops.errors import DatasetError, DatasetTamperedError, StoreError, StoreReadOnlyError
from nbmlops.fingerprint import fingerprint
from nbmlops.store import datasets as sql
from nbmlops.store.db import Row, Store
from nbmlops.store.objects import blake3_hex

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

Output = Literal["pandas", "polars", "arrow"]
_INDEX_PREFIX = "__index_level_"
_PART = re.compile(r"part-(\d+)-")


# -- saving -----------------------------------------------------------------------------------


def save_table(
    store: Store,
    data: Any,
    name: str,
    *,
    key: str | list[str] | None = None,
    mode: str = "overwrite",
    schema_mode: str | None = None,
    uri: str | None = None,
    storage_options: dict[str, str] | None = None,
) -> DatasetVersion:
    """Write ``data`` (pandas, polars or pyarrow) as a new version of table dataset ``name``;
    see :func:`nbmlops.save_dataset`."""
    check_name(name)
    if mode not in ("overwrite", "append"):
        raise DatasetError(f"mode={mode!r}: use 'overwrite' (a new version) or 'append'.", name)
    if schema_mode not in (None, "merge"):
        raise DatasetError(
            f"schema_mode={schema_mode!r}: use None (a schema change is refused) or 'merge'.",
            name,
        )
    frame = as_pandas(data, name)
    check_storable(frame, name)
    store.create()
    with dataset_lock(store, name):
        return _save_locked(store, frame, name, key, mode, schema_mode, uri, storage_options)


def _save_locked(
    store: Store,
    frame: pd.DataFrame,
    name: str,
    key: str | list[str] | None,
    mode: str,
    schema_mode: str | None,
    uri: str | None,
    storage_options: dict[str, str] | None,
) -> DatasetVersion:
    existing = sql.dataset(store, name)
    if existing is not None and existing["kind"] != "table":
        raise DatasetError(
            f"Dataset {name!r} holds files, not a table; save the DataFrame under another name.",
            name,
        )
    location_uri = _check_uri(name, uri, existing)
    keys = _check_key(frame, name, key, existing)
    latest = sql.latest_version(store, name) if existing else None
    location = table_location(store, name, location_uri)
    if latest is not None:
        _check_untouched(store, name, location, latest, storage_options)

    if mode == "append" and latest is not None:
        if len(frame) == 0:
            return get_version(store, Reference(name, version=latest["version"]))
        if not latest["schema"].get("index"):  # rows join a default index: theirs is dropped
            frame = frame.reset_index(drop=True)
        table, schema = to_arrow(frame)
        _check_append_schema(name, latest["schema"], schema, schema_mode)
        if keys:
            _check_new_keys(store, name, location, latest, frame, keys)
        digest, n_rows = None, int(latest["n_rows"] or 0) + len(frame)
        schema = _merged_schema(latest["schema"], schema)
    else:
        try:
            digest, n_rows = fingerprint(frame).digest, len(frame)
        except TypeError as exc:  # a value of no type a table can hold (a dict, a set)
            raise DatasetError(
                f"Dataset {name!r} cannot be stored as a table: {exc}", name
            ) from exc
        if latest is not None and digest == latest["fingerprint"]:  # same: nothing written
            return get_version(store, Reference(name, version=latest["version"]))
        table, schema = to_arrow(frame)
    previous = manifest_files(store, latest) if latest is not None else []
    try:
        written = _write(
            location,
            table,
            append=mode == "append" and latest is not None,
            keys=keys or [],
            storage_options=storage_options,
        )
        delta_version, files = _current_files(location, storage_options, previous, written)
    except StoreError:
        raise
    except OSError as exc:
        raise DatasetError(f"Dataset {name!r}: could not write {location}: {exc}", name) from exc
    except Exception as exc:  # delta-rs raises its own types; the user needs the sentence
        raise DatasetError(
            f"Dataset {name!r}: Delta Lake refused the write to {location}: {exc}", name
        ) from exc
    return _record(
        store,
        name,
        {
            "delta_version": delta_version,
            "fingerprint": digest,
            "schema": schema,
            "n_rows": n_rows,
            "mode": mode if latest is not None else "overwrite",
        },
        files,
        previous,
        dataset={"kind": "table", "uri": location_uri, "key": keys},
    )


def restore_table(
    store: Store, name: str, number: int, storage_options: dict[str, str] | None = None
) -> DatasetVersion:
    """A new version of ``name`` equal to version ``number``: a Delta restore, nothing copied."""
    row = resolve_row(store, Reference(check_name(name), version=int(number)))
    if row["kind"] != "table":
        raise DatasetError(f"Dataset {name!r} holds files; restore it with its files.", name)
    with dataset_lock(store, name):
        return _restore_locked(store, name, row, storage_options)


def _restore_locked(
    store: Store, name: str, row: Row, storage_options: dict[str, str] | None
) -> DatasetVersion:
    """The restore, also the way out of a table whose Delta log moved past what nbmlops
    recorded (an interrupted save): only the restored version's files need to be intact."""
    latest = sql.latest_version(store, name)
    assert latest is not None
    location = table_location(store, name, row["uri"])
    files = manifest_files(store, row)
    verify_files(name, int(row["version"]), location, files)

    from deltalake import DeltaTable

    table = DeltaTable(location, storage_options=storage_options)
    table.restore(int(row["delta_version"]))
    return _record(
        store,
        name,
        {
            "delta_version": table.version(),
            "fingerprint": row["fingerprint"],
            "schema": row["schema"],
            "n_rows": row["n_rows"],
            "mode": "restore",
            "restored_from": row["version"],
        },
        files,
        files,  # nothing written: the files are the old version's
    )


def _record(
    store: Store,
    name: str,
    fields: dict[str, Any],
    files: list[Row],
    previous: list[Row],
    dataset: dict[str, Any] | None = None,
) -> DatasetVersion:
    known = {f["path"] for f in previous}
    manifest, _ = store.objects.put_bytes(json.dumps({"files": files}).encode())
    number = sql.add_version(
        store,
        {
            **fields,
            "name": name,
            "n_bytes": sum(f["size"] for f in files),
            "added_bytes": sum(f["size"] for f in files if f["path"] not in known),
            "manifest": manifest,
            "run_id": run_here(store),
            "actor": current_user(),
            "host": hostname(),
            "created_at": time.time(),
        },
        dataset,
    )
    return get_version(store, Reference(name, version=number))


@contextlib.contextmanager
def dataset_lock(store: Store, name: str) -> Iterator[None]:
    """One save or restore of dataset ``name`` at a time, across processes: between checking
    the Delta log and recording the new version, another writer would make the two disagree
    (two processes saving at once left nbmlops' latest version behind Delta's, and the next
    save refused). A lock file per dataset in the store, held with ``flock``."""
    if store.read_only:  # refused before anything is written
        raise StoreReadOnlyError(
            f"The store {store.home} is read-only: nothing can be saved in it. Make it "
            "writable, or save into another store (store=, --store or NBMLOPS_HOME).",
            store.home,
        )
    folder = Path(store.home) / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- loading ----------------------------------------------------------------------------------


def load_table(
    store: Store,
    row: Row,
    output: Output = "pandas",
    storage_options: dict[str, str] | None = None,
) -> Any:
    """The content of the version ``row`` names, its files checked before they are decoded
    (in object storage, read by delta-rs: the frame's fingerprint is checked instead)."""

    if output not in ("pandas", "polars", "arrow"):
        raise DatasetError(f"output={output!r}: use 'pandas', 'polars' or 'arrow'.", row["name"])
    location = table_location(store, row["name"], row["uri"])
    local = local_path(location)
    if local is None:
        table = _read_remote(location, int(row["delta_version"]), storage_options)
        if row["fingerprint"] is not None and (
            fingerprint(to_pandas(table, row["schema"])).digest != row["fingerprint"]
        ):
            raise _tampered(row, location, ["(its content, read by delta-rs)"])
    else:
        table = read_files(row, location, manifest_files(store, row))
    table = with_schema_columns(table, row["schema"])
    if output == "arrow":
        return table
    if output == "polars":
        import polars as pl

        return pl.from_arrow(table)
    frame = to_pandas(table, row["schema"])
    if row["fingerprint"] is None:  # an append's: known now; a read-only store keeps none
        with contextlib.suppress(StoreError):
            sql.set_fingerprint(store, row["name"], int(row["version"]), fingerprint(frame).digest)
    return frame


def link_loaded(store: Store, name: str, number: int) -> None:
    """Inside a tracked cell: record that its run loaded this version."""
    run_id = run_here(store)
    if run_id is not None:
        sql.link_run(store, run_id, name, number, "loaded", time.time())


def read_files(row: Row, location: str, files: list[Row]) -> pa.Table:
    """The rows of a version's Parquet ``files`` (manifest entries, in row order), each file
    checked against its BLAKE3 before it is decoded; DatasetTamperedError naming a file that
    is missing or changed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    local = local_path(location)
    assert local is not None, "read_files reads this machine's file system"

    def read(entry: Row) -> pa.Table:
        # Mapped, not read: the hash and the decoder read the page cache in place (a copy of
        # every byte cost a third of a load). The bytes decoded are the bytes hashed but for a
        # writer changing the file in place between the two, which nbmlops never does (its
        # files are written once) and which could only change values: Parquet decoding runs
        # no code.
        try:
            with open(local / entry["path"], "rb") as handle:
                data = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except (FileNotFoundError, ValueError):  # gone, or emptied
            raise _tampered(row, location, [entry["path"]]) from None
        if blake3_hex(memoryview(data)) != entry["blake3"]:
            raise _tampered(row, location, [entry["path"]])
        return pq.read_table(pa.BufferReader(pa.py_buffer(data)), use_threads=False)

    _verify_present(row, location, local, files)
    # A file a thread, two threads (the cores of a small machine): each thread decodes the
    # bytes it checked; Arrow's own threads inside each read would only compete.
    with ThreadPoolExecutor(max_workers=min(2, max(1, len(files)))) as pool:
        parts = list(pool.map(read, files))
    if not parts:
        return pa.schema([]).empty_table()
    return pa.concat_tables(parts, promote_options="default")


def _read_remote(
    location: str, delta_version: int, storage_options: dict[str, str] | None
) -> pa.Table:
    import pyarrow as pa
    from deltalake import DeltaTable

    # to_pandas, not to_pyarrow_table: see the module docstring.
    frame = DeltaTable(location, version=delta_version, storage_options=storage_options).to_pandas()
    return pa.Table.from_pandas(frame, preserve_index=False)


def with_schema_columns(table: pa.Table, schema: dict[str, Any]) -> pa.Table:
    """Columns in the version's order; a column added by a later merge is not in an earlier
    version, and one an earlier file lacks (a merged append) is null there."""
    import pyarrow as pa

    names = [c["name"] for c in schema["columns"]]
    for column in schema["columns"]:
        if column["name"] not in table.column_names:
            kind = pa.type_for_alias(column["arrow"]) if column["arrow"].isidentifier() else None
            table = table.append_column(column["name"], pa.nulls(len(table), kind or pa.null()))
    return table.select(names)


# -- pandas <-> Arrow -------------------------------------------------------------------------


def as_pandas(data: Any, name: str) -> pd.DataFrame:
    """``data`` as a pandas DataFrame: pandas as it is, polars and pyarrow converted."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars" and hasattr(data, "to_pandas"):
        return data.to_pandas()  # type: ignore[no-any-return]
    if module == "pyarrow" and hasattr(data, "to_pandas") and hasattr(data, "schema"):
        return data.to_pandas()  # type: ignore[no-any-return]
    raise DatasetError(
        f"Dataset {name!r}: save_dataset takes a pandas, polars or pyarrow table, or a path to "
        f"files; got {type(data).__name__}.",
        name,
    )


def check_storable(frame: pd.DataFrame, name: str) -> None:
    """What a Delta table cannot hold, refused before anything is written, naming the column."""
    import pandas as pd

    repeated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if repeated:
        raise DatasetError(
            f"Dataset {name!r}: column name(s) {repeated} appear more than once; a table's "
            "columns need distinct names (rename or drop the copies).",
            name,
        )
    clash = [n for n in frame.index.names if n is not None and n in frame.columns]
    if clash and not _default_index(frame.index):
        raise DatasetError(
            f"Dataset {name!r}: the index level(s) {clash} have the name of a column; rename "
            "one (df.rename_axis(...)) or drop the index (df.reset_index(drop=True)).",
            name,
        )
    for label in frame.columns:
        dtype = frame[label].dtype
        if pd.api.types.is_timedelta64_dtype(dtype) or isinstance(dtype, pd.SparseDtype):
            kind = "durations" if pd.api.types.is_timedelta64_dtype(dtype) else "sparse data"
            raise DatasetError(
                f"Dataset {name!r}: column {label!r} holds {kind} ({dtype}), which a Delta table "
                "cannot store; convert it (e.g. .dt.total_seconds(), .sparse.to_dense()).",
                name,
            )


def to_arrow(frame: pd.DataFrame) -> tuple[pa.Table, dict[str, Any]]:
    """The Arrow table to write and the schema that turns it back into ``frame``: a non-default
    index becomes columns (Delta has no index), datetimes become microseconds (Delta's unit;
    a value with nanoseconds is refused rather than rounded), categories and time zones are
    recorded to be put back."""
    import pandas as pd
    import pyarrow as pa

    index: list[str | None] | None = None
    if not _default_index(frame.index):
        index = [None if n is None else str(n) for n in frame.index.names]
        names = [n if n is not None else f"{_INDEX_PREFIX}{i}__" for i, n in enumerate(index)]
        frame = frame.rename_axis(names).reset_index()
    columns = []
    for label in frame.columns:
        if not isinstance(label, str):
            raise DatasetError(
                f"Column {label!r}: Delta Lake needs string column names; "
                "rename it (df.columns = df.columns.astype(str)).",
                None,
            )
        dtype = frame[label].dtype
        entry: dict[str, Any] = {"name": label, "pandas": str(dtype)}
        if isinstance(dtype, pd.CategoricalDtype):
            entry["categories"] = dtype.categories.tolist()
            entry["ordered"] = bool(dtype.ordered)
        columns.append(entry)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DatasetError(f"This DataFrame cannot be stored as a table: {exc}", None) from exc
    table = _delta_types(table)
    for entry, field in zip(columns, table.schema, strict=True):
        entry["arrow"] = str(field.type)
    return table.replace_schema_metadata(None), {"columns": columns, "index": index}


def _delta_types(table: pa.Table) -> pa.Table:
    """Arrow types Delta Lake stores: timestamps in microseconds, naive or UTC; dictionaries
    decoded."""
    import pyarrow as pa

    fields = []
    for field in table.schema:
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if pa.types.is_timestamp(kind) and (kind.unit != "us" or kind.tz not in (None, "UTC")):
            # Delta keeps instants in UTC (the zone is put back from the pandas schema)
            kind = pa.timestamp("us", tz=None if kind.tz is None else "UTC")
        fields.append(field.with_type(kind))
    target = pa.schema(fields)
    if target == table.schema:
        return table
    try:
        return table.cast(target, safe=True)
    except pa.ArrowInvalid as exc:
        raise DatasetError(
            f"This DataFrame cannot be stored as a table without losing precision: {exc} "
            "(Delta Lake keeps times in microseconds).",
            None,
        ) from exc


def to_pandas(table: pa.Table, schema: dict[str, Any]) -> pd.DataFrame:
    """``table`` as the DataFrame that was saved: dtypes, categories, zones and index back."""

    frame = table.to_pandas()
    for column in schema["columns"]:
        put_back(frame, column["name"], column, table.column(column["name"]))
    if schema.get("index"):
        names = schema["index"]
        stored = [n if n is not None else f"{_INDEX_PREFIX}{i}__" for i, n in enumerate(names)]
        frame = frame.set_index(stored)
        frame.index.names = names
    return frame  # type: ignore[no-any-return]


def put_back(
    frame: pd.DataFrame, label: str, column: dict[str, Any], read: pa.ChunkedArray
) -> None:
    """Give ``frame[label]``, read from the Arrow column ``read``, the pandas dtype ``column``
    (an entry of a saved schema) records, in place."""
    import numpy as np
    import pandas as pd

    wanted = column["pandas"]
    if str(frame[label].dtype) == wanted:
        return
    if "categories" in column:
        frame[label] = pd.Categorical(
            frame[label], categories=column["categories"], ordered=column["ordered"]
        )
        return
    dtype = pd.api.types.pandas_dtype(wanted)
    if read.null_count and isinstance(dtype, np.dtype) and dtype.kind in "biu":
        # A numpy bool or integer column cannot hold the nulls a left join adds (astype(bool)
        # would make them False): it stays as read, object or float64.
        return
    if isinstance(dtype, pd.DatetimeTZDtype):
        frame[label] = frame[label].dt.tz_convert(dtype.tz)
    if isinstance(dtype, pd.api.extensions.ExtensionDtype) and dtype.kind in "iubf":
        # Int64 & co. straight from Arrow: through float64 (what to_pandas makes of an
        # integer column with nulls) an id above 2**53 would come back rounded.
        exact = read.to_pandas(types_mapper={read.type: dtype}.get)
        frame[label] = exact.set_axis(frame.index)
        return
    with contextlib.suppress(TypeError, ValueError):  # a type pandas cannot rebuild: as read
        frame[label] = frame[label].astype(dtype)


def _default_index(index: pd.Index[Any]) -> bool:
    """No name and the values 0..n-1: what ``RangeIndex(n)`` holds, which the fingerprint does not
    tell from an integer index of the same values (``pd.concat`` makes one), so neither is kept."""
    import pandas as pd

    if index.name is not None or index.nlevels != 1:
        return False
    if isinstance(index, pd.RangeIndex):
        return index.start == 0 and index.step == 1
    n = len(index)
    return (
        index.dtype.kind in "iu"
        and index.is_unique
        and index.is_monotonic_increasing
        and (n == 0 or (index[0] == 0 and index[-1] == n - 1))
    )


# -- checks -----------------------------------------------------------------------------------


def _check_uri(name: str, uri: str | None, existing: Row | None) -> str:
    if uri is not None and not isinstance(uri, str):
        raise DatasetError(f"uri={uri!r}: give a path or URI string.", name)
    if existing is None:
        return uri or ""
    if uri is not None and uri != existing["uri"]:
        raise DatasetError(
            f"Dataset {name!r} lives at {existing['uri'] or 'the store'}, not {uri}; "
            "a dataset keeps its location (save under a new name to move it).",
            name,
        )
    return str(existing["uri"])


def _check_key(
    frame: pd.DataFrame, name: str, key: str | list[str] | None, existing: Row | None
) -> list[str] | None:
    keys = [key] if isinstance(key, str) else list(key) if key is not None else None
    if keys is None and existing is not None and existing["key"]:
        keys = list(existing["key"])
    elif keys and existing is not None and existing["key"] and keys != existing["key"]:
        raise DatasetError(
            f"Dataset {name!r} is keyed by {existing['key']}, not {keys}; "
            "a dataset keeps its key (save under a new name for another key).",
            name,
        )
    if not keys:
        return None
    columns = set(frame.columns) | {n for n in frame.index.names if n is not None}
    missing = [k for k in keys if k not in columns]
    if missing:
        raise DatasetError(
            f"Dataset {name!r}: key column(s) {missing} not in the data "
            f"(columns: {sorted(map(str, columns))[:20]}).",
            name,
        )
    values = frame.reset_index()[keys] if set(keys) - set(frame.columns) else frame[keys]
    if values.isna().any().any():
        raise DatasetError(f"Dataset {name!r}: key {keys} has missing values.", name)
    if len(keys) == 1 and values[keys[0]].dtype.kind in "iu":
        ids = values[keys[0]].to_numpy()
        if (ids[1:] > ids[:-1]).all():  # increasing ids: unique (22 ms against 0.84 s at 8M)
            return keys
    duplicated = values[values.duplicated(keep=False)]
    if len(duplicated):
        shown = duplicated.drop_duplicates().head(5).to_dict("records")
        raise DatasetError(
            f"Dataset {name!r}: key {keys} is not unique; {len(duplicated):,} rows share a key, "
            f"e.g. {shown}.",
            name,
        )
    return keys


def _check_append_schema(
    name: str, schema: dict[str, Any], new: dict[str, Any], schema_mode: str | None
) -> None:
    """Appended rows (their schema ``new``) fit the table's ``schema``, or say what changed."""
    old_types = {c["name"]: c["arrow"] for c in schema["columns"]}
    new_types = {c["name"]: c["arrow"] for c in new["columns"]}
    if schema.get("index") != new.get("index"):
        raise DatasetError(
            f"Dataset {name!r}: the appended rows' index {new.get('index')} is not the table's "
            f"{schema.get('index')}.",
            name,
        )
    if old_types == new_types:
        return
    changes = [f"{c} added ({t})" for c, t in new_types.items() if c not in old_types]
    changes += [f"{c} missing" for c in old_types if c not in new_types]
    changes += [
        f"{c} {old_types[c]} -> {t}"
        for c, t in new_types.items()
        if c in old_types and old_types[c] != t
    ]
    retyped = any("->" in c for c in changes)
    if schema_mode == "merge" and not retyped:
        return
    raise DatasetError(
        f"Dataset {name!r}: the appended rows change the schema ({'; '.join(changes)}). "
        + (
            "A column's type cannot change in an append; convert it, or save a new version."
            if retyped
            else "Pass schema_mode='merge' to add or leave out columns."
        ),
        name,
    )


def _merged_schema(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The table's schema after an append: new columns added; a categorical column's
    categories those of both (the old order first); a column the appended rows hold as a
    nullable pandas dtype (``Int64``: they have nulls) takes that dtype, which holds both."""
    import pandas as pd

    appended = {c["name"]: c for c in new["columns"]}
    columns = []
    for column in old["columns"]:
        other = appended.get(column["name"])
        if other is not None and "categories" in column and "categories" in other:
            known = column["categories"]
            column = {
                **column,
                "categories": known + [c for c in other["categories"] if c not in known],
            }
        elif (
            other is not None
            and other["pandas"] != column["pandas"]
            and isinstance(
                pd.api.types.pandas_dtype(other["pandas"]), pd.api.extensions.ExtensionDtype
            )
        ):
            column = {**column, "pandas": other["pandas"]}
        columns.append(column)
    names = {c["name"] for c in old["columns"]}
    return {**old, "columns": columns + [c for c in new["columns"] if c["name"] not in names]}


def _check_new_keys(
    store: Store, name: str, location: str, latest: Row, frame: pd.DataFrame, keys: list[str]
) -> None:
    """Appended rows repeat no key of the table. Reads only the key columns, and for a single
    integer key only the files whose recorded key range meets the new keys' (increasing ids
    read nothing)."""
    import pyarrow.parquet as pq

    local = local_path(location)
    if local is None:
        return  # not read back from object storage: Delta's own constraints are the user's
    new = frame.reset_index()[keys] if set(keys) - set(frame.columns) else frame[keys]
    entries = manifest_files(store, latest)
    if len(keys) == 1 and all("key_range" in f for f in entries):
        low, high = new[keys[0]].min(), new[keys[0]].max()
        entries = [f for f in entries if f["key_range"][0] <= high and f["key_range"][1] >= low]
    if not entries:
        return
    existing = pq.read_table([str(local / f["path"]) for f in entries], columns=keys).to_pandas()
    clash = new.merge(existing, on=keys, how="inner")  # existing keys are unique: checked
    if len(clash):
        raise DatasetError(
            f"Dataset {name!r}: {len(clash):,} appended row(s) repeat keys already in "
            f"{name}@{latest['version']}, e.g. {clash.head(5).to_dict('records')}; "
            "save a new version (mode='overwrite') to change rows.",
            name,
        )


def _check_untouched(
    store: Store, name: str, location: str, latest: Row, storage_options: dict[str, str] | None
) -> None:
    """Refuse to write on a table whose Delta log or files moved without nbmlops."""
    from deltalake import DeltaTable

    try:
        current = DeltaTable(location, storage_options=storage_options).version()
    except Exception as exc:
        raise DatasetTamperedError(name, latest["version"], ["_delta_log"], location) from exc
    if current != latest["delta_version"]:
        raise DatasetError(
            f"Dataset {name!r}: the Delta table at {location} is at Delta version {current}, "
            f"but nbmlops saved Delta version {latest['delta_version']} as {name}@"
            f"{latest['version']}: something else wrote to it, or an nbmlops save was cut off "
            f"before it was recorded. Nothing was written. nbm.restore_dataset({name!r}, "
            f"{latest['version']}) sets the table back to {name}@{latest['version']} (as a new "
            "version); or save under a new name.",
            name,
        )
    local = local_path(location)
    if local is not None:
        _verify_present(latest, location, local, manifest_files(store, latest))


def verify_files(name: str, number: int, location: str, files: list[Row]) -> None:
    """Each of ``files`` (a manifest's entries) is there with its recorded BLAKE3; else
    DatasetTamperedError naming the ones that are not."""
    local = local_path(location)
    if local is None:
        return
    _verify_present({"name": name, "version": number}, location, local, files)

    def matches(entry: Row) -> bool:
        with open(local / entry["path"], "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        with mapped, memoryview(mapped) as view:
            return bool(blake3_hex(view) == entry["blake3"])

    with ThreadPoolExecutor(max_workers=2) as pool:
        changed = [
            f["path"] for f, ok in zip(files, pool.map(matches, files), strict=True) if not ok
        ]
    if changed:
        raise DatasetTamperedError(name, number, changed, location)


def _verify_present(row: Row, location: str, local: Path, files: list[Row]) -> None:
    """Each file is there with its recorded size (cheap: no byte read)."""
    changed = []
    for entry in files:
        try:
            if (local / entry["path"]).stat().st_size != entry["size"]:
                changed.append(entry["path"])
        except FileNotFoundError:
            changed.append(entry["path"])
    if changed:
        raise _tampered(row, location, changed)


def _tampered(row: Row, location: str, files: list[str]) -> DatasetTamperedError:
    return DatasetTamperedError(row["name"], int(row["version"]), files, location)


# -- files ------------------------------------------------------------------------------------


# Rows per Parquet file: files of ~100 MB at 16 float columns, written two at a time.
_ROWS_PER_FILE = 1 << 20


def _write(
    location: str,
    table: pa.Table,
    *,
    append: bool,
    keys: list[str],
    storage_options: dict[str, str] | None,
) -> list[Row] | None:
    """Write ``table`` as a new Delta commit (appended, or replacing the table's rows); the new
    files in row order with their sizes and BLAKE3, or None where delta-rs wrote them.

    On this machine's file system nbmlops writes the Parquet files itself (pyarrow, two at a
    time, each hashed from the bytes written) and commits them with deltalake's transaction
    API: ``write_deltalake`` does not keep row order (its parallel writer put the second of two
    record batches first in about one write in four, measured with deltalake 1.6.6), and row
    order is content. Object storage goes through ``write_deltalake`` with one record batch."""
    from deltalake import DeltaTable, write_deltalake
    from deltalake import Schema as DeltaSchema
    from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

    local = local_path(location)
    if local is None:
        write_deltalake(
            location,
            table.combine_chunks(),
            mode="append" if append else "overwrite",
            schema_mode="merge" if append else "overwrite",
            storage_options=storage_options,
        )
        return None
    local.mkdir(parents=True, exist_ok=True)
    batch = uuid.uuid4()
    slices = [table.slice(start, _ROWS_PER_FILE) for start in range(0, len(table), _ROWS_PER_FILE)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        files = list(
            pool.map(
                lambda part: _write_parquet(
                    local, f"part-{part[0]:05d}-{batch}.snappy.parquet", part[1], keys
                ),
                enumerate(slices or [table]),
            )
        )
    now = int(time.time() * 1000)
    actions = [
        AddAction(f["path"], f["size"], {}, now, True, json.dumps({"numRecords": f["rows"]}))
        for f in files
    ]
    if not (local / "_delta_log").is_dir():
        create_table_with_add_actions(
            str(local), DeltaSchema.from_arrow(table.schema), actions, mode="error"
        )
    else:
        delta = DeltaTable(str(local))
        schema = DeltaSchema.from_arrow(table.schema)
        if append:
            known = {f.name for f in delta.schema().fields}
            new_fields = [f for f in schema.fields if f.name not in known]
            if new_fields:  # schema_mode="merge", checked by the caller
                delta.alter.add_columns(new_fields)
                delta = DeltaTable(str(local))
            schema = delta.schema()
        commit: list[AddAction | RemoveAction] = list(actions)
        delta.create_write_transaction(
            commit, mode="append" if append else "overwrite", schema=schema
        )
    return [{k: v for k, v in f.items() if k != "rows"} for f in files]


def _write_parquet(folder: Path, name: str, part: pa.Table, keys: list[str]) -> Row:
    """One Parquet file of ``part``; its entry in the manifest, with the range of a single
    integer key (an append then reads back only the files whose range meets its keys)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # A dictionary is tried on every column up to its page limit (1 MiB by default): on
    # floats that costs more than the encoding and decodes slower (1 GiB: 7.4 -> 2.9 s to
    # save, benchmarks/bench_data.py); 64 KiB keeps it for columns of few values. An
    # increasing integer key packs to almost nothing as deltas.
    integer_key = [k for k in keys if pa.types.is_integer(part.schema.field(k).type)]
    sink = pa.BufferOutputStream()
    pq.write_table(
        part,
        sink,
        compression="snappy",
        dictionary_pagesize_limit=64 << 10,
        use_dictionary=[c for c in part.column_names if c not in integer_key],
        column_encoding=dict.fromkeys(integer_key, "DELTA_BINARY_PACKED") or None,
    )
    data = sink.getvalue()
    with open(folder / name, "xb") as out:
        out.write(data)
    entry: Row = {
        "path": name,
        "size": data.size,
        "blake3": blake3_hex(memoryview(data)),
        "rows": len(part),
    }
    if len(keys) == 1 and integer_key and len(part):
        bounds = pc.min_max(part.column(keys[0]))
        entry["key_range"] = [bounds["min"].as_py(), bounds["max"].as_py()]
    return entry


def _current_files(
    location: str,
    storage_options: dict[str, str] | None,
    previous: list[Row],
    written: list[Row] | None,
) -> tuple[int, list[Row]]:
    """The table's Delta version and files after a write, in row order: the files kept from
    ``previous`` in their order, then the ones ``written`` (or, where delta-rs wrote them, the
    new files by part number, and hashed here)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    table = DeltaTable(location, storage_options=storage_options)
    actions = pa.table(table.get_add_actions(flatten=True))
    sizes = dict(zip(actions["path"].to_pylist(), actions["size_bytes"].to_pylist(), strict=True))
    kept = [f for f in previous if f["path"] in sizes]
    if written is not None:
        return table.version(), kept + written
    new = sorted(set(sizes) - {f["path"] for f in kept}, key=_part_number)
    added = [{"path": path, "size": int(sizes[path]), "blake3": None} for path in new]
    return table.version(), kept + added


def _part_number(path: str) -> tuple[int, str]:
    found = _PART.search(path)
    return (int(found.group(1)) if found else 0, path)


def local_path(location: str) -> Path | None:
    """The folder of a table on this machine's file system, None for object storage."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    if len(parsed.scheme) <= 1:  # no scheme, or a Windows drive letter
        return Path(location)
    return None
