"""The store's schema, as an ordered list of migrations (the public contract: docs/schema.md).

Each migration is applied once, in order, inside a transaction, by ``sqlite_utils.Migrations``.
Never edit an applied migration: add a new one, and describe it in docs/schema.md.
Times are UTC seconds since the epoch (REAL); use ``datetime(start_time, 'unixepoch')`` in SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from nbmlops.store.frames import refresh_summary

if TYPE_CHECKING:
    from sqlite_utils import Database, Migrations

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


# The model registry. Versions are immutable and events append-only (triggers refuse UPDATE and
# DELETE), so "which version did this alias point at, and why" always has an answer.
V3_REGISTRY = """
CREATE TABLE models (
    name        TEXT PRIMARY KEY,
    description TEXT,
    created_at  REAL NOT NULL
);
CREATE TABLE model_versions (
    name        TEXT NOT NULL REFERENCES models(name),
    version     INTEGER NOT NULL,              -- 1, 2, ... per model name
    sha256      TEXT NOT NULL,                 -- the artifact object under objects/
    size        INTEGER NOT NULL,
    format      TEXT NOT NULL,                 -- how the artifact deserialises: skops, pickle
    class       TEXT,                          -- e.g. sklearn.ensemble.RandomForestRegressor
    run_id      TEXT REFERENCES runs(run_id),  -- the training run
    signature   TEXT,                          -- JSON: input columns and dtypes
    datasets    TEXT,                          -- JSON: the training run's datasets (fingerprints)
    metrics     TEXT,                          -- JSON: the run's metrics at registration
    libraries   TEXT,                          -- JSON: library versions needed to load it
    description TEXT,
    created_by  TEXT,
    created_at  REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE UNIQUE INDEX model_versions_content ON model_versions(name, sha256);
CREATE TRIGGER model_versions_immutable BEFORE UPDATE ON model_versions
BEGIN SELECT RAISE(ABORT, 'model_versions are immutable; record an event instead'); END;
CREATE TRIGGER model_versions_kept BEFORE DELETE ON model_versions
BEGIN SELECT RAISE(ABORT, 'model_versions are never deleted; record a deleted event'); END;
CREATE TABLE model_events (
    event_id    INTEGER PRIMARY KEY,
    name        TEXT NOT NULL REFERENCES models(name),
    version     INTEGER,
    kind        TEXT NOT NULL CHECK (kind IN ('registered', 'alias_set', 'alias_removed',
                    'promotion', 'deprecated', 'deleted')),
    alias       TEXT,
    payload     TEXT,                          -- JSON: rule results, reasons, rules file commit
    actor       TEXT,
    host        TEXT,
    at          REAL NOT NULL
);
CREATE INDEX model_events_name ON model_events(name, at);
CREATE INDEX model_events_alias ON model_events(name, alias, at);
CREATE TRIGGER model_events_append_only_update BEFORE UPDATE ON model_events
BEGIN SELECT RAISE(ABORT, 'model_events is append-only'); END;
CREATE TRIGGER model_events_append_only_delete BEFORE DELETE ON model_events
BEGIN SELECT RAISE(ABORT, 'model_events is append-only'); END;
CREATE TABLE model_loads (
    load_id     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    consumer    TEXT,                          -- notebook path or script/process
    host        TEXT,
    pid         INTEGER,
    at          REAL NOT NULL
);
CREATE INDEX model_loads_version ON model_loads(name, version, at);
"""

# Drift: compact reference profiles keyed by dataset fingerprint, and the reports of checks.
V4_DRIFT = """
CREATE TABLE drift_profiles (
    profile_id  TEXT PRIMARY KEY,              -- hash of dataset fingerprint and settings
    dataset_id  TEXT NOT NULL,                 -- fingerprint of the reference data
    n_rows      INTEGER NOT NULL,
    profile     TEXT NOT NULL,                 -- JSON: per column bins, counts, quantiles
    created_at  REAL NOT NULL
);
CREATE INDEX drift_profiles_dataset ON drift_profiles(dataset_id);
CREATE TABLE drift_reports (
    report_id     TEXT PRIMARY KEY,
    profile_id    TEXT REFERENCES drift_profiles(profile_id),
    current_id    TEXT,                        -- fingerprint of the current data
    run_id        TEXT REFERENCES runs(run_id),
    model_name    TEXT,
    model_version INTEGER,
    dataset_drift INTEGER NOT NULL,
    drift_share   REAL NOT NULL,
    columns       TEXT NOT NULL,               -- JSON: the per-column table
    created_at    REAL NOT NULL
);
CREATE INDEX drift_reports_model ON drift_reports(model_name, model_version, created_at);
"""

# A cache of params, latest_metrics and tags packed into one row per run, so that nbmlops.runs()
# reads one row per run; written with every write to those tables (store/frames.py has the
# format). It holds nothing of its own: the normalized tables stay the record.
V5_RUN_SUMMARIES = """
CREATE TABLE run_summaries (
    run_id  TEXT PRIMARY KEY REFERENCES runs(run_id),
    layout  TEXT NOT NULL,      -- JSON: [param keys, param kinds, metric keys, tag keys]
    numbers BLOB NOT NULL,      -- float64 little-endian: each param's number, then each metric
    texts   TEXT NOT NULL       -- JSON array: the text params' values, then the tag values
) WITHOUT ROWID;
"""

# A second digest of stored objects, BLAKE3, recorded at model registration: loading a model
# verifies it instead of the sha256 because this CPU hashes BLAKE3 ~3x faster (issue #5's load
# target). A side table keyed by the sha256 rather than a column of model_versions: one digest per
# content whatever the number of versions sharing it, versions registered before this migration
# get theirs on their first sha256-verified load (model_versions rows never change), and other
# objects can have one later. Append-only, like the rows that point at it.
V6_OBJECT_DIGESTS = """
CREATE TABLE object_digests (
    sha256     TEXT PRIMARY KEY,             -- the object under objects/ (its address)
    blake3     TEXT NOT NULL,                -- BLAKE3-256 of the same bytes, hex
    size       INTEGER NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER object_digests_immutable BEFORE UPDATE ON object_digests
BEGIN SELECT RAISE(ABORT, 'object_digests are immutable'); END;
CREATE TRIGGER object_digests_kept BEFORE DELETE ON object_digests
BEGIN SELECT RAISE(ABORT, 'object_digests are never deleted'); END;
"""

# What a drift check was asked for and what it drew: a report read back from the store keeps its
# verdict rule (drift-share threshold, multiple-testing correction), each column's method with its
# parameters and nominal threshold, its warnings, and the current data's side of each plot (the
# reference side is drawn from the stored profile). NULL in reports saved before this migration.
V7_DRIFT_REPORT_SETTINGS = """
ALTER TABLE drift_reports ADD COLUMN settings TEXT;
ALTER TABLE drift_reports ADD COLUMN curves TEXT;
"""

# BLAKE3 digests of each fixed-size chunk of a stored object, recorded with object_digests at
# model registration: loading a pickle hashes chunk k+1 while chunk k is being unpickled, and no
# byte reaches the unpickler before its chunk matched (issue #5's load target). A table of its own
# rather than columns of object_digests: those rows are immutable, so versions registered since
# 0006 could never get their chunk digests there; here every object gets one row, inserted at
# registration or on the first verified load of an older version, never updated. The chunk size is
# recorded per object so the default can change without a migration; the CHECK keeps the digests
# consistent with it and the size (32 bytes per chunk, the last chunk holding the rest).
V8_OBJECT_CHUNKS = """
CREATE TABLE object_chunks (
    sha256     TEXT PRIMARY KEY,             -- the object under objects/ (its address)
    chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
    size       INTEGER NOT NULL CHECK (size >= 0),
    digests    BLOB NOT NULL,                -- BLAKE3-256 of each chunk in order, 32 bytes each
    created_at REAL NOT NULL,
    CHECK (length(digests) = 32 * ((size + chunk_size - 1) / chunk_size))
) WITHOUT ROWID;
CREATE TRIGGER object_chunks_immutable BEFORE UPDATE ON object_chunks
BEGIN SELECT RAISE(ABORT, 'object_chunks are immutable'); END;
CREATE TRIGGER object_chunks_kept BEFORE DELETE ON object_chunks
BEGIN SELECT RAISE(ABORT, 'object_chunks are never deleted'); END;
"""


# Serving (issue #14): where each model is served, what happened to each server (loads, alias
# swaps, stop), and every logged prediction. Predictions are keyed by request id so that labels
# arriving later (monitoring) join on it; one row per request, its rows in ``inputs``.
V9_SERVING = """
CREATE TABLE endpoints (
    endpoint_id TEXT PRIMARY KEY,              -- 12 hex characters, one per server process
    name        TEXT NOT NULL REFERENCES models(name),
    ref         TEXT NOT NULL,                 -- what it serves: name@alias or name/version
    alias       TEXT,                          -- the alias it follows, NULL for a pinned version
    url         TEXT NOT NULL,                 -- e.g. http://127.0.0.1:5000
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    settings    TEXT,                          -- JSON: extra_columns policy, log sample, poll
    started_at  REAL NOT NULL
);
CREATE INDEX endpoints_name ON endpoints(name, started_at);
CREATE TRIGGER endpoints_immutable BEFORE UPDATE ON endpoints
BEGIN SELECT RAISE(ABORT, 'endpoints are immutable; record an endpoint_event instead'); END;
CREATE TABLE endpoint_events (
    event_id    INTEGER PRIMARY KEY,
    endpoint_id TEXT NOT NULL REFERENCES endpoints(endpoint_id),
    kind        TEXT NOT NULL CHECK (kind IN ('loaded', 'load_failed', 'swapped',
                    'swap_failed', 'stopped')),
    version     INTEGER,                       -- the version now served (NULL: none yet)
    sha256      TEXT,
    payload     TEXT,                          -- JSON: reason, previous version, log counts
    at          REAL NOT NULL
);
CREATE INDEX endpoint_events_endpoint ON endpoint_events(endpoint_id, event_id);
CREATE TRIGGER endpoint_events_append_only_update BEFORE UPDATE ON endpoint_events
BEGIN SELECT RAISE(ABORT, 'endpoint_events is append-only'); END;
CREATE TRIGGER endpoint_events_append_only_delete BEFORE DELETE ON endpoint_events
BEGIN SELECT RAISE(ABORT, 'endpoint_events is append-only'); END;
CREATE TABLE predictions (
    prediction_id INTEGER PRIMARY KEY,
    request_id    TEXT NOT NULL,               -- X-Request-ID, or generated (32 hex)
    endpoint_id   TEXT REFERENCES endpoints(endpoint_id),
    name          TEXT NOT NULL,
    version       INTEGER,                     -- NULL when no model was loaded (503)
    sha256        TEXT,
    at            REAL NOT NULL,               -- when the request arrived
    status        INTEGER NOT NULL,            -- the HTTP status returned
    latency_ms    REAL NOT NULL,               -- arrival to response, inside the server
    format        TEXT,                        -- dataframe_split, instances, csv, v2, ...
    n_rows        INTEGER,
    inputs        TEXT,                        -- JSON {columns, data}: every row, or a sample
    inputs_digest TEXT,                        -- xxh3-128 of the request body
    outputs       TEXT,                        -- JSON list, one prediction per row
    extra_columns TEXT,                        -- JSON list: columns not in the signature
    error         TEXT                         -- the 4xx/5xx message
);
CREATE INDEX predictions_name ON predictions(name, at);
CREATE INDEX predictions_version ON predictions(name, version, at);
CREATE INDEX predictions_request ON predictions(request_id);
CREATE TRIGGER predictions_append_only_update BEFORE UPDATE ON predictions
BEGIN SELECT RAISE(ABORT, 'predictions is append-only'); END;
"""

# Ground truth that arrives after the prediction (issue #15). Keyed by the request id the
# server logged, not by a foreign key: a label may arrive before the server's batched writer has
# flushed its request, or for a request that was never logged, and it is kept either way. A
# later label for the same request and row supersedes an earlier one by time; none is updated.
V10_LABELS = """
CREATE TABLE labels (
    label_id   INTEGER PRIMARY KEY,
    request_id TEXT NOT NULL,                  -- predictions.request_id
    row        INTEGER NOT NULL CHECK (row >= 0), -- the row within the request (0: single-row)
    label      NOT NULL,                       -- the true value, a number or text, as given
    at         REAL NOT NULL                   -- when the label was logged
);
CREATE INDEX labels_request ON labels(request_id, row, at);
CREATE TRIGGER labels_append_only_update BEFORE UPDATE ON labels
BEGIN SELECT RAISE(ABORT, 'labels is append-only'); END;
CREATE TRIGGER labels_append_only_delete BEFORE DELETE ON labels
BEGIN SELECT RAISE(ABORT, 'labels is append-only'); END;
"""


# Monitoring (issue #15). ``traffic_profiles``: drift profiles of the inputs a server scored, one
# per model version, endpoint and window (a minute by default), written by the server's log
# writer when the window closes: a drift check over an hour of traffic merges sixty profiles
# instead of re-reading and decoding every logged request. Profiles cover every scored row, also
# when the log keeps a sample of requests. ``monitor_events``: the monitoring timeline, append-only
# like model_events: each alert firing (with the rule file's git commit), its notifications, and
# the steps of the retrain it started, linked to the firing by ``firing_id``. Drift reports of
# served traffic record the window they cover. ``label_matches``: each labelled row of an answered
# request with its newest label, a cache holding nothing of its own (like run_summaries): written
# by whichever of the label and the prediction arrives second, so production skew reads one index
# range instead of joining a million labels to the log on text ids (8 s at 1M x 1M).
V11_MONITORING = """
CREATE TABLE traffic_profiles (
    traffic_id    INTEGER PRIMARY KEY,
    endpoint_id   TEXT REFERENCES endpoints(endpoint_id),
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    window_start  REAL NOT NULL,               -- the requests arrived in [window_start, window_end)
    window_end    REAL NOT NULL,
    n_rows        INTEGER NOT NULL,
    profile       TEXT NOT NULL,               -- JSON: a drift profile (nbmlops-drift-profile-v1)
    created_at    REAL NOT NULL
);
CREATE INDEX traffic_profiles_version ON traffic_profiles(name, version, window_start);
CREATE TRIGGER traffic_profiles_append_only_update BEFORE UPDATE ON traffic_profiles
BEGIN SELECT RAISE(ABORT, 'traffic_profiles is append-only'); END;
CREATE TABLE monitor_events (
    event_id    INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,                 -- the model
    alert       TEXT NOT NULL,                 -- the [alerts.<alert>] table that fired
    kind        TEXT NOT NULL CHECK (kind IN ('fired', 'notified', 'notify_failed',
                    'retrain_started', 'retrain_failed', 'retrain_finished',
                    'candidate_promoted', 'candidate_rejected', 'retraining_stopped')),
    firing_id   INTEGER REFERENCES monitor_events(event_id),  -- the firing a step belongs to
    version     INTEGER,                       -- the version concerned (champion, candidate)
    payload     TEXT,                          -- JSON: by kind (docs/schema.md)
    actor       TEXT,
    host        TEXT,
    at          REAL NOT NULL
);
CREATE INDEX monitor_events_alert ON monitor_events(name, alert, at);
CREATE INDEX monitor_events_firing ON monitor_events(firing_id);
CREATE TRIGGER monitor_events_append_only_update BEFORE UPDATE ON monitor_events
BEGIN SELECT RAISE(ABORT, 'monitor_events is append-only'); END;
CREATE TRIGGER monitor_events_append_only_delete BEFORE DELETE ON monitor_events
BEGIN SELECT RAISE(ABORT, 'monitor_events is append-only'); END;
ALTER TABLE drift_reports ADD COLUMN window_start REAL;
ALTER TABLE drift_reports ADD COLUMN window_end REAL;
CREATE TABLE label_matches (
    prediction_id INTEGER NOT NULL,            -- predictions.prediction_id
    row           INTEGER NOT NULL,            -- the row within the request
    label_id      INTEGER NOT NULL,            -- labels.label_id: the row's newest label
    name          TEXT NOT NULL,
    version       INTEGER NOT NULL,
    at            REAL NOT NULL,               -- when the request arrived
    served,                                    -- the row's output, as logged
    label         NOT NULL,
    label_at      REAL NOT NULL,
    PRIMARY KEY (prediction_id, row)
) WITHOUT ROWID;
-- Covering: skew's sums read the index alone (1M rows: 0.3 s; 3 s through the table).
CREATE INDEX label_matches_version ON label_matches(name, version, at, served, label);
-- The requests that did not fit their signature (signature skew), a few among millions: counting
-- them read every row of a version through the table (1 s a million).
CREATE INDEX predictions_unusual ON predictions(name, version, at)
    WHERE extra_columns IS NOT NULL OR status >= 400;
"""


# Migration 0011's backfill of label_matches from the labels logged before it, frozen here: the
# statement that keeps label_matches up to date afterwards (store/labels.py, MATCH_LABELS) may
# change, what a migration did may not. json_extract rather than ->> (SQLite 3.38): the system
# SQLite of some distributions is older. A request id logged twice: its first answer only.
V11_BACKFILL = """
INSERT INTO label_matches (prediction_id, row, label_id, name, version, at, served, label,
                           label_at)
SELECT p.prediction_id, l.row, l.label_id, p.name, p.version, p.at,
       json_extract(p.outputs, '$[' || l.row || ']'), l.label, l.at
FROM labels AS l CROSS JOIN predictions AS p INDEXED BY predictions_request
    ON p.request_id = l.request_id
WHERE p.status < 400 AND p.version IS NOT NULL AND json_valid(p.outputs)
    AND json_type(p.outputs, '$[' || l.row || ']') IN ('integer', 'real', 'text', 'true', 'false')
    AND NOT EXISTS (SELECT 1 FROM predictions AS q INDEXED BY predictions_request
                    WHERE q.request_id = p.request_id AND q.prediction_id < p.prediction_id
                        AND q.status < 400 AND q.version IS NOT NULL)
ORDER BY l.at, l.label_id
ON CONFLICT (prediction_id, row) DO UPDATE SET
    label_id = excluded.label_id, label = excluded.label, label_at = excluded.label_at
    WHERE (excluded.label_at, excluded.label_id) > (label_matches.label_at, label_matches.label_id)
"""


# Data versioning (issue #16). ``named_datasets``: a dataset the user saved by name, a Delta Lake
# table (kind 'table') or a set of files (kind 'files'), and where its data lives. One row per
# version in ``dataset_versions``, append-only like model_events: history is never rewritten (a
# restore is a new version). ``fingerprint`` is nbmlops.fingerprint's digest of the version's
# content (a frame's, or a file manifest's), the same digest %%track records for the data a cell
# reads (``datasets.dataset_id``), so lineage is a join on it, also for runs recorded before the
# version was saved; NULL until known (an append writes only the new rows and the fingerprint of
# the whole is taken at the first load). ``manifest``: the object (object_digests) listing every
# data file of the version with its size and BLAKE3, checked before a load so that a table edited
# behind nbmlops' back is refused. ``dataset_runs``: versions a run loaded or saved explicitly
# (``load_dataset``/``save_dataset`` in a tracked cell); reads of an unnamed DataFrame with a
# saved version's fingerprint need no row.
V12_DATASETS = """
CREATE TABLE named_datasets (
    name        TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('table', 'files')),
    uri         TEXT NOT NULL,                 -- the Delta table / files root ('' = the store's)
    key         TEXT,                          -- JSON list of the key columns (tables)
    created_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE dataset_versions (
    name           TEXT NOT NULL REFERENCES named_datasets(name),
    version        INTEGER NOT NULL,           -- 1, 2, ... per name
    delta_version  INTEGER,                    -- the Delta table's version (tables)
    fingerprint    TEXT,                       -- content digest; NULL until known (appends)
    schema         TEXT NOT NULL,              -- JSON: columns with Arrow and pandas types
    n_rows         INTEGER,                    -- rows (tables) or files (files)
    n_bytes        INTEGER NOT NULL,           -- bytes of data files making up the version
    added_bytes    INTEGER NOT NULL,           -- bytes this version wrote that none before had
    manifest       TEXT NOT NULL,              -- object digest of the JSON file list
    mode           TEXT NOT NULL CHECK (mode IN ('overwrite', 'append', 'restore', 'files')),
    restored_from  INTEGER,                    -- the version a restore copied
    run_id         TEXT REFERENCES runs(run_id),   -- the run that saved it
    actor          TEXT,
    host           TEXT,
    created_at     REAL NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE INDEX dataset_versions_fingerprint ON dataset_versions(fingerprint);
CREATE INDEX dataset_versions_run ON dataset_versions(run_id);
CREATE TRIGGER dataset_versions_no_delete BEFORE DELETE ON dataset_versions
BEGIN SELECT RAISE(ABORT, 'dataset_versions is append-only'); END;
CREATE TABLE dataset_runs (
    run_id   TEXT NOT NULL REFERENCES runs(run_id),
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    how      TEXT NOT NULL CHECK (how IN ('loaded', 'saved')),
    at       REAL NOT NULL,
    PRIMARY KEY (run_id, name, version, how),
    FOREIGN KEY (name, version) REFERENCES dataset_versions(name, version)
) WITHOUT ROWID;
CREATE INDEX dataset_runs_version ON dataset_runs(name, version);
"""


# Evaluation on unseen data (issue #21). ``row_hashes``: a 64-bit hash of each row of a dataset
# (nbmlops.fingerprint.row_hashes), in row order, kept in objects/ for the data a training cell
# read, so that an evaluation set is checked against the rows a model was trained on without the
# training data. ``evaluations``: each evaluation of a model on a dataset, append-only: its
# metrics, whether the set was unseen (no row of it in the training data) and comparable (same
# columns and dtypes, no feature or label drift), and the report that says why. A version's
# evaluations are those naming it and those of the run that trained it (recorded before it was
# registered).
V13_EVALUATIONS = """
CREATE TABLE row_hashes (
    dataset_id  TEXT PRIMARY KEY REFERENCES datasets(dataset_id),
    n_rows      INTEGER NOT NULL,
    object      TEXT NOT NULL,                 -- sha256 of the uint64 array (little-endian)
    created_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE evaluations (
    evaluation_id INTEGER PRIMARY KEY,
    run_id        TEXT REFERENCES runs(run_id),     -- the run it was recorded on
    name          TEXT,                             -- the model version evaluated, if registered
    version       INTEGER,
    model_run_id  TEXT REFERENCES runs(run_id),     -- the run that trained the model
    task          TEXT NOT NULL CHECK (task IN ('classification', 'regression')),
    dataset_id    TEXT NOT NULL,                    -- fingerprint of the features (X)
    target_id     TEXT,                             -- fingerprint of the target (y)
    dataset_ref   TEXT,                             -- 'name@version' of a saved dataset version
    n_rows        INTEGER NOT NULL,
    metrics       TEXT NOT NULL,                    -- JSON {metric: value}
    status        TEXT NOT NULL CHECK (status IN ('unseen', 'leaky', 'not_comparable',
                      'unchecked')),
    unseen        INTEGER,                          -- 1, 0, NULL: training data unknown
    comparable    INTEGER,                          -- 1, 0, NULL: no training profile
    report        TEXT NOT NULL,                    -- JSON: overlap, columns, drift (schema.md)
    created_at    REAL NOT NULL
);
CREATE INDEX evaluations_version ON evaluations(name, version, created_at);
CREATE INDEX evaluations_model_run ON evaluations(model_run_id, created_at);
CREATE INDEX evaluations_run ON evaluations(run_id);
CREATE TRIGGER evaluations_append_only_update BEFORE UPDATE ON evaluations
BEGIN SELECT RAISE(ABORT, 'evaluations is append-only'); END;
CREATE TRIGGER evaluations_append_only_delete BEFORE DELETE ON evaluations
BEGIN SELECT RAISE(ABORT, 'evaluations is append-only'); END;
"""


# Push to an MLflow tracking server (issue #19): what was sent to which server, so that pushing
# again sends only what is new. ``server`` is the tracking server's base URL as normalised by
# nbmlops.sync (``http://host:port``). ``sync_runs``: a run's MLflow id and the status and end
# time last sent. ``sync_items``: each param, tag, artifact and dataset input sent, with a digest
# of what was sent (a changed value is sent again). ``sync_metrics``: per run and key, the
# (timestamp, step) of the last point sent and how many were: metrics are append-only, so a count
# that grew means points to send, those after the mark. ``sync_model_versions``: each registered
# version's MLflow version number (assigned by the server); ``sync_models``: the last
# model_events row sent per model (aliases, promotions, deprecations as version tags). Rows are
# written after the server confirmed, so a push that stopped half way resumes where it stopped.
V14_SYNC = """
CREATE TABLE sync_runs (
    server        TEXT NOT NULL,
    run_id        TEXT NOT NULL REFERENCES runs(run_id),
    remote_id     TEXT NOT NULL,               -- MLflow's run id
    experiment_id TEXT NOT NULL,               -- MLflow's experiment id
    status        TEXT,                        -- the status last sent (NULL: not yet)
    end_time      REAL,                        -- the end time last sent
    pushed_at     REAL NOT NULL,
    PRIMARY KEY (server, run_id)
) WITHOUT ROWID;
CREATE TABLE sync_items (
    server  TEXT NOT NULL,
    run_id  TEXT NOT NULL REFERENCES runs(run_id),
    kind    TEXT NOT NULL CHECK (kind IN ('param', 'tag', 'artifact', 'input')),
    key     TEXT NOT NULL,                     -- param/tag key, artifact name, dataset role:name
    digest  TEXT NOT NULL,                     -- what was sent: a value's digest, an object's sha
    PRIMARY KEY (server, run_id, kind, key)
) WITHOUT ROWID;
CREATE TABLE sync_metrics (
    server    TEXT NOT NULL,
    run_id    TEXT NOT NULL REFERENCES runs(run_id),
    key       TEXT NOT NULL,
    step      INTEGER NOT NULL,                -- the last point sent, by (timestamp, step)
    timestamp REAL NOT NULL,
    sent      INTEGER NOT NULL,                -- points sent so far
    PRIMARY KEY (server, run_id, key)
) WITHOUT ROWID;
CREATE TABLE sync_model_versions (
    server         TEXT NOT NULL,
    name           TEXT NOT NULL,
    version        INTEGER NOT NULL,
    remote_version TEXT NOT NULL,              -- MLflow's version number of it
    PRIMARY KEY (server, name, version),
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
) WITHOUT ROWID;
CREATE TABLE sync_models (
    server        TEXT NOT NULL,
    name          TEXT NOT NULL REFERENCES models(name),
    last_event_id INTEGER NOT NULL,            -- model_events sent up to this event_id
    PRIMARY KEY (server, name)
) WITHOUT ROWID;
"""


V15_FEATURES = """
CREATE TABLE feature_entities (
    name        TEXT PRIMARY KEY,
    keys        TEXT NOT NULL,                 -- JSON list of the key column(s)
    description TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE feature_views (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    fingerprint  TEXT NOT NULL,                -- of the normalised definition and the dtypes
    entity       TEXT NOT NULL REFERENCES feature_entities(name),
    timestamp    TEXT NOT NULL,                -- event time column
    created      TEXT,                         -- created time column (tie-break)
    ttl_seconds  REAL NOT NULL,                -- 0: no TTL
    features     TEXT NOT NULL,                -- JSON [{"name", "dtype"}]
    source_kind  TEXT NOT NULL
        CHECK (source_kind IN ('function', 'dataframe', 'parquet', 'delta', 'dataset', 'sql')),
    source       TEXT NOT NULL,                -- function code, path/URI, dataset ref, SQL
    transform    TEXT,                         -- the transformation's code over a source, if any
    description  TEXT NOT NULL DEFAULT '',
    owner        TEXT,
    run_id       TEXT REFERENCES runs(run_id), -- the tracked run whose cell defined it
    created_at   REAL NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE INDEX feature_views_fingerprint ON feature_views (fingerprint);
CREATE TRIGGER feature_views_immutable BEFORE UPDATE ON feature_views
BEGIN SELECT RAISE(ABORT, 'feature_views are immutable: a new definition is a new version'); END;
CREATE TABLE feature_view_data (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,             -- the view version
    dataset      TEXT NOT NULL,                -- the dataset holding its offline rows
    dataset_version INTEGER NOT NULL,
    computed_at  REAL NOT NULL,
    PRIMARY KEY (name, version, dataset_version),
    FOREIGN KEY (name, version) REFERENCES feature_views(name, version),
    FOREIGN KEY (dataset, dataset_version) REFERENCES dataset_versions(name, version)
) WITHOUT ROWID;
CREATE TABLE feature_materializations (
    materialization_id INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    start_ts     REAL,                          -- event times (start, end]; NULL: from the start
    end_ts       REAL NOT NULL,
    rows_read    INTEGER NOT NULL,
    rows_written INTEGER NOT NULL,              -- online rows inserted or replaced (newer only)
    started_at   REAL NOT NULL,
    finished_at  REAL NOT NULL,
    FOREIGN KEY (name, version) REFERENCES feature_views(name, version)
);
CREATE INDEX feature_materializations_view ON feature_materializations (name, version, end_ts);
CREATE TABLE training_sets (
    training_set_id INTEGER PRIMARY KEY,
    run_id          TEXT REFERENCES runs(run_id),
    dataset         TEXT,                       -- the dataset version it was saved as
    dataset_version INTEGER,
    fingerprint     TEXT NOT NULL,              -- of the frame returned
    features        TEXT NOT NULL,              -- JSON [{"ref", "view", "version", ...}]
    entity_rows     INTEGER NOT NULL,
    created_filter  INTEGER NOT NULL,
    contract        TEXT NOT NULL,              -- JSON: the inferred data contract of the features
    created_at      REAL NOT NULL,
    FOREIGN KEY (dataset, dataset_version) REFERENCES dataset_versions(name, version)
);
CREATE INDEX training_sets_run ON training_sets (run_id);
CREATE INDEX training_sets_fingerprint ON training_sets (fingerprint);
"""


V16_REVIEWS = """
CREATE TABLE reviews (
    review_id   INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('model', 'changes', 'rules')),
    name        TEXT,                          -- the model (model reviews)
    version     INTEGER,
    against     TEXT,                          -- what it was compared with: name/version, a range
    notebook    TEXT NOT NULL,                 -- sha256 of the executed .ipynb in objects/
    html        TEXT,                          -- sha256 of its standalone HTML in objects/
    path        TEXT,                          -- where the files were written
    summary     TEXT NOT NULL,                 -- JSON: the findings in brief
    actor       TEXT,
    host        TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX reviews_model ON reviews (name, version, created_at);
CREATE TRIGGER reviews_append_only_update BEFORE UPDATE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
CREATE TRIGGER reviews_append_only_delete BEFORE DELETE ON reviews
BEGIN SELECT RAISE(ABORT, 'reviews are append-only'); END;
CREATE TABLE approvals (
    approval_id INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    by          TEXT NOT NULL,                 -- who approves
    comment     TEXT,
    review_id   INTEGER REFERENCES reviews(review_id),
    actor       TEXT,                          -- the OS user who recorded it
    host        TEXT,
    at          REAL NOT NULL,
    FOREIGN KEY (name, version) REFERENCES model_versions(name, version)
);
CREATE INDEX approvals_version ON approvals (name, version, at);
CREATE TRIGGER approvals_append_only_update BEFORE UPDATE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE TRIGGER approvals_append_only_delete BEFORE DELETE ON approvals
BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
CREATE TABLE reruns (
    rerun_id       INTEGER PRIMARY KEY,
    run_id         TEXT NOT NULL REFERENCES runs(run_id),
    new_run_id     TEXT REFERENCES runs(run_id),  -- the re-run's own run
    outcome        TEXT NOT NULL
        CHECK (outcome IN ('reproduced', 'differs', 'unverified', 'could_not_run')),
    tolerance      REAL NOT NULL,
    metrics        TEXT NOT NULL,              -- JSON {key: [recorded, re-run]}
    differences    TEXT NOT NULL,              -- JSON list of what differed
    inputs         TEXT NOT NULL,              -- JSON list: each input, recorded and found
    nondeterminism TEXT NOT NULL,              -- JSON list: sources the run declared
    reason         TEXT,                       -- why it could not run
    notebook       TEXT,                       -- sha256 of the executed re-run notebook
    actor          TEXT,
    host           TEXT,
    started_at     REAL NOT NULL,
    finished_at    REAL NOT NULL
);
CREATE INDEX reruns_run ON reruns (run_id, finished_at);
CREATE TRIGGER reruns_append_only_update BEFORE UPDATE ON reruns
BEGIN SELECT RAISE(ABORT, 'reruns are append-only'); END;
CREATE TRIGGER reruns_append_only_delete BEFORE DELETE ON reruns
BEGIN SELECT RAISE(ABORT, 'reruns are append-only'); END;
"""

# ``runs.revision`` moves whenever a run's records change: once per write of its params, metrics
# or tags (each rewrites its ``run_summaries`` row), per dataset or artifact row, and when its
# status or end time is set. Triggers keep it, so every writer counts, also a kernel still
# running the code from before this migration; a trigger per metric point would have doubled
# the cost of logging one. ``sync_runs.revision`` is the revision a server holds: a push selects
# the runs that changed since with one join instead of reading every run's records (a re-push of
# 10,000 unchanged runs read 10M metric index entries). NULL: pushed before this migration,
# compared in full once.
V17_RUN_REVISIONS = """
ALTER TABLE runs ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sync_runs ADD COLUMN revision INTEGER;
CREATE TRIGGER runs_revision_records AFTER INSERT ON run_summaries
BEGIN UPDATE runs SET revision = revision + 1 WHERE run_id = NEW.run_id; END;
CREATE TRIGGER runs_revision_datasets AFTER INSERT ON run_datasets
BEGIN UPDATE runs SET revision = revision + 1 WHERE run_id = NEW.run_id; END;
CREATE TRIGGER runs_revision_artifacts AFTER INSERT ON artifacts
BEGIN UPDATE runs SET revision = revision + 1 WHERE run_id = NEW.run_id; END;
CREATE TRIGGER runs_revision_outcome AFTER UPDATE OF status, end_time ON runs
BEGIN UPDATE runs SET revision = revision + 1 WHERE run_id = NEW.run_id; END;
"""


def _run_script(db: Database, script: str) -> None:
    # executescript would commit the migration's transaction; statements run one by one.
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            db.execute(statement)
            statement = ""


def _initial(db: Database) -> None:
    _run_script(db, V1_SCHEMA)


def _cell_executions(db: Database) -> None:
    _run_script(db, V2_CELL_EXECUTIONS)


def _registry(db: Database) -> None:
    _run_script(db, V3_REGISTRY)


def _drift(db: Database) -> None:
    _run_script(db, V4_DRIFT)


def _run_summaries(db: Database) -> None:
    # The backfill writes summaries in the current format; a later change of the format
    # needs a migration that rewrites them all.
    _run_script(db, V5_RUN_SUMMARIES)
    run_ids = db.execute(
        "SELECT run_id FROM runs WHERE run_id IN (SELECT run_id FROM params "
        "UNION SELECT run_id FROM latest_metrics UNION SELECT run_id FROM tags)"
    ).fetchall()
    for (run_id,) in run_ids:
        refresh_summary(db.conn, run_id)


def _object_digests(db: Database) -> None:
    _run_script(db, V6_OBJECT_DIGESTS)


def _drift_report_settings(db: Database) -> None:
    _run_script(db, V7_DRIFT_REPORT_SETTINGS)


def _object_chunks(db: Database) -> None:
    _run_script(db, V8_OBJECT_CHUNKS)


def _serving(db: Database) -> None:
    _run_script(db, V9_SERVING)


def _labels(db: Database) -> None:
    _run_script(db, V10_LABELS)


def _monitoring(db: Database) -> None:
    _run_script(db, V11_MONITORING)
    db.execute(V11_BACKFILL)


def _datasets(db: Database) -> None:
    _run_script(db, V12_DATASETS)


def _evaluations(db: Database) -> None:
    _run_script(db, V13_EVALUATIONS)


def _sync(db: Database) -> None:
    _run_script(db, V14_SYNC)


def _features(db: Database) -> None:
    _run_script(db, V15_FEATURES)


def _reviews(db: Database) -> None:
    _run_script(db, V16_REVIEWS)


def _run_revisions(db: Database) -> None:
    _run_script(db, V17_RUN_REVISIONS)


# In order; a name is recorded in _sqlite_migrations once applied, so it never changes.
MIGRATIONS: tuple[tuple[str, Callable[[Database], None]], ...] = (
    ("0001_initial", _initial),
    ("0002_cell_executions", _cell_executions),
    ("0003_registry", _registry),
    ("0004_drift", _drift),
    ("0005_run_summaries", _run_summaries),
    ("0006_object_digests", _object_digests),
    ("0007_drift_report_settings", _drift_report_settings),
    ("0008_object_chunks", _object_chunks),
    ("0009_serving", _serving),
    ("0010_labels", _labels),
    ("0011_monitoring", _monitoring),
    ("0012_datasets", _datasets),
    ("0013_evaluations", _evaluations),
    ("0014_sync", _sync),
    ("0015_features", _features),
    ("0016_reviews", _reviews),
    ("0017_run_revisions", _run_revisions),
)
MIGRATION_NAMES = tuple(name for name, _ in MIGRATIONS)


def register(migrations: Migrations) -> None:
    """Attach the schema's migrations, in order, to a ``sqlite_utils.Migrations`` set."""
    for name, apply in MIGRATIONS:
        migrations(name=name)(apply)
