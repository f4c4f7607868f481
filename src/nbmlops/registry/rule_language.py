"""The promotion rules' expression language: parsing one rule and evaluating it.

Rule grammar: ``<expression> <op> <expression>`` with ``op`` one of ``< <= > >= == !=``, or a
true/false operand alone (``evaluation.unseen`` means ``evaluation.unseen == true``). An
expression is built from numbers (``0.5``, ``1e-3``, ``5%`` = 0.05), strings (``'rf'``),
``true``/``false``, operands, ``+ - * /``, parentheses and ``abs(x)``, ``min(x, y)``,
``max(x, y)``. Operands:

* ``metrics.<key>``: the version's metrics at registration (the training run's latest values);
* ``params.<key>``: the training run's params (keys may contain dots);
* ``dataset.<name>``: the fingerprint of the training run's dataset with that name (compare
  with ``==``/``!=`` only); a name that is not a plain identifier goes in backticks:
  ``dataset.`data/eval.csv```, and so can any key;
* ``evaluation.<field>``: the version's latest evaluation (``nbm.evaluate``; table
  ``evaluations``): ``evaluation.unseen`` and ``evaluation.comparable`` (true/false: none of its
  rows is in the training data; same columns and types, no drift), ``evaluation.status``
  (``'unseen'``, ``'leaky'``, ``'not_comparable'`` or ``'unchecked'``), ``evaluation.dataset``
  (the fingerprint of the data it was evaluated on) and ``evaluation.metrics.<key>``;
* ``champion.<one of the above>``: the same thing on the version ``promote_to`` points at now,
  whatever that alias is called;
* ``review.<field>``: the approvals of the candidate (``nbmlops review approve NAME/VERSION
  --by NAME``; table ``approvals``), counted once per approver: ``review.approved`` (true/false:
  someone approved it), ``review.approvals`` (how many people), and the same two with
  self-approval refused, ``review.approved_by_other`` and ``review.approvals_by_others``: an
  approval by the candidate's creator (``model_versions.created_by``, or the user of its
  training run) does not count there. The candidate's only: ``champion.review`` is not an
  operand.

A version with no evaluation, or whose evaluation could not check what the rule names
(``unchecked``: its training data is not known), does not pass a rule naming it (status
"missing", the reason says so). A rule that fails on ``evaluation.unseen`` or
``evaluation.comparable`` gives what the evaluation found (rows in the training data, failing
columns). A rule comparing metrics of the candidate with the champion's (``metrics.<key>``, whose
data is the latest evaluation recorded on the training run, or ``evaluation.metrics.<key>``)
warns in its reason when the two were evaluated on different data: the comparison is then of two
test sets as much as of two models. ``dataset.X_test == champion.dataset.X_test`` turns that
warning into a requirement.

Every rule must pass. A missing or NaN value fails its rule with a reason naming it. When the
alias points at no version yet, rules that name ``champion`` pass with the reason
"no champion yet" (``if_no_champion = "fail"`` makes them fail instead), so the first version
can become champion on the absolute rules alone. MLflow's ``mlflow.validate_evaluation_results``
instead fails a comparison whose baseline metric is missing; nbmlops does the same when a
champion exists but lacks the metric.

MLflow ``MetricThreshold`` in this syntax (``m`` a metric, ``c`` = ``champion.metrics.m``):

======================================  =====================================================
MetricThreshold                         rule
======================================  =====================================================
threshold=t, greater_is_better=True      ``metrics.m >= t``
threshold=t, greater_is_better=False     ``metrics.m <= t``
min_absolute_change=d, greater=True      ``metrics.m >= c + d``
min_absolute_change=d, greater=False     ``metrics.m <= c - d``
min_relative_change=r, greater=True      ``metrics.m >= c + r * abs(c)``
min_relative_change=r, greater=False     ``metrics.m <= c - r * abs(c)``
======================================  =====================================================

MLflow compares with ``>=``/``<=`` only and, for a zero baseline with a relative change, falls
back to "strictly better by 1e-10"; here write ``>``/``<`` to demand strict improvement.
Arithmetic is decimal, on the values as Python prints them: ``0.85 >= 0.8 + 0.05`` passes
(MLflow adds in binary floating point, gets 0.8500000000000001 and fails that case).

The file that holds the rules is :mod:`nbmlops.registry.rules_file`.

The operands are a parameter of the language (:class:`Vocabulary`): promotion rules name
``metrics``, ``params``, ``dataset`` and ``champion.*`` (:data:`PROMOTION`); the alert conditions
of :mod:`nbmlops.monitoring.alerts` name ``drift_share``, ``skew.mae``, ``labels.count`` and so on
with the same grammar, arithmetic, messages and line numbers, evaluated by :func:`evaluate_with`.

An ``ast``-whitelist over Python's parser was considered and not taken: ``5%``, backticked keys
and ``true``/``false`` are not Python, and the messages (a column under the bad token, "not a
number and cannot be used with '+'") would need this much code again to keep.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from nbmlops.errors import RulesFileError

DEFAULT_ALIAS = "champion"
_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_FUNCTIONS: dict[str, tuple[int, Callable[..., float]]] = {
    "abs": (1, abs),
    "min": (2, min),
    "max": (2, max),
}
_KINDS = {"metrics": "number", "params": "any", "dataset": "text", "evaluation": "any"}
_PLACEHOLDERS = {
    "metrics": "<key>",
    "params": "<key>",
    "dataset": "<name>",
    "evaluation": "<field>",
}
_EVALUATION_FIELDS = {"unseen": "bool", "comparable": "bool", "status": "text", "dataset": "text"}
_REVIEW_FIELDS = {
    "approved": "bool",
    "approvals": "number",
    "approved_by_other": "bool",
    "approvals_by_others": "number",
}
_UNORDERED = ("text", "bool")  # value types only == and != compare

Ref = tuple[bool, str, str]
"""What an operand refers to: (on the champion?, kind, key), e.g. (False, "metrics", "mae")."""


@dataclass(frozen=True)
class Vocabulary:
    """The operands one kind of rule can name.

    ``operand(parts, text)`` turns an operand's dotted parts (backticks removed) into its
    :data:`Ref` and value type (number, text or any: what the parser can know), and raises
    ValueError saying what exists for an operand the language does not have. ``subjects`` names
    the operands in "the rule compares two constants; name ..."; ``unordered``, the values only
    ``==`` and ``!=`` compare. Value type "bool" is true/false: compared with ``==``/``!=`` only,
    and an operand of that type may stand alone as a rule."""

    operand: Callable[[list[str], str], tuple[Ref, str]]
    subjects: str
    unordered: str


def _promotion_operand(parts: list[str], text: str) -> tuple[Ref, str]:
    champion = parts[0] == "champion"
    if champion:
        parts = parts[1:]
    if parts and parts[0] == "review":
        return _review_operand(parts, text, champion)
    if not parts or parts[0] not in _KINDS:
        prefix = "champion." if champion else ""
        names = ", ".join(f"{prefix}{k}.{_PLACEHOLDERS[k]}" for k in _KINDS)
        raise ValueError(
            f"unknown operand {text!r}: use {names}"
            + ("" if champion else ", review.<field> or champion.<...>")
        )
    if len(parts) < 2:
        raise ValueError(f"{text!r} needs a key after {parts[0]!r}")
    key = ".".join(parts[1:])
    if parts[0] == "evaluation":
        prefix = "champion.evaluation" if champion else "evaluation"
        return (champion, "evaluation", key), _evaluation_field(parts[1:], text, prefix)
    return (champion, parts[0], key), _KINDS[parts[0]]


def _review_operand(parts: list[str], text: str, champion: bool) -> tuple[Ref, str]:
    """``review.<field>``: the candidate's approvals (the champion was approved when it was
    promoted, if its rules said so; its approvals are not a condition of the candidate's)."""
    names = ", ".join(f"review.{f}" for f in _REVIEW_FIELDS)
    if champion:
        raise ValueError(f"{text!r}: approvals are the candidate's; use {names}")
    field = ".".join(parts[1:])
    if field not in _REVIEW_FIELDS:
        raise ValueError(f"unknown operand {text!r}: use {names}")
    return (False, "review", field), _REVIEW_FIELDS[field]


def _evaluation_field(parts: list[str], text: str, prefix: str) -> str:
    """The value type of ``evaluation.<parts>``."""
    if parts[0] == "metrics":
        if len(parts) < 2:
            raise ValueError(f"{text!r} needs a key after 'metrics'")
        return "number"
    field = ".".join(parts)
    if field not in _EVALUATION_FIELDS:
        names = ", ".join(f"{prefix}.{f}" for f in _EVALUATION_FIELDS)
        raise ValueError(f"unknown operand {text!r}: use {names} or {prefix}.metrics.<key>")
    return _EVALUATION_FIELDS[field]


PROMOTION = Vocabulary(_promotion_operand, "a metric, param or dataset", "text and datasets")
"""The operands of promotion rules (``[rules.<model>] require``)."""


# -- expressions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expr:
    """A node of a rule's expression; ``start``/``end`` are offsets into the rule text."""

    kind: str  # num, str, bool, ref, neg, binop, call
    start: int
    end: int
    value: Any = None  # literal value; operator; function name
    ref: Ref | None = None  # (champion?, kind, key) of an operand
    args: tuple[Expr, ...] = ()
    ref_type: str = "any"  # the operand's value type, as its Vocabulary says

    @property
    def value_type(self) -> str:
        """number, text, bool or any (params can be either): what the parser can know."""
        if self.kind in ("num", "neg", "binop", "call"):
            return "number"
        if self.kind == "str":
            return "text"
        if self.kind == "bool":
            return "bool"
        return self.ref_type

    def refs(self) -> list[Expr]:
        if self.kind == "ref":
            return [self]
        return [r for a in self.args for r in a.refs()]


@dataclass(frozen=True)
class Rule:
    """One ``require`` entry: ``lhs op rhs``."""

    text: str
    line: int | None
    op: str
    lhs: Expr
    rhs: Expr

    def operand_text(self, expr: Expr) -> str:
        return self.text[expr.start : expr.end].strip()

    def operands(self) -> list[Ref]:
        """What the rule's operands refer to, left to right."""
        return [r.ref for r in (*self.lhs.refs(), *self.rhs.refs()) if r.ref is not None]

    @property
    def alone(self) -> bool:
        """A true/false operand written alone: its ``== true`` is implied, not in the text."""
        return self.rhs.start == self.rhs.end


class _Parser:
    def __init__(self, text: str, vocabulary: Vocabulary) -> None:
        self.text = text
        self.vocabulary = vocabulary
        self.tokens: list[tuple[str, str, int, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _token().match(text, pos)
            if match is None or match.lastgroup is None:
                stripped = len(text[pos:]) - len(text[pos:].lstrip())
                raise self.error(f"unexpected character {text[pos + stripped]!r}", pos + stripped)
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind), match.end()))
            pos = match.end()
        self.i = 0

    def error(self, message: str, position: int | None = None) -> ValueError:
        if position is None:
            position = self.tokens[self.i][2] if self.i < len(self.tokens) else len(self.text)
        return ValueError(f"{message} at column {position + 1}")

    def peek(self) -> tuple[str, str, int, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int, int]:
        token = self.peek()
        if token is None:
            wanted = f"{value!r}" if value else "an operand"
            raise self.error(f"expected {wanted} at the end of the rule")
        if value is not None and token[1] != value:
            raise self.error(f"expected {value!r}, found {token[1]!r}")
        self.i += 1
        return token

    def rule(self) -> tuple[str, Expr, Expr]:
        if not self.tokens:
            raise ValueError("empty rule")
        lhs = self.sum()
        token = self.peek()
        if token is None and lhs.kind == "ref" and lhs.value_type == "bool":
            return "==", lhs, Expr("bool", lhs.end, lhs.end, True)
        if token is None or token[1] not in _COMPARISONS:
            found = "the end of the rule" if token is None else repr(token[1])
            raise self.error(f"expected a comparison (< <= > >= == !=), found {found}")
        op = self.take()[1]
        rhs = self.sum()
        extra = self.peek()
        if extra is not None:
            what = "a second comparison" if extra[1] in _COMPARISONS else repr(extra[1])
            raise self.error(f"unexpected {what} after the comparison; write one rule per entry")
        return op, lhs, rhs

    def sum(self) -> Expr:
        node = self.product()
        while (token := self.peek()) is not None and token[1] in ("+", "-"):
            self.take()
            right = self.product()
            node = self._binop(token[1], node, right)
        return node

    def product(self) -> Expr:
        node = self.unary()
        while (token := self.peek()) is not None and token[1] in ("*", "/"):
            self.take()
            right = self.unary()
            node = self._binop(token[1], node, right)
        return node

    def _binop(self, op: str, left: Expr, right: Expr) -> Expr:
        for side in (left, right):
            if side.value_type in _UNORDERED:
                what = self.text[side.start : side.end].strip()
                raise self.error(f"{what!r} is not a number and cannot be used with {op!r}")
        return Expr("binop", left.start, right.end, op, args=(left, right))

    def unary(self) -> Expr:
        token = self.peek()
        if token is not None and token[1] == "-":
            self.take()
            inner = self.unary()
            if inner.value_type in _UNORDERED:
                raise self.error("a text or true/false value cannot be negated", token[2])
            return Expr("neg", token[2], inner.end, args=(inner,))
        return self.primary()

    def primary(self) -> Expr:
        kind, text, start, end = self.take()
        if kind == "num":
            number = float(text[:-1]) / 100 if text.endswith("%") else float(text)
            return Expr("num", start, end, number)
        if kind == "str":
            return Expr("str", start, end, text[1:-1])
        if text == "(":
            inner = self.sum()
            close = self.take(")")
            return replace(inner, start=start, end=close[3])
        if kind == "name":
            return self.name(text, start, end)
        raise self.error(f"expected an operand, found {text!r}", start)

    def name(self, text: str, start: int, end: int) -> Expr:
        if text in ("true", "false"):
            return Expr("bool", start, end, text == "true")
        nxt = self.peek()
        if text in _FUNCTIONS and nxt is not None and nxt[1] == "(":
            self.take("(")
            args = [self.sum()]
            while (token := self.peek()) is not None and token[1] == ",":
                self.take()
                args.append(self.sum())
            close = self.take(")")
            arity = _FUNCTIONS[text][0]
            if len(args) != arity:
                raise self.error(f"{text}() takes {arity} argument(s), got {len(args)}", start)
            for arg in args:
                if arg.value_type in _UNORDERED:
                    raise self.error(f"{text}() needs numbers", arg.start)
            return Expr("call", start, close[3], text, args=tuple(args))
        parts = [_unquote(text)]
        while (token := self.peek()) is not None and token[1] == ".":
            self.take()
            part = self.take()
            if part[0] not in ("name", "num"):
                raise self.error(f"expected a name after '.', found {part[1]!r}", part[2])
            parts.append(_unquote(part[1]))
            end = part[3]
        try:
            ref, ref_type = self.vocabulary.operand(parts, self.text[start:end])
        except ValueError as exc:
            raise self.error(str(exc), start) from None
        return Expr("ref", start, end, ref=ref, ref_type=ref_type)


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith("`") else name


def parse_rule(
    text: str,
    *,
    path: Path | str = "<rule>",
    line: int | None = None,
    vocabulary: Vocabulary = PROMOTION,
) -> Rule:
    """Parse one rule naming ``vocabulary``'s operands; a malformed rule raises
    RulesFileError at ``path``:``line``."""
    try:
        parser = _Parser(text, vocabulary)
        op, lhs, rhs = parser.rule()
        if op not in ("==", "!=") and {lhs.value_type, rhs.value_type} & set(_UNORDERED):
            raise ValueError(f"{op!r} orders numbers; compare {vocabulary.unordered} with == or !=")
        if not lhs.refs() and not rhs.refs():
            raise ValueError(f"the rule compares two constants; name {vocabulary.subjects}")
    except ValueError as exc:
        raise RulesFileError(f"rule {text!r}: {exc}", path, line) from None
    return Rule(text, line, op, lhs, rhs)


# Regular expressions are compiled on first use: importing the registry stays cheap.
@functools.cache
def _token() -> re.Pattern[str]:
    return re.compile(
        r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?%?)"
        r"|(?P<str>\"[^\"]*\"|'[^']*')"
        r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)"
        r"|(?P<op><=|>=|==|!=|<|>|\+|-|\*|/|\(|\)|,|\.))"
    )


# -- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What rules can see of one version. ``evaluation`` is its latest evaluation and
    ``metrics_evaluation`` the latest one recorded on its training run (the data its
    ``metrics`` were measured on, as far as nbmlops knows): rows of table ``evaluations``."""

    ref: str
    metrics: Mapping[str, float]
    params: Mapping[str, object]
    datasets: Mapping[str, str]  # name -> fingerprint (inputs win over outputs)
    evaluation: Mapping[str, Any] | None = None
    metrics_evaluation: Mapping[str, Any] | None = None
    approvals: tuple[Mapping[str, Any], ...] | None = None
    """Its approvals (rows of table ``approvals``: ``by``, ``at``...); None: not known."""
    creators: tuple[str, ...] = ()
    """Who made it (``created_by``, the training run's user): their approvals are
    self-approvals, which ``review.approved_by_other`` and ``review.approvals_by_others``
    refuse."""


@dataclass(frozen=True)
class RuleResult:
    """The outcome of one rule: ``status`` is passed, failed, missing or no champion."""

    rule: str
    line: int | None
    passed: bool
    status: str
    reason: str
    values: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "line": self.line,
            "passed": self.passed,
            "status": self.status,
            "reason": self.reason,
            "values": self.values,
        }


class Unavailable(Exception):
    """Raised by a lookup when an operand has no value: its rule does not pass, with
    ``reason``; ``status`` is "missing", or "no champion" for a promotion rule."""

    def __init__(self, reason: str, status: str = "missing") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def evaluate(
    rule: Rule,
    candidate: Subject,
    champion: Subject | None,
    *,
    alias: str = DEFAULT_ALIAS,
    if_no_champion: str = "pass",
) -> RuleResult:
    """Evaluate one rule for ``candidate`` against ``champion`` (None: no champion yet)."""

    def lookup(ref: Ref, text: str) -> Any:
        return _lookup(ref, text, candidate, champion, alias)

    result = evaluate_with(rule, lookup)
    if result.status == "failed":
        found = _findings(rule, candidate, champion)
        if found:
            result = replace(result, reason=f"{result.reason}: {found}")
    if result.status != "no champion":
        warning = _different_data(rule, candidate, champion)
        if warning:
            result = replace(result, reason=f"{result.reason}; warning: {warning}")
        return result
    passed = if_no_champion == "pass"
    then = "passes" if passed else 'fails (if_no_champion = "fail")'
    return RuleResult(
        rule.text, rule.line, passed, "no champion", f"{result.reason}: rule {then}", result.values
    )


def evaluate_with(rule: Rule, lookup: Callable[[Ref, str], Any]) -> RuleResult:
    """Evaluate one rule, each operand's value from ``lookup(ref, operand text)``, which raises
    :class:`Unavailable` for a value it does not have: the rule then does not pass, with the
    reason (status "missing", or the status raised), never an exception."""
    values: dict[str, Any] = {}

    def value(expr: Expr) -> Any:
        if expr.kind in ("num", "str", "bool"):
            return _decimal(expr.value)
        if expr.kind == "ref":
            assert expr.ref is not None
            text = rule.operand_text(expr)
            found = lookup(expr.ref, text)
            values[text] = found
            return _decimal(found)
        args = [value(a) for a in expr.args]
        for arg, node in zip(args, expr.args, strict=True):
            if not isinstance(arg, Decimal):
                raise Unavailable(f"{rule.operand_text(node)} is {arg!r}, not a number")
        if expr.kind == "neg":
            return -args[0]
        if expr.kind == "call":
            return _FUNCTIONS[expr.value][1](*args)
        left, right = args
        if expr.value == "+":
            return left + right
        if expr.value == "-":
            return left - right
        if expr.value == "*":
            return left * right
        if right == 0:
            raise Unavailable(f"division by zero in {rule.operand_text(expr)}")
        return left / right

    try:
        lhs, rhs = value(rule.lhs), value(rule.rhs)
        if rule.op not in ("==", "!="):
            for side, node in ((lhs, rule.lhs), (rhs, rule.rhs)):
                if not isinstance(side, Decimal):
                    raise Unavailable(f"{rule.operand_text(node)} is {side!r}, not a number")
    except Unavailable as missing:
        return RuleResult(rule.text, rule.line, False, missing.status, missing.reason, values)
    passed = bool(_COMPARE[rule.op](lhs, rhs))
    left = _describe(rule, rule.lhs, lhs)
    right = _describe(rule, rule.rhs, rhs)
    if rule.alone:
        reason = f"{rule.operand_text(rule.lhs)} is {_fmt(lhs)}"
    else:
        reason = f"{left} {rule.op} {right}" if passed else f"{left} is not {rule.op} {right}"
    return RuleResult(
        rule.text, rule.line, passed, "passed" if passed else "failed", reason, values
    )


def _decimal(value: Any) -> Any:
    """Numbers as the decimals Python prints for them, so that rules do decimal arithmetic:
    ``0.8 + 0.05 == 0.85`` holds here, while in binary floating point (and in MLflow's
    ``MetricThreshold``, which fails that equal case) the sum is 0.8500000000000001."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return Decimal(value) if isinstance(value, int) else Decimal(repr(float(value)))


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _lookup(
    ref: Ref,
    text: str,
    candidate: Subject,
    champion: Subject | None,
    alias: str,
) -> Any:
    is_champion, kind, key = ref
    if is_champion and champion is None:
        raise Unavailable(f"no champion yet (@{alias} points at no version)", "no champion")
    subject = champion if is_champion and champion is not None else candidate
    if kind == "metrics":
        if key not in subject.metrics:
            known = ", ".join(sorted(subject.metrics)) or "none"
            raise Unavailable(f"{text}: {subject.ref} has no metric {key!r} (metrics: {known})")
        number = subject.metrics[key]
        if math.isnan(number):
            raise Unavailable(f"{text} is NaN for {subject.ref}")
        return number
    if kind == "evaluation":
        return _evaluation_value(subject, key, text)
    if kind == "review":
        return _review_value(subject, key, text)
    if kind == "params":
        if key not in subject.params:
            raise Unavailable(f"{text}: the training run of {subject.ref} has no param {key!r}")
        return subject.params[key]
    if key not in subject.datasets:
        known = ", ".join(sorted(subject.datasets)) or "none"
        raise Unavailable(f"{text}: {subject.ref} has no dataset named {key!r} (datasets: {known})")
    return subject.datasets[key]


def is_self_approval(approval: Mapping[str, Any], made_by: Sequence[str]) -> bool:
    """Whether the version's maker approved it: the name given (``by``) or the account that
    recorded the approval (``actor``) is one of its creators, so a creator typing another name
    does not make it someone else's approval."""
    creators = {c.casefold() for c in made_by}
    return any(str(approval.get(who) or "").casefold() in creators for who in ("by", "actor"))


def approvers(subject: Subject, *, others_only: bool) -> list[str]:
    """Who approved ``subject``, each person once (names compared without case), in the
    order of their first approval; ``others_only`` leaves out its creators."""
    found: dict[str, str] = {}
    for approval in subject.approvals or ():
        by = str(approval["by"])
        if not (others_only and is_self_approval(approval, subject.creators)):
            found.setdefault(by.casefold(), by)
    return list(found.values())


def _review_value(subject: Subject, key: str, text: str) -> Any:
    if subject.approvals is None:
        raise Unavailable(f"{text}: the approvals of {subject.ref} are not known")
    found = approvers(subject, others_only=key.endswith("_by_other") or key.endswith("_others"))
    return bool(found) if key.startswith("approved") else len(found)


def _evaluation_value(subject: Subject, key: str, text: str) -> Any:
    row = subject.evaluation
    if row is None:
        raise Unavailable(
            f"{text}: {subject.ref} has no evaluation; evaluate it on data it was not trained "
            f"on with nbmlops.evaluate({subject.ref!r}, X_test, y_test)"
        )
    if key.startswith("metrics."):
        metric, metrics = key.removeprefix("metrics."), row["metrics"]
        if metric not in metrics:
            known = ", ".join(sorted(metrics)) or "none"
            raise Unavailable(
                f"{text}: {_evaluation_text(subject.ref, row)} has no metric "
                f"{metric!r} (metrics: {known})"
            )
        number = metrics[metric]
        if number is None or (isinstance(number, float) and math.isnan(number)):
            raise Unavailable(f"{text} is NaN for {_evaluation_text(subject.ref, row)}")
        return number
    if key == "status":
        return row["status"]
    if key == "dataset":
        return row["dataset_id"]
    value = row[key]
    if value is None:
        why = (row.get("report") or {}).get("note") or "the model's training data is not known"
        raise Unavailable(f"{text}: {_evaluation_text(subject.ref, row)} was not checked ({why})")
    return bool(value)


def _evaluation_text(ref: str, row: Mapping[str, Any]) -> str:
    """``evaluation 7 of wine/2 on wine-test@3 (200 rows)``: which evaluation, on what data."""
    return f"evaluation {row['evaluation_id']} of {ref} on {_data_text(row)} ({row['n_rows']} rows)"


def _data_text(row: Mapping[str, Any]) -> str:
    return str(row.get("dataset_ref") or _fmt(row["dataset_id"]))


def _findings(rule: Rule, candidate: Subject, champion: Subject | None) -> str:
    """What the evaluations behind a failed rule's ``unseen``/``comparable``/``status`` found,
    and for a rule on approvals, who approved and how to approve."""
    found = []
    for is_champion, kind, key in dict.fromkeys(rule.operands()):
        if kind == "review" and candidate.approvals is not None:
            found.append(_approvals_text(candidate))
        if kind != "evaluation" or key not in ("unseen", "comparable", "status"):
            continue
        subject = champion if is_champion else candidate
        row = None if subject is None else subject.evaluation
        if subject is not None and row is not None:
            found.append(f"{_evaluation_text(subject.ref, row)} is {_status_text(row)}")
    return "; ".join(dict.fromkeys(found))


def _approvals_text(subject: Subject) -> str:
    """``wine/3 is approved by alice only, who made it (self-approval); approve it with
    nbmlops review approve wine/3 --by NAME``."""
    everyone = approvers(subject, others_only=False)
    others = approvers(subject, others_only=True)
    if not everyone:
        state = f"{subject.ref} has no approval"
    else:
        state = f"{subject.ref} is approved by {', '.join(everyone)}"
        selves = [a for a in everyone if a not in others]
        if selves:
            state += f" ({', '.join(selves)} made it: self-approval)"
    return f"{state}; approve it with: nbmlops review approve {subject.ref} --by NAME"


def _status_text(row: Mapping[str, Any]) -> str:
    """``leaky: 10 of its 200 rows are in the training data (8 with the same target)``."""
    status = str(row["status"]).replace("_", " ")
    report = row.get("report") or {}
    details = []
    overlap = report.get("overlap") or {}
    seen = overlap.get("rows_without_target")
    if row.get("unseen") is False and seen is not None:
        same = overlap.get("rows")
        target = "" if same is None else f" ({same} with the same target)"
        details.append(f"{seen} of its {row['n_rows']} rows are in the training data{target}")
    failing = [str(c) for c in report.get("failing_columns") or ()]
    if row.get("comparable") is False and failing:
        details.append(f"columns that differ from the training data: {', '.join(failing)}")
    return f"{status}: {'; '.join(details)}" if details else status


def _different_data(rule: Rule, candidate: Subject, champion: Subject | None) -> str:
    """A warning when a rule compares the candidate's metrics with the champion's and the two
    were measured on different data (features or target); empty when the same or not known."""
    if champion is None:
        return ""
    sides: dict[bool, list[Mapping[str, Any] | None]] = {False: [], True: []}
    for is_champion, kind, key in rule.operands():
        subject = champion if is_champion else candidate
        if kind == "metrics":
            sides[is_champion].append(subject.metrics_evaluation)
        elif kind == "evaluation" and key.startswith("metrics."):
            sides[is_champion].append(subject.evaluation)
    rows = [*sides[False], *sides[True]]
    if not sides[False] or not sides[True] or None in rows:
        return ""
    if len({(r["dataset_id"], r.get("target_id")) for r in rows if r is not None}) == 1:
        return ""
    shown = dict.fromkeys(
        f"{subject.ref} on {_data_text(r)} ({r['n_rows']} rows)"
        for is_champion, subject in ((False, candidate), (True, champion))
        for r in sides[is_champion]
        if r is not None
    )
    return f"evaluated on different data: {', '.join(shown)}"


def _describe(rule: Rule, expr: Expr, value: Any) -> str:
    shown = _fmt(value)
    if expr.kind in ("num", "str", "bool"):
        return rule.operand_text(expr)
    return f"{rule.operand_text(expr)} = {shown}"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):  # as rules write them
        return "true" if value else "false"
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{32}", value):
        return value[:12] + "…"
    return repr(value) if isinstance(value, str) else str(value)
