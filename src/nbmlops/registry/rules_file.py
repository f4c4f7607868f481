"""The promotion rules file: a reviewable ``nbmlops.toml`` in git, read and checked.

File format (one ``[rules.<model>]`` table per model)::

    [rules.wine]
    promote_to = "champion"          # the alias a passing promotion moves (default "champion")
    if_no_champion = "pass"          # rules naming champion.* when the alias points nowhere
    require = [
        "metrics.mae < champion.metrics.mae",              # strict: must be better
        "metrics.mae <= 50",                                # absolute bound
        "metrics.mae <= champion.metrics.mae - 0.5",        # better by an absolute margin
        "metrics.mae <= champion.metrics.mae * 0.95",       # better by 5 % (positive metric)
        "metrics.r2 >= champion.metrics.r2 + 5% * abs(champion.metrics.r2)",  # MLflow's relative
        "dataset.X_test == champion.dataset.X_test",        # evaluated on the same data
        "params.RandomForestRegressor.n_estimators <= 500",
    ]

The expressions themselves (grammar, evaluation) are :mod:`nbmlops.registry.rule_language`. Here:
reading the TOML, checking each table, finding the line of each key and rule for the messages,
and the file's state in git, recorded with each promotion.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbmlops.capture.environment import git
from nbmlops.errors import RegistryError, RulesFileError
from nbmlops.registry.model_version import check_alias, check_name
from nbmlops.registry.rule_language import DEFAULT_ALIAS, Rule, parse_rule

RULES_FILENAME = "nbmlops.toml"
_TABLE_KEYS = ("promote_to", "require", "if_no_champion", "description")


# -- the file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelRules:
    """The ``[rules.<model>]`` table of one model."""

    model: str
    promote_to: str
    require: tuple[Rule, ...]
    if_no_champion: str = "pass"
    description: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class RulesFile:
    """A parsed and checked rules file: its path, exact bytes and one table per model."""

    path: Path
    data: bytes
    models: dict[str, ModelRules] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        """The sha256 of the file's bytes, recorded with each promotion decision."""
        return hashlib.sha256(self.data).hexdigest()

    def for_model(self, name: str) -> ModelRules:
        """The ``[rules.<name>]`` table; RegistryError naming the tables there are if none."""
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            raise RegistryError(
                f"{self.path} has no [rules.{name}] table (tables for: {known}). Add one with "
                f'promote_to = "champion" and require = [...], or move the alias directly with '
                "nbmlops.set_alias."
            ) from None


def find_rules_file(start: Path) -> Path | None:
    """The nearest ``nbmlops.toml`` from ``start`` (the store's folder) upwards, like git."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / RULES_FILENAME
        if candidate.is_file():
            return candidate
    return None


def rules_path(home: Path, given: str | Path | None, *, wanted: str, argument: str) -> Path:
    """``given``, or the nearest ``nbmlops.toml`` from the store's folder ``home`` upwards; when
    there is none, a RegistryError saying what to write in one (``wanted``) or which
    ``argument`` to pass instead."""
    if given is not None:
        return Path(given)
    found = find_rules_file(home)
    if found is None:
        raise RegistryError(
            f"No {RULES_FILENAME} found from {home} upwards. Create one at the project root "
            f"with {wanted}, commit it, or pass {argument}=."
        )
    return found


def load_rules(path: Path | str) -> RulesFile:
    """Read and check a rules file; RulesFileError (with the line) for anything malformed."""
    path = Path(path)
    data, lines, document = read_document(path)
    rules = document.get("rules", {})
    if not isinstance(rules, dict):
        raise RulesFileError(
            "'rules' must be a table of [rules.<model>] tables", path, key_line(lines, "rules")
        )
    models: dict[str, ModelRules] = {}
    for model, table in rules.items():
        models[model] = _model_rules(path, lines, model, table)
    return RulesFile(path, data, models)


def read_document(path: Path) -> tuple[bytes, list[str], dict[str, Any]]:
    """The file's bytes, its lines and its TOML document; RulesFileError with the line for a
    file that cannot be read, is not UTF-8 or is not TOML. Shared with the alert tables of
    :mod:`nbmlops.monitoring.alerts`, which live in the same file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RulesFileError(f"cannot read the rules file ({exc.strerror or exc})", path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data[: exc.start].count(b"\n") + 1
        raise RulesFileError("the file is not UTF-8 text", path, bad_line) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        line: int | None = None
        if match is None:
            match = re.search(r"\s*\(at end of document\)$", message)
            line = text.count("\n") + 1 if match else None
        else:
            line = int(match.group(1))
        reason = message[: match.start()] if match else message
        raise RulesFileError(f"invalid TOML: {reason}", path, line) from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise RulesFileError("invalid TOML: arrays or tables nested too deeply", path) from None
    return data, text.splitlines(), document


def _model_rules(path: Path, lines: list[str], model: str, table: object) -> ModelRules:
    header = table_line(lines, ("rules", model))
    if not isinstance(table, dict):
        raise RulesFileError(
            f"rules.{model} must be a table ([rules.{model}]) with promote_to and require",
            path,
            header or key_line(lines, model),
        )
    try:
        check_name(model)
    except RegistryError as exc:
        raise RulesFileError(str(exc), path, header) from None
    for key in table:
        if key not in _TABLE_KEYS:
            raise RulesFileError(
                f"unknown key {key!r} in [rules.{model}]; the keys are {', '.join(_TABLE_KEYS)}",
                path,
                key_line(lines, key, header) or header,
            )
    promote_to = table.get("promote_to", DEFAULT_ALIAS)
    try:
        if not isinstance(promote_to, str):
            raise RegistryError(f"promote_to must be an alias name (text), not {promote_to!r}")
        check_alias(promote_to)
    except RegistryError as exc:
        raise RulesFileError(str(exc), path, key_line(lines, "promote_to", header)) from None
    if_no_champion = table.get("if_no_champion", "pass")
    if if_no_champion not in ("pass", "fail"):
        raise RulesFileError(
            f'if_no_champion must be "pass" or "fail", not {if_no_champion!r}',
            path,
            key_line(lines, "if_no_champion", header),
        )
    description = table.get("description")
    if description is not None and not isinstance(description, str):
        raise RulesFileError(
            "description must be text", path, key_line(lines, "description", header)
        )
    require = table.get("require")
    require_line = key_line(lines, "require", header)
    if not isinstance(require, list) or not require:
        raise RulesFileError(
            f'[rules.{model}] needs require = ["metrics.<m> < champion.metrics.<m>", ...], '
            "a non-empty list of rules",
            path,
            require_line or header,
        )
    for entry in require:
        if not isinstance(entry, str):
            raise RulesFileError(
                f'each rule is a string like "metrics.mae <= 50", not {entry!r}',
                path,
                require_line,
            )
    found = entry_lines(lines, require, (require_line or header or 1) - 1)
    parsed = [
        parse_rule(entry, path=path, line=line or require_line)
        for entry, line in zip(require, found, strict=True)
    ]
    return ModelRules(model, promote_to, tuple(parsed), str(if_no_champion), description, header)


# Compiled on first use: importing the registry stays cheap.
@functools.cache
def _header() -> re.Pattern[str]:
    return re.compile(r"^\s*\[(?!\[)(?P<key>[^\]]+)\]\s*(?:#.*)?$")


@functools.cache
def _key_part() -> re.Pattern[str]:
    return re.compile(r"\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|([A-Za-z0-9_-]+))\s*(\.|$)")


def _split_key(key: str) -> tuple[str, ...] | None:
    parts: list[str] = []
    pos = 0
    while pos < len(key):
        match = _key_part().match(key, pos)
        if match is None:
            return None
        parts.append(next(g for g in match.groups()[:3] if g is not None))
        pos = match.end()
    return tuple(parts)


def table_line(lines: list[str], key: tuple[str, ...]) -> int | None:
    for number, text in enumerate(lines, 1):
        match = _header().match(text)
        if match and _split_key(match.group("key")) == key:
            return number
    return None


def key_line(lines: list[str], key: str, header: int | None = None) -> int | None:
    """The line of ``key = ...`` in the table whose header is on line ``header`` (1-based), or
    anywhere in the file when there is no header line."""
    pattern = re.compile(rf"^\s*(?:{re.escape(key)}|\"{re.escape(key)}\")\s*=")
    first, last = 0, len(lines)
    if header is not None:
        first = header
        last = next(
            (i for i in range(header, len(lines)) if lines[i].lstrip().startswith("[")), len(lines)
        )
    for index in range(first, last):
        if pattern.match(lines[index]):
            return index + 1
    return None


def entry_lines(lines: list[str], entries: list[str], start: int) -> list[int | None]:
    """The line of each of ``entries`` (the strings of one TOML list), searched from line index
    ``start``; a string written twice is searched for after its previous line."""
    seen: dict[str, int] = {}
    found: list[int | None] = []
    for entry in entries:
        line = _value_line(lines, seen.get(entry, start), entry)
        if line is not None:
            seen[entry] = line
        found.append(line)
    return found


def _value_line(lines: list[str], start: int, value: str) -> int | None:
    quoted = (f'"{value}"', f"'{value}'", f'"""{value}"""', f"'''{value}'''")
    for index in range(start, len(lines)):
        if any(q in lines[index] for q in quoted):
            return index + 1
    for index in range(start, len(lines)):
        if value and value in lines[index]:
            return index + 1
    return None


# -- git state of the rules file ------------------------------------------------------------


@dataclass(frozen=True)
class RulesSource:
    """Where the rules came from: the file, its content hash and its state in git."""

    path: str
    sha256: str
    git_commit: str | None
    git_status: str  # committed, modified, untracked, not in git

    @property
    def dirty(self) -> bool:
        """True when the rules evaluated are not the ones committed at ``git_commit``."""
        return self.git_status in ("modified", "untracked")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "git_commit": self.git_commit,
            "git_status": self.git_status,
            "dirty": self.dirty,
        }


def rules_source(rules: RulesFile) -> RulesSource:
    """Where ``rules`` came from: its resolved path, sha256, git commit and git status."""
    folder = rules.path.resolve().parent
    name = rules.path.name
    commit = git(folder, "rev-parse", "HEAD")
    if commit is None and git(folder, "rev-parse", "--is-inside-work-tree") is None:
        status = "not in git"
    elif not (git(folder, "ls-files", "--", name) or "").strip():
        status = "untracked"
    else:
        changed = git(folder, "status", "--porcelain", "--", name)
        status = "modified" if (changed or "").strip() else "committed"
    return RulesSource(
        str(rules.path.resolve()), rules.sha256, commit.strip() if commit else None, status
    )
