"""scikit-learn estimators: is it one, is it fitted, and which hyperparameters were changed.

scikit-learn is imported only inside the functions and only when the user already imported it
(``"sklearn" in sys.modules``): a session that never imported sklearn cannot hold an estimator, and
``import nbmlops`` stays light.

``non_default_params`` key scheme
---------------------------------
Every estimator in the tree (the root, steps of ``Pipeline``/``FeatureUnion``, transformers of
``ColumnTransformer``, ``estimators`` of voting/stacking ensembles, and estimators held by a
parameter such as ``GridSearchCV(estimator=...)`` or ``final_estimator``) contributes
``"<Class>.<param>"`` for each parameter whose value differs from its ``__init__`` default:
``RandomForestClassifier.n_estimators``, ``StandardScaler.with_mean``, ``GridSearchCV.cv``.

When a class name occurs more than once in the tree, each nested occurrence is qualified with its
path from the root, the step names and parameter names joined by ``__`` as in scikit-learn's own
``get_params(deep=True)`` keys, shortened to the shortest suffix that tells the occurrences apart:
two ``StandardScaler`` in a ``ColumnTransformer`` give ``StandardScaler[num].with_mean`` and
``StandardScaler[num2].with_mean``; two ``make_pipeline(SimpleImputer(), ...)`` under ``num`` and
``cat`` give ``SimpleImputer[num__simpleimputer]`` and ``SimpleImputer[cat__simpleimputer]``. The
root is never qualified.

Values
------
Estimators are recursed into, never emitted as values; the step lists themselves (``steps``,
``transformers``, ``estimators``) are not emitted either, only what they contain. Values are made
JSON-able: numpy scalars become Python numbers, tuples and lists become lists, sets sorted lists,
dict keys strings (``param_grid`` keeps its shape), and 1-d numeric or string arrays of at most
100 items lists (``np.logspace(-3, 3, 7)`` in a grid reads as the numbers it holds). Functions and
classes become their dotted name (``sklearn.metrics._classification.f1_score``) rather than a
``repr`` that carries a memory address and would make every run look different; anything else
(larger arrays, random states, splitters, estimators inside a ``param_grid``) becomes its
``repr``, truncated to 200 characters.

Defaults are those of ``inspect.signature`` of the class ``__init__`` (merged along the MRO so that
``**kwargs`` wrappers still find their parents' defaults), compared with ``get_params(deep=False)``:
equal values, NaN against NaN and numpy scalars against equal Python numbers count as default. A
parameter with no default (``Pipeline.steps``, ``GridSearchCV.param_grid``) is always emitted.
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
import types
import weakref
from typing import Any

from nbmlops._jsonable import jsonable

__all__ = ["is_estimator", "is_fitted", "non_default_params"]

_REQUIRED = object()  # marks an __init__ parameter without a default
_CLASS_INFO: weakref.WeakKeyDictionary[type, tuple[tuple[str, ...] | None, dict[str, object]]] = (
    weakref.WeakKeyDictionary()
)


def is_estimator(obj: object) -> bool:
    """Whether ``obj`` is a scikit-learn estimator instance (``BaseEstimator``)."""
    base = _base_estimator()
    return base is not None and isinstance(obj, base)


def _base_estimator() -> type | None:
    # Called for every parameter value: a dict lookup is much cheaper than an import statement.
    module = sys.modules.get("sklearn.base")
    if module is None:
        if "sklearn" not in sys.modules:
            return None
        import sklearn.base

        module = sklearn.base
    cls: type = module.BaseEstimator
    return cls


def is_fitted(obj: object) -> bool:
    """Whether ``obj`` is a fitted estimator, by ``check_is_fitted``, without raising."""
    if not is_estimator(obj):
        return False
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except Exception:  # NotFittedError, or TypeError/AttributeError from odd estimators
        return False
    return True


def non_default_params(estimator: object) -> dict[str, object]:
    """Hyperparameters that differ from their defaults, keyed ``Class.param``; see module doc."""
    if not is_estimator(estimator):
        return {}
    nodes: list[tuple[tuple[str, ...], Any, list[tuple[str, object]]]] = []
    _collect(estimator, (), nodes, set())
    labels = _labels([(path, type(est).__name__) for path, est, _ in nodes])
    out: dict[str, object] = {}
    for label, (_path, _est, params) in zip(labels, nodes, strict=True):
        for name, value in params:
            out[f"{label}.{name}"] = value
    return out


def _collect(
    est: Any,
    path: tuple[str, ...],
    nodes: list[tuple[tuple[str, ...], Any, list[tuple[str, object]]]],
    seen: set[int],
) -> None:
    """Pre-order walk: append (path, estimator, its non-default JSON-able params) for each node."""
    if id(est) in seen:  # a shared or self-referencing estimator is reported once
        return
    seen.add(id(est))
    own: list[tuple[str, object]] = []
    nodes.append((path, est, own))
    names, defaults = _class_info(type(est))
    try:
        if names is not None:
            params = {name: getattr(est, name) for name in names}
        else:
            params = est.get_params(deep=False)
    except Exception:  # a hand-written estimator whose __init__ does not store its arguments
        return
    for name, value in params.items():
        if is_estimator(value):
            _collect(value, (*path, name), nodes, seen)
            continue
        children = _named_estimators(value)
        if children is not None:
            for step, child in children:
                _collect(child, (*path, step), nodes, seen)
            continue
        if not _is_default(value, defaults.get(name, _REQUIRED)):
            own.append((name, jsonable(value)))


def _class_info(cls: type) -> tuple[tuple[str, ...] | None, dict[str, object]]:
    """Per class, cached: the parameter names when ``get_params(deep=False)`` is scikit-learn's
    own (it re-inspects the signature on every call, two thirds of our time), and the defaults."""
    cached = _CLASS_INFO.get(cls)
    if cached is None:
        cached = _CLASS_INFO[cls] = (_param_names(cls), _defaults(cls))
    return cached


def _param_names(cls: type) -> tuple[str, ...] | None:
    # The same names as BaseEstimator._get_param_names; every get_params override inside
    # scikit-learn (Pipeline, ColumnTransformer, ensembles ...) equals it for deep=False.
    base = _base_estimator()
    get_params = getattr(cls, "get_params", None)
    get_names = getattr(cls, "_get_param_names", None)
    if (
        base is None
        or not str(getattr(get_params, "__module__", "")).startswith("sklearn.")
        or getattr(get_names, "__func__", None) is not base._get_param_names.__func__  # type: ignore[attr-defined]
    ):
        return None
    init = cls.__init__  # type: ignore[misc]
    if init is object.__init__:
        return ()
    try:
        parameters = inspect.signature(init).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return None
    return tuple(sorted(p.name for p in parameters if p.name != "self" and p.kind != p.VAR_KEYWORD))


def _defaults(cls: type) -> dict[str, object]:
    defaults: dict[str, object] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if klass is object or not isinstance(init, types.FunctionType):
            continue
        try:
            signature = inspect.signature(init)
        except (TypeError, ValueError):
            continue
        for p in signature.parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name == "self":
                continue
            defaults.setdefault(p.name, _REQUIRED if p.default is p.empty else p.default)
    return defaults


def _named_estimators(value: object) -> list[tuple[str, object]] | None:
    """The estimators of a ``[(name, estimator, ...), ...]`` list (Pipeline.steps,
    ColumnTransformer.transformers, VotingClassifier.estimators ...), else ``None``."""
    if not isinstance(value, list | tuple) or not value:
        return None
    found: list[tuple[str, object]] = []
    for item in value:
        if not (isinstance(item, list | tuple) and len(item) >= 2 and isinstance(item[0], str)):
            return None
        if is_estimator(item[1]):
            found.append((item[0], item[1]))
        elif not (item[1] is None or isinstance(item[1], str)):  # "drop" / "passthrough"
            return None
    return found or None


def _is_default(value: object, default: object) -> bool:
    if default is _REQUIRED:
        return False
    if value is default:
        return True
    if _is_nan(value) and _is_nan(default):
        return True
    try:
        return bool(value == default)
    except Exception:  # arrays (ambiguous truth value), objects with a raising __eq__
        return False


def _is_nan(value: object) -> bool:
    if not isinstance(value, numbers.Real):
        return False
    try:
        return math.isnan(value)
    except (TypeError, ValueError, OverflowError):
        return False


def _labels(nodes: list[tuple[tuple[str, ...], str]]) -> list[str]:
    """``Class`` when the class name is unique in the tree (or for the root), else
    ``Class[<shortest distinguishing path suffix>]``."""
    by_class: dict[str, list[int]] = {}
    for i, (path, cls) in enumerate(nodes):
        if path:
            by_class.setdefault(cls, []).append(i)
    root_classes = {cls for path, cls in nodes if not path}
    labels = [cls for _path, cls in nodes]
    for cls, indexes in by_class.items():
        if len(indexes) == 1 and cls not in root_classes:
            continue
        paths = [nodes[i][0] for i in indexes]
        longest = max(len(p) for p in paths)
        k = 1
        while k < longest and len({p[-k:] for p in paths}) < len(paths):
            k += 1
        for i, path in zip(indexes, paths, strict=True):
            labels[i] = f"{cls}[{'__'.join(path[-k:])}]"
    return labels
