"""Promotion: evaluate a model's rules for a version and move the alias only if every rule passes.

Each decision (not dry runs) is a ``promotion`` event holding the inputs (both versions' metrics,
dataset fingerprints and evaluations, the params the rules used, the candidate's approvals and
reviews), the outcome, every rule's result and reason, and the rules file (path, sha256 of its
content, which is also stored in ``objects/``, the git commit, and whether the file differs from
that commit). A passing decision and its
``alias_set`` event are written in one transaction, after checking the alias still points where
the rules saw it, so two concurrent promotions cannot both win against a stale champion.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from nbmlops.errors import RegistryError
from nbmlops.registry.approvals import approvals_at, creators
from nbmlops.registry.events import current_champion, new_event
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.registry.rule_language import RuleResult, Subject, evaluate
from nbmlops.registry.rules_file import (
    RulesFile,
    RulesSource,
    load_rules,
    rules_path,
    rules_source,
)
from nbmlops.store import Store
from nbmlops.store import evaluations as evaluation_sql
from nbmlops.store import registry as sql
from nbmlops.store import reviews as review_sql

OUTCOMES = ("promoted", "rejected", "unchanged")


@dataclass(frozen=True)
class PromotionDecision:
    """The result of :func:`promote` (or of a dry run: ``dry_run=True``, nothing recorded)."""

    name: str
    version: int
    alias: str
    champion: int | None
    outcome: str  # promoted, rejected, unchanged (a dry run says what would happen)
    results: tuple[RuleResult, ...]
    rules_file: RulesSource
    inputs: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    at: float = 0.0
    event_id: int | None = None

    @property
    def passed(self) -> bool:
        """Every rule passed (the alias moved, or would move in a dry run)."""
        return self.outcome != "rejected"

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]

    @property
    def uncommitted_rules(self) -> bool:
        """The rules file differs from its git commit, or is not committed at all."""
        return self.rules_file.dirty

    @property
    def reason(self) -> str:
        if self.outcome == "unchanged":
            return f"version {self.version} is already @{self.alias}"
        if not self.failed:
            return f"all {len(self.results)} rules passed"
        shown = "; ".join(r.reason for r in self.failed)
        return f"{len(self.failed)} of {len(self.results)} rules failed: {shown}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "champion": self.champion,
            "outcome": self.outcome,
            "passed": self.passed,
            "reason": self.reason,
            "rules": [r.to_dict() for r in self.results],
            "rules_file": self.rules_file.to_dict(),
            "inputs": self.inputs,
            "dry_run": self.dry_run,
            "at": self.at,
            "event_id": self.event_id,
        }

    def _headline(self) -> str:
        verb = {
            "promoted": "would become" if self.dry_run else "is now",
            "rejected": "would not become" if self.dry_run else "was not promoted to",
            "unchanged": "is already",
        }[self.outcome]
        return f"{self.name}/{self.version} {verb} @{self.alias}"

    def __repr__(self) -> str:
        dry = " (dry run)" if self.dry_run else ""
        return f"<PromotionDecision {self._headline()}{dry}: {self.reason}>"

    def __str__(self) -> str:
        """Plain text for terminals: the headline, one line per rule, the rules file."""
        champion = "none" if self.champion is None else f"version {self.champion}"
        lines = [f"{self._headline()}{' (dry run)' if self.dry_run else ''}"]
        lines.append(f"  champion before: {champion}")
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            where = f" (line {r.line})" if r.line else ""
            lines.append(f"  [{mark}] {r.rule}{where}\n         {r.reason}")
        lines.append(f"  rules: {self._rules_text()}")
        return "\n".join(lines)

    def _rules_text(self) -> str:
        """The rules file and the commit its rules are at: only a tracked file names one (an
        untracked file, a folder outside git or no git at all says so instead)."""
        source = self.rules_file
        flag = " - UNCOMMITTED RULES" if source.dirty else ""
        if source.git_commit and source.git_status in ("committed", "modified"):
            return f"{source.path} @ {source.git_commit[:12]} ({source.git_status}){flag}"
        state = "not in git" if source.git_status == "not in git" else "untracked, not in git"
        return f"{source.path} ({state}){flag}"

    def _repr_html_(self) -> str:
        color = {"promoted": "#1a7f37", "rejected": "#cf222e", "unchanged": "#57606a"}
        head = f"<b style='color:{color[self.outcome]}'>{html.escape(self._headline())}</b>" + (
            " <i>(dry run, nothing recorded)</i>" if self.dry_run else ""
        )
        rows = "".join(
            "<tr>"
            f"<td>{'&#10004;' if r.passed else '&#10008;'}</td>"
            f"<td style='text-align:left'><code>{html.escape(r.rule)}</code></td>"
            f"<td style='text-align:left'>{html.escape(r.reason)}</td>"
            f"<td>{r.line or ''}</td></tr>"
            for r in self.results
        )
        warning = ""
        if self.uncommitted_rules:
            warning = (
                "<p style='color:#9a6700'><b>Uncommitted rules:</b> the rules file differs from "
                "its git commit; this decision is flagged in the history.</p>"
            )
        return (
            f"<div><p>{head}</p>"
            "<table><tr><th></th><th>rule</th><th>reason</th><th>line</th></tr>"
            f"{rows}</table>{warning}"
            f"<p style='font-size:smaller'>{html.escape(self._rules_text())}</p></div>"
        )


def promote(
    store: Store,
    name: str,
    version: int | str,
    *,
    rules_path: str | Path | None = None,
    dry_run: bool = False,
) -> PromotionDecision:
    """Evaluate ``[rules.<name>]`` for ``name``/``version``; move ``promote_to`` to it only if
    every rule passes. Records the decision unless ``dry_run``."""
    mv = resolve(store, f"{name}/{int(version)}")
    if mv.deleted:
        raise RegistryError(f"{mv.ref} was deleted; it cannot be promoted.")
    rules = load_rules(_rules_path(store, rules_path))
    model_rules = rules.for_model(mv.name)
    source = rules_source(rules)
    alias = model_rules.promote_to
    champion = current_champion(store, mv.name, alias)
    champion_version = None if champion is None else champion.version
    evaluations = {v: _evaluations(store, v) for v in (mv, champion) if v is not None}
    review = _review(store, mv)
    results: list[RuleResult] = []
    if champion_version == mv.version:
        outcome = "unchanged"
    else:
        deprecation = mv.deprecation
        if deprecation is not None:
            results.append(
                RuleResult(
                    "(built in) the candidate is not deprecated",
                    None,
                    False,
                    "failed",
                    f"{mv.ref} is deprecated: {deprecation.get('reason')}",
                )
            )
        uses_params = any(
            kind == "params" for rule in model_rules.require for _, kind, _ in rule.operands()
        )
        candidate = subject(mv, uses_params, evaluations[mv], review)
        baseline = (
            None if champion is None else subject(champion, uses_params, evaluations[champion])
        )
        results += [
            evaluate(
                rule,
                candidate,
                baseline,
                alias=alias,
                if_no_champion=model_rules.if_no_champion,
            )
            for rule in model_rules.require
        ]
        outcome = "promoted" if all(r.passed for r in results) else "rejected"
    decision = PromotionDecision(
        name=mv.name,
        version=mv.version,
        alias=alias,
        champion=champion_version,
        outcome=outcome,
        results=tuple(results),
        rules_file=source,
        inputs=_inputs(mv, champion, results, evaluations, review),
        dry_run=dry_run,
        at=time.time(),
    )
    if dry_run:
        return decision
    store.objects.put_bytes(rules.data)  # the exact rules, recoverable by their sha256
    payload = {k: v for k, v in decision.to_dict().items() if k not in ("name", "version")}
    payload.pop("event_id")
    event = {**new_event(mv.name, "promotion", version=mv.version, alias=alias), "at": decision.at}
    event["payload"] = payload
    alias_event = None
    if outcome == "promoted":
        alias_event = new_event(mv.name, "alias_set", version=mv.version, alias=alias)
        alias_event["at"] = decision.at
    event_id = sql.record_promotion(store, event, alias_event, champion_version)
    return replace(decision, event_id=event_id)


def check_rules(store: Store, rules_path: str | Path | None = None) -> RulesFile:
    """Parse and check the rules file (for CI): RulesFileError with the line if malformed."""
    return load_rules(_rules_path(store, rules_path))


def _rules_path(store: Store, given: str | Path | None) -> Path:
    return rules_path(
        store.home,
        given,
        wanted="a [rules.<model>] table (promote_to, require)",
        argument="rules_path",
    )


Evaluations = tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]
"""A version's latest evaluation, and the latest one recorded on its training run."""


@dataclass(frozen=True)
class Review:
    """What a decision knows of the candidate's review: its approvals (``by``, ``at``,
    ``review_id``...), its creators and the ids of its model reviews, newest first."""

    approvals: tuple[Mapping[str, Any], ...]
    creators: tuple[str, ...]
    reviews: tuple[int, ...] = ()


def subject(
    mv: ModelVersion,
    with_params: bool,
    evaluations: Evaluations,
    review: Review | None = None,
) -> Subject:
    """What the rules see of ``mv`` (``review`` None: its approvals are not known)."""
    datasets: dict[str, str] = {}
    for d in sorted(mv.datasets, key=lambda d: d.get("role") != "input"):
        datasets.setdefault(str(d["name"]), str(d["fingerprint"]))
    latest, on_run = evaluations
    params = mv.params if with_params else {}
    if review is None:
        return Subject(mv.ref, mv.metrics, params, datasets, latest, on_run)
    return Subject(
        mv.ref, mv.metrics, params, datasets, latest, on_run, review.approvals, review.creators
    )


def _review(store: Store, mv: ModelVersion) -> Review:
    reviews = review_sql.reviews_of_version(store, mv.name, mv.version)
    return Review(
        tuple(approvals_at(store, mv)),
        creators(mv),
        tuple(int(r["review_id"]) for r in reviews),
    )


def _evaluations(store: Store, mv: ModelVersion) -> Evaluations:
    """The version's latest evaluation, and the latest recorded on its training run (whose
    metrics it logged there: the data ``metrics.<key>`` were measured on)."""
    rows = evaluation_sql.evaluations_of_version(store, mv.name, mv.version, mv.run_id)
    on_run = [r for r in rows if mv.run_id is not None and r["run_id"] == mv.run_id]
    return (rows[-1] if rows else None), (on_run[-1] if on_run else None)


def _evaluation_input(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An evaluation as a promotion event records it: enough to find the row and to read the
    decision without it."""
    if row is None:
        return None
    keys = ("evaluation_id", "status", "unseen", "comparable", "dataset_id", "target_id")
    metrics = row["metrics"]
    return {
        **{k: row[k] for k in keys},
        "dataset_ref": row["dataset_ref"],
        "n_rows": row["n_rows"],
        "metrics": {
            k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))
        },
    }


def _inputs(
    candidate: ModelVersion,
    champion: ModelVersion | None,
    results: list[RuleResult],
    evaluations: dict[ModelVersion, Evaluations],
    review: Review,
) -> dict[str, Any]:
    def describe(mv: ModelVersion) -> dict[str, Any]:
        latest, on_run = evaluations[mv]
        return {
            "version": mv.version,
            "sha256": mv.sha256,
            "run_id": mv.run_id,
            "metrics": {k: None if math.isnan(v) else v for k, v in mv.metrics.items()},
            "datasets": {d["name"]: d["fingerprint"] for d in mv.datasets},
            "evaluation": _evaluation_input(latest),
            "metrics_evaluation": _evaluation_input(on_run),
        }

    used: dict[str, Any] = {}
    for result in results:
        used.update(result.values)
    return {
        "candidate": {
            **describe(candidate),
            "approvals": [dict(a) for a in review.approvals],
            "creators": list(review.creators),
            "reviews": list(review.reviews),
        },
        "champion": None if champion is None else describe(champion),
        "values": used,
    }
