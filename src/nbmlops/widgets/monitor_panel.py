"""The monitoring panel (``%monitor [NAME]``): one model in production on one time axis, the
served metric per version against its offline one, label coverage, the drift share of served
traffic, and alerts, retrains and alias moves as markers; a badge while an alert is in its
cooldown or retraining has stopped; hints for what has nothing yet.

A thin layer over :func:`nbmlops.monitor_timeline` (the figure is the timeline's
own ``plot()``); the static HTML is the same badge, figure, hints and events table, so an
executed notebook shows it without a kernel.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from nbmlops import api
from nbmlops._display import parse_duration
from nbmlops.errors import NbmlopsError, StoreNotFoundError
from nbmlops.widgets import _html
from nbmlops.widgets._panel import Panel

if TYPE_CHECKING:
    import pandas as pd

    from nbmlops.monitoring.timeline import Timeline

WINDOWS = ["auto", "1m", "5m", "15m", "1h", "6h", "1d", "7d"]
EVENTS_SHOWN = 20
BADGE = (
    "background:#ffebee;color:#b71c1c;border:1px solid #e57373;border-radius:4px;"
    "padding:4px 8px;margin:4px 0;font-weight:bold"
)


class MonitorPanel(Panel):
    """``name``: the model shown (default: the first registered); ``window``: as the dropdown
    offers or any duration (default: chosen to fit); ``since``/``until``: the span shown."""

    def __init__(
        self,
        name: str | None = None,
        *,
        window: str | None = None,
        since: Any = None,
        until: Any = None,
        store: Any = None,
    ) -> None:
        if window is not None and window != "auto":
            parse_duration(window, what="window")  # a bad argument raises, not just a message
        self.store = store
        self.since, self.until = since, until
        self.timeline: Timeline | None = None
        self.figure: Any = None

        self.model = widgets.Dropdown(description="model")
        windows = WINDOWS if window is None or window in WINDOWS else [*WINDOWS, window]
        self.window = widgets.Dropdown(
            options=windows, value=window or "auto", description="window"
        )
        self.refresh_button = widgets.Button(description="refresh", icon="refresh")
        self.message = widgets.HTML()
        self.badges = widgets.HTML()
        self.plot = widgets.HTML()
        self.hints = widgets.HTML()
        self.events = widgets.HTML()

        self._listing = False
        self.model.observe(self._model_chosen, "value")
        self.window.observe(lambda _: self.draw(), "value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.widget = widgets.VBox(
            [
                widgets.HBox([self.model, self.window, self.refresh_button]),
                self.message,
                self.badges,
                self.plot,
                self.hints,
                self.events,
            ]
        )
        self.refresh(select=name)

    def refresh(self, select: str | None = None) -> None:
        """List the registered models again and redraw."""
        try:
            names = list(api.models(store=self.store)["name"])
        except StoreNotFoundError:  # nothing tracked here yet: no models to show
            names = []
        if select is not None and select not in names:
            # The API's error for an unknown model names the registered ones.
            api.monitor_timeline(select, since=self.since, until=self.until, store=self.store)
        current = select or self.model.value
        self._listing = True  # one draw below, not one per change of the dropdown
        try:
            self.model.options = names
            self.model.value = current if current in names else (names[0] if names else None)
        finally:
            self._listing = False
        self.draw()

    def _model_chosen(self, _: Any) -> None:
        if not self._listing:
            self.draw()

    def draw(self) -> None:
        """Read the chosen model's timeline and show it."""
        name = self.model.value
        self.timeline = None
        self.badges.value = self.plot.value = self.events.value = ""
        if not name:
            self.hints.value = _hints(
                [
                    "No registered model: register one with nbm.register_model(run_id, name), "
                    "then serve it with nbm.serve('name@champion')."
                ]
            )
            return
        window = None if self.window.value == "auto" else self.window.value
        try:
            timeline = api.monitor_timeline(
                name, window=window, since=self.since, until=self.until, store=self.store
            )
        except (NbmlopsError, ValueError) as exc:
            self.message.value = _html.message(str(exc), ok=False)
            self.hints.value = ""
            return
        self.message.value = ""
        self.timeline = timeline
        self.badges.value = _badges(timeline)
        self.hints.value = _hints(timeline.hints + timeline.notes)
        if timeline.empty:
            self.figure = None
            return
        self.figure = timeline.plot()
        self.plot.value = _html.figure_png(self.figure)
        self.events.value = _events(timeline)

    def to_frame(self) -> pd.DataFrame:
        """The shown timeline's windows, one row per version and window."""
        if self.timeline is None:
            raise NbmlopsError("The monitoring panel shows no model; choose one first.")
        return self.timeline.to_frame()

    def to_html(self) -> str:
        title = ""
        if self.timeline is not None:
            title = f"<b>Monitoring {html.escape(self.timeline.name)}</b>"
        return "".join(
            [
                title,
                self.message.value,
                self.badges.value,
                self.plot.value,
                self.hints.value,
                self.events.value,
            ]
        )

    def __repr__(self) -> str:
        if self.timeline is None:
            return "<MonitorPanel: no model>"
        t = self.timeline
        return (
            f"<MonitorPanel {t.name}: {len(t.points)} windows, {len(t.drift)} drift checks, "
            f"{len(t.events)} events, {len(t.active)} active alerts>"
        )


def _badges(timeline: Timeline) -> str:
    return "".join(f"<div style='{BADGE}'>⚠ {html.escape(b)}</div>" for b in timeline.badges())


def _hints(lines: list[str]) -> str:
    items = "".join(f"<li>{html.escape(h)}</li>" for h in lines)
    return f"<ul style='color:#546e7a;margin:4px 0'>{items}</ul>" if items else ""


def _events(timeline: Timeline) -> str:
    frame = timeline.events_frame()
    if frame.empty:
        return ""
    shown = frame.tail(EVENTS_SHOWN).iloc[::-1]
    shown = shown.assign(at=shown["at"].map(lambda t: _html.when(t, zone=False)))
    more = len(frame) - len(shown)
    title = "Alerts, retrains and alias moves (UTC, newest first"
    title += f"; {more} older not shown)" if more else ")"
    return _html.section(title, _html.table(shown, index=False))
