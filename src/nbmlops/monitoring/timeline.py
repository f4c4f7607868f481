"""The monitoring timeline of one model (``%monitor``, ``nbm.monitor_timeline``): on one time
axis, per registry version, the served metric against the offline one (production skew per
window, :mod:`nbmlops.monitoring.skew`), label coverage, the drift share of its served traffic
(the drift reports ``nbm.monitor_drift`` and the alerts saved), and the alerts, retrain steps and
alias moves as moments.

Windows start at multiples of their length since the epoch, as production skew's do. Without a
``window`` the shortest of :data:`WINDOWS` that cuts the span shown into at most
:data:`MAX_WINDOWS` windows is used: a demo's ten minutes in minutes, a month in days.

An alert is *active* from its firing for its cooldown: while it lasts, a condition that holds
again does not fire it again (:func:`nbmlops.store.monitor_events.fire_unless_cooling`), so an
active alert is what the panel shows as a badge. Its cooldown is read where the monitors read
it, the alert's table in ``nbmlops.toml`` as it is now (found from the store's folder upwards),
since that is what decides whether it may fire again; for an alert no longer there, the
firing's window (an alert's default cooldown, :mod:`nbmlops.monitoring.alerts`).
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from nbmlops import _display
from nbmlops._figures import new_figure
from nbmlops.errors import RegistryError, RulesFileError
from nbmlops.monitoring.alerts import load_alerts
from nbmlops.monitoring.monitor import summary
from nbmlops.monitoring.skew import VersionSkew, production_skew
from nbmlops.registry.rules_file import find_rules_file
from nbmlops.store import Store
from nbmlops.store import labels as labels_sql
from nbmlops.store import monitor_events as events_sql
from nbmlops.store import registry as registry_sql
from nbmlops.store import timeline as timeline_sql
from nbmlops.store.monitor_events import MonitorEventRow
from nbmlops.store.timeline import DriftPoint

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

WINDOWS = (60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)
MAX_WINDOWS = 60
# Kinds of monitor_events drawn as markers, and their colours; the others (notifications) are
# listed in the events table only.
MARKERS = {
    "fired": "#c62828",
    "retrain_failed": "#6d4c41",
    "retrain_finished": "#1565c0",
    "candidate_promoted": "#2e7d32",
    "candidate_rejected": "#ef6c00",
    "retraining_stopped": "#000000",
}
ALIAS_MOVED = "#2e7d32"
_VERSION_COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#9e9d24", "#4e342e"]


@dataclass(frozen=True)
class WindowPoint:
    """Version ``version`` in [``window_start``, ``window_end``): the ``rows`` it answered,
    ``labelled`` of them (``coverage`` = labelled / rows, None without rows), and with labels
    the ``served`` ``metric`` against the ``offline`` one, the served value's 95% interval
    [``ci_low``, ``ci_high``] and whether the skew is ``significant``."""

    version: int
    window_start: float
    window_end: float
    rows: int
    labelled: int
    coverage: float | None
    metric: str | None = None
    served: float | None = None
    offline: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    significant: bool = False


@dataclass(frozen=True)
class ActiveAlert:
    """An alert that fired at ``fired_at`` and stays in its cooldown until ``until``."""

    alert: str
    firing_id: int
    version: int | None
    fired_at: float
    until: float
    action: str | None

    def text(self, now: float) -> str:
        version = "" if self.version is None else f" on version {self.version}"
        return (
            f"alert {self.alert} fired {_display.duration(now - self.fired_at)} ago{version} "
            f"(action {self.action or 'notify'}); in its cooldown until "
            f"{_display.when(self.until)}"
        )


@dataclass(frozen=True)
class Timeline:
    """Everything ``%monitor`` shows of model ``name`` from ``since`` to ``until`` (None: from
    its first request, up to ``now``), in windows of ``window`` seconds. ``hints`` say what
    to do for each part that has nothing yet; ``notes`` why a part could not be computed."""

    name: str
    window: float
    since: float | None
    until: float | None
    now: float
    points: list[WindowPoint]
    drift: list[DriftPoint]
    events: list[MonitorEventRow]
    alias_moves: list[tuple[float, str, int]]  # (at, alias, version)
    active: list[ActiveAlert]
    stopped: list[MonitorEventRow]  # retraining_stopped with no retrain started since
    hints: list[str]
    notes: list[str]

    @property
    def empty(self) -> bool:
        """Nothing served, checked or fired yet."""
        return not (self.points or self.drift or self.events)

    def badges(self) -> list[str]:
        """One line per active alert and per alert whose retraining stopped."""
        lines = [a.text(self.now) for a in self.active]
        lines += [
            f"retraining for alert {e.alert} stopped {_display.when(e.at)}: needs a new "
            f"approach ({e.payload.get('reason', 'the last retrains promoted nothing')})"
            for e in self.stopped
        ]
        return lines

    def to_frame(self) -> pd.DataFrame:
        """One row per version and window (times as UTC timestamps)."""
        import pandas as pd  # heavy: kept out of import nbmlops

        frame = pd.DataFrame(
            [asdict(p) for p in self.points], columns=list(WindowPoint.__dataclass_fields__)
        )
        for column in ("window_start", "window_end"):
            frame[column] = pd.to_datetime(frame[column], unit="s", utc=True)
        return frame

    def events_frame(self) -> pd.DataFrame:
        """The alerts, retrain steps and alias moves, oldest first: at, kind, alert, version,
        detail."""
        import pandas as pd  # heavy: kept out of import nbmlops

        rows = [(e.at, e.kind, e.alert, e.version, summary(e.kind, e.payload)) for e in self.events]
        rows += [
            (at, "alias_set", "", v, f"{self.name}@{alias} -> {v}")
            for at, alias, v in self.alias_moves
        ]
        rows.sort(key=lambda r: r[0])
        frame = pd.DataFrame(rows, columns=["at", "kind", "alert", "version", "detail"])
        frame["at"] = pd.to_datetime(frame["at"], unit="s", utc=True)
        frame["version"] = frame["version"].astype("Int64")
        return frame

    def plot(self) -> Figure:
        """Three panels over one time axis: served vs offline metric per version (the band is
        the served value's 95% interval), label coverage, drift share (a red ring: the check
        found dataset drift), each point at its window's middle; alerts and retrain steps as
        vertical lines across all three, alias moves as dotted ones."""
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        fig = new_figure(9.0, 5.4)
        metric_ax, coverage_ax, drift_ax = axes = fig.subplots(3, 1, sharex=True)
        versions = sorted({p.version for p in self.points} | {d.version for d in self.drift})
        colour = {v: _VERSION_COLOURS[i % len(_VERSION_COLOURS)] for i, v in enumerate(versions)}
        for v in versions:
            mine = [p for p in self.points if p.version == v]
            labelled = [p for p in mine if p.served is not None and not math.isnan(p.served)]
            xs = [_middle(p.window_start, p.window_end) for p in labelled]
            if labelled:
                metric_ax.plot(
                    xs,
                    [p.served for p in labelled],
                    "o-",
                    color=colour[v],
                    ms=3,
                    label=f"v{v} served",
                )
                metric_ax.fill_between(
                    xs,
                    [p.ci_low for p in labelled],
                    [p.ci_high for p in labelled],
                    color=colour[v],
                    alpha=0.15,
                )
                metric_ax.plot(
                    xs,
                    [p.offline for p in labelled],
                    "--",
                    color=colour[v],
                    lw=1,
                    label=f"v{v} offline",
                )
            if mine:
                coverage_ax.plot(
                    [_middle(p.window_start, p.window_end) for p in mine],
                    [100 * (p.coverage or 0.0) for p in mine],
                    "o-",
                    color=colour[v],
                    ms=3,
                    label=f"v{v}",
                )
            checks = [d for d in self.drift if d.version == v]
            if checks:
                # At the end of the traffic it judged: a check of the last hour is the drift
                # share as of then (its middle would sit half an hour before anything happened).
                drift_ax.plot(
                    [_date(d.window_end) for d in checks],
                    [d.drift_share for d in checks],
                    "o-",
                    color=colour[v],
                    ms=3,
                    label=f"v{v}",
                )
                drifted = [d for d in checks if d.dataset_drift]
                drift_ax.scatter(
                    [_date(d.window_end) for d in drifted],
                    [d.drift_share for d in drifted],
                    s=40,
                    facecolors="none",
                    edgecolors="#c62828",
                    zorder=3,
                )
        metrics = sorted({p.metric for p in self.points if p.metric})
        metric_ax.set_ylabel(" / ".join(metrics) or "metric", fontsize=8)
        coverage_ax.set_ylabel("labelled %", fontsize=8)
        coverage_ax.set_ylim(-5, 105)
        drift_ax.set_ylabel("drift share", fontsize=8)
        drift_ax.set_ylim(-0.05, 1.05)
        nothing = ("no labelled requests", "no answered requests", "no drift checks of served "
                   "traffic")  # fmt: skip
        for ax, text in zip(axes, nothing, strict=True):
            if ax.lines:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
            else:
                ax.text(
                    0.5,
                    0.5,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="#757575",
                    transform=ax.transAxes,
                )
            ax.tick_params(labelsize=7)
            for e in self.events:
                if e.kind in MARKERS:
                    ax.axvline(_date(e.at), color=MARKERS[e.kind], lw=1.2, alpha=0.8)
            for at, _, _ in self.alias_moves:
                ax.axvline(_date(at), color=ALIAS_MOVED, lw=1, ls=":")
        from matplotlib.lines import Line2D

        kinds = [k for k in MARKERS if any(e.kind == k for e in self.events)]
        handles = [Line2D([], [], color=MARKERS[k], label=k.replace("_", " ")) for k in kinds]
        if self.alias_moves:
            handles.append(Line2D([], [], color=ALIAS_MOVED, ls=":", label="alias moved"))
        if handles:
            fig.legend(handles=handles, fontsize=7, loc="outside lower center", ncols=len(handles))
        start, end = self.span()
        drift_ax.set_xlim(_date(start), _date(end))
        locator = AutoDateLocator()  # type: ignore[no-untyped-call]
        drift_ax.xaxis.set_major_locator(locator)
        formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        drift_ax.xaxis.set_major_formatter(formatter)
        fig.suptitle(f"{self.name}: {_display.duration(self.window)} windows (UTC)", fontsize=9)
        return fig

    def span(self) -> tuple[float, float]:
        """The times the timeline covers: ``since``/``until``, else its first and last moment."""
        moments = [p.window_start for p in self.points] + [p.window_end for p in self.points]
        moments += [d.window_end for d in self.drift]
        moments += [e.at for e in self.events] + [at for at, _, _ in self.alias_moves]
        start = self.since if self.since is not None else min(moments, default=self.now - 3600)
        end = self.until if self.until is not None else max(moments, default=self.now)
        return start, max(end, start + self.window)

    def __repr__(self) -> str:
        versions = sorted({p.version for p in self.points})
        lines = [
            f"Timeline({self.name}: {len(self.points)} windows of "
            f"{_display.duration(self.window)} over versions {versions}, {len(self.drift)} drift "
            f"checks, {len(self.events)} monitor events)"
        ]
        lines += [f"  ! {b}" for b in self.badges()]
        lines += [f"  {h}" for h in self.hints + self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        badges = "".join(f"<div>{html.escape(b)}</div>" for b in self.badges())
        hints = "".join(f"<li>{html.escape(h)}</li>" for h in self.hints + self.notes)
        return f"<b>Monitoring of {html.escape(self.name)}</b>{badges}" + (
            f"<ul>{hints}</ul>" if hints else ""
        )


def _middle(start: float, end: float) -> Any:
    return _date((start + end) / 2)


def _date(seconds: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def choose_window(span: float) -> float:
    """The shortest of :data:`WINDOWS` that cuts ``span`` seconds into at most
    :data:`MAX_WINDOWS` windows (the longest for a longer span)."""
    return next((w for w in WINDOWS if span / w <= MAX_WINDOWS), WINDOWS[-1])


def timeline(
    store: Store,
    name: str,
    *,
    window: float | None = None,
    since: float | None = None,
    until: float | None = None,
    now: float | None = None,
) -> Timeline:
    """The monitoring timeline of registered model ``name`` (see the module docstring)."""
    now = time.time() if now is None else now
    events = [
        e for e in events_sql.events_of(store, name, since=since) if until is None or e.at < until
    ]
    moves = [
        (e.at, e.alias, e.version)
        for e in registry_sql.events_of(store, name)
        if e.kind == "alias_set"
        and e.alias is not None
        and e.version is not None
        and (since is None or e.at >= since)
        and (until is None or e.at < until)
    ]
    drift = timeline_sql.drift_points(store, name, since, until)
    if window is None:
        served = timeline_sql.served_span(store, name)
        moments = [m for m in (served or ()) if since is None or m >= since]
        moments += [e.at for e in events] + [d.window_end for d in drift]
        first = since if since is not None else min(moments, default=now)
        window = choose_window((until if until is not None else now) - first)
    points, notes = _points(store, name, window, since, until)
    cooldowns: dict[str, float] = {}
    if any(e.kind == "fired" for e in events):
        cooldowns, problem = _cooldowns(store)
        notes += [problem] if problem else []
    return Timeline(
        name,
        window,
        since,
        until,
        now,
        points,
        drift,
        events,
        moves,
        _active(events, now, cooldowns),
        _stopped(events),
        _hints(name, points, drift, events),
        notes,
    )


def _points(
    store: Store, name: str, window: float, since: float | None, until: float | None
) -> tuple[list[WindowPoint], list[str]]:
    answered = {
        (a.version, a.window): a.rows
        for a in timeline_sql.answered_rows(store, name, window, since, until)
    }
    labelled: dict[tuple[int, int], int] = {}
    skews: dict[tuple[int, int], VersionSkew] = {}
    notes = []
    for version in labels_sql.labelled_versions(store, name, since=since, until=until):
        try:
            found = production_skew(
                store, name, version, since=since, until=until, window=window, features=False
            )
        except RegistryError as exc:  # e.g. the version recorded no offline metric
            notes.append(f"No served metric for {name}/{version}: {exc}")
            counts = labels_sql.labelled_sums(
                store, name, version, (), since=since, until=until, window=window
            )
            labelled.update({(version, c.window): int(c.sums["n"]) for c in counts})
            continue
        for row in found.versions:
            assert row.window_start is not None
            key = (version, round(row.window_start / window))
            skews[key], labelled[key] = row, row.n_labelled
    points = []
    for key in sorted(set(answered) | set(labelled)):
        version, index = key
        rows, n = answered.get(key, 0), labelled.get(key, 0)
        skew = skews.get(key)
        extra: dict[str, Any] = {}
        if skew is not None:
            extra = {
                "metric": skew.metric,
                "served": skew.served,
                "offline": skew.offline,
                "ci_low": skew.offline + skew.ci_low,
                "ci_high": skew.offline + skew.ci_high,
                "significant": skew.significant,
            }
        points.append(
            WindowPoint(
                version,
                index * window,
                (index + 1) * window,
                rows,
                n,
                n / rows if rows else None,
                **extra,
            )
        )
    return points, notes


def _cooldowns(store: Store) -> tuple[dict[str, float], str | None]:
    """Each alert's cooldown in the rules file monitors read now; why not, if it is malformed."""
    path = find_rules_file(store.home)
    if path is None:
        return {}, None
    try:
        alerts = load_alerts(path)
    except RulesFileError as exc:
        return {}, f"Cooldowns taken as each firing's window: {exc}"
    return {a.name: a.cooldown for a in alerts.alerts.values()}, None


def _active(
    events: Sequence[MonitorEventRow], now: float, cooldowns: dict[str, float]
) -> list[ActiveAlert]:
    latest: dict[str, MonitorEventRow] = {}
    for e in events:
        if e.kind == "fired":
            latest[e.alert] = e
    active = []
    for alert, e in sorted(latest.items()):
        cooldown = cooldowns.get(alert, e.payload.get("window", {}).get("seconds", 0.0))
        if now < e.at + float(cooldown):
            active.append(
                ActiveAlert(
                    alert,
                    e.event_id,
                    e.version,
                    e.at,
                    e.at + float(cooldown),
                    e.payload.get("action"),
                )
            )
    return active


def _stopped(events: Sequence[MonitorEventRow]) -> list[MonitorEventRow]:
    """Per alert, its last ``retraining_stopped`` when no retrain started after it (retrain
    stays stopped until the alias moves and a firing starts one again)."""
    last: dict[str, MonitorEventRow] = {}
    for e in events:
        if e.kind in ("retraining_stopped", "retrain_started"):
            last[e.alert] = e
    return [e for _, e in sorted(last.items()) if e.kind == "retraining_stopped"]


def _hints(
    name: str,
    points: Sequence[WindowPoint],
    drift: Sequence[DriftPoint],
    events: Sequence[MonitorEventRow],
) -> list[str]:
    hints = []
    if not points:
        hints.append(
            f"No requests logged: serve it with nbm.serve('{name}@champion') or "
            f"`nbmlops serve {name}@champion`; each answered request is logged."
        )
    elif not any(p.labelled for p in points):
        hints.append(
            "No labels yet: log ground truth with nbm.log_labels(request_ids, y_true) (or POST "
            "/labels to the server) to see the served metric against the offline one."
        )
    if not drift:
        hints.append(
            f"No drift checks of served traffic: run nbm.monitor_drift('{name}', window='1h'), "
            "or an alert on drift_share with `nbmlops monitor`."
        )
    if not any(e.kind == "fired" for e in events):
        hints.append(
            f"No alert fired: add an [alerts.{name}] table to nbmlops.toml and run "
            "`nbmlops monitor --every 5m`."
        )
    return hints
