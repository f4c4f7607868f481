"""The store's schema, as an ordered list of migrations (the public contract: docs/schema.md).

Each migration is applied once, in order, inside a transaction, by ``sqlite_utils.Migrations``.
Never edit an applied migration: add a new one, and describe it in docs/schema.md.
Times are UTC seconds since the epoch (REAL); use ``datetime(start_time, 'unixepoch')`` in SQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database

MIGRATION_SET = "nbmlops"

# Written with plain DDL rather than sqlite-utils' table builder so that the contract reads as SQL.
V1_SCHEMA = """
CREATE TABLE experiments (
    experiment_id INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    created_at    REAL NOT NULL
);
CREATE TABLE cell_versions (
    source_hash TEXT PRIMARY KEY,          -- sha256 of the cell source (UTF-8)
    source      TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE environments (
    environment_id  TEXT PRIMARY KEY,      -- sha256 of the other columns
    python          TEXT NOT NULL,
    platform        TEXT NOT NULL,
    packages        TEXT NOT NULL,         -- JSON object: distribution name -> version
    git_commit      TEXT,
    git_branch      TEXT,
    git_dirty       INTEGER,               -- 0/1, NULL outside a git work tree
    git_diff_sha256 TEXT,                  -- object holding `git diff HEAD`, NULL when clean
    created_at      REAL NOT NULL
);
CREATE TABLE runs (
    run_id          TEXT PRIMARY KEY,      -- 12 hex characters
    experiment_id   INTEGER NOT NULL REFERENCES experiments(experiment_id),
    name            TEXT,
    status          TEXT NOT NULL
                    CHECK (status IN ('running', 'finished', 'failed', 'interrupted')),
    start_time      REAL NOT NULL,
    end_time        REAL,
    user            TEXT,
    host            TEXT,
    pid             INTEGER,
    notebook        TEXT,                  -- notebook path, or script path outside notebooks
    cell_id         TEXT,
    cell_version    TEXT REFERENCES cell_versions(source_hash),
    execution_count INTEGER,
    environment_id  TEXT REFERENCES environments(environment_id),
    previous_run_id TEXT,                  -- the previous run of the same cell
    error_type      TEXT,
    error_message   TEXT,
    traceback       TEXT
);
CREATE INDEX runs_experiment ON runs(experiment_id, start_time);
CREATE INDEX runs_status ON runs(status);
CREATE INDEX runs_cell ON runs(notebook, cell_id, start_time);
CREATE TABLE params (
    run_id    TEXT NOT NULL REFERENCES runs(run_id),
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,               -- strings as-is, other values as JSON
    value_num REAL,                        -- the value when it is a number or bool, else NULL
    source    TEXT,                        -- how it was captured, e.g. 'api', 'literal:3'
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX params_key ON params(key, value_num);
CREATE TABLE metrics (
    run_id    TEXT NOT NULL REFERENCES runs(run_id),
    key       TEXT NOT NULL,
    value     REAL,                        -- NULL stands for NaN
    step      INTEGER NOT NULL DEFAULT 0,
    timestamp REAL NOT NULL
);
CREATE INDEX metrics_run ON metrics(run_id, key, step);
CREATE TABLE latest_metrics (              -- the value at the highest step, kept on write
    run_id    TEXT NOT NULL REFERENCES runs(run_id),
    key       TEXT NOT NULL,
    value     REAL,
    step      INTEGER NOT NULL,
    timestamp REAL NOT NULL,
    source    TEXT,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX latest_metrics_key ON latest_metrics(key, value);
CREATE TABLE tags (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE datasets (
    dataset_id TEXT PRIMARY KEY,           -- content fingerprint (xxh3-128 hex)
    kind       TEXT NOT NULL,              -- dataframe, series, ndarray, file, bytes
    n_rows     INTEGER,
    n_columns  INTEGER,
    schema     TEXT,                       -- JSON object: column -> dtype
    created_at REAL NOT NULL
);
CREATE TABLE run_datasets (
    run_id     TEXT NOT NULL REFERENCES runs(run_id),
    dataset_id TEXT NOT NULL REFERENCES datasets(dataset_id),
    role       TEXT NOT NULL CHECK (role IN ('input', 'output')),
    name       TEXT NOT NULL,              -- variable name or file path
    source     TEXT,                       -- how it was captured
    PRIMARY KEY (run_id, role, name)
) WITHOUT ROWID;
CREATE INDEX run_datasets_dataset ON run_datasets(dataset_id);
CREATE TABLE artifacts (
    run_id     TEXT NOT NULL REFERENCES runs(run_id),
    name       TEXT NOT NULL,
    kind       TEXT NOT NULL,              -- file, figure, model
    sha256     TEXT NOT NULL,              -- the object under .nbmlops/objects/
    size       INTEGER NOT NULL,
    media_type TEXT,
    meta       TEXT,                       -- JSON: library versions, model class, source path
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX artifacts_sha ON artifacts(sha256);
"""


# Every executed cell while the extension is loaded, tracked or not: code identity and outcome,
# never data. Answers "which code ran before this run" and feeds cell history.
V2_CELL_EXECUTIONS = """
CREATE TABLE cell_executions (
    execution_id    INTEGER PRIMARY KEY,
    session         TEXT NOT NULL,         -- host:pid:start of the kernel process
    notebook        TEXT,
    cell_id         TEXT NOT NULL,
    source_hash     TEXT NOT NULL REFERENCES cell_versions(source_hash),
    execution_count INTEGER,
    start_time      REAL NOT NULL,
    duration_s      REAL NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('ok', 'error', 'interrupted')),
    run_id          TEXT                   -- the run, when the cell was tracked
);
CREATE INDEX cell_executions_cell ON cell_executions(notebook, cell_id, start_time);
CREATE INDEX cell_executions_session ON cell_executions(session, start_time);
"""


def _run_script(db: Database, script: str) -> None:
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


def register(migrations: object) -> None:
    """Attach the schema's migrations, in order, to a ``sqlite_utils.Migrations`` set."""
    from sqlite_utils import Migrations

    assert isinstance(migrations, Migrations)

    @migrations(name="0001_initial")
    def _initial(db: Database) -> None:
        _run_script(db, V1_SCHEMA)

    @migrations(name="0002_cell_executions")
    def _cell_executions(db: Database) -> None:
        _run_script(db, V2_CELL_EXECUTIONS)


MIGRATION_NAMES = ("0001_initial", "0002_cell_executions")
