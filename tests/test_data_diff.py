"""Row-level diffs of table dataset versions (issue #16 item 3), on versions saved in a real
store with nbm.save_dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import nbmlops as nbm
from nbmlops.data.diff import DatasetDiff, diff_tables
from nbmlops.data.references import resolve_row
from nbmlops.errors import DatasetError, DatasetTamperedError


def diff(old: str, new: str, **kwargs: object) -> DatasetDiff:
    store = nbm.get_store()
    return diff_tables(store, resolve_row(store, old), resolve_row(store, new), **kwargs)  # type: ignore[arg-type]


def customers(ids: list[object], spend: list[float], city: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "spend": pd.Series(spend, dtype=float), "city": city})


# ids: dense integers (direct addressing), sparse integers and strings (DuckDB's join)
KEYS = {
    "dense": [1, 2, 3, 4, 5, 6],
    "sparse": [10**12 * i for i in range(1, 7)],
    "text": ["a1", "b2", "c3", "d4", "e5", "f6"],
}


@pytest.mark.parametrize("kind", KEYS)
def test_rows_added_removed_changed(home: Path, kind: str) -> None:
    i = KEYS[kind]
    nbm.save_dataset(customers(i[:5], [1, 2, 3, 4, 5], list("abcde")), "c", key="id")
    nbm.save_dataset(customers([i[0], *i[2:]], [1, 3.5, 4, 5, 6], list("acxef")), "c")
    d = diff("c@1", "c@2")
    assert (d.added, d.removed, d.changed) == (1, 1, 2)
    assert d.changed_by_column == {"city": 1, "spend": 1}
    assert d.summary == "c@1 -> c@2: +1 rows, -1 rows, 2 changed (city 1, spend 1)"
    assert d.rows.drop(columns="column").values.tolist() == [
        [i[1], "removed", {"spend": 2.0, "city": "b"}, None],
        [i[2], "changed", 3.0, 3.5],
        [i[3], "changed", "d", "x"],
        [i[5], "added", None, {"spend": 6.0, "city": "f"}],
    ]
    assert d.rows["column"].tolist()[1:3] == ["spend", "city"]


def test_nan_and_none_equal_themselves(home: Path) -> None:
    nan = float("nan")
    old = customers([1, 2, 3, 4], [nan, 2, nan, 4], [None, "b", "c", "d"])
    nbm.save_dataset(old, "c", key="id")
    nbm.save_dataset(customers([1, 2, 3, 4], [nan, 2, 3, 4], [None, None, "c", "d"]), "c")
    d = diff("c@1", "c@2")
    assert (d.added, d.removed, d.changed) == (0, 0, 2)
    assert d.rows[["id", "column", "new"]].values.tolist() == [[2, "city", None], [3, "spend", 3.0]]
    assert d.rows["old"].tolist() == ["b", None]  # pandas' NaN is saved as a null


def test_composite_key(home: Path) -> None:
    old = pd.DataFrame({"shop": ["x", "x", "y"], "day": [1, 2, 1], "sales": [10, 20, 30]})
    new = pd.concat(
        [old, pd.DataFrame({"shop": ["y"], "day": [2], "sales": [5]})], ignore_index=True
    )
    new.loc[1, "sales"] = 25
    nbm.save_dataset(old, "sales", key=["shop", "day"])
    nbm.save_dataset(new, "sales")
    d = diff("sales@1", "sales@2")
    assert (d.key, d.added, d.removed, d.changed) == (["shop", "day"], 1, 0, 1)
    assert d.rows.values.tolist() == [
        ["x", 2, "changed", "sales", 20, 25],
        ["y", 2, "added", None, None, {"sales": 5}],
    ]


def test_merged_append_adds_a_column_not_changes(home: Path) -> None:
    nbm.save_dataset(customers([1, 2], [1, 2], ["a", "b"]), "c", key="id")
    extra = customers([3], [3], ["c"]).assign(segment=["gold"])
    nbm.save_dataset(extra, "c", mode="append", schema_mode="merge")
    d = diff("c@1", "c@2")
    assert (d.added, d.removed, d.changed) == (1, 0, 0)
    assert [str(s) for s in d.schema_changes] == ["column 'segment' added (str)"]
    assert d.summary.endswith("0 changed; column 'segment' added (str)")
    assert d.rows["new"].tolist() == [{"spend": 3.0, "city": "c", "segment": "gold"}]


def test_column_dropped_and_retyped(home: Path) -> None:
    nbm.save_dataset(customers([1, 2, 3], [1, 2, 3], ["a", "b", "c"]), "c", key="id")
    nbm.save_dataset(pd.DataFrame({"id": [1, 2, 3], "spend": [1, 2, 30]}), "c")  # int64 now
    d = diff("c@1", "c@2")
    assert [str(s) for s in d.schema_changes] == [
        "column 'city' removed",
        "column 'spend' float64 -> int64",
    ]
    assert (d.changed, d.changed_by_column) == (1, {"spend": 1})  # 1.0 and 1 are equal
    assert d.rows[["id", "old", "new"]].values.tolist() == [[3, 3.0, 30]]


def test_same_rows_in_another_order_or_restored_are_identical(home: Path) -> None:
    frame = customers([1, 2, 3], [1, 2, 3], ["a", "b", "c"])
    nbm.save_dataset(frame, "c", key="id")
    nbm.save_dataset(frame.iloc[::-1].reset_index(drop=True), "c")
    nbm.save_dataset(customers([1], [9], ["z"]), "c")
    nbm.restore_dataset("c", 1)
    for old, new in [("c@1", "c@2"), ("c@1", "c@4"), ("c@3", "c@3")]:
        d = diff(old, new)
        assert d.identical and d.rows.empty
        assert d.summary == f"{old} -> {new}: identical"


def test_limit_keeps_counts_complete(home: Path) -> None:
    nbm.save_dataset(pd.DataFrame({"id": range(100), "v": 0}), "t", key="id")
    nbm.save_dataset(pd.DataFrame({"id": range(100), "v": 1}), "t")
    d = diff("t@1", "t@2", limit=3)
    assert (d.changed, len(d.rows), d.truncated) == (100, 3, True)
    assert d.rows["id"].tolist() == [0, 1, 2]
    assert d.summary.endswith("(rows lists the first 3 changes; limit=3)")
    with pytest.raises(DatasetError, match=r"limit=-1: give a number of lines, 0 or more"):
        diff("t@1", "t@2", limit=-1)


def test_refused_without_a_key(home: Path) -> None:
    nbm.save_dataset(customers([1], [1], ["a"]), "c")
    nbm.save_dataset(customers([2], [2], ["b"]), "c")
    with pytest.raises(DatasetError, match=r"Dataset 'c' has no key, so c@1 and c@2 can") as e:
        diff("c@1", "c@2")
    assert "key='id'" in str(e.value) and e.value.name == "c"


def test_refused_when_an_earlier_unkeyed_version_repeats_a_key(home: Path) -> None:
    nbm.save_dataset(customers([1, 1, 2], [1, 2, 3], ["a", "b", "c"]), "c")
    nbm.save_dataset(customers([1, 2], [1, 3], ["a", "c"]), "c", key="id")
    with pytest.raises(DatasetError, match=r"c@1 or c@2 repeats a value of the key \['id'\]"):
        diff("c@1", "c@2")


def test_refused_when_an_earlier_version_lacks_the_key(home: Path) -> None:
    nbm.save_dataset(pd.DataFrame({"v": [1]}), "c")
    nbm.save_dataset(pd.DataFrame({"id": [1], "v": [1]}), "c", key="id")
    with pytest.raises(DatasetError, match=r"c@1 has no key column \['id'\]: it was saved before"):
        diff("c@1", "c@2")


def test_tampered_file_is_refused(home: Path) -> None:
    v1 = nbm.save_dataset(customers([1], [1], ["a"]), "c", key="id")
    before = set(Path(v1.location).glob("*.parquet"))
    nbm.save_dataset(customers([1], [2], ["a"]), "c")
    (part,) = set(Path(v1.location).glob("*.parquet")) - before
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the BLAKE3 tells
    part.chmod(0o644)
    part.write_bytes(bytes(data))
    with pytest.raises(DatasetTamperedError, match=r"Dataset 'c' version 2: 1 file\(s\) under"):
        diff("c@1", "c@2")


def test_table_off_this_machine_is_refused(home: Path) -> None:
    nbm.save_dataset(customers([1], [1], ["a"]), "c", key="id")
    store = nbm.get_store()
    row = {**resolve_row(store, "c@1"), "uri": "s3://bucket/c"}
    with pytest.raises(DatasetError, match=r"lives at s3://bucket/c: dataset_diff reads tables on"):
        diff_tables(store, row, row)


def test_renders(home: Path) -> None:
    nbm.save_dataset(customers([1, 2], [1, 2], ["a", "b"]), "c", key="id")
    nbm.save_dataset(customers([1, 2], [1, 5], ["a", "<b>"]), "c")
    d = diff("c@1", "c@2")
    assert str(d) == "c@1 -> c@2: +0 rows, -0 rows, 1 changed (city 1, spend 1)"
    assert "<td>changed: spend</td><td>1</td>" in d._repr_html_()
    assert "&lt;b&gt;" in d._repr_html_()
    assert d.to_dict()["changed_by_column"] == {"city": 1, "spend": 1}


def test_a_store_under_a_path_with_glob_characters_diffs_by_string_key(tmp_path):
    """Found in review: DuckDB's read_parquet reads '[' '*' '?' in a path as a pattern."""
    store = tmp_path / "runs [v2]" / ".nbmlops"
    old = pd.DataFrame({"k": ["a", "b"], "x": [1.0, 2.0]})
    nbm.save_dataset(old, "g", key="k", store=store)
    nbm.save_dataset(old.assign(x=[1.0, 3.0]), "g", store=store)
    diff = nbm.dataset_diff("g@1", "g@2", store=store)
    assert (diff.added, diff.removed, diff.changed) == (0, 0, 1)
