"""Runs: start one and log to it from any script, list and read them back, query with SQL."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from nbmlops.api._sync import sync_in_background
from nbmlops.capture import run as _run
from nbmlops.capture.run import Run
from nbmlops.errors import UnknownKeyWarning
from nbmlops.filter import fields_named, parse_filter
from nbmlops.store import Store, StoreLike, open_store, set_default_store
from nbmlops.store import cells as cell_store
from nbmlops.store import runs as run_store
from nbmlops.store.db import SQL_TIMEOUT_S

if TYPE_CHECKING:
    import pandas as pd


def get_store(store: StoreLike = None) -> Store:
    """The open store that ``store`` names: a :class:`~nbmlops.store.Store`, a path (the
    ``.nbmlops`` folder, its ``nbmlops.db``, or a project folder holding one), or ``None`` for
    the default store (the one set with :func:`set_store`, else the location rule:
    ``NBMLOPS_HOME``, else the nearest ``.nbmlops/`` upwards, else ``./.nbmlops/``), created if
    there is none yet. The functions that only read never create one: where there is no store
    they raise StoreNotFoundError, naming where they looked."""
    return open_store(store)


def set_store(path: str | os.PathLike[str] | None) -> Store | None:
    """Use the store at ``path`` as the default from now on in this process (``None``: back
    to the location rule)."""
    return set_default_store(path)


def start_run(
    name: str | None = None,
    experiment: str | None = None,
    tags: Mapping[str, object] | None = None,
    *,
    store: StoreLike = None,
) -> Run:
    """Start a run; use it as a context manager so it ends (finished or failed) by itself.

    >>> with nbm.start_run("baseline", experiment="churn") as run:
    ...     nbm.log_param("lr", 0.01)
    ...     nbm.log_metric("auc", 0.91)
    """
    handle = open_store(store)
    sync_in_background(handle, quiet=True)  # NBMLOPS_MLFLOW_URI or [sync] in nbmlops.toml
    return _run.begin_run(handle, name=name, experiment=experiment, tags=tags)


def end_run(status: str = "finished") -> None:
    """End the innermost active run (for runs started without ``with``)."""
    _run.require_active_run("end_run").end(status)


def active_run() -> Run | None:
    """The innermost run active in this process, or None."""
    return _run.active_run()


def log_param(key: str, value: object) -> None:
    """Record a param of the active run (numbers stay numbers; other values as text or
    JSON). Logging a key again replaces its value."""
    _run.require_active_run("log_param").log_param(key, value)


def log_params(params: Mapping[str, object]) -> None:
    """Record several params of the active run at once (see :func:`log_param`)."""
    _run.require_active_run("log_params").log_params(params)


def log_metric(key: str, value: object, step: int | None = None) -> None:
    """Record a metric value of the active run; without ``step``, each call takes the next
    step. ``runs()`` shows the latest step's value, ``Run.metric_history`` all of them."""
    _run.require_active_run("log_metric").log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, object], step: int | None = None) -> None:
    """Record several metrics of the active run at once (see :func:`log_metric`)."""
    _run.require_active_run("log_metrics").log_metrics(metrics, step)


def set_tag(key: str, value: object) -> None:
    """Tag the active run (the value is kept as text); setting a key again replaces it."""
    _run.require_active_run("set_tag").set_tag(key, value)


def log_dataset(obj_or_path: object, name: str | None = None, role: str = "input") -> str:
    """Record the content fingerprint of a DataFrame, array or file the active run read
    (``role="input"``) or wrote (``"output"``); returns the fingerprint."""
    return _run.require_active_run("log_dataset").log_dataset(obj_or_path, name, role)


def log_artifact(path: str | os.PathLike[str], name: str | None = None) -> str:
    """Copy a file into the store for the active run; returns its sha256."""
    return _run.require_active_run("log_artifact").log_artifact(path, name)


def log_figure(fig: Any, name: str) -> str:
    """Save a matplotlib figure of the active run as PNG; returns its sha256."""
    return _run.require_active_run("log_figure").log_figure(fig, name)


def log_model(model: Any, name: str) -> str:
    """Save a fitted model of the active run, with the library versions needed to load it;
    returns its sha256. Register it with :func:`register_model`."""
    return _run.require_active_run("log_model").log_model(model, name)


def runs(
    filter: str | None = None,
    experiment: str | None = None,
    *,
    store: StoreLike = None,
) -> pd.DataFrame:
    """Runs as a DataFrame, newest first: run attributes, then ``params.<k>``,
    ``metrics.<k>`` (latest value) and ``tags.<k>`` columns.

    ``filter`` is a condition such as ``"params.lr < 0.1 AND (metrics.auc > 0.9 OR
    tags.team = 'a')"``; see :mod:`nbmlops.filter` for the grammar. A key the filter names
    that no run has (``metrics.los``) warns with the nearest keys (UnknownKeyWarning).
    """
    tree = parse_filter(filter) if filter else None
    st = open_store(store, create=False)
    _run.reap(st)
    unknown = run_store.unknown_keys(st, fields_named(tree)) if tree is not None else []
    if unknown:
        named = {str(u.field): [str(f) for f in u.nearest] for u in unknown}
        warnings.warn(UnknownKeyWarning(named), stacklevel=2)
    return run_store.runs_frame(st, tree, experiment)


def get_run(run_id: str, *, store: StoreLike = None) -> Run:
    """The run with this id (or a unique prefix of it)."""
    return _run.find_run(open_store(store, create=False), run_id)


def sql(
    query: str, *, timeout: float | None = SQL_TIMEOUT_S, store: StoreLike = None
) -> pd.DataFrame:
    """Run one read-only SQL statement over the store (schema: docs/schema.md): SELECT only,
    with SQLite's core, aggregate, window, date, math and JSON functions, stopped after
    ``timeout`` seconds (``None``: no limit)."""
    import pandas as pd

    columns, rows = open_store(store, create=False).read_sql(query, timeout=timeout)
    return pd.DataFrame.from_records(rows, columns=columns)


def cells_before(run_id: str, limit: int = 50, *, store: StoreLike = None) -> pd.DataFrame:
    """Which code ran before this run: the cells its kernel executed earlier, tracked or not,
    newest first (cell_id, execution_count, start_time, status, run_id, source_hash, source)."""
    import pandas as pd

    st = open_store(store, create=False)
    rows = cell_store.executions_before_run(st, st.resolve_run_id(run_id), limit)
    columns = ["cell_id", "execution_count", "start_time", "status", "run_id", "source_hash"]
    frame = pd.DataFrame(rows, columns=[*columns, "source"])
    frame["start_time"] = pd.to_datetime(frame["start_time"], unit="s", utc=True)
    return frame
