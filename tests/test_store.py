from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import nbmlops as nbm
from nbmlops.errors import ReadOnlyQueryError, StoreCorruptError, StoreError, StoreLockedError
from nbmlops.store import Store, runs
from nbmlops.store.schema import MIGRATION_NAMES


def test_store_is_created_in_wal_mode_with_all_migrations(home: Path, db: sqlite3.Connection):
    assert (home / "nbmlops.db").is_file()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = [r[0] for r in db.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == list(MIGRATION_NAMES)


def test_run_is_committed_as_one_record(home: Path, db: sqlite3.Connection):
    with nbm.start_run("r", experiment="exp") as run:
        run.log_params({"lr": 0.1, "depth": 3})
        run.log_metric("auc", 0.9)
        assert db.execute("SELECT count(*) FROM params").fetchone()[0] == 0
    status = db.execute("SELECT status FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()
    assert status == ("finished",)
    assert db.execute("SELECT key, value FROM params ORDER BY key").fetchall() == [
        ("depth", "3"),
        ("lr", "0.1"),
    ]
    assert db.execute("SELECT key, value FROM latest_metrics").fetchall() == [("auc", 0.9)]


@pytest.mark.parametrize(
    "write",
    [
        {"params": [("lr", "0.2", 0.2, "api")]},
        {"metrics": [("loss", 0.5, 9, 2e9, "api")]},
        {"tags": [("team", "b")]},
        {
            "datasets": [
                {
                    "dataset_id": "d" * 64,
                    "kind": "pandas",
                    "n_rows": 1,
                    "n_columns": 1,
                    "schema": "{}",
                    "created_at": 2e9,
                    "role": "input",
                    "name": "x",
                    "source": None,
                }
            ]
        },
        {
            "artifacts": [
                {
                    "name": "note.txt",
                    "kind": "file",
                    "sha256": "a" * 64,
                    "size": 1,
                    "media_type": "text/plain",
                    "meta": None,
                    "created_at": 2e9,
                }
            ]
        },
        {
            "finish": {
                "status": "failed",
                "end_time": 2e9,
                "error_type": "E",
                "error_message": "m",
                "traceback": None,
            }
        },
    ],
    ids=["params", "metrics", "tags", "datasets", "artifacts", "finish"],
)
def test_every_write_of_a_run_counts_in_its_revision(home: Path, db: sqlite3.Connection, write):
    # A push reads only the runs whose revision moved (store/sync.py): a write that did not move
    # it would never reach the server. Triggers move it, so write_run_data, which never names
    # the column, stands for any writer (also one from before migration 0017).
    with nbm.start_run() as run:
        pass
    before = db.execute("SELECT revision FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()[0]
    runs.write_run_data(nbm.get_store(), run.run_id, **write)
    after = db.execute("SELECT revision FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()[0]
    assert after == before + 1
    runs.write_run_data(nbm.get_store(), run.run_id)  # nothing written: no new revision
    assert (
        db.execute("SELECT revision FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()[0]
        == after
    )


def test_a_run_marked_interrupted_gets_a_new_revision(home: Path, db: sqlite3.Connection):
    store = nbm.get_store()
    run = nbm.start_run()
    runs.mark_interrupted(store, [run.run_id], 2e9)
    assert db.execute(
        "SELECT status, revision FROM runs WHERE run_id = ?", (run.run_id,)
    ).fetchone() == ("interrupted", 1)


def test_running_run_is_visible_to_other_readers(home: Path, db: sqlite3.Connection):
    with nbm.start_run() as run:
        row = db.execute("SELECT status, pid FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()
        assert row[0] == "running" and row[1] > 0


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all", b"\x00" * 4096, b"SQLite format 2\x00" + b"x" * 100],
)
def test_non_sqlite_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes):
    folder = tmp_path / ".nbmlops"
    folder.mkdir()
    (folder / "nbmlops.db").write_bytes(content)
    with pytest.raises(StoreCorruptError, match="left untouched"):
        Store.open(folder)
    assert (folder / "nbmlops.db").read_bytes() == content


def test_sqlite_file_of_another_application_is_refused(tmp_path: Path):
    folder = tmp_path / ".nbmlops"
    folder.mkdir()
    other = sqlite3.connect(folder / "nbmlops.db")
    other.execute("CREATE TABLE invoices (id INTEGER)")
    other.commit()
    other.close()
    with pytest.raises(StoreCorruptError, match="tables: invoices"):
        Store.open(folder)


def test_truncated_database_is_reported_as_corrupt(tmp_path: Path):
    store = Store.open(tmp_path / ".nbmlops")
    store.close()
    path = tmp_path / ".nbmlops" / "nbmlops.db"
    path.write_bytes(path.read_bytes()[:100] + b"\xff" * 3000)
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError, match="cannot be read"):
        Store.open(tmp_path / ".nbmlops")
    assert path.read_bytes() == before


def test_write_waits_then_fails_clearly_when_store_stays_locked(tmp_path: Path):
    store = Store.open(tmp_path / ".nbmlops")
    store.busy_timeout = 0.2
    store.close()
    blocker = sqlite3.connect(tmp_path / ".nbmlops" / "nbmlops.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreLockedError, match="stayed locked by another process"):
            runs.experiment_id(store, "blocked")
    finally:
        blocker.execute("ROLLBACK")
    assert runs.experiment_id(store, "blocked") > 0


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("DELETE FROM runs", "only SELECT"),
        ("DROP TABLE runs", "only SELECT"),
        ("INSERT INTO experiments (name, created_at) VALUES ('x', 0)", "only SELECT"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "only SELECT"),
        ("PRAGMA journal_mode=DELETE", "only SELECT"),
        ("SELECT 1; DELETE FROM runs", "one statement"),
    ],
)
def test_sql_refuses_anything_but_reading(empty_store: Store, query: str, reason: str):
    with pytest.raises(ReadOnlyQueryError, match=reason):
        nbm.sql(query)


def test_sql_reads_the_documented_schema(home: Path):
    with nbm.start_run("a") as run:
        run.log_metric("loss", 0.5)
    frame = nbm.sql(
        "SELECT r.name, m.key, m.value FROM runs r JOIN metrics m USING (run_id) WHERE m.value < 1"
    )
    assert frame.to_dict("records") == [{"name": "a", "key": "loss", "value": 0.5}]


def test_sql_error_names_the_problem(empty_store: Store):
    with pytest.raises(StoreError, match="no such table: nope"):
        nbm.sql("SELECT * FROM nope")


def test_objects_are_stored_once_by_hash(tmp_path: Path):
    store = Store.open(tmp_path / ".nbmlops")
    first = store.objects.put_bytes(b"payload")
    second = store.objects.put_bytes(b"payload")
    assert first == second
    assert store.objects.read_verified(first[0]) == b"payload"
    assert len(list((tmp_path / ".nbmlops" / "objects").rglob("*"))) == 2  # fan-out dir + file


def test_store_of_an_older_schema_is_migrated_on_open(tmp_path: Path):
    from sqlite_utils import Database, Migrations

    from nbmlops.store import schema

    folder = tmp_path / ".nbmlops"
    folder.mkdir()
    old = Database(folder / "nbmlops.db")
    migrations = Migrations(schema.MIGRATION_SET)
    schema.register(migrations)
    migrations.apply(old, stop_before=schema.MIGRATION_NAMES[1])
    old.execute("INSERT INTO experiments (name, created_at) VALUES ('kept', 0)")
    old.conn.commit()
    old.close()

    store = Store.open(folder)
    applied = [r[0] for r in store.connection().execute("SELECT name FROM _sqlite_migrations")]
    assert applied == list(schema.MIGRATION_NAMES)
    assert runs.experiment_id(store, "kept") == 1
    tables = {r[0] for r in store.connection().execute("SELECT name FROM sqlite_master")}
    assert "cell_executions" in tables


def test_schema_document_lists_every_table_and_column(home: Path):
    doc = (Path(__file__).parents[1] / "docs" / "schema.md").read_text()
    conn = nbm.get_store().connection()
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '\\_%' ESCAPE '\\'"
        )
    ]
    for table in tables:
        assert f"### `{table}`" in doc, f"table {table} is not documented"
        for column in (r[1] for r in conn.execute(f"PRAGMA table_info({table})")):
            assert f"| `{column}` |" in doc, f"column {table}.{column} is not documented"


def _experiments(path: Path) -> list[str]:
    with sqlite3.connect(path / "nbmlops.db") as other:
        return [r[0] for r in other.execute("SELECT name FROM experiments ORDER BY name")]


def test_atomic_nests_as_savepoints_and_a_failing_inner_block_rolls_back_alone(tmp_path: Path):
    store = Store.open(tmp_path / ".nbmlops")
    insert = "INSERT INTO experiments (name, created_at) VALUES (?, 0)"
    with store.atomic() as conn:
        conn.execute(insert, ("outer",))
        with pytest.raises(ValueError), store.atomic() as inner:
            inner.execute(insert, ("inner",))
            raise ValueError("inner fails")
        with store.atomic() as inner:
            inner.execute(insert, ("kept",))
        assert _experiments(tmp_path / ".nbmlops") == []  # nothing visible before the commit
    assert _experiments(tmp_path / ".nbmlops") == ["kept", "outer"]


def test_a_failing_outer_block_rolls_back_its_committed_savepoints(tmp_path: Path):
    store = Store.open(tmp_path / ".nbmlops")
    with pytest.raises(RuntimeError, match="outer fails"), store.atomic() as conn:
        with store.atomic() as inner:
            inner.execute("INSERT INTO experiments (name, created_at) VALUES ('x', 0)")
        conn.execute("SELECT 1")
        raise RuntimeError("outer fails")
    assert _experiments(tmp_path / ".nbmlops") == []


@pytest.mark.parametrize("as_handle", [Store, str, Path, lambda p: p / "nbmlops.db"])
def test_every_public_function_takes_any_store_like_the_same_way(tmp_path: Path, as_handle):
    folder = tmp_path / "project" / ".nbmlops"
    with nbm.start_run("r", store=folder) as run:
        run.log_metric("auc", 0.9)
    store = as_handle(folder)
    assert nbm.runs(store=store)["run_id"].tolist() == [run.run_id]
    assert nbm.models(store=store).empty
    frame = pd.DataFrame({"x": range(50)})
    report = nbm.check_drift(frame, frame, store=store)
    assert not report.dataset_drift and report.report_id is not None
    assert nbm.get_store(store).home == folder.resolve()


def test_a_project_folder_names_the_store_inside_it(tmp_path: Path):
    Store.open(tmp_path / ".nbmlops")
    assert Store(tmp_path).home == (tmp_path / ".nbmlops").resolve()
