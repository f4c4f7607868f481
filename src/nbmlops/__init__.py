"""nbmlops: notebook-first MLOps. Every ``%%track`` cell run is recorded in one local SQLite file.

Use it from a notebook with ``%load_ext nbmlops``, or from any script::

    import nbmlops as nbm
    with nbm.start_run("baseline"):
        nbm.log_param("lr", 0.01)
        nbm.log_metric("auc", 0.91)
    nbm.runs("metrics.auc > 0.9")

This module lists the public API and nothing else: the functions of :mod:`nbmlops.api`, the
panels, the result types they return, the store handle, and every error and warning nbmlops
raises. ``import nbmlops`` stays light (no pandas, numpy, matplotlib, scikit-learn...): the
types whose modules need those are imported on first use (``_LAZY`` below).
"""

import importlib as _importlib
import typing as _typing

from nbmlops._version import __version__
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
    deprecate_model_version,
    end_run,
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
from nbmlops.capture.history import CellDiff
from nbmlops.capture.run import Run
from nbmlops.compare import Comparison
from nbmlops.errors import (
    AlreadyRegisteredWarning,
    AmbiguousIdError,
    ArtifactIntegrityError,
    DeprecatedModelWarning,
    DriftInputError,
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
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    StoreReadOnlyError,
    UnknownKeyWarning,
)
from nbmlops.panels import (
    cell_history_panel,
    compare_panel,
    drift_panel,
    models_panel,
    runs_panel,
)
from nbmlops.provenance import Lineage
from nbmlops.registry.model_version import ModelVersion
from nbmlops.registry.promotion import PromotionDecision
from nbmlops.registry.rule_language import RuleResult
from nbmlops.registry.rules_file import RulesFile
from nbmlops.store import Store, StoreLike

if _typing.TYPE_CHECKING:
    from nbmlops.drift.report import DriftReport

# Public names whose modules import pandas or numpy: imported when first asked for.
_LAZY = {"DriftReport": "nbmlops.drift.report"}

__all__ = [
    "AlreadyRegisteredWarning",
    "AmbiguousIdError",
    "ArtifactIntegrityError",
    "CellDiff",
    "Comparison",
    "DeprecatedModelWarning",
    "DriftInputError",
    "DriftReport",
    "FilterSyntaxError",
    "InvalidValueError",
    "LibraryVersionWarning",
    "Lineage",
    "ModelInUseError",
    "ModelNotFoundError",
    "ModelVersion",
    "NbmlopsError",
    "NbmlopsWarning",
    "NoActiveRunError",
    "NotFittedError",
    "NotFoundError",
    "PromotionDecision",
    "ReadOnlyQueryError",
    "RegistryError",
    "RuleResult",
    "RulesFile",
    "RulesFileError",
    "Run",
    "RunNotFoundError",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreLike",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreReadOnlyError",
    "UnknownKeyWarning",
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
    "deprecate_model_version",
    "drift_panel",
    "end_run",
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


def __getattr__(name: str) -> object:
    """Import the public types of ``_LAZY`` on first access (PEP 562)."""
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
