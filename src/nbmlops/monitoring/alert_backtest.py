"""The alert tables' part of a rule review: past firings checked again under changed
``[alerts.*]`` tables (issue #18 item 3), and :func:`review_rules`, the whole review of
``nbmlops.toml`` (promotion rules and alerts) behind ``nbmlops review rules``.

A ``fired`` event (``monitor_events``) keeps each condition's text and the values it named, so
a firing can be evaluated again under new conditions from those values alone. What the record
cannot tell is said, never guessed:

* only firings are recorded, not the quiet evaluations between them, so a loosened condition
  cannot show the alerts that *would* have fired; the backtest finds firings that would not
  have happened (a condition now false, the table removed, a longer cooldown holding it);
* a new condition naming a value no condition named then (``labels.count`` where the old
  conditions named ``drift_share`` only) was not computed: that firing "cannot be told";
* the values are of the window, model, watched version and skew metric of the time: when the
  new table changes one of those, its firings cannot be told either.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nbmlops._display import duration
from nbmlops.errors import RulesFileError
from nbmlops.monitoring.alerts import CONDITIONS, Alert, AlertsFile, load_alerts
from nbmlops.registry.backtest import (
    Backtest,
    Change,
    Retest,
    RulesAt,
    RulesReview,
    list_changes,
)
from nbmlops.registry.backtest import review_rules as review_promotion_rules
from nbmlops.registry.rule_language import Ref, Unavailable, evaluate_with, parse_rule
from nbmlops.registry.rules_file import read_document
from nbmlops.store import Store
from nbmlops.store import monitor_events as events_sql
from nbmlops.store import registry as registry_sql

NOT_RECORDED = "not recorded"
_SETTINGS = ("model", "ref", "window", "metric")  # what the recorded values depend on


def review_rules(
    store: Store, rev_range: str | None = None, *, path: str | Path | None = None
) -> RulesReview:
    """The review of ``nbmlops.toml`` over ``rev_range`` (None: the working tree against
    ``HEAD``; ``A..B``): the diff, the promotion and alert tables changed, and the backtest of
    past promotions and alert firings. ``.exit_code`` is 1 when a past decision flips."""
    return review_promotion_rules(store, rev_range, path=path, sections=(alerts_section,))


def alerts_section(store: Store, old: RulesAt, new: RulesAt) -> tuple[list[Change], Backtest]:
    """The alert tables' changes and backtest: a section of
    :func:`nbmlops.registry.backtest.review_rules`."""
    before: AlertsFile | None = old.load(lambda path: _load(path, old.root))
    after: AlertsFile = new.load(lambda path: _load(path, new.root))
    return alert_changes(before, after), backtest_alerts(store, before, after)


def _load(path: Path, root: Path) -> AlertsFile:
    """The alert tables of a scratch copy of the rules file (in the scratch folder ``root``).
    A retrain notebook is checked to exist when the file is loaded; the backtest never runs
    one, so a notebook the copy lacks gets an empty stand-in there."""
    _, _, document = read_document(path)
    tables = document.get("alerts")
    for table in tables.values() if isinstance(tables, dict) else ():
        notebook = table.get("notebook") if isinstance(table, dict) else None
        if isinstance(notebook, str) and notebook:
            target = (path.parent / notebook).resolve()
            if not target.exists() and target.is_relative_to(root.resolve()):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()
    return load_alerts(path)


def alert_changes(old: AlertsFile | None, new: AlertsFile) -> list[Change]:
    """The ``[alerts.<name>]`` tables added, removed or changed, with what changed."""
    before = {} if old is None else old.alerts
    changes = []
    for name in dict.fromkeys([*before, *new.alerts]):
        a, b = before.get(name), new.alerts.get(name)
        if a is None or b is None:
            alert = b if b is not None else a
            assert alert is not None
            sign, status = ("+", "added") if b is not None else ("-", "removed")
            details = tuple(f"{sign} when: {r.text}" for r in alert.when)
            changes.append(Change(f"alerts.{name}", status, details))
            continue
        found = [
            f"{key}: {_setting(a, key)} -> {_setting(b, key)}"
            for key in (*_SETTINGS, "cooldown", "action")
            if _setting(a, key) != _setting(b, key)
        ]
        found += list_changes("when", [r.text for r in a.when], [r.text for r in b.when])
        if found:
            changes.append(Change(f"alerts.{name}", "changed", tuple(found)))
    return changes


def _setting(alert: Alert, key: str) -> Any:
    value = getattr(alert, key)
    return duration(value) if key in ("window", "cooldown") else value


def backtest_alerts(store: Store, old: AlertsFile | None, new: AlertsFile) -> Backtest:
    """Every recorded firing evaluated again, from its recorded values, under the old tables
    (None: the firing stands) and the new ones, cooldowns applied in time order."""
    firings = sorted(
        (
            row
            for name in registry_sql.model_names(store)
            for row in events_sql.events_of(store, name)
            if row.kind == "fired"
        ),
        key=lambda row: (row.at, row.event_id),
    )
    old_last: dict[str, float] = {}
    new_last: dict[str, float] = {}
    retests = []
    for row in firings:
        old_alert = None if old is None else old.alerts.get(row.alert)
        o: str | None
        o_rules: tuple[str, ...]
        if old_alert is None:
            o, o_rules, o_note = "fired", (), ""  # the firing stands for the old side
        else:
            o, o_rules, o_note = _outcome(row, old_alert, old_alert, old_last)
        n, n_rules, n_note = _outcome(row, new.alerts.get(row.alert), old_alert, new_last)
        deciding = n_rules if n != "fired" else o_rules
        retests.append(
            Retest(
                "alert",
                row.alert,
                row.name,
                row.version,
                row.at,
                row.event_id,
                "fired",
                o,
                n,
                tuple(deciding) if o != n else (),
                n_note or o_note,
            )
        )
    notes = [
        "only firings are recorded, not the quiet evaluations between them: a loosened "
        "condition or a shorter cooldown cannot show the alerts that would have fired"
    ]
    return Backtest("alert", tuple(retests), tuple(notes) if firings or new.alerts else ())


def _outcome(
    row: events_sql.MonitorEventRow,
    alert: Alert | None,
    before: Alert | None,
    last: dict[str, float],
) -> tuple[str | None, tuple[str, ...], str]:
    """(outcome under ``alert``: fired, quiet, held, or None when it cannot be told; the
    conditions that decide; why it cannot be told). ``before`` is the old table, ``last`` the
    time each alert last fired under the same tables."""
    if alert is None:
        return "quiet", (f"no [alerts.{row.alert}] table",), ""
    payload = row.payload or {}
    changed = _changed_settings(payload, alert, before)
    if changed:
        return None, (), f"{changed}: the recorded values are of the old setting"
    values = _recorded_values(payload)

    def lookup(ref: Ref, text: str) -> Any:
        if ref not in values:
            raise Unavailable(f"{text} was not computed when the alert fired", NOT_RECORDED)
        return values[ref]

    results = [evaluate_with(rule, lookup) for rule in alert.when]
    missing = [r.reason for r in results if r.status == NOT_RECORDED]
    if missing:
        return None, (), "; ".join(missing)
    failed = tuple(r.rule for r in results if not r.passed)
    if failed:
        return "quiet", failed, ""
    previous = last.get(alert.name)
    if previous is not None and row.at - previous < alert.cooldown:
        return "held", (f"cooldown = {duration(alert.cooldown)}",), ""
    last[alert.name] = row.at
    return "fired", (), ""


def _changed_settings(payload: Mapping[str, Any], alert: Alert, before: Alert | None) -> str:
    """What of ``alert`` differs from the firing's settings that its values depend on (the
    skew metric is not recorded with a firing: it is compared with the old table's)."""
    found = []
    ref = payload.get("ref")
    if ref is not None and ref != alert.model_ref:
        found.append(f"watched {ref}, now {alert.model_ref}")
    seconds = (payload.get("window") or {}).get("seconds")
    if seconds is not None and float(seconds) != alert.window:
        found.append(f"window {duration(float(seconds))}, now {duration(alert.window)}")
    if before is not None and before.metric != alert.metric:
        found.append(f"skew metric {before.metric or 'default'}, now {alert.metric or 'default'}")
    return "; ".join(found)


def _recorded_values(payload: Mapping[str, Any]) -> dict[Ref, Any]:
    """The values the firing's conditions named, by what they refer to (so that ``drift.`age```
    and ``drift.age`` are the same value)."""
    values: dict[Ref, Any] = {}
    for condition in payload.get("conditions", ()):
        try:
            rule = parse_rule(str(condition["rule"]), vocabulary=CONDITIONS)
        except (RulesFileError, KeyError):  # a condition of an older vocabulary
            continue
        recorded = condition.get("values") or {}
        for expr in (*rule.lhs.refs(), *rule.rhs.refs()):
            text = rule.operand_text(expr)
            if expr.ref is not None and text in recorded:
                values[expr.ref] = recorded[text]
    return values
