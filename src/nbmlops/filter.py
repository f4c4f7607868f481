"""The run filter language: ``params.lr < 0.01 AND (tags.team = 'vision' OR status = 'failed')``.

:func:`parse_filter` turns a filter into a tree of the frozen dataclasses below; the store
compiles that tree into SQL with bound parameters (``nbmlops.store.filter_sql``), so a filter is
never pasted into SQL. A malformed filter raises :class:`~nbmlops.errors.FilterSyntaxError`,
whose message shows the filter with a caret under the offending token.

Grammar (EBNF; keywords are case-insensitive, whitespace separates tokens)::

    filter     = [ or_expr ] ;                      (* empty or blank: no filter *)
    or_expr    = and_expr { "OR" and_expr } ;
    and_expr   = not_expr { "AND" not_expr } ;
    not_expr   = "NOT" not_expr | primary ;         (* NOT binds tighter than AND, AND than OR *)
    primary    = "(" or_expr ")" | predicate ;
    predicate  = field compare_op value
               | field [ "NOT" ] ( "LIKE" | "ILIKE" ) string
               | field [ "NOT" ] "IN" "(" value { "," value } ")"
               | field "IS" [ "NOT" ] "NULL" ;
    compare_op = "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" ;
    field      = namespace "." key | attribute ;
    namespace  = "params" | "param" | "metrics" | "metric" | "tags" | "tag"
               | "attributes" | "attribute" ;
    key        = bare_key | "`" { any } "`" | '"' { any } '"' ;
    bare_key   = key_start { key_start | "." | "/" | "-" } ;
    key_start  = letter | digit | "_" ;             (* letters of any script *)
    attribute  = "status" | "name" | "run_id" | "experiment" | "start_time" | "end_time"
               | "duration_s" | "user" | "host" | "notebook" | "cell_id" | "cell_version"
               | "execution_count" ;                (* MLflow's run_name, user_id also work *)
    value      = number | string | "true" | "false" ;
    number     = [ "+" | "-" ] ( digits [ "." { digit } ] | "." digits ) [ exponent ] ;
    exponent   = ( "e" | "E" ) [ "+" | "-" ] digits ;
    string     = "'" { any } "'" | '"' { any } '"' ;

Names and values:

- A key is written after its namespace and a dot with nothing in between: ``params.lr``,
  ``metrics.val_loss``, ``tags.team``. Unquoted keys may contain letters (of any script),
  digits, ``_``, and after the first character ``.``, ``/`` and ``-``, so
  ``params.optimizer.lr``, ``metrics.train/loss`` and ``tags.data-version`` need no quotes.
  Any other key is quoted with backticks or double quotes: ``params."my key"``,
  ``metrics.`val acc```. Keys are case-sensitive; namespaces, attribute names and keywords are
  not. The MLflow prefixes ``param.``, ``metric.``, ``tag.`` and ``attribute.`` mean the same as
  the plural ones.
- Strings use single or double quotes. Inside, write the quote twice (``'it''s'``) or escape it
  with a backslash (``'it\\'s'``); ``\\\\`` is one backslash and any other backslash is kept as is
  (``'C:\\data'`` is fine). Text values always need quotes: ``status = 'failed'``.
- ``null`` appears only in ``IS NULL`` / ``IS NOT NULL``; ``true`` and ``false`` are values.

Meaning (the store implements it, see ``nbmlops.store.filter_sql``):

- ``IS NULL`` means the run has no such key (attributes: the column is empty, e.g.
  ``end_time IS NULL`` for a run still going); ``IS NOT NULL`` means it has one. A metric whose
  value is NaN is present.
- A run that lacks a key (or whose attribute is empty) never satisfies a comparison, ``LIKE``
  or ``IN`` on it, whatever the operator: ``params.lr != 1`` means "has lr, and it is not 1".
  ``NOT (params.lr = 1)`` also matches runs without lr, since ``NOT`` flips the whole condition.
- Params: a number compares against the param's numeric value (``params.lr = 0.01`` matches a
  logged ``0.010``), a string against its stored text (``params.lr = '0.01'``), ``true`` and
  ``false`` against 1 and 0. A param that is not a number is "not equal" to any number and is
  neither smaller nor greater. Metrics hold numbers only (comparing one with a string is an
  error); a NaN metric is only ``!=`` to anything. Tags are text; a number given for a tag or a
  text attribute is compared as Python prints it (``tags.epoch = 10`` is ``tags.epoch = '10'``,
  ``tags.ok = true`` is ``tags.ok = 'True'``); quote the value to compare exact text.
- ``start_time`` and ``end_time`` accept epoch seconds or an ISO-8601 string (``'2026-11-01'``,
  ``'2026-11-01T10:00'``, ``'2026-11-01T10:00+02:00'``; without a timezone it is UTC), and also
  ``'now'``, ``'today'``, ``'yesterday'`` (midnight UTC) or a span before now such as ``'-7d'``
  (units ``s m h d w``). ``duration_s`` is ``end_time - start_time`` in seconds.
- ``LIKE`` is case-sensitive and ``ILIKE`` is not (ASCII letters only, a SQLite limit), as in
  MLflow; ``%`` matches any run of characters and ``_`` any one character. There is no escape
  character: ``_`` also matches a literal underscore.
- ``status`` is one of ``'running'``, ``'finished'``, ``'failed'``, ``'interrupted'``; a typo is
  an error rather than an empty result.

Limits, each a :class:`~nbmlops.errors.FilterSyntaxError` that names it: at most
:data:`MAX_LENGTH` characters, :data:`MAX_DEPTH` levels of parentheses and ``NOT`` nested in one
another, :data:`MAX_CONDITIONS` conditions and :data:`MAX_VALUES` values. They keep a hostile or
generated filter from exhausting Python's recursion or SQLite's parser stack (measured: SQLite
refuses 15 levels of ``NOT (a OR ...)``, which count 30 here); a long ``OR`` chain compiles to
flat groups of 64, so SQLite's expression-depth limit (1,000) is never reached either.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal, NoReturn, TypeAlias

from nbmlops.errors import FilterSyntaxError

__all__ = [
    "ATTRIBUTES",
    "And",
    "Compare",
    "Field",
    "In",
    "IsNull",
    "Like",
    "Namespace",
    "Node",
    "Not",
    "Or",
    "Scalar",
    "fields_named",
    "parse_filter",
]

Namespace: TypeAlias = Literal["params", "metrics", "tags", "attributes"]
Scalar: TypeAlias = str | int | float | bool
CompareOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]

#: The run attributes a filter can name, bare (``status``) or as ``attributes.status``.
ATTRIBUTES: tuple[str, ...] = (
    "status",
    "name",
    "run_id",
    "experiment",
    "start_time",
    "end_time",
    "duration_s",
    "user",
    "host",
    "notebook",
    "cell_id",
    "cell_version",
    "execution_count",
)
# MLflow's names for the same attributes, so pasted MLflow filters keep working.
_ATTRIBUTE_ALIASES = {"run_name": "name", "user_id": "user"}
_NAMESPACES: dict[str, Namespace] = {
    "params": "params",
    "param": "params",
    "metrics": "metrics",
    "metric": "metrics",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
}
_OPERATORS: dict[str, CompareOp] = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_KEYWORDS = frozenset({"and", "or", "not", "like", "ilike", "in", "is", "null", "true", "false"})


# Position and source are metadata for error messages: they stay out of ==, hash and repr, so
# trees built by hand compare equal to parsed ones.
@dataclass(frozen=True)
class _Located:
    position: int = dataclasses.field(default=0, kw_only=True, compare=False, repr=False)
    source: str = dataclasses.field(default="", kw_only=True, compare=False, repr=False)


@dataclass(frozen=True)
class Field(_Located):
    """A param, metric or tag key, or a run attribute (``Field("attributes", "status")``)."""

    namespace: Namespace
    key: str

    def __str__(self) -> str:
        if self.namespace == "attributes":
            return self.key
        if _BARE_KEY.fullmatch(self.key):
            return f"{self.namespace}.{self.key}"
        return f"{self.namespace}.`{self.key.replace('`', '``')}`"


@dataclass(frozen=True)
class Compare(_Located):
    """``field op value``; ``op`` is normalised (``==`` is ``=``, ``<>`` is ``!=``)."""

    field: Field
    op: CompareOp
    value: Scalar
    value_position: int = dataclasses.field(default=0, kw_only=True, compare=False, repr=False)


@dataclass(frozen=True)
class Like(_Located):
    """``field [NOT] LIKE pattern`` (case-sensitive) or ``field [NOT] ILIKE pattern``."""

    field: Field
    pattern: str
    negated: bool = False
    case_sensitive: bool = True
    value_position: int = dataclasses.field(default=0, kw_only=True, compare=False, repr=False)


@dataclass(frozen=True)
class In(_Located):
    """``field [NOT] IN (v1, v2, ...)``."""

    field: Field
    values: tuple[Scalar, ...]
    negated: bool = False
    value_positions: tuple[int, ...] = dataclasses.field(
        default=(), kw_only=True, compare=False, repr=False
    )


@dataclass(frozen=True)
class IsNull(_Located):
    """``field IS NULL`` (the key is absent) or, negated, ``field IS NOT NULL`` (present)."""

    field: Field
    negated: bool = False


@dataclass(frozen=True)
class And(_Located):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(_Located):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(_Located):
    item: Node


Node: TypeAlias = Compare | Like | In | IsNull | And | Or | Not

MAX_LENGTH = 100_000
MAX_DEPTH = 16
MAX_CONDITIONS = 1_000
MAX_VALUES = 10_000  # SQLite binds at most 32,766 values to one statement


def parse_filter(text: str) -> Node | None:
    """Parse a filter into its tree; ``None`` for an empty or blank filter (no filtering).

    >>> parse_filter("params.lr < 0.1")
    Compare(field=Field(namespace='params', key='lr'), op='<', value=0.1)

    Raises :class:`~nbmlops.errors.FilterSyntaxError` pointing at the offending token.
    """
    if not text.strip():
        return None
    if len(text) > MAX_LENGTH:
        _fail(
            f"the filter is {len(text):,} characters long, over the limit of {MAX_LENGTH:,}",
            text[:80] + "...",
            0,
        )
    return _Parser(text).parse()


def fields_named(node: Node) -> list[Field]:
    """The param, metric and tag fields a filter names, each once, in the order written: what
    to check against the keys a store has (``nbmlops.store.runs.unknown_keys``)."""
    found: dict[Field, None] = {}
    pending: list[Node] = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, And | Or):
            pending.extend(reversed(item.items))
        elif isinstance(item, Not):
            pending.append(item.item)
        elif item.field.namespace != "attributes":
            found.setdefault(item.field)
    return list(found)


# ---------------------------------------------------------------------------------------------
# Tokenizer

_Kind: TypeAlias = Literal[
    "field", "word", "keyword", "number", "string", "op", "(", ")", ",", "end"
]


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str  # the lexeme as written, for messages
    position: int
    value: object = None  # number, unquoted string, normalised keyword/operator, or Field


# \w is Unicode-aware: param names come from Python variables, which may be non-ASCII.
_BARE_KEY = re.compile(r"\w[\w./-]*")
_WORD = re.compile(r"[^\W\d]\w*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_START = re.compile(r"[+-]?\.?[0-9]")
# What a mistyped number runs on into (a date, a version): reported whole.
_NUMBER_TAIL = re.compile(r"[\w.:/+-]+")
_PUNCTUATION: dict[str, _Kind] = {"(": "(", ")": ")", ",": ","}
_OPERATOR = re.compile(r"<=|>=|<>|!=|==|=|<|>")


def _fail(message: str, text: str, position: int) -> NoReturn:
    raise FilterSyntaxError(message, text, position)


class _Tokenizer:
    def __init__(self, text: str) -> None:
        self.text = text

    def tokens(self) -> list[_Token]:
        text, i, out = self.text, 0, []
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i >= len(text):
                out.append(_Token("end", "", len(text.rstrip())))
                return out
            ch = text[i]
            if ch in _PUNCTUATION:
                out.append(_Token(_PUNCTUATION[ch], ch, i))
                i += 1
            elif m := _OPERATOR.match(text, i):
                out.append(_Token("op", m.group(), i, _OPERATORS[m.group()]))
                i = m.end()
            elif ch in "'\"":
                value, end = self._quoted(i, "string")
                out.append(_Token("string", text[i:end], i, value))
                i = end
            elif _NUMBER_START.match(text, i):
                token = self._number(i)
                out.append(token)
                i = token.position + len(token.text)
            elif m := _WORD.match(text, i):
                token = self._word(m)
                out.append(token)
                i = token.position + len(token.text)
            elif ch == "`":
                _fail(
                    "a backtick-quoted key needs a namespace in front, e.g. params.`my key`",
                    text,
                    i,
                )
            elif ch == "!":
                _fail("unexpected character '!'; did you mean '!='?", text, i)
            else:
                _fail(f"unexpected character {ch!r}", text, i)

    def _quoted(self, start: int, what: str) -> tuple[str, int]:
        """Read the quoted text opening at ``start``; return it unescaped and the end offset."""
        text, quote = self.text, self.text[start]
        parts: list[str] = []
        i = start + 1
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in (quote, "\\"):
                parts.append(text[i + 1])
                i += 2
            elif ch == quote:
                if i + 1 < len(text) and text[i + 1] == quote:
                    parts.append(quote)
                    i += 2
                else:
                    return "".join(parts), i + 1
            else:
                parts.append(ch)
                i += 1
        _fail(f"unterminated {what}: no closing {quote} for the one here", text, start)

    def _number(self, start: int) -> _Token:
        text = self.text
        m = _NUMBER.match(text, start)
        if m is None:  # "+." or "-." followed by a non-digit
            _fail(f"unexpected character {text[start]!r}", text, start)
        end = m.end()
        if end < len(text) and (tail := _NUMBER_TAIL.match(text, end)):
            written = text[start : tail.end()]
            _fail(
                f"invalid number {written!r}; put text, dates and versions in quotes: '{written}'",
                text,
                start,
            )
        lexeme = m.group()
        value: int | float
        if any(c in lexeme for c in ".eE"):
            value = float(lexeme)
        else:
            value = int(lexeme)
            if abs(value) >= 2**63:  # beyond SQLite's INTEGER
                value = float(value)
        return _Token("number", lexeme, start, value)

    def _word(self, m: re.Match[str]) -> _Token:
        text, start, word = self.text, m.start(), m.group()
        lower = word.lower()
        dot = m.end()
        if dot < len(text) and text[dot] == ".":
            namespace = _NAMESPACES.get(lower)
            if namespace is None:
                _fail(
                    f"unknown namespace {word!r}; write params.<key>, metrics.<key>, "
                    "tags.<key> or attributes.<name>",
                    text,
                    start,
                )
            key_start = dot + 1
            if key_start < len(text) and text[key_start] in '`"':
                key, end = self._quoted(key_start, "key")
                if not key:
                    _fail("empty key", text, key_start)
            elif km := _BARE_KEY.match(text, key_start):
                key, end = km.group(), km.end()
            else:
                _fail(
                    f"expected a key after '{word}.'; quote keys with spaces or symbols: "
                    f'{word}."my key"',
                    text,
                    key_start,
                )
            if namespace == "attributes":
                key = _attribute_name(key, text, key_start)
            field = Field(namespace, key, position=start, source=text)
            return _Token("field", text[start:end], start, field)
        if lower in _KEYWORDS:
            return _Token("keyword", word, start, lower)
        return _Token("word", word, start, lower)


def _attribute_name(name: str, text: str, position: int) -> str:
    lower = name.lower()
    lower = _ATTRIBUTE_ALIASES.get(lower, lower)
    if lower not in ATTRIBUTES:
        _fail(
            f"unknown attribute {name!r}; valid attributes are {', '.join(ATTRIBUTES)} "
            f"(for a key, write params.{name}, metrics.{name} or tags.{name})",
            text,
            position,
        )
    return lower


# ---------------------------------------------------------------------------------------------
# Parser


def _describe(token: _Token) -> str:
    return "end of filter" if token.kind == "end" else repr(token.text)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _Tokenizer(text).tokens()
        self.i = 0
        self.depth = 0  # parentheses and NOTs open around the current token
        self.conditions = 0
        self.values = 0

    # -- helpers
    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "end":
            self.i += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.token.kind == "keyword" and self.token.value in words

    def fail(self, message: str, token: _Token | None = None) -> NoReturn:
        token = token or self.token
        _fail(message, self.text, token.position)

    # -- grammar
    def parse(self) -> Node:
        node = self.or_expr()
        token = self.token
        if token.kind == ")":
            self.fail("unbalanced parentheses: this ')' has no matching '('")
        if token.kind != "end":
            self.fail(f"expected AND or OR between conditions, found {_describe(token)}")
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.at_keyword("or"):
            self.advance()
            items.append(self.and_expr())
        if len(items) == 1:
            return items[0]
        return Or(tuple(items), position=items[0].position, source=self.text)

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.at_keyword("and"):
            self.advance()
            items.append(self.not_expr())
        if len(items) == 1:
            return items[0]
        return And(tuple(items), position=items[0].position, source=self.text)

    def not_expr(self) -> Node:
        if self.at_keyword("not"):
            token = self.advance()
            self.nest(token)
            item = self.not_expr()
            self.depth -= 1
            return Not(item, position=token.position, source=self.text)
        return self.primary()

    def nest(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(
                f"parentheses and NOT nest more than {MAX_DEPTH} levels deep here; "
                "write the condition flatter",
                token,
            )

    def primary(self) -> Node:
        token = self.token
        if token.kind == "(":
            self.advance()
            self.nest(token)
            node = self.or_expr()
            if self.token.kind == "end":
                self.fail("unbalanced parentheses: this '(' is never closed", token)
            if self.token.kind != ")":
                self.fail(f"expected AND, OR or ')', found {_describe(self.token)}")
            self.advance()
            self.depth -= 1
            return node
        if token.kind in ("field", "word"):
            self.conditions += 1
            if self.conditions > MAX_CONDITIONS:
                self.fail(f"the filter has more than {MAX_CONDITIONS} conditions", token)
            return self.predicate(self.field())
        previous = self.tokens[self.i - 1] if self.i else None
        after = f" after {previous.text.upper()}" if previous and previous.kind == "keyword" else ""
        self.fail(
            f"expected a condition{after} such as params.lr > 0.1 or status = 'failed', "
            f"found {_describe(token)}"
        )

    def field(self) -> Field:
        token = self.advance()
        if isinstance(token.value, Field):
            return token.value
        word = str(token.value)
        if word in _NAMESPACES:
            self.fail(f"expected '.' and a key after {token.text!r}, e.g. {token.text}.lr", token)
        name = _attribute_name(token.text, self.text, token.position)
        return Field("attributes", name, position=token.position, source=self.text)

    def predicate(self, field: Field) -> Node:
        token = self.token
        where = field.position  # a predicate is located at its field
        if token.kind == "op":
            self.advance()
            value, value_position = self.value(f"after {token.text!r}")
            op = _OPERATORS[token.text]
            return Compare(
                field, op, value, value_position=value_position, position=where, source=self.text
            )
        negated = False
        if self.at_keyword("not"):
            self.advance()
            negated = True
            if not self.at_keyword("like", "ilike", "in"):
                self.fail(f"expected LIKE, ILIKE or IN after NOT, found {_describe(self.token)}")
        if self.at_keyword("like", "ilike"):
            keyword = self.advance()
            pattern = self.token
            if pattern.kind != "string":
                self.fail(
                    f"{keyword.text.upper()} needs a quoted pattern such as 'abc%', "
                    f"found {_describe(pattern)}"
                )
            self.advance()
            return Like(
                field,
                str(pattern.value),
                negated,
                case_sensitive=keyword.value == "like",
                value_position=pattern.position,
                position=where,
                source=self.text,
            )
        if self.at_keyword("in"):
            self.advance()
            return self.in_list(field, negated)
        if self.at_keyword("is"):
            self.advance()
            is_not = False
            if self.at_keyword("not"):
                self.advance()
                is_not = True
            if not self.at_keyword("null"):
                self.fail(f"expected NULL or NOT NULL after IS, found {_describe(self.token)}")
            self.advance()
            return IsNull(field, is_not, position=where, source=self.text)
        self.fail(
            f"expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN or IS) after {field}, "
            f"found {_describe(token)}"
        )

    def in_list(self, field: Field, negated: bool) -> In:
        opening = self.token
        if opening.kind != "(":
            self.fail(
                f"IN needs a parenthesised list such as IN ('a', 'b'), found {_describe(opening)}"
            )
        self.advance()
        if self.token.kind == ")":
            self.fail("IN needs at least one value between the parentheses")
        values: list[Scalar] = []
        positions: list[int] = []
        while True:
            value, position = self.value("in the IN list")
            values.append(value)
            positions.append(position)
            separator = self.token
            if separator.kind == "end":
                self.fail(
                    "unbalanced parentheses: the '(' of this IN list is never closed", opening
                )
            if separator.kind not in (",", ")"):
                self.fail(f"expected ',' or ')' in the IN list, found {_describe(separator)}")
            self.advance()
            if separator.kind == ")":
                break
        return In(
            field,
            tuple(values),
            negated,
            value_positions=tuple(positions),
            position=field.position,
            source=self.text,
        )

    def value(self, context: str) -> tuple[Scalar, int]:
        token = self.token
        self.values += 1
        if self.values > MAX_VALUES:
            self.fail(f"the filter has more than {MAX_VALUES:,} values", token)
        if token.kind in ("number", "string") and isinstance(token.value, str | int | float):
            self.advance()
            return token.value, token.position
        if self.at_keyword("true", "false"):
            self.advance()
            return token.value == "true", token.position
        if self.at_keyword("null"):
            self.fail("null is only allowed in IS NULL or IS NOT NULL")
        hint = ""
        if token.kind == "word":
            hint = f"; put text in quotes: '{token.text}'"
        elif token.kind == "field":
            hint = "; a field cannot be compared with another field"
        self.fail(
            f"expected a value (a number, a 'quoted string', true or false) {context}, "
            f"found {_describe(token)}{hint}"
        )
