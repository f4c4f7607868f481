"""The plain Python API: ``import nbmlops as nbm`` is this, plus the panels and result types.

One front door. Every function takes ``store=`` as a :data:`~nbmlops.store.StoreLike` (a
``Store``, a path, or ``None`` for the default store) and means the same thing by it; a function
that may skip saving takes ``save=``. Functions resolve the store, decide what to save and call
the domain (:mod:`nbmlops.capture`, :mod:`nbmlops.registry`, :mod:`nbmlops.drift`, ...); they
render nothing. The magics, panels, REST handlers and CLI call these functions.

One module per domain: :mod:`._runs` (runs and logging), :mod:`._cells` (cell history, compare,
lineage), :mod:`._drift`, :mod:`._registry`.
"""

from nbmlops.api._cells import cell_diff, cell_history, compare_runs, lineage
from nbmlops.api._drift import check_drift, save_reference
from nbmlops.api._registry import (
    check_rules,
    consumers,
    delete_model_version,
    deprecate_model_version,
    get_model_version,
    load_model,
    model_history,
    model_versions,
    models,
    promote,
    register_model,
    remove_alias,
    set_alias,
    who_served,
)
from nbmlops.api._runs import (
    active_run,
    cells_before,
    end_run,
    get_run,
    get_store,
    log_artifact,
    log_dataset,
    log_figure,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    runs,
    set_store,
    set_tag,
    sql,
    start_run,
)

__all__ = [
    "active_run",
    "cell_diff",
    "cell_history",
    "cells_before",
    "check_drift",
    "check_rules",
    "compare_runs",
    "consumers",
    "delete_model_version",
    "deprecate_model_version",
    "end_run",
    "get_model_version",
    "get_run",
    "get_store",
    "lineage",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "model_history",
    "model_versions",
    "models",
    "promote",
    "register_model",
    "remove_alias",
    "runs",
    "save_reference",
    "set_alias",
    "set_store",
    "set_tag",
    "sql",
    "start_run",
    "who_served",
]
