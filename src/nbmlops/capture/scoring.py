"""Where a ``%%track`` cell scores a model on data: the (model, X, y) of each score, found in the
cell's source, for the automatic evaluation of the cell (issue #21 item 1).

What is found, at any depth of the cell's module scope (not inside ``def``/``class``/``lambda``):

- a metric call whose true values are a name and whose predictions are a model's prediction
  of a name: ``mean_absolute_error(y_test, model.predict(X_test))``, the predictions given
  through a name bound earlier in the cell (``pred = model.predict(X_test)``), wrapped
  (``model.predict_proba(X_test)[:, 1]``, ``.ravel()``) or by keyword (``y_true=``,
  ``y_pred=``, ``y_score=``, ``y_prob=``); prediction methods are ``predict``,
  ``predict_proba``, ``decision_function``;
- ``model.score(X_test, y_test)``.

Scores of a model on the data the cell fits it on (``model.fit(X_train, y_train)`` then
``model.score(X_train, y_train)``) are training scores, not evaluations, and are left out. Whether
the callee really is a metric (``sklearn.metrics``) and the names hold a model and data is for the
caller to check at runtime, as for the metrics of :mod:`nbmlops.capture.analysis`. The source is
parsed once per distinct cell (cached); a cell that does not parse as Python yields nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache

_PREDICT = frozenset({"predict", "predict_proba", "decision_function"})
_TRUE_KEYWORDS = frozenset({"y_true"})
_PRED_KEYWORDS = frozenset({"y_pred", "y_score", "y_prob", "probas_pred"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)


@dataclass(frozen=True)
class Scored:
    """One score of ``model`` on ``X`` against ``y`` at ``line``; ``metric`` is the name the
    score is assigned to (None: not assigned), ``func`` the metric's dotted name (None for
    ``model.score``)."""

    model: str
    X: str
    y: str
    line: int
    metric: str | None
    func: tuple[str, ...] | None


def _dotted(node: ast.expr) -> tuple[str, ...] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(parts))
    return None


def _prediction(node: ast.expr) -> tuple[str, str] | None:
    """(model, X) of ``model.predict(X)``, looked through subscripts and method calls on it."""
    while True:
        if isinstance(node, ast.Subscript):
            node = node.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr in _PREDICT and isinstance(func.value, ast.Name):
                first = node.args[0] if node.args else None
                return (func.value.id, first.id) if isinstance(first, ast.Name) else None
            node = func.value
        else:
            return None


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements of the module scope, nested blocks included, in source order."""
    found: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, _SCOPES):
            continue
        found.append(stmt)
        for name in ("body", "orelse", "finalbody"):
            found += _statements(getattr(stmt, name, []) or [])
        for handler in getattr(stmt, "handlers", []) or []:
            found += _statements(handler.body)
        for case in getattr(stmt, "cases", []) or []:
            found += _statements(case.body)
    return found


def _calls(stmt: ast.stmt) -> list[ast.Call]:
    """The calls of one statement itself (not of its nested blocks or functions)."""
    roots: list[ast.AST] = [
        value
        for name, value in ast.iter_fields(stmt)
        if name not in ("body", "orelse", "finalbody", "handlers", "cases")
        and isinstance(value, ast.AST)
    ]
    for name in ("targets", "items"):
        roots += getattr(stmt, name, []) or []
    calls: list[ast.Call] = []
    while roots:
        node = roots.pop()
        if isinstance(node, _SCOPES):
            continue
        if isinstance(node, ast.Call):
            calls.append(node)
        roots.extend(ast.iter_child_nodes(node))
    return sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def _argument(call: ast.Call, position: int, keywords: frozenset[str]) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg in keywords:
            return keyword.value
    return call.args[position] if len(call.args) > position else None


def _fitted_on(value: ast.expr) -> str | None:
    """X of ``<expr>.fit(X, ...)`` (or ``partial_fit``), which returns the fitted model."""
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and value.func.attr in ("fit", "partial_fit")
        and value.args
        and isinstance(value.args[0], ast.Name)
    ):
        return value.args[0].id
    return None


@lru_cache(maxsize=256)
def fitted_data(source: str) -> dict[str, tuple[str, str | None]]:
    """The names each model of ``source`` was last fitted on: model -> (X, y or None), from
    ``model.fit(X, y)`` and ``model = Model().fit(X, y)`` (names only; an expression is none)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return {}
    found: dict[str, tuple[str, str | None]] = {}
    for stmt in _statements(tree.body):
        for call in _calls(stmt):
            func = call.func
            if not (isinstance(func, ast.Attribute) and func.attr in ("fit", "partial_fit")):
                continue
            names = [a.id if isinstance(a, ast.Name) else None for a in call.args[:2]]
            if not names or names[0] is None:
                continue
            y = names[1] if len(names) > 1 else None
            if isinstance(func.value, ast.Name):
                found[func.value.id] = (names[0], y)
            elif (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and stmt.value is call
            ):
                found[stmt.targets[0].id] = (names[0], y)
    return found


@lru_cache(maxsize=256)
def scored_calls(source: str) -> tuple[Scored, ...]:
    """The scores of models on data in ``source`` (a cell's body), in source order; see the
    module docstring."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return ()
    predictions: dict[str, tuple[str, str]] = {}  # name -> (model, X) it was predicted from
    fitted_on: dict[str, set[str]] = {}  # model -> the names it was fitted on
    found: list[Scored] = []
    for stmt in _statements(tree.body):
        assigned = None
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            assigned = target.id if isinstance(target, ast.Name) else None
        for call in _calls(stmt):
            func = call.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                model = func.value.id
                names = [a.id for a in call.args[:2] if isinstance(a, ast.Name)]
                if func.attr in ("fit", "fit_transform", "fit_predict", "partial_fit") and names:
                    fitted_on.setdefault(model, set()).add(names[0])
                    continue
                if func.attr == "score" and len(names) == 2 and len(call.args) >= 2:
                    found.append(Scored(model, names[0], names[1], call.lineno, assigned, None))
                    continue
            dotted = _dotted(func)
            truth = _argument(call, 0, _TRUE_KEYWORDS)
            predicted = _argument(call, 1, _PRED_KEYWORDS)
            if dotted is None or not isinstance(truth, ast.Name) or predicted is None:
                continue
            pair = _prediction(predicted)
            if pair is None and isinstance(predicted, ast.Name):
                pair = predictions.get(predicted.id)
            if pair is not None:
                found.append(Scored(pair[0], pair[1], truth.id, call.lineno, assigned, dotted))
        if assigned is not None and isinstance(stmt, ast.Assign):
            data = _fitted_on(stmt.value)  # model = Model().fit(X, y): fit returns the model
            if data is not None:
                fitted_on.setdefault(assigned, set()).add(data)
            pair = _prediction(stmt.value)
            if pair is not None:
                predictions[assigned] = pair
            else:
                predictions.pop(assigned, None)
    return tuple(s for s in found if s.X not in fitted_on.get(s.model, set()))
