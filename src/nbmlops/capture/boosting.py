"""What a ``%%track`` cell records of XGBoost, LightGBM and statsmodels, with no logging code.

scikit-learn wrappers (``XGBClassifier``, ``LGBMRegressor``...)
    They are scikit-learn estimators, so :mod:`nbmlops.capture.estimators` already records their
    non-default params and the cell logs the fitted model. Added here, read from the fitted
    object after the cell: ``best_iteration`` (when early stopping set one, as the library counts:
    XGBoost from 0, LightGBM from 1), each eval-set metric per iteration as a step metric
    ``<set>-<metric>`` (``validation_0-logloss``, the names the libraries print and MLflow's
    autolog uses) from ``evals_result()`` / ``evals_result_``, and the feature importances as an
    artifact ``<model>.feature_importances.json``.

Native ``xgboost.train(...)`` and ``lightgbm.train(...)``
    The params dict (``xgboost.train.<key>``), ``num_boost_round`` and the eval history come from
    the call itself: a Booster keeps no per-iteration history (XGBoost fills only a dict the
    caller passes as ``evals_result=``; LightGBM only through a ``record_evaluation``
    callback). So for the duration of the cell, and for calls made on the cell's thread only,
    :class:`TrainingWatch` puts a thin wrapper in place of the module's ``train`` (restored right
    after the cell). The wrapper reads the arguments and, only when the user asked for
    evaluation (``evals=`` / ``valid_sets=``) without collecting its history, collects it:
    XGBoost gets an ``evals_result`` dict (XGBoost fills it from the history its training loop
    keeps anyway), LightGBM one more ``record_evaluation`` callback appended to a copy of the
    user's list (it only reads the evaluation LightGBM computes for every valid set each
    round). Neither changes what is trained: tests/test_capture_boosting.py checks the
    predictions are identical with and without ``%%track``. The library is imported before the
    cell only when it is already imported or the cell imports it; a ``train`` bound by
    ``from xgboost import train`` before the cell is not seen (its params and model still are:
    the returned Booster is logged as a model).

statsmodels results (``res = smf.ols(...).fit()``)
    Coefficients are results, not settings: metrics ``coef.<name>``, with ``aic``, ``bic``,
    ``rsquared``, ``rsquared_adj`` (``prsquared`` for discrete models) under statsmodels' own
    names; the ``summary()`` text as the artifact ``<name>.summary.txt``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import math
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nbmlops._jsonable import jsonable

__all__ = [
    "TrainCall",
    "TrainingWatch",
    "best_iteration",
    "eval_history",
    "feature_importances",
    "importances_json",
    "is_booster",
    "is_boosting_wrapper",
    "is_statsmodels_results",
    "statsmodels_metrics",
    "step_metrics",
    "train_params",
]

_LIBRARIES = ("xgboost", "lightgbm")


@dataclass
class TrainCall:
    """One ``<library>.train(...)`` call the cell made: what it was given and returned."""

    library: str
    params: dict[str, object]
    num_boost_round: int
    history: Mapping[str, Mapping[str, Any]]
    booster: Any


class TrainingWatch:
    """Wrappers around ``xgboost.train`` / ``lightgbm.train`` for one cell (module docstring)."""

    def __init__(self) -> None:
        self.calls: list[TrainCall] = []
        self._thread = threading.get_ident()
        self._installed: list[tuple[Any, Callable[..., Any], Callable[..., Any]]] = []

    def start(self, source: str) -> None:
        """Wrap ``train`` of each library that is imported or that ``source`` imports."""
        for library in _LIBRARIES:
            module: Any = sys.modules.get(library)
            if module is None and re.search(rf"\b(import|from)\s+{library}\b", source):
                module = importlib.import_module(library)  # the cell imports it anyway
            original = getattr(module, "train", None)
            if module is None or not callable(original) or hasattr(original, "__nbmlops__"):
                continue
            wrapper = self._wrap(library, module, original)
            module.train = wrapper
            self._installed.append((module, original, wrapper))

    def trains(self, source: str) -> bool:
        """Whether a watched library is imported and ``source`` calls a ``train`` function."""
        return bool(self._installed) and ".train(" in source

    def stop(self) -> None:
        """Put each library's own ``train`` back (unless someone replaced ours meanwhile)."""
        for module, original, wrapper in self._installed:
            if getattr(module, "train", None) is wrapper:
                module.train = original
        self._installed = []

    def _wrap(self, library: str, module: Any, original: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(original)

        @functools.wraps(original)
        def train(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self._thread:
                return original(*args, **kwargs)
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return original(*args, **kwargs)  # the library raises its own error
            given = dict(bound.arguments)
            params = dict(given.get("params") or {})
            rounds = given.get("num_boost_round", signature.parameters["num_boost_round"].default)
            history: dict[str, Any] | None = {}
            if library == "xgboost":
                history = given.get("evals_result")
                if history is None and given.get("evals"):
                    history = bound.arguments["evals_result"] = {}
            elif given.get("valid_sets"):
                callbacks = list(given.get("callbacks") or [])
                bound.arguments["callbacks"] = [*callbacks, module.record_evaluation(history)]
            booster = original(*bound.args, **bound.kwargs)
            self.calls.append(TrainCall(library, params, rounds, history or {}, booster))
            return booster

        train.__nbmlops__ = True  # type: ignore[attr-defined]
        return train


def _module_of(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


def is_booster(obj: object) -> bool:
    """An XGBoost or LightGBM ``Booster`` (a native ``train`` result)."""
    library = _module_of(obj)
    module = sys.modules.get(library) if library in _LIBRARIES else None
    return module is not None and isinstance(obj, module.Booster)


def is_boosting_wrapper(obj: object) -> bool:
    """An XGBoost or LightGBM scikit-learn wrapper (``XGBModel`` / ``LGBMModel``)."""
    library = _module_of(obj)
    module = sys.modules.get(library) if library in _LIBRARIES else None
    base = None
    if module is not None:
        base = module.XGBModel if library == "xgboost" else module.LGBMModel
    return base is not None and isinstance(obj, base)


def best_iteration(model: Any) -> int | None:
    """The iteration early stopping kept, as the library counts it; None without early stopping."""
    if _module_of(model) == "xgboost":
        booster = model if is_booster(model) else model.get_booster()
        value = booster.attr("best_iteration")
        return None if value is None else int(value)
    value = model.best_iteration if is_booster(model) else model.best_iteration_
    return int(value) if value else None  # LightGBM's 0: no early stopping


def eval_history(model: Any) -> Mapping[str, Mapping[str, Any]]:
    """A fitted wrapper's per-iteration eval metrics, ``{set: {metric: [values]}}``."""
    if _module_of(model) == "xgboost":
        try:
            history: Mapping[str, Mapping[str, Any]] = model.evals_result()
        except Exception:  # XGBoostError: fitted without eval_set
            return {}
        return history
    return getattr(model, "evals_result_", None) or {}


def step_metrics(
    history: Mapping[str, Mapping[str, Any]],
) -> Iterator[tuple[str, int, float]]:
    """``(<set>-<metric>, iteration, value)`` for each number in an eval history."""
    for dataset, metrics in history.items():
        for metric, values in metrics.items():
            for step, value in enumerate(values):
                if isinstance(value, int | float) or type(value).__module__ == "numpy":
                    yield f"{dataset}-{metric}", step, float(value)


def feature_importances(model: Any) -> dict[str, object] | None:
    """The model's feature importances with the kind the library computed, or None."""
    if is_booster(model):
        if _module_of(model) == "xgboost":
            return {"importance_type": "gain", "features": model.get_score(importance_type="gain")}
        names = model.feature_name()
        gains = model.feature_importance(importance_type="gain")
        return {
            "importance_type": "gain",
            "features": dict(zip(names, gains.tolist(), strict=True)),
        }
    values = getattr(model, "feature_importances_", None)
    if values is None:
        return None
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else [f"f{i}" for i in range(len(values))]
    kind = getattr(model, "importance_type", None) or "default"
    return {"importance_type": kind, "features": dict(zip(names, values.tolist(), strict=True))}


def train_params(call: TrainCall) -> dict[str, object]:
    """``<library>.train.<key>`` for each key of the params dict, and ``num_boost_round``."""
    prefix = f"{call.library}.train."
    out = {prefix + str(key): jsonable(value) for key, value in call.params.items()}
    out[prefix + "num_boost_round"] = call.num_boost_round
    return out


def is_statsmodels_results(obj: object) -> bool:
    """A fitted statsmodels results object (what ``model.fit()`` returns)."""
    return (
        _module_of(obj) == "statsmodels"
        and "statsmodels" in sys.modules
        and hasattr(obj, "params")
        and callable(getattr(obj, "summary", None))
    )


_STATSMODELS_METRICS = ("aic", "bic", "rsquared", "rsquared_adj", "prsquared")


def statsmodels_metrics(results: Any) -> dict[str, float]:
    """``coef.<name>`` per parameter and the fit statistics the results object has."""
    params = results.params
    names = getattr(params, "index", None)
    values = params.tolist() if hasattr(params, "tolist") else list(params)
    if names is None:
        names = getattr(results.model, "exog_names", None) or [f"x{i}" for i in range(len(values))]
    out = {f"coef.{name}": float(value) for name, value in zip(names, values, strict=True)}
    for attribute in _STATSMODELS_METRICS:
        try:
            value = getattr(results, attribute)
        except Exception:  # statsmodels computes these lazily; some raise for some models
            continue
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[attribute] = float(value)
    return out


def importances_json(importances: Mapping[str, object]) -> bytes:
    return json.dumps(importances, indent=2, sort_keys=True).encode()
