"""The task a model solves and its standard metrics, computed with ``sklearn.metrics``.

Task (``task=`` overrides): a classifier by scikit-learn's own test (``is_classifier``, which
XGBoost's and LightGBM's scikit-learn wrappers pass) or an ``_estimator_type`` of
``"classifier"``, or a model with ``predict_proba``; a regressor likewise; otherwise by the
target: booleans, categories and text, or integers with at most :data:`MAX_CLASSES` distinct
values (and fewer than half as many as rows), are classes; anything else is a regression.

Metrics, named as they are recorded:

- classification: ``accuracy``; ``f1`` (binary: of the positive class, the second of the model's
  ``classes_`` or of the sorted labels; multiclass: macro average, the report says which);
  ``roc_auc`` and ``log_loss`` when the model has ``predict_proba`` (one-vs-rest macro ROC AUC
  for more than two classes); the confusion matrix goes to the report, not to the metrics.
- regression: ``mae``, ``rmse``, ``r2``.

``metrics=`` picks a subset by name or adds callables ``f(y_true, y_pred) -> float``, named by
their ``__name__`` (or by the key of a mapping).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nbmlops.errors import EvaluationError

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)
MAX_CLASSES = 20
"""Integer targets with at most this many distinct values are classes (when no model says)."""

STANDARD = {
    CLASSIFICATION: ("accuracy", "f1", "roc_auc", "log_loss"),
    REGRESSION: ("mae", "rmse", "r2"),
}

MetricSpec = str | Callable[[Any, Any], float]
Metrics = Sequence[MetricSpec] | Mapping[str, MetricSpec] | None


def infer_task(model: object, y: Any, task: str | None = None) -> str:
    """``classification`` or ``regression``: ``task`` when given, else the model's kind, else
    the target's (see the module docstring)."""
    if task is not None:
        if task not in TASKS:
            raise EvaluationError(
                f"task={task!r} is not a task nbmlops evaluates; use 'classification' or "
                "'regression' (or leave it out to infer it from the model and the target).",
                value=task,
            )
        return task
    kind = _model_kind(model)
    if kind is not None:
        return kind
    return _target_kind(y)


def _model_kind(model: object) -> str | None:
    from sklearn.base import is_classifier, is_regressor

    try:
        if is_classifier(model):
            return CLASSIFICATION
        if is_regressor(model):
            return REGRESSION
    except Exception:  # a model sklearn's tag machinery cannot read: judged by its attributes
        pass
    declared = getattr(model, "_estimator_type", None)
    if declared == "classifier":
        return CLASSIFICATION
    if declared == "regressor":
        return REGRESSION
    return CLASSIFICATION if callable(getattr(model, "predict_proba", None)) else None


def _target_kind(y: Any) -> str:
    import numpy as np
    import pandas as pd

    series = pd.Series(np.asarray(y).ravel()) if not isinstance(y, pd.Series) else y
    dtype = series.dtype
    if (
        pd.api.types.is_bool_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
    ):
        return CLASSIFICATION
    if pd.api.types.is_integer_dtype(dtype):
        distinct = series.nunique(dropna=True)
        if distinct <= MAX_CLASSES and distinct * 2 <= len(series):
            return CLASSIFICATION
    return REGRESSION


def compute(
    model: Any, X: Any, y: Any, y_pred: Any, task: str, metrics: Metrics = None
) -> tuple[dict[str, float], dict[str, Any]]:
    """The metrics of ``y_pred`` against ``y`` (``{name: value}``) and what goes to the report
    beside them (the confusion matrix and its labels, which F1 average, metrics left out)."""
    import numpy as np

    wanted = _wanted(task, metrics)
    values: dict[str, float] = {}
    report: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    y_true = np.asarray(y).ravel()
    y_hat = np.asarray(y_pred)
    if task == CLASSIFICATION:
        y_hat = y_hat.ravel()
        builtin = _classification(model, X, y_true, y_hat, wanted, report, skipped)
    else:
        y_hat = y_hat.astype("float64").ravel()
        builtin = _regression(y_true, y_hat, wanted)
    for name, spec in wanted.items():
        if name in builtin:
            values[name] = builtin[name]
        elif callable(spec):
            try:
                values[name] = float(spec(y_true, y_hat))
            except Exception as exc:
                raise EvaluationError(
                    f"Metric {name!r} failed on this evaluation set: {type(exc).__name__}: {exc}",
                    value=name,
                ) from exc
    if skipped:
        report["skipped"] = skipped
    return values, report


def _wanted(task: str, metrics: Metrics) -> dict[str, MetricSpec]:
    standard = STANDARD[task]
    if metrics is None:
        return {name: name for name in standard}
    items: list[tuple[str, MetricSpec]]
    if isinstance(metrics, Mapping):
        items = [(str(k), v) for k, v in metrics.items()]
    elif isinstance(metrics, str):
        items = [(metrics, metrics)]
    else:
        items = [(m if isinstance(m, str) else _callable_name(m), m) for m in metrics]
    for name, spec in items:
        if isinstance(spec, str) and spec not in standard:
            raise EvaluationError(
                f"Metric {spec!r} is not a standard {task} metric; choose from "
                f"{', '.join(standard)}, or pass a callable f(y_true, y_pred).",
                value=spec,
            )
        if not isinstance(spec, str) and not callable(spec):
            raise EvaluationError(
                f"Metric {name!r} is a {type(spec).__name__}; give a metric name or a callable "
                "f(y_true, y_pred) -> float.",
                value=spec,
            )
    return dict(items)


def _callable_name(metric: Any) -> str:
    return str(getattr(metric, "__name__", type(metric).__name__))


def _classification(
    model: Any,
    X: Any,
    y_true: Any,
    y_hat: Any,
    wanted: Mapping[str, MetricSpec],
    report: dict[str, Any],
    skipped: dict[str, str],
) -> dict[str, float]:
    import numpy as np
    from sklearn import metrics as skm

    classes = getattr(model, "classes_", None)
    labels = list(classes) if classes is not None else sorted(set(y_true) | set(y_hat), key=str)
    binary = len(labels) <= 2
    out: dict[str, float] = {}
    if "accuracy" in wanted:
        out["accuracy"] = float(skm.accuracy_score(y_true, y_hat))
    if "f1" in wanted:
        if binary:
            positive = labels[-1]
            out["f1"] = float(skm.f1_score(y_true, y_hat, pos_label=positive, zero_division=0))
            report["f1_average"] = f"binary (positive class {positive!r})"
        else:
            out["f1"] = float(skm.f1_score(y_true, y_hat, average="macro", zero_division=0))
            report["f1_average"] = "macro"
    matrix = skm.confusion_matrix(y_true, y_hat, labels=labels)
    report["confusion_matrix"] = {"labels": [_plain(v) for v in labels], "matrix": matrix.tolist()}
    needs_proba = [m for m in ("roc_auc", "log_loss") if m in wanted]
    if not needs_proba:
        return out
    if not callable(getattr(model, "predict_proba", None)):
        skipped.update(dict.fromkeys(needs_proba, "the model has no predict_proba"))
        return out
    proba = np.asarray(model.predict_proba(X))
    unknown = set(y_true) - set(labels)
    if unknown:
        shown = ", ".join(repr(_plain(v)) for v in sorted(unknown, key=str)[:5])
        skipped.update(dict.fromkeys(needs_proba, f"labels the model never saw: {shown}"))
        return out
    if "log_loss" in wanted:
        out["log_loss"] = float(skm.log_loss(y_true, proba, labels=labels))
    if "roc_auc" in wanted:
        if len(set(y_true)) < 2:
            skipped["roc_auc"] = "the evaluation set has one class only"
        elif binary:
            out["roc_auc"] = float(skm.roc_auc_score(y_true == labels[-1], proba[:, -1]))
        else:
            out["roc_auc"] = float(
                skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=labels)
            )
            report["roc_auc_average"] = "one-vs-rest, macro"
    return out


def _regression(y_true: Any, y_hat: Any, wanted: Mapping[str, MetricSpec]) -> dict[str, float]:
    from sklearn import metrics as skm

    out: dict[str, float] = {}
    if "mae" in wanted:
        out["mae"] = float(skm.mean_absolute_error(y_true, y_hat))
    if "rmse" in wanted:
        out["rmse"] = math.sqrt(float(skm.mean_squared_error(y_true, y_hat)))
    if "r2" in wanted:
        out["r2"] = float(skm.r2_score(y_true, y_hat))
    return out


def _plain(value: Any) -> Any:
    """A numpy scalar label as the Python value JSON can hold."""
    return value.item() if hasattr(value, "item") else value
