"""One monitoring round: evaluate each ``[alerts.*]`` table, fire, notify, retrain.

For each alert the watched version is resolved (``model@ref``), the values its conditions name
are computed on the requests of the last ``window`` (:mod:`nbmlops.monitoring.alerts` lists
them) and, when every condition holds, the alert fires through
:func:`nbmlops.store.monitor_events.fire_unless_cooling`: the check of the cooldown and the
``fired`` row are one write transaction, so monitors running at once (two cron jobs, a cron job
and a notebook) record one firing, and the others see it as held by the cooldown. The ``fired``
row keeps each condition's text, line, values and reason, the window and the rules file's state
in git (its exact bytes go to ``objects/``, by their sha256, as promotions do).

A firing is then notified: on the ``nbmlops.monitoring`` logger (WARNING), and by a JSON POST
to the alert's webhook (``webhook``, or the URL in its ``webhook_env`` variable), with a
timeout; each is recorded (``notified`` or ``notify_failed`` with the reason) and a failing
webhook never stops the round. The notification records the webhook's origin alone
(``scheme://host:port``): a URL read from ``webhook_env`` is a secret kept out of the store
(a ``webhook`` written in the rules file is not: see :mod:`nbmlops.monitoring.alerts`).
An alert with ``action = "retrain"`` then runs :func:`nbmlops.monitoring.retrain.retrain`.

One alert's failure (its model not registered, its alias pointing nowhere, a store error) is
that alert's ``error`` outcome; the others are evaluated all the same.
"""

from __future__ import annotations

import html
import http.client
import json
import logging
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbmlops._display import duration
from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.drift.report import DriftReport
from nbmlops.errors import NbmlopsError, RegistryError, StoreError
from nbmlops.monitoring.alerts import Alert, AlertsFile
from nbmlops.monitoring.drift_windows import monitor_drift
from nbmlops.monitoring.retrain import RetrainOutcome, record_failure, retrain
from nbmlops.monitoring.skew import METRICS, VersionSkew, choose_metric, production_skew
from nbmlops.registry.model_version import ModelVersion, resolve
from nbmlops.registry.rule_language import Ref, RuleResult, Unavailable, evaluate_with
from nbmlops.registry.rules_file import (
    RulesSource,
    rules_path,
    rules_source,
)
from nbmlops.store import Store
from nbmlops.store import labels as labels_sql
from nbmlops.store import monitor_events as events_sql
from nbmlops.store import registry as registry_sql
from nbmlops.store.request_counts import WindowCounts, window_counts

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("nbmlops.monitoring")
WEBHOOK_TIMEOUT = 10.0
"""Seconds a webhook may take to answer before the notification is recorded as failed."""


@dataclass(frozen=True)
class AlertOutcome:
    """What one round did with one alert: ``status`` is ``fired``, ``held`` (every condition
    held but the alert fired within its cooldown, here or in another monitor), ``quiet`` (a
    condition did not hold) or ``error`` (it could not be evaluated: ``error`` says why). A
    ``fired`` alert whose retrain raised carries ``error`` too."""

    alert: str
    model: str
    version: int | None
    status: str
    conditions: tuple[RuleResult, ...] = ()
    firing_id: int | None = None
    notifications: tuple[dict[str, Any], ...] = ()
    retrain: RetrainOutcome | None = None
    error: str | None = None

    def line(self, width: int = 80) -> str:
        """One line for a terminal, cut to ``width`` characters."""
        where = self.model if self.version is None else f"{self.model}/{self.version}"
        if self.status == "error":
            detail = self.error or ""
        elif self.status == "quiet":
            detail = next((r.reason for r in self.conditions if not r.passed), "")
        else:
            detail = "; ".join(r.reason for r in self.conditions)
            if self.status == "held":
                detail = f"within its cooldown: {detail}"
            if self.error is not None:  # its retrain raised: the error is the news
                detail = f"{self.error}; {detail}"
            if self.retrain is not None:
                detail = f"retrain {self.retrain.status}: {detail}"
        text = f"{self.status.upper():<6} {self.alert} {where}: {detail}"
        return text if len(text) <= width else text[: width - 1] + "…"

    def to_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert,
            "model": self.model,
            "version": self.version,
            "status": self.status,
            "conditions": [r.to_dict() for r in self.conditions],
            "firing_id": self.firing_id,
            "notifications": list(self.notifications),
            "retrain": None if self.retrain is None else self.retrain.to_dict(),
            "error": self.error,
        }


@dataclass(frozen=True)
class MonitorResult:
    """One round of :func:`nbmlops.monitor`: one :class:`AlertOutcome` per alert, in the rules
    file's order, the file's state in git, and (in a loop) ``error`` for a round that could not
    run at all (the rules file malformed mid-edit, the store locked)."""

    at: float
    rules: RulesSource | None
    outcomes: tuple[AlertOutcome, ...] = ()
    error: str | None = None

    @property
    def fired(self) -> list[AlertOutcome]:
        return [o for o in self.outcomes if o.status == "fired"]

    @property
    def held(self) -> list[AlertOutcome]:
        """Alerts whose conditions held but that fired within their cooldown (deduplicated)."""
        return [o for o in self.outcomes if o.status == "held"]

    @property
    def errors(self) -> list[AlertOutcome]:
        """Alerts that could not be evaluated, and fired alerts whose retrain raised."""
        return [o for o in self.outcomes if o.error is not None]

    @property
    def exit_code(self) -> int:
        """For cron: 0 nothing fired, 1 an alert fired, 2 an error (in the rules, the store,
        an alert's evaluation or a fired alert's retrain), 3 both."""
        return (1 if self.fired else 0) | (2 if self.errors or self.error else 0)

    def lines(self, width: int = 80) -> list[str]:
        if self.error is not None:
            return [f"ERROR  {self.error}"[:width]]
        if not self.outcomes:
            return ["No [alerts.<name>] table in the rules file."]
        return [o.line(width) for o in self.outcomes]

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd  # heavy: kept out of import nbmlops

        rows = [
            {
                "alert": o.alert,
                "model": o.model,
                "version": o.version,
                "status": o.status,
                "firing_id": o.firing_id,
                "reason": o.error or "; ".join(r.reason for r in o.conditions),
                "values": {k: v for r in o.conditions for k, v in r.values.items()},
            }
            for o in self.outcomes
        ]
        columns = ["alert", "model", "version", "status", "firing_id", "reason", "values"]
        return pd.DataFrame(rows, columns=columns)

    def __repr__(self) -> str:
        return "\n".join([f"MonitorResult({len(self.outcomes)} alert(s))", *self.lines()])

    def _repr_html_(self) -> str:
        color = {"fired": "#cf222e", "held": "#9a6700", "quiet": "#1a7f37", "error": "#cf222e"}
        rows = "".join(
            f"<tr><td style='color:{color[o.status]}'><b>{o.status}</b></td>"
            f"<td>{html.escape(o.alert)}</td><td>{html.escape(o.model)}</td>"
            f"<td>{'' if o.version is None else o.version}</td>"
            f"<td style='text-align:left'>{html.escape(o.line(10**6).split(': ', 1)[-1])}</td>"
            "</tr>"
            for o in self.outcomes
        )
        error = f"<p>{html.escape(self.error)}</p>" if self.error else ""
        return (
            f"<div>{error}<table><tr><th>status</th><th>alert</th><th>model</th>"
            f"<th>version</th><th>why</th></tr>{rows}</table></div>"
        )


def evaluate(store: Store, alerts: AlertsFile, *, now: float | None = None) -> MonitorResult:
    """Evaluate every alert of ``alerts`` on the traffic up to ``now``; fire, notify and
    retrain as they say."""
    now = time.time() if now is None else now
    source = rules_source(alerts.rules)
    outcomes = []
    for alert in alerts.alerts.values():
        try:
            outcomes.append(_evaluate_alert(store, alerts, source, alert, now))
        except Exception as exc:  # one alert's failure never costs the others
            log.error("alert %s could not be evaluated", alert.name, exc_info=True)
            outcomes.append(
                AlertOutcome(alert.name, alert.model, None, "error", error=error_text(exc))
            )
    return MonitorResult(now, source, tuple(outcomes))


def error_text(exc: BaseException) -> str:
    """An error as an outcome shows it: our own errors' messages say what happened; any other
    is named by its type."""
    return str(exc) if isinstance(exc, NbmlopsError) else f"{type(exc).__name__}: {exc}"


def _evaluate_alert(
    store: Store, alerts: AlertsFile, source: RulesSource, alert: Alert, now: float
) -> AlertOutcome:
    mv = resolve(store, alert.model_ref)
    values = _Values(store, alert, mv, now)
    results = tuple(evaluate_with(rule, values.lookup) for rule in alert.when)
    base = AlertOutcome(alert.name, alert.model, mv.version, "quiet", results)
    if not all(r.passed for r in results):
        return base
    store.objects.put_bytes(alerts.rules.data)  # the exact rules, recoverable by their sha256
    payload = {
        "conditions": [r.to_dict() for r in results],
        "window": {"seconds": alert.window, "start": values.start, "end": now},
        "cooldown": alert.cooldown,
        "rules": source.to_dict(),
        "action": alert.action,
        "ref": alert.model_ref,
    }
    event = {
        "name": alert.model,
        "alert": alert.name,
        "version": mv.version,
        "payload": payload,
        "actor": current_user(),
        "host": hostname(),
        "at": now,
    }
    firing_id = events_sql.fire_unless_cooling(store, event, alert.cooldown)
    if firing_id is None:
        return AlertOutcome(alert.name, alert.model, mv.version, "held", results)
    notified = _notify(store, alert, mv, firing_id, payload, now)
    outcome = AlertOutcome(
        alert.name, alert.model, mv.version, "fired", results, firing_id, notified
    )
    if alert.action != "retrain":
        return outcome
    assert alert.notebook is not None  # load_alerts requires one for action = "retrain"
    try:
        done = retrain(
            store,
            name=alert.model,
            alert=alert.name,
            firing_id=firing_id,
            notebook=alert.notebook,
            parameters={**alert.parameters, "window_start": values.start, "window_end": now},
            rules_path=alerts.path,
            stop_after=alert.stop_after,
            timeout=math.ceil(alert.timeout),
        )
    except Exception as exc:  # the firing is recorded: whatever stopped its retrain is too
        log.error("the retrain of alert %s raised", alert.name, exc_info=True)
        done = record_failure(
            store,
            name=alert.model,
            alert=alert.name,
            firing_id=firing_id,
            error=exc,
            rules_path=alerts.path,
            stop_after=alert.stop_after,
        )
        outcome = replace(outcome, error=done.reason)
    if done.stopped and done.status != "stopped":  # it stopped now: "needs a new approach"
        stop = {**payload, "action": "retraining stopped", "conditions": [], "note": done.reason}
        notified += _notify(store, alert, mv, firing_id, stop, now, headline=done.reason)
    return replace(outcome, retrain=done, notifications=notified)


# -- the values conditions name -------------------------------------------------------------


class _Values:
    """The values of one alert's conditions, each computed once, on first use."""

    def __init__(self, store: Store, alert: Alert, mv: ModelVersion, now: float) -> None:
        self.store, self.alert, self.mv, self.now = store, alert, mv, now
        self.start = now - alert.window
        self.last = f"in the last {duration(alert.window)}"
        self._cache: dict[tuple[str, str | None], Any] = {}

    def lookup(self, ref: Ref, text: str) -> Any:
        _, kind, key = ref
        try:
            value = _KINDS[kind](self, key)
        except Unavailable as missing:
            raise Unavailable(f"{text}: {missing.reason}") from None
        except StoreError:
            raise
        except (NbmlopsError, ValueError) as exc:
            raise Unavailable(f"{text} cannot be computed: {exc}") from None
        if isinstance(value, float) and math.isnan(value):
            raise Unavailable(f"{text} is NaN for {self.mv.ref} {self.last}")
        return value

    def _once(self, key: tuple[str, str | None], compute: Callable[[], Any]) -> Any:
        """``compute()``, or what it returned or raised the first time for ``key``."""
        if key not in self._cache:
            try:
                self._cache[key] = compute()
            except (Unavailable, NbmlopsError, ValueError) as exc:
                self._cache[key] = exc
        found = self._cache[key]
        if isinstance(found, Exception):
            raise found
        return found

    def drift_report(self) -> DriftReport:
        def compute() -> DriftReport:
            served = monitor_drift(
                self.store,
                self.mv.name,
                self.mv.version,
                window=self.alert.window,
                end=self.now,
                save=True,
            )
            found = next((v for v in served.versions if v.version == self.mv.version), None)
            if found is None or found.report is None:
                reason = found.reason if found is not None else None
                raise Unavailable(reason or f"no served traffic of {self.mv.ref} {self.last}")
            return found.report

        report: DriftReport = self._once(("drift", None), compute)
        return report

    def column(self, key: str) -> Any:
        report = self.drift_report()
        for column in report.columns:
            if str(column.column) == key:
                return column
        known = ", ".join(str(c.column) for c in report.columns) or "none"
        raise Unavailable(f"the drift check of {self.mv.ref} has no column {key!r} ({known})")

    def skew(self, metric: str | None) -> VersionSkew:
        def compute() -> VersionSkew:
            found = production_skew(
                self.store,
                self.mv.name,
                self.mv.version,
                since=self.start,
                until=self.now,
                metric=metric,
            ).versions
            if not found or found[0].n_labelled == 0:
                raise Unavailable(f"no labelled requests of {self.mv.ref} {self.last}")
            return found[0]

        skew: VersionSkew = self._once(("skew", metric), compute)
        return skew

    def offline(self, key: str) -> float:
        try:
            recorded = choose_metric(self.mv, key)[1] if key in METRICS else key
        except RegistryError:
            recorded = key
        if recorded not in self.mv.metrics:
            known = ", ".join(sorted(self.mv.metrics)) or "none"
            raise Unavailable(f"{self.mv.ref} recorded no metric {key!r} (metrics: {known})")
        return float(self.mv.metrics[recorded])

    def labels(self) -> int:
        def compute() -> int:
            windows = labels_sql.labelled_sums(
                self.store, self.mv.name, self.mv.version, (), since=self.start, until=self.now
            )
            return sum(int(w.sums["n"]) for w in windows)

        count: int = self._once(("labels", None), compute)
        return count

    def counts(self) -> WindowCounts:
        def compute() -> WindowCounts:
            return window_counts(self.store, self.mv.name, self.mv.version, self.start, self.now)

        counts: WindowCounts = self._once(("counts", None), compute)
        return counts

    def coverage(self) -> float:
        answered = self.counts().rows_answered
        if answered == 0:
            raise Unavailable(f"{self.mv.ref} answered no requests {self.last}")
        return self.labels() / answered

    def error_rate(self) -> float:
        counts = self.counts()
        if counts.requests == 0:
            raise Unavailable(f"no requests to {self.mv.name} {self.last}")
        return counts.errors / counts.requests


def _skew_value(values: _Values, key: str) -> Any:
    if key in METRICS:
        return values.skew(key).served
    skew = values.skew(values.alert.metric)
    return bool(skew.significant) if key == "significant" else getattr(skew, key)


_KINDS: dict[str, Callable[[_Values, str], Any]] = {
    "drift_share": lambda v, _: v.drift_report().drift_share,
    "drift": lambda v, key: bool(v.column(key).drifted),
    "drift_score": lambda v, key: v.column(key).statistic,
    "skew": _skew_value,
    "offline": lambda v, key: v.offline(key),
    "labels": lambda v, key: v.labels() if key == "count" else v.coverage(),
    "requests": lambda v, _: v.counts().requests,
    "errors": lambda v, key: v.counts().errors if key == "count" else v.error_rate(),
}


# -- notifications --------------------------------------------------------------------------


def _notify(
    store: Store,
    alert: Alert,
    mv: ModelVersion,
    firing_id: int,
    payload: dict[str, Any],
    now: float,
    *,
    headline: str | None = None,
) -> tuple[dict[str, Any], ...]:
    """Notify every channel of ``alert`` (a log line, the webhook) of its firing, or of what
    ``headline`` says about it, and record each as a ``notified``/``notify_failed`` event."""
    if headline is None:
        reasons = "; ".join(c["reason"] for c in payload["conditions"])
        log.warning(
            "alert %s fired for %s (action %s): %s", alert.name, mv.ref, alert.action, reasons
        )
    else:
        log.warning("alert %s for %s: %s", alert.name, mv.ref, headline)
    sent: list[dict[str, Any]] = [{"channel": "log", "status": "logged"}]
    if alert.webhook is not None or alert.webhook_env is not None:
        body = {"alert": alert.name, "model": mv.name, "version": mv.version, **payload}
        sent.append(_post(alert, {**body, "firing_id": firing_id, "at": now}))
    if headline is not None:
        sent = [{**note, "about": headline} for note in sent]
    for note in sent:
        kind = "notified" if "reason" not in note else "notify_failed"
        events_sql.append_event(
            store,
            {
                "name": alert.model,
                "alert": alert.name,
                "kind": kind,
                "firing_id": firing_id,
                "version": mv.version,
                "payload": note,
                "actor": current_user(),
                "host": hostname(),
                "at": time.time(),
            },
        )
    return tuple(sent)


def _post(alert: Alert, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` as JSON to the webhook of ``alert``; what to record: the origin and the
    status, or the reason."""
    note: dict[str, Any] = {"channel": "webhook"}
    if alert.webhook_env is not None:
        note["env"] = alert.webhook_env
    try:
        url = alert.webhook_url()
    except ValueError as exc:
        note["reason"] = str(exc)
        log.warning("the webhook of alert %s failed: %s", alert.name, exc)
        return note
    assert url is not None  # _notify posts only for an alert with a webhook
    parts = urllib.parse.urlsplit(url)
    note["url"] = f"{parts.scheme}://{parts.netloc}"
    data = json.dumps(body, sort_keys=True, default=str).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            note["status"] = response.status
    except urllib.error.HTTPError as exc:
        note.update(status=exc.code, reason=f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        # HTTPException: an answer that is not HTTP (BadStatusLine), a body cut short
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        note["reason"] = f"{type(exc).__name__}: {reason}"
    if "reason" in note:
        log.warning("the webhook of an alert failed (%s): %s", note["url"], note["reason"])
    return note


# -- reading back ---------------------------------------------------------------------------


def summary(kind: str, payload: Mapping[str, Any]) -> str:
    """One line for an event of the monitoring timeline, as ``model_history`` has (the
    ``summary`` of ``nbm.alert_events``, the ``detail`` of the ``%monitor`` panel's table)."""
    if kind == "fired":
        conditions = payload.get("conditions", ())
        reasons = "; ".join(str(c.get("reason") or c.get("rule")) for c in conditions)
        return f"{payload.get('action', 'notify')}: {reasons}"
    if kind in ("notified", "notify_failed"):
        where = payload.get("url") or payload.get("env") or payload.get("channel", "")
        text = f"{where} {payload.get('reason') or payload.get('status') or ''}".strip()
        return f"{text}: {payload['about']}" if "about" in payload else text
    if kind == "retrain_started":
        parameters = ", ".join(f"{k}={v!r}" for k, v in payload.get("parameters", {}).items())
        return f"{Path(str(payload.get('notebook', ''))).name}({parameters})"
    if kind == "retrain_finished":
        return f"candidates {list(payload.get('candidates', ()))}"
    if kind == "retraining_stopped":
        deprecated = ", ".join(map(str, payload.get("deprecated", ()))) or "none"
        return f"{payload.get('reason', '')} (deprecated: {deprecated})"
    return str(payload.get("reason", ""))


def events_frame(store: Store, name: str | None = None) -> pd.DataFrame:
    """The monitoring timeline of ``name`` (of every model when None), oldest first, with a
    one-line ``summary`` of each event's payload."""
    import pandas as pd  # heavy: kept out of import nbmlops

    names = [name] if name is not None else registry_sql.model_names(store)
    rows = sorted(
        (row for n in names for row in events_sql.events_of(store, n)), key=lambda r: r.event_id
    )
    return pd.DataFrame(
        {
            "event_id": [r.event_id for r in rows],
            "at": pd.to_datetime([r.at for r in rows], unit="s", utc=True),
            "name": [r.name for r in rows],
            "alert": [r.alert for r in rows],
            "kind": [r.kind for r in rows],
            "firing_id": pd.array([r.firing_id for r in rows], dtype="Int64"),
            "version": pd.array([r.version for r in rows], dtype="Int64"),
            "summary": [summary(r.kind, r.payload) for r in rows],
            "payload": [r.payload for r in rows],
            "actor": [r.actor for r in rows],
            "host": [r.host for r in rows],
        }
    )


def rules_path_for(store: Store, rules: str | Path | None) -> Path:
    """``rules``, or the nearest ``nbmlops.toml`` from the store's folder upwards."""
    return rules_path(
        store.home, rules, wanted="[alerts.<name>] tables (when, window...)", argument="rules"
    )
