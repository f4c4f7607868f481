"""nbmlops: notebook-first MLOps. Every ``%%track`` cell run is recorded in one local SQLite file.

Use it from a notebook with ``%load_ext nbmlops``, or from any script::

    import nbmlops as nbm
    with nbm.start_run("baseline"):
        nbm.log_param("lr", 0.01)
        nbm.log_metric("auc", 0.91)
    nbm.runs("metrics.auc > 0.9")

This module lists the public API and nothing else: the functions of :mod:`nbmlops.api`, the
panels, the result types they return, the store handle, and every error and warning nbmlops
raises. ``import nbmlops`` stays light: every name but the errors is imported from its module
when it is first asked for (PEP 562, the table ``_LAZY`` below), so ``nbm.start_run`` loads the
capture of runs and not the registry, and nothing here loads pandas, numpy or matplotlib.
"""

import importlib as _importlib
import typing as _typing

from nbmlops._version import __version__
from nbmlops.errors import (
    AlreadyRegisteredWarning,
    AmbiguousIdError,
    ArtifactIntegrityError,
    DatasetError,
    DatasetNotFoundError,
    DatasetTamperedError,
    DeprecatedModelWarning,
    DriftInputError,
    DuplicateFeatureWarning,
    EntityKeyError,
    EvaluationError,
    FeatureError,
    FilterSyntaxError,
    InvalidValueError,
    LibraryVersionWarning,
    ModelInUseError,
    ModelNotFoundError,
    NbmlopsError,
    NbmlopsWarning,
    NoActiveRunError,
    NotFittedError,
    NotFoundError,
    ReadOnlyQueryError,
    RegistryError,
    RulesFileError,
    RunNotFoundError,
    ServingError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
    SyncError,
    UnknownKeyWarning,
)

if _typing.TYPE_CHECKING:
    from nbmlops.api import (
        active_run as active_run,
    )
    from nbmlops.api import (
        alert_events as alert_events,
    )
    from nbmlops.api import (
        approve_model as approve_model,
    )
    from nbmlops.api import (
        cell_diff as cell_diff,
    )
    from nbmlops.api import (
        cell_history as cell_history,
    )
    from nbmlops.api import (
        cells_before as cells_before,
    )
    from nbmlops.api import (
        check_alerts as check_alerts,
    )
    from nbmlops.api import (
        check_drift as check_drift,
    )
    from nbmlops.api import (
        check_feature_skew as check_feature_skew,
    )
    from nbmlops.api import (
        check_rules as check_rules,
    )
    from nbmlops.api import (
        checkout_dataset as checkout_dataset,
    )
    from nbmlops.api import (
        compare_runs as compare_runs,
    )
    from nbmlops.api import (
        consumers as consumers,
    )
    from nbmlops.api import (
        data_lineage as data_lineage,
    )
    from nbmlops.api import (
        dataset_diff as dataset_diff,
    )
    from nbmlops.api import (
        dataset_usage as dataset_usage,
    )
    from nbmlops.api import (
        dataset_versions as dataset_versions,
    )
    from nbmlops.api import (
        datasets as datasets,
    )
    from nbmlops.api import (
        delete_model_version as delete_model_version,
    )
    from nbmlops.api import (
        deprecate_model_version as deprecate_model_version,
    )
    from nbmlops.api import (
        end_run as end_run,
    )
    from nbmlops.api import (
        endpoint_events as endpoint_events,
    )
    from nbmlops.api import (
        endpoints as endpoints,
    )
    from nbmlops.api import (
        entity as entity,
    )
    from nbmlops.api import (
        evaluate as evaluate,
    )
    from nbmlops.api import (
        evaluations as evaluations,
    )
    from nbmlops.api import (
        feature_view as feature_view,
    )
    from nbmlops.api import (
        feature_view_versions as feature_view_versions,
    )
    from nbmlops.api import (
        features as features,
    )
    from nbmlops.api import (
        get_dataset as get_dataset,
    )
    from nbmlops.api import (
        get_feature_view as get_feature_view,
    )
    from nbmlops.api import (
        get_model_version as get_model_version,
    )
    from nbmlops.api import (
        get_run as get_run,
    )
    from nbmlops.api import (
        get_store as get_store,
    )
    from nbmlops.api import (
        lineage as lineage,
    )
    from nbmlops.api import (
        load_dataset as load_dataset,
    )
    from nbmlops.api import (
        load_model as load_model,
    )
    from nbmlops.api import (
        log_artifact as log_artifact,
    )
    from nbmlops.api import (
        log_dataset as log_dataset,
    )
    from nbmlops.api import (
        log_figure as log_figure,
    )
    from nbmlops.api import (
        log_labels as log_labels,
    )
    from nbmlops.api import (
        log_metric as log_metric,
    )
    from nbmlops.api import (
        log_metrics as log_metrics,
    )
    from nbmlops.api import (
        log_model as log_model,
    )
    from nbmlops.api import (
        log_param as log_param,
    )
    from nbmlops.api import (
        log_params as log_params,
    )
    from nbmlops.api import (
        materialize as materialize,
    )
    from nbmlops.api import (
        model_approvals as model_approvals,
    )
    from nbmlops.api import (
        model_history as model_history,
    )
    from nbmlops.api import (
        model_versions as model_versions,
    )
    from nbmlops.api import (
        models as models,
    )
    from nbmlops.api import (
        monitor as monitor,
    )
    from nbmlops.api import (
        monitor_drift as monitor_drift,
    )
    from nbmlops.api import (
        monitor_timeline as monitor_timeline,
    )
    from nbmlops.api import (
        online_features as online_features,
    )
    from nbmlops.api import (
        predictions as predictions,
    )
    from nbmlops.api import (
        production_skew as production_skew,
    )
    from nbmlops.api import (
        promote as promote,
    )
    from nbmlops.api import (
        pull_from_mlflow as pull_from_mlflow,
    )
    from nbmlops.api import (
        push_to_mlflow as push_to_mlflow,
    )
    from nbmlops.api import (
        register_model as register_model,
    )
    from nbmlops.api import (
        remove_alias as remove_alias,
    )
    from nbmlops.api import (
        rerun as rerun,
    )
    from nbmlops.api import (
        restore_dataset as restore_dataset,
    )
    from nbmlops.api import (
        review_rules as review_rules,
    )
    from nbmlops.api import (
        runs as runs,
    )
    from nbmlops.api import (
        save_dataset as save_dataset,
    )
    from nbmlops.api import (
        save_reference as save_reference,
    )
    from nbmlops.api import (
        serve as serve,
    )
    from nbmlops.api import (
        set_alias as set_alias,
    )
    from nbmlops.api import (
        set_store as set_store,
    )
    from nbmlops.api import (
        set_tag as set_tag,
    )
    from nbmlops.api import (
        sql as sql,
    )
    from nbmlops.api import (
        start_run as start_run,
    )
    from nbmlops.api import (
        sync_in_background as sync_in_background,
    )
    from nbmlops.api import (
        sync_status as sync_status,
    )
    from nbmlops.api import (
        training_set as training_set,
    )
    from nbmlops.api import (
        who_served as who_served,
    )
    from nbmlops.capture.history import (
        CellDiff as CellDiff,
    )
    from nbmlops.capture.run import (
        Run as Run,
    )
    from nbmlops.compare import (
        Comparison as Comparison,
    )
    from nbmlops.data.dataset_version import (
        DatasetVersion as DatasetVersion,
    )
    from nbmlops.data.diff import (
        DatasetDiff as DatasetDiff,
    )
    from nbmlops.data.diff import (
        SchemaChange as SchemaChange,
    )
    from nbmlops.data.files import (
        FileDiff as FileDiff,
    )
    from nbmlops.drift.report import (
        DriftReport as DriftReport,
    )
    from nbmlops.evaluation.result import (
        Evaluation as Evaluation,
    )
    from nbmlops.feature_store.definitions import (
        Entity as Entity,
    )
    from nbmlops.feature_store.definitions import (
        FeatureView as FeatureView,
    )
    from nbmlops.feature_store.online import (
        MaterializeReport as MaterializeReport,
    )
    from nbmlops.feature_store.online import (
        OnlineFeatures as OnlineFeatures,
    )
    from nbmlops.feature_store.skew import (
        SkewReport as SkewReport,
    )
    from nbmlops.monitoring.alerts import AlertsFile as AlertsFile
    from nbmlops.monitoring.drift_windows import ServedDrift as ServedDrift
    from nbmlops.monitoring.labels import LabelsLogged as LabelsLogged
    from nbmlops.monitoring.monitor import AlertOutcome as AlertOutcome
    from nbmlops.monitoring.monitor import MonitorResult as MonitorResult
    from nbmlops.monitoring.retrain import RetrainOutcome as RetrainOutcome
    from nbmlops.monitoring.skew import ProductionSkew as ProductionSkew
    from nbmlops.monitoring.timeline import Timeline as Timeline
    from nbmlops.panels import (
        cell_history_panel as cell_history_panel,
    )
    from nbmlops.panels import (
        compare_panel as compare_panel,
    )
    from nbmlops.panels import (
        datasets_panel as datasets_panel,
    )
    from nbmlops.panels import (
        drift_panel as drift_panel,
    )
    from nbmlops.panels import (
        features_panel as features_panel,
    )
    from nbmlops.panels import (
        models_panel as models_panel,
    )
    from nbmlops.panels import (
        monitor_panel as monitor_panel,
    )
    from nbmlops.panels import (
        runs_panel as runs_panel,
    )
    from nbmlops.provenance import (
        Lineage as Lineage,
    )
    from nbmlops.registry.approvals import (
        Approval as Approval,
    )
    from nbmlops.registry.backtest import (
        RulesReview as RulesReview,
    )
    from nbmlops.registry.model_version import (
        ModelVersion as ModelVersion,
    )
    from nbmlops.registry.promotion import (
        PromotionDecision as PromotionDecision,
    )
    from nbmlops.registry.rule_language import (
        RuleResult as RuleResult,
    )
    from nbmlops.registry.rules_file import (
        RulesFile as RulesFile,
    )
    from nbmlops.reruns import (
        RerunResult as RerunResult,
    )
    from nbmlops.review import (
        ChangesReview as ChangesReview,
    )
    from nbmlops.review import (
        Review as Review,
    )
    from nbmlops.review import (
        review_changes as review_changes,
    )
    from nbmlops.review import (
        review_model as review_model,
    )
    from nbmlops.serving.server import ServerHandle as ServerHandle
    from nbmlops.store import (
        Store as Store,
    )
    from nbmlops.store import (
        StoreLike as StoreLike,
    )
    from nbmlops.sync.background import (
        SyncStatus as SyncStatus,
    )
    from nbmlops.sync.pull import (
        PullReport as PullReport,
    )
    from nbmlops.sync.push import (
        PushReport as PushReport,
    )

# Where each public name is defined; imported on first access.
_LAZY = {
    "AlertOutcome": "nbmlops.monitoring.monitor",
    "AlertsFile": "nbmlops.monitoring.alerts",
    "Approval": "nbmlops.registry.approvals",
    "CellDiff": "nbmlops.capture.history",
    "ChangesReview": "nbmlops.review",
    "Comparison": "nbmlops.compare",
    "DatasetDiff": "nbmlops.data.diff",
    "DatasetVersion": "nbmlops.data.dataset_version",
    "DriftReport": "nbmlops.drift.report",
    "Entity": "nbmlops.feature_store.definitions",
    "Evaluation": "nbmlops.evaluation.result",
    "FeatureView": "nbmlops.feature_store.definitions",
    "FileDiff": "nbmlops.data.files",
    "LabelsLogged": "nbmlops.monitoring.labels",
    "Lineage": "nbmlops.provenance",
    "MaterializeReport": "nbmlops.feature_store.online",
    "ModelVersion": "nbmlops.registry.model_version",
    "MonitorResult": "nbmlops.monitoring.monitor",
    "OnlineFeatures": "nbmlops.feature_store.online",
    "ProductionSkew": "nbmlops.monitoring.skew",
    "PromotionDecision": "nbmlops.registry.promotion",
    "PullReport": "nbmlops.sync.pull",
    "PushReport": "nbmlops.sync.push",
    "RerunResult": "nbmlops.reruns",
    "RetrainOutcome": "nbmlops.monitoring.retrain",
    "Review": "nbmlops.review",
    "RuleResult": "nbmlops.registry.rule_language",
    "RulesFile": "nbmlops.registry.rules_file",
    "RulesReview": "nbmlops.registry.backtest",
    "Run": "nbmlops.capture.run",
    "SchemaChange": "nbmlops.data.diff",
    "ServedDrift": "nbmlops.monitoring.drift_windows",
    "ServerHandle": "nbmlops.serving.server",
    "SkewReport": "nbmlops.feature_store.skew",
    "Store": "nbmlops.store",
    "StoreLike": "nbmlops.store",
    "SyncStatus": "nbmlops.sync.background",
    "Timeline": "nbmlops.monitoring.timeline",
    "active_run": "nbmlops.api",
    "alert_events": "nbmlops.api",
    "approve_model": "nbmlops.api",
    "cell_diff": "nbmlops.api",
    "cell_history": "nbmlops.api",
    "cell_history_panel": "nbmlops.panels",
    "cells_before": "nbmlops.api",
    "check_alerts": "nbmlops.api",
    "check_drift": "nbmlops.api",
    "check_feature_skew": "nbmlops.api",
    "check_rules": "nbmlops.api",
    "checkout_dataset": "nbmlops.api",
    "compare_panel": "nbmlops.panels",
    "compare_runs": "nbmlops.api",
    "consumers": "nbmlops.api",
    "data_lineage": "nbmlops.api",
    "dataset_diff": "nbmlops.api",
    "dataset_usage": "nbmlops.api",
    "dataset_versions": "nbmlops.api",
    "datasets": "nbmlops.api",
    "datasets_panel": "nbmlops.panels",
    "delete_model_version": "nbmlops.api",
    "deprecate_model_version": "nbmlops.api",
    "drift_panel": "nbmlops.panels",
    "end_run": "nbmlops.api",
    "endpoint_events": "nbmlops.api",
    "endpoints": "nbmlops.api",
    "entity": "nbmlops.api",
    "evaluate": "nbmlops.api",
    "evaluations": "nbmlops.api",
    "feature_view": "nbmlops.api",
    "feature_view_versions": "nbmlops.api",
    "features": "nbmlops.api",
    "features_panel": "nbmlops.panels",
    "get_dataset": "nbmlops.api",
    "get_feature_view": "nbmlops.api",
    "get_model_version": "nbmlops.api",
    "get_run": "nbmlops.api",
    "get_store": "nbmlops.api",
    "lineage": "nbmlops.api",
    "load_dataset": "nbmlops.api",
    "load_model": "nbmlops.api",
    "log_artifact": "nbmlops.api",
    "log_dataset": "nbmlops.api",
    "log_figure": "nbmlops.api",
    "log_labels": "nbmlops.api",
    "log_metric": "nbmlops.api",
    "log_metrics": "nbmlops.api",
    "log_model": "nbmlops.api",
    "log_param": "nbmlops.api",
    "log_params": "nbmlops.api",
    "materialize": "nbmlops.api",
    "model_approvals": "nbmlops.api",
    "model_history": "nbmlops.api",
    "model_versions": "nbmlops.api",
    "models": "nbmlops.api",
    "models_panel": "nbmlops.panels",
    "monitor": "nbmlops.api",
    "monitor_drift": "nbmlops.api",
    "monitor_panel": "nbmlops.panels",
    "monitor_timeline": "nbmlops.api",
    "online_features": "nbmlops.api",
    "predictions": "nbmlops.api",
    "production_skew": "nbmlops.api",
    "promote": "nbmlops.api",
    "pull_from_mlflow": "nbmlops.api",
    "push_to_mlflow": "nbmlops.api",
    "register_model": "nbmlops.api",
    "remove_alias": "nbmlops.api",
    "rerun": "nbmlops.api",
    "restore_dataset": "nbmlops.api",
    "review_changes": "nbmlops.review",
    "review_model": "nbmlops.review",
    "review_rules": "nbmlops.api",
    "runs": "nbmlops.api",
    "runs_panel": "nbmlops.panels",
    "save_dataset": "nbmlops.api",
    "save_reference": "nbmlops.api",
    "serve": "nbmlops.api",
    "set_alias": "nbmlops.api",
    "set_store": "nbmlops.api",
    "set_tag": "nbmlops.api",
    "sql": "nbmlops.api",
    "start_run": "nbmlops.api",
    "sync_in_background": "nbmlops.api",
    "sync_status": "nbmlops.api",
    "training_set": "nbmlops.api",
    "who_served": "nbmlops.api",
}

__all__ = [
    "AlertOutcome",
    "AlertsFile",
    "AlreadyRegisteredWarning",
    "AmbiguousIdError",
    "Approval",
    "ArtifactIntegrityError",
    "CellDiff",
    "ChangesReview",
    "Comparison",
    "DatasetDiff",
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetTamperedError",
    "DatasetVersion",
    "DeprecatedModelWarning",
    "DriftInputError",
    "DriftReport",
    "DuplicateFeatureWarning",
    "Entity",
    "EntityKeyError",
    "Evaluation",
    "EvaluationError",
    "FeatureError",
    "FeatureView",
    "FileDiff",
    "FilterSyntaxError",
    "InvalidValueError",
    "LabelsLogged",
    "LibraryVersionWarning",
    "Lineage",
    "MaterializeReport",
    "ModelInUseError",
    "ModelNotFoundError",
    "ModelVersion",
    "MonitorResult",
    "NbmlopsError",
    "NbmlopsWarning",
    "NoActiveRunError",
    "NotFittedError",
    "NotFoundError",
    "OnlineFeatures",
    "ProductionSkew",
    "PromotionDecision",
    "PullReport",
    "PushReport",
    "ReadOnlyQueryError",
    "RegistryError",
    "RerunResult",
    "RetrainOutcome",
    "Review",
    "RuleResult",
    "RulesFile",
    "RulesFileError",
    "RulesReview",
    "Run",
    "RunNotFoundError",
    "SchemaChange",
    "ServedDrift",
    "ServerHandle",
    "ServingError",
    "SkewReport",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreLike",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "SyncError",
    "SyncStatus",
    "Timeline",
    "UnknownKeyWarning",
    "__version__",
    "active_run",
    "alert_events",
    "approve_model",
    "cell_diff",
    "cell_history",
    "cell_history_panel",
    "cells_before",
    "check_alerts",
    "check_drift",
    "check_feature_skew",
    "check_rules",
    "checkout_dataset",
    "compare_panel",
    "compare_runs",
    "consumers",
    "data_lineage",
    "dataset_diff",
    "dataset_usage",
    "dataset_versions",
    "datasets",
    "datasets_panel",
    "delete_model_version",
    "deprecate_model_version",
    "drift_panel",
    "end_run",
    "endpoint_events",
    "endpoints",
    "entity",
    "evaluate",
    "evaluations",
    "feature_view",
    "feature_view_versions",
    "features",
    "features_panel",
    "get_dataset",
    "get_feature_view",
    "get_model_version",
    "get_run",
    "get_store",
    "lineage",
    "load_dataset",
    "load_ipython_extension",
    "load_model",
    "log_artifact",
    "log_dataset",
    "log_figure",
    "log_labels",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "materialize",
    "model_approvals",
    "model_history",
    "model_versions",
    "models",
    "models_panel",
    "monitor",
    "monitor_drift",
    "monitor_panel",
    "monitor_timeline",
    "online_features",
    "predictions",
    "production_skew",
    "promote",
    "pull_from_mlflow",
    "push_to_mlflow",
    "register_model",
    "remove_alias",
    "rerun",
    "restore_dataset",
    "review_changes",
    "review_model",
    "review_rules",
    "runs",
    "runs_panel",
    "save_dataset",
    "save_reference",
    "serve",
    "set_alias",
    "set_store",
    "set_tag",
    "sql",
    "start_run",
    "sync_in_background",
    "sync_status",
    "training_set",
    "unload_ipython_extension",
    "who_served",
]


def __getattr__(name: str) -> object:
    """Import the module that defines ``name`` on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'nbmlops' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def load_ipython_extension(shell: object) -> None:
    """``%load_ext nbmlops``: register ``%%track``, ``%nbmlops`` and the cell-history hooks."""
    from nbmlops import magics  # imports IPython: kept out of import nbmlops

    magics.load(shell)


def unload_ipython_extension(shell: object) -> None:
    """``%unload_ext nbmlops``: remove what :func:`load_ipython_extension` registered."""
    from nbmlops import magics  # imports IPython: kept out of import nbmlops

    magics.unload(shell)
