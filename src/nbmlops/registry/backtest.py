"""Rule review: the diff of ``nbmlops.toml`` between two git revisions, the rules it changes,
and a backtest of every past promotion decision under the new rules (issue #18 item 3).

"Productionizing the wrong rules could lead to system outages": a rules change is reviewed like
code, and its review says what the change would have done. Each recorded ``promotion`` event
(``model_events``) is evaluated again under the old and the new ``[rules.<model>]``, with the
candidate and the champion of that moment and the values the decision saw: the evaluations and
approvals recorded in its payload, else those the store held at its time (both tables are
append-only, so "at or before the decision" is exact), and the versions' own metrics, datasets
and params (immutable). A decision whose outcome differs is a *flip*; the exit status of
``nbmlops review rules`` is then 1, so CI can require a human look. Decisions a rule's change
cannot reach (a version already at the alias: ``unchanged``) are not counted.

Other parts of the same file are reviewed by *sections* from the layers above (the alert
tables: :mod:`nbmlops.monitoring.alert_backtest`, which the registry cannot import); each gives
its changes and its backtest, and the review shows them all.

Revisions: ``None`` is the working tree against ``HEAD``; ``A..B`` the file at ``A`` against
``B`` (``A..`` means ``A..HEAD``); ``A...B`` from the merge base of ``A`` and ``B``; a single
``A``, ``A`` against the working tree (as ``git diff A``). Files are read with
``git show REV:path`` into a scratch folder, never into the working tree.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbmlops._display import when
from nbmlops.errors import RegistryError, RulesFileError
from nbmlops.registry.approvals import approvals_at, creators
from nbmlops.registry.model_version import ModelVersion
from nbmlops.registry.promotion import Evaluations, Review, subject
from nbmlops.registry.rule_language import RuleResult, Subject, evaluate
from nbmlops.registry.rules_file import ModelRules, RulesFile, load_rules, rules_path
from nbmlops.store import Store
from nbmlops.store import evaluations as evaluation_sql
from nbmlops.store import registry as sql

WIDTH = 80
_GIT_TIMEOUT_S = 30


# -- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retest:
    """One past decision evaluated again: a promotion (``kind`` "promotion", ``name`` the
    model) or an alert firing (``kind`` "alert", ``name`` the alert). ``old``/``new`` are the
    outcomes under the old and the new rules (None: it cannot be evaluated, ``note`` says
    why); ``rules`` the rules that make the difference."""

    kind: str
    name: str
    model: str
    version: int | None
    at: float
    event_id: int
    recorded: str
    old: str | None
    new: str | None
    rules: tuple[str, ...] = ()
    note: str = ""

    @property
    def flipped(self) -> bool:
        return self.old is not None and self.new is not None and self.old != self.new

    @property
    def subject(self) -> str:
        version = "" if self.version is None else f"/{self.version}"
        if self.kind == "alert":
            return f"[alerts.{self.name}] {self.model}{version}"
        return f"{self.model}{version}"

    @property
    def why(self) -> str:
        """The rules that flip it, or why it cannot be told."""
        return "; ".join(self.rules) if self.flipped else self.note

    def text(self) -> str:
        """``wine/2 at 2026-05-01 14:00:00 UTC: promoted -> rejected (metrics.mae <= 45)``."""
        outcome = f"{self.old} -> {self.new}" if self.flipped else "cannot tell"
        why = f" ({self.why})" if self.why else ""
        return f"{self.subject} at {when(self.at)}: {outcome}{why}"

    def lines(self, width: int = WIDTH) -> list[str]:
        """The decision on one line, what flips it (or why it cannot be told) wrapped below."""
        mark, outcome = ("?", "cannot tell")
        if self.flipped:
            mark, outcome = "FLIP", f"{self.old} -> {self.new}"
        head = f"  {mark:<4} {self.subject} at {when(self.at)}: {outcome}"
        label = "by " if self.flipped else ""
        return [head, *_wrap(f"{label}{self.why}", "         ", width)] if self.why else [head]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "at": self.at,
            "event_id": self.event_id,
            "recorded": self.recorded,
            "old": self.old,
            "new": self.new,
            "flipped": self.flipped,
            "rules": list(self.rules),
            "note": self.note,
        }


@dataclass(frozen=True)
class Backtest:
    """Past decisions of one ``kind`` ("promotion", "alert") evaluated again under new rules;
    ``notes`` say what the recorded values cannot tell."""

    kind: str
    retests: tuple[Retest, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def flips(self) -> list[Retest]:
        """The decisions that would have gone the other way."""
        return [r for r in self.retests if r.flipped]

    @property
    def unknown(self) -> list[Retest]:
        """The decisions that could not be evaluated again (each ``note`` says why)."""
        return [r for r in self.retests if r.old is None or r.new is None]

    @property
    def headline(self) -> str:
        what = {"promotion": "promotion decision", "alert": "alert firing"}.get(
            self.kind, self.kind
        )
        unknown = f", {len(self.unknown)} cannot be told" if self.unknown else ""
        return (
            f"{len(self.retests)} past {what}(s) checked: {len(self.flips)} would have gone "
            f"the other way{unknown}"
        )

    def __str__(self) -> str:
        lines = _wrap(self.headline, "  ", first="")
        for retest in (*self.flips, *self.unknown):
            lines += retest.lines()
        for note in self.notes:
            lines += _wrap(f"note: {note}", "        ", first="  ")
        return "\n".join(_cut(line) for line in lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "retests": [r.to_dict() for r in self.retests],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Change:
    """What a rules change does to one table: ``status`` added, removed or changed; ``details``
    one line each (``+ require: metrics.mae <= 45``, ``window: 1h -> 30m``)."""

    table: str  # rules.<model> or alerts.<name>
    status: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class RulesAt:
    """The rules file at one side of a review: where it came from (``label``: a revision or
    "working tree") and a scratch copy of it (None: the file does not exist there) at its
    place under ``root``, a scratch folder standing for the repository, where a section may
    write files."""

    label: str
    path: Path | None
    root: Path

    def load(self, loader: Callable[[Path], Any]) -> Any:
        """``loader(path)`` (None when absent); a malformed file's RulesFileError names the
        file at this revision rather than the scratch copy."""
        if self.path is None:
            return None
        try:
            return loader(self.path)
        except RulesFileError as exc:
            where = f"{self.path.relative_to(self.root).as_posix()} at {self.label}"
            raise RulesFileError(exc.reason, where, exc.line) from None


Section = Callable[[Store, RulesAt, RulesAt], tuple[list[Change], Backtest]]
"""Another part of the rules file, reviewed: given the old and new file, its changes and its
backtest (the alert tables': :func:`nbmlops.monitoring.alert_backtest.alerts_section`)."""


@dataclass(frozen=True)
class RulesReview:
    """The review of a rules change: the diff, the tables changed, the backtests. ``flipped``
    lists the past decisions the change would have turned; ``exit_code`` is 1 when there is
    one (for CI), else 0."""

    path: str
    old: str  # label of the old side: a revision
    new: str  # a revision, or "working tree"
    diff: str
    changes: tuple[Change, ...] = ()
    backtests: tuple[Backtest, ...] = ()

    @property
    def flipped(self) -> list[Retest]:
        return [r for b in self.backtests for r in b.flips]

    @property
    def exit_code(self) -> int:
        return 1 if self.flipped else 0

    @property
    def headline(self) -> str:
        if not self.diff:
            return f"{self.path}: no change between {self.old} and {self.new}"
        verdict = (
            f"{len(self.flipped)} past decision(s) would have gone the other way"
            if self.flipped
            else "no past decision would have gone the other way"
        )
        return f"{self.path} {self.old} -> {self.new}: {verdict}"

    def __str__(self) -> str:
        """Plain text for a terminal, 80 columns."""
        lines = [*_wrap(self.headline, "  ", first=""), ""]
        if self.changes:
            lines.append("Changed:")
            for change in self.changes:
                lines.append(f"  [{change.table}] {change.status}")
                lines += [line for d in change.details for line in _wrap(d, "      ", first="    ")]
            lines.append("")
        for backtest in self.backtests:
            lines += [*str(backtest).splitlines(), ""]
        if self.diff:
            lines += ["Diff:", *self.diff.splitlines()]
        return "\n".join(_cut(line) for line in lines).rstrip() + "\n"

    def to_markdown(self) -> str:
        """Markdown for a pull-request comment: the verdict, the flips, the changes, the diff."""
        mark = ":warning:" if self.flipped else ":white_check_mark:"
        out = [f"### Rule review: `{self.path}` {self.old} → {self.new}", ""]
        out += [f"{mark} **{_md(self.headline.split(': ', 1)[-1])}**", ""]
        if self.flipped:
            out += [
                "| decision | when | old | new | rule |",
                "|---|---|---|---|---|",
                *(
                    f"| {_md(r.subject)} ({r.kind}) | {when(r.at)} | {r.old} | {r.new} | "
                    f"{_md('; '.join(r.rules))} |"
                    for r in self.flipped
                ),
                "",
            ]
        for backtest in self.backtests:
            out.append(f"- {_md(backtest.headline)}")
            out += [f"  - {_md(r.text())}" for r in backtest.unknown]
            out += [f"  - note: {_md(n)}" for n in backtest.notes]
        if self.changes:
            out += ["", "#### Tables changed", ""]
            for change in self.changes:
                out.append(f"- `[{change.table}]` {change.status}")
                out += [f"  - `{d}`" for d in change.details]
        if self.diff:
            out += ["", "<details><summary>Diff</summary>", "", "```diff", self.diff.rstrip()]
            out += ["```", "", "</details>"]
        return "\n".join(out) + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "old": self.old,
            "new": self.new,
            "diff": self.diff,
            "changes": [
                {"table": c.table, "status": c.status, "details": list(c.details)}
                for c in self.changes
            ],
            "backtests": [b.to_dict() for b in self.backtests],
            "flipped": [r.to_dict() for r in self.flipped],
            "exit_code": self.exit_code,
        }


def _wrap(text: str, indent: str, width: int = WIDTH, first: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_on_hyphens=False,
    )


def _cut(line: str, width: int = WIDTH) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


# -- the review -----------------------------------------------------------------------------


def review_rules(
    store: Store,
    rev_range: str | None = None,
    *,
    path: str | Path | None = None,
    sections: Sequence[Section] = (),
) -> RulesReview:
    """Review the change of the rules file (``path``, or the nearest ``nbmlops.toml`` from the
    store upwards) over ``rev_range``: its diff, the ``[rules.*]`` tables changed and the
    backtest of past promotions, then each of ``sections``."""
    found = rules_path(
        store.home, path, wanted="a [rules.<model>] table (promote_to, require)", argument="path"
    ).resolve()
    root = _toplevel(found.parent)
    relpath = found.relative_to(root).as_posix()
    old_rev, new_rev = revision_range(root, rev_range)
    old_text = None if old_rev is None else _read(root, old_rev, relpath, found)
    new_text = _read(root, new_rev, relpath, found)
    new_label = new_rev or "working tree"
    if new_text is None:
        raise RegistryError(
            f"{relpath} does not exist at {new_label}; there are no rules to review there."
        )
    old_label = old_rev or "no commit yet"
    diff = "".join(
        difflib.unified_diff(
            (old_text or "").splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            f"a/{relpath} ({old_label})",
            f"b/{relpath} ({new_label})",
        )
    )
    with tempfile.TemporaryDirectory(prefix="nbmlops-rules-") as scratch:
        folders = Path(scratch) / "old", Path(scratch) / "new"
        old = RulesAt(old_label, _scratch(folders[0], relpath, old_text), folders[0])
        new = RulesAt(new_label, _scratch(folders[1], relpath, new_text), folders[1])
        old_rules: RulesFile | None = old.load(load_rules)
        new_rules: RulesFile = new.load(load_rules)
        changes = rule_changes(old_rules, new_rules)
        backtests = [backtest_rules(store, old_rules, new_rules)]
        for section in sections:
            more, backtest = section(store, old, new)
            changes += more
            backtests.append(backtest)
    return RulesReview(relpath, old_label, new_label, diff, tuple(changes), tuple(backtests))


def _toplevel(folder: Path) -> Path:
    done = _git(folder, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise RegistryError(
            f"{folder} is not in a git repository: a rules review compares nbmlops.toml "
            "between git revisions. Commit the rules file in git first."
        )
    return Path(done.stdout.strip()).resolve()


def revision_range(root: Path, rev_range: str | None) -> tuple[str | None, str | None]:
    """(old, new) revisions: new None is the working tree, old None a repository with no
    commit yet (everything in the file is new)."""
    if rev_range is None or not rev_range.strip():
        return ("HEAD" if _commit(root, "HEAD") else None), None
    text = rev_range.strip()
    if "..." in text:
        a, b = (part or "HEAD" for part in text.split("...", 1))
        base = _git(root, "merge-base", _check(root, a, text), _check(root, b, text))
        if base.returncode != 0:
            raise RegistryError(f"{a} and {b} have no common ancestor (in {text!r}).")
        return base.stdout.strip()[:12], b
    if ".." in text:
        a, b = (part or "HEAD" for part in text.split("..", 1))
        return _check(root, a, text), _check(root, b, text)
    return _check(root, text, text), None


def _commit(root: Path, rev: str) -> str | None:
    done = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    return done.stdout.strip() if done.returncode == 0 else None


def _check(root: Path, rev: str, rev_range: str) -> str:
    # A revision starting with "-" would reach git as an option (--output=FILE writes a file).
    if rev.startswith("-") or _commit(root, rev) is None:
        raise RegistryError(
            f"{rev!r} (in {rev_range!r}) is not a commit of the git repository {root}; give "
            "a revision range like HEAD~1..HEAD or main..feature, or none for the working tree."
        )
    return rev


def _read(root: Path, rev: str | None, relpath: str, working: Path) -> str | None:
    """The file's text at ``rev`` (None: the working tree), or None when it does not exist."""
    if rev is None:
        if not working.is_file():
            return None
        return working.read_bytes().decode("utf-8", "replace")  # not UTF-8: shown replaced
    done = _git(root, "show", f"{rev}:{relpath}")
    return done.stdout if done.returncode == 0 else None


def _git(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise RegistryError(f"git could not run in {folder} ({exc}); is git installed?") from None


def _scratch(folder: Path, relpath: str, text: str | None) -> Path | None:
    if text is None:
        return None
    copy = folder / relpath
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(text, encoding="utf-8")
    return copy


def rule_changes(old: RulesFile | None, new: RulesFile) -> list[Change]:
    """The ``[rules.<model>]`` tables added, removed or changed, with what changed."""
    before = {} if old is None else old.models
    return [
        change
        for model in dict.fromkeys([*before, *new.models])
        if (change := _table_change(before.get(model), new.models.get(model), model))
    ]


def _table_change(old: ModelRules | None, new: ModelRules | None, model: str) -> Change | None:
    table = f"rules.{model}"
    if old is None or new is None:
        rules = new if new is not None else old
        assert rules is not None
        sign, status = ("+", "added") if new is not None else ("-", "removed")
        return Change(table, status, tuple(f"{sign} require: {r.text}" for r in rules.require))
    details = [
        f"{key}: {getattr(old, key)} -> {getattr(new, key)}"
        for key in ("promote_to", "if_no_champion")
        if getattr(old, key) != getattr(new, key)
    ]
    details += list_changes("require", [r.text for r in old.require], [r.text for r in new.require])
    return Change(table, "changed", tuple(details)) if details else None


def list_changes(key: str, old: Iterable[str], new: Iterable[str]) -> list[str]:
    """``- key: entry`` for each entry removed, ``+ key: entry`` for each one added."""
    old, new = list(old), list(new)
    return [f"- {key}: {e}" for e in old if e not in new] + [
        f"+ {key}: {e}" for e in new if e not in old
    ]


# -- the backtest of promotions -------------------------------------------------------------


def backtest_rules(store: Store, old_rules: RulesFile | None, new_rules: RulesFile) -> Backtest:
    """Every recorded promotion decision evaluated again under ``old_rules`` (None: the
    recorded outcome stands for the old side) and ``new_rules``."""
    retests = []
    for name in sql.model_names(store):
        for event in sql.events_of(store, name):
            payload = json.loads(event.payload) if event.payload else {}
            if event.kind != "promotion" or payload.get("outcome") not in ("promoted", "rejected"):
                continue
            retests.append(_retest(store, name, event, payload, old_rules, new_rules))
    notes = []
    moved = sorted(
        name
        for name, rules in new_rules.models.items()
        if old_rules is not None
        and name in old_rules.models
        and old_rules.models[name].promote_to != rules.promote_to
    )
    if moved:
        notes.append(
            f"promote_to changed for {', '.join(moved)}: past decisions are evaluated against "
            "the champion of the alias they were made for"
        )
    return Backtest("promotion", tuple(retests), tuple(notes))


@dataclass
class _Decision:
    """One recorded decision and what it saw, built once for both sides."""

    store: Store
    name: str
    event: sql.EventRow
    payload: dict[str, Any]
    _subjects: dict[bool, tuple[Subject, Subject | None]] = field(default_factory=dict)

    @property
    def inputs(self) -> dict[str, Any]:
        inputs = self.payload.get("inputs")
        return inputs if isinstance(inputs, dict) else {}

    def built_in(self) -> list[str]:
        """The built-in rules the decision failed (a deprecated candidate): any rules fail."""
        return [
            str(r["rule"])
            for r in self.payload.get("rules", ())
            if str(r.get("rule", "")).startswith("(built in)") and not r.get("passed")
        ]

    def subjects(self, with_params: bool) -> tuple[Subject, Subject | None]:
        if with_params not in self._subjects:
            candidate = self._subject(self.event.version, "candidate", with_params)
            champion_version = self.payload.get("champion")
            champion = (
                None
                if champion_version is None
                else self._subject(int(champion_version), "champion", with_params)
            )
            assert candidate is not None
            self._subjects[with_params] = candidate, champion
        return self._subjects[with_params]

    def _subject(self, version: int | None, role: str, with_params: bool) -> Subject:
        row = None if version is None else sql.version_row(self.store, self.name, version)
        if row is None:
            raise LookupError(f"{self.name}/{version} is not in the store")
        mv = ModelVersion.from_row(self.store, row)
        recorded = self.inputs.get(role) or {}
        review = self._review(mv, recorded) if role == "candidate" else None
        return subject(mv, with_params, self._evaluations(mv, recorded), review)

    def _evaluations(self, mv: ModelVersion, recorded: Mapping[str, Any]) -> Evaluations:
        if "evaluation" in recorded:  # recorded at decision time (None: there was none)
            return recorded.get("evaluation"), recorded.get("metrics_evaluation")
        rows = [
            r
            for r in evaluation_sql.evaluations_of_version(
                self.store, mv.name, mv.version, mv.run_id
            )
            if float(r["created_at"]) <= self.event.at
        ]
        on_run = [r for r in rows if mv.run_id is not None and r["run_id"] == mv.run_id]
        return (rows[-1] if rows else None), (on_run[-1] if on_run else None)

    def _review(self, mv: ModelVersion, recorded: Mapping[str, Any]) -> Review:
        if "approvals" in recorded:
            return Review(tuple(recorded["approvals"]), tuple(recorded.get("creators", ())))
        # Decided before approvals were recorded with decisions: the append-only table
        # holds exactly those given until then.
        return Review(tuple(approvals_at(self.store, mv, self.event.at)), creators(mv))

    def outcome(self, rules: ModelRules) -> tuple[str, list[RuleResult]]:
        with_params = any(kind == "params" for r in rules.require for _, kind, _ in r.operands())
        candidate, champion = self.subjects(with_params)
        results = [
            evaluate(
                rule,
                candidate,
                champion,
                alias=rules.promote_to,
                if_no_champion=rules.if_no_champion,
            )
            for rule in rules.require
        ]
        passed = not self.built_in() and all(r.passed for r in results)
        return ("promoted" if passed else "rejected"), results


def _retest(
    store: Store,
    name: str,
    event: sql.EventRow,
    payload: dict[str, Any],
    old_rules: RulesFile | None,
    new_rules: RulesFile,
) -> Retest:
    decision = _Decision(store, name, event, payload)
    recorded = str(payload["outcome"])
    base = Retest(
        "promotion", name, name, event.version, event.at, event.event_id, recorded, None, None
    )
    old_table = None if old_rules is None else old_rules.models.get(name)
    new_table = new_rules.models.get(name)
    try:
        if old_table is None:
            old = recorded
            old_failed = [str(r["rule"]) for r in payload.get("rules", ()) if not r.get("passed")]
        else:
            old, results = decision.outcome(old_table)
            old_failed = [r.rule for r in results if not r.passed]
        if new_table is None:
            new, new_failed = "rejected", [f"no [rules.{name}] table: promotion is refused"]
        else:
            new, results = decision.outcome(new_table)
            new_failed = [r.rule for r in results if not r.passed]
    except LookupError as exc:
        return replace(base, note=str(exc))
    if old == new:
        return replace(base, old=old, new=new)
    # promoted -> rejected: the new rules that fail; rejected -> promoted: the old ones that
    # failed and no longer do.
    deciding = (
        [r for r in new_failed if r not in old_failed]
        if new == "rejected"
        else [r for r in old_failed if r not in new_failed]
    )
    return replace(base, old=old, new=new, rules=tuple(deciding or new_failed or old_failed))
