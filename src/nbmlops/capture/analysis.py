"""Static analysis of one ``%%track`` cell: what it reads, binds, fits, mutates and measures.

``analyze_cell(source)`` does one ``ast.parse`` and one walk of the tree; it never runs the code
and never raises on bad input (a cell that does not parse gives an empty ``CellAnalysis``, and the
user sees the cell's own ``SyntaxError`` when it runs). Only the standard library is imported at
module level; IPython is imported only when the plain parse fails (see *IPython syntax* below).

What is found
-------------
``params``
    Literal assignments that are direct statements of the cell (not inside ``if``/``for``/``def``):
    ``lr = 0.01``, ``lr: float = 0.01``, ``layers = [64, 32]``, ``a, b = 1, 2`` (element-wise),
    ``a = b = 3``, negative numbers, dicts, sets. A name is a param only when that literal
    assignment is the *last* binding of the name anywhere in the cell's module scope (a later
    ``lr = schedule(lr)``, ``lr += 1``, ``for lr in ...`` or a nested ``if x: lr = 1`` drops it).
    A list, dict or set param is also dropped when the cell mutates the name afterwards
    (``layers.append(16)``, ``cfg["k"] = 1``); calls of read-only methods (``cfg.get``,
    ``cfg.items`` ...) do not count.
    Values are JSON-friendly: ``value == json.loads(json.dumps(value))`` for the common cases.
    Tuples become lists, sets and frozensets become sorted lists, non-``str`` dict keys become
    strings the way ``json`` writes them (``1`` -> ``"1"``, ``True`` -> ``"true"``), and values
    JSON cannot hold (bytes, complex, ``...``) become their ``repr``.
``loads``
    Names whose value must come from the namespace: read before the cell's first binding of that
    name takes effect, or never bound. A binding takes effect at the end of its statement, so
    ``x = x + 1`` and ``total += 1`` read ``x``/``total`` from the namespace. Builtins are
    included (the caller looks the name up in the user namespace; a miss means a builtin).
``stores``
    Names bound in the cell's module scope (any depth of ``if``/``for``/``with``/``try``, not
    inside ``def``/``class``/comprehensions): assignments of every kind, ``for`` and ``with ... as``
    targets, imports, ``def``, ``class``, walrus, ``except ... as``, ``match`` captures. Maps to the
    last line that binds the name.
``fitted``
    ``m.fit(...)``, ``m.fit_transform(...)``, ``m.fit_predict(...)``, ``m.partial_fit(...)`` on a
    name, and ``m = <expr>.fit(...)`` / ``m = <expr>.partial_fit(...)`` (these return ``self``).
    Maps to the last such line.
``constructed``
    Names assigned from a call, ``clf = RandomForestClassifier(n_estimators=50)`` (also
    ``a, b = f(), g()`` element-wise). Maps to the last such line. Whether the object is an
    estimator is for the caller to check at runtime.
``metrics``
    Names assigned from a metric-looking call, one candidate per name (its last such line):
    rule ``"call"`` when the function's dotted name ends in ``_score``, ``_error``, ``_loss``,
    ``_corrcoef``, is a well-known metric name (``accuracy``, ``f1``, ``auc`` ...), or has a
    ``metrics`` module in its path (``metrics.f1_score`` -> ``("metrics", "f1_score")``); rule
    ``"score"`` for any ``<expr>.score(...)``. Wrappers are looked through: ``float()``,
    ``round()``, ``abs()``, ``np.sqrt()``/``math.sqrt()``/``np.round()``/``np.mean()`` and the
    methods ``.mean()``/``.item()``. The caller checks that the value is a number.
``keywords``
    Keyword arguments given a bare name, ``LogisticRegression(C=C)`` ->
    ``KeywordArg("LogisticRegression", "C", "C", line)`` (the callee's last dotted part), at the
    cell's module scope, nested calls included (``make_pipeline(StandardScaler(), SVC(C=c))``).
    The caller tells an estimator param that holds a literal param's value (one value, one
    param) from one that merely shares its name.
``mutated``
    Names whose object may be changed in place: any method call on the name or on an
    attribute/subscript chain rooted at it (``df.dropna(inplace=True)``, ``df["a"].fillna(...)``,
    also harmless ones such as ``np.mean``), attribute or subscript assignment, augmented
    assignment or ``del`` (``df["c"] = ...``, ``df.loc[...] = ...``, ``del df["c"]``). Maps to the
    first line. A name is listed whether it came from the namespace or was bound in the cell.

Approximations
--------------
- A binding inside a branch counts as made (``if c: x = 1`` then ``print(x)`` does not load ``x``).
- Names read inside a ``def``/``lambda`` body that are not its parameters or locals (Python's rule:
  any name bound in the body, minus ``global``/``nonlocal``) are treated as read when the ``def``
  statement ends: they are loads unless the cell bound them before that point. Such loads,
  mutations and fits are attributed to the enclosing scope even if the function is never called.
  Assignments to ``global`` names inside functions are ignored.
- Methods do not see class-level names, as in Python; comprehension variables are local to the
  comprehension, and a walrus inside one binds in the enclosing scope.
- ``from m import *`` binds nothing that can be known statically; ``del x`` does not unbind.

IPython syntax
--------------
The caller passes the raw cell with its ``%%track`` line blanked. If ``ast.parse`` fails, the source
goes through IPython's ``TransformerManager`` (line magics, ``!cmd``, ``x = %env``, ``obj?``) and is
parsed again. That transformer drops leading blank lines and joins backslash-continued magics, so
its output is re-aligned to the original lines (``difflib``): line numbers stay those of the cell.
Names the transformer itself introduces (``get_ipython``) are not reported as loads. A cell whose
body starts with another cell magic (``%%time``) becomes one opaque call and yields nothing.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from nbmlops._jsonable import jsonable

__all__ = ["CellAnalysis", "KeywordArg", "LiteralParam", "MetricCandidate", "analyze_cell"]

_Pos = tuple[int, int]

_FIT_METHODS = frozenset({"fit", "fit_transform", "fit_predict", "partial_fit"})
_RETURNS_SELF = frozenset({"fit", "partial_fit"})
_READ_ONLY_METHODS = frozenset(
    {
        "copy",
        "count",
        "difference",
        "get",
        "index",
        "intersection",
        "isdisjoint",
        "issubset",
        "issuperset",
        "items",
        "keys",
        "symmetric_difference",
        "union",
        "values",
    }
)
_METRIC_SUFFIXES = ("_score", "_error", "_loss", "_corrcoef")
_METRIC_NAMES = frozenset(
    {"accuracy", "auc", "f1", "log_loss", "mae", "mape", "mse", "precision", "r2", "recall", "rmse"}
)
_WRAPPER_FUNCS = frozenset({("float",), ("round",), ("abs",)})
_WRAPPER_MODULES = frozenset({"np", "numpy", "math"})
_WRAPPER_ATTRS = frozenset({"sqrt", "round", "abs", "mean", "float64", "float32"})
_WRAPPER_METHODS = frozenset({"mean", "item"})
_MUTABLE_LITERAL_NODES = (ast.List, ast.Set, ast.Dict)
_PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError)


@dataclass(frozen=True)
class LiteralParam:
    """``name = <literal>`` at the top of the cell; ``line`` is 1-based in the given source."""

    name: str
    value: object
    line: int


@dataclass(frozen=True)
class KeywordArg:
    """``func(keyword=name)`` in the cell: ``func`` is the callee's last dotted part."""

    func: str
    keyword: str
    name: str
    line: int


@dataclass(frozen=True)
class MetricCandidate:
    """A name assigned from a metric-looking call; ``func`` is the dotted name (``None`` for
    ``rule="score"``, i.e. ``<expr>.score(...)``)."""

    name: str
    line: int
    rule: str
    func: tuple[str, ...] | None


@dataclass(frozen=True)
class CellAnalysis:
    """What one cell reads, binds, fits, mutates and measures; see the module docstring."""

    params: tuple[LiteralParam, ...] = ()
    loads: dict[str, int] = field(default_factory=dict)
    stores: dict[str, int] = field(default_factory=dict)
    fitted: dict[str, int] = field(default_factory=dict)
    constructed: dict[str, int] = field(default_factory=dict)
    metrics: tuple[MetricCandidate, ...] = ()
    mutated: dict[str, int] = field(default_factory=dict)
    keywords: tuple[KeywordArg, ...] = ()


def analyze_cell(source: str) -> CellAnalysis:
    """Analyse one cell's source; an unparseable cell gives an empty ``CellAnalysis``.

    Results are cached by source (re-running an unchanged cell is the common case); each call
    returns its own dicts, so a caller may change them freely.
    """
    cached = _analyze(source)
    return replace(
        cached,
        loads=dict(cached.loads),
        stores=dict(cached.stores),
        fitted=dict(cached.fitted),
        constructed=dict(cached.constructed),
        mutated=dict(cached.mutated),
    )


@lru_cache(maxsize=256)
def _analyze(source: str) -> CellAnalysis:
    tree, transformed = _parse(source)
    if tree is None:
        return CellAnalysis()
    walker = _Walker(tree)
    try:
        walker.walk(tree)
    except RecursionError:
        return CellAnalysis()
    analysis = walker.result()
    if transformed and "get_ipython" not in source:
        analysis.loads.pop("get_ipython", None)
    return analysis


def _parse(source: str) -> tuple[ast.Module | None, bool]:
    try:
        return ast.parse(source), False
    except _PARSE_ERRORS:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        transformed = TransformerManager().transform_cell(source)  # type: ignore[no-untyped-call]
    except Exception:  # any failure of IPython's transformer means "cannot analyse"
        return None, False
    try:
        return ast.parse(_realign(source, transformed)), True
    except _PARSE_ERRORS:
        return None, False


def _realign(original: str, transformed: str) -> str:
    """Pad ``transformed`` with blank lines so that unchanged lines keep their original numbers."""
    old = _lines(original)
    new = _lines(transformed)
    if new and not new[-1] and old and old[-1]:  # IPython adds a final newline
        new.pop()
    blank = 0  # IPython drops leading blank lines
    while blank < len(old) and not old[blank].strip():
        blank += 1
    if blank and (not new or new[0].strip()):
        new[:0] = old[:blank]
    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        out.extend(new[j1:j2])
        out.extend("" for _ in range((i2 - i1) - (j2 - j1)))
    return "\n".join(out)


def _lines(text: str) -> list[str]:
    # Only the line breaks Python's tokenizer knows; str.splitlines also splits on \f, \u2028 ...
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _start(node: ast.expr | ast.stmt) -> _Pos:
    return (node.lineno, node.col_offset)


def _end(node: ast.expr | ast.stmt) -> _Pos:
    return (node.end_lineno or node.lineno, node.end_col_offset or 0)


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _dotted(node: ast.expr) -> tuple[str, ...] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


def _unwrap(node: ast.expr) -> ast.expr:
    """Look through ``float(x)``, ``round(x, 3)``, ``np.sqrt(x)``, ``x.mean()`` ... to ``x``."""
    while isinstance(node, ast.Call):
        func = node.func
        if node.args and not isinstance(node.args[0], ast.Starred):
            dotted = _dotted(func)
            if dotted is not None and (
                dotted in _WRAPPER_FUNCS
                or (
                    len(dotted) == 2
                    and dotted[0] in _WRAPPER_MODULES
                    and dotted[1] in _WRAPPER_ATTRS
                )
            ):
                node = node.args[0]
                continue
        if (
            not node.args
            and isinstance(func, ast.Attribute)
            and func.attr in _WRAPPER_METHODS
            and isinstance(func.value, ast.Call)
        ):
            node = func.value
            continue
        break
    return node


def _is_metric_func(dotted: tuple[str, ...]) -> bool:
    last = dotted[-1].lower()
    return last.endswith(_METRIC_SUFFIXES) or last in _METRIC_NAMES or "metrics" in dotted[:-1]


def _maybe_literal(node: ast.expr) -> bool:
    """Cheap pre-check before ``ast.literal_eval``, whose failures cost an exception."""
    if isinstance(node, ast.Constant | ast.List | ast.Tuple | ast.Set | ast.Dict):
        return True
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.operand, ast.Constant)
    if isinstance(node, ast.BinOp):  # complex numbers: 1 + 2j
        return _maybe_literal(node.left) and _maybe_literal(node.right)
    return False


def _pairs(target: ast.expr, value: ast.expr) -> list[tuple[ast.Name, ast.expr]]:
    """``a = v`` -> [(a, v)]; ``a, b = x, y`` -> [(a, x), (b, y)]; anything else -> []."""
    if isinstance(target, ast.Name):
        return [(target, value)]
    if (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
        and not any(isinstance(e, ast.Starred) for e in (*target.elts, *value.elts))
    ):
        out: list[tuple[ast.Name, ast.expr]] = []
        for t, v in zip(target.elts, value.elts, strict=True):
            out.extend(_pairs(t, v))
        return out
    return []


class _Scope:
    """A function, lambda, class or comprehension scope; the module scope lives on the walker."""

    __slots__ = ("declared", "fitted", "kind", "loads", "locals", "mutated", "mutating", "parent")

    def __init__(self, kind: str, parent: _Scope | None, params: set[str] | None = None) -> None:
        self.kind = kind
        self.parent = parent
        self.locals: set[str] = params if params is not None else set()
        self.declared: set[str] = set()
        self.loads: dict[str, tuple[_Pos, int]] = {}
        self.mutated: dict[str, int] = {}  # first line
        self.mutating: dict[str, int] = {}  # last line, excluding read-only method calls
        self.fitted: dict[str, int] = {}


@dataclass
class _Param:
    value: object
    line: int
    effect: _Pos
    mutable: bool


class _Walker:
    def __init__(self, tree: ast.Module) -> None:
        self.top = {id(stmt) for stmt in tree.body}
        self.scope: _Scope | None = None  # None is the module scope
        self.effect: _Pos | None = None  # where the binding being visited takes effect
        self.loads: dict[str, tuple[_Pos, int]] = {}
        self.first_effect: dict[str, _Pos] = {}
        self.last_effect: dict[str, _Pos] = {}
        self.stores: dict[str, int] = {}
        self.fitted: dict[str, int] = {}
        self.constructed: dict[str, int] = {}
        self.mutated: dict[str, int] = {}
        self.mutating: dict[str, int] = {}  # last line, excluding read-only method calls
        self.metrics: dict[str, MetricCandidate] = {}
        self.params: dict[str, _Param] = {}
        self.keywords: list[KeywordArg] = []

    def result(self) -> CellAnalysis:
        params = tuple(
            LiteralParam(name, p.value, p.line)
            for name, p in self.params.items()
            if self.last_effect.get(name) == p.effect
            and not (p.mutable and self.mutating.get(name, 0) >= p.line)
        )
        loads = {
            name: line
            for name, (pos, line) in self.loads.items()
            if name not in self.first_effect or pos < self.first_effect[name]
        }
        metrics = tuple(sorted(self.metrics.values(), key=lambda m: (m.line, m.name)))
        return CellAnalysis(
            params=tuple(sorted(params, key=lambda p: p.line)),
            loads=loads,
            stores=self.stores,
            fitted=self.fitted,
            constructed=self.constructed,
            metrics=metrics,
            mutated=self.mutated,
            keywords=tuple(self.keywords),
        )

    # -- recording -------------------------------------------------------------------------

    def load(self, name: str, pos: _Pos, line: int, scope: _Scope | None = None) -> None:
        loads = self.loads if scope is None else scope.loads
        seen = loads.get(name)
        if seen is None or pos < seen[0]:
            loads[name] = (pos, line)

    def bind(self, name: str, effect: _Pos, line: int, *, walrus: bool = False) -> None:
        scope = self.scope
        if walrus:
            while scope is not None and scope.kind == "comprehension":
                scope = scope.parent
        if scope is not None:
            if name not in scope.declared:
                scope.locals.add(name)
            return
        if line > self.stores.get(name, 0):
            self.stores[name] = line
        if name not in self.first_effect or effect < self.first_effect[name]:
            self.first_effect[name] = effect
        if name not in self.last_effect or effect > self.last_effect[name]:
            self.last_effect[name] = effect

    def mutate(self, name: str, line: int, read_only: bool, scope: _Scope | None) -> None:
        first, last = (
            (self.mutated, self.mutating) if scope is None else (scope.mutated, scope.mutating)
        )
        if line < first.get(name, line + 1):
            first[name] = line
        if not read_only and line > last.get(name, 0):
            last[name] = line

    def fit(self, name: str, line: int, scope: _Scope | None) -> None:
        fitted = self.fitted if scope is None else scope.fitted
        if line > fitted.get(name, 0):
            fitted[name] = line

    def close(self, scope: _Scope, at: _Pos | None) -> None:
        """Hand the free names of a finished scope to the enclosing one.

        ``at`` is where a function's free names count as read (its end), ``None`` to keep the
        positions of the reads (comprehensions and class bodies run immediately)."""
        parent = scope.parent
        if scope.kind == "function":
            while parent is not None and parent.kind == "class":
                parent = parent.parent
        self.scope = scope.parent
        local = scope.locals
        for name, (pos, line) in scope.loads.items():
            if name not in local:
                self.load(name, pos if at is None else at, line, parent)
        for name, line in scope.mutated.items():
            if name not in local:
                self.mutate(name, line, True, parent)
        for name, line in scope.mutating.items():
            if name not in local:
                self.mutate(name, line, False, parent)
        for name, line in scope.fitted.items():
            if name not in local:
                self.fit(name, line, parent)

    def module_assign(self, stmt: ast.stmt, targets: list[ast.expr], value: ast.expr) -> None:
        line = stmt.lineno
        top = id(stmt) in self.top
        for target in targets:
            for name_node, val in _pairs(target, value):
                name = name_node.id
                if top and _maybe_literal(val):
                    try:
                        literal = ast.literal_eval(val)
                    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                        pass
                    else:
                        mutable = isinstance(val, _MUTABLE_LITERAL_NODES)
                        self.params[name] = _Param(jsonable(literal), line, _end(stmt), mutable)
                if not isinstance(val, ast.Call):
                    continue
                self.constructed[name] = line
                if isinstance(val.func, ast.Attribute) and val.func.attr in _RETURNS_SELF:
                    self.fit(name, line, None)
                inner = _unwrap(val)
                if not isinstance(inner, ast.Call):
                    continue
                if isinstance(inner.func, ast.Attribute) and inner.func.attr == "score":
                    self.metrics[name] = MetricCandidate(name, line, "score", None)
                else:
                    dotted = _dotted(inner.func)
                    if dotted is not None and _is_metric_func(dotted):
                        self.metrics[name] = MetricCandidate(name, line, "call", dotted)

    # -- walking ---------------------------------------------------------------------------

    def walk(self, node: ast.AST) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            handler(self, node)
            return
        for name in node._fields:
            child = getattr(node, name, None)
            if isinstance(child, list):
                for item in child:
                    if isinstance(item, ast.AST) and type(item) not in _LEAF_TYPES:
                        self.walk(item)
            elif isinstance(child, ast.AST) and type(child) not in _LEAF_TYPES:
                self.walk(child)

    def walk_all(self, nodes: list[ast.stmt] | list[ast.expr]) -> None:
        for node in nodes:
            self.walk(node)

    def walk_target(self, target: ast.expr, effect: _Pos | None) -> None:
        saved, self.effect = self.effect, effect
        self.walk(target)
        self.effect = saved

    def v_name(self, node: ast.Name) -> None:
        ctx = node.ctx
        if isinstance(ctx, ast.Load):
            self.load(node.id, (node.lineno, node.col_offset), node.lineno, self.scope)
        elif isinstance(ctx, ast.Store):
            self.bind(node.id, self.effect or _end(node), node.lineno)

    def v_attribute(self, node: ast.Attribute) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.mutate_root(node, node.lineno)
        saved, self.effect = self.effect, None
        self.walk(node.value)
        self.effect = saved

    def v_subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.mutate_root(node, node.lineno)
        saved, self.effect = self.effect, None
        self.walk(node.value)
        self.walk(node.slice)
        self.effect = saved

    def mutate_root(self, node: ast.expr, line: int, read_only: bool = False) -> None:
        root = _root_name(node)
        if root is not None:
            self.mutate(root, line, read_only, self.scope)

    def v_call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            self.mutate_root(func.value, node.lineno, func.attr in _READ_ONLY_METHODS)
            if func.attr in _FIT_METHODS and isinstance(func.value, ast.Name):
                self.fit(func.value.id, node.lineno, self.scope)
        self.walk(func)
        self.walk_all(node.args)
        dotted = _dotted(func) if self.scope is None else None
        for keyword in node.keywords:
            if dotted and keyword.arg and isinstance(keyword.value, ast.Name):
                self.keywords.append(
                    KeywordArg(dotted[-1], keyword.arg, keyword.value.id, keyword.lineno)
                )
            self.walk(keyword.value)

    def v_assign(self, node: ast.Assign) -> None:
        self.walk(node.value)
        if self.scope is None:
            self.module_assign(node, node.targets, node.value)
        effect = _end(node)
        for target in node.targets:
            self.walk_target(target, effect)

    def v_annassign(self, node: ast.AnnAssign) -> None:
        if node.value is None:
            if not isinstance(node.target, ast.Name):
                self.walk(node.target)
            elif self.scope is not None and node.target.id not in self.scope.declared:
                self.scope.locals.add(node.target.id)
            return
        self.walk(node.value)
        if self.scope is None or self.scope.kind == "class":
            self.walk(node.annotation)
        if self.scope is None:
            self.module_assign(node, [node.target], node.value)
        self.walk_target(node.target, _end(node))

    def v_augassign(self, node: ast.AugAssign) -> None:
        target = node.target
        if isinstance(target, ast.Name):
            self.load(target.id, _start(target), target.lineno, self.scope)
            self.walk(node.value)
            self.bind(target.id, _end(node), target.lineno)
        else:
            self.walk(target)
            self.walk(node.value)

    def v_for(self, node: ast.For | ast.AsyncFor) -> None:
        self.walk(node.iter)
        self.walk_target(node.target, _end(node.iter))
        self.walk_all(node.body)
        self.walk_all(node.orelse)

    def v_with(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.walk(item.context_expr)
            if item.optional_vars is not None:
                self.walk_target(item.optional_vars, None)
        self.walk_all(node.body)

    def v_namedexpr(self, node: ast.NamedExpr) -> None:
        self.walk(node.value)
        self.bind(node.target.id, _end(node), node.target.lineno, walrus=True)

    def v_import(self, node: ast.Import | ast.ImportFrom) -> None:
        effect = _end(node)
        for alias in node.names:
            if alias.name != "*":
                name = alias.asname or alias.name.split(".")[0]
                self.bind(name, effect, getattr(alias, "lineno", node.lineno))

    def v_global(self, node: ast.Global | ast.Nonlocal) -> None:
        if self.scope is not None:
            self.scope.declared.update(node.names)

    def v_excepthandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.walk(node.type)
        if node.name is not None:
            at = _end(node.type) if node.type is not None else (node.lineno, node.col_offset)
            self.bind(node.name, at, node.lineno)
        self.walk_all(node.body)

    def v_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        self.walk_all(args.defaults)
        self.walk_all([d for d in args.kw_defaults if d is not None])
        params = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        params.update(a.arg for a in (args.vararg, args.kwarg) if a is not None)
        if isinstance(node, ast.Lambda):
            body: list[ast.expr] | list[ast.stmt] = [node.body]
        else:
            self.walk_all(node.decorator_list)
            all_args = (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg)
            self.walk_all([a.annotation for a in all_args if a is not None and a.annotation])
            if node.returns is not None:
                self.walk(node.returns)
            body = node.body
        saved, self.effect = self.effect, None
        scope = self.scope = _Scope("function", self.scope, params)
        self.walk_all(body)
        self.close(scope, _end(node))
        self.effect = saved
        if not isinstance(node, ast.Lambda):
            self.bind(node.name, _end(node), node.lineno)

    def v_class(self, node: ast.ClassDef) -> None:
        self.walk_all(node.decorator_list)
        self.walk_all(node.bases)
        for keyword in node.keywords:
            self.walk(keyword.value)
        scope = self.scope = _Scope("class", self.scope)
        self.walk_all(node.body)
        self.close(scope, None)
        self.bind(node.name, _end(node), node.lineno)

    def v_comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        generators = node.generators
        self.walk(generators[0].iter)
        saved, self.effect = self.effect, None
        scope = self.scope = _Scope("comprehension", self.scope)
        for i, gen in enumerate(generators):
            if i:
                self.walk(gen.iter)
            self.walk(gen.target)
            self.walk_all(gen.ifs)
        if isinstance(node, ast.DictComp):
            self.walk(node.key)
            self.walk(node.value)
        else:
            self.walk(node.elt)
        self.close(scope, None)
        self.effect = saved

    def v_match_capture(self, node: ast.MatchAs | ast.MatchStar | ast.MatchMapping) -> None:
        for child in ast.iter_child_nodes(node):
            self.walk(child)
        name = node.rest if isinstance(node, ast.MatchMapping) else node.name
        if name is not None:
            self.bind(name, (node.end_lineno or node.lineno, node.end_col_offset or 0), node.lineno)

    def v_leaf(self, node: ast.AST) -> None:
        pass


# Leaves: nothing to record and no children worth a call.
_LEAVES = (ast.Constant, ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
_LEAF_TYPES = frozenset(t for cls in _LEAVES for t in (cls, *cls.__subclasses__()))
_Handler = Callable[[_Walker, Any], None]
_HANDLERS: dict[type[ast.AST], _Handler] = {}
for _handler, _types in (
    (_Walker.v_name, (ast.Name,)),
    (_Walker.v_attribute, (ast.Attribute,)),
    (_Walker.v_subscript, (ast.Subscript,)),
    (_Walker.v_call, (ast.Call,)),
    (_Walker.v_assign, (ast.Assign,)),
    (_Walker.v_annassign, (ast.AnnAssign,)),
    (_Walker.v_augassign, (ast.AugAssign,)),
    (_Walker.v_for, (ast.For, ast.AsyncFor)),
    (_Walker.v_with, (ast.With, ast.AsyncWith)),
    (_Walker.v_namedexpr, (ast.NamedExpr,)),
    (_Walker.v_import, (ast.Import, ast.ImportFrom)),
    (_Walker.v_global, (ast.Global, ast.Nonlocal)),
    (_Walker.v_excepthandler, (ast.ExceptHandler,)),
    (_Walker.v_function, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
    (_Walker.v_class, (ast.ClassDef,)),
    (_Walker.v_comprehension, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)),
    (_Walker.v_match_capture, (ast.MatchAs, ast.MatchStar, ast.MatchMapping)),
    (_Walker.v_leaf, _LEAVES),
):
    for _cls in _types:
        for _sub in (_cls, *_cls.__subclasses__()):
            _HANDLERS[_sub] = _handler
