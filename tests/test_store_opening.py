"""Opening a store changes nothing it should not (issue #13, items 6 and 13): reading never
creates a store, a foreign database is refused byte for byte untouched, and a read-only store
can be read and refuses writes as read-only."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import nbmlops as nbm
from nbmlops.errors import StoreCorruptError, StoreNotFoundError, StoreReadOnlyError
from nbmlops.store import Store, close_stores


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


READERS: dict[str, Callable[[], object]] = {
    "runs": lambda: nbm.runs(),
    "runs filtered": lambda: nbm.runs("metrics.auc > 1"),
    "get_run": lambda: nbm.get_run("abc"),
    "sql": lambda: nbm.sql("SELECT 1"),
    "cells_before": lambda: nbm.cells_before("abc"),
    "cell_history": lambda: nbm.cell_history("abc"),
    "cell_diff": lambda: nbm.cell_diff("abc", "def"),
    "compare_runs": lambda: nbm.compare_runs("abc", "def"),
    "lineage": lambda: nbm.lineage("abc"),
    "models": lambda: nbm.models(),
    "model_versions": lambda: nbm.model_versions("m"),
    "model_history": lambda: nbm.model_history("m"),
    "get_model_version": lambda: nbm.get_model_version("m/1"),
    "load_model": lambda: nbm.load_model("m/1"),
    "who_served": lambda: nbm.who_served("m", "champion", 0),
    "consumers": lambda: nbm.consumers("m", 1),
    "promote dry run": lambda: nbm.promote("m", 1, dry_run=True),
    "check_drift of a saved reference": lambda: nbm.check_drift("abc", [1.0], save=False),
}


@pytest.mark.parametrize("read", READERS.values(), ids=READERS.keys())
def test_reading_where_there_is_no_store_creates_nothing(home: Path, read: Callable[[], object]):
    with pytest.raises(StoreNotFoundError, match=r"NBMLOPS_HOME is .* looked for .*nbmlops\.db"):
        read()
    assert not home.exists()


def test_no_store_found_walking_up_names_the_folders_looked_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("NBMLOPS_HOME", raising=False)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    close_stores()
    with pytest.raises(StoreNotFoundError, match=f"walking up from {deep}") as caught:
        nbm.runs()
    assert caught.value.searched[:3] == [
        folder / ".nbmlops" / "nbmlops.db" for folder in (deep, deep.parent, tmp_path)
    ]
    assert "Nothing was created" in str(caught.value)
    assert not list(tmp_path.rglob(".nbmlops"))
    close_stores()


def test_a_mistyped_store_path_is_named_and_not_created(home: Path, tmp_path: Path):
    with pytest.raises(StoreNotFoundError, match="the store path given was 'typo'") as caught:
        nbm.models(store="typo")
    assert caught.value.searched == [
        tmp_path / "typo" / "nbmlops.db",
        tmp_path / "typo" / ".nbmlops" / "nbmlops.db",
    ]
    assert not (tmp_path / "typo").exists()


def test_a_store_object_touches_nothing_until_its_first_write(tmp_path: Path):
    store = Store(tmp_path / ".nbmlops")
    with pytest.raises(StoreNotFoundError):
        store.query("SELECT 1")
    assert not (tmp_path / ".nbmlops").exists()
    with nbm.start_run(store=store):
        pass
    assert len(store.query("SELECT run_id FROM runs")) == 1
    store.close()


def test_writers_create_the_store(home: Path):
    nbm.set_store(home)  # pointing at a store is not a write either
    assert not home.exists()
    with nbm.start_run("first"):
        pass
    assert nbm.runs()["name"].tolist() == ["first"]


def test_checking_rules_needs_no_store(home: Path, tmp_path: Path):
    rules = tmp_path / "nbmlops.toml"
    rules.write_text('[rules.m]\npromote_to = "champion"\nrequire = ["metrics.auc >= 0.5"]\n')
    assert nbm.check_rules().path == rules
    assert not home.exists()


# -- a foreign database ----------------------------------------------------------------------


@pytest.mark.parametrize("journal", ["DELETE", "WAL"])
def test_a_foreign_sqlite_database_is_refused_byte_for_byte_untouched(tmp_path: Path, journal: str):
    folder = tmp_path / ".nbmlops"
    folder.mkdir()
    conn = sqlite3.connect(folder / "nbmlops.db")
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.commit()
    conn.close()
    before = _listing(folder)
    for attempt in (lambda: Store.open(folder), lambda: nbm.runs(store=folder)):
        with pytest.raises(StoreCorruptError, match=r"something else .*invoices.* left untouched"):
            attempt()
        close_stores()
        assert _listing(folder) == before


# -- a read-only store -----------------------------------------------------------------------


@pytest.fixture
def recorded(home: Path) -> Path:
    with nbm.start_run("kept") as run:
        run.log_metric("auc", 0.9)
    close_stores()
    return home


def test_a_read_only_store_can_be_read(recorded: Path, read_only: Callable[[Path], Path]):
    store = read_only(recorded)
    assert nbm.runs(store=store)["metrics.auc"].tolist() == [0.9]
    run_id = nbm.runs(store=store)["run_id"][0]
    assert nbm.get_run(run_id, store=store).name == "kept"
    assert nbm.sql("SELECT count(*) AS n FROM runs", store=store)["n"].tolist() == [1]


def test_writing_a_read_only_store_says_read_only(
    recorded: Path, read_only: Callable[[Path], Path]
):
    store = read_only(recorded)
    with pytest.raises(StoreReadOnlyError, match="is read-only") as caught:
        nbm.start_run(store=store)
    message = str(caught.value)
    assert "corrupt" not in message and "backup" not in message
    assert "make the file and its folder writable" in message
    assert nbm.runs(store=store)["name"].tolist() == ["kept"]
