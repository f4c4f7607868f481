"""Compile a filter tree (:mod:`nbmlops.filter`) into a SQL condition with bound parameters.

The condition reads the aliases ``r`` (runs) and ``e`` (experiments), to be used as::

    SELECT ... FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id WHERE <sql>

No key, value or pattern from the filter ever enters the SQL text: they are bound through ``?``.
The only names written into the SQL come from the fixed tables below (``KEY_TABLES``,
``_ATTRIBUTE_COLUMNS``, ``_OPERATORS``). The user-facing meaning is documented in
:mod:`nbmlops.filter`; the implementation choices behind it:

- Every compiled condition is two-valued (true or false, never SQL NULL), so ``NOT`` is always
  the complement. Keys are tested with ``EXISTS`` (a missing key makes the EXISTS false), and
  nullable attribute columns are guarded with ``col IS NOT NULL AND ...``.
- ``!=`` on a key means "present and different": ``col IS NOT ?`` (NULL-safe), so a param that
  is not numeric, or a NaN metric (stored as NULL), is different from any number.
- Case-sensitive ``LIKE`` compiles to ``GLOB`` with the pattern translated in Python (``%`` to
  ``*``, ``_`` to ``?``, GLOB's own ``*?[`` put in brackets): SQLite's ``LIKE`` ignores ASCII
  case, and ``PRAGMA case_sensitive_like`` would change it for the whole connection. ``ILIKE``
  compiles to SQLite's ``LIKE``.
- Dates are turned into epoch seconds here, before binding, so a bad one is reported at its
  literal instead of silently matching nothing.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Literal, NoReturn, TypeAlias

from nbmlops.errors import FilterSyntaxError
from nbmlops.filter import And, Compare, In, IsNull, Like, Node, Not, Or, Scalar

__all__ = ["compile_filter"]

_Sql: TypeAlias = tuple[str, list[object]]
_Kind: TypeAlias = Literal["text", "number", "time"]

# namespace -> (table, alias); the alias's value column is chosen per literal below.
KEY_TABLES = {
    "params": ("params", "p"),
    "metrics": ("latest_metrics", "m"),
    "tags": ("tags", "t"),
}
# Value columns that may be NULL: a param that is not a number, a NaN metric.
_NULLABLE_VALUES = frozenset({"p.value_num", "m.value"})
# attribute -> (SQL expression over r and e, kind, nullable)
_ATTRIBUTE_COLUMNS: dict[str, tuple[str, _Kind, bool]] = {
    "status": ("r.status", "text", False),
    "name": ("r.name", "text", True),
    "run_id": ("r.run_id", "text", False),
    "experiment": ("e.name", "text", False),
    "start_time": ("r.start_time", "time", False),
    "end_time": ("r.end_time", "time", True),
    "duration_s": ("(r.end_time - r.start_time)", "number", True),
    "user": ("r.user", "text", True),
    "host": ("r.host", "text", True),
    "notebook": ("r.notebook", "text", True),
    "cell_id": ("r.cell_id", "text", True),
    "cell_version": ("r.cell_version", "text", True),
    "execution_count": ("r.execution_count", "number", True),
}

_OPERATORS = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_STATUSES = ("running", "finished", "failed", "interrupted")  # the CHECK on runs.status
_RELATIVE = re.compile(r"-\s*(\d+(?:\.\d+)?)\s*([smhdw])")
_FLAT_TERMS = 64
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def compile_filter(node: Node, now: float | None = None) -> tuple[str, list[object]]:
    """Return ``(sql, values)``: a condition over ``r``/``e`` and the values for its ``?``.

    ``now`` (epoch seconds, default the current time) anchors ``'now'``, ``'today'`` and spans
    such as ``'-7d'`` in time comparisons. Raises :class:`~nbmlops.errors.FilterSyntaxError` for
    a filter that parses but cannot mean anything: a metric compared with text, a date that is
    not one, an unknown status.
    """
    return _Compiler(time.time() if now is None else now).node(node)


class _Compiler:
    def __init__(self, now: float) -> None:
        self.now = now

    def node(self, node: Node) -> _Sql:
        if isinstance(node, And | Or):
            if not node.items:
                return ("1", []) if isinstance(node, And) else ("0", [])
            parts = [self.node(item) for item in node.items]
            return _balanced(parts, " AND " if isinstance(node, And) else " OR ")
        if isinstance(node, Not):
            if isinstance(node.item, Not):  # NOT NOT x is x: no parser stack spent on it
                return self.node(node.item.item)
            sql, values = self.node(node.item)
            return f"(NOT {sql})", values
        if isinstance(node, Compare | Like | In | IsNull):
            if node.field.namespace == "attributes":
                return self.attribute(node)
            return self.keyed(node)
        raise TypeError(f"not a filter node: {node!r}")

    # -- params, metrics, tags: one EXISTS per predicate
    def keyed(self, node: Compare | Like | In | IsNull) -> _Sql:
        field = node.field
        if field.namespace not in KEY_TABLES:
            raise ValueError(f"unknown namespace {field.namespace!r} in {node!r}")
        table, alias = KEY_TABLES[field.namespace]
        exists = f"EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.run_id = r.run_id AND "
        if isinstance(node, IsNull):
            sql = f"{exists}{alias}.key = ?)"
            return (sql if node.negated else f"(NOT {sql})"), [field.key]
        if isinstance(node, Compare):
            column, value = self.key_operand(node, node.value, node.value_position)
            op = _operator(node)
            # != is "present and different": NULL (not a number, NaN) differs from any value.
            cond = f"{column} IS NOT ?" if op == "!=" else f"{column} {op} ?"
            return f"{exists}{alias}.key = ? AND {cond})", [field.key, value]
        if isinstance(node, Like):
            if field.namespace == "metrics":
                _fail(node, f"LIKE compares text, but {field} holds numbers", node.value_position)
            cond, pattern = _like(f"{alias}.value", node)
            return f"{exists}{alias}.key = ? AND {cond})", [field.key, pattern]
        groups: dict[str, list[object]] = {}
        for value, position in _in_values(node):
            column, bound = self.key_operand(node, value, position)
            groups.setdefault(column, []).append(bound)
        if node.negated:
            # value_num and metric values may be NULL, which is in no list.
            conds = [
                f"({col} IS NULL OR {col} NOT IN ({_marks(vals)}))"
                if col in _NULLABLE_VALUES
                else f"{col} NOT IN ({_marks(vals)})"
                for col, vals in groups.items()
            ]
            cond = " AND ".join(conds)
        else:
            cond = " OR ".join(f"{col} IN ({_marks(vals)})" for col, vals in groups.items())
        values: list[object] = [field.key]
        for vals in groups.values():
            values.extend(vals)
        return f"{exists}{alias}.key = ? AND ({cond}))", values

    def key_operand(self, node: Compare | In, value: Scalar, position: int) -> tuple[str, object]:
        """The column a literal is compared with, and the value to bind."""
        namespace = node.field.namespace
        if namespace == "tags":
            return "t.value", str(value)
        if namespace == "metrics":
            if isinstance(value, str):
                _fail(
                    node,
                    f"{node.field} holds numbers; compare it with a number, not {value!r}",
                    position,
                )
            return "m.value", _number(value)
        if isinstance(value, str):
            return "p.value", value
        return "p.value_num", _number(value)

    # -- run attributes: columns from the whitelist
    def attribute(self, node: Compare | Like | In | IsNull) -> _Sql:
        field = node.field
        if field.key not in _ATTRIBUTE_COLUMNS:
            raise ValueError(f"unknown attribute {field.key!r} in {node!r}")
        expr, kind, nullable = _ATTRIBUTE_COLUMNS[field.key]
        guard = f"{expr} IS NOT NULL AND " if nullable else ""
        if isinstance(node, IsNull):
            return f"({expr} IS {'NOT ' if node.negated else ''}NULL)", []
        if isinstance(node, Like):
            if kind != "text":
                _fail(node, f"LIKE compares text, but {field} is a number", node.value_position)
            cond, pattern = _like(expr, node)
            return f"({guard}{cond})", [pattern]
        if isinstance(node, Compare):
            value = self.attribute_operand(node, kind, node.value, node.value_position)
            return f"({guard}{expr} {_operator(node)} ?)", [value]
        values = [self.attribute_operand(node, kind, v, p) for v, p in _in_values(node)]
        not_in = "NOT IN" if node.negated else "IN"
        return f"({guard}{expr} {not_in} ({_marks(values)}))", values

    def attribute_operand(
        self, node: Compare | In, kind: _Kind, value: Scalar, position: int
    ) -> object:
        field = node.field
        if kind == "text":
            text = str(value)
            if field.key == "status" and text not in _STATUSES:
                _fail(
                    node,
                    f"unknown status {text!r}; a run's status is one of "
                    + ", ".join(repr(s) for s in _STATUSES),
                    position,
                )
            return text
        if not isinstance(value, str):
            return _number(value)
        if kind == "number":
            _fail(node, f"{field} is a number; compare it with a number, not {value!r}", position)
        seconds = self.epoch(value)
        if seconds is None:
            _fail(
                node,
                f"{value!r} is not a time for {field}; use an ISO-8601 date such as "
                "'2026-11-01' or '2026-11-01T10:00+02:00', epoch seconds, 'now', 'today', "
                "'yesterday' or a span before now such as '-7d'",
                position,
            )
        return seconds

    def epoch(self, text: str) -> float | None:
        """Epoch seconds for an ISO-8601 date/time (naive means UTC) or a time relative to now."""
        word = text.strip().lower()
        if word == "now":
            return self.now
        if word in ("today", "yesterday"):
            day = datetime.fromtimestamp(self.now, UTC).replace(
                hour=0, minute=0, second=0, microsecond=0
            )
            return day.timestamp() - (86400 if word == "yesterday" else 0)
        if m := _RELATIVE.fullmatch(word):
            return self.now - float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()


def _operator(node: Compare) -> str:
    if node.op not in _OPERATORS:
        raise ValueError(f"unknown comparison operator {node.op!r} in {node!r}")
    return _OPERATORS[node.op]


def _like(column: str, node: Like) -> tuple[str, str]:
    """The LIKE/GLOB condition on ``column`` (one ``?``) and the pattern to bind."""
    negation = "NOT " if node.negated else ""
    if not node.case_sensitive:
        return f"{column} {negation}LIKE ?", node.pattern
    glob = "".join(
        "*" if c == "%" else "?" if c == "_" else f"[{c}]" if c in "*?[" else c
        for c in node.pattern
    )
    return f"{column} {negation}GLOB ?", glob


def _in_values(node: In) -> list[tuple[Scalar, int]]:
    if not node.values:
        raise ValueError(f"IN needs at least one value: {node!r}")
    positions = node.value_positions or (node.position,) * len(node.values)
    return list(zip(node.values, positions, strict=True))


def _number(value: int | float) -> int | float:
    return int(value) if isinstance(value, bool) else value


def _marks(values: list[object]) -> str:
    return ", ".join(["?"] * len(values))


def _balanced(parts: list[_Sql], joiner: str) -> _Sql:
    """``parts`` joined in groups of :data:`_FLAT_TERMS`. SQLite refuses a flat ``a OR b OR ...``
    past 1,000 levels of expression depth, and every parenthesised level costs its parser stack
    (about 100 entries deep), so long chains are grouped: one extra level per 64x terms."""
    if len(parts) <= _FLAT_TERMS:
        return "(" + joiner.join(sql for sql, _ in parts) + ")", _concat(parts)
    groups = [
        _balanced(parts[i : i + _FLAT_TERMS], joiner) for i in range(0, len(parts), _FLAT_TERMS)
    ]
    return _balanced(groups, joiner)


def _concat(parts: list[_Sql]) -> list[object]:
    return [value for _, values in parts for value in values]


def _fail(node: Compare | Like | In, message: str, position: int) -> NoReturn:
    raise FilterSyntaxError(message, node.source, position)
