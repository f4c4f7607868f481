"""Table datasets (issue #16): versions of a DataFrame as one Delta Lake table, read back with
the fingerprint they were saved with, appended cheaply, restored, read by a second engine, and
refused when the table was changed behind nbmlops' back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

import nbmlops as nbm
from nbmlops.errors import (
    DatasetError,
    DatasetNotFoundError,
    DatasetTamperedError,
    StoreReadOnlyError,
)
from nbmlops.fingerprint import fingerprint
from nbmlops.store import close_stores


def customers(n: int = 2_000, seed: int = 0) -> pd.DataFrame:
    """Every dtype a data scientist's frame commonly has, pandas' own ones included."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "age": rng.integers(18, 90, n).astype("int32"),
            "spend": rng.random(n),
            "city": pd.Categorical(
                rng.choice(["Lyon", "Paris", "Nice"], n), ["Paris", "Lyon", "Nice"]
            ),
            "name": [f"c{i}" for i in range(n)],
            "joined": pd.date_range("2026-01-01", periods=n, freq="min"),
            "seen": pd.date_range("2026-01-01", periods=n, freq="h", tz="Europe/Paris"),
            "visits": pd.array([None if i % 2 else i for i in range(n)], dtype="Int64"),
            "active": rng.random(n) > 0.5,
        }
    )


def test_versions_read_back_with_the_fingerprint_they_were_saved_with(home: Path):
    df = customers()
    v1 = nbm.save_dataset(df, "customers", key="customer_id")
    assert (v1.ref, v1.n_rows, v1.mode, v1.key) == (
        "customers@1",
        2_000,
        "overwrite",
        ["customer_id"],
    )
    assert v1.fingerprint == fingerprint(df).digest
    changed = df.copy()
    changed.loc[7, "spend"] = -1.0
    v2 = nbm.save_dataset(changed, "customers")
    back = nbm.load_dataset("customers@1")
    assert fingerprint(back).digest == v1.fingerprint
    pd.testing.assert_frame_equal(back, df)
    assert fingerprint(nbm.load_dataset("customers@latest")).digest == v2.fingerprint
    assert fingerprint(nbm.load_dataset("customers")).digest == v2.fingerprint
    assert [v.ref for v in nbm.dataset_versions("customers")] == ["customers@1", "customers@2"]


def test_an_index_is_kept_and_identical_content_writes_nothing(home: Path):
    df = customers(100).set_index(["city", "customer_id"])
    v1 = nbm.save_dataset(df, "indexed")
    table = Path(v1.location)
    files = sorted(p.name for p in table.glob("*.parquet"))
    again = nbm.save_dataset(df.copy(), "indexed")
    assert again == v1
    assert sorted(p.name for p in table.glob("*.parquet")) == files
    back = nbm.load_dataset("indexed@1")
    assert back.index.names == ["city", "customer_id"]
    assert fingerprint(back).digest == v1.fingerprint


def test_an_integer_index_of_0_to_n_is_no_index(home: Path):
    """pd.concat's index 0..n-1 is not stored as a column (the diff showed it as one)."""
    df = pd.concat([customers(5), customers(5, seed=1)])
    df.index = pd.Index(range(10), dtype="int64")
    v = nbm.save_dataset(df, "c")
    assert v.schema["index"] is None and "__index_level_0__" not in v.columns
    assert fingerprint(nbm.load_dataset("c@1")).digest == v.fingerprint == fingerprint(df).digest


def test_row_order_is_kept_whatever_the_record_batches(home: Path):
    """write_deltalake put the second of two record batches first in about one write in four
    (deltalake 1.6.6); row order is content, so nbmlops writes the Parquet files itself."""
    chunks = [
        pa.table({"i": pa.array(range(k * 100, (k + 1) * 100), pa.int64())}) for k in range(8)
    ]
    table = pa.concat_tables(chunks)
    assert table.column("i").num_chunks == 8
    for attempt in range(6):
        v = nbm.save_dataset(table, f"ordered{attempt}")
        assert nbm.load_dataset(v.ref, output="arrow").column("i").to_pylist() == list(range(800))
        # And as any Delta reader sees it:
        assert DeltaTable(v.location).to_pandas()["i"].tolist() == list(range(800))


def test_a_version_as_of_a_time(home: Path):
    v1 = nbm.save_dataset(customers(10), "t")
    v2 = nbm.save_dataset(customers(12), "t")
    between = pd.Timestamp((v1.created_at + v2.created_at) / 2, unit="s", tz="UTC")
    assert nbm.get_dataset(f"t@{between.isoformat()}").version == 1
    assert nbm.get_dataset(f"t@{pd.Timestamp.now(tz='UTC').isoformat()}").version == 2
    with pytest.raises(DatasetNotFoundError, match="known: t@1, t@2"):
        nbm.get_dataset("t@2020-01-01T00:00")


def test_appends_write_only_the_new_rows_and_read_back_whole(home: Path):
    df = customers(5_000)
    v1 = nbm.save_dataset(df, "c", key="customer_id")
    parts = [df]
    for i in range(10):
        rows = customers(50, seed=i + 1)
        rows["customer_id"] += 5_000 + 50 * i
        parts.append(rows)
        last = nbm.save_dataset(rows, "c", mode="append")
        assert last.mode == "append" and last.added_bytes < v1.n_bytes / 10
    whole = pd.concat(parts, ignore_index=True)
    assert last.n_rows == len(whole) and last.fingerprint is None  # known at the first load
    back = nbm.load_dataset(last.ref)
    pd.testing.assert_frame_equal(back, whole)
    assert nbm.get_dataset(last.ref).fingerprint == fingerprint(whole).digest
    stored = sum(v.added_bytes for v in nbm.dataset_versions("c"))
    assert stored < 1.3 * v1.n_bytes  # ten 1% appends: not ten copies
    on_disk = sum(p.stat().st_size for p in Path(v1.location).glob("*.parquet"))
    assert on_disk == stored
    # The first version is still there, byte for byte.
    assert fingerprint(nbm.load_dataset("c@1")).digest == v1.fingerprint


def test_an_append_of_text_in_object_columns_keeps_the_schema(home: Path):
    """Found by the diff benchmark: the schema was taken from no rows, where an object column
    of text has no type (Arrow null), and every such append was refused."""
    first = pd.DataFrame({"id": [1], "city": pd.Series(["a"], dtype=object)})
    nbm.save_dataset(first, "t", key="id")
    more = pd.DataFrame({"id": [2], "city": pd.Series(["b"], dtype=object)})
    v2 = nbm.save_dataset(more, "t", mode="append")
    assert nbm.load_dataset(v2.ref)["city"].tolist() == ["a", "b"]


def test_restore_makes_a_new_version_equal_to_an_old_one(home: Path):
    v1 = nbm.save_dataset(customers(300), "c", key="customer_id")
    nbm.save_dataset(customers(300, seed=9), "c")
    v3 = nbm.restore_dataset("c", 1)
    assert (v3.version, v3.mode, v3.restored_from, v3.added_bytes) == (3, "restore", 1, 0)
    assert v3.fingerprint == v1.fingerprint
    assert fingerprint(nbm.load_dataset("c@3")).digest == v1.fingerprint
    assert DeltaTable(v1.location).version() == v3.delta_version
    assert [v.version for v in nbm.dataset_versions("c")] == [1, 2, 3]  # history kept


def test_polars_and_arrow_in_and_out(home: Path):
    frame = pl.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5], "s": ["a", "b", "c"]})
    v = nbm.save_dataset(frame, "p", key="id")
    assert nbm.load_dataset("p@1", output="polars").equals(frame)
    table = nbm.load_dataset("p@1", output="arrow")
    assert isinstance(table, pa.Table) and table.column("x").to_pylist() == [0.5, 1.5, 2.5]
    again = nbm.save_dataset(frame.to_arrow(), "p")
    assert again.version == v.version  # the same content, whatever the engine


def test_a_second_engine_reads_a_version_by_its_delta_version(home: Path):
    """Issue item 6: the tables are plain Delta Lake."""
    v1 = nbm.save_dataset(customers(400), "c", key="customer_id")
    nbm.save_dataset(customers(400, seed=3), "c")
    by_polars = pl.read_delta(v1.location, version=v1.delta_version)
    assert by_polars["spend"].to_list() == customers(400)["spend"].tolist()
    by_deltalake = DeltaTable(v1.location, version=v1.delta_version).to_pandas()
    assert by_deltalake["name"].tolist() == customers(400)["name"].tolist()


def test_a_dataset_at_a_file_uri(home: Path, tmp_path: Path):
    target = tmp_path / "lake" / "customers"
    v = nbm.save_dataset(customers(50), "remote", uri=target.as_uri(), storage_options={})
    assert v.location == target.as_uri()
    assert (target / "_delta_log").is_dir()
    assert fingerprint(nbm.load_dataset("remote")).digest == v.fingerprint
    with pytest.raises(DatasetError, match="keeps its location"):
        nbm.save_dataset(customers(51), "remote", uri=str(tmp_path / "elsewhere"))


# -- bad input ---------------------------------------------------------------------------------


def test_unknown_names_and_versions_list_the_known_ones(home: Path):
    nbm.save_dataset(customers(10), "customers")
    with pytest.raises(DatasetNotFoundError, match=r"No dataset 'custmers'; known: customers\."):
        nbm.load_dataset("custmers")
    with pytest.raises(
        DatasetNotFoundError, match=r"No dataset version 'customers@4'.*customers@1"
    ):
        nbm.load_dataset("customers@4")
    with pytest.raises(DatasetError, match="version number, 'latest' or an ISO time"):
        nbm.load_dataset("customers@yesterday")
    with pytest.raises(DatasetError, match="is not valid"):
        nbm.save_dataset(customers(10), "a/b")


def test_a_key_that_is_not_unique_names_the_duplicates(home: Path):
    df = pd.concat([customers(10), customers(10).iloc[[3, 4]]], ignore_index=True)
    with pytest.raises(DatasetError, match=r"not unique; 4 rows share a key.*'customer_id': 3"):
        nbm.save_dataset(df, "c", key="customer_id")
    with pytest.raises(DatasetError, match=r"key column\(s\) \['id'\] not in the data"):
        nbm.save_dataset(df, "c", key="id")
    assert nbm.datasets().empty  # nothing recorded by a refused save


def test_an_append_repeating_keys_or_changing_the_schema_is_refused(home: Path):
    nbm.save_dataset(customers(10), "c", key="customer_id")
    with pytest.raises(DatasetError, match=r"2 appended row\(s\) repeat keys already in c@1"):
        nbm.save_dataset(customers(2), "c", mode="append")
    more = customers(3)
    more["customer_id"] += 100
    with pytest.raises(
        DatasetError, match=r"change the schema \(segment added .*schema_mode='merge'"
    ):
        nbm.save_dataset(more.assign(segment="x"), "c", mode="append")
    retyped = more.assign(spend=more["spend"].astype("float32"))
    with pytest.raises(DatasetError, match=r"spend double -> float.*cannot change in an append"):
        nbm.save_dataset(retyped, "c", mode="append", schema_mode="merge")
    merged = nbm.save_dataset(more.assign(segment="x"), "c", mode="append", schema_mode="merge")
    back = nbm.load_dataset(merged.ref)
    assert back["segment"].isna().tolist() == [True] * 10 + [False] * 3
    assert back["segment"].iloc[-1] == "x"
    assert nbm.load_dataset("c@1").columns.tolist() == customers(1).columns.tolist()


def test_a_table_edited_behind_our_back_is_refused_and_nothing_is_overwritten(home: Path):
    v1 = nbm.save_dataset(customers(500), "c", key="customer_id")
    table = Path(v1.location)
    part = next(table.glob("*.parquet"))
    original = part.read_bytes()
    # Same size, other bytes: a file rewritten in place.
    part.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
    with pytest.raises(DatasetTamperedError, match=r"c' version 1: 1 file\(s\) .* no longer match"):
        nbm.load_dataset("c@1")
    part.write_bytes(original)
    # Another writer appended to the Delta table: nbmlops refuses to write on top of it.
    write_deltalake(
        str(table), pa.table({"customer_id": [10_000]}), mode="append", schema_mode="merge"
    )
    with pytest.raises(DatasetError, match="at Delta version 1, but nbmlops saved Delta version 0"):
        nbm.save_dataset(customers(600), "c")
    assert DeltaTable(str(table)).version() == 1  # nothing written
    assert fingerprint(nbm.load_dataset("c@1")).digest == v1.fingerprint  # still readable
    part.unlink()
    with pytest.raises(DatasetTamperedError, match=part.name):
        nbm.load_dataset("c@1")


def test_a_read_only_store_says_so_and_the_table_is_untouched(
    home: Path, read_only: Callable[[Path], Path]
):
    nbm.save_dataset(customers(50), "c")
    close_stores()
    store = read_only(home)
    assert (
        fingerprint(nbm.load_dataset("c@1", store=store)).digest
        == nbm.get_dataset("c@1", store=store).fingerprint
    )
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        nbm.save_dataset(customers(60), "c", store=store)
    assert DeltaTable(str(store / "datasets" / "c")).version() == 0


def test_a_script_saving_and_loading_a_multi_file_table_exits_cleanly(tmp_path: Path):
    """Issue item 8: with deltalake 1.6.6 a process aborted at exit (status 134) after reading a
    multi-file table with to_pyarrow_table; nbmlops' read path must leave the exit status 0."""
    script = textwrap.dedent(
        """
        import numpy as np, pandas as pd, nbmlops as nbm
        df = pd.DataFrame({"id": np.arange(20_000), "x": np.random.default_rng(0).random(20_000)})
        nbm.save_dataset(df.iloc[:10_000], "t", key="id")
        for start in range(10_000, 20_000, 2_000):
            nbm.save_dataset(df.iloc[start:start + 2_000], "t", mode="append")
        back = nbm.load_dataset("t", output="arrow")
        assert back.num_rows == 20_000, back.num_rows
        assert len(nbm.load_dataset("t@1")) == 10_000
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"NBMLOPS_HOME": str(tmp_path / ".nbmlops"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr[-2000:]
    assert len(list((tmp_path / ".nbmlops" / "datasets" / "t").glob("*.parquet"))) == 6


def test_a_store_copied_elsewhere_keeps_its_datasets(home: Path, tmp_path: Path):
    v = nbm.save_dataset(customers(20), "c")
    close_stores()
    moved = tmp_path / "moved" / ".nbmlops"
    shutil.copytree(home, moved)
    assert fingerprint(nbm.load_dataset("c@1", store=moved)).digest == v.fingerprint


def test_large_nullable_ids_and_appended_categories_and_nulls_read_back_exactly(home: Path):
    """Found in review: Int64 above 2**53 came back rounded (through float64), categories an
    append added came back NaN, and an int64 column that an append gave nulls became float."""
    big = 2**53 + 1
    first = pd.DataFrame(
        {
            "id": [1, 2],
            "ref": pd.array([big, None], dtype="Int64"),
            "c": pd.Categorical(["a", "b"]),
            "n": np.array([1, 2], dtype="int64"),
        }
    )
    v1 = nbm.save_dataset(first, "t", key="id")
    back = nbm.load_dataset("t@1")
    assert back["ref"].tolist()[0] == big and fingerprint(back).digest == v1.fingerprint
    more = pd.DataFrame(
        {
            "id": [3, 4],
            "ref": pd.array([None, 7], dtype="Int64"),
            "c": pd.Categorical(["c", "a"]),
            "n": pd.array([None, 5], dtype="Int64"),
        }
    )
    v2 = nbm.save_dataset(more, "t", mode="append")
    whole = nbm.load_dataset(v2.ref)
    assert whole["c"].tolist() == ["a", "b", "c", "a"]
    assert str(whole["n"].dtype) == "Int64" and whole["n"].tolist()[:2] == [1, 2]
    assert whole["ref"].tolist()[0] == big


def test_an_interrupted_save_is_refused_then_undone_by_a_restore(home: Path, monkeypatch):
    """Found in review: a save cut off between its Delta commit and its record left the
    dataset refusing every save and restore ("something else wrote to it") for good."""
    from nbmlops.store import datasets as dataset_sql

    v1 = nbm.save_dataset(customers(20), "c", key="customer_id")

    def cut_off(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(dataset_sql, "add_version", cut_off)
        nbm.save_dataset(customers(30), "c")
    with pytest.raises(DatasetError, match=r"cut off.*nbm.restore_dataset\('c', 1\)"):
        nbm.save_dataset(customers(40), "c")
    v2 = nbm.restore_dataset("c", 1)
    assert v2.fingerprint == v1.fingerprint
    v3 = nbm.save_dataset(customers(40), "c")
    assert v3.version == 3 and len(nbm.load_dataset("c")) == 40


def test_a_failed_first_save_leaves_no_dataset(home: Path):
    with pytest.raises(DatasetError, match="could not write"):
        nbm.save_dataset(customers(5), "g", uri="/proc/no/such/place")
    assert nbm.datasets().empty
    assert nbm.save_dataset(customers(5), "g").version == 1  # its own location, not /proc


def test_two_processes_saving_at_once_keep_delta_and_nbmlops_in_step(tmp_path: Path):
    script = textwrap.dedent(
        """
        import sys, numpy as np, pandas as pd, nbmlops as nbm
        for i in range(5):
            seed = int(sys.argv[1]) * 100 + i
            df = pd.DataFrame({"id": np.arange(50), "x": np.random.default_rng(seed).random(50)})
            nbm.save_dataset(df, "c", key="id")
        """
    )
    env = {"NBMLOPS_HOME": str(tmp_path / ".nbmlops"), "PATH": "/usr/bin:/bin"}
    nbm.save_dataset(
        pd.DataFrame({"id": [0], "x": [0.0]}), "c", key="id", store=tmp_path / ".nbmlops"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script, str(n)], cwd=tmp_path, env=env)
        for n in (1, 2)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    versions = nbm.dataset_versions("c", store=tmp_path / ".nbmlops")
    assert [v.version for v in versions] == list(range(1, 12))
    assert [v.delta_version for v in versions] == sorted(v.delta_version for v in versions)
    latest = versions[-1]
    assert DeltaTable(latest.location).version() == latest.delta_version
    close_stores()


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), r"column name\(s\) \['a'\] appear more"),
        (
            pd.DataFrame({"a": [1, 2]}, index=pd.Index([5, 6], name="a")),
            r"index level\(s\) \['a'\] have the name of a column",
        ),
        (pd.DataFrame({"d": pd.to_timedelta([1, 2], unit="s")}), "column 'd' holds durations"),
        (pd.DataFrame({"s": pd.arrays.SparseArray([0, 1])}), "column 's' holds sparse data"),
        (pd.DataFrame({"o": [{"k": 1}, {"k": 2}]}), "cannot be stored as a table"),
    ],
)
def test_frames_a_table_cannot_hold_are_refused_naming_the_column(home: Path, frame, message):
    """Found in review: these gave tracebacks from deep inside pandas, Arrow or delta-rs."""
    with pytest.raises(DatasetError, match=message):
        nbm.save_dataset(frame, "bad")
    assert nbm.datasets().empty
