"""The ``retrain`` action of an alert: run the retrain notebook, promote what it registered, and
stop retraining a model that cannot improve (issue #15 items 5 and 6).

One call is one retrain, for one firing of an alert. Every step is a ``monitor_events`` row
linked to the firing by ``firing_id`` (docs/schema.md): ``retrain_started`` (the notebook, the
parameters passed, the executed copy kept under ``<store>/retrains/``), then ``retrain_failed``
(a cell raised, the kernel died or a cell timed out: nothing is promoted, the champion is
untouched) or ``retrain_finished`` (the runs its ``%%track`` cells recorded and the versions it
registered: those whose ``registered`` event falls between the notebook's start and end, so a
version of the same model registered by another process at that moment would be taken for one),
then one ``candidate_promoted`` or ``candidate_rejected`` per candidate. Promotion
is :func:`nbmlops.registry.promotion.promote` with the ``[rules.<model>]`` table, so a retrain
can move the alias only as a person could; servers following the alias reload by themselves.
A retrain that raises once its firing is recorded (the notebook gone since the rules were read,
the rules file broken while the notebook ran) is recorded by :func:`record_failure` as a
``retrain_failed`` too, saying how far it got.

A retrain that promotes nothing (it failed, registered nothing, or every candidate was rejected)
is a failed retrain. Failed retrains are counted since the later of the model's last alias move
(``promote_to``, by a promotion or by hand) and the last time retraining stopped: when
``stop_after`` are in a row, the rejected candidates of those retrains are deprecated (never
deleted: ``consumers()`` shows who still loads them) and ``retraining_stopped`` is recorded,
"needs a new approach", instead of burning compute on a model that does not improve. Later
firings of the alert then do nothing until someone moves the alias, which says a person has
changed something.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from nbmlops.capture.environment import current_user
from nbmlops.capture.liveness import hostname
from nbmlops.errors import NbmlopsError
from nbmlops.filter import And, Compare
from nbmlops.filter import Field as FilterField
from nbmlops.headless import execute_notebook, parameters_source
from nbmlops.registry.events import current_champion
from nbmlops.registry.lifecycle import deprecate_version
from nbmlops.registry.model_version import resolve
from nbmlops.registry.promotion import PromotionDecision, check_rules, promote
from nbmlops.store import Store
from nbmlops.store import monitor_events as events_sql
from nbmlops.store import registry as registry_sql
from nbmlops.store.runs import runs_frame

Status = Literal["stopped", "failed", "no_candidate", "rejected", "promoted"]
#: The parameters every retrain notebook is given; a caller cannot override them.
RESERVED = ("alert", "firing_id", "model", "champion")
RETRAINS_DIRNAME = "retrains"


@dataclass(frozen=True)
class RetrainOutcome:
    """What one :func:`retrain` did: ``status`` is ``stopped`` (retraining is stopped, nothing
    ran), ``failed`` (the notebook did not finish, or the retrain raised:
    :func:`record_failure`), ``no_candidate`` (it registered nothing),
    ``rejected`` (no candidate passed the rules) or ``promoted``."""

    name: str
    alert: str
    firing_id: int
    status: Status
    reason: str
    champion: int | None  # where promote_to pointed before the retrain
    candidates: tuple[int, ...] = ()
    promoted: int | None = None
    decisions: tuple[PromotionDecision, ...] = ()
    runs: tuple[str, ...] = ()
    output: Path | None = None
    failed_retrains: int = 0  # in a row, this one included
    stopped: bool = False  # retraining of (name, alert) is stopped after this call
    deprecated: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alert": self.alert,
            "firing_id": self.firing_id,
            "status": self.status,
            "reason": self.reason,
            "champion": self.champion,
            "candidates": list(self.candidates),
            "promoted": self.promoted,
            "decisions": [d.to_dict() for d in self.decisions],
            "runs": list(self.runs),
            "output": None if self.output is None else str(self.output),
            "failed_retrains": self.failed_retrains,
            "stopped": self.stopped,
            "deprecated": list(self.deprecated),
        }

    def __repr__(self) -> str:
        return (
            f"<RetrainOutcome {self.name} alert {self.alert!r} firing {self.firing_id}: "
            f"{self.status} - {self.reason}>"
        )


def retrain(
    store: Store,
    *,
    name: str,
    alert: str,
    firing_id: int,
    notebook: Path,
    parameters: Mapping[str, Any],
    rules_path: str | Path | None = None,
    stop_after: int = 3,
    timeout: int = 600,
) -> RetrainOutcome:
    """Retrain ``name`` for the firing ``firing_id`` of ``alert``: execute ``notebook`` headless
    with ``parameters`` plus ``alert``, ``firing_id``, ``model`` and ``champion``, then promote
    each version it registered, newest first, by the ``[rules.<name>]`` of ``nbmlops.toml``.

    Raises (recording nothing) when the notebook does not exist, the rules cannot be read, a
    parameter cannot be written as Python, or a parameter reuses one of :data:`RESERVED`.
    """
    if stop_after < 1:
        raise ValueError(f"stop_after={stop_after!r}: retraining stops after 1 or more failures.")
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(
            f"The retrain notebook {notebook} of alert {alert!r} does not exist; fix the "
            f"notebook = ... of [alerts.{alert}] in nbmlops.toml."
        )
    clash = sorted(set(parameters) & set(RESERVED))
    if clash:
        raise ValueError(
            f"Parameters {', '.join(clash)} are set by retrain itself (the alert, its firing, "
            "the model and its champion); rename them in the caller's parameters."
        )
    alias = check_rules(store, rules_path).for_model(name).promote_to
    champion_mv = current_champion(store, name, alias)
    champion = None if champion_mv is None else champion_mv.version
    base: dict[str, Any] = {"name": name, "alert": alert, "firing_id": firing_id}

    stop = _stopped_at(store, name, alert, alias)
    if stop is not None:
        return RetrainOutcome(
            **base,
            status="stopped",
            champion=champion,
            stopped=True,
            reason=(
                f"retraining of {name} for alert {alert!r} stopped at firing "
                f"{stop.firing_id} ({stop.payload.get('reason')}); it resumes once "
                f"{name}@{alias} is moved (nbmlops.promote or set_alias)"
            ),
        )

    passed = {
        "alert": alert,
        "firing_id": firing_id,
        "model": name,
        "champion": champion,
        **parameters,
    }
    parameters_source(passed)  # a value that cannot be written as Python fails before recording
    output = store.home / RETRAINS_DIRNAME / f"{firing_id}-{notebook.name}"
    output.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "notebook": str(notebook),
        "parameters": passed,
        "output": str(output),
        "timeout": timeout,
    }
    events_sql.append_event(store, _event(base, "retrain_started", champion, payload))

    start = time.time()
    # Whatever stops the notebook (a cell's error, a timeout, a dead kernel) is a failed retrain.
    try:
        execute_notebook(notebook, output, parameters=passed, timeout=timeout, store=store.home)
    except Exception as exc:
        reason = _failure(exc)
        payload = {"reason": reason, "output": str(output)}
        events_sql.append_event(store, _event(base, "retrain_failed", champion, payload))
        outcome = RetrainOutcome(
            **base,
            status="failed",
            champion=champion,
            output=output,
            reason=f"the notebook failed ({reason}); champion {_version(champion)} untouched",
        )
        return _stop_if_hopeless(store, outcome, alias, stop_after)
    end = time.time()

    candidates = tuple(
        sorted(
            {
                e.version
                for e in registry_sql.events_of(store, name)
                if e.kind == "registered" and e.version is not None and start <= e.at <= end
            },
            reverse=True,
        )
    )
    runs = _runs_recorded(store, notebook, start, end)
    payload = {"runs": list(runs), "candidates": list(candidates)}
    newest = candidates[0] if candidates else None
    events_sql.append_event(store, _event(base, "retrain_finished", newest, payload))

    decisions = []
    for version in candidates:
        decision = promote(store, name, version, rules_path=rules_path)
        kind = "candidate_promoted" if decision.outcome == "promoted" else "candidate_rejected"
        summary = {
            "alias": decision.alias,
            "champion": decision.champion,
            "outcome": decision.outcome,
            "reason": decision.reason,
            "rules": [r.to_dict() for r in decision.results],
            "promotion_event_id": decision.event_id,
        }
        events_sql.append_event(store, _event(base, kind, version, summary))
        decisions.append(decision)
    promoted = [d.version for d in decisions if d.outcome == "promoted"]
    common: dict[str, Any] = {
        **base,
        "champion": champion,
        "candidates": candidates,
        "decisions": tuple(decisions),
        "runs": runs,
        "output": output,
    }
    if promoted:
        return RetrainOutcome(
            **common,
            status="promoted",
            promoted=promoted[-1],  # the last to move the alias is where it points
            reason=(
                f"version {promoted[-1]} promoted to @{alias} (was {_version(champion)}); "
                f"candidates {_versions(candidates)}"
            ),
        )
    if not candidates:
        outcome = RetrainOutcome(
            **common,
            status="no_candidate",
            reason=f"the notebook registered no version of {name}; champion "
            f"{_version(champion)} kept",
        )
    else:
        shown = "; ".join(f"{d.version}: {d.reason}" for d in decisions)
        outcome = RetrainOutcome(
            **common,
            status="rejected",
            reason=f"no candidate passed [rules.{name}] ({shown}); champion "
            f"{_version(champion)} kept",
        )
    return _stop_if_hopeless(store, outcome, alias, stop_after)


def record_failure(
    store: Store,
    *,
    name: str,
    alert: str,
    firing_id: int,
    error: BaseException,
    rules_path: str | Path | None = None,
    stop_after: int = 3,
) -> RetrainOutcome:
    """Record that :func:`retrain` raised ``error`` for the firing ``firing_id``: a
    ``retrain_failed`` event whose reason says how far it got (it could not start, its notebook
    had started, or the notebook ran and promoting its candidates failed), counted as a failed
    retrain towards ``stop_after``. The caller recorded the firing, so the error must not leave
    it looking like a retrain that was never due; the cooldown holds the alert all the same.

    When the rules cannot be read (the alias they promote to is unknown) the failure is recorded
    but whether retraining stops is decided by the next retrain that can read them."""
    steps = {e.kind for e in events_sql.events_of(store, name, firing_id=firing_id)}
    if "retrain_finished" in steps:
        stage = "promoting the candidates failed after the notebook ran"
    elif "retrain_started" in steps:
        stage = "the retrain failed after its notebook started"
    else:
        stage = "the retrain could not start"
    reason = f"{stage} ({_failure(error)})"
    try:
        alias: str | None = check_rules(store, rules_path).for_model(name).promote_to
    except (NbmlopsError, OSError):
        alias = None
    champion_mv = None if alias is None else current_champion(store, name, alias)
    champion = None if champion_mv is None else champion_mv.version
    base: dict[str, Any] = {"name": name, "alert": alert, "firing_id": firing_id}
    events_sql.append_event(store, _event(base, "retrain_failed", champion, {"reason": reason}))
    outcome = RetrainOutcome(**base, status="failed", champion=champion, reason=reason)
    return outcome if alias is None else _stop_if_hopeless(store, outcome, alias, stop_after)


def _event(
    base: Mapping[str, Any], kind: str, version: int | None, payload: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        **base,
        "kind": kind,
        "version": version,
        "payload": dict(payload),
        "actor": current_user(),
        "host": hostname(),
        "at": time.time(),
    }


def _stopped_at(
    store: Store, name: str, alert: str, alias: str
) -> events_sql.MonitorEventRow | None:
    """The ``retraining_stopped`` event of (``name``, ``alert``) still in force: none is, once
    ``name@alias`` moved after it (a promotion or a person's ``set_alias``)."""
    stops = [
        e for e in events_sql.events_of(store, name, alert=alert) if e.kind == "retraining_stopped"
    ]
    if not stops:
        return None
    return stops[-1] if _last_alias_move(store, name, alias) <= stops[-1].at else None


def _last_alias_move(store: Store, name: str, alias: str) -> float:
    moves = [
        e.at
        for e in registry_sql.events_of(store, name)
        if e.kind == "alias_set" and e.alias == alias
    ]
    return max(moves, default=float("-inf"))


def _stop_if_hopeless(
    store: Store, outcome: RetrainOutcome, alias: str, stop_after: int
) -> RetrainOutcome:
    """Count the failed retrains in a row (this one included) and stop retraining at
    ``stop_after``: deprecate their rejected candidates and record ``retraining_stopped``."""
    name, alert = outcome.name, outcome.alert
    events = events_sql.events_of(store, name, alert=alert)
    since = max(
        [_last_alias_move(store, name, alias)]
        + [e.at for e in events if e.kind == "retraining_stopped"]
    )
    tried = ("retrain_started", "retrain_failed")  # a retrain that raised has only the latter
    firings = {e.firing_id for e in events if e.kind in tried and e.at > since}
    failed = len(firings)
    if failed < stop_after:
        return replace(outcome, failed_retrains=failed)
    served = set(registry_sql.current_aliases(store, name).values())
    rejected = sorted(
        {
            e.version
            for e in events
            if e.kind == "candidate_rejected" and e.firing_id in firings and e.version is not None
        }
    )
    reason = (
        f"needs a new approach: {failed} retrains in a row for alert {alert!r} produced no "
        f"candidate that passed [rules.{name}] (last: firing {outcome.firing_id})"
    )
    deprecated = []
    for version in rejected:
        if version in served or resolve(store, f"{name}/{version}").deprecation is not None:
            continue  # an alias still points at it, or it already says why it is deprecated
        deprecate_version(store, name, version, reason)
        deprecated.append(version)
    payload = {"failed_retrains": failed, "deprecated": deprecated, "reason": reason}
    base: dict[str, Any] = {"name": name, "alert": alert, "firing_id": outcome.firing_id}
    events_sql.append_event(store, _event(base, "retraining_stopped", outcome.champion, payload))
    return replace(
        outcome,
        failed_retrains=failed,
        stopped=True,
        deprecated=tuple(deprecated),
        reason=f"{outcome.reason}; retraining stopped, {reason}"
        + (f"; deprecated {_versions(tuple(deprecated))}" if deprecated else ""),
    )


def _runs_recorded(store: Store, notebook: Path, start: float, end: float) -> tuple[str, ...]:
    """The runs the executed notebook's ``%%track`` cells recorded, oldest first."""
    where = And(
        (
            Compare(FilterField("attributes", "notebook"), "=", str(notebook)),
            Compare(FilterField("attributes", "start_time"), ">=", start),
            Compare(FilterField("attributes", "start_time"), "<=", end),
        )
    )
    return tuple(reversed(runs_frame(store, where)["run_id"].tolist()))


def _failure(exc: BaseException) -> str:
    """The cell's error as ``Type: message`` (nbclient's CellExecutionError carries them)."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {exc}"


def _version(version: int | None) -> str:
    return "none" if version is None else f"version {version}"


def _versions(versions: tuple[int, ...]) -> str:
    return ", ".join(str(v) for v in versions) or "none"
