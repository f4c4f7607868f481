"""nbmlops: notebook-first MLOps. Every ``%%track`` cell run is recorded in one local SQLite file.

Use it from a notebook with ``%load_ext nbmlops``, or from any script::

    import nbmlops as nbm
    with nbm.start_run("baseline"):
        nbm.log_param("lr", 0.01)
        nbm.log_metric("auc", 0.91)
    nbm.runs("metrics.auc > 0.9")
"""

from nbmlops.api import (
    active_run,
    cell_diff,
    cell_history,
    cells_before,
    check_drift,
    check_rules,
    compare_runs,
    consumers,
    delete_model_version,
    deprecate,
    end_run,
    evaluate_rules,
    get_model_version,
    get_run,
    get_store,
    lineage,
    load_model,
    log_artifact,
    log_dataset,
    log_figure,
    log_metric,
    log_metrics,
    log_model,
    log_param,
    log_params,
    model_history,
    model_versions,
    models,
    promote,
    register_model,
    remove_alias,
    runs,
    save_reference,
    set_alias,
    set_store,
    set_tag,
    sql,
    start_run,
    who_served,
)
from nbmlops.capture.run import Run
from nbmlops.errors import NbmlopsError
from nbmlops.panels import (
    cell_history_panel,
    compare_panel,
    drift_panel,
    models_panel,
    runs_panel,
)

__version__ = "0.1.0"

__all__ = [
    "NbmlopsError",
    "Run",
    "__version__",
    "active_run",
    "cell_diff",
    "cell_history",
    "cell_history_panel",
    "cells_before",
    "check_drift",
    "check_rules",
    "compare_panel",
    "compare_runs",
    "consumers",
    "delete_model_version",
    "deprecate",
    "drift_panel",
    "end_run",
    "evaluate_rules",
    "get_model_version",
    "get_run",
    "get_store",
    "lineage",
    "load_ipython_extension",
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
    "models_panel",
    "promote",
    "register_model",
    "remove_alias",
    "runs",
    "runs_panel",
    "save_reference",
    "set_alias",
    "set_store",
    "set_tag",
    "sql",
    "start_run",
    "unload_ipython_extension",
    "who_served",
]


def load_ipython_extension(shell: object) -> None:
    """``%load_ext nbmlops``: register ``%%track``, ``%nbmlops`` and the cell-history hooks."""
    from nbmlops import magics

    magics.load(shell)


def unload_ipython_extension(shell: object) -> None:
    from nbmlops import magics

    magics.unload(shell)
