"""``evaluate``: a model's metrics on a dataset, with the unseen and comparability checks, recorded.

Recorded in ``evaluations`` (name and version when the model is a registered version, or was
registered from the artifact evaluated; the run that trained it; the fingerprints of X and y and
the saved dataset version X is, if any). When a run is active in the same store the evaluation
is recorded on it and its metrics are logged there under their plain names (``mae``), or as
``eval.mae`` when the run already has a metric of that name with another value (a cell that
computed its own ``mae`` keeps it; the same value is not logged twice). Status: ``leaky``
before ``not_comparable`` before ``unchecked``; ``unseen`` only when both checks ran and passed.
"""

from __future__ import annotations

from typing import Any

from nbmlops.capture.run import active_run
from nbmlops.errors import EvaluationError
from nbmlops.evaluation import checks
from nbmlops.evaluation.metrics import Metrics, compute, infer_task
from nbmlops.evaluation.result import Evaluation
from nbmlops.fingerprint import fingerprint
from nbmlops.registry.loading import load_version
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.store import Store
from nbmlops.store import datasets as dataset_sql
from nbmlops.store import evaluations as evaluation_sql
from nbmlops.store import registry as registry_sql

DEFAULT_MAX_OVERLAP = 0
"""Evaluation rows allowed to be training rows (by their features) before the set is leaky."""


def evaluate(
    store: Store,
    model: object,
    X: Any,
    y: Any,
    *,
    model_ref: str | None = None,
    task: str | None = None,
    metrics: Metrics = None,
    source: str | None = None,
    train: object = None,
    max_overlap: int = DEFAULT_MAX_OVERLAP,
) -> Evaluation:
    """Evaluate ``model`` (a fitted model, a registered version's reference such as
    ``"wine@champion"``, or a :class:`ModelVersion`) on ``X`` and ``y``, check that the data is
    unseen and comparable (:mod:`nbmlops.evaluation.checks`), record the evaluation and return
    it. ``model_ref`` names the version a live ``model`` is; ``train=(X_train, y_train)`` gives
    the training data when no record does; ``source`` says what asked (a cell's line)."""
    version, model = _model(store, model, model_ref)
    X, y = _array_if_list(X), _array_if_list(y)
    _check_inputs(model, X, y, max_overlap)
    model_run_id = None if version is None else version.run_id
    model_sha256 = _source_sha256(store, version)
    if version is None:
        model_sha256 = checks.artifact_sha256(model)
        model_run_id, version = checks.model_run(store, model, model_sha256)
    training = checks.training_of(store, model, version, model_run_id, train)
    task = infer_task(model, y, task)
    features = _model_input(model, X)
    try:
        predicted = model.predict(features)  # type: ignore[attr-defined]
    except Exception as exc:
        raise EvaluationError(
            f"{_name(model, version)}.predict failed on X ({len(X)} rows): "
            f"{type(exc).__name__}: {exc}",
            value=X,
        ) from exc
    try:
        values, metric_report = compute(model, features, y, predicted, task, metrics)
    except EvaluationError:
        raise
    except ValueError as exc:  # scikit-learn's checks of y (NaN, an unseen label, ...)
        raise EvaluationError(
            f"The {task} metrics of {_name(model, version)} could not be computed on y "
            f"({len(y)} values): {exc}",
            value=y,
        ) from exc
    # Which model of its run this is: a run that logged two models has evaluations of each.
    report: dict[str, Any] = {
        "metrics": metric_report,
        "source": source,
        "model_sha256": model_sha256,
    }
    unseen: bool | None = None
    comparable: bool | None = None
    failing: list[str] = []
    notes: list[str] = []
    if training is None:
        notes.append(
            "training data unknown: no record names the run that trained this model; "
            "register it, log it in the training run, or pass train=(X_train, y_train)"
        )
    else:
        seen = checks.unseen_check(store, training, X, y, max_overlap)
        same = checks.comparable_check(store, training, X, y)
        unseen, comparable, failing = seen["unseen"], same["comparable"], same["failing"]
        notes += [n for n in (seen["note"], same["drift"].get("note")) if n]
        if not same["label_drift"]["checked"]:
            notes.append(same["label_drift"]["note"])
        report.update(
            overlap=seen["overlap"],
            columns=same["columns"],
            drift=same["drift"],
            label_drift=same["label_drift"],
            training=training.to_dict(),
        )
    report.update(
        failing_columns=failing,
        note="; ".join(notes),
        thresholds={
            "max_overlap": max_overlap,
            "drift": "per-column default detectors of nbmlops.drift, test thresholds "
            f"{checks.MULTIPLE_TESTING}-corrected over the features",
            "label_drift": "the default detector of nbmlops.drift for the target",
        },
    )
    status = _status(unseen, comparable)
    dataset_id, target_id = _digest(X), _digest(y)
    if dataset_id is None:
        raise EvaluationError(
            f"X (a {type(X).__name__}) cannot be fingerprinted, so its evaluation could not be "
            "found again; give a DataFrame or a numeric array.",
            value=X,
        )
    run = active_run()
    run = run if run is not None and run.store.home == store.home else None
    dataset_ref = _dataset_ref(store, dataset_id)
    row = {
        "run_id": None if run is None else run.run_id,
        "name": None if version is None else version.name,
        "version": None if version is None else version.version,
        "model_run_id": model_run_id,
        "task": task,
        "dataset_id": dataset_id,
        "target_id": target_id,
        "dataset_ref": dataset_ref,
        "n_rows": len(X),
        "metrics": values,
        "status": status,
        "unseen": unseen,
        "comparable": comparable,
        "report": report,
    }
    if run is not None:
        logged = run.metrics
        run.log_metrics(
            {
                (f"eval.{k}" if k in logged else k): v
                for k, v in values.items()
                if not (k in logged and logged[k] == v)  # the cell's own, computed the same
            }
        )
    evaluation_id = evaluation_sql.add_evaluation(store, row)
    stored = evaluation_sql.evaluation(store, evaluation_id)
    assert stored is not None
    return Evaluation.from_row(stored)


def evaluations_of(store: Store, ref: str | ModelVersion) -> list[Evaluation]:
    """The evaluations of a model version, oldest first: those naming it and those of the run
    that trained it (made before it was registered)."""
    version = ref if isinstance(ref, ModelVersion) else resolve(store, ref)
    rows = evaluation_sql.evaluations_of_version(
        store, version.name, version.version, version.run_id
    )
    return [Evaluation.from_row(r) for r in rows]


def _model(
    store: Store, model: object, model_ref: str | None
) -> tuple[ModelVersion | None, object]:
    if isinstance(model, str):
        model = resolve(store, model)
    if isinstance(model, ModelVersion):
        # Not a consumer: an evaluation must not keep a version from being deleted.
        return model, load_version(model, record=False)
    return (None if model_ref is None else resolve(store, model_ref)), model


def _source_sha256(store: Store, version: ModelVersion | None) -> str | None:
    """The sha256 of the artifact ``version`` was registered from (its run's logged bytes)."""
    if version is None:
        return None
    payload = registry_sql.registration_payload(store, version.name, version.version)
    source = payload.get("source")
    return str(source["sha256"]) if isinstance(source, dict) and "sha256" in source else None


def _check_inputs(model: object, X: Any, y: Any, max_overlap: int) -> None:
    if isinstance(max_overlap, bool) or not isinstance(max_overlap, int) or max_overlap < 0:
        raise EvaluationError(
            f"max_overlap={max_overlap!r}: give the number of evaluation rows that may have been "
            "trained on, 0 or more (0: any is too many).",
            value=max_overlap,
        )
    if not callable(getattr(model, "predict", None)):
        raise EvaluationError(
            f"A {type(model).__name__} has no predict method, so it cannot be evaluated; pass "
            "a fitted model or a registered version's reference ('name@alias', 'name/3').",
            value=model,
        )
    for name, data in (("X", X), ("y", y)):
        if not hasattr(data, "__len__") or isinstance(data, str | bytes):
            raise EvaluationError(
                f"{name} is a {type(data).__name__}; give a DataFrame, Series or array.",
                value=data,
            )
    if len(X) != len(y):
        raise EvaluationError(
            f"X has {len(X)} rows and y {len(y)}; give a target for each row of X.",
            value=(len(X), len(y)),
        )
    if len(X) == 0:
        raise EvaluationError("X has no rows: there is nothing to evaluate.", value=X)


def _model_input(model: object, X: Any) -> Any:
    """X as the model was fitted: its ``feature_names_in_`` columns in that order, so that an
    extra column is reported (not comparable) rather than refused by scikit-learn's check."""
    names = getattr(model, "feature_names_in_", None)
    columns = getattr(X, "columns", None)
    if names is None or columns is None:
        return X
    missing = [str(n) for n in names if n not in set(columns)]
    if missing:
        raise EvaluationError(
            f"X lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} the "
            f"model was trained on; X has {', '.join(map(str, columns))}.",
            value=missing,
        )
    return X[list(names)]


def _status(unseen: bool | None, comparable: bool | None) -> str:
    if unseen is False:
        return "leaky"
    if comparable is False:
        return "not_comparable"
    if unseen is None or comparable is None:
        return "unchecked"
    return "unseen"


def _dataset_ref(store: Store, dataset_id: str) -> str | None:
    versions = dataset_sql.versions_with_fingerprints(store, [dataset_id]).get(dataset_id)
    if not versions:
        return None
    first = versions[0]
    return f"{first['name']}@{first['version']}"


def _digest(data: Any) -> str | None:
    try:
        return fingerprint(data).digest
    except TypeError:
        return None


def _array_if_list(data: Any) -> Any:
    if isinstance(data, list | tuple):
        import numpy as np

        return np.asarray(data)
    return data


def _name(model: object, version: ModelVersion | None) -> str:
    return version.ref if version is not None else type(model).__name__
