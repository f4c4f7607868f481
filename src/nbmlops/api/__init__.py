"""The plain Python API: ``import nbmlops as nbm`` is this, plus the panels and result types.

One front door. Every function takes ``store=`` as a :data:`~nbmlops.store.StoreLike` (a
``Store``, a path, or ``None`` for the default store) and means the same thing by it; a function
that may skip saving takes ``save=``. Functions resolve the store, decide what to save and call
the domain (:mod:`nbmlops.capture`, :mod:`nbmlops.registry`, :mod:`nbmlops.drift`, ...); they
render nothing. The magics, panels, REST handlers and CLI call these functions.

One module per domain: :mod:`._runs` (runs and logging), :mod:`._cells` (cell history, compare,
lineage), :mod:`._drift`, :mod:`._registry`, :mod:`._serving`, :mod:`._monitoring`,
:mod:`._alerts`, :mod:`._timeline`, :mod:`._data`, :mod:`._evaluation`, :mod:`._sync`. Each is
imported when one of its functions is first asked for (PEP 562), so ``nbm.start_run`` does not
load the registry, nor ``nbm.models`` the capture of cells: importing them all costs more than
twice what ``import nbmlops`` did before the API was split by domain (44 against 100 ms, min of
15 fresh interpreters).
"""

from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from nbmlops.api._alerts import (
        alert_events as alert_events,
    )
    from nbmlops.api._alerts import (
        check_alerts as check_alerts,
    )
    from nbmlops.api._alerts import (
        monitor as monitor,
    )
    from nbmlops.api._cells import (
        cell_diff as cell_diff,
    )
    from nbmlops.api._cells import (
        cell_history as cell_history,
    )
    from nbmlops.api._cells import (
        compare_runs as compare_runs,
    )
    from nbmlops.api._cells import (
        lineage as lineage,
    )
    from nbmlops.api._data import (
        checkout_dataset as checkout_dataset,
    )
    from nbmlops.api._data import (
        data_lineage as data_lineage,
    )
    from nbmlops.api._data import (
        dataset_diff as dataset_diff,
    )
    from nbmlops.api._data import (
        dataset_usage as dataset_usage,
    )
    from nbmlops.api._data import (
        dataset_versions as dataset_versions,
    )
    from nbmlops.api._data import (
        datasets as datasets,
    )
    from nbmlops.api._data import (
        get_dataset as get_dataset,
    )
    from nbmlops.api._data import (
        load_dataset as load_dataset,
    )
    from nbmlops.api._data import (
        restore_dataset as restore_dataset,
    )
    from nbmlops.api._data import (
        save_dataset as save_dataset,
    )
    from nbmlops.api._drift import (
        check_drift as check_drift,
    )
    from nbmlops.api._drift import (
        monitor_drift as monitor_drift,
    )
    from nbmlops.api._drift import (
        save_reference as save_reference,
    )
    from nbmlops.api._evaluation import (
        evaluate as evaluate,
    )
    from nbmlops.api._evaluation import (
        evaluations as evaluations,
    )
    from nbmlops.api._features import (
        check_feature_skew as check_feature_skew,
    )
    from nbmlops.api._features import (
        entity as entity,
    )
    from nbmlops.api._features import (
        feature_view as feature_view,
    )
    from nbmlops.api._features import (
        feature_view_versions as feature_view_versions,
    )
    from nbmlops.api._features import (
        features as features,
    )
    from nbmlops.api._features import (
        get_feature_view as get_feature_view,
    )
    from nbmlops.api._features import (
        materialize as materialize,
    )
    from nbmlops.api._features import (
        online_features as online_features,
    )
    from nbmlops.api._features import (
        training_set as training_set,
    )
    from nbmlops.api._monitoring import (
        log_labels as log_labels,
    )
    from nbmlops.api._monitoring import (
        production_skew as production_skew,
    )
    from nbmlops.api._registry import (
        check_rules as check_rules,
    )
    from nbmlops.api._registry import (
        consumers as consumers,
    )
    from nbmlops.api._registry import (
        delete_model_version as delete_model_version,
    )
    from nbmlops.api._registry import (
        deprecate_model_version as deprecate_model_version,
    )
    from nbmlops.api._registry import (
        get_model_version as get_model_version,
    )
    from nbmlops.api._registry import (
        load_model as load_model,
    )
    from nbmlops.api._registry import (
        model_history as model_history,
    )
    from nbmlops.api._registry import (
        model_versions as model_versions,
    )
    from nbmlops.api._registry import (
        models as models,
    )
    from nbmlops.api._registry import (
        promote as promote,
    )
    from nbmlops.api._registry import (
        register_model as register_model,
    )
    from nbmlops.api._registry import (
        remove_alias as remove_alias,
    )
    from nbmlops.api._registry import (
        set_alias as set_alias,
    )
    from nbmlops.api._registry import (
        who_served as who_served,
    )
    from nbmlops.api._reviews import (
        approve_model as approve_model,
    )
    from nbmlops.api._reviews import (
        model_approvals as model_approvals,
    )
    from nbmlops.api._reviews import (
        rerun as rerun,
    )
    from nbmlops.api._reviews import (
        review_rules as review_rules,
    )
    from nbmlops.api._runs import (
        active_run as active_run,
    )
    from nbmlops.api._runs import (
        cells_before as cells_before,
    )
    from nbmlops.api._runs import (
        end_run as end_run,
    )
    from nbmlops.api._runs import (
        get_run as get_run,
    )
    from nbmlops.api._runs import (
        get_store as get_store,
    )
    from nbmlops.api._runs import (
        log_artifact as log_artifact,
    )
    from nbmlops.api._runs import (
        log_dataset as log_dataset,
    )
    from nbmlops.api._runs import (
        log_figure as log_figure,
    )
    from nbmlops.api._runs import (
        log_metric as log_metric,
    )
    from nbmlops.api._runs import (
        log_metrics as log_metrics,
    )
    from nbmlops.api._runs import (
        log_model as log_model,
    )
    from nbmlops.api._runs import (
        log_param as log_param,
    )
    from nbmlops.api._runs import (
        log_params as log_params,
    )
    from nbmlops.api._runs import (
        runs as runs,
    )
    from nbmlops.api._runs import (
        set_store as set_store,
    )
    from nbmlops.api._runs import (
        set_tag as set_tag,
    )
    from nbmlops.api._runs import (
        sql as sql,
    )
    from nbmlops.api._runs import (
        start_run as start_run,
    )
    from nbmlops.api._serving import (
        endpoint_events as endpoint_events,
    )
    from nbmlops.api._serving import (
        endpoints as endpoints,
    )
    from nbmlops.api._serving import (
        predictions as predictions,
    )
    from nbmlops.api._serving import (
        serve as serve,
    )
    from nbmlops.api._sync import (
        pull_from_mlflow as pull_from_mlflow,
    )
    from nbmlops.api._sync import (
        push_to_mlflow as push_to_mlflow,
    )
    from nbmlops.api._sync import (
        sync_in_background as sync_in_background,
    )
    from nbmlops.api._sync import (
        sync_status as sync_status,
    )
    from nbmlops.api._timeline import (
        monitor_timeline as monitor_timeline,
    )

# Which module of the API defines each public function.
_MODULES = {
    "active_run": "_runs",
    "alert_events": "_alerts",
    "approve_model": "_reviews",
    "cell_diff": "_cells",
    "cell_history": "_cells",
    "cells_before": "_runs",
    "check_alerts": "_alerts",
    "check_drift": "_drift",
    "check_feature_skew": "_features",
    "check_rules": "_registry",
    "checkout_dataset": "_data",
    "compare_runs": "_cells",
    "consumers": "_registry",
    "data_lineage": "_data",
    "dataset_diff": "_data",
    "dataset_usage": "_data",
    "dataset_versions": "_data",
    "datasets": "_data",
    "delete_model_version": "_registry",
    "deprecate_model_version": "_registry",
    "end_run": "_runs",
    "endpoint_events": "_serving",
    "endpoints": "_serving",
    "entity": "_features",
    "evaluate": "_evaluation",
    "evaluations": "_evaluation",
    "feature_view": "_features",
    "feature_view_versions": "_features",
    "features": "_features",
    "get_dataset": "_data",
    "get_feature_view": "_features",
    "get_model_version": "_registry",
    "get_run": "_runs",
    "get_store": "_runs",
    "lineage": "_cells",
    "load_dataset": "_data",
    "load_model": "_registry",
    "log_artifact": "_runs",
    "log_dataset": "_runs",
    "log_figure": "_runs",
    "log_labels": "_monitoring",
    "log_metric": "_runs",
    "log_metrics": "_runs",
    "log_model": "_runs",
    "log_param": "_runs",
    "log_params": "_runs",
    "materialize": "_features",
    "model_approvals": "_reviews",
    "model_history": "_registry",
    "model_versions": "_registry",
    "models": "_registry",
    "monitor": "_alerts",
    "monitor_drift": "_drift",
    "monitor_timeline": "_timeline",
    "online_features": "_features",
    "predictions": "_serving",
    "production_skew": "_monitoring",
    "promote": "_registry",
    "pull_from_mlflow": "_sync",
    "push_to_mlflow": "_sync",
    "register_model": "_registry",
    "remove_alias": "_registry",
    "rerun": "_reviews",
    "restore_dataset": "_data",
    "review_rules": "_reviews",
    "runs": "_runs",
    "save_dataset": "_data",
    "save_reference": "_drift",
    "serve": "_serving",
    "set_alias": "_registry",
    "set_store": "_runs",
    "set_tag": "_runs",
    "sql": "_runs",
    "start_run": "_runs",
    "sync_in_background": "_sync",
    "sync_status": "_sync",
    "training_set": "_features",
    "who_served": "_registry",
}

__all__ = sorted(_MODULES)


def __getattr__(name: str) -> object:
    """Import the module that defines ``name`` on first access (PEP 562)."""
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'nbmlops.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nbmlops.api.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES))
