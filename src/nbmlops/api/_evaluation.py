"""Evaluation on unseen data's front door (issue #21).

    ev = nbm.evaluate("wine@candidate", X_test, y_test)   # metrics + unseen + comparable
    print(ev)                                              # one line, with the badge
    nbm.evaluations("wine/2")                              # every evaluation of a version

A ``%%track`` cell that scores a fitted model on data it did not train on is evaluated the same
way with no call; promotion rules read the latest evaluation (``evaluation.unseen``, ...).
"""

from __future__ import annotations

from typing import Any

from nbmlops.evaluation import evaluate as _evaluate
from nbmlops.evaluation.evaluate import DEFAULT_MAX_OVERLAP
from nbmlops.evaluation.metrics import Metrics
from nbmlops.evaluation.result import Evaluation
from nbmlops.store import StoreLike, open_store


def evaluate(
    model_or_ref: object,
    X_test: Any,
    y_test: Any,
    *,
    task: str | None = None,
    metrics: Metrics = None,
    train: object = None,
    max_overlap: int = DEFAULT_MAX_OVERLAP,
    store: StoreLike = None,
) -> Evaluation:
    """Evaluate a model on ``X_test``/``y_test`` and prove the data unseen and comparable.

    ``model_or_ref``: a registered version (``"wine/2"``, ``"wine@champion"``, a ModelVersion)
    or a fitted model (a model a tracked cell trained is matched to its run). Computes the
    task's standard metrics (``task``: ``"classification"`` or ``"regression"``, inferred by
    default; ``metrics=`` a subset or extra callables); counts the evaluation rows found in the
    training data (with and without the target: more than ``max_overlap`` makes it *leaky*);
    checks columns, dtypes, feature and label drift against the training profile (*not
    comparable*, naming the columns). ``train=(X_train, y_train)`` gives the training data when
    nothing recorded it (else the evaluation is *unchecked*). Recorded on the active run and on
    the model version; returns the Evaluation (``print`` it, ``.plot()``)."""
    return _evaluate.evaluate(
        open_store(store),
        model_or_ref,
        X_test,
        y_test,
        task=task,
        metrics=metrics,
        train=train,
        max_overlap=max_overlap,
    )


def evaluations(ref: str, *, store: StoreLike = None) -> list[Evaluation]:
    """Every evaluation of model version ``ref``, oldest first (also those made before it was
    registered, of the run that trained it)."""
    return _evaluate.evaluations_of(open_store(store, create=False), ref)
