"""What changed between two versions of a feature view, for people (issue #17 item 5).

A view records its definition as the fingerprint saw it: fields (keys, time columns, TTL,
feature dtypes, the source) and, for code, the normalised syntax tree (``ast.dump`` of the
function without its name, docstring, decorators and comments; see
:func:`nbmlops.feature_store.definitions.normalised_code`). That dump is exact but unreadable;
:func:`readable_code` turns it back into Python with :func:`ast.unparse`, rebuilding the tree
from the dump's text by walking it (never ``eval``: the text comes from a store file). What the
normalisation dropped (comments, the docstring, the decorator, formatting) cannot come back.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize

from nbmlops import _display
from nbmlops.feature_store.definitions import FeatureView

NO_SOURCE_NOTE = "(only compiled code was recorded: it was defined without readable source)"


def readable_code(normalised: str | None, name: str = "_") -> str | None:
    """The Python a view's normalised code (``feature_views.source`` or ``transform``) stands
    for, the function named ``name``; None when there is no code or it cannot be read back
    (compiled code only, or a dump this Python cannot rebuild)."""
    if not normalised or normalised.startswith("code:"):
        return None
    try:
        tree = _rebuild(ast.parse(normalised, mode="eval").body)
        if isinstance(tree, ast.FunctionDef | ast.AsyncFunctionDef):
            tree.name = name
        if not isinstance(tree, ast.AST):
            return None
        return ast.unparse(ast.fix_missing_locations(tree))
    except (ValueError, TypeError, SyntaxError, RecursionError, AttributeError):
        return None


_NAMED_CONSTANTS = {"Ellipsis": ..., "inf": float("inf"), "nan": float("nan")}


def _rebuild(node: ast.AST) -> object:
    """The value the ``ast.dump`` expression ``node`` describes: node classes of :mod:`ast`
    called with keywords, lists, and constants as ``repr`` wrote them; anything else refused."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        cls = getattr(ast, node.func.id, None)
        if node.args or not (isinstance(cls, type) and issubclass(cls, ast.AST)):
            raise ValueError(f"not an ast node: {node.func.id}")
        return cls(**{k.arg: _rebuild(k.value) for k in node.keywords if k.arg})
    if isinstance(node, ast.List):
        return [_rebuild(item) for item in node.elts]
    if isinstance(node, ast.Name) and node.id in _NAMED_CONSTANTS:
        return _NAMED_CONSTANTS[node.id]
    return ast.literal_eval(node)


def code_lines(view: FeatureView, width: int | None = None) -> list[str]:
    """The view's code as recorded, readable: its function (or its transformation over the
    source), lines longer than ``width`` wrapped (:func:`wrap_code`), or a note saying why it
    cannot be shown; [] for a view with no code."""
    normalised = view.source if view.source_kind == "function" else view.transform
    if not normalised:
        return []
    code = readable_code(normalised, view.name)
    if code is None:
        return [NO_SOURCE_NOTE if normalised.startswith("code:") else "(code not readable)"]
    return code.splitlines() if width is None else wrap_code(code.splitlines(), width)


def wrap_code(lines: list[str], width: int) -> list[str]:
    """Lines longer than ``width`` broken after a comma or an opening bracket, inside
    brackets, where Python joins lines by itself: the wrapped code still means the same."""
    out: list[str] = []
    for line in lines:
        breaks = _break_points(line) if len(line) > width else []
        indent = " " * (len(line) - len(line.lstrip()) + 4)
        start, prefix = 0, ""
        while breaks and len(prefix) + len(line) - start > width:
            room = start + width - len(prefix)
            fits = [b for b in breaks if start < b <= room]
            later = [b for b in breaks if b > start]
            if not (fits or later):
                break
            # After a comma reads best, unless that leaves most of the line empty.
            commas = [b for b in fits if line[b - 1] == "," and b - start > (room - start) // 2]
            cut = commas[-1] if commas else fits[-1] if fits else later[0]
            out.append(prefix + line[start:cut].rstrip())
            start, prefix = len(line) - len(line[cut:].lstrip()), indent
        out.append(prefix + line[start:])
    return out


def _break_points(line: str) -> list[int]:
    """Positions in ``line`` just after a comma or opening bracket that is inside brackets;
    none when the line is not whole Python tokens (a piece of a multi-line string)."""
    points, depth = [], 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(line.lstrip() + "\n").readline):
            if token.type != tokenize.OP:
                continue
            depth += (token.string in "([{") - (token.string in ")]}")
            if depth > 0 and token.string in ",([{":
                points.append(token.end[1] + len(line) - len(line.lstrip()))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    return points


def ttl_text(seconds: float) -> str:
    return _display.duration(seconds) if seconds else "none"


def definition_lines(view: FeatureView, width: int | None = None) -> list[str]:
    """The definition as text, one fact a line, so two versions diff line by line; code
    wrapped to ``width`` (:func:`wrap_code`)."""
    source = view.source_kind
    if view.source and view.source_kind != "function":
        source += f" {view.source}"
    lines = [
        f"entity     {view.entity} (keys: {', '.join(view.keys)})",
        f"timestamp  {view.timestamp}",
        f"created    {view.created or '-'}",
        f"ttl        {ttl_text(view.ttl_seconds)}",
        f"source     {source}",
        "features",
        *(f"  {name}: {dtype}" for name, dtype in view.features),
    ]
    code = code_lines(view, None if width is None else width - 2)
    if code:
        lines += ["transform" if view.transform else "code", *(f"  {line}" for line in code)]
    return lines


def definition_diff(old: FeatureView, new: FeatureView, width: int | None = None) -> list[str]:
    """The unified diff of two versions' definitions (:func:`definition_lines`), its lines at
    most ``width`` long but for overlong code tokens."""
    return list(
        difflib.unified_diff(
            definition_lines(old, width and width - 1),
            definition_lines(new, width and width - 1),
            old.ref,
            new.ref,
            lineterm="",
            n=2,
        )
    )


def what_changed(old: FeatureView | None, new: FeatureView) -> str:
    """One line: what ``new`` changed from ``old`` (the version before it), e.g.
    ``ttl 2 h 00 min -> 3 h 00 min; + trips (int64); code``."""
    if old is None:
        return "first version"
    parts = []
    for label, before, after in (
        ("keys", ", ".join(old.keys), ", ".join(new.keys)),
        ("timestamp", old.timestamp, new.timestamp),
        ("created", old.created or "-", new.created or "-"),
        ("ttl", ttl_text(old.ttl_seconds), ttl_text(new.ttl_seconds)),
        ("source", old.source_kind, new.source_kind),
    ):
        if before != after:
            parts.append(f"{label} {before} -> {after}")
    same_kind = old.source_kind == new.source_kind
    if same_kind and old.source != new.source:
        parts.append("code" if new.source_kind == "function" else "source")
    if old.transform != new.transform:
        parts.append("transform")
    was, now = dict(old.features), dict(new.features)
    parts += [f"+ {n} ({d})" for n, d in now.items() if n not in was]
    parts += [f"- {n}" for n in was if n not in now]
    parts += [f"{n} {was[n]} -> {d}" for n, d in now.items() if n in was and was[n] != d]
    if was == now and list(was) != list(now):
        parts.append("feature order")
    return "; ".join(parts) or "-"
