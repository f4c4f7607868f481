"""Row-level diff of two versions of a table dataset, matched by the dataset's key (issue #16
item 3): rows added, removed and changed (which columns, old and new values), schema changes.

How it stays fast on large tables (the issue's target: two 10M-row versions with 1% of rows
changed in 3 s or less on two cores; measured in the report of commit "(issue #16 item 3)"):

1. Files both versions share (same path, same BLAKE3: an append keeps the earlier files) hold the
   same rows in both, and as a key is unique in each version those keys occur nowhere else:
   they are left out. Diffing a version against an append of it reads only the appended files.
2. The other files are checked against their manifests first (``DatasetTamperedError``, with
   ``tables``' own check), then DuckDB reads them, keeping only the key and a 64-bit hash of
   each row's other values (DuckDB's ``hash``: NaN hashes as NaN, -0.0 as 0.0, NULL apart).
3. Rows whose key is on one side only, or whose hash differs, are the candidates. With one
   integer key spanning at most about twice the rows (ids, the usual key) they come from
   direct addressing in numpy, in any row order; otherwise from a DuckDB full outer join of
   the two (key, hash) lists, a few times slower.
4. Only the candidates' full rows are read back and compared column by column with
   ``IS DISTINCT FROM`` (NULL equals NULL, NaN equals NaN, as DuckDB orders them): a candidate
   that differs in no column is unchanged. Two different rows hashing alike (2**-64 a row) would
   be missed; that is the price of not joining every column of every row.

A column only one version has is a schema change, not a change of every row: rows are compared
on the columns both have. A retyped column compares as numbers when both types are numeric
(``1`` and ``1.0`` are equal), else as text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nbmlops.data.dataset_version import manifest_files, table_location
from nbmlops.data.tables import local_path, read_files, verify_files, with_schema_columns
from nbmlops.errors import DatasetError
from nbmlops.store.db import Row, Store

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    import pyarrow as pa

_NUMERIC = re.compile(r"(u?int\d+|float|double|halffloat|decimal\d*\(.*\))")
_OURS = ("change", "column", "old", "new")


@dataclass(frozen=True)
class SchemaChange:
    """A column added, removed or retyped between two versions; types are pandas dtypes."""

    column: str
    change: str  # 'added', 'removed' or 'retyped'
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.change == "added":
            return f"column {self.column!r} added ({self.new})"
        if self.change == "removed":
            return f"column {self.column!r} removed"
        return f"column {self.column!r} {self.old} -> {self.new}"


@dataclass(frozen=True)
class DatasetDiff:
    """What changed from ``old_ref`` to ``new_ref``, rows matched by ``key``.

    The counts are complete; ``rows`` holds the first ``limit`` lines of detail in key order,
    in long format: the key columns, ``change`` ('added', 'removed' or 'changed'), then for a
    changed row one line per changed value (``column``, ``old``, ``new``), for an added or
    removed row one line with its other values as a dict in ``new`` or ``old``. Long, because
    a row that changed in one of fifty columns then reads as one line, not fifty columns of
    mostly equal values, and ``rows[rows.column == "spend"]`` answers what happened to spend.
    """

    old_ref: str
    new_ref: str
    key: list[str]
    added: int
    removed: int
    changed: int
    changed_by_column: dict[str, int]
    schema_changes: list[SchemaChange]
    rows: pd.DataFrame = field(repr=False, compare=False)
    limit: int

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed or self.schema_changes)

    @property
    def truncated(self) -> bool:
        """True when ``rows`` holds fewer lines than there are changes (see ``limit``)."""
        return len(self.rows) < self.added + self.removed + sum(self.changed_by_column.values())

    @property
    def summary(self) -> str:
        """``customers@2 -> customers@3: +1,000 rows, -20 rows, 312 changed (spend 300, city
        12); column 'segment' added``."""
        head = f"{self.old_ref} -> {self.new_ref}: "
        if self.identical:
            return head + "identical"
        parts = [f"+{self.added:,} rows", f"-{self.removed:,} rows", f"{self.changed:,} changed"]
        if self.changed_by_column:
            parts[-1] += (
                " (" + ", ".join(f"{c} {n:,}" for c, n in self.changed_by_column.items()) + ")"
            )
        text = head + ", ".join(parts)
        if self.schema_changes:
            text += "; " + ", ".join(map(str, self.schema_changes))
        if self.truncated:
            text += f" (rows lists the first {len(self.rows):,} changes; limit={self.limit:,})"
        return text

    def __str__(self) -> str:
        return self.summary

    def to_frame(self) -> pd.DataFrame:
        """The changed rows (``rows``), as the other diff results give them."""
        return self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_ref": self.old_ref,
            "new_ref": self.new_ref,
            "key": self.key,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "changed_by_column": self.changed_by_column,
            "schema_changes": [str(s) for s in self.schema_changes],
            "truncated": self.truncated,
        }

    def _repr_html_(self) -> str:
        counts = [("added", self.added), ("removed", self.removed), ("changed", self.changed)]
        counts += [(f"changed: {c}", n) for c, n in self.changed_by_column.items()]
        body = "".join(f"<tr><td>{html.escape(k)}</td><td>{n:,}</td></tr>" for k, n in counts)
        schema = "".join(f"<li>{html.escape(str(s))}</li>" for s in self.schema_changes)
        shown = self.rows.head(20).to_html(index=False) if len(self.rows) else ""
        more = (
            f"<p>first 20 of {len(self.rows):,} lines in .rows</p>" if len(self.rows) > 20 else ""
        )
        return (
            f"<b>{html.escape(self.old_ref)} &rarr; {html.escape(self.new_ref)}</b> "
            f"(key {html.escape(', '.join(self.key))})<table>{body}</table>"
            + (f"<ul>{schema}</ul>" if schema else "")
            + shown
            + more
        )


def diff_tables(store: Store, old_row: Row, new_row: Row, *, limit: int = 10_000) -> DatasetDiff:
    """The diff from table version ``old_row`` to ``new_row`` (rows from ``resolve_row``)."""
    import duckdb

    refs = (_ref(old_row), _ref(new_row))
    keys = _key(old_row, new_row, refs)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise DatasetError(f"limit={limit!r}: give a number of lines, 0 or more.", new_row["name"])
    old, new = _columns(old_row, keys), _columns(new_row, keys)
    compared = {c: _comparable(old[c], new[c]) for c in old if c in new}
    found = _by_ids(store, old_row, new_row, keys, list(old), list(new), compared, limit)
    if found is not None:
        counts, rows = found
    else:
        old_files, new_files = _files_to_read(store, old_row, new_row)
        con = duckdb.connect()
        try:
            _source(con, "o", keys, list(old), old_files)
            _source(con, "n", keys, list(new), new_files)
            read = _candidates(con, keys, list(old), list(new), compared)
            counts, rows = _detail(con, refs, keys, list(old), list(new), compared, read, limit)
        finally:
            con.close()
    return DatasetDiff(
        old_ref=refs[0],
        new_ref=refs[1],
        key=keys,
        schema_changes=_schema_changes(old, new),
        rows=rows,
        limit=limit,
        **counts,
    )


# -- preparation ------------------------------------------------------------------------------


def _ref(row: Row) -> str:
    return f"{row['name']}@{row['version']}"


def _key(old_row: Row, new_row: Row, refs: tuple[str, str]) -> list[str]:
    keys = new_row["key"]
    if not keys:
        raise DatasetError(
            f"Dataset {new_row['name']!r} has no key, so {refs[0]} and {refs[1]} cannot be "
            f"matched row by row; save it with key= (nbm.save_dataset(df, {new_row['name']!r}, "
            "key='id')) and diff versions saved with it.",
            new_row["name"],
        )
    if old_row["key"] != keys:
        raise DatasetError(
            f"{refs[0]} is keyed by {old_row['key']} and {refs[1]} by {keys}: their rows cannot "
            "be matched; diff two versions with the same key.",
            new_row["name"],
        )
    return list(keys)


def _columns(row: Row, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The version's columns other than the key, by name; the key must be among them."""
    columns = {c["name"]: c for c in row["schema"]["columns"]}
    missing = [k for k in keys if k not in columns]
    if missing:
        raise DatasetError(
            f"{_ref(row)} has no key column {missing}: it was saved before the dataset was "
            f"keyed by {keys}; diff versions saved with the key.",
            row["name"],
        )
    return {n: c for n, c in columns.items() if n not in keys}


def _comparable(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, str]:
    """SQL casts (``{}`` for the column) under which the two versions' values compare."""
    if old["arrow"] == new["arrow"]:
        return "{}", "{}"
    if _NUMERIC.fullmatch(old["arrow"]) and _NUMERIC.fullmatch(new["arrow"]):
        return "CAST({} AS DOUBLE)", "CAST({} AS DOUBLE)"
    return "CAST({} AS VARCHAR)", "CAST({} AS VARCHAR)"


def _schema_changes(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]
) -> list[SchemaChange]:
    changes = [SchemaChange(c, "added", None, new[c]["pandas"]) for c in new if c not in old]
    changes += [SchemaChange(c, "removed", old[c]["pandas"], None) for c in old if c not in new]
    changes += [
        SchemaChange(c, "retyped", old[c]["pandas"], new[c]["pandas"])
        for c in old
        if c in new and (old[c]["pandas"], old[c]["arrow"]) != (new[c]["pandas"], new[c]["arrow"])
    ]
    return changes


def _files_to_read(store: Store, old_row: Row, new_row: Row) -> tuple[list[str], list[str]]:
    """Each version's Parquet files that the other does not share, checked against the
    manifests first (a file both share is checked once, and not read: see the docstring)."""
    sides = []
    for row in (old_row, new_row):
        location = table_location(store, row["name"], row["uri"])
        local = local_path(location)
        if local is None:
            raise DatasetError(
                f"Dataset {row['name']!r} lives at {location}: dataset_diff reads tables on "
                "this machine's file system; load both versions (nbm.load_dataset) to compare.",
                row["name"],
            )
        files = {str(local / f["path"]): f for f in manifest_files(store, row)}
        sides.append((row, location, files))
    (old_row, old_location, old), (new_row, new_location, new) = sides
    shared = {p for p, f in old.items() if p in new and new[p]["blake3"] == f["blake3"]}
    verify_files(old_row["name"], int(old_row["version"]), old_location, list(old.values()))
    fresh = [f for p, f in new.items() if p not in shared]
    verify_files(new_row["name"], int(new_row["version"]), new_location, fresh)
    return [p for p in old if p not in shared], [p for p in new if p not in shared]


# -- ids: one read of each side -----------------------------------------------------------------


def _by_ids(
    store: Store,
    old_row: Row,
    new_row: Row,
    keys: list[str],
    old_cols: list[str],
    new_cols: list[str],
    compared: dict[str, tuple[str, str]],
    limit: int,
) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """The diff in one read of each side, for the usual key: one integer column of ids
    (spanning at most about twice the rows) and columns of unchanged types. Each side's files
    but the shared ones are checked and decoded once (``tables.read_files``); rows are matched
    by direct addressing on the id, then each column is compared in Arrow (NULL equals NULL,
    NaN equals NaN). None where these conditions do not hold: the two DuckDB passes then run.
    Two 10M-row versions: 2.5 s against 6 s for the two passes (benchmarks/bench_data.py)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(keys) != 1 or any(casts != ("{}", "{}") for casts in compared.values()):
        return None
    sides = []
    for row in (old_row, new_row):
        location = table_location(store, row["name"], row["uri"])
        if local_path(location) is None:
            return None
        sides.append((row, location, manifest_files(store, row)))
    shared = {f["blake3"] for f in sides[0][2]} & {f["blake3"] for f in sides[1][2]}
    tables = []
    for (row, location, files), cols in zip(sides, (old_cols, new_cols), strict=True):
        fresh = [f for f in files if f["blake3"] not in shared]
        tables.append(with_schema_columns(read_files(row, location, fresh), row["schema"]))
        tables[-1] = tables[-1].select([keys[0], *cols])
    old_t, new_t = tables
    key = keys[0]
    kind = old_t.schema.field(key).type
    if (
        kind != new_t.schema.field(key).type
        or not pa.types.is_integer(kind)
        or kind == pa.uint64()
        or old_t.column(key).null_count
        or new_t.column(key).null_count
    ):
        return None
    old_ids = old_t.column(key).to_numpy().astype(np.int64)
    new_ids = new_t.column(key).to_numpy().astype(np.int64)
    both = np.concatenate([old_ids, new_ids])
    if not len(both):
        return None
    low, high = int(both.min()), int(both.max())
    if high - low + 1 > 2 * len(both) + 1_000_000:
        return None
    where_old = np.full(high - low + 1, -1, dtype=np.int64)
    where_old[old_ids - low] = np.arange(len(old_ids))
    in_new = np.zeros(high - low + 1, dtype=bool)
    in_new[new_ids - low] = True
    if int((where_old >= 0).sum()) != len(old_ids) or int(in_new.sum()) != len(new_ids):
        return None  # a repeated id: the DuckDB passes say which version
    matched_old = where_old[new_ids - low]
    matched = matched_old >= 0
    new_pos = np.flatnonzero(matched)
    old_pos = matched_old[matched]
    aligned = len(old_pos) == len(old_ids) == len(new_ids) and bool((old_pos == new_pos).all())
    changed_any = np.zeros(len(new_pos), dtype=bool)
    flags: dict[str, np.ndarray] = {}
    for column in compared:
        a = old_t.column(column) if aligned else old_t.column(column).take(old_pos)
        b = new_t.column(column) if aligned else new_t.column(column).take(new_pos)
        if (pa.types.is_integer(a.type) or pa.types.is_floating(a.type)) and not (
            a.null_count or b.null_count
        ):  # numbers without nulls: numpy on Arrow's buffers, no Arrow kernels in between
            floating = pa.types.is_floating(a.type)
            pairs = _chunk_pairs(a, b)
            found = np.concatenate(
                [_differ(x.to_numpy(), y.to_numpy(), floating) for x, y in pairs]
            )
            flags[column] = found
            changed_any |= found
            continue
        differs = pc.or_(
            pc.fill_null(pc.not_equal(a, b), False), pc.xor(pc.is_null(a), pc.is_null(b))
        )
        if pa.types.is_floating(a.type):
            both_nan = pc.and_(pc.fill_null(pc.is_nan(a), False), pc.fill_null(pc.is_nan(b), False))
            differs = pc.and_not(differs, both_nan)
        flags[column] = np.asarray(differs.to_numpy(zero_copy_only=False), dtype=bool)
        changed_any |= flags[column]
    removed_pos = np.flatnonzero(~in_new[old_ids - low])
    added_pos = np.flatnonzero(~matched)
    by_column = {c: int(f.sum()) for c, f in flags.items() if f.any()}
    counts = {
        "added": len(added_pos),
        "removed": len(removed_pos),
        "changed": int(changed_any.sum()),
        "changed_by_column": dict(sorted(by_column.items(), key=lambda cn: (-cn[1], cn[0]))),
    }
    # The first `limit` rows by id, as the two passes' rows are (one line per changed value).
    changed_at = np.flatnonzero(changed_any)  # indexes into new_pos / the flags
    ids = np.concatenate([new_ids[new_pos[changed_at]], new_ids[added_pos], old_ids[removed_pos]])
    what = np.repeat([0, 1, 2], [len(changed_at), len(added_pos), len(removed_pos)])
    flag_at = np.concatenate([changed_at, np.full(len(ids) - len(changed_at), -1)])
    order = np.argsort(ids, kind="stable")[:limit]
    where_new = np.full(high - low + 1, -1, dtype=np.int64)
    where_new[new_ids - low] = np.arange(len(new_ids))
    shown_old = order[what[order] != 1]
    shown_new = order[what[order] != 2]
    old_values = old_t.take(where_old[ids[shown_old] - low]).to_pylist()
    new_values = new_t.take(where_new[ids[shown_new] - low]).to_pylist()
    old_by_id = {int(ids[k]): v for k, v in zip(shown_old, old_values, strict=True)}
    new_by_id = {int(ids[k]): v for k, v in zip(shown_new, new_values, strict=True)}
    rows = []
    for k in order:
        at = int(ids[k])
        line: dict[str, Any] = {"_k0": at, "_in_old": None, "_in_new": None}
        if at in old_by_id:
            line["_in_old"] = True
            line.update({f"_o{i}": old_by_id[at][c] for i, c in enumerate(old_cols)})
        if at in new_by_id:
            line["_in_new"] = True
            line.update({f"_n{i}": new_by_id[at][c] for i, c in enumerate(new_cols)})
        if what[k] == 0:
            line.update({f"_d{j}": bool(flags[c][flag_at[k]]) for j, c in enumerate(compared)})
        rows.append(line)
    return counts, _lines(rows, keys, old_cols, new_cols, compared, limit)


def _chunk_pairs(a: pa.ChunkedArray, b: pa.ChunkedArray) -> list[tuple[pa.Array, pa.Array]]:
    """The two columns as pairs of arrays of equal length: their own chunks when they line up
    (files of the same sizes: a new version of the same rows), read without a copy; else each
    column made one array."""
    if [len(c) for c in a.chunks] == [len(c) for c in b.chunks]:
        return list(zip(a.chunks, b.chunks, strict=True))
    return [(a.combine_chunks(), b.combine_chunks())]


def _differ(x: np.ndarray, y: np.ndarray, floating: bool) -> np.ndarray:
    """Where two number arrays differ, NaN equal to NaN."""
    import numpy as np

    found: np.ndarray = np.not_equal(x, y)
    if floating:
        found &= ~(np.isnan(x) & np.isnan(y))
    return found


# -- the two passes ---------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(
    con: duckdb.DuckDBPyConnection, side: str, keys: list[str], columns: list[str], files: list[str]
) -> None:
    """View ``side`` over ``files`` with positional names, whatever the user's are: the key
    columns ``_k0``..., then the other columns ``_c0``... in the version's order (NULL where
    its files lack one: the rows of a merged append's earlier files)."""
    if files and any(c in path for path in files for c in "[]*?{}"):
        import pyarrow as pa  # DuckDB would read these paths as glob patterns
        import pyarrow.parquet as pq

        parts = [pq.read_table(path) for path in files]
        con.register(f"{side}_files", pa.concat_tables(parts, promote_options="default"))
    elif files:
        con.read_parquet(files, union_by_name=True).create_view(f"{side}_files")
    if files:
        present = set(con.sql(f"SELECT * FROM {side}_files LIMIT 0").columns)
        origin = f"{side}_files"
    else:  # all its rows are in files both versions share: nothing to read on this side
        present, origin = set(), "(SELECT 1) WHERE false"
    select = [
        f"{_q(name) if name in present else 'NULL'} AS {alias}"
        for alias, name in [(f"_k{i}", k) for i, k in enumerate(keys)]
        + [(f"_c{i}", c) for i, c in enumerate(columns)]
    ]
    con.execute(f"CREATE TEMP VIEW {side} AS SELECT {', '.join(select)} FROM {origin}")


def _candidates(
    con: duckdb.DuckDBPyConnection,
    keys: list[str],
    old_cols: list[str],
    new_cols: list[str],
    compared: dict[str, tuple[str, str]],
) -> tuple[int, int]:
    """Table ``cand``: the keys on one side only, or on both with different row hashes.
    Returns the number of rows read on each side."""
    hashes = {}
    for side, cols, which in (("o", old_cols, 0), ("n", new_cols, 1)):
        parts = [compared[c][which].format(f"_c{cols.index(c)}") for c in compared]
        hashes[side] = f"hash({', '.join(parts)})" if parts else "0::UBIGINT"
    key_list = ", ".join(f"_k{i}" for i in range(len(keys)))
    old = con.sql(f"SELECT {key_list}, {hashes['o']} AS _h FROM o").to_arrow_table()
    new = con.sql(f"SELECT {key_list}, {hashes['n']} AS _h FROM n").to_arrow_table()
    merged = _dense_candidates(old, new) if len(keys) == 1 else None
    if merged is not None:
        con.register("cand_keys", merged)
    else:
        con.register("o_hashes", old)
        con.register("n_hashes", new)
        on = " AND ".join(f"o._k{i} IS NOT DISTINCT FROM n._k{i}" for i in range(len(keys)))
        coalesced = ", ".join(f"coalesce(o._k{i}, n._k{i}) AS _k{i}" for i in range(len(keys)))
        con.execute(
            f"CREATE TEMP VIEW cand_keys AS SELECT {coalesced} FROM o_hashes o "
            f"FULL JOIN n_hashes n ON {on} WHERE o._h IS DISTINCT FROM n._h"
        )
    con.execute("CREATE TEMP TABLE cand AS SELECT * FROM cand_keys")
    return len(old), len(new)


def _dense_candidates(old: pa.Table, new: pa.Table) -> pa.Table | None:
    """The candidate keys by direct addressing, when the key is one integer column without
    nulls whose values span at most about twice the rows (ids: the usual key): each side's
    row hashes are scattered into an array indexed by key, so matching is a gather, in any
    row order. None otherwise, or when a side repeats a key (the join path then says so)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = old.schema.field("_k0").type
    if (
        kind != new.schema.field("_k0").type
        or not pa.types.is_integer(kind)
        or kind == pa.uint64()  # offsets are int64
        or not (len(old) and len(new))
        or old.column("_k0").null_count
        or new.column("_k0").null_count
    ):
        return None
    bounds = [pc.min_max(t.column("_k0")) for t in (old, new)]
    low = min(b["min"].as_py() for b in bounds)
    span = max(b["max"].as_py() for b in bounds) - low + 1
    if span > 2 * (len(old) + len(new)) + 1_000_000:
        return None
    hashes = np.zeros(span, dtype=np.uint64)
    in_old = np.zeros(span, dtype=bool)
    for batch in old.to_batches():
        at = batch.column(0).to_numpy().astype(np.int64) - low
        in_old[at] = True
        hashes[at] = batch.column(1).to_numpy()
    in_new = np.zeros(span, dtype=bool)
    parts = []
    for batch in new.to_batches():
        keys = batch.column(0).to_numpy()
        at = keys.astype(np.int64) - low
        in_new[at] = True
        parts.append(keys[~in_old[at] | (hashes[at] != batch.column(1).to_numpy())])
    if int(in_old.sum()) != len(old) or int(in_new.sum()) != len(new):
        return None
    parts.append((np.flatnonzero(in_old & ~in_new) + low).astype(kind.to_pandas_dtype()))
    return pa.table({"_k0": pa.array(np.concatenate(parts), type=kind)})


def _detail(
    con: duckdb.DuckDBPyConnection,
    refs: tuple[str, str],
    keys: list[str],
    old_cols: list[str],
    new_cols: list[str],
    compared: dict[str, tuple[str, str]],
    read: tuple[int, int],
    limit: int,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The candidates' rows, read back and compared column by column: the counts, and the
    first ``limit`` lines of detail."""
    k = range(len(keys))
    on = " AND ".join(f"{{t}}._k{i} IS NOT DISTINCT FROM c._k{i}" for i in k)
    both = " AND ".join(f"o._k{i} IS NOT DISTINCT FROM n._k{i}" for i in k)
    distinct = [
        f"{compared[c][0].format(f'o._c{old_cols.index(c)}')} IS DISTINCT FROM "
        f"{compared[c][1].format(f'n._c{new_cols.index(c)}')}"
        for c in compared
    ]
    flags = [f"{d} AS _d{j}" for j, d in enumerate(distinct)]
    values = [f"o._c{i} AS _o{i}" for i in range(len(old_cols))]
    values += [f"n._c{i} AS _n{i}" for i in range(len(new_cols))]
    con.execute(
        "CREATE TEMP TABLE d AS SELECT "
        + ", ".join(
            [f"coalesce(o._k{i}, n._k{i}) AS _k{i}" for i in k]
            + ["o._in AS _in_old", "n._in AS _in_new", *flags, *values]
        )
        + f" FROM (SELECT *, true AS _in FROM o SEMI JOIN cand c ON {on.format(t='o')}) o"
        + f" FULL JOIN (SELECT *, true AS _in FROM n SEMI JOIN cand c ON {on.format(t='n')}) n"
        + f" ON {both} WHERE o._in IS NULL OR n._in IS NULL"
        + "".join(f" OR _d{j}" for j in range(len(distinct)))
    )
    counted = con.execute(
        "SELECT count(*) FILTER (_in_old IS NULL), count(*) FILTER (_in_new IS NULL), "
        "count(*) FILTER (_in_old AND _in_new), "
        f"count(DISTINCT ({', '.join(f'_k{i}' for i in k)})), count(*)"
        + "".join(
            f", count(*) FILTER (_in_old AND _in_new AND _d{j})" for j in range(len(distinct))
        )
        + " FROM d"
    ).fetchall()[0]
    added, removed, changed, distinct_keys, lines = counted[:5]
    if distinct_keys != lines or read[0] - removed != read[1] - added:
        raise DatasetError(
            f"{refs[0]} or {refs[1]} repeats a value of the key {keys} (a version saved before "
            "the dataset was keyed): its rows cannot be matched one to one; diff versions saved "
            "with the key.",
            refs[1].split("@")[0],
        )
    by_column = {c: n for c, n in zip(compared, counted[5:], strict=True) if n}
    counts = {
        "added": added,
        "removed": removed,
        "changed": changed,
        "changed_by_column": dict(sorted(by_column.items(), key=lambda cn: (-cn[1], cn[0]))),
    }
    first = con.sql(
        f"SELECT * FROM d ORDER BY {', '.join(f'_k{i}' for i in k)} LIMIT {limit}"
    ).to_arrow_table()
    return counts, _lines(first.to_pylist(), keys, old_cols, new_cols, compared, limit)


def _lines(
    rows: list[dict[str, Any]],
    keys: list[str],
    old_cols: list[str],
    new_cols: list[str],
    compared: dict[str, tuple[str, str]],
    limit: int,
) -> pd.DataFrame:
    """Long format (see DatasetDiff); at most ``limit`` rows of the table, so this loop is
    over what a person reads, not over the data."""
    import pandas as pd

    lines: list[tuple[Any, ...]] = []
    for row in rows:
        key = tuple(row[f"_k{i}"] for i in range(len(keys)))
        if row["_in_old"] is None:
            new = {c: row[f"_n{i}"] for i, c in enumerate(new_cols)}
            lines.append((*key, "added", None, None, new))
        elif row["_in_new"] is None:
            old = {c: row[f"_o{i}"] for i, c in enumerate(old_cols)}
            lines.append((*key, "removed", None, old, None))
        else:
            lines += [
                (*key, "changed", c, row[f"_o{old_cols.index(c)}"], row[f"_n{new_cols.index(c)}"])
                for j, c in enumerate(compared)
                if row[f"_d{j}"]
            ]
    labels = [f"{k} (key)" if k in _OURS else k for k in keys]
    # object columns: a None stays None, an int an int (pandas would make both floats)
    frame = pd.DataFrame(lines[:limit], columns=[*labels, *_OURS], dtype=object)
    return frame.astype({label: frame[label].infer_objects().dtype for label in labels})
